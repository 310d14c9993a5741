// Inference throughput: a network's forward pass over a batch of random inputs
// already on the device, three ways:
//   per_sample  model.inference() in a RangePolicy kernel, one sample per
//               thread (weights read from the model's arenas);
//   team        the same operators in a TeamPolicy kernel, a tile of samples
//               per team with the weights staged once in team scratch
//               (Inference::stage; level 0 where they fit, else level 1);
//   batched     model.forward(x), the layer-by-layer GEMM path.
// Two networks: the physics-informed network (2-64-64-64-1, Tanh) and the
// demo MLP (784-256-128-10, ReLU), in float. Each iteration is one pass over
// the batch and a fence; the counter is samples/s (batch / wall time).
//
// Names: inference/<network>/<per_sample|team|batched>/batch:B, so the three
// forms of one network and batch sit together. The team benchmarks also
// report the scratch level and the tile (samples per team).

#include "bench_common.hpp"

#include <ktnn/inference.hpp>
#include <ktnn/layers/activation.hpp>
#include <ktnn/layers/dense.hpp>
#include <ktnn/layers/sequential.hpp>
#include <ktnn/model.hpp>

#include <benchmark/benchmark.h>
#include <Kokkos_Core.hpp>

#include <cstddef>

namespace ktnn_bench_inference {

using ktnn_bench::exec_space;
using ktnn_bench::memory_space;
using Rows = Kokkos::View<float**, Kokkos::LayoutRight, memory_space>;
using Policy = Kokkos::TeamPolicy<exec_space>;

using Pinn = ktnn::Sequential<ktnn::Dense<2, 64, ktnn::Tanh>, ktnn::Dense<64, 64, ktnn::Tanh>,
                              ktnn::Dense<64, 64, ktnn::Tanh>, ktnn::Dense<64, 1>>;
using Mlp = ktnn::Sequential<ktnn::Dense<784, 256, ktnn::ReLU>, ktnn::Dense<256, 128, ktnn::ReLU>,
                             ktnn::Dense<128, 10>>;

/// Threads per team and samples per team: on a GPU a block of 128 threads,
/// one sample each; on host cores one thread per team and 64 samples.
inline constexpr int team_size = ktnn_bench::on_device ? 128 : 1;
inline constexpr int tile = ktnn_bench::on_device ? 128 : 64;

/// One sample per thread.
template <class Net>
void per_sample(Net const& net, Rows const& x, Rows const& y) {
  Kokkos::parallel_for(
      "bench::inference::per_sample", Kokkos::RangePolicy<exec_space>(0, x.extent(0)),
      KOKKOS_LAMBDA(int i) {
        float in[Net::in_features], out[Net::out_features];
        for (int j = 0; j < Net::in_features; ++j) in[j] = x(i, j);
        net(in, out);
        for (int j = 0; j < Net::out_features; ++j) y(i, j) = out[j];
      });
}

/// A tile of samples per team, the weights staged at `level`.
template <class Net>
void per_team(Net const& net, Rows const& x, Rows const& y, int level) {
  int const n = int(x.extent(0));
  Policy policy((n + tile - 1) / tile, team_size);
  policy.set_scratch_size(level, Kokkos::PerTeam(Net::team_scratch_bytes()));
  Kokkos::parallel_for(
      "bench::inference::team", policy, KOKKOS_LAMBDA(Policy::member_type const& team) {
        auto const local = net.stage(team, level);
        int const first = team.league_rank() * tile;
        int const last = Kokkos::min(n, first + tile);
        Kokkos::parallel_for(Kokkos::TeamThreadRange(team, first, last), [&](int i) {
          float in[Net::in_features], out[Net::out_features];
          for (int j = 0; j < Net::in_features; ++j) in[j] = x(i, j);
          local(in, out);
          for (int j = 0; j < Net::out_features; ++j) y(i, j) = out[j];
        });
      });
}

enum class Form { per_sample, team, batched };

template <class Architecture, Form form>
void inference(benchmark::State& state) {
  int const batch = int(state.range(0));
  ktnn::Model<Architecture, float> model(42);
  Rows x("bench::x", batch, Architecture::in_features);
  Rows y("bench::y", batch, Architecture::out_features);
  ktnn_bench::fill_uniform(x, -1.0f, 1.0f, 3);
  auto const net = model.inference();
  using Net = decltype(net);
  int const level = Net::team_scratch_bytes() <= std::size_t(Policy::scratch_size_max(0)) ? 0 : 1;
  exec_space const exec;
  auto pass = [&] {
    if constexpr (form == Form::per_sample)
      per_sample(net, x, y);
    else if constexpr (form == Form::team)
      per_team(net, x, y, level);
    else
      model.forward(x);
  };
  pass();  // allocations (the model's buffers, team scratch) outside the timing
  exec.fence();
  model.execution().fence();
  for (auto _ : state) {
    pass();
    if constexpr (form == Form::batched)
      model.execution().fence();
    else
      exec.fence();
  }
  ktnn_bench::rate(state, "samples/s", batch);
  if constexpr (form == Form::team) {
    state.counters["scratch_level"] = level;
    state.counters["tile"] = tile;
  }
}

}  // namespace ktnn_bench_inference

namespace {
namespace bi = ktnn_bench_inference;

// Per-sample inference of the MLP costs about 235,000 multiply-adds a sample
// on one thread: its batches on host cores stay small.
constexpr double min_time = ktnn_bench::on_device ? 0.5 : 0.2;
constexpr int pinn_small = ktnn_bench::on_device ? 16384 : 1024;
constexpr int pinn_large = ktnn_bench::on_device ? 1 << 20 : 16384;
constexpr int mlp_small = ktnn_bench::on_device ? 4096 : 256;
constexpr int mlp_large = ktnn_bench::on_device ? 65536 : 2048;

#define KTNN_BENCH_INFERENCE(ARCH, NAME, FORM, SMALL, LARGE) \
  BENCHMARK(bi::inference<bi::ARCH, bi::Form::FORM>)         \
      ->Name("inference/" NAME "/" #FORM)                    \
      ->ArgName("batch")                                     \
      ->Arg(SMALL)                                           \
      ->Arg(LARGE)                                           \
      ->MinTime(min_time)                                    \
      ->UseRealTime()

KTNN_BENCH_INFERENCE(Pinn, "pinn_2_64_64_64_1", per_sample, pinn_small, pinn_large);
KTNN_BENCH_INFERENCE(Pinn, "pinn_2_64_64_64_1", team, pinn_small, pinn_large);
KTNN_BENCH_INFERENCE(Pinn, "pinn_2_64_64_64_1", batched, pinn_small, pinn_large);
KTNN_BENCH_INFERENCE(Mlp, "mlp_784_256_128_10", per_sample, mlp_small, mlp_large);
KTNN_BENCH_INFERENCE(Mlp, "mlp_784_256_128_10", team, mlp_small, mlp_large);
KTNN_BENCH_INFERENCE(Mlp, "mlp_784_256_128_10", batched, mlp_small, mlp_large);

#undef KTNN_BENCH_INFERENCE
}  // namespace

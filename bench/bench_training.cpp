// Training throughput of the demo model (784-256-128-10 ReLU MLP, float, Adam
// lr 1e-3, softmax cross-entropy) on random data already on the device: one
// iteration is the step ktnn::fit runs per batch (zero_grad, forward, loss,
// backward, optimizer step), less the batch gather of the data loader.
//
// And a Dense layer with its ReLU fused into the GEMM epilogue against the same
// layer followed by a separate ReLU layer, forward + backward.
//
// FLOP counts only the GEMMs: 2 B in out per Dense layer for the forward and
// as much for the weight gradient, and again for the input gradient of every
// layer but the first (whose input gradient fit does not compute).

#include "bench_common.hpp"

#include <ktnn/detail/matrix.hpp>
#include <ktnn/layers/activation.hpp>
#include <ktnn/layers/dense.hpp>
#include <ktnn/layers/sequential.hpp>
#include <ktnn/losses/cross_entropy.hpp>
#include <ktnn/losses/loss.hpp>
#include <ktnn/model.hpp>
#include <ktnn/optim/adam.hpp>

#include <benchmark/benchmark.h>
#include <Kokkos_Core.hpp>

#include <cstddef>
#include <utility>

namespace {

using ktnn_bench::exec_space;
using ktnn_bench::memory_space;

using Mlp = ktnn::Sequential<ktnn::Dense<784, 256, ktnn::ReLU>, ktnn::Dense<256, 128, ktnn::ReLU>,
                             ktnn::Dense<128, 10>>;
using FusedLayer = ktnn::Sequential<ktnn::Dense<784, 256, ktnn::ReLU>>;
using UnfusedLayer = ktnn::Sequential<ktnn::Dense<784, 256>, ktnn::ReLU>;

/// Multiply-adds per sample of the forward GEMMs of layers [first, depth):
/// in * out for each layer with parameters (Dense), none for activations.
template <class Architecture, std::size_t... I>
constexpr double forward_macs(std::size_t first, std::index_sequence<I...>) {
  return ((I >= first && Architecture::template layer<I>::param_count > 0
               ? double(Architecture::template layer<I>::in_features) *
                     Architecture::template layer<I>::out_features
               : 0.0) +
          ... + 0.0);
}
template <class Architecture>
constexpr double forward_macs(std::size_t first = 0) {
  return forward_macs<Architecture>(first, std::make_index_sequence<Architecture::depth>{});
}

/// GEMM FLOP of one training step on `batch` samples without the network's
/// input gradient: forward, weight gradients, and the input gradients of
/// layers 1.. (layer 0's would be dL/dx, which training does not need).
template <class Architecture>
constexpr double step_flops(int batch) {
  return 2.0 * batch * (2 * forward_macs<Architecture>() + forward_macs<Architecture>(1));
}

struct RandomBatch {
  ktnn::Tensor<float, 784, Kokkos::LayoutRight, memory_space> x;
  Kokkos::View<int*, memory_space> labels;
  explicit RandomBatch(int batch) : x("bench::x", batch), labels("bench::labels", batch) {
    ktnn_bench::fill_uniform(x.view(), 0.0f, 1.0f, 3);  // pixels in [0, 1)
    ktnn_bench::fill_uniform(labels, 0, 10, 4);         // classes in [0, 10)
  }
};

void train_step(benchmark::State& state) {
  int const batch = int(state.range(0));
  ktnn::Model<Mlp, float> model(42);
  ktnn::Adam optimizer(model, {.lr = 1e-3f});
  ktnn::CrossEntropy loss;
  RandomBatch data(batch);
  // fit gives each batch its own slot; one slot, overwritten, does here.
  Kokkos::View<ktnn::LossSums, memory_space> sums("bench::loss_sums");
  auto const& exec = model.execution();
  auto step = [&] {
    model.zero_grad();
    auto prediction = model.forward(data.x);
    loss(exec, ktnn::detail::Matrix<float const>(ktnn::detail::as_matrix(prediction)), data.labels,
         ktnn::detail::as_matrix(model.output_gradient()), sums);
    model.backward();
    optimizer.step(model.parameters(), model.gradients());
  };
  step();  // allocates the workspace: outside the timing, as in fit
  exec.fence();
  for (auto _ : state) {
    step();
    exec.fence();
  }
  ktnn_bench::rate(state, "samples/s", batch);
  ktnn_bench::rate(state, "FLOP/s", step_flops<Mlp>(batch));
}

/// Forward, then backward from a fixed output gradient (dL/dW and dL/db, no
/// dL/dx), of a one-layer architecture.
template <class Architecture>
void layer_forward_backward(benchmark::State& state) {
  int const batch = int(state.range(0));
  ktnn::Model<Architecture, float> model(7);
  RandomBatch data(batch);
  Kokkos::View<float**, Kokkos::LayoutRight, memory_space> dy("bench::dy", batch,
                                                              Architecture::out_features);
  ktnn_bench::fill_uniform(dy, -1.0f, 1.0f, 5);
  auto const& exec = model.execution();
  auto step = [&] {
    model.forward(data.x);
    model.backward(dy);  // copies dy into the model's buffer (backward overwrites it)
  };
  step();
  exec.fence();
  for (auto _ : state) {
    step();
    exec.fence();
  }
  ktnn_bench::rate(state, "samples/s", batch);
  ktnn_bench::rate(state, "FLOP/s", 4.0 * batch * forward_macs<Architecture>());
}

}  // namespace

BENCHMARK(train_step)
    ->Name("train_step/mlp_784_256_128_10")
    ->ArgName("batch")
    ->Arg(128)
    ->Arg(1024)
    ->UseRealTime();
BENCHMARK(layer_forward_backward<FusedLayer>)
    ->Name("dense_relu_fwd_bwd/fused")
    ->ArgName("batch")
    ->Arg(128)
    ->Arg(1024)
    ->UseRealTime();
BENCHMARK(layer_forward_backward<UnfusedLayer>)
    ->Name("dense_relu_fwd_bwd/unfused")
    ->ArgName("batch")
    ->Arg(128)
    ->Arg(1024)
    ->UseRealTime();

// Training throughput on random data already on the device: one iteration is
// the step ktnn::fit runs per batch (forward, loss, backward, optimizer step),
// less the batch gather of the data loader. Two models, as the GPU references
// in the CUDA issue: the demo MLP (784-256-128-10 ReLU, softmax cross-entropy,
// Adam lr 1e-3) and an MLP 64 wide with 4 hidden layers (64-64-64-64-64-64
// ReLU, MSE, Adam), at batches up to 16,384 and 262,144 on a GPU. On a GPU
// the steps also report energy (J per million samples, NVML).
//
// And a Dense layer with its ReLU fused into the GEMM epilogue against the same
// layer followed by a separate ReLU layer, forward + backward.
//
// FLOP counts only the GEMMs: 2 B in out per Dense layer for the forward and
// as much for the weight gradient, and again for the input gradient of every
// layer but the first (whose input gradient fit does not compute).

#include "bench_common.hpp"

#include <ktnn/layers/activation.hpp>
#include <ktnn/layers/dense.hpp>
#include <ktnn/layers/sequential.hpp>
#include <ktnn/losses/cross_entropy.hpp>
#include <ktnn/losses/loss.hpp>
#include <ktnn/losses/mse.hpp>
#include <ktnn/model.hpp>
#include <ktnn/optim/adam.hpp>
#include <ktnn/train/step.hpp>

#include <benchmark/benchmark.h>
#include <Kokkos_Core.hpp>

#include <cstddef>
#include <type_traits>
#include <utility>

namespace {

using ktnn_bench::exec_space;
using ktnn_bench::memory_space;

using Mlp = ktnn::Sequential<ktnn::Dense<784, 256, ktnn::ReLU>, ktnn::Dense<256, 128, ktnn::ReLU>,
                             ktnn::Dense<128, 10>>;
using Mlp64 = ktnn::Sequential<ktnn::Dense<64, 64, ktnn::ReLU>, ktnn::Dense<64, 64, ktnn::ReLU>,
                               ktnn::Dense<64, 64, ktnn::ReLU>, ktnn::Dense<64, 64, ktnn::ReLU>,
                               ktnn::Dense<64, 64>>;
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

/// Random inputs in [0, 1), on the device.
template <int In>
struct Inputs {
  ktnn::Tensor<float, In, Kokkos::LayoutRight, memory_space> x;
  explicit Inputs(int batch) : x("bench::x", batch) {
    ktnn_bench::fill_uniform(x.view(), 0.0f, 1.0f, 3);  // pixels in [0, 1)
  }
};

/// Random targets for a loss: class labels for cross-entropy, rows of values
/// for MSE.
template <class Loss, int Out>
auto random_targets(int batch) {
  if constexpr (std::is_same_v<Loss, ktnn::CrossEntropy>) {
    Kokkos::View<int*, memory_space> labels("bench::labels", batch);
    ktnn_bench::fill_uniform(labels, 0, Out, 4);
    return labels;
  } else {
    Kokkos::View<float**, Kokkos::LayoutRight, memory_space> targets("bench::targets", batch, Out);
    ktnn_bench::fill_uniform(targets, -1.0f, 1.0f, 4);
    return targets;
  }
}

template <class Architecture, class Loss>
void train_step(benchmark::State& state) {
  int const batch = int(state.range(0));
  ktnn::Model<Architecture, float> model(42);
  ktnn::Adam optimizer(model, {.lr = 1e-3f});
  Loss loss;
  Inputs<Architecture::in_features> data(batch);
  auto const targets = random_targets<Loss, Architecture::out_features>(batch);
  // fit gives each batch its own slot; one slot, overwritten, does here.
  Kokkos::View<ktnn::LossSums, memory_space> sums("bench::loss_sums");
  auto const& exec = model.execution();
  auto step = [&] { ktnn::train_step(model, loss, optimizer, data.x, targets, sums); };
  step();  // allocates the workspace: outside the timing, as in fit
  ktnn_bench::count_kernels(state, step);
  exec.fence();
  ktnn_bench::EnergyMeter energy;
  energy.start();
  for (auto _ : state) {
    step();
    exec.fence();
  }
  energy.stop(state, double(batch) * double(state.iterations()));
  ktnn_bench::rate(state, "samples/s", batch);
  ktnn_bench::rate(state, "FLOP/s", step_flops<Architecture>(batch));
}

/// Forward, then backward from a fixed output gradient (dL/dW and dL/db, no
/// dL/dx), of a one-layer architecture.
template <class Architecture>
void layer_forward_backward(benchmark::State& state) {
  int const batch = int(state.range(0));
  ktnn::Model<Architecture, float> model(7);
  Inputs<Architecture::in_features> data(batch);
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

// The largest batches only on a device: on two CPU cores one step of the
// 64-wide MLP at 262,144 samples takes about a second.
BENCHMARK(train_step<Mlp, ktnn::CrossEntropy>)
    ->Name("train_step/mlp_784_256_128_10")
    ->ArgName("batch")
    ->Arg(128)
    ->Arg(1024)
    ->Arg(ktnn_bench::on_device ? 16384 : 4096)
    ->MinTime(ktnn_bench::on_device ? 2.0 : 0.5)
    ->UseRealTime();
BENCHMARK(train_step<Mlp64, ktnn::MSE>)
    ->Name("train_step/mlp_64x4")
    ->ArgName("batch")
    ->Arg(16384)
    ->Arg(ktnn_bench::on_device ? 262144 : 65536)
    ->MinTime(ktnn_bench::on_device ? 2.0 : 0.5)
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

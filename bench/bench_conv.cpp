// Convolutional training: the Fashion-MNIST CNN's step (forward, loss,
// backward, Adam, as ktnn::fit runs it per batch) and each of its two
// convolutions alone, forward and backward, with their FLOP/s.
//
// FLOP counts only the convolutions' and Dense layers' multiply-adds: 2 B
// (out pixels) (out channels) (in channels K^2) for a convolution's forward,
// as much for its weight gradient and for its input gradient (none for the
// first layer, whose input gradient training does not compute).

#include "bench_common.hpp"

#include <ktnn/ktnn.hpp>

#include <benchmark/benchmark.h>
#include <Kokkos_Core.hpp>

namespace {

using ktnn::Image;
using ktnn::Padding;
using ktnn_bench::memory_space;

using Conv1 = ktnn::Sequential<ktnn::Conv2D<Image<1, 28, 28>, 32, 3, ktnn::ReLU, Padding<1>>>;
using Conv2 = ktnn::Sequential<ktnn::Conv2D<Image<32, 14, 14>, 64, 3, ktnn::ReLU, Padding<1>>>;
using Cnn = ktnn::Sequential<
    ktnn::Conv2D<Image<1, 28, 28>, 32, 3, ktnn::ReLU, Padding<1>>, ktnn::MaxPool2D<2>,
    ktnn::Conv2D<Image<32, 14, 14>, 64, 3, ktnn::ReLU, Padding<1>>, ktnn::MaxPool2D<2>,
    ktnn::Flatten, ktnn::Dense<3136, 128, ktnn::ReLU>, ktnn::Dense<128, 10>>;

/// Multiply-adds of one sample's forward pass through a convolution.
template <class Conv>
constexpr double conv_macs() {
  return double(Conv::out_pixels) * Conv::out_channels * Conv::patch;
}
constexpr double conv1_macs = conv_macs<Conv1::layer<0>>();
constexpr double conv2_macs = conv_macs<Conv2::layer<0>>();
constexpr double dense_macs = 3136.0 * 128 + 128.0 * 10;

/// Forward, then backward from a fixed output gradient; `input_gradient`
/// says whether dL/dx is computed (not for a network's first layer).
template <class Architecture>
void conv_forward_backward(benchmark::State& state) {
  int const batch = int(state.range(0));
  bool const input_gradient = state.range(1) != 0;
  ktnn::Model<Architecture, float> model(7);
  Kokkos::View<float**, Kokkos::LayoutRight, memory_space> x("bench::x", batch,
                                                             Architecture::in_features),
      dy("bench::dy", batch, Architecture::out_features);
  ktnn_bench::fill_uniform(x, 0.0f, 1.0f, 3);
  ktnn_bench::fill_uniform(dy, -1.0f, 1.0f, 5);
  auto const& exec = model.execution();
  auto step = [&] {
    model.forward(x);
    model.backward(dy, input_gradient);  // copies dy (backward may overwrite it)
  };
  step();
  exec.fence();
  for (auto _ : state) {
    step();
    exec.fence();
  }
  double const macs = conv_macs<typename Architecture::template layer<0>>();
  ktnn_bench::rate(state, "samples/s", batch);
  ktnn_bench::rate(state, "FLOP/s", 2.0 * batch * macs * (input_gradient ? 3 : 2));
}

void cnn_train_step(benchmark::State& state) {
  int const batch = int(state.range(0));
  ktnn::Model<Cnn, float> model(42);
  ktnn::Adam optimizer(model, {.lr = 1e-3f});
  ktnn::CrossEntropy loss;
  Kokkos::View<float**, Kokkos::LayoutRight, memory_space> x("bench::x", batch, 784);
  ktnn_bench::fill_uniform(x, 0.0f, 1.0f, 3);
  Kokkos::View<int*, memory_space> labels("bench::labels", batch);
  ktnn_bench::fill_uniform(labels, 0, 10, 4);
  Kokkos::View<ktnn::LossSums, memory_space> sums("bench::loss_sums");
  auto const& exec = model.execution();
  auto step = [&] { ktnn::train_step(model, loss, optimizer, x, labels, sums); };
  step();  // allocates the workspace: outside the timing, as in fit
  ktnn_bench::count_kernels(state, step);
  exec.fence();
  for (auto _ : state) {
    step();
    exec.fence();
  }
  ktnn_bench::rate(state, "samples/s", batch);
  // conv1: forward and weight gradient; conv2 and the Dense layers: forward,
  // weight and input gradients.
  ktnn_bench::rate(state, "FLOP/s", 2.0 * batch * (2 * conv1_macs + 3 * (conv2_macs + dense_macs)));
}

}  // namespace

BENCHMARK(conv_forward_backward<Conv1>)
    ->Name("conv2d_fwd_bwd/1x28x28_to_32_k3")
    ->ArgNames({"batch", "dx"})
    ->Args({128, 0})
    ->UseRealTime();
BENCHMARK(conv_forward_backward<Conv2>)
    ->Name("conv2d_fwd_bwd/32x14x14_to_64_k3")
    ->ArgNames({"batch", "dx"})
    ->Args({128, 1})
    ->UseRealTime();
BENCHMARK(cnn_train_step)
    ->Name("train_step/cnn_fashion_mnist")
    ->ArgName("batch")
    ->Arg(128)
    ->MinTime(ktnn_bench::on_device ? 2.0 : 1.0)
    ->UseRealTime();

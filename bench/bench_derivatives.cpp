// Input derivatives and physics-informed training, on the network of the
// Poisson example (2-64-64-64-1, Tanh):
//
//   pinn_step              one physics-informed training step of
//                          examples/pinn_poisson (1,024 interior points,
//                          256 boundary points, Adam), float and double
//   input_derivatives      the batched Taylor pass alone: outputs, gradient
//                          and Laplacian at a batch of points (points/s)
//   input_derivatives_fwd_bwd   the same and its backward pass
//   per_sample_derivatives ktnn::derivatives(net, x) in a user's kernel,
//                          a point per thread (points/s)
//
// bench/peers/pytorch_pinn.py measures the same in PyTorch (bench/run runs
// both and prints the ratio).

#include "bench_common.hpp"

#include <ktnn/derivatives.hpp>
#include <ktnn/layers/activation.hpp>
#include <ktnn/layers/dense.hpp>
#include <ktnn/layers/sequential.hpp>
#include <ktnn/model.hpp>
#include <ktnn/optim/adam.hpp>
#include <ktnn/train/physics.hpp>

#include <benchmark/benchmark.h>
#include <Kokkos_Core.hpp>

#include <string>

namespace {

using ktnn_bench::exec_space;
using ktnn_bench::memory_space;

using Network = ktnn::Sequential<ktnn::Dense<2, 64, ktnn::Tanh>, ktnn::Dense<64, 64, ktnn::Tanh>,
                                 ktnn::Dense<64, 64, ktnn::Tanh>, ktnn::Dense<64, 1>>;

struct Poisson {
  template <class S>
  KOKKOS_FUNCTION S operator()(ktnn::PointDerivatives<S, 2, 1> const& p) const {
    using T = typename ktnn::PointDerivatives<S, 2, 1>::scalar_type;
    constexpr double pi = 3.14159265358979323846;
    T const f = T(2 * pi * pi) * Kokkos::sin(T(pi) * p.x[0]) * Kokkos::sin(T(pi) * p.x[1]);
    return -p.laplacian[0] - f;
  }
};

template <class T>
Kokkos::View<T**, memory_space> points(char const* label, int n, std::uint64_t seed) {
  Kokkos::View<T**, memory_space> x(std::string(label), n, 2);
  ktnn_bench::fill_uniform(x, T(0), T(1), seed);
  return x;
}

template <class T>
void pinn_step(benchmark::State& state) {
  ktnn::Model<Network, T> model(1);
  ktnn::Adam adam(model, {.lr = T(1e-3)});
  ktnn::PhysicsInformed pinn(model, Poisson{}, {.boundary_weight = 100});
  auto const interior = points<T>("bench::interior", 1024, 1);
  auto const boundary = points<T>("bench::boundary", 256, 2);
  Kokkos::View<T**, memory_space> zero("bench::zero", 256, 1);
  auto step = [&] { ktnn::train_step(model, pinn, adam, interior, boundary, zero); };
  step();
  ktnn_bench::count_kernels(state, step);
  Kokkos::fence();
  for (auto _ : state) {
    step();
    Kokkos::fence();
  }
  ktnn_bench::rate(state, "steps/s", 1);
}

template <class T>
void input_derivatives(benchmark::State& state) {
  int const n = int(state.range(0));
  ktnn::Model<Network, T> model(1);
  ktnn::InputDerivatives jets(model);
  auto const x = points<T>("bench::points", n, 3);
  jets.forward(x);
  Kokkos::fence();
  for (auto _ : state) {
    jets.forward(x);
    Kokkos::fence();
  }
  ktnn_bench::rate(state, "points/s", n);
}

template <class T>
void input_derivatives_fwd_bwd(benchmark::State& state) {
  int const n = int(state.range(0));
  ktnn::Model<Network, T> model(1);
  ktnn::InputDerivatives jets(model);
  auto const x = points<T>("bench::points", n, 3);
  auto step = [&] {
    jets.forward(x);
    Kokkos::deep_copy(jets.laplacian_adjoint(), T(1));  // d(sum of Laplacians)
    Kokkos::deep_copy(jets.value_adjoint(), T(0));
    Kokkos::deep_copy(jets.gradient_adjoint(), T(0));
    jets.backward(ktnn::Accumulate::no);
  };
  step();
  Kokkos::fence();
  for (auto _ : state) {
    step();
    Kokkos::fence();
  }
  ktnn_bench::rate(state, "points/s", n);
}

template <class T>
void per_sample_derivatives(benchmark::State& state) {
  int const n = int(state.range(0));
  ktnn::Model<Network, T> model(1);
  auto const x = points<T>("bench::points", n, 3);
  Kokkos::View<T**, memory_space> out("bench::out", n, 4);
  auto const net = model.inference();
  auto run = [&] {
    Kokkos::parallel_for(
        "bench::per_sample_derivatives", Kokkos::RangePolicy<exec_space>(0, n),
        KOKKOS_LAMBDA(int i) {
          auto const u = ktnn::derivatives(net, Kokkos::subview(x, i, Kokkos::ALL));
          out(i, 0) = u[0].value();
          out(i, 1) = u[0].derivative(0);
          out(i, 2) = u[0].derivative(1);
          out(i, 3) = u[0].laplacian();
        });
  };
  run();
  Kokkos::fence();
  for (auto _ : state) {
    run();
    Kokkos::fence();
  }
  ktnn_bench::rate(state, "points/s", n);
}

}  // namespace

BENCHMARK(pinn_step<float>)->Name("pinn_step/float")->UseRealTime();
BENCHMARK(pinn_step<double>)->Name("pinn_step/double")->UseRealTime();
BENCHMARK(input_derivatives<float>)
    ->Name("input_derivatives/float")
    ->ArgName("points")
    ->Arg(1024)
    ->Arg(4096)
    ->Arg(ktnn_bench::on_device ? 262144 : 16384)
    ->UseRealTime();
BENCHMARK(input_derivatives_fwd_bwd<float>)
    ->Name("input_derivatives_fwd_bwd/float")
    ->ArgName("points")
    ->Arg(1024)
    ->UseRealTime();
BENCHMARK(per_sample_derivatives<float>)
    ->Name("per_sample_derivatives/float")
    ->ArgName("points")
    ->Arg(1024)
    ->Arg(ktnn_bench::on_device ? 262144 : 16384)
    ->UseRealTime();

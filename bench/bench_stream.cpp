// Memory bandwidth: the ceiling for every memory-bound kernel in ktnn (the
// optimizer step, activations, the loss, batch gathers). A copy of n floats
// reads n and writes n: bytes = 2 * n * sizeof(float). At 2^20 floats (4 MiB a
// View) the arrays may still sit in the last-level cache; from 2^23 on they
// are well past it.
//
// Kokkos::deep_copy is the reference. Against it: a plain RangePolicy copy,
// the same copy through ktnn::ops::for_each_range (one element, or a run of
// four, per GPU thread), and the Adam step over an arena of n parameters,
// which reads four arrays and writes three: bytes = 7 * n * sizeof(float).

#include "bench_common.hpp"

#include <ktnn/ops/elementwise.hpp>
#include <ktnn/optim/adam.hpp>

#include <benchmark/benchmark.h>
#include <Kokkos_Core.hpp>

#include <cstddef>
#include <cstdint>

namespace {

using ktnn_bench::exec_space;
using ktnn_bench::memory_space;
using Floats = Kokkos::View<float*, memory_space>;

// The kernels are named functions, not lambdas inside the benchmarks: nvcc
// takes a device lambda only inside a named function.

/// b(i) = a(i) with a RangePolicy, one element per work item.
void range_copy(exec_space const& exec, Floats const& a, Floats const& b) {
  Kokkos::parallel_for(
      "bench::stream_copy", Kokkos::RangePolicy<exec_space>(exec, 0, a.extent(0)),
      KOKKOS_LAMBDA(std::size_t i) { b(i) = a(i); });
}

KOKKOS_INLINE_FUNCTION void copy_range(float* KOKKOS_RESTRICT dst, float const* KOKKOS_RESTRICT src,
                                       std::size_t begin, std::size_t end) {
  for (std::size_t i = begin; i < end; ++i) dst[i] = src[i];
}

/// b = a through ktnn::ops::for_each_range, whose range functors are what
/// the optimizers and fills run; Run consecutive elements per GPU thread.
template <int Run>
void ktnn_copy(exec_space const& exec, Floats const& a, Floats const& b) {
  float const* const src = a.data();
  float* const dst = b.data();
  ktnn::ops::for_each_range<Run>(
      exec, "bench::stream_ktnn_copy", a.extent(0),
      KOKKOS_LAMBDA(std::size_t begin, std::size_t end) { copy_range(dst, src, begin, end); });
}

/// Times `run` (which launches on `exec`), after one untimed call for first
/// touch and warm-up.
template <class Run>
void time_kernel(benchmark::State& state, exec_space const& exec, Run const& run) {
  run();
  exec.fence();
  for (auto _ : state) {
    run();
    exec.fence();
  }
}

void stream_copy(benchmark::State& state) {
  auto const n = std::size_t(state.range(0));
  Floats a("a", n), b("b", n);
  ktnn_bench::fill_uniform(a, 0.0f, 1.0f, 1);
  exec_space exec;
  time_kernel(state, exec, [&] { range_copy(exec, a, b); });
  ktnn_bench::rate(state, "bytes/s", 2.0 * double(n) * sizeof(float));
}

template <int Run>
void stream_ktnn_copy(benchmark::State& state) {
  auto const n = std::size_t(state.range(0));
  Floats a("a", n), b("b", n);
  ktnn_bench::fill_uniform(a, 0.0f, 1.0f, 1);
  exec_space exec;
  time_kernel(state, exec, [&] { ktnn_copy<Run>(exec, a, b); });
  ktnn_bench::rate(state, "bytes/s", 2.0 * double(n) * sizeof(float));
}

/// Kokkos::deep_copy between two Views of the same space.
void stream_deep_copy(benchmark::State& state) {
  auto const n = std::size_t(state.range(0));
  Floats a("a", n), b("b", n);
  ktnn_bench::fill_uniform(a, 0.0f, 1.0f, 2);
  exec_space exec;
  time_kernel(state, exec, [&] { Kokkos::deep_copy(exec, b, a); });
  ktnn_bench::rate(state, "bytes/s", 2.0 * double(n) * sizeof(float));
}

/// One Adam step over n parameters (ktnn::Adam::step, as in training).
void adam_step(benchmark::State& state) {
  auto const n = std::size_t(state.range(0));
  Floats params("params", n), grads("grads", n);
  ktnn_bench::fill_uniform(params, -1.0f, 1.0f, 5);
  ktnn_bench::fill_uniform(grads, -1.0f, 1.0f, 6);
  exec_space exec;
  ktnn::Adam<float, exec_space> adam(n, {}, exec);
  time_kernel(state, exec, [&] { adam.step(params, grads); });
  ktnn_bench::rate(state, "bytes/s", 7.0 * double(n) * sizeof(float));
}

}  // namespace

BENCHMARK(stream_copy)
    ->ArgName("floats")
    ->RangeMultiplier(2)
    ->Range(1 << 20, 1 << 26)
    ->UseRealTime();
BENCHMARK(stream_deep_copy)
    ->ArgName("floats")
    ->RangeMultiplier(2)
    ->Range(1 << 20, 1 << 26)
    ->UseRealTime();
BENCHMARK(stream_ktnn_copy<1>)
    ->Name("stream_ktnn_copy/run:1")
    ->ArgName("floats")
    ->RangeMultiplier(4)
    ->Range(1 << 20, 1 << 26)
    ->UseRealTime();
BENCHMARK(stream_ktnn_copy<4>)
    ->Name("stream_ktnn_copy/run:4")
    ->ArgName("floats")
    ->RangeMultiplier(4)
    ->Range(1 << 20, 1 << 26)
    ->UseRealTime();
BENCHMARK(adam_step)->ArgName("params")->Arg(235146)->Arg(1 << 24)->UseRealTime();

// Memory bandwidth: the ceiling for every memory-bound kernel in ktnn (the
// optimizer step, activations, the loss, batch gathers). A copy of n floats
// reads n and writes n: bytes = 2 * n * sizeof(float). At 2^20 floats (4 MiB a
// View) the arrays may still sit in the last-level cache; from 2^23 on they
// are well past it.

#include "bench_common.hpp"

#include <benchmark/benchmark.h>
#include <Kokkos_Core.hpp>

#include <cstdint>

namespace {

using ktnn_bench::exec_space;
using ktnn_bench::memory_space;

/// b(i) = a(i) with a RangePolicy: what ktnn's own element-wise kernels do.
void stream_copy(benchmark::State& state) {
  auto const n = std::int64_t(state.range(0));
  Kokkos::View<float*, memory_space> a("a", n), b("b", n);
  ktnn_bench::fill_uniform(a, 0.0f, 1.0f, 1);
  exec_space exec;
  auto copy = [&] {
    Kokkos::parallel_for(
        "bench::stream_copy", Kokkos::RangePolicy<exec_space>(exec, 0, n),
        KOKKOS_LAMBDA(std::int64_t i) { b(i) = a(i); });
  };
  copy();  // first touch and warm-up, outside the timing
  exec.fence();
  for (auto _ : state) {
    copy();
    exec.fence();
  }
  ktnn_bench::rate(state, "bytes/s", 2.0 * double(n) * sizeof(float));
}

/// Kokkos::deep_copy between two Views of the same space.
void stream_deep_copy(benchmark::State& state) {
  auto const n = std::int64_t(state.range(0));
  Kokkos::View<float*, memory_space> a("a", n), b("b", n);
  ktnn_bench::fill_uniform(a, 0.0f, 1.0f, 2);
  exec_space exec;
  Kokkos::deep_copy(exec, b, a);
  exec.fence();
  for (auto _ : state) {
    Kokkos::deep_copy(exec, b, a);
    exec.fence();
  }
  ktnn_bench::rate(state, "bytes/s", 2.0 * double(n) * sizeof(float));
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

#pragma once
// Helpers shared by the benchmark files.
//
// Every benchmark uses real (wall-clock) time: Google Benchmark's default, the
// CPU time of the calling thread, misses the work of the other Kokkos threads
// (and of a device), so rates computed from it would be wrong.

#include <benchmark/benchmark.h>
#include <Kokkos_Core.hpp>
#include <Kokkos_Random.hpp>

#include <cstdint>

namespace ktnn_bench {

using exec_space = Kokkos::DefaultExecutionSpace;
using memory_space = exec_space::memory_space;

/// Fills `view` with uniform values in [lo, hi) on the device.
template <class View, class T>
void fill_uniform(View const& view, T lo, T hi, std::uint64_t seed) {
  Kokkos::Random_XorShift64_Pool<exec_space> pool(seed);
  Kokkos::fill_random(view, pool, lo, hi);
  exec_space().fence();
}

/// A per-second rate of `per_iteration` units each iteration (FLOP, bytes,
/// samples), e.g. rate(state, "FLOP/s", flops).
inline void rate(benchmark::State& state, char const* name, double per_iteration) {
  state.counters[name] =
      benchmark::Counter(per_iteration, benchmark::Counter::kIsIterationInvariantRate);
}

}  // namespace ktnn_bench

#pragma once
// Helpers shared by the benchmark files.
//
// Every benchmark uses real (wall-clock) time: Google Benchmark's default, the
// CPU time of the calling thread, misses the work of the other Kokkos threads
// (and of a device), so rates computed from it would be wrong.

#include "launch_counter.hpp"

#include <benchmark/benchmark.h>
#include <Kokkos_Core.hpp>
#include <Kokkos_Random.hpp>

#include <chrono>
#include <cstdint>
#include <type_traits>

#if defined(KTNN_BENCH_NVML)
#include <cuda_runtime.h>
#include <dlfcn.h>
#endif

namespace ktnn_bench {

using exec_space = Kokkos::DefaultExecutionSpace;
using memory_space = exec_space::memory_space;

/// Whether the benchmarks run on a device (a GPU) rather than host cores:
/// the largest sizes are registered only there.
inline constexpr bool on_device = !std::is_same_v<memory_space, Kokkos::HostSpace>;

/// Energy the GPU drew over a timed loop, from NVML's total-energy counter
/// (millijoules since the driver loaded; Volta and newer). Reported as joules
/// per million samples and mean watts, next to samples/s. NVML is the
/// driver's libnvidia-ml.so.1, opened at run time (CUDA toolkits need not
/// ship its header or stub), on CUDA builds (KTNN_BENCH_NVML); elsewhere, or
/// where it cannot be opened, the meter reports nothing. The counter updates
/// every few tens of milliseconds: the loops it meters run for seconds.
class EnergyMeter {
 public:
  EnergyMeter() {
#if defined(KTNN_BENCH_NVML)
    library_ = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
    if (library_ == nullptr) return;
    init_ = symbol<int (*)()>("nvmlInit_v2");
    shutdown_ = symbol<int (*)()>("nvmlShutdown");
    by_bus_id_ = symbol<int (*)(char const*, void**)>("nvmlDeviceGetHandleByPciBusId_v2");
    energy_ = symbol<int (*)(void*, unsigned long long*)>("nvmlDeviceGetTotalEnergyConsumption");
    if (!init_ || !shutdown_ || !by_bus_id_ || !energy_ || init_() != 0) return;
    initialized_ = true;
    // NVML numbers devices its own way (it ignores CUDA_VISIBLE_DEVICES):
    // find the device Kokkos runs on by its PCI bus id.
    int device = 0;
    char bus_id[32] = {};
    valid_ = cudaGetDevice(&device) == cudaSuccess &&
             cudaDeviceGetPCIBusId(bus_id, sizeof bus_id, device) == cudaSuccess &&
             by_bus_id_(bus_id, &device_) == 0;
#endif
  }
  ~EnergyMeter() {
#if defined(KTNN_BENCH_NVML)
    if (initialized_) shutdown_();
    if (library_ != nullptr) dlclose(library_);
#endif
  }
  EnergyMeter(EnergyMeter const&) = delete;
  EnergyMeter& operator=(EnergyMeter const&) = delete;

  /// Starts the meter (call after the warm-up, before the timed loop).
  void start() {
    start_time_ = std::chrono::steady_clock::now();
#if defined(KTNN_BENCH_NVML)
    valid_ = valid_ && energy_(device_, &start_mj_) == 0;
#endif
  }

  /// Reads the meter and sets the counters for `samples` samples in all.
  void stop(benchmark::State& state, double samples) {
    double const seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start_time_).count();
#if defined(KTNN_BENCH_NVML)
    unsigned long long end_mj = 0;
    if (!valid_ || energy_(device_, &end_mj) != 0 || end_mj <= start_mj_ || seconds <= 0) return;
    double const joules = double(end_mj - start_mj_) * 1e-3;
    state.counters["J/Msample"] = joules / samples * 1e6;
    state.counters["W"] = joules / seconds;
#else
    (void)state, (void)samples, (void)seconds;
#endif
  }

 private:
#if defined(KTNN_BENCH_NVML)
  template <class F>
  F symbol(char const* name) const {
    return reinterpret_cast<F>(dlsym(library_, name));
  }
  void* library_ = nullptr;
  int (*init_)() = nullptr;
  int (*shutdown_)() = nullptr;
  int (*by_bus_id_)(char const*, void**) = nullptr;
  int (*energy_)(void*, unsigned long long*) = nullptr;
  void* device_ = nullptr;  // nvmlDevice_t, an opaque pointer
  unsigned long long start_mj_ = 0;
  bool initialized_ = false;
  bool valid_ = false;
#endif
  std::chrono::steady_clock::time_point start_time_;
};

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

/// The kernels one call of `step` launches inside ktnn::train_step's
/// profiling region, as the counter "kernels/step": at small batches on a
/// device a step costs about its launches. Call it outside the timed loop
/// (the callbacks cost time).
template <class Step>
void count_kernels(benchmark::State& state, Step const& step) {
  auto const launches = ktnn_test::count_launches("ktnn::train_step", step);
  state.counters["kernels/step"] = launches.kernels_per_entry();
}

}  // namespace ktnn_bench

#pragma once
/// \file Which kernels an execution space runs.
///
/// Host spaces take loops written for CPU caches and vector units (register
/// tiles, chunked restrict loops). Other spaces (GPUs) take kernels written
/// for many threads: team-scratch GEMM tiles, one element per thread,
/// reductions in two deterministic passes.
///
/// Defining KTNN_DEVICE_KERNELS_ON_HOST (the ktnn_tests_device_kernels test
/// does) sends host spaces down the device path too, with one thread per
/// team, so the device kernels' logic is checked on machines without a GPU.

#include <Kokkos_Core.hpp>

#include <type_traits>

namespace ktnn::ops {

/// Whether the space works in ordinary host memory (Serial, OpenMP, Threads).
/// Not "host-accessible": SharedSpace is HostSpace itself in a host-only
/// Kokkos, and a GPU's unified memory is host-accessible too.
template <class ExecSpace>
inline constexpr bool is_host_space =
    std::is_same_v<typename ExecSpace::memory_space, Kokkos::HostSpace>;

/// Whether the space runs the device kernels.
template <class ExecSpace>
inline constexpr bool device_kernels =
#if defined(KTNN_DEVICE_KERNELS_ON_HOST)
    true;
#else
    !is_host_space<ExecSpace>;
#endif

/// Threads per team in the device kernels: 256 on devices; 1 on host spaces
/// (test mode), where a thread then plays the part of all 256.
template <class ExecSpace>
inline constexpr int device_team_size = is_host_space<ExecSpace> ? 1 : 256;

/// Teams the device kernels aim to keep in flight: as many 256-thread teams
/// as the device holds at once. On host spaces (test mode) a fixed 64, so the
/// tests reach the split paths. A function of the device alone, so a run
/// splits its work the same way every time (results are bitwise repeatable).
template <class ExecSpace>
int device_team_target(ExecSpace const& exec) {
  if constexpr (is_host_space<ExecSpace>) {
    (void)exec;
    return 64;
  } else {
    int const teams = exec.concurrency() / 256;
    return teams > 1 ? teams : 1;
  }
}

}  // namespace ktnn::ops

#pragma once
/// \file How a model's arenas reach MPI: Transport (the arena's own pointer,
/// or a host buffer), whether the MPI library reads CUDA or ROCm memory
/// (cuda_aware, rocm_aware), and the sums and broadcasts of an arena that
/// DataParallel and mpi::broadcast run through.

#include <ktnn/parallel/mpi/communicator.hpp>

#include <Kokkos_Core.hpp>

#include <mpi.h>
#if __has_include(<mpi-ext.h>)
#include <mpi-ext.h>  // Open MPI's MPIX_Query_cuda_support
#endif

#include <cstddef>
#include <type_traits>
#include <utility>

namespace ktnn::mpi {

/// How arenas in a memory space the host cannot read reach MPI.
enum class Transport {
  automatic,  ///< the arena's pointer where MPI can read it (host memory, or
              ///< a CUDA- or ROCm-aware MPI, asked at run time), else staged
  direct,     ///< always the arena's pointer (an MPI you know reads it)
  staged      ///< always through a host buffer allocated once
};

/// Whether this MPI library takes pointers to CUDA device memory, asked at
/// run time (Open MPI's MPIX_Query_cuda_support, MPICH's
/// MPIX_GPU_query_support); false where the library cannot say.
inline bool cuda_aware() {
#if defined(MPIX_CUDA_AWARE_SUPPORT)
  return MPIX_Query_cuda_support() == 1;
#elif defined(MPICH_NUMVERSION) && MPICH_NUMVERSION >= 40000000
  int yes = 0;
  return MPIX_GPU_query_support(MPIX_GPU_SUPPORT_CUDA, &yes) == MPI_SUCCESS && yes != 0;
#else
  return false;
#endif
}

/// The same for ROCm (HIP) device memory.
inline bool rocm_aware() {
#if defined(MPIX_ROCM_AWARE_SUPPORT)
  return MPIX_Query_rocm_support() == 1;
#elif defined(MPICH_NUMVERSION) && MPICH_NUMVERSION >= 40000000
  int yes = 0;
  return MPIX_GPU_query_support(MPIX_GPU_SUPPORT_HIP, &yes) == MPI_SUCCESS && yes != 0;
#else
  return false;
#endif
}

namespace detail {
/// Whether MPI can be handed pointers into MemorySpace.
template <class MemorySpace>
bool mpi_reads(MemorySpace) {
  if constexpr (Kokkos::SpaceAccessibility<Kokkos::HostSpace, MemorySpace>::accessible) {
    return true;
  } else {
    bool aware = false;
#if defined(KOKKOS_ENABLE_CUDA)
    if constexpr (std::is_same_v<MemorySpace, Kokkos::CudaSpace>) aware = cuda_aware();
#endif
#if defined(KOKKOS_ENABLE_HIP)
    if constexpr (std::is_same_v<MemorySpace, Kokkos::HIPSpace>) aware = rocm_aware();
#endif
    return aware;
  }
}

/// Sums and broadcasts of an arena: its own pointer, or through a host
/// buffer (pinned where Kokkos has pinned host memory) grown once to the
/// largest arena and reused.
template <class T, class ExecSpace>
class ArenaChannel {
 public:
  using memory_space = typename ExecSpace::memory_space;
  using arena_type = Kokkos::View<T*, memory_space>;
#if defined(KOKKOS_HAS_SHARED_HOST_PINNED_SPACE)
  using host_space = Kokkos::SharedHostPinnedSpace;
#else
  using host_space = Kokkos::HostSpace;
#endif

  ArenaChannel(Transport transport, std::size_t reserve)
      : staged_(transport == Transport::staged ||
                (transport == Transport::automatic && !mpi_reads(memory_space{}))) {
    if (staged_) buffer(reserve);
  }
  bool staged() const { return staged_; }

  void allreduce(Communicator const& comm, ExecSpace const& exec, arena_type const& arena) {
    std::size_t const n = arena.extent(0);
    exec.fence("ktnn::mpi::allreduce");  // MPI does not wait for the device
    if (!staged_) return comm.allreduce_sum(arena.data(), n);
    auto const host = buffer(n);
    Kokkos::deep_copy(exec, host, arena);
    exec.fence("ktnn::mpi::allreduce::stage");
    comm.allreduce_sum(host.data(), n);
    Kokkos::deep_copy(exec, arena, host);
  }

  void broadcast(Communicator const& comm, ExecSpace const& exec, arena_type const& arena,
                 int root) {
    std::size_t const n = arena.extent(0);
    exec.fence("ktnn::mpi::broadcast");
    if (!staged_) return comm.broadcast(arena.data(), n, root);
    auto const host = buffer(n);
    Kokkos::deep_copy(exec, host, arena);
    exec.fence("ktnn::mpi::broadcast::stage");
    comm.broadcast(host.data(), n, root);
    Kokkos::deep_copy(exec, arena, host);
    exec.fence("ktnn::mpi::broadcast::unstage");
  }

 private:
  Kokkos::View<T*, host_space> buffer(std::size_t n) {
    if (host_.extent(0) < n)
      host_ = Kokkos::View<T*, host_space>(
          Kokkos::view_alloc(Kokkos::WithoutInitializing, "ktnn::mpi::staging"), n);
    return Kokkos::subview(host_, std::make_pair(std::size_t(0), n));
  }

  bool staged_;
  Kokkos::View<T*, host_space> host_;
};

}  // namespace detail
}  // namespace ktnn::mpi

#pragma once
/// \file Elementwise loops over long arrays (optimizer steps, fills).
///
/// The body is a range functor f(begin, end) that loops itself, through a
/// function with restrict-qualified pointer parameters. On host spaces each work item takes a
/// chunk, so the compiler sees a plain loop over non-aliasing arrays and vectorizes it (a per-index
/// lambda reloads every captured View after each store and stays scalar). On devices each work item
/// takes one index, so neighbouring threads touch neighbouring elements.

#include <Kokkos_Core.hpp>

#include <cstddef>
#include <type_traits>

namespace ktnn::ops {

namespace detail {
template <class ExecSpace>
inline constexpr bool is_host_space =
    Kokkos::SpaceAccessibility<Kokkos::HostSpace, typename ExecSpace::memory_space>::accessible &&
    !std::is_same_v<typename ExecSpace::memory_space, Kokkos::SharedSpace>;
}  // namespace detail

/// Calls f(begin, end) over disjoint ranges that cover [0, n).
template <class ExecSpace, class RangeFunctor>
void for_each_range(ExecSpace const& exec, char const* label, std::size_t n,
                    RangeFunctor const& f) {
  if (n == 0) return;
  if constexpr (detail::is_host_space<ExecSpace>) {
    constexpr std::size_t chunk = 4096;
    std::size_t const chunks = (n + chunk - 1) / chunk;
    Kokkos::parallel_for(
        label, Kokkos::RangePolicy<ExecSpace>(exec, 0, chunks), KOKKOS_LAMBDA(std::size_t c) {
          std::size_t const begin = c * chunk;
          f(begin, begin + chunk < n ? begin + chunk : n);
        });
  } else {
    Kokkos::parallel_for(
        label, Kokkos::RangePolicy<ExecSpace>(exec, 0, n),
        KOKKOS_LAMBDA(std::size_t i) { f(i, i + 1); });
  }
}

namespace detail {
template <class T>
KOKKOS_INLINE_FUNCTION void fill_range(T* KOKKOS_RESTRICT x, std::size_t begin, std::size_t end,
                                       T const value) {
  for (std::size_t i = begin; i < end; ++i) x[i] = value;
}
}  // namespace detail

/// x[i] = value for every i, vectorized on the host.
template <class ExecSpace, class T>
void fill(ExecSpace const& exec, char const* label, T* x, std::size_t n, T value) {
  for_each_range(
      exec, label, n, KOKKOS_LAMBDA(std::size_t begin, std::size_t end) {
        detail::fill_range(x, begin, end, value);
      });
}

}  // namespace ktnn::ops

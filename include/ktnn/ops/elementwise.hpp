#pragma once
/// \file Elementwise loops over long arrays (optimizer steps, fills).
///
/// The body is a range functor f(begin, end) that loops itself, through a
/// function with restrict-qualified pointer parameters. On host spaces each work item takes a
/// chunk, so the compiler sees a plain loop over non-aliasing arrays and vectorizes it (a per-index
/// lambda reloads every captured View after each store and stays scalar). On devices each work item
/// takes a short run (one element by default), so neighbouring threads touch neighbouring elements.

#include <ktnn/core/kernel_linkage.hpp>
#include <ktnn/ops/space.hpp>

#include <Kokkos_Core.hpp>

#include <cstddef>
#include <cstdint>

namespace ktnn::ops {

/// Calls f(begin, end) over disjoint ranges that cover [0, n). On devices a
/// work item takes `DeviceRun` consecutive elements (default 1); a longer run
/// puts more independent loads in flight per thread, which the bench/ stream
/// cases compare with Kokkos::deep_copy on a GPU.
template <int DeviceRun = 1, class ExecSpace, class RangeFunctor,
          class KtnnTU = ::ktnn::detail::ThisTU>
void for_each_range(ExecSpace const& exec, char const* label, std::size_t n,
                    RangeFunctor const& f) {
  static_assert(DeviceRun >= 1, "ktnn::ops::for_each_range: DeviceRun must be positive");
  if (n == 0) return;
  constexpr std::size_t chunk = device_kernels<ExecSpace> ? DeviceRun : 4096;
  std::size_t const chunks = (n + chunk - 1) / chunk;
  Kokkos::parallel_for(
      label, Kokkos::RangePolicy<ExecSpace>(exec, 0, chunks), KOKKOS_LAMBDA(std::size_t c) {
        std::size_t const begin = c * chunk;
        f(begin, begin + chunk < n ? begin + chunk : n);
      });
}

/// Calls f(i, j) for every element of a rows x cols matrix. Indices are
/// 64-bit, so batch * features past 2^31 is safe; every elementwise pass over
/// a batch goes through here. Host spaces take a row per work item (the inner
/// loop over columns vectorizes and needs no division); devices take an
/// element per thread, so neighbouring threads touch neighbouring elements.
template <class ExecSpace, class ElementFunctor, class KtnnTU = ::ktnn::detail::ThisTU>
void for_each_element(ExecSpace const& exec, char const* label, std::size_t rows, std::size_t cols,
                      ElementFunctor const& f) {
  if (rows == 0 || cols == 0) return;
  if constexpr (device_kernels<ExecSpace>) {
    Kokkos::parallel_for(
        label,
        Kokkos::RangePolicy<ExecSpace, Kokkos::IndexType<std::int64_t>>(exec, 0,
                                                                        std::int64_t(rows * cols)),
        KOKKOS_LAMBDA(std::int64_t e) {
          std::size_t const i = std::size_t(e) / cols;
          f(i, std::size_t(e) - i * cols);
        });
  } else {
    Kokkos::parallel_for(
        label, Kokkos::RangePolicy<ExecSpace, Kokkos::IndexType<std::int64_t>>(exec, 0, rows),
        KOKKOS_LAMBDA(std::int64_t i) {
          for (std::size_t j = 0; j < cols; ++j) f(std::size_t(i), j);
        });
  }
}

}  // namespace ktnn::ops

namespace ktnn::detail {
template <class T>
KOKKOS_INLINE_FUNCTION void fill_range(T* KOKKOS_RESTRICT x, std::size_t begin, std::size_t end,
                                       T const value) {
  for (std::size_t i = begin; i < end; ++i) x[i] = value;
}
}  // namespace ktnn::detail

namespace ktnn::ops {

/// x[i] = value for every i, vectorized on the host.
template <class ExecSpace, class T, class KtnnTU = ::ktnn::detail::ThisTU>
void fill(ExecSpace const& exec, char const* label, T* x, std::size_t n, T value) {
  for_each_range(
      exec, label, n, KOKKOS_LAMBDA(std::size_t begin, std::size_t end) {
        detail::fill_range(x, begin, end, value);
      });
}

}  // namespace ktnn::ops

#pragma once
/// \file Elementwise loops over long arrays (optimizer steps, fills).
///
/// The body is a range functor f(begin, end) that loops itself, through a
/// function with restrict-qualified pointer parameters. On host spaces each work item takes a
/// chunk, so the compiler sees a plain loop over non-aliasing arrays and vectorizes it (a per-index
/// lambda reloads every captured View after each store and stays scalar). On devices each work item
/// takes a short run (one element by default), so neighbouring threads touch neighbouring elements.

#include <ktnn/ops/space.hpp>

#include <Kokkos_Core.hpp>

#include <cstddef>
#include <cstdint>

namespace ktnn::detail {
/// Work item c of ops::for_each_range: elements [c * Chunk, c * Chunk + Chunk), cut at n.
template <std::size_t Chunk, class RangeFunctor>
struct ForEachRange {
  RangeFunctor f;
  std::size_t n;
  KOKKOS_FUNCTION void operator()(std::size_t c) const {
    std::size_t const begin = c * Chunk;
    f(begin, begin + Chunk < n ? begin + Chunk : n);
  }
};

/// The work items of ops::for_each_element: an element each (devices) or a
/// row each (host spaces).
template <class ElementFunctor>
struct ForEachElement {
  struct PerElement {};
  struct PerRow {};
  ElementFunctor f;
  std::size_t cols;
  KOKKOS_FUNCTION void operator()(PerElement, std::int64_t e) const {
    std::size_t const i = std::size_t(e) / cols;
    f(i, std::size_t(e) - i * cols);
  }
  KOKKOS_FUNCTION void operator()(PerRow, std::int64_t i) const {
    for (std::size_t j = 0; j < cols; ++j) f(std::size_t(i), j);
  }
};
}  // namespace ktnn::detail

namespace ktnn::ops {

/// Calls f(begin, end) over disjoint ranges that cover [0, n). On devices a
/// work item takes `DeviceRun` consecutive elements (default 1); a longer run
/// puts more independent loads in flight per thread, which the bench/ stream
/// cases compare with Kokkos::deep_copy on a GPU.
template <int DeviceRun = 1, class ExecSpace, class RangeFunctor>
void for_each_range(ExecSpace const& exec, char const* label, std::size_t n,
                    RangeFunctor const& f) {
  static_assert(DeviceRun >= 1, "ktnn::ops::for_each_range: DeviceRun must be positive");
  if (n == 0) return;
  constexpr std::size_t chunk = device_kernels<ExecSpace> ? DeviceRun : 4096;
  std::size_t const chunks = (n + chunk - 1) / chunk;
  Kokkos::parallel_for(label, Kokkos::RangePolicy<ExecSpace>(exec, 0, chunks),
                       detail::ForEachRange<chunk, RangeFunctor>{.f = f, .n = n});
}

/// Calls f(i, j) for every element of a rows x cols matrix. Indices are
/// 64-bit, so batch * features past 2^31 is safe; every elementwise pass over
/// a batch goes through here. Host spaces take a row per work item (the inner
/// loop over columns vectorizes and needs no division); devices take an
/// element per thread, so neighbouring threads touch neighbouring elements.
template <class ExecSpace, class ElementFunctor>
void for_each_element(ExecSpace const& exec, char const* label, std::size_t rows, std::size_t cols,
                      ElementFunctor const& f) {
  if (rows == 0 || cols == 0) return;
  using Kernel = detail::ForEachElement<ElementFunctor>;
  using Index = Kokkos::IndexType<std::int64_t>;
  Kernel const kernel{.f = f, .cols = cols};
  if constexpr (device_kernels<ExecSpace>) {
    Kokkos::parallel_for(label,
                         Kokkos::RangePolicy<ExecSpace, Index, typename Kernel::PerElement>(
                             exec, 0, std::int64_t(rows * cols)),
                         kernel);
  } else {
    Kokkos::parallel_for(
        label,
        Kokkos::RangePolicy<ExecSpace, Index, typename Kernel::PerRow>(exec, 0, std::int64_t(rows)),
        kernel);
  }
}

}  // namespace ktnn::ops

namespace ktnn::detail {
template <class T>
KOKKOS_INLINE_FUNCTION void fill_range(T* KOKKOS_RESTRICT x, std::size_t begin, std::size_t end,
                                       T const value) {
  for (std::size_t i = begin; i < end; ++i) x[i] = value;
}

/// The range body of ops::fill.
template <class T>
struct FillRange {
  T* x;
  T value;
  KOKKOS_FUNCTION void operator()(std::size_t begin, std::size_t end) const {
    fill_range(x, begin, end, value);
  }
};
}  // namespace ktnn::detail

namespace ktnn::ops {

/// x[i] = value for every i, vectorized on the host.
template <class ExecSpace, class T>
void fill(ExecSpace const& exec, char const* label, T* x, std::size_t n, T value) {
  for_each_range(exec, label, n, detail::FillRange<T>{.x = x, .value = value});
}

}  // namespace ktnn::ops

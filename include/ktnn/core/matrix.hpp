#pragma once
/// \file Matrix<T>: a strided matrix reference used inside kernels, a pointer,
/// two extents and two strides. Views are checked and converted to it at the
/// public entry points; kernels and layers take it by value, so it is valid on
/// every backend. Indices are 64-bit, so a batch of many wide rows is safe.

#include <Kokkos_Core.hpp>

#include <cstddef>
#include <type_traits>

namespace ktnn {

template <class T>
struct Matrix {
  T* data = nullptr;
  int rows = 0;
  int cols = 0;
  std::ptrdiff_t row_stride = 0;
  std::ptrdiff_t col_stride = 1;

  KOKKOS_INLINE_FUNCTION T& operator()(std::ptrdiff_t i, std::ptrdiff_t j) const {
    return data[i * row_stride + j * col_stride];
  }
  KOKKOS_INLINE_FUNCTION T* row(std::ptrdiff_t i) const { return data + i * row_stride; }
  KOKKOS_INLINE_FUNCTION Matrix transposed() const {
    return {data, cols, rows, col_stride, row_stride};
  }
  /// A read-only view of the same matrix. A template, so Matrix<T const>
  /// declares no conversion to its own type: nvcc warns (#554-D) about a
  /// non-template one even when a requires-clause disables it.
  template <class U>
    requires(std::is_same_v<U, T const> && !std::is_const_v<T>)
  KOKKOS_INLINE_FUNCTION operator Matrix<U>() const {
    return {data, rows, cols, row_stride, col_stride};
  }
  KOKKOS_INLINE_FUNCTION bool empty() const { return data == nullptr; }
};

/// A row-major matrix over `n` contiguous rows of width `cols`.
template <class T>
KOKKOS_INLINE_FUNCTION Matrix<T> row_major(T* data, int rows, int cols) {
  return {data, rows, cols, cols, 1};
}

/// The matrix a rank-2 View describes (any layout), without copying.
template <class View>
Matrix<typename View::value_type> as_matrix(View const& v) {
  static_assert(View::rank() == 2, "ktnn: expected a rank-2 View (batch, features)");
  return {v.data(), static_cast<int>(v.extent(0)), static_cast<int>(v.extent(1)),
          static_cast<std::ptrdiff_t>(v.stride(0)), static_cast<std::ptrdiff_t>(v.stride(1))};
}

}  // namespace ktnn

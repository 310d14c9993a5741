#pragma once
/// \file Portable matrix product C = epilogue(A * B) over Kokkos.
///
/// The product is cut into MR x NR tiles of C; one work item computes one tile
/// with its accumulators in registers, reading a column strip of A (any
/// strides, so transposes are free) and a row panel of B (rows contiguous).
/// Work items walk down a B panel before moving to the next, so the panel stays
/// in cache. The epilogue sees each finished element once: it stores it, and
/// may add a bias, apply an activation or accumulate (beta = 1).

#include <ktnn/core/error.hpp>
#include <ktnn/detail/matrix.hpp>

#include <Kokkos_Core.hpp>

#include <type_traits>

#if defined(KTNN_ENABLE_BLAS)
#include <cblas.h>
#endif

namespace ktnn::ops {

/// Register tile of the portable GEMM: MR rows x NR columns of C per work item.
/// On host spaces it follows the vector width the compiler targets, two vector
/// registers wide per row. On devices it is fixed: the host computes the tile
/// count that the device kernel covers, so the tile must not hang on
/// host-compiler flags (-march reaches nvcc's device pass only when forwarded
/// with -Xcompiler), and a 2 x 4-vector host tile would spill GPU registers.
template <class T, class ExecSpace = Kokkos::DefaultHostExecutionSpace>
struct GemmTile {
  static constexpr bool host =
      Kokkos::SpaceAccessibility<Kokkos::HostSpace, typename ExecSpace::memory_space>::accessible;
#if defined(__AVX512F__)
  static constexpr int host_vector_bytes = 64;
  static constexpr int host_mr = 8;
#elif defined(__AVX__)
  static constexpr int host_vector_bytes = 32;
  static constexpr int host_mr = 6;
#else
  static constexpr int host_vector_bytes = 16;
  static constexpr int host_mr = 4;
#endif
  static constexpr int mr = host ? host_mr : 4;
  static constexpr int nr = host ? 2 * host_vector_bytes / static_cast<int>(sizeof(T)) : 8;
};

/// Epilogue that stores `acc + beta * C`. Every epilogue names the matrix it
/// writes (`output()`), so a vendor BLAS can compute the product there first.
template <class T>
struct StoreScaled {
  detail::Matrix<T> c;
  T beta;
  detail::Matrix<T> output() const { return c; }
  KOKKOS_INLINE_FUNCTION void operator()(int i, int j, T acc) const {
    T& out = c(i, j);
    out = beta == T(0) ? acc : beta * out + acc;
  }
};

namespace detail {

template <int MR, int NR, class T, class Epilogue>
KOKKOS_INLINE_FUNCTION void gemm_full_tile(T const* KOKKOS_RESTRICT a, std::ptrdiff_t a_rs,
                                           std::ptrdiff_t a_cs, T const* KOKKOS_RESTRICT b,
                                           std::ptrdiff_t b_rs, int k_extent, int i0, int j0,
                                           Epilogue const& epilogue) {
  T acc[MR][NR] = {};
  for (int k = 0; k < k_extent; ++k) {
    T const* b_row = b + k * b_rs;
    for (int i = 0; i < MR; ++i) {
      T const a_ik = a[i * a_rs + k * a_cs];
      for (int j = 0; j < NR; ++j) acc[i][j] += a_ik * b_row[j];
    }
  }
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) epilogue(i0 + i, j0 + j, acc[i][j]);
}

/// A tile cut by the edge of C (mr <= MR rows, nr <= NR columns). It runs the
/// same full-width register tile over a zero-padded copy of each B row and
/// zero A values past the edge, so it vectorizes like a full tile (a loop
/// bounded by nr would not), and stores only the mr x nr elements that exist.
template <int MR, int NR, class T, class Epilogue>
KOKKOS_INLINE_FUNCTION void gemm_edge_tile(T const* KOKKOS_RESTRICT a, std::ptrdiff_t a_rs,
                                           std::ptrdiff_t a_cs, T const* KOKKOS_RESTRICT b,
                                           std::ptrdiff_t b_rs, int k_extent, int i0, int j0,
                                           int mr, int nr, Epilogue const& epilogue) {
  T acc[MR][NR] = {};
  for (int k = 0; k < k_extent; ++k) {
    T const* b_row = b + k * b_rs;
    T b_pad[NR];
    for (int j = 0; j < NR; ++j) b_pad[j] = j < nr ? b_row[j] : T(0);
    for (int i = 0; i < MR; ++i) {
      T const a_ik = i < mr ? a[i * a_rs + k * a_cs] : T(0);
      for (int j = 0; j < NR; ++j) acc[i][j] += a_ik * b_pad[j];
    }
  }
  for (int i = 0; i < mr; ++i)
    for (int j = 0; j < nr; ++j) epilogue(i0 + i, j0 + j, acc[i][j]);
}

#if defined(KTNN_ENABLE_BLAS)
/// The vendor-BLAS path (KTNN_ENABLE_BLAS): float and double on host spaces,
/// whose kernels complete before the call returns, so no fence is needed
/// around the BLAS call.
template <class ExecSpace, class T>
inline constexpr bool blas_applies =
    (std::is_same_v<T, float> || std::is_same_v<T, double>) &&
    Kokkos::SpaceAccessibility<Kokkos::HostSpace, typename ExecSpace::memory_space>::accessible;

inline void blas_call(CBLAS_TRANSPOSE ta, int m, int n, int k, float const* a, int lda,
                      float const* b, int ldb, float beta, float* c, int ldc) {
  cblas_sgemm(CblasRowMajor, ta, CblasNoTrans, m, n, k, 1.0f, a, lda, b, ldb, beta, c, ldc);
}
inline void blas_call(CBLAS_TRANSPOSE ta, int m, int n, int k, double const* a, int lda,
                      double const* b, int ldb, double beta, double* c, int ldc) {
  cblas_dgemm(CblasRowMajor, ta, CblasNoTrans, m, n, k, 1.0, a, lda, b, ldb, beta, c, ldc);
}

/// Computes the product with CBLAS into the epilogue's output, then applies
/// the epilogue there (a StoreScaled epilogue maps onto BLAS's beta). Returns
/// false where BLAS cannot take the operands' strides.
template <class ExecSpace, class T, class Epilogue>
bool blas_gemm(ExecSpace const& exec, char const* label, ktnn::detail::Matrix<T const> a,
               ktnn::detail::Matrix<T const> b, Epilogue const& epilogue) {
  auto const c = epilogue.output();
  if (c.col_stride != 1 || b.col_stride != 1) return false;
  int const m = a.rows, k = a.cols;
  // BLAS wants a leading dimension of at least the contiguous extent; a
  // single row or column may carry any stride there.
  auto leading = [](std::ptrdiff_t stride, int extent, int other) {
    int const least = extent > 1 ? extent : 1;
    return other <= 1 && stride < least ? least : int(stride);
  };
  CBLAS_TRANSPOSE ta;
  int lda;
  if (a.col_stride == 1 && (a.row_stride >= (k > 1 ? k : 1) || m <= 1)) {
    ta = CblasNoTrans;
    lda = leading(a.row_stride, k, m);
  } else if (a.row_stride == 1 && (a.col_stride >= (m > 1 ? m : 1) || k <= 1)) {
    ta = CblasTrans;
    lda = leading(a.col_stride, m, k);
  } else {
    return false;
  }
  int const ldb = leading(b.row_stride, b.cols, k);
  if constexpr (std::is_same_v<Epilogue, StoreScaled<T>>) {
    blas_call(ta, m, b.cols, k, a.data, lda, b.data, ldb, epilogue.beta, c.data,
              leading(c.row_stride, b.cols, m));
  } else {
    blas_call(ta, m, b.cols, k, a.data, lda, b.data, ldb, T(0), c.data,
              leading(c.row_stride, b.cols, m));
    int const n = b.cols;
    Kokkos::parallel_for(
        label, Kokkos::RangePolicy<ExecSpace>(exec, 0, m * n), KOKKOS_LAMBDA(int e) {
          int const i = e / n, j = e - (e / n) * n;
          epilogue(i, j, c(i, j));
        });
  }
  return true;
}
#endif

}  // namespace detail

/// C(i, j) = epilogue(i, j, sum_k A(i, k) * B(k, j)) for an M x K matrix A with
/// any strides and a K x N matrix B whose rows are contiguous. With
/// KTNN_ENABLE_BLAS defined, float and double products on host spaces go to
/// CBLAS instead; the portable kernel stays the default.
/// \param label names the kernel for Kokkos Tools.
template <class ExecSpace, class T, class Epilogue>
void gemm(ExecSpace const& exec, char const* label, ktnn::detail::Matrix<T const> a,
          ktnn::detail::Matrix<T const> b, int n_out_rows, int n_out_cols,
          Epilogue const& epilogue) {
  if (a.rows != n_out_rows || b.cols != n_out_cols || a.cols != b.rows)
    ktnn::detail::fail("ktnn::ops::gemm", "cannot multiply ", a.rows, "x", a.cols, " by ", b.rows,
                       "x", b.cols, " into ", n_out_rows, "x", n_out_cols);
  if (b.col_stride != 1)
    ktnn::detail::fail("ktnn::ops::gemm", "B must have contiguous rows (column stride ",
                       b.col_stride, ")");
  int const m = a.rows, n = b.cols, k = a.cols;
  if (m == 0 || n == 0) return;
#if defined(KTNN_ENABLE_BLAS)
  if constexpr (detail::blas_applies<ExecSpace, T>) {
    if (detail::blas_gemm(exec, label, a, b, epilogue)) return;
  }
#endif
  constexpr int MR = GemmTile<T, ExecSpace>::mr;
  constexpr int NR = GemmTile<T, ExecSpace>::nr;
  int const tiles_m = (m + MR - 1) / MR;
  int const tiles_n = (n + NR - 1) / NR;
  Kokkos::parallel_for(
      label, Kokkos::RangePolicy<ExecSpace>(exec, 0, tiles_m * tiles_n), KOKKOS_LAMBDA(int t) {
        int const tj = t / tiles_m;  // consecutive work items share a B panel
        int const ti = t - tj * tiles_m;
        int const i0 = ti * MR, j0 = tj * NR;
        T const* a_strip = a.data + i0 * a.row_stride;
        T const* b_panel = b.data + j0;
        if (i0 + MR <= m && j0 + NR <= n) {
          detail::gemm_full_tile<MR, NR>(a_strip, a.row_stride, a.col_stride, b_panel, b.row_stride,
                                         k, i0, j0, epilogue);
        } else {
          int const mr = m - i0 < MR ? m - i0 : MR;
          int const nr = n - j0 < NR ? n - j0 : NR;
          detail::gemm_edge_tile<MR, NR>(a_strip, a.row_stride, a.col_stride, b_panel, b.row_stride,
                                         k, i0, j0, mr, nr, epilogue);
        }
      });
}

/// C = A * B + beta * C for row-major C.
template <class ExecSpace, class T>
void gemm(ExecSpace const& exec, char const* label, ktnn::detail::Matrix<T const> a,
          ktnn::detail::Matrix<T const> b, ktnn::detail::Matrix<T> c, T beta = T(0)) {
  gemm(exec, label, a, b, c.rows, c.cols, StoreScaled<T>{c, beta});
}

/// B = A^T (B(j, i) = A(i, j)), in 32 x 32 tiles so reads and writes both stay
/// within a few cache lines per work item.
template <class ExecSpace, class T>
void transpose(ExecSpace const& exec, char const* label, ktnn::detail::Matrix<T const> a,
               ktnn::detail::Matrix<T> b) {
  if (a.rows != b.cols || a.cols != b.rows)
    ktnn::detail::fail("ktnn::ops::transpose", "cannot transpose ", a.rows, "x", a.cols, " into ",
                       b.rows, "x", b.cols);
  constexpr int tile = 32;
  int const tiles_i = (a.rows + tile - 1) / tile;
  int const tiles_j = (a.cols + tile - 1) / tile;
  Kokkos::parallel_for(
      label, Kokkos::RangePolicy<ExecSpace>(exec, 0, tiles_i * tiles_j), KOKKOS_LAMBDA(int t) {
        int const i0 = (t / tiles_j) * tile, j0 = (t % tiles_j) * tile;
        int const i1 = i0 + tile < a.rows ? i0 + tile : a.rows;
        int const j1 = j0 + tile < a.cols ? j0 + tile : a.cols;
        for (int i = i0; i < i1; ++i)
          for (int j = j0; j < j1; ++j) b(j, i) = a(i, j);
      });
}

}  // namespace ktnn::ops

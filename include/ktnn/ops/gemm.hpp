#pragma once
/// \file Portable matrix product C = epilogue(A * B) over Kokkos.
///
/// Host spaces: the product is cut into MR x NR tiles of C; one work item
/// computes one tile with its accumulators in registers, reading a column
/// strip of A (any strides, so transposes are free) and a row panel of B (rows
/// contiguous). Work items walk down a B panel before moving to the next, so
/// the panel stays in cache.
///
/// Devices: a team of 256 threads computes a 64 x 64 block of C, staging
/// 16-deep slices of A and B in team scratch memory (any strides for both, so
/// W^T needs no transposed copy); each thread keeps a 4 x 4 tile of
/// accumulators in registers. Where the blocks are too few to fill the device
/// (a weight gradient: small M and N, K = the batch), K is split across teams
/// into a workspace and the slices are summed in a second pass, in a fixed
/// order, so results repeat bit for bit.
///
/// The epilogue sees each finished element once: it stores it, and may add a
/// bias, apply an activation or accumulate (beta = 1).

#include <ktnn/core/error.hpp>
#include <ktnn/core/matrix.hpp>
#include <ktnn/ops/space.hpp>

#include <Kokkos_Core.hpp>

#include <cstddef>
#include <type_traits>

#if defined(KTNN_ENABLE_BLAS)
#include <cblas.h>
#endif

namespace ktnn::ops {

/// The host vector instruction sets the register GEMM is tuned for, as
/// types. Each is defined the same way in every translation unit; which one a
/// unit compiles for (NativeIsa) only picks a default template argument. So a
/// program whose files are built with different -march flags instantiates
/// distinct kernels (ktnn::Model carries the choice in its type) instead of
/// one definition that the linker would pick for all of them.
struct IsaSse2 {
  static constexpr int vector_bytes = 16;
  static constexpr int mr = 4;
  static constexpr char const* name = "sse2";
};
struct IsaAvx2 {
  static constexpr int vector_bytes = 32;
  static constexpr int mr = 6;
  static constexpr char const* name = "avx2";
};
struct IsaAvx512 {
  static constexpr int vector_bytes = 64;
  static constexpr int mr = 8;
  static constexpr char const* name = "avx512";
};
#if defined(__AVX512F__)
using NativeIsa = IsaAvx512;
#elif defined(__AVX__)
using NativeIsa = IsaAvx2;
#else
using NativeIsa = IsaSse2;
#endif

/// Register tile of the host GEMM: MR rows x NR columns of C per work item,
/// two vector registers wide per row (8 x 32 floats with AVX-512). Devices run
/// the team kernel (TeamGemmShape) instead.
template <class T, class Isa = NativeIsa>
struct GemmTile {
  static constexpr int mr = Isa::mr;
  static constexpr int nr = 2 * Isa::vector_bytes / static_cast<int>(sizeof(T));
};

/// Epilogue that stores `acc + beta * C`. Every epilogue names the matrix it
/// writes (`output()`), so a vendor BLAS can compute the product there first.
template <class T>
struct StoreScaled {
  Matrix<T> c;
  T beta;
  Matrix<T> output() const { return c; }
  KOKKOS_INLINE_FUNCTION void operator()(int i, int j, T acc) const {
    T& out = c(i, j);
    out = beta == T(0) ? acc : beta * out + acc;
  }
};

/// Shape of the device kernel: a BM x BN block of C per team, BK-deep slices
/// of A and B in scratch, a TM x TN accumulator tile per thread. A thread's
/// rows and columns are strided by the thread grid (row ty + r * 16, column
/// tx + c * 16), so neighbouring threads read neighbouring scratch words and
/// write neighbouring elements of C.
struct TeamGemmShape {
  static constexpr int bm = 64, bn = 64, bk = 16, tm = 4, tn = 4;
  static constexpr int threads_m = bm / tm, threads_n = bn / tn;
  static constexpr int threads = threads_m * threads_n;
  static constexpr int a_pitch = bm + 1;  // padding breaks scratch bank conflicts
  template <class T>
  static constexpr std::size_t scratch_bytes = sizeof(T) * (bk * a_pitch + bk * bn);
};

/// Scratch for the split-K product: `size` elements of T in the space's memory.
template <class T>
struct Workspace {
  T* data = nullptr;
  std::size_t size = 0;
};

}  // namespace ktnn::ops

namespace ktnn::detail {

/// How many K slices the device kernel cuts a product into: enough teams to
/// fill the device where the blocks of C are fewer, each slice at least 64
/// deep, at most 256 slices (a 64 x 64 weight gradient at batch 262,144
/// then runs 256 teams, about two per multiprocessor of an H100).
template <class ExecSpace>
int gemm_k_splits(ExecSpace const& exec, int m, int n, int k) {
  using S = ops::TeamGemmShape;
  int const blocks = ((m + S::bm - 1) / S::bm) * ((n + S::bn - 1) / S::bn);
  int const target = ops::device_team_target(exec);
  if (blocks == 0 || blocks >= target) return 1;
  int splits = (target + blocks - 1) / blocks;
  int const deepest = k / (4 * S::bk);
  if (splits > deepest) splits = deepest;
  if (splits > 256) splits = 256;
  return splits > 1 ? splits : 1;
}

/// One team's block of C over K slice `split`. TeamSize threads share the
/// block's 256 thread tiles (one each on a GPU); with split-K the raw sums go
/// to `partials` (split, i, j) and the epilogue waits for the second pass.
template <class ExecSpace, class T, class Epilogue, int TeamSize>
struct TeamGemm {
  using S = ops::TeamGemmShape;
  using member_type = typename Kokkos::TeamPolicy<ExecSpace>::member_type;
  static_assert(S::threads % TeamSize == 0);
  static constexpr int per_thread = S::threads / TeamSize;

  Matrix<T const> a, b;
  int m, n, k, blocks_m, blocks, splits, slice;
  T* partials;
  Epilogue epilogue;

  KOKKOS_INLINE_FUNCTION void operator()(member_type const& team) const {
    int const split = team.league_rank() / blocks;
    int const block = team.league_rank() - split * blocks;
    int const bj = block / blocks_m;  // neighbouring teams share a panel of B
    int const i0 = (block - bj * blocks_m) * S::bm, j0 = bj * S::bn;
    int const k_begin = split * slice;
    int const k_end = k_begin + slice < k ? k_begin + slice : k;
    T* as = static_cast<T*>(team.team_shmem().get_shmem(sizeof(T) * S::bk * S::a_pitch));
    T* bs = static_cast<T*>(team.team_shmem().get_shmem(sizeof(T) * S::bk * S::bn));
    int const rank = team.team_rank();
    // Loads run along whichever index is contiguous in memory (coalesced).
    bool const a_along_k = a.col_stride == 1;
    bool const b_along_j = b.col_stride == 1;
    T acc[per_thread][S::tm][S::tn] = {};
    for (int k0 = k_begin; k0 < k_end; k0 += S::bk) {
      for (int e = rank; e < S::bm * S::bk; e += TeamSize) {
        int const i = a_along_k ? e / S::bk : e % S::bm;
        int const kk = a_along_k ? e % S::bk : e / S::bm;
        int const gi = i0 + i, gk = k0 + kk;
        as[kk * S::a_pitch + i] = gi < m && gk < k_end ? a(gi, gk) : T(0);
      }
      for (int e = rank; e < S::bk * S::bn; e += TeamSize) {
        int const j = b_along_j ? e % S::bn : e / S::bk;
        int const kk = b_along_j ? e / S::bn : e % S::bk;
        int const gj = j0 + j, gk = k0 + kk;
        bs[kk * S::bn + j] = gj < n && gk < k_end ? b(gk, gj) : T(0);
      }
      team.team_barrier();
      for (int v = 0; v < per_thread; ++v) {
        int const t = rank + v * TeamSize;
        int const ty = t / S::threads_n, tx = t - ty * S::threads_n;
        for (int kk = 0; kk < S::bk; ++kk) {
          T ar[S::tm], br[S::tn];
          for (int r = 0; r < S::tm; ++r) ar[r] = as[kk * S::a_pitch + ty + r * S::threads_m];
          for (int c = 0; c < S::tn; ++c) br[c] = bs[kk * S::bn + tx + c * S::threads_n];
          for (int r = 0; r < S::tm; ++r)
            for (int c = 0; c < S::tn; ++c) acc[v][r][c] += ar[r] * br[c];
        }
      }
      team.team_barrier();
    }
    for (int v = 0; v < per_thread; ++v) {
      int const t = rank + v * TeamSize;
      int const ty = t / S::threads_n, tx = t - ty * S::threads_n;
      for (int r = 0; r < S::tm; ++r)
        for (int c = 0; c < S::tn; ++c) {
          int const i = i0 + ty + r * S::threads_m, j = j0 + tx + c * S::threads_n;
          if (i >= m || j >= n) continue;
          if (splits > 1)
            partials[(std::size_t(split) * m + i) * n + j] = acc[v][r][c];
          else
            epilogue(i, j, acc[v][r][c]);
        }
    }
  }
};

/// The second pass of split-K: element e of C is the sum of its slices, in
/// slice order, through the epilogue.
template <class T, class Epilogue>
struct SumSlices {
  T const* partials;
  int m, n, splits;
  Epilogue epilogue;
  KOKKOS_INLINE_FUNCTION void operator()(std::size_t e) const {
    int const i = int(e / n), j = int(e - std::size_t(i) * n);
    T sum = partials[e];
    for (int s = 1; s < splits; ++s) sum += partials[std::size_t(s) * m * n + e];
    epilogue(i, j, sum);
  }
};

/// The device product: one launch, or two with split-K (slices, then their
/// sum in slice order through the epilogue).
template <class ExecSpace, class T, class Epilogue>
void team_gemm(ExecSpace const& exec, char const* label, Matrix<T const> a, Matrix<T const> b,
               Epilogue const& epilogue, ops::Workspace<T> work) {
  using S = ops::TeamGemmShape;
  constexpr int team_size = ops::device_team_size<ExecSpace>;
  int const m = a.rows, n = b.cols, k = a.cols;
  int const blocks_m = (m + S::bm - 1) / S::bm;
  int const blocks = blocks_m * ((n + S::bn - 1) / S::bn);
  int splits = gemm_k_splits(exec, m, n, k);
  if (std::size_t(splits) * m * n > work.size) splits = 1;
  int const slice = splits > 1 ? ((k + splits - 1) / splits + S::bk - 1) / S::bk * S::bk : k;
  if (splits > 1) splits = (k + slice - 1) / slice;  // rounding the slice up may leave fewer
  TeamGemm<ExecSpace, T, Epilogue, team_size> kernel{
      a, b, m, n, k, blocks_m, blocks, splits, slice, work.data, epilogue};
  Kokkos::TeamPolicy<ExecSpace> policy(exec, blocks * splits, team_size);
  Kokkos::parallel_for(label, policy.set_scratch_size(0, Kokkos::PerTeam(S::scratch_bytes<T>)),
                       kernel);
  if (splits == 1) return;
  Kokkos::parallel_for(
      "ktnn::ops::gemm::sum_slices", Kokkos::RangePolicy<ExecSpace>(exec, 0, std::size_t(m) * n),
      SumSlices<T, Epilogue>{
          .partials = work.data, .m = m, .n = n, .splits = splits, .epilogue = epilogue});
}

}  // namespace ktnn::detail

namespace ktnn::ops {

/// Workspace elements a product of these sizes can use on `exec` (0 on host
/// spaces and where K is not split). Pass at least this much to gemm() for
/// the split-K path; with less the product runs unsplit.
template <class ExecSpace>
std::size_t gemm_workspace_size(ExecSpace const& exec, int m, int n, int k) {
  if constexpr (!device_kernels<ExecSpace>) {
    (void)exec, (void)m, (void)n, (void)k;
    return 0;
  } else {
    int const splits = detail::gemm_k_splits(exec, m, n, k);
    return splits > 1 ? std::size_t(splits) * m * n : 0;
  }
}

}  // namespace ktnn::ops

/// Marks the register tile's innermost loop (over NR columns) for
/// vectorization where OpenMP's simd pragma is understood. Without it GCC
/// fully unrolls a double tile's 16 columns and vectorizes across its rows
/// instead (strided), which ran the double products several times slower
/// than float per element.
#if defined(_OPENMP) && !defined(__CUDA_ARCH__) && !defined(__HIP_DEVICE_COMPILE__)
#define KTNN_IMPL_SIMD_LOOP _Pragma("omp simd")
#else
#define KTNN_IMPL_SIMD_LOOP
#endif

namespace ktnn::detail {

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
      KTNN_IMPL_SIMD_LOOP
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
      KTNN_IMPL_SIMD_LOOP
      for (int j = 0; j < NR; ++j) acc[i][j] += a_ik * b_pad[j];
    }
  }
  for (int i = 0; i < mr; ++i)
    for (int j = 0; j < nr; ++j) epilogue(i0 + i, j0 + j, acc[i][j]);
}

/// The MR x NR tile of C at (i0, j0): the full register tile, or the edge
/// form where the tile crosses the edge of C.
template <int MR, int NR, class T, class Epilogue>
KOKKOS_INLINE_FUNCTION void gemm_tile(Matrix<T const> const& a, Matrix<T const> const& b, int i0,
                                      int j0, Epilogue const& epilogue) {
  int const m = a.rows, n = b.cols, k = a.cols;
  T const* a_strip = a.data + i0 * a.row_stride;
  T const* b_panel = b.data + j0;
  if (i0 + MR <= m && j0 + NR <= n) {
    gemm_full_tile<MR, NR>(a_strip, a.row_stride, a.col_stride, b_panel, b.row_stride, k, i0, j0,
                           epilogue);
  } else {
    int const mr = m - i0 < MR ? m - i0 : MR;
    int const nr = n - j0 < NR ? n - j0 : NR;
    gemm_edge_tile<MR, NR>(a_strip, a.row_stride, a.col_stride, b_panel, b.row_stride, k, i0, j0,
                           mr, nr, epilogue);
  }
}

/// The host kernel: one MR x NR register tile of C per work item.
template <int MR, int NR, class T, class Epilogue>
struct RegisterGemm {
  Matrix<T const> a, b;
  int tiles_m;
  Epilogue epilogue;
  KOKKOS_INLINE_FUNCTION void operator()(int t) const {
    int const tj = t / tiles_m;  // consecutive work items share a B panel
    int const ti = t - tj * tiles_m;
    gemm_tile<MR, NR>(a, b, ti * MR, tj * NR, epilogue);
  }
};

template <int MR, int NR, class ExecSpace, class T, class Epilogue>
void register_gemm(ExecSpace const& exec, char const* label, Matrix<T const> a, Matrix<T const> b,
                   Epilogue const& epilogue) {
  int const tiles_m = (a.rows + MR - 1) / MR;
  int const tiles_n = (b.cols + NR - 1) / NR;
  Kokkos::parallel_for(
      label, Kokkos::RangePolicy<ExecSpace>(exec, 0, tiles_m * tiles_n),
      RegisterGemm<MR, NR, T, Epilogue>{.a = a, .b = b, .tiles_m = tiles_m, .epilogue = epilogue});
}

/// The host kernel's tiles run one after another by the calling thread: the
/// product of one sample inside a work item that also prepares its operands
/// (a convolution's im2col), so they stay in that core's cache. Panels of B
/// outermost, as in register_gemm.
template <int MR, int NR, class T, class Epilogue>
KOKKOS_INLINE_FUNCTION void serial_gemm(Matrix<T const> a, Matrix<T const> b,
                                        Epilogue const& epilogue) {
  for (int j0 = 0; j0 < b.cols; j0 += NR)
    for (int i0 = 0; i0 < a.rows; i0 += MR) gemm_tile<MR, NR>(a, b, i0, j0, epilogue);
}

#if defined(KTNN_ENABLE_BLAS)
/// The vendor-BLAS path (KTNN_ENABLE_BLAS): float and double on host spaces,
/// whose kernels complete before the call returns, so no fence is needed
/// around the BLAS call.
template <class ExecSpace, class T>
inline constexpr bool blas_applies =
    (std::is_same_v<T, float> || std::is_same_v<T, double>) && ops::is_host_space<ExecSpace>;

inline void blas_call(CBLAS_TRANSPOSE ta, int m, int n, int k, float const* a, int lda,
                      float const* b, int ldb, float beta, float* c, int ldc) {
  cblas_sgemm(CblasRowMajor, ta, CblasNoTrans, m, n, k, 1.0f, a, lda, b, ldb, beta, c, ldc);
}
inline void blas_call(CBLAS_TRANSPOSE ta, int m, int n, int k, double const* a, int lda,
                      double const* b, int ldb, double beta, double* c, int ldc) {
  cblas_dgemm(CblasRowMajor, ta, CblasNoTrans, m, n, k, 1.0, a, lda, b, ldb, beta, c, ldc);
}

/// The epilogue applied in place to a product BLAS wrote into its output `c`.
template <class Output, class Epilogue>
struct EpilogueInPlace {
  Output c;
  int n;
  Epilogue epilogue;
  KOKKOS_INLINE_FUNCTION void operator()(int e) const {
    int const i = e / n, j = e - (e / n) * n;
    epilogue(i, j, c(i, j));
  }
};

/// Computes the product with CBLAS into the epilogue's output, then applies
/// the epilogue there (a StoreScaled epilogue maps onto BLAS's beta). Returns
/// false where BLAS cannot take the operands' strides.
template <class ExecSpace, class T, class Epilogue>
bool blas_gemm(ExecSpace const& exec, char const* label, Matrix<T const> a, Matrix<T const> b,
               Epilogue const& epilogue) {
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
  if constexpr (std::is_same_v<Epilogue, ops::StoreScaled<T>>) {
    blas_call(ta, m, b.cols, k, a.data, lda, b.data, ldb, epilogue.beta, c.data,
              leading(c.row_stride, b.cols, m));
  } else {
    blas_call(ta, m, b.cols, k, a.data, lda, b.data, ldb, T(0), c.data,
              leading(c.row_stride, b.cols, m));
    int const n = b.cols;
    Kokkos::parallel_for(label, Kokkos::RangePolicy<ExecSpace>(exec, 0, m * n),
                         EpilogueInPlace<std::remove_const_t<decltype(c)>, Epilogue>{
                             .c = c, .n = n, .epilogue = epilogue});
  }
  return true;
}
#endif

}  // namespace ktnn::detail

namespace ktnn::detail {
/// One 32 x 32 tile of ops::transpose per work item.
template <class T>
struct TransposeTiles {
  static constexpr int tile = 32;
  Matrix<T const> a;
  Matrix<T> b;
  int tiles_j;
  KOKKOS_INLINE_FUNCTION void operator()(int t) const {
    int const i0 = (t / tiles_j) * tile, j0 = (t % tiles_j) * tile;
    int const i1 = i0 + tile < a.rows ? i0 + tile : a.rows;
    int const j1 = j0 + tile < a.cols ? j0 + tile : a.cols;
    for (int i = i0; i < i1; ++i)
      for (int j = j0; j < j1; ++j) b(j, i) = a(i, j);
  }
};
}  // namespace ktnn::detail

namespace ktnn::ops {

/// Whether gemm() takes a B of any strides on this space (the device kernel
/// stages B through scratch); host spaces need B's rows contiguous.
template <class ExecSpace>
inline constexpr bool gemm_takes_strided_b = device_kernels<ExecSpace>;

/// C(i, j) = epilogue(i, j, sum_k A(i, k) * B(k, j)) for an M x K matrix A with
/// any strides and a K x N matrix B (rows contiguous on host spaces, any
/// strides on devices). With KTNN_ENABLE_BLAS defined, float and double
/// products on host spaces go to CBLAS instead; the portable kernel stays the
/// default. `work` (see gemm_workspace_size) lets a device split K.
/// \param label names the kernel for Kokkos Tools.
/// \tparam Isa the host register tile (NativeIsa: what this file is compiled for).
template <class Isa = NativeIsa, class ExecSpace, class T, class Epilogue>
void gemm(ExecSpace const& exec, char const* label, Matrix<T const> a, Matrix<T const> b,
          int n_out_rows, int n_out_cols, Epilogue const& epilogue, Workspace<T> work = {}) {
  if (a.rows != n_out_rows || b.cols != n_out_cols || a.cols != b.rows)
    ktnn::detail::fail("ktnn::ops::gemm", "cannot multiply ", a.rows, "x", a.cols, " by ", b.rows,
                       "x", b.cols, " into ", n_out_rows, "x", n_out_cols);
  if (!gemm_takes_strided_b<ExecSpace> && b.col_stride != 1)
    ktnn::detail::fail("ktnn::ops::gemm", "B must have contiguous rows on ", ExecSpace::name(),
                       " (column stride ", b.col_stride, ")");
  int const m = a.rows, n = b.cols;
  if (m == 0 || n == 0) return;
  if constexpr (device_kernels<ExecSpace>) {
    detail::team_gemm(exec, label, a, b, epilogue, work);
    return;
  } else {
    (void)work;
#if defined(KTNN_ENABLE_BLAS)
    if constexpr (detail::blas_applies<ExecSpace, T>) {
      if (detail::blas_gemm(exec, label, a, b, epilogue)) return;
    }
#endif
    constexpr int MR = GemmTile<T, Isa>::mr;
    constexpr int NR = GemmTile<T, Isa>::nr;
    detail::register_gemm<MR, NR>(exec, label, a, b, epilogue);
  }
}

/// C = A * B + beta * C for row-major C.
template <class Isa = NativeIsa, class ExecSpace, class T>
void gemm(ExecSpace const& exec, char const* label, Matrix<T const> a, Matrix<T const> b,
          Matrix<T> c, T beta = T(0), Workspace<T> work = {}) {
  gemm<Isa>(exec, label, a, b, c.rows, c.cols, StoreScaled<T>{c, beta}, work);
}

/// B = A^T (B(j, i) = A(i, j)), in 32 x 32 tiles so reads and writes both stay
/// within a few cache lines per work item.
template <class ExecSpace, class T>
void transpose(ExecSpace const& exec, char const* label, Matrix<T const> a, Matrix<T> b) {
  if (a.rows != b.cols || a.cols != b.rows)
    ktnn::detail::fail("ktnn::ops::transpose", "cannot transpose ", a.rows, "x", a.cols, " into ",
                       b.rows, "x", b.cols);
  using Kernel = ktnn::detail::TransposeTiles<T>;
  int const tiles_i = (a.rows + Kernel::tile - 1) / Kernel::tile;
  int const tiles_j = (a.cols + Kernel::tile - 1) / Kernel::tile;
  Kokkos::parallel_for(label, Kokkos::RangePolicy<ExecSpace>(exec, 0, tiles_i * tiles_j),
                       Kernel{.a = a, .b = b, .tiles_j = tiles_j});
}

}  // namespace ktnn::ops

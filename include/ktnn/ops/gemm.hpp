#pragma once
/// \file Portable matrix product C = epilogue(A * B) over Kokkos.
///
/// Host spaces: the product is cut into MR x NR tiles of C, each computed
/// with its accumulators in registers, reading a column strip of A (any
/// strides, so transposes are free) and a row panel of B. Tiles are ordered
/// so that each operand comes from memory once: along a strip of A where all
/// of B stays in cache; otherwise a work item takes a group of tiles and
/// walks K in blocks, each block of a panel of B first copied into a
/// contiguous buffer (any strides). The kernels are in gemm_host.hpp.
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
#include <ktnn/ops/gemm_host.hpp>
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

namespace ktnn::detail {

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

namespace ktnn::ops {

/// The sizes check of gemm(): A is M x K, B is K x N, C is M x N.
template <class T>
void check_product(char const* label, Matrix<T const> a, Matrix<T const> b, int n_out_rows,
                   int n_out_cols) {
  if (a.rows != n_out_rows || b.cols != n_out_cols || a.cols != b.rows)
    ktnn::detail::fail(label, "cannot multiply ", a.rows, "x", a.cols, " by ", b.rows, "x", b.cols,
                       " into ", n_out_rows, "x", n_out_cols);
}

/// C(i, j) = epilogue(i, j, sum_k A(i, k) * B(k, j)) for an M x K matrix A and
/// a K x N matrix B, each with any strides (on host spaces a B whose rows are
/// not contiguous is packed panel by panel inside the kernel). With
/// KTNN_ENABLE_BLAS defined, float and double products on host spaces go to
/// CBLAS instead; the portable kernel stays the default. `work` (see
/// gemm_workspace_size) lets a device split K.
/// \param label names the kernel for Kokkos Tools.
/// \tparam Isa the host register tile (NativeIsa: what this file is compiled for).
template <class Isa = NativeIsa, class ExecSpace, class T, class Epilogue>
void gemm(ExecSpace const& exec, char const* label, Matrix<T const> a, Matrix<T const> b,
          int n_out_rows, int n_out_cols, Epilogue const& epilogue, Workspace<T> work = {}) {
  check_product("ktnn::ops::gemm", a, b, n_out_rows, n_out_cols);
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
    // The register kernel's blocked plan copies B's panels itself, whatever
    // its strides; its other plans read rows of B in place.
    auto const kernel = detail::register_kernel<MR, NR>(exec.concurrency(), a, b, epilogue, false);
    if (b.col_stride == 1 || kernel.plan.blocked)
      Kokkos::parallel_for(label, Kokkos::RangePolicy<ExecSpace>(exec, 0, kernel.items()), kernel);
    else
      detail::packed_panel_gemm<MR, NR>(exec, label, a, b, epilogue);
  }
}

/// One product of gemm_pair: A, B, the epilogue that writes C, and the label
/// its kernel has where it runs alone.
template <class T, class Epilogue>
struct Product {
  char const* label;
  Matrix<T const> a, b;
  Epilogue epilogue;
};

/// No work before gemm_pair's products.
struct NoLead {
  static constexpr char const* label = "ktnn::ops::no_lead";
  int items = 0;
  KOKKOS_INLINE_FUNCTION void operator()(int) const {}
};

/// Whether gemm_pair runs products with these B operands in one launch on
/// `ExecSpace` (host spaces, both B row-contiguous, no BLAS for T).
template <class ExecSpace, class T>
bool pairs_products(Matrix<T const> const& first_b, Matrix<T const> const& second_b) {
  bool together = !device_kernels<ExecSpace> && first_b.col_stride == 1 && second_b.col_stride == 1;
#if defined(KTNN_ENABLE_BLAS)
  if constexpr (detail::blas_applies<ExecSpace, T>) together = false;
#endif
  return together;
}

/// Two independent products (neither reads what the other writes), after
/// `lead` (`lead.items` work items `lead(i)` that neither product reads or
/// writes): one launch named `label` where pairs_products holds; otherwise
/// the lead under its own label, then each product its own gemm() under its
/// own label, in that order. The results are the same bits either way.
template <class Isa = NativeIsa, class ExecSpace, class T, class FirstEpilogue,
          class SecondEpilogue, class Lead = NoLead>
void gemm_pair(ExecSpace const& exec, char const* label, Product<T, FirstEpilogue> const& first,
               Product<T, SecondEpilogue> const& second, Workspace<T> work = {},
               Lead const& lead = {}) {
  auto const c1 = first.epilogue.output();
  auto const c2 = second.epilogue.output();
  check_product(first.label, first.a, first.b, c1.rows, c1.cols);
  check_product(second.label, second.a, second.b, c2.rows, c2.cols);
  if constexpr (!device_kernels<ExecSpace>) {
    if (pairs_products<ExecSpace>(first.b, second.b)) {
      constexpr int MR = GemmTile<T, Isa>::mr;
      constexpr int NR = GemmTile<T, Isa>::nr;
      using Kernel = detail::RegisterGemmPair<MR, NR, T, FirstEpilogue, SecondEpilogue, Lead>;
      // Each product is planned for its share of the threads, by its
      // multiply-adds (Dense's two products: half each; a first layer's
      // weight gradient alone: all).
      double const work1 = double(c1.rows) * c1.cols * first.a.cols;
      double const work2 = double(c2.rows) * c2.cols * second.a.cols;
      int const threads = exec.concurrency();
      int const threads1 = work1 + work2 > 0 ? int(threads * work1 / (work1 + work2) + 0.5) : 1;
      auto const one =
          detail::register_kernel<MR, NR>(threads1, first.a, first.b, first.epilogue, true);
      auto const two = detail::register_kernel<MR, NR>(threads - threads1, second.a, second.b,
                                                       second.epilogue, true);
      int const total = lead.items + one.items() + two.items();
      // The items differ in cost (a weight gradient's tiles sum over the
      // whole batch, an input gradient's over a layer's width): handed out
      // one at a time, the costly ones first, so no thread gets all of them
      // (a default chunk would hand a thread several of the first). Which
      // thread computes a tile does not change its bits.
      Kokkos::parallel_for(
          label,
          Kokkos::RangePolicy<ExecSpace, Kokkos::Schedule<Kokkos::Dynamic>>(exec, 0, total,
                                                                            Kokkos::ChunkSize(1)),
          Kernel{.lead = lead, .first = one, .second = two, .first_items = one.items()});
      return;
    }
  }
  if (lead.items > 0)
    Kokkos::parallel_for(lead.label, Kokkos::RangePolicy<ExecSpace>(exec, 0, lead.items), lead);
  gemm<Isa>(exec, first.label, first.a, first.b, c1.rows, c1.cols, first.epilogue, work);
  gemm<Isa>(exec, second.label, second.a, second.b, c2.rows, c2.cols, second.epilogue, work);
}

/// C = A * B + beta * C for row-major C.
template <class Isa = NativeIsa, class ExecSpace, class T>
void gemm(ExecSpace const& exec, char const* label, Matrix<T const> a, Matrix<T const> b,
          Matrix<T> c, T beta = T(0), Workspace<T> work = {}) {
  gemm<Isa>(exec, label, a, b, c.rows, c.cols, StoreScaled<T>{c, beta}, work);
}

}  // namespace ktnn::ops

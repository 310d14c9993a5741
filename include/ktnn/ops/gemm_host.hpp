#pragma once
/// \file The host kernels of ops::gemm (gemm.hpp): MR x NR register tiles of
/// C, accumulators in registers, over a strided strip of A and a
/// row-contiguous panel of B; a strided B packed panel by panel inside the
/// kernel; two products (and a lead of other work) in one launch; and the
/// tiles run serially inside a caller's work item (a convolution's im2col).

#include <ktnn/core/matrix.hpp>

#include <Kokkos_Core.hpp>

#include <cstddef>

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

/// The host kernel for a B whose rows are not contiguous (a transposed
/// weight matrix, a LayoutLeft input): a work item per (panel of NR columns
/// of C, run of row tiles) first copies its K x NR panel of B into scratch,
/// zero-padded past the edge, then runs the register tiles over it. The
/// tiles sum in the same order as over a contiguous copy of B, so the
/// result has the same bits as transposing B first, without a launch or a
/// buffer for the copy.
template <int MR, int NR, class ExecSpace, class T, class Epilogue>
struct PackedPanelGemm {
  Matrix<T const> a, b;
  int tiles_m;
  int tiles_per_item;  // row tiles of one work item
  int items_per_panel;
  Epilogue epilogue;
  static std::size_t scratch_bytes(int k) { return sizeof(T) * std::size_t(k) * NR; }
  KOKKOS_INLINE_FUNCTION void operator()(
      typename Kokkos::TeamPolicy<ExecSpace>::member_type const& team) const {
    int const m = a.rows, n = b.cols, k = a.cols;
    int const tj = team.league_rank() / items_per_panel;
    int const part = team.league_rank() - tj * items_per_panel;
    int const j0 = tj * NR;
    int const nr = n - j0 < NR ? n - j0 : NR;
    T* const panel = static_cast<T*>(team.team_scratch(1).get_shmem(scratch_bytes(k)));
    for (int kk = 0; kk < k; ++kk)
      for (int j = 0; j < NR; ++j) panel[std::size_t(kk) * NR + j] = j < nr ? b(kk, j0 + j) : T(0);
    int const first = part * tiles_per_item;
    int const last = first + tiles_per_item < tiles_m ? first + tiles_per_item : tiles_m;
    for (int ti = first; ti < last; ++ti) {
      int const i0 = ti * MR;
      T const* a_strip = a.data + i0 * a.row_stride;
      if (i0 + MR <= m && nr == NR) {
        gemm_full_tile<MR, NR>(a_strip, a.row_stride, a.col_stride, panel, NR, k, i0, j0, epilogue);
      } else {
        int const mr = m - i0 < MR ? m - i0 : MR;
        gemm_edge_tile<MR, NR>(a_strip, a.row_stride, a.col_stride, panel, NR, k, i0, j0, mr, nr,
                               epilogue);
      }
    }
  }
};

/// Runs of row tiles per panel in packed_panel_gemm: enough work items for
/// every thread a few times over, each panel packed once per run.
template <class ExecSpace>
int packed_runs(ExecSpace const& exec, int panels, int tiles_m) {
  int const target = 4 * exec.concurrency();
  int runs = (target + panels - 1) / panels;
  if (runs > tiles_m) runs = tiles_m;
  return runs > 1 ? runs : 1;
}

template <int MR, int NR, class ExecSpace, class T, class Epilogue>
void packed_panel_gemm(ExecSpace const& exec, char const* label, Matrix<T const> a,
                       Matrix<T const> b, Epilogue const& epilogue) {
  using Kernel = PackedPanelGemm<MR, NR, ExecSpace, T, Epilogue>;
  int const tiles_m = (a.rows + MR - 1) / MR;
  int const panels = (b.cols + NR - 1) / NR;
  int const runs = packed_runs(exec, panels, tiles_m);
  int const per_run = (tiles_m + runs - 1) / runs;
  int const items = (tiles_m + per_run - 1) / per_run;
  Kokkos::TeamPolicy<ExecSpace> policy(exec, panels * items, 1);
  Kokkos::parallel_for(label,
                       policy.set_scratch_size(1, Kokkos::PerTeam(Kernel::scratch_bytes(a.cols))),
                       Kernel{.a = a,
                              .b = b,
                              .tiles_m = tiles_m,
                              .tiles_per_item = per_run,
                              .items_per_panel = items,
                              .epilogue = epilogue});
}

/// Two products in one launch on host spaces, after `lead.items` work items
/// of other work (Dense's bias sums): then the first's register tiles, then
/// the second's, each tile computed as register_gemm computes it (the same
/// bits).
template <int MR, int NR, class T, class FirstEpilogue, class SecondEpilogue, class Lead>
struct RegisterGemmPair {
  Lead lead;
  RegisterGemm<MR, NR, T, FirstEpilogue> first;
  RegisterGemm<MR, NR, T, SecondEpilogue> second;
  int first_tiles;
  KOKKOS_INLINE_FUNCTION void operator()(int t) const {
    if (t < lead.items) {
      lead(t);
      return;
    }
    t -= lead.items;
    if (t < first_tiles)
      first(t);
    else
      second(t - first_tiles);
  }
};

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
}  // namespace ktnn::detail

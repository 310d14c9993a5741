#pragma once
/// \file The host kernels of ops::gemm (gemm.hpp): MR x NR register tiles of
/// C, accumulators in registers, over a strided strip of A and a
/// row-contiguous panel of B. Where all of B stays in cache, a work item per
/// tile or per run of tiles along the strips of A; otherwise a work item
/// takes a group of tiles and walks K in blocks, copying each block of a
/// panel of B into a contiguous buffer first (any strides, zero past the
/// edge) and carrying the sums of its tiles from block to block. A strided
/// B that stays in cache is packed inside the kernel; two products (and a
/// lead of other work) run in one launch; and the tiles run serially inside
/// a caller's work item (a convolution's im2col). Every path sums each
/// element of C over K in order, so all give the same bits.

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

/// Keeps a host kernel's heavier path out of line, so its locals do not
/// enlarge the frame of the common path (GCC and Clang).
#if defined(__GNUC__) && !defined(__CUDA_ARCH__) && !defined(__HIP_DEVICE_COMPILE__)
#define KTNN_IMPL_NOINLINE __attribute__((noinline))
#else
#define KTNN_IMPL_NOINLINE
#endif

namespace ktnn::detail {

/// An epilogue that also takes a full row of a tile at once,
/// `row<NR>(i, j0, acc)`: a loop over contiguous columns that the compiler
/// vectorizes where the elementwise form, reading one matrix and writing
/// another through runtime strides, stays scalar (and branches per element).
template <class Epilogue, int NR, class T>
concept RowEpilogue =
    requires(Epilogue const& e, T const (&acc)[NR]) { e.template row<NR>(0, 0, acc); };

/// The epilogue over a full MR x NR tile of accumulators at (i0, j0).
template <int MR, int NR, class T, class Epilogue>
KOKKOS_INLINE_FUNCTION void tile_epilogue(T const (&acc)[MR][NR], int i0, int j0,
                                          Epilogue const& epilogue) {
  if constexpr (RowEpilogue<Epilogue, NR, T>) {
    for (int i = 0; i < MR; ++i) epilogue.template row<NR>(i0 + i, j0, acc[i]);
  } else {
    for (int i = 0; i < MR; ++i)
      for (int j = 0; j < NR; ++j) epilogue(i0 + i, j0 + j, acc[i][j]);
  }
}

/// The sums of a full register tile over k in [k0, k1), added to `acc`: a
/// strip of A (MR rows, any strides) times a panel of B (NR contiguous
/// columns per row, rows b_rs apart). Callers keep `acc` a local array, so
/// the compiler holds it in registers.
template <int MR, int NR, class T>
KOKKOS_INLINE_FUNCTION void full_tile_sums(T const* KOKKOS_RESTRICT a, std::ptrdiff_t a_rs,
                                           std::ptrdiff_t a_cs, T const* KOKKOS_RESTRICT b,
                                           std::ptrdiff_t b_rs, int k0, int k1, T (&acc)[MR][NR]) {
  for (int k = k0; k < k1; ++k) {
    T const* b_row = b + k * b_rs;
    for (int i = 0; i < MR; ++i) {
      T const a_ik = a[i * a_rs + k * a_cs];
      KTNN_IMPL_SIMD_LOOP
      for (int j = 0; j < NR; ++j) acc[i][j] += a_ik * b_row[j];
    }
  }
}

/// The sums of a tile cut by the edge of C (mr <= MR rows, nr <= NR
/// columns): the same full-width register tile over a zero-padded copy of
/// each B row and zero A values past the edge, so it vectorizes like a full
/// tile (a loop bounded by nr would not); only mr x nr of them are results.
template <int MR, int NR, class T>
KOKKOS_INLINE_FUNCTION void edge_tile_sums(T const* KOKKOS_RESTRICT a, std::ptrdiff_t a_rs,
                                           std::ptrdiff_t a_cs, T const* KOKKOS_RESTRICT b,
                                           std::ptrdiff_t b_rs, int k0, int k1, int mr, int nr,
                                           T (&acc)[MR][NR]) {
  for (int k = k0; k < k1; ++k) {
    T const* b_row = b + k * b_rs;
    T b_pad[NR];
    for (int j = 0; j < NR; ++j) b_pad[j] = j < nr ? b_row[j] : T(0);
    for (int i = 0; i < MR; ++i) {
      T const a_ik = i < mr ? a[i * a_rs + k * a_cs] : T(0);
      KTNN_IMPL_SIMD_LOOP
      for (int j = 0; j < NR; ++j) acc[i][j] += a_ik * b_pad[j];
    }
  }
}

template <int MR, int NR, class T, class Epilogue>
KOKKOS_INLINE_FUNCTION void gemm_full_tile(T const* KOKKOS_RESTRICT a, std::ptrdiff_t a_rs,
                                           std::ptrdiff_t a_cs, T const* KOKKOS_RESTRICT b,
                                           std::ptrdiff_t b_rs, int k_extent, int i0, int j0,
                                           Epilogue const& epilogue) {
  T acc[MR][NR] = {};
  full_tile_sums<MR, NR>(a, a_rs, a_cs, b, b_rs, 0, k_extent, acc);
  tile_epilogue<MR, NR>(acc, i0, j0, epilogue);
}

/// A tile cut by the edge of C: edge_tile_sums, then the epilogue on the
/// mr x nr elements that exist.
template <int MR, int NR, class T, class Epilogue>
KOKKOS_INLINE_FUNCTION void gemm_edge_tile(T const* KOKKOS_RESTRICT a, std::ptrdiff_t a_rs,
                                           std::ptrdiff_t a_cs, T const* KOKKOS_RESTRICT b,
                                           std::ptrdiff_t b_rs, int k_extent, int i0, int j0,
                                           int mr, int nr, Epilogue const& epilogue) {
  T acc[MR][NR] = {};
  edge_tile_sums<MR, NR>(a, a_rs, a_cs, b, b_rs, 0, k_extent, mr, nr, acc);
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

/// How the host kernel (RegisterGemm) cuts a product into work items.
struct HostGemmPlan {
  /// Consecutive tiles of C per work item: row tiles of `panels` panels of B
  /// where `blocked`, otherwise tiles of one B panel first (or of one strip
  /// of A, `rows_first`).
  int group = 1;
  /// Blocked: panels of B per work item, and the work items across the rows.
  int panels = 1;
  int groups_m = 1;
  /// Rows of K per block where a work item walks K in blocks (`blocked`).
  int kc = 256;
  /// A work item takes `group` row tiles of `panels` panels of B and walks K
  /// in blocks of kc, copying each block of a panel into a contiguous buffer
  /// before its tiles, the sums of its tiles carried from block to block.
  bool blocked = false;
  /// Consecutive tiles share a strip of A instead of a panel of B: where all
  /// of B stays in cache (a tall product by a layer's weights), so each
  /// strip of A is read from memory once rather than once per panel.
  bool rows_first = false;
};

/// At most this many tiles per blocked work item: their carried sums stay
/// within 24 KiB (64 tiles of 6 x 16 floats, 24 of 8 x 32).
constexpr int host_group_limit(int mr, int nr, std::size_t element_bytes) {
  std::size_t const tiles = (std::size_t(24) << 10) / (std::size_t(mr) * nr * element_bytes);
  return tiles < 1 ? 1 : tiles > 64 ? 64 : int(tiles);
}

/// The deepest block of K a blocked work item copies at once.
inline constexpr int host_block_k = 256;

/// Bytes of B that stay in a core's first-level cache while its tiles walk
/// along a strip of A. Past it, tiles that share a panel of B (which does
/// stay there) are faster (a 256-wide square ran slower walking along A).
inline constexpr std::size_t host_cached_bytes = std::size_t(32) << 10;

/// The plan for an m x n x k product that `threads` threads share. Where all
/// of B stays in cache, a tile (or with `runs` a run of tiles, fewer items
/// for a dynamic schedule to hand out) per item along the strips of A.
/// Otherwise a panel of B read straight from C's operand runs out of cache
/// over a long K, and its rows, a leading dimension apart, fall into few
/// cache sets where that is a multiple of a power of two (1024 or 2048
/// floats): a work item then takes a group of row tiles of a panel and
/// walks K in blocks, copying each block of the panel into a contiguous
/// buffer that stays in the first-level cache while the group's tiles run
/// over it; with several panels per item (a weight gradient: a small C, a
/// long K), each block of A is read from memory once for all of them. The
/// items are as large as the carried sums allow, and smaller where that
/// leaves a thread without one, or the items are few and do not divide
/// evenly among the threads.
inline HostGemmPlan host_gemm_plan(int mr, int nr, int m, int n, int k, int threads,
                                   std::size_t element_bytes, bool runs) {
  HostGemmPlan plan;
  plan.kc = host_block_k;
  if (threads < 1) threads = 1;
  int const tiles_m = (m + mr - 1) / mr;
  int const panels = (n + nr - 1) / nr;
  if (element_bytes * std::size_t(k) * n <= host_cached_bytes) {
    plan.rows_first = true;
    if (runs) {
      int const g = tiles_m * panels / (16 * threads);
      plan.group = g < 1 ? 1 : g > 16 ? 16 : g;
    }
    return plan;
  }
  plan.blocked = true;
  int const limit = host_group_limit(mr, nr, element_bytes);
  int g = tiles_m < limit ? (tiles_m > 0 ? tiles_m : 1) : limit;
  int p = limit / g < panels ? limit / g : panels;
  if (p < 1) p = 1;
  auto items = [&] { return ((tiles_m + g - 1) / g) * ((panels + p - 1) / p); };
  auto too_few = [&] {
    int const n_items = items();
    return n_items < threads || (n_items < 2 * threads && n_items % threads != 0);
  };
  while (too_few() && (p > 1 || g > 1)) {
    if (p > 1)
      p = (p + 1) / 2;
    else
      g = (g + 1) / 2;
  }
  plan.groups_m = tiles_m > 0 ? (tiles_m + g - 1) / g : 1;
  // Groups as even as the tiles allow (22 tiles: 11 and 11).
  plan.group = (tiles_m + plan.groups_m - 1) / plan.groups_m;
  if (plan.group < 1) plan.group = 1;
  int const groups_n = (panels + p - 1) / p;
  plan.panels = groups_n > 0 ? (panels + groups_n - 1) / groups_n : 1;
  return plan;
}

/// The host kernel: MR x NR register tiles of C, `plan.group` tiles per
/// work item; with plan.blocked an item takes row tiles of one or more
/// panels of B and walks K in blocks (the same bits as a tile at a time over
/// the whole K).
template <int MR, int NR, class T, class Epilogue>
struct RegisterGemm {
  Matrix<T const> a, b;
  int tiles_m;
  int tiles;
  HostGemmPlan plan;
  Epilogue epilogue;

  KOKKOS_INLINE_FUNCTION int items() const {
    if (plan.blocked) {
      int const panels = tiles_m > 0 ? tiles / tiles_m : 0;
      return plan.groups_m * ((panels + plan.panels - 1) / plan.panels);
    }
    return (tiles + plan.group - 1) / plan.group;
  }

  KOKKOS_INLINE_FUNCTION void operator()(int item) const {
    if (plan.blocked) {
      blocked_k(item);
      return;
    }
    int const first = item * plan.group;
    int const count = tiles - first < plan.group ? tiles - first : plan.group;
    int const tiles_n = tiles / tiles_m;
    for (int t = first; t < first + count; ++t) {
      if (plan.rows_first) {
        int const ti = t / tiles_n;
        gemm_tile<MR, NR>(a, b, ti * MR, (t - ti * tiles_n) * NR, epilogue);
      } else {
        int const tj = t / tiles_m;
        gemm_tile<MR, NR>(a, b, (t - tj * tiles_m) * MR, tj * NR, epilogue);
      }
    }
  }

  /// The blocked work item: kept out of line, so that its buffers do not
  /// enlarge the frame of every other work item (which ran slower with them).
  KOKKOS_FUNCTION KTNN_IMPL_NOINLINE void blocked_k(int item) const {
    constexpr int most = host_group_limit(MR, NR, sizeof(T));
    int const panel_group = item / plan.groups_m;
    int const first = (item - panel_group * plan.groups_m) * plan.group;
    int const count = tiles_m - first < plan.group ? tiles_m - first : plan.group;
    int const m = a.rows, n = b.cols, k = a.cols;
    int const tiles_n = tiles / tiles_m;
    int const first_panel = panel_group * plan.panels;
    int const panels = tiles_n - first_panel < plan.panels ? tiles_n - first_panel : plan.panels;
    alignas(64) T packed[host_block_k * NR];
    T sums[most][MR][NR];
    for (int t = 0; t < count * panels; ++t)
      for (int i = 0; i < MR; ++i)
        for (int j = 0; j < NR; ++j) sums[t][i][j] = T(0);
    int const kc = plan.kc < host_block_k ? plan.kc : host_block_k;  // the buffer's depth
    for (int k0 = 0; k0 < k; k0 += kc) {
      int const depth = k - k0 > kc ? kc : k - k0;
      for (int p = 0; p < panels; ++p) {
        int const j0 = (first_panel + p) * NR;
        int const nr = n - j0 < NR ? n - j0 : NR;
        // The block of the panel, zero past the edge of C: every tile then
        // runs the full-width register loop.
        for (int kk = 0; kk < depth; ++kk) {
          T* const row = packed + kk * NR;
          if (nr == NR && b.col_stride == 1) {
            T const* const src = b.data + (k0 + kk) * b.row_stride + j0;
            for (int j = 0; j < NR; ++j) row[j] = src[j];
          } else {
            for (int j = 0; j < NR; ++j) row[j] = j < nr ? b(k0 + kk, j0 + j) : T(0);
          }
        }
        for (int t = 0; t < count; ++t) {
          int const i0 = (first + t) * MR;
          T const* const a_strip = a.data + i0 * a.row_stride + k0 * a.col_stride;
          T(&carried)[MR][NR] = sums[t * panels + p];
          T acc[MR][NR];
          for (int i = 0; i < MR; ++i)
            for (int j = 0; j < NR; ++j) acc[i][j] = carried[i][j];
          if (i0 + MR <= m)
            full_tile_sums<MR, NR>(a_strip, a.row_stride, a.col_stride, packed, NR, 0, depth, acc);
          else
            edge_tile_sums<MR, NR>(a_strip, a.row_stride, a.col_stride, packed, NR, 0, depth,
                                   m - i0, NR, acc);
          for (int i = 0; i < MR; ++i)
            for (int j = 0; j < NR; ++j) carried[i][j] = acc[i][j];
        }
      }
    }
    for (int t = 0; t < count; ++t)
      for (int p = 0; p < panels; ++p) {
        int const i0 = (first + t) * MR, j0 = (first_panel + p) * NR;
        int const nr = n - j0 < NR ? n - j0 : NR;
        if (i0 + MR <= m && nr == NR) {
          tile_epilogue<MR, NR>(sums[t * panels + p], i0, j0, epilogue);
          continue;
        }
        int const mr = m - i0 < MR ? m - i0 : MR;
        for (int i = 0; i < mr; ++i)
          for (int j = 0; j < nr; ++j) epilogue(i0 + i, j0 + j, sums[t * panels + p][i][j]);
      }
  }
};

/// The register kernel for C = epilogue(A B), planned by host_gemm_plan
/// for `threads` threads (`runs`: runs of tiles per item where K is short).
template <int MR, int NR, class T, class Epilogue>
RegisterGemm<MR, NR, T, Epilogue> register_kernel(int threads, Matrix<T const> a, Matrix<T const> b,
                                                  Epilogue const& epilogue, bool runs) {
  int const tiles_m = (a.rows + MR - 1) / MR;
  int const tiles_n = (b.cols + NR - 1) / NR;
  return {.a = a,
          .b = b,
          .tiles_m = tiles_m,
          .tiles = tiles_m * tiles_n,
          .plan = host_gemm_plan(MR, NR, a.rows, b.cols, a.cols, threads, sizeof(T), runs),
          .epilogue = epilogue};
}

/// The host kernel for a B whose rows are not contiguous (a transposed
/// weight matrix, a LayoutLeft input) where all of B stays in cache (larger
/// ones take RegisterGemm's blocked plan, which copies blocks of B itself):
/// a work item first copies its K x NR panels of B into scratch,
/// zero-padded past the edge, then runs the register tiles of its run of
/// rows over them. Each item packs one panel, or, where the rows are many (a
/// tall product by a layer's weights), every panel, so that each strip of A
/// is read from memory once. The tiles sum in the same order as over a contiguous copy of
/// B, so the result has the same bits as transposing B first, without a
/// launch or a buffer for the copy.
template <int MR, int NR, class ExecSpace, class T, class Epilogue>
struct PackedPanelGemm {
  Matrix<T const> a, b;
  int tiles_m;
  int tiles_per_item;   // row tiles of one work item
  int items_per_panel;  // with all_panels: the work items
  bool all_panels;
  Epilogue epilogue;
  static std::size_t scratch_bytes(int k, int panels) {
    return sizeof(T) * std::size_t(k) * NR * panels;
  }
  KOKKOS_INLINE_FUNCTION void operator()(
      typename Kokkos::TeamPolicy<ExecSpace>::member_type const& team) const {
    int const m = a.rows, n = b.cols, k = a.cols;
    int const panels = all_panels ? (n + NR - 1) / NR : 1;
    int const first_panel = all_panels ? 0 : team.league_rank() / items_per_panel;
    int const part = team.league_rank() - first_panel * items_per_panel;
    T* const packed = static_cast<T*>(team.team_scratch(1).get_shmem(scratch_bytes(k, panels)));
    for (int p = 0; p < panels; ++p) {
      int const j0 = (first_panel + p) * NR;
      int const nr = n - j0 < NR ? n - j0 : NR;
      T* const panel = packed + std::size_t(p) * k * NR;
      for (int kk = 0; kk < k; ++kk)
        for (int j = 0; j < NR; ++j)
          panel[std::size_t(kk) * NR + j] = j < nr ? b(kk, j0 + j) : T(0);
    }
    int const first = part * tiles_per_item;
    int const last = first + tiles_per_item < tiles_m ? first + tiles_per_item : tiles_m;
    for (int ti = first; ti < last; ++ti) {
      int const i0 = ti * MR;
      T const* a_strip = a.data + i0 * a.row_stride;
      for (int p = 0; p < panels; ++p) {
        int const j0 = (first_panel + p) * NR;
        int const nr = n - j0 < NR ? n - j0 : NR;
        T const* panel = packed + std::size_t(p) * k * NR;
        if (i0 + MR <= m && nr == NR) {
          gemm_full_tile<MR, NR>(a_strip, a.row_stride, a.col_stride, panel, NR, k, i0, j0,
                                 epilogue);
        } else {
          int const mr = m - i0 < MR ? m - i0 : MR;
          gemm_edge_tile<MR, NR>(a_strip, a.row_stride, a.col_stride, panel, NR, k, i0, j0, mr, nr,
                                 epilogue);
        }
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
  // Every panel per item where B fits in cache and each of a few items per
  // thread still has many row tiles to spread the packing over.
  constexpr int least_tiles = 16;
  bool const all_panels = Kernel::scratch_bytes(a.cols, panels) <= host_cached_bytes &&
                          tiles_m >= 2 * least_tiles * exec.concurrency() && panels > 1;
  int runs = all_panels ? tiles_m / least_tiles : packed_runs(exec, panels, tiles_m);
  if (all_panels && runs > 4 * exec.concurrency()) runs = 4 * exec.concurrency();
  int const per_run = (tiles_m + runs - 1) / runs;
  int const items = (tiles_m + per_run - 1) / per_run;
  Kokkos::TeamPolicy<ExecSpace> policy(exec, all_panels ? items : panels * items, 1);
  Kokkos::parallel_for(label,
                       policy.set_scratch_size(1, Kokkos::PerTeam(Kernel::scratch_bytes(
                                                      a.cols, all_panels ? panels : 1))),
                       Kernel{.a = a,
                              .b = b,
                              .tiles_m = tiles_m,
                              .tiles_per_item = per_run,
                              .items_per_panel = items,
                              .all_panels = all_panels,
                              .epilogue = epilogue});
}

/// Two products in one launch on host spaces, after `lead.items` work items
/// of other work (Dense's bias sums): then the first's work items, then the
/// second's, each tile's sums formed as gemm() forms them (the same
/// bits).
template <int MR, int NR, class T, class FirstEpilogue, class SecondEpilogue, class Lead>
struct RegisterGemmPair {
  Lead lead;
  RegisterGemm<MR, NR, T, FirstEpilogue> first;
  RegisterGemm<MR, NR, T, SecondEpilogue> second;
  int first_items;
  KOKKOS_INLINE_FUNCTION void operator()(int t) const {
    if (t < lead.items) {
      lead(t);
      return;
    }
    t -= lead.items;
    if (t < first_items)
      first(t);
    else
      second(t - first_items);
  }
};

/// The host kernel's tiles run one after another by the calling thread: the
/// product of one sample inside a work item that also prepares its operands
/// (a convolution's im2col), so they stay in that core's cache. Panels of B
/// outermost.
template <int MR, int NR, class T, class Epilogue>
KOKKOS_INLINE_FUNCTION void serial_gemm(Matrix<T const> a, Matrix<T const> b,
                                        Epilogue const& epilogue) {
  for (int j0 = 0; j0 < b.cols; j0 += NR)
    for (int i0 = 0; i0 < a.rows; i0 += MR) gemm_tile<MR, NR>(a, b, i0, j0, epilogue);
}
}  // namespace ktnn::detail

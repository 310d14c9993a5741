// The portable GEMM against a naive product, at sizes that hit full tiles,
// ragged edges, one row, one column and zero, with transposed operands and a
// strided B, and with K split across teams on the device path; a strided B, a
// long K walked in blocks and a pair of products in one launch give the bits
// of the plain products.

#include "helpers.hpp"

#include <ktnn/ops/gemm.hpp>

#include <array>
#include <cstdint>

namespace {

template <class T, class Space>
void check_product(int m, int n, int k, bool transpose_a, T beta, bool transpose_b = false) {
  using Mem = typename Space::memory_space;
  Kokkos::View<T**, Kokkos::LayoutRight, Mem> a("a", transpose_a ? k : m, transpose_a ? m : k),
      b("b", transpose_b ? n : k, transpose_b ? k : n), c("c", m, n);
  ktnn_test::fill_uniform(a, 1 + m);
  ktnn_test::fill_uniform(b, 2 + n);
  ktnn_test::fill_uniform(c, 3 + k);
  auto const ah = ktnn_test::to_vector(a), bh = ktnn_test::to_vector(b),
             ch = ktnn_test::to_vector(c);
  auto am = ktnn::Matrix<T const>(ktnn::as_matrix(a));
  if (transpose_a) am = am.transposed();
  auto bm = ktnn::Matrix<T const>(ktnn::as_matrix(b));
  if (transpose_b) bm = bm.transposed();
  // As much workspace as the product can use (K split across teams on devices).
  Kokkos::View<T*, Mem> work("work", ktnn::ops::gemm_workspace_size(Space{}, m, n, k));
  ktnn::ops::gemm(Space{}, "test::gemm", am, bm, ktnn::as_matrix(c), beta,
                  ktnn::ops::Workspace<T>{work.data(), work.extent(0)});
  auto const got = ktnn_test::to_vector(c);
  std::vector<double> want(std::size_t(m) * n);
  for (int i = 0; i < m; ++i)
    for (int j = 0; j < n; ++j) {
      double sum = 0;
      for (int p = 0; p < k; ++p)
        sum += (transpose_a ? ah[std::size_t(p) * m + i] : ah[std::size_t(i) * k + p]) *
               (transpose_b ? bh[std::size_t(j) * k + p] : bh[std::size_t(p) * n + j]);
      want[std::size_t(i) * n + j] = sum + double(beta) * ch[std::size_t(i) * n + j];
    }
  INFO("m " << m << " n " << n << " k " << k << " transposed A " << transpose_a << " B "
            << transpose_b << " workspace " << work.extent(0));
  double const tol = sizeof(T) == 4 ? 1e-5 : 1e-13;
  ktnn_test::check_close(got, want, tol, tol * (k + 1));
}

}  // namespace

TEST_CASE_TEMPLATE_DEFINE("gemm matches the naive product", Space, gemm_naive) {
  int const shapes[][3] = {{1, 1, 1},    {7, 5, 3},   {8, 32, 16},  {9, 33, 17},
                           {64, 64, 64}, {37, 70, 1}, {1, 129, 20}, {130, 3, 41},
                           {0, 5, 4},    {5, 0, 4},   {6, 5, 0}};
  for (auto const& s : shapes)
    for (bool transpose : {false, true}) {
      check_product<float, Space>(s[0], s[1], s[2], transpose, 0.0f);
      check_product<double, Space>(s[0], s[1], s[2], transpose, 0.0);
      check_product<double, Space>(s[0], s[1], s[2], transpose, 1.0);
      check_product<float, Space>(s[0], s[1], s[2], transpose, 0.0f, true);
      check_product<double, Space>(s[0], s[1], s[2], transpose, 1.0, true);
    }
}
TEST_CASE_TEMPLATE_APPLY(gemm_naive, ktnn_test::spaces);

TEST_CASE_TEMPLATE_DEFINE("gemm with a long K (split across teams on devices)", Space,
                          gemm_long_k) {
  // Weight-gradient shapes: small M x N, K = a batch. On the device path these
  // split K into a workspace and sum the slices in a second pass.
  int const shapes[][3] = {{10, 70, 3000}, {64, 64, 4096}, {1, 5, 777}, {65, 3, 1100}};
  for (auto const& s : shapes) {
    INFO("split-K workspace " << ktnn::ops::gemm_workspace_size(Space{}, s[0], s[1], s[2]));
    check_product<float, Space>(s[0], s[1], s[2], true, 0.0f);
    check_product<double, Space>(s[0], s[1], s[2], true, 1.0);
    check_product<double, Space>(s[0], s[1], s[2], false, 0.0);
  }
  if constexpr (ktnn::ops::device_kernels<Space>)
    CHECK(ktnn::ops::gemm_workspace_size(Space{}, 10, 70, 3000) > 0);
}
TEST_CASE_TEMPLATE_APPLY(gemm_long_k, ktnn_test::spaces);

TEST_CASE_TEMPLATE_DEFINE("gemm rejects operands that do not fit", Space, gemm_errors) {
  using Mem = typename Space::memory_space;
  Kokkos::View<float**, Kokkos::LayoutRight, Mem> a("a", 4, 3), b("b", 5, 2), c("c", 4, 2);
  CHECK_THROWS_WITH_AS(
      ktnn::ops::gemm(Space{}, "test", ktnn::Matrix<float const>(ktnn::as_matrix(a)),
                      ktnn::Matrix<float const>(ktnn::as_matrix(b)), ktnn::as_matrix(c)),
      doctest::Contains("ktnn::ops::gemm: cannot multiply 4x3 by 5x2 into 4x2"), ktnn::Error);
}
TEST_CASE_TEMPLATE_APPLY(gemm_errors, ktnn_test::spaces);

namespace {
/// A rows x cols matrix of uniform values, row-major on Space.
template <class T, class Space>
Kokkos::View<T**, Kokkos::LayoutRight, typename Space::memory_space> filled(int rows, int cols,
                                                                            std::uint64_t seed) {
  Kokkos::View<T**, Kokkos::LayoutRight, typename Space::memory_space> v("m", rows, cols);
  ktnn_test::fill_uniform(v, seed);
  return v;
}
template <class T, class V>
ktnn::Matrix<T const> operand(V const& v) {
  return ktnn::Matrix<T const>(ktnn::as_matrix(v));
}
}  // namespace

TEST_CASE_TEMPLATE_DEFINE("a strided B gives the bits of its contiguous copy", Space,
                          gemm_strided_bits) {
  // The host kernel packs a strided B panel by panel; the sums run in the
  // same order as over a contiguous B (the transposed weights of Dense's
  // forward, which used to be copied by a kernel of their own). With
  // KTNN_ENABLE_BLAS only a contiguous B goes to CBLAS, so there the two
  // agree to rounding.
  // The tall shape packs every panel per work item (all of B fits in cache).
  for (auto const& s : {std::array{130, 70, 784}, std::array{7, 10, 3}, std::array{64, 33, 64},
                        std::array{4000, 70, 64}}) {
    int const m = s[0], n = s[1], k = s[2];
    auto const a = filled<float, Space>(m, k, 1), b_t = filled<float, Space>(n, k, 2);
    auto const b = filled<float, Space>(k, n, 3);
    auto const bh = ktnn_test::to_vector(b_t);
    auto bc = Kokkos::create_mirror_view(b);
    for (int p = 0; p < k; ++p)
      for (int j = 0; j < n; ++j) bc(p, j) = float(bh[std::size_t(j) * k + p]);
    Kokkos::deep_copy(b, bc);  // b = b_t^T, contiguous
    auto c1 = filled<float, Space>(m, n, 4), c2 = filled<float, Space>(m, n, 4);
    ktnn::ops::gemm(Space{}, "test::strided", operand<float>(a), operand<float>(b_t).transposed(),
                    ktnn::as_matrix(c1));
    ktnn::ops::gemm(Space{}, "test::contiguous", operand<float>(a), operand<float>(b),
                    ktnn::as_matrix(c2));
    INFO("m " << m << " n " << n << " k " << k);
#if defined(KTNN_ENABLE_BLAS)
    // CBLAS takes the contiguous product, the portable kernel the strided
    // one: the same sums in another order.
    ktnn_test::check_close(ktnn_test::to_vector(c1), ktnn_test::to_vector(c2), 1e-5, 1e-5 * k);
#else
    CHECK(ktnn_test::to_vector(c1) == ktnn_test::to_vector(c2));
#endif
  }
}
TEST_CASE_TEMPLATE_APPLY(gemm_strided_bits, ktnn_test::spaces);

TEST_CASE_TEMPLATE_DEFINE("K walked in blocks gives the bits of a tile at a time", Space,
                          gemm_blocked_k_bits) {
  // Products whose B does not stay in cache, on the host kernel: a work item
  // takes row tiles of one panel of B, copies it a block of K at a time and
  // carries the sums between blocks; the same kernel with a tile per item
  // over the whole K must give the same bits. Weight gradients (A
  // transposed, a long K), a square with ragged edges, a leading dimension
  // that is a power of two, and an edge panel narrower than the tile.
  if constexpr (!ktnn::ops::device_kernels<Space>) {
    using T = double;
    constexpr int MR = ktnn::ops::GemmTile<T>::mr, NR = ktnn::ops::GemmTile<T>::nr;
    struct Case {
      int m, n, k;
      bool transpose_a;
    };
    for (auto const& s :
         {Case{64, 64, 4096, true}, Case{70, 45, 3000, true}, Case{10, 70, 3001, true},
          Case{3, 5, 1500, true}, Case{131, 203, 700, false}, Case{40, 256, 300, false},
          Case{13, NR + 3, 600, false}}) {
      auto const a_stored =
          s.transpose_a ? filled<T, Space>(s.k, s.m, 1) : filled<T, Space>(s.m, s.k, 1);
      auto const b = filled<T, Space>(s.k, s.n, 2);
      auto c1 = filled<T, Space>(s.m, s.n, 3), c2 = filled<T, Space>(s.m, s.n, 3);
      auto const a = s.transpose_a ? operand<T>(a_stored).transposed() : operand<T>(a_stored);
      ktnn::ops::StoreScaled<T> const store1{ktnn::as_matrix(c1), 1.0},
          store2{ktnn::as_matrix(c2), 1.0};
      auto const blocked = ktnn::detail::register_kernel<MR, NR>(Space{}.concurrency(), a,
                                                                 operand<T>(b), store1, false);
      INFO("m " << s.m << " n " << s.n << " k " << s.k << " tiles per item " << blocked.plan.group);
      REQUIRE(blocked.plan.blocked);
      REQUIRE(blocked.plan.kc < s.k);
      auto whole = ktnn::detail::register_kernel<MR, NR>(Space{}.concurrency(), a, operand<T>(b),
                                                         store2, false);
      whole.plan = {};
      Kokkos::parallel_for("test::blocked", Kokkos::RangePolicy<Space>(0, blocked.items()),
                           blocked);
      Kokkos::parallel_for("test::whole", Kokkos::RangePolicy<Space>(0, whole.items()), whole);
      CHECK(ktnn_test::to_vector(c1) == ktnn_test::to_vector(c2));
    }
  }
}
TEST_CASE_TEMPLATE_APPLY(gemm_blocked_k_bits, ktnn_test::spaces);

TEST_CASE_TEMPLATE_DEFINE("gemm_pair gives the bits of two gemm calls", Space, gemm_pair_bits) {
  // Dense's backward: dW (+)= dz^T x and dx = dz W, one launch on host spaces;
  // at batch 2,100 the weight gradient walks K in blocks.
  int const in = 50, out = 21;
  for (int const batch : {37, 2100}) {
    auto const dz = filled<double, Space>(batch, out, 1), x = filled<double, Space>(batch, in, 2),
               w = filled<double, Space>(out, in, 3);
    auto dw1 = filled<double, Space>(out, in, 4), dw2 = filled<double, Space>(out, in, 4);
    auto dx1 = filled<double, Space>(batch, in, 5), dx2 = filled<double, Space>(batch, in, 5);
    using Store = ktnn::ops::StoreScaled<double>;
    ktnn::ops::gemm_pair(
        Space{}, "test::pair",
        ktnn::ops::Product<double, Store>{"test::dw", operand<double>(dz).transposed(),
                                          operand<double>(x), Store{ktnn::as_matrix(dw1), 1.0}},
        ktnn::ops::Product<double, Store>{"test::dx", operand<double>(dz), operand<double>(w),
                                          Store{ktnn::as_matrix(dx1), 0.0}});
    ktnn::ops::gemm(Space{}, "test::dw", operand<double>(dz).transposed(), operand<double>(x),
                    ktnn::as_matrix(dw2), 1.0);
    ktnn::ops::gemm(Space{}, "test::dx", operand<double>(dz), operand<double>(w),
                    ktnn::as_matrix(dx2));
    CHECK(ktnn_test::to_vector(dw1) == ktnn_test::to_vector(dw2));
    CHECK(ktnn_test::to_vector(dx1) == ktnn_test::to_vector(dx2));
    if (batch != 37) continue;
    // Sizes that do not fit name the product.
    CHECK_THROWS_WITH_AS(
        ktnn::ops::gemm_pair(
            Space{}, "test::pair",
            ktnn::ops::Product<double, Store>{"test::dw", operand<double>(dz), operand<double>(x),
                                              Store{ktnn::as_matrix(dw1), 1.0}},
            ktnn::ops::Product<double, Store>{"test::dx", operand<double>(dz), operand<double>(w),
                                              Store{ktnn::as_matrix(dx1), 0.0}}),
        doctest::Contains("test::dw: cannot multiply 37x21 by 37x50 into 21x50"), ktnn::Error);
  }
}
TEST_CASE_TEMPLATE_APPLY(gemm_pair_bits, ktnn_test::spaces);

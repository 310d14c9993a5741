// The portable GEMM against a naive product, at sizes that hit full tiles,
// ragged edges, one row, one column and zero, with transposed operands; on the
// device path also with a strided B and with K split across teams.

#include "helpers.hpp"

#include <ktnn/ops/gemm.hpp>

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
      if constexpr (ktnn::ops::gemm_takes_strided_b<Space>) {
        check_product<float, Space>(s[0], s[1], s[2], transpose, 0.0f, true);
        check_product<double, Space>(s[0], s[1], s[2], transpose, 1.0, true);
      }
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
  if constexpr (ktnn::ops::gemm_takes_strided_b<Space>) return;
  Kokkos::View<float**, Kokkos::LayoutLeft, Mem> b_left("b", 3, 2);
  CHECK_THROWS_WITH_AS(
      ktnn::ops::gemm(Space{}, "test", ktnn::Matrix<float const>(ktnn::as_matrix(a)),
                      ktnn::Matrix<float const>(ktnn::as_matrix(b_left)), ktnn::as_matrix(c)),
      doctest::Contains("contiguous rows"), ktnn::Error);
}
TEST_CASE_TEMPLATE_APPLY(gemm_errors, ktnn_test::spaces);

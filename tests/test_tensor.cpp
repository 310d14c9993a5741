// Tensors: zero-copy over a user's Views in every layout, subviews, host
// mirrors, and the runtime checks.

#include "helpers.hpp"

TEST_CASE_TEMPLATE_DEFINE("Tensor wraps a user's View without copying", Space, tensor_wrap) {
  using Mem = typename Space::memory_space;
  Kokkos::View<float**, Kokkos::LayoutRight, Mem> right("user_right", 10, 4);
  ktnn::Tensor<float, 4, Kokkos::LayoutRight, Mem> t(right);
  CHECK(t.data() == right.data());
  CHECK(t.batch() == 10);
  static_assert(decltype(t)::features == 4);

  Kokkos::View<float**, Kokkos::LayoutLeft, Mem> left("user_left", 6, 4);
  auto tl = ktnn::as_tensor<4>(left);
  CHECK(tl.data() == left.data());
  static_assert(std::is_same_v<typename decltype(tl)::layout_type, Kokkos::LayoutLeft>);

  auto rows = Kokkos::subview(right, std::make_pair(2, 7), Kokkos::ALL);
  auto ts = ktnn::as_tensor<4>(rows);
  CHECK(ts.batch() == 5);
  CHECK(ts.data() == right.data() + 2 * 4);

  auto sub = t.samples(3, 5);
  CHECK(sub.batch() == 2);
  CHECK(sub.data() == right.data() + 12);
  CHECK_THROWS_WITH_AS(t.samples(4, 11), doctest::Contains("outside a batch of 10"), ktnn::Error);

  Kokkos::View<float**, Kokkos::LayoutRight, Mem> wrong("user_wrong", 3, 5);
  CHECK_THROWS_WITH_AS(
      (ktnn::Tensor<float, 4, Kokkos::LayoutRight, Mem>(wrong)),
      doctest::Contains("View 'user_wrong' has 5 features per sample, the Tensor 4"), ktnn::Error);
}
TEST_CASE_TEMPLATE_APPLY(tensor_wrap, ktnn_test::spaces);

TEST_CASE_TEMPLATE_DEFINE("Tensor: labelled allocation and host mirror", Space, tensor_host) {
  using Mem = typename Space::memory_space;
  ktnn::Tensor<double, 3, Kokkos::LayoutRight, Mem> t("ktnn_test::tensor", 2);
  CHECK(t.view().label() == "ktnn_test::tensor");
  Kokkos::parallel_for(
      Kokkos::RangePolicy<Space>(0, 2), KOKKOS_LAMBDA(int i) {
        for (int j = 0; j < 3; ++j) t(i, j) = 10 * i + j;
      });
  auto host = t.to_host();
  CHECK(host(1, 2) == 12.0);
  CHECK(host(0, 1) == 1.0);
}
TEST_CASE_TEMPLATE_APPLY(tensor_host, ktnn_test::spaces);

TEST_CASE_TEMPLATE_DEFINE("Model::forward gives the same result for every input layout", Space,
                          forward_layouts) {
  using Mem = typename Space::memory_space;
  using Arch = ktnn::Sequential<ktnn::Dense<5, 7, ktnn::Tanh>, ktnn::Dense<7, 3>>;
  ktnn::Model<Arch, double, Space> model(9);
  Kokkos::View<double**, Kokkos::LayoutRight, Mem> right("right", 11, 5), r("r", 11, 3);
  Kokkos::View<double**, Kokkos::LayoutLeft, Mem> left("left", 11, 5);
  ktnn_test::fill_uniform(right, 3);
  ktnn_test::fill_uniform(r, 4);
  Kokkos::deep_copy(left, right);
  auto const y_right = ktnn_test::to_vector(model.forward(right));
  model.zero_grad();
  model.backward(r);
  auto const g_right = ktnn_test::to_vector(model.gradients());
  auto const y_left = ktnn_test::to_vector(model.forward(ktnn::as_tensor<5>(left)));
  model.zero_grad();
  model.backward(r);
  ktnn_test::check_close(y_left, y_right, 1e-14, 1e-15);
  ktnn_test::check_close(ktnn_test::to_vector(model.gradients()), g_right, 1e-13, 1e-15);
  // A subview of rows: the same rows of output.
  auto rows = Kokkos::subview(right, std::make_pair(4, 9), Kokkos::ALL);
  auto const y_rows = ktnn_test::to_vector(model.forward(rows));
  std::vector<double> expected(y_right.begin() + 4 * 3, y_right.begin() + 9 * 3);
  ktnn_test::check_close(y_rows, expected, 1e-14, 1e-15);
}
TEST_CASE_TEMPLATE_APPLY(forward_layouts, ktnn_test::spaces);

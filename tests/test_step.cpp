// The public training step on the caller's own Views (any layout), the
// public loss call, and the model's buffer rules (rollouts, empty batches,
// backward before forward); fit prints nothing unless asked and leaves the
// caller's stream as it was.

#include "helpers.hpp"

#include <iostream>
#include <sstream>

namespace {
using Net = ktnn::Sequential<ktnn::Dense<3, 8, ktnn::Tanh>, ktnn::Dense<8, 2>>;

template <class Space, class Layout>
using Rows = Kokkos::View<double**, Layout, typename Space::memory_space>;

/// The same data in a LayoutRight and a LayoutLeft View.
template <class Space>
struct Fields {
  Rows<Space, Kokkos::LayoutRight> x_right, y_right;
  Rows<Space, Kokkos::LayoutLeft> x_left, y_left;
  explicit Fields(int n)
      : x_right("x", n, 3), y_right("y", n, 2), x_left("x_left", n, 3), y_left("y_left", n, 2) {
    ktnn_test::fill_uniform(x_right, 1);
    ktnn_test::fill_uniform(y_right, 2);
    // Kokkos copies across layouts itself (nvcc takes no device lambda in a
    // constructor).
    Kokkos::deep_copy(x_left, x_right);
    Kokkos::deep_copy(y_left, y_right);
  }
};
}  // namespace

TEST_CASE_TEMPLATE_DEFINE("train_step on LayoutLeft and strided Views equals LayoutRight", Space,
                          step_layouts) {
  using Model = ktnn::Model<Net, double, Space>;
  Fields<Space> f(37);
  Model right(3, Space{}), left(3, Space{}), strided(3, Space{});
  ktnn::Adam<double, Space> a(right), b(left), c(strided);
  // A strided View: every other row of a twice-as-long field.
  Rows<Space, Kokkos::LayoutRight> wide_x("wide_x", 74, 3), wide_y("wide_y", 74, 2);
  Kokkos::View<double**, Kokkos::LayoutStride, typename Space::memory_space> every_other_x(
      wide_x.data(), Kokkos::LayoutStride(37, 6, 3, 1));
  Kokkos::View<double**, Kokkos::LayoutStride, typename Space::memory_space> every_other_y(
      wide_y.data(), Kokkos::LayoutStride(37, 4, 2, 1));
  Kokkos::deep_copy(every_other_x, f.x_right);
  Kokkos::deep_copy(every_other_y, f.y_right);
  for (int step = 0; step < 5; ++step) {
    ktnn::train_step(right, ktnn::MSE{}, a, f.x_right, f.y_right);
    ktnn::train_step(left, ktnn::MSE{}, b, f.x_left, f.y_left);
    ktnn::train_step(strided, ktnn::MSE{}, c, every_other_x, every_other_y);
  }
  auto const p = ktnn_test::to_vector(right.parameters());
  CHECK(p == ktnn_test::to_vector(left.parameters()));  // bit for bit
  CHECK(p == ktnn_test::to_vector(strided.parameters()));
  ktnn::Model<Net, double, Space> untrained(3);
  CHECK(p != ktnn_test::to_vector(untrained.parameters()));

  // The returned sums are this step's, on the device until read.
  auto sums = ktnn::train_step(right, ktnn::MSE{}, a, f.x_left, f.y_right);
  ktnn::LossSums host;
  Kokkos::deep_copy(host, sums);
  CHECK(host.count == 37);
  CHECK(host.loss > 0);
  CHECK(sums.data() == right.loss_sums().data());
}
TEST_CASE_TEMPLATE_APPLY(step_layouts, ktnn_test::spaces);

TEST_CASE_TEMPLATE_DEFINE("compute_loss on Views and its errors", Space, compute_loss) {
  using Mem = typename Space::memory_space;
  Rows<Space, Kokkos::LayoutLeft> prediction("prediction", 4, 2), target("target", 4, 2),
      grad("grad", 4, 2);
  ktnn_test::fill_uniform(prediction, 1);
  ktnn_test::fill_uniform(target, 2);
  auto const p = ktnn_test::to_vector(prediction), t = ktnn_test::to_vector(target);
  double expected = 0;
  for (std::size_t e = 0; e < p.size(); ++e) expected += (p[e] - t[e]) * (p[e] - t[e]);
  Kokkos::View<ktnn::LossSums, Mem> sums("sums");
  ktnn::compute_loss(Space{}, ktnn::MSE{}, prediction, target, sums, grad);
  auto const g = ktnn_test::to_vector(grad);
  for (std::size_t e = 0; e < p.size(); ++e) CHECK(g[e] == doctest::Approx((p[e] - t[e]) / 4));
  auto const value = ktnn::loss_sums(Space{}, ktnn::MSE{}, prediction, target);
  CHECK(value.mean_loss() == doctest::Approx(expected / 8));

  Rows<Space, Kokkos::LayoutRight> more_rows("more_rows", 5, 2), wrong_grad("wrong_grad", 4, 3);
  CHECK_THROWS_WITH_AS(ktnn::compute_loss(Space{}, ktnn::MSE{}, prediction, more_rows, sums),
                       doctest::Contains("ktnn::compute_loss: MSE: 4 predictions but 5 targets"),
                       ktnn::Error);
  CHECK_THROWS_WITH_AS(
      ktnn::compute_loss(Space{}, ktnn::MSE{}, prediction, target, sums, wrong_grad),
      doctest::Contains("the gradient is 4x3, the prediction 4x2"), ktnn::Error);
  // The kernel-level call is strict too (a target row too many is an error).
  CHECK_THROWS_WITH_AS(ktnn::MSE{}(Space{}, ktnn::Matrix<double const>(ktnn::as_matrix(prediction)),
                                   more_rows, ktnn::Matrix<double>{}, sums),
                       doctest::Contains("ktnn::MSE: prediction is 4x2 but targets are 5x2"),
                       ktnn::Error);
  Kokkos::View<int*, Mem> labels("labels", 5);
  CHECK_THROWS_WITH_AS(ktnn::compute_loss(Space{}, ktnn::CrossEntropy{}, prediction, labels, sums),
                       doctest::Contains("CrossEntropy: 4 predictions but 5 targets"), ktnn::Error);
}
TEST_CASE_TEMPLATE_APPLY(compute_loss, ktnn_test::spaces);

TEST_CASE_TEMPLATE_DEFINE("model buffers: rollouts, empty batches, backward before forward", Space,
                          model_buffers) {
  using Square = ktnn::Sequential<ktnn::Dense<4, 4, ktnn::Tanh>, ktnn::Dense<4, 4>>;
  using Model = ktnn::Model<Square, double, Space>;
  Model model(2);
  typename Model::batch_view x("x", 6, 4);
  ktnn_test::fill_uniform(x, 3);
  CHECK_THROWS_WITH_AS(model.backward(), doctest::Contains("ktnn::Model::backward: no forward()"),
                       ktnn::Error);

  // y2 = f(f(x)), once through a copy of f(x) and once reading the model's
  // own output buffer (the rollout pattern).
  typename Model::batch_view y1("y1", 6, 4);
  Kokkos::deep_copy(y1, model.forward(x));
  auto const expected = ktnn_test::to_vector(model.forward(y1));
  model.forward(x);
  auto const rolled = ktnn_test::to_vector(model.forward(model.output()));
  CHECK(rolled == expected);

  // An empty batch on a fresh model (an MPI rank without samples, say).
  Model fresh(2);
  typename Model::batch_view none("none", 0, 4);
  CHECK(fresh.forward(none).extent(0) == 0);
  fresh.backward(none, false, ktnn::Accumulate::no);
  for (double g : ktnn_test::to_vector(fresh.gradients())) CHECK(g == 0.0);
}
TEST_CASE_TEMPLATE_APPLY(model_buffers, ktnn_test::spaces);

TEST_CASE_TEMPLATE_DEFINE("fit prints nothing unless asked, and restores the stream", Space,
                          fit_silent) {
  using Mem = typename Space::memory_space;
  Fields<Space> f(20);
  ktnn::data::RegressionDataset<double, 3, Mem> data(ktnn::as_tensor<3>(f.x_right), f.y_right);
  ktnn::Model<Net, double, Space> model(1);
  ktnn::SGD<double, Space> sgd(model, {.lr = 0.01});
  ktnn::data::DataLoader<decltype(data), Space> loader(data, {.batch_size = 8});
  std::ostringstream captured;
  auto* const old = std::cout.rdbuf(captured.rdbuf());
  ktnn::FitOptions options;
  options.epochs = 2;
  ktnn::fit(model, ktnn::MSE{}, sgd, loader, options);
  std::cout.rdbuf(old);
  CHECK(captured.str().empty());

  std::ostringstream log;
  log.precision(9);
  log.setf(std::ios::scientific, std::ios::floatfield);
  options.out = &log;
  options.interactive = false;
  ktnn::fit(model, ktnn::MSE{}, sgd, loader, options);
  CHECK(log.str().find("epoch 2/2  loss") != std::string::npos);
  CHECK(log.precision() == 9);
  CHECK((log.flags() & std::ios::floatfield) == std::ios::scientific);
}
TEST_CASE_TEMPLATE_APPLY(fit_silent, ktnn_test::spaces);

#pragma once
// Shared test helpers: host copies, filling Views with known values, finite
// differences.

#include <ktnn/ktnn.hpp>

#include <doctest/doctest.h>
#include <test_spaces.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <utility>
#include <vector>

namespace ktnn_test {

/// The values of any View, on the host, flattened in index order.
template <class View>
std::vector<double> to_vector(View const& v) {
  auto host = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace{}, v);
  std::vector<double> out;
  if constexpr (View::rank() == 1) {
    for (std::size_t i = 0; i < host.extent(0); ++i) out.push_back(double(host(i)));
  } else {
    for (std::size_t i = 0; i < host.extent(0); ++i)
      for (std::size_t j = 0; j < host.extent(1); ++j) out.push_back(double(host(i, j)));
  }
  return out;
}

/// Fills a rank-2 View with values uniform in [lo, hi) from the test's seed.
template <class View>
void fill_uniform(View const& v, std::uint64_t seed, double lo = -1, double hi = 1) {
  auto host = Kokkos::create_mirror_view(Kokkos::HostSpace{}, v);
  std::uint64_t c = 0;
  if constexpr (View::rank() == 1) {
    for (std::size_t i = 0; i < host.extent(0); ++i)
      host(i) = lo + (hi - lo) * ktnn::random::uniform(seed, 7, c++);
  } else {
    for (std::size_t i = 0; i < host.extent(0); ++i)
      for (std::size_t j = 0; j < host.extent(1); ++j)
        host(i, j) = lo + (hi - lo) * ktnn::random::uniform(seed, 7, c++);
  }
  Kokkos::deep_copy(v, host);
}

/// Writes one element of a View from the host.
template <class View, class... I>
void set_element(View const& v, double value, I... index) {
  auto one = Kokkos::subview(v, index...);
  Kokkos::deep_copy(one, typename View::value_type(value));
}

/// A rank-1 View in Space's memory holding `values`, converted to T.
template <class T, class Space, class U>
Kokkos::View<T*, typename Space::memory_space> device_vector(std::vector<U> const& values,
                                                             char const* label = "values") {
  Kokkos::View<T*, typename Space::memory_space> v(label, values.size());
  auto host = Kokkos::create_mirror_view(v);
  for (std::size_t i = 0; i < values.size(); ++i) host(i) = T(values[i]);
  Kokkos::deep_copy(v, host);
  return v;
}

/// Rows of doubles in Space's memory (what the losses and Model take).
template <class Space>
using Rows = Kokkos::View<double**, Kokkos::LayoutRight, typename Space::memory_space>;

/// A rows x cols Rows holding `values` row after row.
template <class Space>
Rows<Space> device_rows(int rows, int cols, std::vector<double> const& values) {
  REQUIRE(values.size() == std::size_t(rows) * std::size_t(cols));
  Rows<Space> v("rows", rows, cols);
  auto host = Kokkos::create_mirror_view(v);
  for (int i = 0; i < rows; ++i)
    for (int j = 0; j < cols; ++j) host(i, j) = values[std::size_t(i) * cols + j];
  Kokkos::deep_copy(v, host);
  return v;
}

/// A loss's kernel-level call, waited for; `grad` empty: no gradient.
template <class Space, class Loss, class Targets>
ktnn::LossSums run_loss(Loss const& loss, Rows<Space> const& prediction, Targets const& targets,
                        Rows<Space> const& grad) {
  Kokkos::View<ktnn::LossSums, typename Space::memory_space> result("result");
  auto g = grad.data() ? ktnn::as_matrix(grad) : ktnn::Matrix<double>{};
  loss(Space{}, ktnn::Matrix<double const>(ktnn::as_matrix(prediction)), targets, g, result);
  auto host = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace{}, result);
  return host();
}

/// The gradient the loss writes, on the host.
template <class Space, class Loss, class Targets>
std::vector<double> loss_gradient(Loss const& loss, Rows<Space> const& prediction,
                                  Targets const& targets) {
  Rows<Space> grad("grad", prediction.extent(0), prediction.extent(1));
  Kokkos::deep_copy(grad, std::numeric_limits<double>::quiet_NaN());  // all must be written
  run_loss<Space>(loss, prediction, targets, grad);
  return ktnn_test::to_vector(grad);
}

/// Central differences of the mean loss with respect to every prediction.
template <class Space, class Loss, class Targets>
void check_loss_gradient(Loss const& loss, Rows<Space> const& prediction, Targets const& targets) {
  auto const analytic = loss_gradient<Space>(loss, prediction, targets);
  auto host = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace{}, prediction);
  double const h = 1e-6;
  std::size_t const width = prediction.extent(1);
  for (std::size_t i = 0; i < prediction.extent(0); ++i)
    for (std::size_t j = 0; j < width; ++j) {
      double const saved = host(i, j);
      ktnn_test::set_element(prediction, saved + h, i, j);
      double const up = run_loss<Space>(loss, prediction, targets, Rows<Space>()).mean_loss();
      ktnn_test::set_element(prediction, saved - h, i, j);
      double const down = run_loss<Space>(loss, prediction, targets, Rows<Space>()).mean_loss();
      ktnn_test::set_element(prediction, saved, i, j);
      double const numeric = (up - down) / (2 * h);
      INFO(Loss::name << " (" << i << ", " << j << ") analytic " << analytic[i * width + j]
                      << " numeric " << numeric);
      CHECK(std::abs(analytic[i * width + j] - numeric) <= 1e-7 + 1e-5 * std::abs(numeric));
    }
}

/// XOR's four points in float: inputs x (4x2), classes (0 or 1) and the
/// same as a column of float targets (4x1).
template <class Space>
struct XorProblem {
  using memory_space = typename Space::memory_space;
  Kokkos::View<float**, Kokkos::LayoutRight, memory_space> x{"x", 4, 2}, targets{"targets", 4, 1};
  Kokkos::View<int*, memory_space> classes{"classes", 4};
  XorProblem() {
    auto xh = Kokkos::create_mirror_view(x);
    auto th = Kokkos::create_mirror_view(targets);
    auto ch = Kokkos::create_mirror_view(classes);
    for (int i = 0; i < 4; ++i) {
      xh(i, 0) = float(i & 1);
      xh(i, 1) = float((i >> 1) & 1);
      ch(i) = (i & 1) ^ ((i >> 1) & 1);
      th(i, 0) = float(ch(i));
    }
    Kokkos::deep_copy(x, xh);
    Kokkos::deep_copy(targets, th);
    Kokkos::deep_copy(classes, ch);
  }
};

/// The regression problem several training tests share: n points uniform in
/// [-1, 1)^2 from seed 8, targets x0 * x1 + x0 / 2.
template <class Space>
struct ProductProblem {
  Rows<Space> x, y;
  explicit ProductProblem(int n) : x("x", n, 2), y("y", n, 1) {
    fill_uniform(x, 8);
    auto const xh = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace{}, x);
    auto yh = Kokkos::create_mirror_view(y);
    for (int i = 0; i < n; ++i) yh(i, 0) = xh(i, 0) * xh(i, 1) + 0.5 * xh(i, 0);
    Kokkos::deep_copy(y, yh);
  }
};

/// The mean MSE losses of the first and the last of `steps` train_steps.
template <class Model, class Optimizer, class Space>
std::pair<double, double> first_and_last_loss(Model& model, Optimizer& optimizer,
                                              ProductProblem<Space> const& problem, int steps) {
  double first = 0, last = 0;
  for (int step = 0; step < steps; ++step) {
    auto sums = ktnn::train_step(model, ktnn::MSE{}, optimizer, problem.x, problem.y);
    ktnn::LossSums host;
    Kokkos::deep_copy(host, sums);
    (step == 0 ? first : last) = host.mean_loss();
  }
  return {first, last};
}

/// |a - b| <= atol + rtol * |b|, element by element, with a message on failure.
inline void check_close(std::vector<double> const& a, std::vector<double> const& b, double rtol,
                        double atol) {
  REQUIRE(a.size() == b.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    INFO("element " << i << ": " << a[i] << " vs " << b[i]);
    CHECK(std::abs(a[i] - b[i]) <= atol + rtol * std::abs(b[i]));
  }
}

/// L = sum(y * r) for a fixed random r, so dL/dy = r. Checks dL/dparams and
/// dL/dx from backward() against central differences of L.
/// `setup(model)` runs first (to give state non-trivial values, say).
template <class Arch, class Space, class Setup = void (*)(ktnn::Model<Arch, double, Space>&)>
void check_gradients(
    int batch, std::uint64_t seed, Setup setup = [](ktnn::Model<Arch, double, Space>&) {}) {
  using Model = ktnn::Model<Arch, double, Space>;
  using Rows = typename Model::batch_view;
  Model model(seed);
  setup(model);
  Rows x("x", batch, Arch::in_features), r("r", batch, Arch::out_features);
  ktnn_test::fill_uniform(x, seed + 1, -1.5, 1.5);
  ktnn_test::fill_uniform(r, seed + 2);
  auto const r_host = ktnn_test::to_vector(r);

  auto loss = [&]() {
    auto y = ktnn_test::to_vector(model.forward(x));
    double sum = 0;
    for (std::size_t i = 0; i < y.size(); ++i) sum += y[i] * r_host[i];
    return sum;
  };

  model.zero_grad();
  model.forward(x);
  model.backward(r, true);
  auto const grads = ktnn_test::to_vector(model.gradients());
  auto const dx = ktnn_test::to_vector(model.input_gradient());

  double const h = 1e-6;
  auto params = model.parameters();
  auto params_host = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace{}, params);
  // Every parameter for small layers; a spread-out subset of large ones.
  std::size_t const n = params.extent(0);
  std::size_t const stride = n > 400 ? n / 397 : 1;
  for (std::size_t p = 0; p < n; p += stride) {
    double const saved = params_host(p);
    ktnn_test::set_element(params, saved + h, p);
    double const up = loss();
    ktnn_test::set_element(params, saved - h, p);
    double const down = loss();
    ktnn_test::set_element(params, saved, p);
    double const numeric = (up - down) / (2 * h);
    INFO(Arch::name() << " parameter " << p << " analytic " << grads[p] << " numeric " << numeric);
    CHECK(std::abs(grads[p] - numeric) <= 1e-6 + 1e-5 * std::abs(numeric));
  }
  auto x_host = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace{}, x);
  for (int i = 0; i < batch; ++i)
    for (int j = 0; j < Arch::in_features; ++j) {
      double const saved = x_host(i, j);
      ktnn_test::set_element(x, saved + h, i, j);
      double const up = loss();
      ktnn_test::set_element(x, saved - h, i, j);
      double const down = loss();
      ktnn_test::set_element(x, saved, i, j);
      double const numeric = (up - down) / (2 * h);
      INFO(Arch::name() << " input (" << i << ", " << j << ") analytic "
                        << dx[i * Arch::in_features + j] << " numeric " << numeric);
      CHECK(std::abs(dx[i * Arch::in_features + j] - numeric) <= 1e-6 + 1e-5 * std::abs(numeric));
    }
}

/// The first three derivatives of activation Act against central
/// differences of the one below, at points away from 0 (where ReLU-like
/// activations have their kinks).
template <class Act>
void check_activation_derivatives() {
  INFO(Act::name);
  double const h = 1e-5;
  for (double z = -4.1; z <= 4.1; z += 0.37) {
    auto value = [](double x) { return Act::value(x); };
    auto first = [](double x) { return Act::derivative(x, Act::value(x)); };
    auto second = [](double x) { return Act::second(x, Act::value(x)); };
    double const fd1 = (value(z + h) - value(z - h)) / (2 * h);
    double const fd2 = (first(z + h) - first(z - h)) / (2 * h);
    double const fd3 = (second(z + h) - second(z - h)) / (2 * h);
    INFO("z = " << z);
    CHECK(std::abs(first(z) - fd1) <= 1e-8 + 1e-7 * std::abs(fd1));
    CHECK(std::abs(second(z) - fd2) <= 1e-8 + 1e-7 * std::abs(fd2));
    CHECK(std::abs(Act::third(z, Act::value(z)) - fd3) <= 1e-8 + 1e-7 * std::abs(fd3));
  }
}

}  // namespace ktnn_test

#pragma once
// Shared test helpers: host copies, filling Views with known values, finite
// differences.

#include <ktnn/ktnn.hpp>

#include <doctest/doctest.h>
#include <test_spaces.hpp>

#include <cmath>
#include <cstdint>
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

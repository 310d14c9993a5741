// Derivatives with respect to inputs: Jet arithmetic, the activations' higher
// derivatives, per-sample and batched (Taylor mode) input derivatives, and the
// parameter gradient of a physics-informed loss, all against finite
// differences in double.

#include "helpers.hpp"

#include <ktnn/derivatives.hpp>
#include <ktnn/train/physics.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

using ktnn_test::check_activation_derivatives;

TEST_CASE("activations' first, second and third derivatives against finite differences") {
  check_activation_derivatives<ktnn::Tanh>();
  check_activation_derivatives<ktnn::Sigmoid>();
  check_activation_derivatives<ktnn::GELU>();
  check_activation_derivatives<ktnn::SiLU>();
  check_activation_derivatives<ktnn::Softplus>();
  check_activation_derivatives<ktnn::Identity>();
  static_assert(ktnn::SmoothActivation<ktnn::ReLU> && ktnn::SmoothActivation<ktnn::Tanh>);
  // Softplus is PyTorch's: the identity above its threshold, log(1 + e^z) below.
  CHECK(ktnn::Softplus::value(25.0) == 25.0);
  CHECK(std::abs(ktnn::Softplus::value(0.3) - std::log1p(std::exp(0.3))) < 1e-15);
}

TEST_CASE_TEMPLATE("Tanh's host implementation is within a few ulp of std::tanh", T, float,
                   double) {
  // The vectorizing tanh of host cores (activation.hpp) against long double.
  double worst = 0;
  auto check = [&](double x) {
    T const v = ktnn::detail::tanh_host(T(x));
    long double const exact = std::tanh(static_cast<long double>(T(x)));
    double const ulps =
        exact == 0 ? std::abs(double(v))
                   : double(std::abs((v - exact) / exact)) / std::numeric_limits<T>::epsilon();
    worst = std::max(worst, ulps);
  };
  for (double x = -25; x <= 25; x += 1.0 / 1024 + 1e-7) check(x);
  for (double x : {0.0, 1e-30, 1e-10, 1e-5, 0.3999999, 0.4, 0.4000001, 8.99, 9.01, 19.9, 20.1})
    check(x), check(-x);
  CHECK(worst < 2.0);
  CHECK(ktnn::detail::tanh_host(T(INFINITY)) == T(1));
  CHECK(ktnn::detail::tanh_host(T(-INFINITY)) == T(-1));
  CHECK(std::isnan(ktnn::detail::tanh_host(T(NAN))));
  // Zeros keep their sign, as std::tanh's do.
  CHECK(std::signbit(ktnn::detail::tanh_host(T(-0.0))));
  CHECK(!std::signbit(ktnn::detail::tanh_host(T(0.0))));
}

TEST_CASE("Jet arithmetic and math against finite differences") {
  using J = ktnn::Jet<double, 2>;
  // Every operation and function of Jet, mixed with constants.
  auto f = [](auto x, auto y) {
    using std::abs, std::cos, std::erf, std::exp, std::log, std::log1p, std::pow, std::sin,
        std::sqrt, std::tanh;
    auto const a = sin(x) * exp(y) / (1.0 + x * x) + sqrt(x + 2.0) * tanh(y);
    auto const b = log1p(x * y + 1.5) - log(y + 3.0) * cos(x) + erf(0.5 * x - y);
    auto c = 2.0 / (y - 4.0) - (x - 1.0) / 3.0 + abs(x - 0.2) * 0.5;
    c += pow(x + 3.0, 1.5);
    c -= 0.25 * y;
    c *= 1.5;
    c /= 2.0;
    return a * b - c + (-x) * (+y);
  };
  double const h = 1e-4;
  for (double x : {-0.7, 0.1, 0.9})
    for (double y : {-0.4, 0.6}) {
      J const jx = J::variable(x, 0), jy = J::variable(y, 1);
      J const r = f(jx, jy);
      double const v = f(x, y);
      CHECK(r.value() == doctest::Approx(v).epsilon(1e-14));
      double const dx = (f(x + h, y) - f(x - h, y)) / (2 * h);
      double const dy = (f(x, y + h) - f(x, y - h)) / (2 * h);
      double const dxx = (f(x + h, y) - 2 * v + f(x - h, y)) / (h * h);
      double const dyy = (f(x, y + h) - 2 * v + f(x, y - h)) / (h * h);
      INFO("at (" << x << ", " << y << ")");
      CHECK(r.derivative(0) == doctest::Approx(dx).epsilon(1e-7));
      CHECK(r.derivative(1) == doctest::Approx(dy).epsilon(1e-7));
      CHECK(r.second_derivative(0) == doctest::Approx(dxx).epsilon(1e-5));
      CHECK(r.second_derivative(1) == doctest::Approx(dyy).epsilon(1e-5));
      CHECK(r.laplacian() == doctest::Approx(dxx + dyy).epsilon(1e-5));
    }
  // First order carries no second derivatives and costs no storage for them.
  using J1 = ktnn::Jet<double, 3, 1>;
  static_assert(sizeof(J1) == 5 * sizeof(double));
  J1 const a = J1::variable(2.0, 1);
  J1 const b = a * a * 3.0;
  CHECK(b.value() == 12.0);
  CHECK(b.derivative(1) == 12.0);
  CHECK(b.derivative(0) == 0.0);
}

namespace {
using SmoothArch = ktnn::Sequential<ktnn::Standardize<3>, ktnn::Dense<3, 12, ktnn::Tanh>,
                                    ktnn::Dense<12, 9, ktnn::GELU>, ktnn::Dense<9, 7>, ktnn::SiLU,
                                    ktnn::Dense<7, 6, ktnn::Sigmoid>, ktnn::Dense<6, 5>,
                                    ktnn::Softplus, ktnn::Dense<5, 2>, ktnn::Unstandardize<2>>;

/// Gives the standardisation layers non-trivial state.
template <class Model>
void set_scales(Model& model) {
  using T = typename Model::value_type;
  auto state = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace{}, model.state());
  // Standardize<3>: mean, std; Unstandardize<2>: mean, std.
  T const values[] = {0.2, -0.1, 0.3, 1.5, 0.7, 2.0, 1.0, -2.0, 3.0, 0.5};
  for (int i = 0; i < 10; ++i) state(i) = values[i];
  Kokkos::deep_copy(model.state(), state);
}
}  // namespace

TEST_CASE_TEMPLATE_DEFINE("per-sample input derivatives in a user kernel match finite differences",
                          Space, per_sample_derivatives) {
  using Mem = typename Space::memory_space;
  ktnn::Model<SmoothArch, double, Space> model(3);
  set_scales(model);
  int const n = 7;
  Kokkos::View<double**, Kokkos::LayoutLeft, Mem> x("x", n, 3);
  ktnn_test::fill_uniform(x, 11, -1.5, 1.5);
  // Per point and output: value, 3 first, 3 second derivatives, Laplacian;
  // then the same by central differences.
  Kokkos::View<double***, Mem> jet("jet", n, 2, 8), fd("fd", n, 2, 8);
  auto net = model.inference();
  double const h = 1e-4;
  Kokkos::parallel_for(
      "user_kernel", Kokkos::RangePolicy<Space>(0, n), KOKKOS_LAMBDA(int i) {
        auto const u = ktnn::derivatives(net, Kokkos::subview(x, i, Kokkos::ALL));
        Kokkos::Array<double, 3> p{x(i, 0), x(i, 1), x(i, 2)};
        auto const center = net(p);
        for (int o = 0; o < 2; ++o) {
          jet(i, o, 0) = u[o].value();
          for (int k = 0; k < 3; ++k) {
            jet(i, o, 1 + k) = u[o].derivative(k);
            jet(i, o, 4 + k) = u[o].second_derivative(k);
          }
          jet(i, o, 7) = u[o].laplacian();
          fd(i, o, 0) = center[o];
          fd(i, o, 7) = 0;
        }
        for (int k = 0; k < 3; ++k) {
          auto up = p, down = p;
          up[k] += h;
          down[k] -= h;
          auto const fu = net(up), fdn = net(down);
          for (int o = 0; o < 2; ++o) {
            fd(i, o, 1 + k) = (fu[o] - fdn[o]) / (2 * h);
            double const second = (fu[o] - 2 * center[o] + fdn[o]) / (h * h);
            fd(i, o, 4 + k) = second;
            fd(i, o, 7) += second;
          }
        }
      });
  auto const a = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace{}, jet);
  auto const b = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace{}, fd);
  for (int i = 0; i < n; ++i)
    for (int o = 0; o < 2; ++o)
      for (int c = 0; c < 8; ++c) {
        INFO("point " << i << " output " << o << " component " << c);
        double const tol = c == 0 ? 1e-13 : (c < 4 ? 1e-7 : 1e-4);
        CHECK(std::abs(a(i, o, c) - b(i, o, c)) <= tol * (1 + std::abs(b(i, o, c))));
      }
}
TEST_CASE_TEMPLATE_APPLY(per_sample_derivatives, ktnn_test::spaces);

namespace {
/// The batched Taylor pass against the per-sample Jets, point by point.
template <class Arch, class T, class Space>
void check_batched_matches_per_sample(int n, double tolerance) {
  using Mem = typename Space::memory_space;
  constexpr int in = Arch::in_features, out = Arch::out_features;
  ktnn::Model<Arch, T, Space> model(5);
  if constexpr (std::is_same_v<Arch, SmoothArch>) set_scales(model);
  Kokkos::View<T**, Kokkos::LayoutLeft, Mem> x("x", n, in);
  ktnn_test::fill_uniform(x, 13, -1.2, 1.2);
  ktnn::InputDerivatives jets(model);
  jets.forward(x);
  Kokkos::View<T***, Mem> batched("batched", n, out, in + 2), single("single", n, out, in + 2);
  auto const value = jets.value();
  auto const gradient = jets.gradient();
  auto const laplacian = jets.laplacian();
  auto net = model.inference();
  Kokkos::parallel_for(
      "compare", Kokkos::RangePolicy<Space>(0, n), KOKKOS_LAMBDA(int i) {
        auto const u = ktnn::derivatives(net, Kokkos::subview(x, i, Kokkos::ALL));
        for (int o = 0; o < out; ++o) {
          batched(i, o, 0) = value(i, o);
          single(i, o, 0) = u[o].value();
          for (int k = 0; k < in; ++k) {
            batched(i, o, 1 + k) = gradient(i, o, k);
            single(i, o, 1 + k) = u[o].derivative(k);
          }
          batched(i, o, in + 1) = laplacian(i, o);
          single(i, o, in + 1) = u[o].laplacian();
        }
      });
  auto const a = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace{}, batched);
  auto const b = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace{}, single);
  for (int i = 0; i < n; ++i)
    for (int o = 0; o < out; ++o)
      for (int c = 0; c < in + 2; ++c) {
        INFO(Arch::name() << " point " << i << " output " << o << " component " << c);
        CHECK(std::abs(double(a(i, o, c)) - double(b(i, o, c))) <=
              tolerance * (1 + std::abs(double(b(i, o, c)))));
      }
}
}  // namespace

TEST_CASE_TEMPLATE_DEFINE("batched input derivatives equal the per-sample ones", Space,
                          batched_derivatives) {
  check_batched_matches_per_sample<SmoothArch, double, Space>(37, 1e-12);
  check_batched_matches_per_sample<SmoothArch, float, Space>(37, 2e-4);
  // A batch larger than one GEMM tile and a ReLU network (zero Laplacian
  // almost everywhere, but its gradient is exact).
  using Wide = ktnn::Sequential<ktnn::Dense<2, 70, ktnn::ReLU>, ktnn::Dense<70, 65, ktnn::Tanh>,
                                ktnn::Dense<65, 3>>;
  check_batched_matches_per_sample<Wide, double, Space>(301, 1e-12);
  check_batched_matches_per_sample<Wide, float, Space>(1, 2e-4);
}
TEST_CASE_TEMPLATE_APPLY(batched_derivatives, ktnn_test::spaces);

namespace {
/// A non-linear residual that uses every argument: u, its gradient, its
/// Laplacian and the point.
struct Burgers {
  template <class S>
  KOKKOS_FUNCTION S operator()(ktnn::PointDerivatives<S, 2, 1> const& p) const {
    using std::sin;
    return -0.3 * p.laplacian[0] + p.u[0] * p.gradient[0][0] + 0.5 * p.gradient[0][1] -
           sin(p.x[0]) * p.x[1];
  }
};
/// Two equations on two outputs, returned as an array.
struct System {
  template <class S>
  KOKKOS_FUNCTION Kokkos::Array<S, 2> operator()(ktnn::PointDerivatives<S, 2, 2> const& p) const {
    return {p.laplacian[0] + p.u[1] * p.u[1] - p.x[0], p.gradient[1][0] - p.gradient[0][1]};
  }
};

template <class Arch, class Residual, class Space>
void check_physics_gradient(Residual residual) {
  using Mem = typename Space::memory_space;
  using Model = ktnn::Model<Arch, double, Space>;
  constexpr int in = Arch::in_features, out = Arch::out_features;
  Model model(9);
  Kokkos::View<double**, Kokkos::LayoutLeft, Mem> interior("interior", 13, in);
  Kokkos::View<double**, Mem> boundary("boundary", 5, in), boundary_u("boundary_u", 5, out),
      data("data", 3, in), data_u("data_u", 3, out);
  ktnn_test::fill_uniform(interior, 1);
  ktnn_test::fill_uniform(boundary, 2);
  ktnn_test::fill_uniform(boundary_u, 3);
  ktnn_test::fill_uniform(data, 4);
  ktnn_test::fill_uniform(data_u, 5);
  ktnn::PhysicsInformed pinn(model, residual,
                             {.residual_weight = 0.7, .boundary_weight = 3, .data_weight = 2});
  auto loss = [&] {
    pinn.gradient(interior, boundary, boundary_u, data, data_u);
    ktnn::PhysicsSums s;
    Kokkos::deep_copy(s, pinn.sums());
    return s;
  };
  ktnn::PhysicsSums const sums = loss();
  auto const grads = ktnn_test::to_vector(model.gradients());
  CHECK(sums.residual > 0);
  CHECK(sums.boundary > 0);
  CHECK(sums.data > 0);
  CHECK(sums.loss == doctest::Approx(0.7 * sums.residual + 3 * sums.boundary + 2 * sums.data));
  double const h = 1e-6;
  auto params = model.parameters();
  auto host = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace{}, params);
  for (std::size_t p = 0; p < params.extent(0); ++p) {
    double const saved = host(p);
    ktnn_test::set_element(params, saved + h, p);
    double const up = loss().loss;
    ktnn_test::set_element(params, saved - h, p);
    double const down = loss().loss;
    ktnn_test::set_element(params, saved, p);
    double const numeric = (up - down) / (2 * h);
    INFO(Arch::name() << " parameter " << p << " analytic " << grads[p] << " numeric " << numeric);
    CHECK(std::abs(grads[p] - numeric) <= 1e-6 + 1e-5 * std::abs(numeric));
  }
}

template <class Act>
using Pinn = ktnn::Sequential<ktnn::Dense<2, 6, Act>, ktnn::Dense<6, 5>, Act, ktnn::Dense<5, 1>>;
}  // namespace

TEST_CASE_TEMPLATE_DEFINE("physics-informed parameter gradients match finite differences", Space,
                          physics_gradient) {
  check_physics_gradient<Pinn<ktnn::Tanh>, Burgers, Space>(Burgers{});
  check_physics_gradient<Pinn<ktnn::Sigmoid>, Burgers, Space>(Burgers{});
  check_physics_gradient<Pinn<ktnn::GELU>, Burgers, Space>(Burgers{});
  check_physics_gradient<Pinn<ktnn::SiLU>, Burgers, Space>(Burgers{});
  check_physics_gradient<Pinn<ktnn::Softplus>, Burgers, Space>(Burgers{});
  using Two = ktnn::Sequential<ktnn::Standardize<2>, ktnn::Dense<2, 7, ktnn::Tanh>,
                               ktnn::Dense<7, 2>, ktnn::Unstandardize<2>>;
  check_physics_gradient<Two, System, Space>(System{});
}
TEST_CASE_TEMPLATE_APPLY(physics_gradient, ktnn_test::spaces);

TEST_CASE_TEMPLATE_DEFINE("physics-informed steps: empty terms, errors", Space, physics_errors) {
  using Mem = typename Space::memory_space;
  using Model = ktnn::Model<Pinn<ktnn::Tanh>, double, Space>;
  Model model(1), other(2);
  ktnn::PhysicsInformed pinn(model, Burgers{});
  ktnn::Adam adam(model);
  Kokkos::View<double**, Mem> interior("interior", 0, 2), wrong("wrong", 4, 3),
      boundary("boundary", 4, 2), values("values", 3, 1);
  // No interior points: the gradient is that of the boundary term alone.
  ktnn::train_step(model, pinn, adam, interior);
  ktnn::PhysicsSums s;
  Kokkos::deep_copy(s, pinn.sums());
  CHECK(s.loss == 0);
  CHECK_THROWS_WITH_AS(ktnn::train_step(model, pinn, adam, wrong), doctest::Contains("3 inputs"),
                       ktnn::Error);
  CHECK_THROWS_WITH_AS(ktnn::train_step(model, pinn, adam, boundary, boundary, values),
                       doctest::Contains("4 points but values of 3x1"), ktnn::Error);
  CHECK_THROWS_WITH_AS(ktnn::train_step(other, pinn, adam, boundary),
                       doctest::Contains("another model"), ktnn::Error);
  pinn.options().boundary_weight = -1;
  CHECK_THROWS_WITH_AS(pinn.gradient(boundary), doctest::Contains("boundary_weight is -1"),
                       ktnn::Error);
  ktnn::InputDerivatives<Model> fresh(model);
  CHECK_THROWS_WITH_AS(fresh.backward(), doctest::Contains("call forward first"), ktnn::Error);
}
TEST_CASE_TEMPLATE_APPLY(physics_errors, ktnn_test::spaces);

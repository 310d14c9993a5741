// LeakyReLU and ELU, Softmax and LogSoftmax, Dropout, LayerNorm, BatchNorm1d
// and BatchNorm2d: every gradient against central finite differences in
// double, both modes against their definitions, running statistics against a
// hand computation, dropout masks against the counter-based generator, and
// PyTorch's names.

#include "helpers.hpp"

#include <ktnn/derivatives.hpp>

#include <cmath>
#include <cstdint>
#include <string>
#include <tuple>
#include <type_traits>
#include <vector>

namespace {

using ktnn::Features;
using ktnn::Image;
using ktnn_test::check_activation_derivatives;
using ktnn_test::check_close;
using ktnn_test::check_gradients;
using ktnn_test::to_vector;

template <class Space>
using Rows = Kokkos::View<double**, Kokkos::LayoutRight, typename Space::memory_space>;

/// A model's per-sample path (model.inference() in a kernel) over the rows
/// of x.
template <class Model>
std::vector<double> per_sample(Model const& model, Rows<typename Model::execution_space> const& x) {
  using Space = typename Model::execution_space;
  Rows<Space> y("y", x.extent(0), Model::out_features);
  auto const net = model.inference();
  Kokkos::parallel_for(
      "per_sample", Kokkos::RangePolicy<Space>(0, int(x.extent(0))), KOKKOS_LAMBDA(int i) {
        net(Kokkos::subview(x, i, Kokkos::ALL), Kokkos::subview(y, i, Kokkos::ALL));
      });
  return to_vector(y);
}

/// Sets the named tensor of a model's parameters or state to values uniform
/// in [lo, hi).
template <class View>
void fill_named(View const& v, std::uint64_t seed, double lo, double hi) {
  auto host = Kokkos::create_mirror_view(Kokkos::HostSpace{}, v);
  for (std::size_t k = 0; k < host.extent(0); ++k)
    host(k) = lo + (hi - lo) * ktnn::random::uniform(seed, 3, k);
  Kokkos::deep_copy(v, host);
}

/// check_gradients for a model whose training forward depends on its step
/// (dropout): every evaluation of the loss re-initializes the model from
/// its seed (step 0) and then sets the parameters under test, so every
/// forward draws the same mask. L = sum(y * r).
template <class Arch, class Space>
void check_gradients_at_step_zero(int batch, std::uint64_t seed) {
  using Model = ktnn::Model<Arch, double, Space>;
  Model model(seed);
  typename Model::arena_type params("params", Arch::param_count);
  Kokkos::deep_copy(params, model.parameters());
  Rows<Space> x("x", batch, Arch::in_features), r("r", batch, Arch::out_features);
  ktnn_test::fill_uniform(x, seed + 1, -1.5, 1.5);
  ktnn_test::fill_uniform(r, seed + 2);
  auto const r_host = to_vector(r);
  auto start = [&] {
    model.initialize(seed);
    Kokkos::deep_copy(model.parameters(), params);
    REQUIRE(model.steps() == 0);
  };
  auto loss = [&] {
    start();
    auto const y = to_vector(model.forward(x));
    double sum = 0;
    for (std::size_t i = 0; i < y.size(); ++i) sum += y[i] * r_host[i];
    return sum;
  };
  start();
  model.forward(x);
  model.backward(r, true, ktnn::Accumulate::no);
  auto const grads = to_vector(model.gradients());
  auto const dx = to_vector(model.input_gradient());
  double const h = 1e-6;
  auto numeric = [&](auto const& view, auto... index) {
    auto one = Kokkos::subview(view, index...);
    auto host = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace{}, one);
    double const saved = host();
    Kokkos::deep_copy(one, saved + h);
    double const up = loss();
    Kokkos::deep_copy(one, saved - h);
    double const down = loss();
    Kokkos::deep_copy(one, saved);
    return (up - down) / (2 * h);
  };
  for (std::size_t p = 0; p < Arch::param_count; ++p) {
    double const fd = numeric(params, p);
    INFO(Arch::name() << " parameter " << p << " analytic " << grads[p] << " numeric " << fd);
    CHECK(std::abs(grads[p] - fd) <= 1e-6 + 1e-5 * std::abs(fd));
  }
  for (int i = 0; i < batch; ++i)
    for (int j = 0; j < Arch::in_features; ++j) {
      double const fd = numeric(x, i, j);
      double const analytic = dx[std::size_t(i) * Arch::in_features + j];
      INFO(Arch::name() << " input (" << i << ", " << j << ") analytic " << analytic << " numeric "
                        << fd);
      CHECK(std::abs(analytic - fd) <= 1e-6 + 1e-5 * std::abs(fd));
    }
}

/// The identity from shape In to shape Out of the same size, declaring both:
/// lets these tests put image layers between Dense layers without depending
/// on the convolution and pooling layers.
template <class In, class Out>
struct Reshape : ktnn::LayerDefaults {
  static_assert(In::size == Out::size);
  static constexpr int in_features = In::size;
  static constexpr int out_features = Out::size;
  using in_shape = In;
  using out_shape = Out;
  template <class ExecSpace, class T, class Isa>
  static void forward(ktnn::LayerContext<ExecSpace, T, Isa> const& ctx, ktnn::Matrix<T const> x,
                      ktnn::Matrix<T> y) {
    ktnn::ops::for_each_element(
        ctx.exec, "Reshape::forward", std::size_t(x.rows), std::size_t(in_features),
        KOKKOS_LAMBDA(std::size_t i, std::size_t j) { y(i, j) = x(i, j); });
  }
  template <class ExecSpace, class T, class Isa>
  static void backward(ktnn::LayerContext<ExecSpace, T, Isa> const& ctx, ktnn::Matrix<T const>,
                       ktnn::Matrix<T const>, ktnn::Matrix<T> dy, ktnn::Matrix<T> dx) {
    if (dx.empty()) return;
    ktnn::ops::for_each_element(
        ctx.exec, "Reshape::backward", std::size_t(dy.rows), std::size_t(in_features),
        KOKKOS_LAMBDA(std::size_t i, std::size_t j) { dx(i, j) = dy(i, j); });
  }
  template <class P, class S>
  KOKKOS_INLINE_FUNCTION static void apply(P const*, P const*, S const* x, S* y) {
    for (int j = 0; j < in_features; ++j) y[j] = x[j];
  }
  static std::string name() { return "Reshape<" + In::name() + ", " + Out::name() + ">"; }
};
template <int C, int H, int W>
using ToImage = Reshape<Features<C * H * W>, Image<C, H, W>>;
template <int C, int H, int W>
using ToFeatures = Reshape<Image<C, H, W>, Features<C * H * W>>;

/// Random weight and bias for the layer at `index` (PyTorch's starting
/// values, ones and zeros, would hide half of a gradient check).
auto randomize_layer(int index) {
  return [index](auto& model) {
    std::string const prefix = std::to_string(index) + ".";
    fill_named(model.parameter(prefix + "weight"), 1, 0.5, 1.5);
    fill_named(model.parameter(prefix + "bias"), 2, -0.5, 0.5);
  };
}

/// BatchNorm over C channels of P values, by hand on the host: the batch's
/// mean and biased variance of each channel of x (batch x C*P, NCHW).
struct ChannelStats {
  std::vector<double> mean, var;
};
ChannelStats channel_stats(std::vector<double> const& x, int batch, int c_count, int p_count) {
  ChannelStats s{std::vector<double>(c_count), std::vector<double>(c_count)};
  double const n = double(batch) * p_count;
  for (int c = 0; c < c_count; ++c) {
    double sum = 0, sq = 0;
    for (int i = 0; i < batch; ++i)
      for (int p = 0; p < p_count; ++p)
        sum += x[std::size_t(i) * c_count * p_count + c * p_count + p];
    s.mean[c] = sum / n;
    for (int i = 0; i < batch; ++i)
      for (int p = 0; p < p_count; ++p) {
        double const d = x[std::size_t(i) * c_count * p_count + c * p_count + p] - s.mean[c];
        sq += d * d;
      }
    s.var[c] = sq / n;
  }
  return s;
}

}  // namespace

// ------------------------------------------------------------------ activations

TEST_CASE("LeakyReLU and ELU: values as PyTorch's, derivatives against finite differences") {
  check_activation_derivatives<ktnn::LeakyReLU>();
  check_activation_derivatives<ktnn::LeakyReLUSlope<0.2>>();
  check_activation_derivatives<ktnn::LeakyReLUSlope<-0.5>>();
  check_activation_derivatives<ktnn::ELU>();
  check_activation_derivatives<ktnn::ELUAlpha<0.5>>();
  static_assert(ktnn::SmoothActivation<ktnn::LeakyReLU> && ktnn::SmoothActivation<ktnn::ELU>);
  static_assert(ktnn::LeakyReLU::negative_slope == 0.01 && ktnn::ELU::alpha == 1.0);
  // The derivative comes from the output unless the slope is negative.
  static_assert(!ktnn::LeakyReLU::needs_input && !ktnn::ELU::needs_input);
  static_assert(ktnn::LeakyReLUSlope<-0.5>::needs_input);
  static_assert(ktnn::preferred_init<ktnn::LeakyReLU> == ktnn::Init::HeUniform &&
                ktnn::preferred_init<ktnn::ELU> == ktnn::Init::HeUniform);
  CHECK(ktnn::LeakyReLU::value(-3.0) == -3.0 * 0.01);
  CHECK(ktnn::LeakyReLU::value(2.5) == 2.5);
  CHECK(ktnn::LeakyReLUSlope<0.2>::value(-2.0) == doctest::Approx(-0.4));
  CHECK(ktnn::ELU::value(1.5) == 1.5);
  CHECK(ktnn::ELU::value(-0.7) == std::expm1(-0.7));
  CHECK(ktnn::ELUAlpha<0.5>::value(-2.0) == 0.5 * std::expm1(-2.0));
  CHECK(ktnn::ELU::value(1e-12f) == 1e-12f);
  CHECK(ktnn::ELU::value(-1e-12) == std::expm1(-1e-12));  // no cancellation near 0
  // At the kink, the derivative PyTorch's backward takes: the slope, and
  // alpha for ELU (from the left).
  CHECK(ktnn::LeakyReLU::derivative(0.0, 0.0) == 0.01);
  CHECK(ktnn::ELUAlpha<0.5>::derivative(0.0, 0.0) == 0.5);
  CHECK(ktnn::ELU::second(0.0, 0.0) == 1.0);
  CHECK(ktnn::ELU::second(0.1, ktnn::ELU::value(0.1)) == 0.0);
}

TEST_CASE_TEMPLATE_DEFINE("finite differences: LeakyReLU and ELU fused into Dense and as layers",
                          Space, leaky_elu_fd) {
  check_gradients<
      ktnn::Sequential<ktnn::Dense<4, 6, ktnn::LeakyReLU>, ktnn::Dense<6, 3, ktnn::ELU>>, Space>(
      5, 41);
  check_gradients<ktnn::Sequential<ktnn::Dense<3, 7, ktnn::LeakyReLUSlope<-0.3>>,
                                   ktnn::Dense<7, 2, ktnn::ELUAlpha<0.5>>>,
                  Space>(4, 42);
  check_gradients<ktnn::Sequential<ktnn::Dense<5, 6>, ktnn::LeakyReLUSlope<0.2>, ktnn::Dense<6, 4>,
                                   ktnn::ELU, ktnn::Dense<4, 2>>,
                  Space>(3, 43);
  // Fused and unfused agree.
  using Fused = ktnn::Sequential<ktnn::Dense<6, 9, ktnn::ELU>, ktnn::Dense<9, 2, ktnn::LeakyReLU>>;
  using Split = ktnn::Sequential<ktnn::Dense<6, 9>, ktnn::ELU, ktnn::Dense<9, 2>, ktnn::LeakyReLU>;
  ktnn::Model<Fused, double, Space> fused(7);
  ktnn::Model<Split, double, Space> split(7);
  Kokkos::deep_copy(split.parameters(), fused.parameters());
  Rows<Space> x("x", 11, 6);
  ktnn_test::fill_uniform(x, 8, -2, 2);
  check_close(to_vector(fused.forward(x)), to_vector(split.forward(x)), 1e-14, 1e-15);
  check_close(per_sample(fused, x), to_vector(fused.forward(x)), 1e-13, 1e-14);
}
TEST_CASE_TEMPLATE_APPLY(leaky_elu_fd, ktnn_test::spaces);

// ---------------------------------------------------------------------- softmax

TEST_CASE_TEMPLATE_DEFINE("Softmax and LogSoftmax: definitions, finite differences, inference",
                          Space, softmax) {
  using Soft = ktnn::Softmax::bind<Features<6>>;
  using LogSoft = ktnn::LogSoftmax::bind<Features<6>>;
  static_assert(std::is_same_v<Soft, ktnn::SoftmaxLayer<6>> &&
                std::is_same_v<LogSoft, ktnn::LogSoftmaxLayer<6>>);
  static_assert(ktnn::Layer<Soft> && ktnn::Layer<LogSoft> &&
                ktnn::ShapeBindingLayer<ktnn::Softmax>);
  CHECK(Soft::name() == "Softmax<6>");
  CHECK(LogSoft::name() == "LogSoftmax<6>");

  // Bound by Sequential from the layer before.
  using Net = ktnn::Sequential<ktnn::Dense<4, 6>, ktnn::Softmax, ktnn::Dense<6, 3>>;
  static_assert(std::is_same_v<Net::layer<1>, Soft>);
  check_gradients<Net, Space>(5, 51);
  check_gradients<ktnn::Sequential<ktnn::Dense<3, 6, ktnn::Tanh>, ktnn::LogSoftmax>, Space>(4, 52);
  check_gradients<ktnn::Sequential<ktnn::SoftmaxLayer<1>>, Space>(2, 53);  // always 1
  check_gradients<ktnn::Sequential<ktnn::LogSoftmaxLayer<11>>, Space>(3, 54);

  // Against the definitions, at logits whose exponentials overflow double
  // unless shifted.
  int const n = 7;
  Rows<Space> x("x", n, 6);
  ktnn_test::fill_uniform(x, 55, -3, 3);
  Kokkos::parallel_for(
      Kokkos::RangePolicy<Space>(0, 1), KOKKOS_LAMBDA(int) {
        for (int j = 0; j < 6; ++j) x(n - 1, j) = 800 + j;
      });
  auto const xs = to_vector(x);
  ktnn::Model<ktnn::Sequential<Soft>, double, Space> soft(1);
  ktnn::Model<ktnn::Sequential<LogSoft>, double, Space> log_soft(1);
  auto const p = to_vector(soft.forward(x));
  auto const lp = to_vector(log_soft.forward(x));
  std::vector<double> want_p(xs.size()), want_lp(xs.size());
  for (int i = 0; i < n; ++i) {
    double m = xs[i * 6];
    for (int j = 1; j < 6; ++j) m = std::max(m, xs[i * 6 + j]);
    double sum = 0;
    for (int j = 0; j < 6; ++j) sum += std::exp(xs[i * 6 + j] - m);
    for (int j = 0; j < 6; ++j) {
      want_p[i * 6 + j] = std::exp(xs[i * 6 + j] - m) / sum;
      want_lp[i * 6 + j] = xs[i * 6 + j] - m - std::log(sum);
    }
  }
  check_close(p, want_p, 1e-14, 1e-16);
  check_close(lp, want_lp, 1e-14, 1e-14);
  for (int i = 0; i < n; ++i) {
    double sum = 0;
    for (int j = 0; j < 6; ++j) sum += p[i * 6 + j];
    CHECK(sum == doctest::Approx(1.0).epsilon(1e-14));
  }
  check_close(per_sample(soft, x), p, 1e-15, 1e-16);
  check_close(per_sample(log_soft, x), lp, 1e-15, 1e-15);
}
TEST_CASE_TEMPLATE_APPLY(softmax, ktnn_test::spaces);

// ---------------------------------------------------------------------- dropout

TEST_CASE("Dropout: binding, shapes, names, the keep threshold") {
  using D = ktnn::Dropout<0.5>;
  static_assert(ktnn::ShapeBindingLayer<D> && D::preserves_shape);
  using OnImage = D::bind<Image<2, 3, 3>>;
  static_assert(std::is_same_v<OnImage, ktnn::DropoutLayer<0.5, Image<2, 3, 3>>>);
  static_assert(OnImage::in_features == 18 && OnImage::out_features == 18);
  static_assert(std::is_same_v<OnImage::in_shape, Image<2, 3, 3>> &&
                std::is_same_v<OnImage::out_shape, Image<2, 3, 3>> && OnImage::preserves_shape);
  static_assert(ktnn::Layer<OnImage> && ktnn::Layer<D::bind<Features<5>>>);
  static_assert(OnImage::scale == 2.0 && ktnn::DropoutLayer<1.0, Features<3>>::scale == 0.0);
  CHECK(OnImage::name() == "Dropout<0.5, Image<2, 3, 3>>");
  CHECK(ktnn::Dropout<0.1>::bind<Features<4>>::name() == "Dropout<0.1, Features<4>>");
  // kept() is `random::uniform(...) >= P` on the integer bits.
  for (double p : {0.0, 0.1, 0.25, 0.5, 1.0 / 3, 0.9, 1.0}) {
    std::uint64_t const t = ktnn::detail::dropout_threshold(p);
    for (std::uint64_t k : {t - 1, t, t + 1})
      if (k <= (std::uint64_t(1) << 53)) CHECK((k >= t) == (double(k) * 0x1p-53 >= p));
  }
}

TEST_CASE_TEMPLATE_DEFINE("Dropout: masks from the seed, step and layer; both modes", Space,
                          dropout_mask) {
  constexpr int width = 37;
  constexpr double p = 0.3;
  using Drop = ktnn::Dropout<p>::bind<Features<width>>;
  using Arch = ktnn::Sequential<Drop>;
  using Model = ktnn::Model<Arch, double, Space>;
  int const n = 5;
  Rows<Space> x("x", n, width), r("r", n, width);
  ktnn_test::fill_uniform(x, 61, 0.5, 1.5);  // no zeros, so a zero output is a dropped value
  ktnn_test::fill_uniform(r, 62);
  auto const xs = to_vector(x);
  auto const rs = to_vector(r);
  // Kept values times 1 / (1 - P), as PyTorch scales them.
  auto expected = [&](std::uint64_t seed, std::uint64_t step, std::uint64_t layer,
                      std::vector<double> const& v) {
    std::vector<double> out(v.size());
    std::uint64_t const stream = ktnn::detail::dropout_stream(layer, step);
    for (std::size_t e = 0; e < v.size(); ++e)
      out[e] = ktnn::random::uniform(seed, stream, e) >= p ? v[e] * (1 / (1 - p)) : 0.0;
    return out;
  };

  Model a(9), b(9), c(10);
  auto const y0 = to_vector(a.forward(x));
  CHECK(y0 == expected(9, 0, 0, xs));
  a.backward(r, true);
  CHECK(to_vector(a.input_gradient()) == expected(9, 0, 0, rs));  // the same mask, recomputed
  auto const y1 = to_vector(a.forward(x));
  CHECK(y1 == expected(9, 1, 0, xs));
  CHECK(y1 != y0);                       // a new mask every step
  CHECK(to_vector(b.forward(x)) == y0);  // the same seed: the same masks
  CHECK(to_vector(c.forward(x)) != y0);  // another seed: others
  CHECK(a.steps() == 2);

  // Evaluation mode: the identity, forward and backward, and the step stands.
  a.set_mode(ktnn::Mode::evaluate);
  CHECK(to_vector(a.forward(x)) == xs);
  a.backward(r, true);
  CHECK(to_vector(a.input_gradient()) == rs);
  CHECK(a.steps() == 2);
  CHECK(per_sample(a, x) == xs);  // inference is evaluation mode

  // Two dropout layers of one model draw different masks (the layer index).
  using Two = ktnn::Sequential<Drop, Drop>;
  ktnn::Model<Two, double, Space> two(9);
  auto const y2 = to_vector(two.forward(x));
  CHECK(y2 == expected(9, 0, 1, expected(9, 0, 0, xs)));

  // P = 0 keeps everything; P = 1 drops everything.
  ktnn::Model<ktnn::Sequential<ktnn::Dropout<0.0>::bind<Features<width>>>, double, Space> none(3);
  CHECK(to_vector(none.forward(x)) == xs);
  ktnn::Model<ktnn::Sequential<ktnn::Dropout<1.0>::bind<Features<width>>>, double, Space> all(3);
  CHECK(to_vector(all.forward(x)) == std::vector<double>(xs.size(), 0.0));
}
TEST_CASE_TEMPLATE_APPLY(dropout_mask, ktnn_test::spaces);

TEST_CASE_TEMPLATE_DEFINE("Dropout: the dropped fraction is P on a large tensor, after images too",
                          Space, dropout_fraction) {
  using Arch = ktnn::Sequential<ktnn::Dropout<0.25>::bind<Image<4, 16, 16>>>;
  int const n = 300;  // 307,200 values: the fraction's standard deviation is 8e-4
  ktnn::Model<Arch, float, Space> model(17);
  Kokkos::View<float**, Kokkos::LayoutRight, typename Space::memory_space> x("x", n, 1024);
  Kokkos::deep_copy(x, 1.0f);
  auto const y = to_vector(model.forward(x));
  std::size_t dropped = 0, scaled = 0;
  for (double v : y) {
    dropped += v == 0.0;
    scaled += v == double(1.0f * float(1 / 0.75));
  }
  CHECK(dropped + scaled == y.size());
  double const fraction = double(dropped) / double(y.size());
  CHECK(std::abs(fraction - 0.25) < 0.004);
  // Every channel drops about the same fraction: no pattern over images.
  for (int ch = 0; ch < 4; ++ch) {
    std::size_t d = 0;
    for (int i = 0; i < n; ++i)
      for (int k = 0; k < 256; ++k) d += y[std::size_t(i) * 1024 + ch * 256 + k] == 0.0;
    CHECK(std::abs(double(d) / (n * 256) - 0.25) < 0.008);
  }
}
TEST_CASE_TEMPLATE_APPLY(dropout_fraction, ktnn_test::spaces);

TEST_CASE_TEMPLATE_DEFINE("finite differences: Dropout with its fixed mask", Space, dropout_fd) {
  using Net =
      ktnn::Sequential<ktnn::Dense<4, 6, ktnn::Tanh>, ktnn::Dropout<0.4>, ktnn::Dense<6, 3>>;
  static_assert(std::is_same_v<Net::layer<1>, ktnn::DropoutLayer<0.4, Features<6>>>);
  check_gradients_at_step_zero<Net, Space>(5, 71);
  // After an image, which it passes through.
  using OnImage = ktnn::Sequential<ktnn::Dense<5, 12>, ToImage<3, 2, 2>, ktnn::Dropout<0.5>,
                                   ToFeatures<3, 2, 2>, ktnn::Dense<12, 2>>;
  static_assert(std::is_same_v<OnImage::layer<2>, ktnn::DropoutLayer<0.5, Image<3, 2, 2>>>);
  static_assert(std::is_same_v<std::tuple_element_t<2, OnImage::shapes>, Image<3, 2, 2>>);
  check_gradients_at_step_zero<OnImage, Space>(3, 72);
  // Evaluation mode: the identity, checked by the ordinary helper.
  check_gradients<Net, Space>(3, 73, [](auto& model) { model.set_mode(ktnn::Mode::evaluate); });
}
TEST_CASE_TEMPLATE_APPLY(dropout_fd, ktnn_test::spaces);

// -------------------------------------------------------------------- LayerNorm

TEST_CASE_TEMPLATE_DEFINE("LayerNorm: PyTorch's names and defaults, definition, gradients", Space,
                          layer_norm) {
  using Arch = ktnn::Sequential<ktnn::Dense<5, 7>, ktnn::LayerNorm<7>, ktnn::Dense<7, 3>>;
  ktnn::Model<Arch, double, Space> model(81);
  auto const& index = model.parameter_index();
  REQUIRE(index.size() == 6);
  CHECK(index[2].name == "1.weight");
  CHECK(index[3].name == "1.bias");
  CHECK(index[2].shape == std::vector<std::size_t>{7});
  CHECK(to_vector(model.parameter("1.weight")) == std::vector<double>(7, 1.0));
  CHECK(to_vector(model.parameter("1.bias")) == std::vector<double>(7, 0.0));
  CHECK(model.state_index().empty());

  check_gradients<Arch, Space>(4, 82, randomize_layer(1));
  check_gradients<Arch, Space>(1, 83, randomize_layer(1));
  check_gradients<ktnn::Sequential<ktnn::LayerNorm<13>>, Space>(3, 84, [](auto& m) {
    fill_named(m.parameter("0.weight"), 3, -1, 1);
    fill_named(m.parameter("0.bias"), 4, -1, 1);
  });

  // The definition, with eps 1e-5 inside the square root.
  using One = ktnn::Sequential<ktnn::LayerNorm<4>>;
  ktnn::Model<One, double, Space> norm(1);
  fill_named(norm.parameter("0.weight"), 5, 0.5, 2);
  fill_named(norm.parameter("0.bias"), 6, -1, 1);
  auto const w = to_vector(norm.parameter("0.weight"));
  auto const b = to_vector(norm.parameter("0.bias"));
  Rows<Space> x("x", 3, 4);
  ktnn_test::fill_uniform(x, 85, -0.01, 0.01);  // a spread small enough for eps to matter
  auto const xs = to_vector(x);
  std::vector<double> want(12);
  for (int i = 0; i < 3; ++i) {
    double mean = 0, var = 0;
    for (int j = 0; j < 4; ++j) mean += xs[i * 4 + j] / 4;
    for (int j = 0; j < 4; ++j) var += (xs[i * 4 + j] - mean) * (xs[i * 4 + j] - mean) / 4;
    for (int j = 0; j < 4; ++j)
      want[i * 4 + j] = (xs[i * 4 + j] - mean) / std::sqrt(var + 1e-5) * w[j] + b[j];
  }
  auto const y = to_vector(norm.forward(x));
  check_close(y, want, 1e-12, 1e-14);
  norm.set_mode(ktnn::Mode::evaluate);  // no mode dependence
  CHECK(to_vector(norm.forward(x)) == y);
  check_close(per_sample(norm, x), y, 1e-14, 1e-15);
}
TEST_CASE_TEMPLATE_APPLY(layer_norm, ktnn_test::spaces);

// -------------------------------------------------------------------- BatchNorm

TEST_CASE("BatchNorm: PyTorch's parameter and buffer names, binding to images") {
  using Arch = ktnn::Sequential<ktnn::Dense<4, 12>, ToImage<3, 2, 2>, ktnn::BatchNorm2d, ktnn::ReLU,
                                ToFeatures<3, 2, 2>, ktnn::Dense<12, 5>, ktnn::BatchNorm1d<5>>;
  static_assert(std::is_same_v<Arch::layer<2>, ktnn::BatchNorm2dLayer<Image<3, 2, 2>>>);
  static_assert(std::is_same_v<std::tuple_element_t<3, Arch::shapes>, Image<3, 2, 2>>);
  static_assert(ktnn::ShapeBindingLayer<ktnn::BatchNorm2d> && ktnn::BatchNorm2d::preserves_shape);
  static_assert(Arch::layer<2>::in_features == 12 && Arch::layer<2>::channels == 3);
  static_assert(Arch::param_count == 4 * 12 + 12 + 6 + 12 * 5 + 5 + 10);
  static_assert(Arch::state_count == 7 + 11);
  auto const params = Arch::describe();
  REQUIRE(params.size() == 8);
  CHECK(params[2].name == "2.weight");
  CHECK(params[2].shape == std::vector<std::size_t>{3});
  CHECK(params[3].name == "2.bias");
  CHECK(params[7].name == "6.bias");
  auto const state = Arch::describe_state();
  REQUIRE(state.size() == 6);
  CHECK(state[0].name == "2.running_mean");
  CHECK(state[0].shape == std::vector<std::size_t>{3});
  CHECK(state[1].name == "2.running_var");
  CHECK(state[1].offset == 3);
  CHECK(state[2].name == "2.num_batches_tracked");
  CHECK(state[2].shape.empty());  // a scalar, as PyTorch's
  CHECK(state[2].size() == 1);
  CHECK(state[3].name == "6.running_mean");
  CHECK(state[3].offset == 7);
  CHECK(state[5].name == "6.num_batches_tracked");
  CHECK(state[5].offset + state[5].size() == Arch::state_count);
  CHECK(Arch::layer<2>::name() == "BatchNorm2d<Image<3, 2, 2>>");
  CHECK(Arch::layer<6>::name() == "BatchNorm1d<5>");
}

TEST_CASE_TEMPLATE_DEFINE(
    "finite differences: BatchNorm in training mode, batch statistics and all", Space,
    batch_norm_fd) {
  check_gradients<ktnn::Sequential<ktnn::Dense<4, 5>, ktnn::BatchNorm1d<5>, ktnn::Dense<5, 3>>,
                  Space>(7, 91, randomize_layer(1));
  check_gradients<ktnn::Sequential<ktnn::Dense<3, 2>, ktnn::BatchNorm1d<2>, ktnn::Tanh>, Space>(
      2, 92, randomize_layer(1));  // the smallest batch training allows
  check_gradients<ktnn::Sequential<ktnn::Dense<5, 12>, ToImage<3, 2, 2>, ktnn::BatchNorm2d,
                                   ToFeatures<3, 2, 2>, ktnn::Dense<12, 2>>,
                  Space>(4, 93, randomize_layer(2));
  // One sample is enough for BatchNorm2d: a channel has its pixels.
  check_gradients<ktnn::Sequential<ktnn::Dense<2, 18>, ToImage<2, 3, 3>, ktnn::BatchNorm2d,
                                   ktnn::Tanh, ToFeatures<2, 3, 3>, ktnn::Dense<18, 2>>,
                  Space>(1, 94, randomize_layer(2));
  // Long batches: on the device path each channel's sums split into chunks
  // summed by a second kernel.
  check_gradients<ktnn::Sequential<ktnn::Dense<2, 3>, ktnn::BatchNorm1d<3>>, Space>(
      300, 95, randomize_layer(1));
  check_gradients<ktnn::Sequential<ktnn::BatchNorm2d::bind<Image<2, 5, 5>>>, Space>(
      40, 96, randomize_layer(0));
}
TEST_CASE_TEMPLATE_APPLY(batch_norm_fd, ktnn_test::spaces);

TEST_CASE_TEMPLATE_DEFINE(
    "BatchNorm: training mode against its definition, running statistics "
    "by hand, evaluation mode",
    Space, batch_norm_modes) {
  constexpr int channels = 2, pixels = 9, width = channels * pixels;
  using Arch = ktnn::Sequential<ktnn::BatchNorm2d::bind<Image<channels, 3, 3>>>;
  ktnn::Model<Arch, double, Space> model(1);
  CHECK(to_vector(model.state()) == std::vector<double>{0, 0, 1, 1, 0});
  CHECK(to_vector(model.parameters()) == std::vector<double>{1, 1, 0, 0});
  fill_named(model.parameter("0.weight"), 1, 0.5, 1.5);
  fill_named(model.parameter("0.bias"), 2, -0.5, 0.5);
  auto const w = to_vector(model.parameter("0.weight"));
  auto const b = to_vector(model.parameter("0.bias"));

  std::vector<double> running_mean(channels, 0.0), running_var(channels, 1.0);
  int const batches[] = {3, 5, 2};
  for (int step = 0; step < 3; ++step) {
    int const n = batches[step];
    Rows<Space> x("x", n, width);
    ktnn_test::fill_uniform(x, 100 + step, -2 + step, 3 + 2 * step);
    auto const xs = to_vector(x);
    auto const y = to_vector(model.forward(x));
    auto const s = channel_stats(xs, n, channels, pixels);
    std::vector<double> want(xs.size());
    for (int i = 0; i < n; ++i)
      for (int c = 0; c < channels; ++c)
        for (int p = 0; p < pixels; ++p) {
          std::size_t const e = std::size_t(i) * width + c * pixels + p;
          want[e] = (xs[e] - s.mean[c]) / std::sqrt(s.var[c] + 1e-5) * w[c] + b[c];
        }
    check_close(y, want, 1e-12, 1e-13);
    double const count = double(n) * pixels;
    for (int c = 0; c < channels; ++c) {
      running_mean[c] = 0.9 * running_mean[c] + 0.1 * s.mean[c];
      running_var[c] = 0.9 * running_var[c] + 0.1 * s.var[c] * count / (count - 1);
    }
  }
  check_close(to_vector(model.state("0.running_mean")), running_mean, 1e-13, 1e-15);
  check_close(to_vector(model.state("0.running_var")), running_var, 1e-13, 1e-15);
  CHECK(to_vector(model.state("0.num_batches_tracked")) == std::vector<double>{3});

  // Evaluation mode: the running statistics, and nothing moves.
  model.set_mode(ktnn::Mode::evaluate);
  auto const state_before = to_vector(model.state());
  Rows<Space> x("x", 1, width);  // one sample is fine in evaluation mode
  ktnn_test::fill_uniform(x, 200, -1, 1);
  auto const xs = to_vector(x);
  auto const y = to_vector(model.forward(x));
  std::vector<double> want(xs.size());
  for (int c = 0; c < channels; ++c)
    for (int p = 0; p < pixels; ++p)
      want[c * pixels + p] =
          (xs[c * pixels + p] - running_mean[c]) / std::sqrt(running_var[c] + 1e-5) * w[c] + b[c];
  check_close(y, want, 1e-12, 1e-13);
  CHECK(to_vector(model.state()) == state_before);
  check_close(per_sample(model, x), y, 1e-15, 1e-15);  // inference: evaluation mode
}
TEST_CASE_TEMPLATE_APPLY(batch_norm_modes, ktnn_test::spaces);

TEST_CASE_TEMPLATE_DEFINE("BatchNorm1d: evaluation-mode gradients, one-sample and empty batches",
                          Space, batch_norm_eval) {
  using Arch = ktnn::Sequential<ktnn::Dense<3, 4>, ktnn::BatchNorm1d<4>, ktnn::Dense<4, 2>>;
  auto evaluation = [](auto& m) {
    fill_named(m.parameter("1.weight"), 1, 0.5, 1.5);
    fill_named(m.parameter("1.bias"), 2, -0.5, 0.5);
    fill_named(m.state("1.running_mean"), 3, -0.5, 0.5);
    fill_named(m.state("1.running_var"), 4, 0.2, 2);
    m.set_mode(ktnn::Mode::evaluate);
  };
  check_gradients<Arch, Space>(5, 111, evaluation);
  check_gradients<Arch, Space>(1, 112, evaluation);

  ktnn::Model<Arch, double, Space> model(3);
  Rows<Space> one("one", 1, 3), none("none", 0, 3);
  CHECK_THROWS_WITH_AS(model.forward(one), doctest::Contains("ktnn::BatchNorm1d::forward"),
                       ktnn::Error);
  CHECK_THROWS_WITH_AS(model.forward(one), doctest::Contains("more than one value per channel"),
                       ktnn::Error);
  model.set_mode(ktnn::Mode::evaluate);
  CHECK_NOTHROW(model.forward(one));
  // An empty batch in training mode: no statistics, zero gradients.
  model.set_mode(ktnn::Mode::train);
  auto const state = to_vector(model.state());
  Kokkos::deep_copy(model.gradients(), 1.0);
  model.forward(none);
  Rows<Space> dy("dy", 0, 2);
  model.backward(dy, false, ktnn::Accumulate::no);
  CHECK(to_vector(model.state()) == state);
  CHECK(to_vector(model.gradients()) == std::vector<double>(Arch::param_count, 0.0));
}
TEST_CASE_TEMPLATE_APPLY(batch_norm_eval, ktnn_test::spaces);

// ----------------------------------------------------- modes through the loops

TEST_CASE_TEMPLATE_DEFINE("train_step trains in training mode, evaluate runs in evaluation mode",
                          Space, modes_in_loops) {
  using Arch = ktnn::Sequential<ktnn::Dense<2, 16>, ktnn::BatchNorm1d<16>, ktnn::ReLU,
                                ktnn::Dropout<0.1>, ktnn::Dense<16, 1>>;
  ktnn::Model<Arch, double, Space> model(5);
  int const n = 64;
  ktnn_test::ProductProblem<Space> const problem(n);
  auto const x = problem.x;
  auto const y = problem.y;
  ktnn::Adam<double, Space> adam(model, {.lr = 1e-2});
  auto const [first, last] = ktnn_test::first_and_last_loss(model, adam, problem, 200);
  CHECK(last < 0.2 * first);
  CHECK(model.steps() == 200);
  CHECK(to_vector(model.state("1.num_batches_tracked")) == std::vector<double>{200});

  // evaluate: evaluation mode (running statistics, no dropout, nothing
  // updated), and the model's mode restored after.
  auto const state = to_vector(model.state());
  auto const data = ktnn::data::make_dataset<2>(x, y);
  auto const sums = ktnn::evaluate(model, ktnn::MSE{}, data, 16);
  CHECK(model.mode() == ktnn::Mode::train);
  CHECK(model.steps() == 200);
  CHECK(to_vector(model.state()) == state);
  model.set_mode(ktnn::Mode::evaluate);
  auto const prediction = to_vector(model.forward(x));
  auto const ys = to_vector(y);
  double sse = 0;
  for (int i = 0; i < n; ++i) sse += (prediction[i] - ys[i]) * (prediction[i] - ys[i]);
  CHECK(sums.mean_loss() == doctest::Approx(sse / n).epsilon(1e-12));
  check_close(per_sample(model, x), prediction, 1e-13, 1e-14);
}
TEST_CASE_TEMPLATE_APPLY(modes_in_loops, ktnn_test::spaces);

// ------------------------------------------------- per-sample input derivatives

TEST_CASE_TEMPLATE_DEFINE("input derivatives through the new layers match finite differences",
                          Space, new_layers_jets) {
  // apply() of every new layer on Jets (ktnn::derivatives in a user kernel):
  // BatchNorm with its running statistics, Dropout the identity.
  using Mem = typename Space::memory_space;
  using Arch = ktnn::Sequential<ktnn::Dense<3, 6, ktnn::Tanh>, ktnn::LayerNorm<6>,
                                ktnn::Dense<6, 5, ktnn::ELU>, ktnn::BatchNorm1d<5>,
                                ktnn::Dropout<0.5>, ktnn::Dense<5, 4, ktnn::LeakyReLU>,
                                ktnn::Softmax, ktnn::Dense<4, 3>, ktnn::LogSoftmax>;
  ktnn::Model<Arch, double, Space> model(3);
  randomize_layer(2)(model);  // LayerNorm: after Linear and Tanh
  randomize_layer(5)(model);  // BatchNorm1d
  fill_named(model.state("5.running_mean"), 3, -0.5, 0.5);
  fill_named(model.state("5.running_var"), 4, 0.2, 2);
  int const n = 5;
  Kokkos::View<double**, Kokkos::LayoutRight, Mem> x("x", n, 3);
  ktnn_test::fill_uniform(x, 11, -1.5, 1.5);
  // Per point and output: value, 3 first and 3 second derivatives; then the
  // same by central differences.
  Kokkos::View<double***, Mem> jet("jet", n, 3, 7), fd("fd", n, 3, 7);
  auto const net = model.inference();
  double const h = 1e-4;
  Kokkos::parallel_for(
      "user_kernel", Kokkos::RangePolicy<Space>(0, n), KOKKOS_LAMBDA(int i) {
        auto const u = ktnn::derivatives(net, Kokkos::subview(x, i, Kokkos::ALL));
        Kokkos::Array<double, 3> p{x(i, 0), x(i, 1), x(i, 2)};
        auto const center = net(p);
        for (int o = 0; o < 3; ++o) {
          jet(i, o, 0) = u[o].value();
          fd(i, o, 0) = center[o];
          for (int k = 0; k < 3; ++k) {
            jet(i, o, 1 + k) = u[o].derivative(k);
            jet(i, o, 4 + k) = u[o].second_derivative(k);
          }
        }
        for (int k = 0; k < 3; ++k) {
          auto up = p, down = p;
          up[k] += h;
          down[k] -= h;
          auto const fu = net(up), fdn = net(down);
          for (int o = 0; o < 3; ++o) {
            fd(i, o, 1 + k) = (fu[o] - fdn[o]) / (2 * h);
            fd(i, o, 4 + k) = (fu[o] - 2 * center[o] + fdn[o]) / (h * h);
          }
        }
      });
  auto const a = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace{}, jet);
  auto const b = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace{}, fd);
  for (int i = 0; i < n; ++i)
    for (int o = 0; o < 3; ++o)
      for (int c = 0; c < 7; ++c) {
        INFO("point " << i << " output " << o << " component " << c);
        double const tol = c == 0 ? 1e-13 : (c < 4 ? 1e-7 : 1e-4);
        CHECK(std::abs(a(i, o, c) - b(i, o, c)) <= tol * (1 + std::abs(b(i, o, c))));
      }
  // The batched forward in evaluation mode is the same function.
  model.set_mode(ktnn::Mode::evaluate);
  Rows<Space> xr("xr", n, 3);
  Kokkos::deep_copy(xr, x);
  std::vector<double> values;
  for (int i = 0; i < n; ++i)
    for (int o = 0; o < 3; ++o) values.push_back(a(i, o, 0));
  check_close(to_vector(model.forward(xr)), values, 1e-13, 1e-14);
}
TEST_CASE_TEMPLATE_APPLY(new_layers_jets, ktnn_test::spaces);

// The layer protocol from outside the library: two layers written here with
// only the public protocol (ktnn/layers/layer.hpp) compose in a Sequential,
// train through Model and train_step, and pass the finite-difference check.
//
//   LayerNorm<N>  parameters (weight, bias) and saved values per sample
//                 (the normalized row and its inverse deviation)
//   Dropout<N>    mode, seed and step: a counter-based mask, recomputed in
//                 backward instead of stored

#include "helpers.hpp"

#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace {

/// PyTorch's nn.LayerNorm(N) over the features of each sample (eps 1e-5).
template <int N>
struct LayerNorm : ktnn::LayerDefaults {
  static constexpr int in_features = N;
  static constexpr int out_features = N;
  static constexpr std::size_t param_count = 2 * std::size_t(N);
  static constexpr std::size_t saved_per_sample = N + 1;  // x-hat, then 1 / sigma
  static constexpr double eps = 1e-5;

  static std::string name() { return "LayerNorm<" + std::to_string(N) + ">"; }
  static void describe(std::string const& prefix, std::size_t offset,
                       std::vector<ktnn::ParameterInfo>& out) {
    out.push_back({prefix + "weight", offset, {std::size_t(N)}});
    out.push_back({prefix + "bias", offset + N, {std::size_t(N)}});
  }
  template <class ExecSpace, class T>
  static void initialize(ExecSpace const& exec, T* params, T*, std::size_t, std::uint64_t,
                         ktnn::Init) {
    Kokkos::parallel_for(
        "LayerNorm::initialize", Kokkos::RangePolicy<ExecSpace>(exec, 0, 2 * N),
        // Not PyTorch's (1, 0): values that make the test see both parameters.
        KOKKOS_LAMBDA(int k) { params[k] = k < N ? T(1) + T(k) / T(2 * N) : T(k - N) / T(4 * N); });
  }

  template <class ExecSpace, class T, class Isa>
  static void forward(ktnn::LayerContext<ExecSpace, T, Isa> const& ctx, ktnn::Matrix<T const> x,
                      ktnn::Matrix<T> y) {
    T const* gamma = ctx.parameters;
    T const* beta = ctx.parameters + N;
    auto saved = ctx.template saved_rows<N + 1>();
    Kokkos::parallel_for(
        "LayerNorm::forward", Kokkos::RangePolicy<ExecSpace>(ctx.exec, 0, x.rows),
        KOKKOS_LAMBDA(int i) {
          T mean = 0, var = 0;
          for (int j = 0; j < N; ++j) mean += x(i, j);
          mean /= N;
          for (int j = 0; j < N; ++j) var += (x(i, j) - mean) * (x(i, j) - mean);
          T const inv = T(1) / Kokkos::sqrt(var / N + T(eps));
          for (int j = 0; j < N; ++j) {
            T const hat = (x(i, j) - mean) * inv;
            saved(i, j) = hat;
            y(i, j) = gamma[j] * hat + beta[j];
          }
          saved(i, N) = inv;
        });
  }

  template <class ExecSpace, class T, class Isa>
  static void backward(ktnn::LayerContext<ExecSpace, T, Isa> const& ctx, ktnn::Matrix<T const> x,
                       ktnn::Matrix<T const>, ktnn::Matrix<T> dy, ktnn::Matrix<T> dx) {
    T const* gamma = ctx.parameters;
    T* grads = ctx.gradients;
    T const beta = ctx.gradient_beta();
    auto saved = ctx.template saved_rows<N + 1>();
    int const batch = x.rows;
    // Parameter gradients: one thread per feature sums the batch in order.
    Kokkos::parallel_for(
        "LayerNorm::backward::parameters", Kokkos::RangePolicy<ExecSpace>(ctx.exec, 0, N),
        KOKKOS_LAMBDA(int j) {
          T dgamma = 0, dbeta = 0;
          for (int i = 0; i < batch; ++i) {
            dgamma += dy(i, j) * saved(i, j);
            dbeta += dy(i, j);
          }
          grads[j] = beta * grads[j] + dgamma;
          grads[N + j] = beta * grads[N + j] + dbeta;
        });
    if (dx.empty()) return;
    Kokkos::parallel_for(
        "LayerNorm::backward::input", Kokkos::RangePolicy<ExecSpace>(ctx.exec, 0, batch),
        KOKKOS_LAMBDA(int i) {
          T sum = 0, dot = 0;
          for (int j = 0; j < N; ++j) {
            T const g = dy(i, j) * gamma[j];
            sum += g;
            dot += g * saved(i, j);
          }
          for (int j = 0; j < N; ++j)
            dx(i, j) = saved(i, N) / N * (N * dy(i, j) * gamma[j] - sum - saved(i, j) * dot);
        });
  }

  template <class P, class S>
  KOKKOS_INLINE_FUNCTION static void apply(P const* params, P const*, S const* x, S* y) {
    S mean = 0, var = 0;
    for (int j = 0; j < N; ++j) mean += x[j];
    mean = mean / S(N);
    for (int j = 0; j < N; ++j) var += (x[j] - mean) * (x[j] - mean);
    S const inv = S(1) / Kokkos::sqrt(var / S(N) + S(eps));
    for (int j = 0; j < N; ++j) y[j] = S(params[j]) * (x[j] - mean) * inv + S(params[N + j]);
  }
};

/// Inverted dropout with probability 1/4: in training mode each element is
/// kept with a draw keyed by (seed, step, element), so the mask repeats on
/// every backend and thread count and backward recomputes it.
template <int N>
struct Dropout : ktnn::LayerDefaults {
  static constexpr int in_features = N;
  static constexpr int out_features = N;
  static constexpr double p = 0.25;
  static std::string name() { return "Dropout<" + std::to_string(N) + ">"; }

  KOKKOS_INLINE_FUNCTION static bool kept(std::uint64_t seed, std::uint64_t step, std::size_t i,
                                          std::size_t j) {
    return ktnn::random::uniform(seed, 1000 + step, i * N + j) >= p;
  }
  template <class ExecSpace, class T, class Isa>
  static void forward(ktnn::LayerContext<ExecSpace, T, Isa> const& ctx, ktnn::Matrix<T const> x,
                      ktnn::Matrix<T> y) {
    bool const train = ctx.mode == ktnn::Mode::train;
    std::uint64_t const seed = ctx.seed, step = ctx.step;
    ktnn::ops::for_each_element(
        ctx.exec, "Dropout::forward", std::size_t(x.rows), N,
        KOKKOS_LAMBDA(std::size_t i, std::size_t j) {
          y(i, j) = !train ? x(i, j) : kept(seed, step, i, j) ? x(i, j) / T(1 - p) : T(0);
        });
  }
  template <class ExecSpace, class T, class Isa>
  static void backward(ktnn::LayerContext<ExecSpace, T, Isa> const& ctx, ktnn::Matrix<T const> x,
                       ktnn::Matrix<T const>, ktnn::Matrix<T> dy, ktnn::Matrix<T> dx) {
    if (dx.empty()) return;
    bool const train = ctx.mode == ktnn::Mode::train;
    std::uint64_t const seed = ctx.seed, step = ctx.step;
    ktnn::ops::for_each_element(
        ctx.exec, "Dropout::backward", std::size_t(x.rows), N,
        KOKKOS_LAMBDA(std::size_t i, std::size_t j) {
          dx(i, j) = !train ? dy(i, j) : kept(seed, step, i, j) ? dy(i, j) / T(1 - p) : T(0);
        });
  }
  template <class P, class S>
  KOKKOS_INLINE_FUNCTION static void apply(P const*, P const*, S const* x, S* y) {
    for (int j = 0; j < N; ++j) y[j] = x[j];  // inference is evaluation mode
  }
};

// Widths the tests below instantiate: nvcc warns (#177-D) of the static
// members of a type that only concept checks read.
static_assert(ktnn::Layer<LayerNorm<6>> && ktnn::Layer<Dropout<4>>);
static_assert(ktnn::check_layer<LayerNorm<9>>());
struct NotALayer {
  static constexpr int in_features = 3;
};
static_assert(NotALayer::in_features == 3 && !ktnn::Layer<NotALayer>);  // widths alone are not
static_assert(!ktnn::Layer<ktnn::ReLU>);  // an activation function, not a layer

// The optional members, a concept per family (layers/layer.hpp).
using TanhDense = ktnn::Dense<2, 3, ktnn::Tanh>;
using SmallConv = ktnn::Conv2D<ktnn::Image<1, 4, 4>, 2, 3>;
static_assert(ktnn::TaylorLayer<TanhDense> && ktnn::TaylorLayer<ktnn::Activation<ktnn::SiLU, 4>> &&
              ktnn::TaylorLayer<ktnn::Standardize<2>> && ktnn::check_taylor_layer<TanhDense>());
static_assert(!ktnn::TaylorLayer<LayerNorm<3>> && !ktnn::TaylorLayer<SmallConv>);
static_assert(ktnn::taylor_saved_per_row_of<TanhDense> == 3 &&
              ktnn::taylor_saved_per_row_of<ktnn::Dense<2, 3>> == 0 &&
              ktnn::taylor_saved_per_row_of<ktnn::Standardize<2>> == 0);
static_assert(ktnn::ShapeBindingLayer<ktnn::Flatten> &&
              ktnn::ShapeBindingLayer<ktnn::MaxPool2D<2>> &&
              ktnn::ShapeBindingLayer<ktnn::Residual<ktnn::ReLU>> &&
              ktnn::check_shape_binding_layer<ktnn::Dropout<0.5>>());
static_assert(!ktnn::ShapeBindingLayer<TanhDense> && !ktnn::ShapeBindingLayer<ktnn::ReLU>);
static_assert(ktnn::ShapedLayer<SmallConv> && ktnn::check_shaped_layer<SmallConv>() &&
              ktnn::ShapedLayer<ktnn::Flatten::bind<ktnn::Image<2, 3, 3>>> &&
              !ktnn::ShapedLayer<TanhDense>);
static_assert(ktnn::ShapePreservingLayer<ktnn::Activation<ktnn::ReLU, 3>> &&
              ktnn::ShapePreservingLayer<ktnn::Dropout<0.5>> &&
              !ktnn::ShapePreservingLayer<SmallConv>);
static_assert(ktnn::TorchModuleCount<TanhDense> && !ktnn::TorchModuleCount<LayerNorm<3>> &&
              ktnn::torch_modules_of<TanhDense> == 2 &&
              ktnn::torch_modules_of<ktnn::Dense<2, 3>> == 1 &&
              ktnn::torch_modules_of<LayerNorm<3>> == 1);

/// A layer whose shapes contradict its widths: a ShapedLayer it is not.
struct WrongShape : ktnn::LayerDefaults {
  static constexpr int in_features = 4;
  static constexpr int out_features = 4;
  using in_shape = ktnn::Features<4>;
  using out_shape = ktnn::Features<5>;
};
static_assert(WrongShape::in_features == 4 && !ktnn::ShapedLayer<WrongShape>);

}  // namespace

TEST_CASE_TEMPLATE_DEFINE("a layer defined outside the library: finite differences", Space,
                          protocol_fd) {
  using Net = ktnn::Sequential<ktnn::Dense<5, 6>, LayerNorm<6>, ktnn::Tanh, ktnn::Dense<6, 3>>;
  static_assert(Net::saved_per_sample == 7 && Net::param_count == 36 + 12 + 21);
  ktnn_test::check_gradients<Net, Space>(4, 31);
  ktnn_test::check_gradients<ktnn::Sequential<LayerNorm<9>>, Space>(1, 32);
  // Dropout in evaluation mode is the identity: a fixed function to check.
  ktnn_test::check_gradients<ktnn::Sequential<ktnn::Dense<3, 4>, Dropout<4>, ktnn::Dense<4, 2>>,
                             Space>(3, 33,
                                    [](auto& model) { model.set_mode(ktnn::Mode::evaluate); });
}
TEST_CASE_TEMPLATE_APPLY(protocol_fd, ktnn_test::spaces);

TEST_CASE_TEMPLATE_DEFINE("a layer defined outside the library: names, training, inference", Space,
                          protocol_train) {
  using Mem = typename Space::memory_space;
  using Net = ktnn::Sequential<ktnn::Dense<2, 16, ktnn::Tanh>, LayerNorm<16>, ktnn::Dense<16, 1>>;
  ktnn::Model<Net, double, Space> model(5, Space{});
  auto const& index = model.parameter_index();
  REQUIRE(index.size() == 6);
  CHECK(index[2].name == "2.weight");  // Linear, Tanh, LayerNorm
  CHECK(index[3].name == "2.bias");
  CHECK(index[3].shape == std::vector<std::size_t>{16});

  int const n = 64;
  ktnn_test::ProductProblem<Space> const problem(n);
  auto const x = problem.x;
  ktnn::Adam<double, Space> adam(model, {.lr = 1e-2});
  auto const [first, last] = ktnn_test::first_and_last_loss(model, adam, problem, 300);
  INFO("first " << first << " last " << last);
  CHECK(last < 0.05 * first);

  // The per-sample path runs the same layer (its apply) in a user kernel.
  auto const batched = ktnn_test::to_vector(model.forward(x));
  Kokkos::View<double**, Kokkos::LayoutRight, Mem> z("z", n, 1);
  auto net = model.inference();
  Kokkos::parallel_for(
      Kokkos::RangePolicy<Space>(0, n), KOKKOS_LAMBDA(int i) {
        double in[2] = {x(i, 0), x(i, 1)}, out[1];
        net(in, out);
        z(i, 0) = out[0];
      });
  ktnn_test::check_close(ktnn_test::to_vector(z), batched, 1e-12, 1e-12);
}
TEST_CASE_TEMPLATE_APPLY(protocol_train, ktnn_test::spaces);

TEST_CASE_TEMPLATE_DEFINE("mode, seed and step reach a layer through its context", Space,
                          protocol_dropout) {
  using Mem = typename Space::memory_space;
  using Net = ktnn::Sequential<Dropout<50>>;
  Kokkos::View<double**, Kokkos::LayoutRight, Mem> x("x", 8, 50), r("r", 8, 50);
  ktnn_test::fill_uniform(x, 1, 0.5, 1.5);  // no zeros: a zero output means dropped
  ktnn_test::fill_uniform(r, 2);
  auto const xs = ktnn_test::to_vector(x), rs = ktnn_test::to_vector(r);
  ktnn::Model<Net, double, Space> a(7), b(7), c(8);
  auto const a0 = ktnn_test::to_vector(a.forward(x));
  CHECK(a.steps() == 1);
  a.backward(r, true);
  auto const da = ktnn_test::to_vector(a.input_gradient());
  std::size_t dropped = 0;
  for (std::size_t e = 0; e < xs.size(); ++e) {
    bool const kept = a0[e] != 0.0;
    dropped += !kept;
    CHECK(a0[e] == doctest::Approx(kept ? xs[e] / 0.75 : 0.0));
    CHECK(da[e] == doctest::Approx(kept ? rs[e] / 0.75 : 0.0));  // the same mask in backward
  }
  CHECK(dropped > 50);  // about 100 of 400
  CHECK(dropped < 150);
  CHECK(ktnn_test::to_vector(b.forward(x)) == a0);  // same seed, same step
  CHECK(ktnn_test::to_vector(c.forward(x)) != a0);  // another seed
  CHECK(ktnn_test::to_vector(a.forward(x)) != a0);  // the next step
  a.set_mode(ktnn::Mode::evaluate);
  CHECK(ktnn_test::to_vector(a.forward(x)) == xs);  // evaluation mode: the identity
  CHECK(a.steps() == 2);                            // evaluation does not advance the step
}
TEST_CASE_TEMPLATE_APPLY(protocol_dropout, ktnn_test::spaces);

namespace {
/// T as the compiler spells it (in a compiler error, or here in its pretty
/// function name).
template <class T>
std::string spelled() {
  return __PRETTY_FUNCTION__;
}

template <class Net, std::size_t... I>
void check_public_names(std::index_sequence<I...>) {
  std::vector<std::string> const types{spelled<typename Net::template layer<I>>()...};
  std::vector<std::string> const names{Net::template layer<I>::name()...};
  for (std::size_t i = 0; i < types.size(); ++i) {
    INFO(types[i]);
    CHECK(types[i].find("detail") == std::string::npos);
    CHECK(names[i].find("detail") == std::string::npos);
  }
  CHECK(Net::name().find("detail") == std::string::npos);
}
}  // namespace

// Public layers derive from public, documented bases only.
static_assert(std::is_base_of_v<ktnn::PiecewiseLinear, ktnn::ReLU> &&
              std::is_base_of_v<ktnn::PiecewiseLinear, ktnn::LeakyReLU> &&
              std::is_base_of_v<ktnn::BatchNormBase<8, 1, false>, ktnn::BatchNorm1d<8>> &&
              std::is_base_of_v<ktnn::SoftmaxBase<5, true>, ktnn::LogSoftmaxLayer<5>> &&
              std::is_base_of_v<ktnn::StandardizeState<3>, ktnn::Unstandardize<3>> &&
              std::is_base_of_v<ktnn::Pool2D<ktnn::Pooling::average, 2>, ktnn::AvgPool2D<2>>);

TEST_CASE("bound layers show public names in their types and name()") {
  using ktnn::Image;
  using Images = ktnn::Sequential<
      ktnn::Conv2D<Image<2, 6, 6>, 4, 3, ktnn::Padding<1>>, ktnn::BatchNorm2d, ktnn::ReLU,
      ktnn::Residual<ktnn::Conv2D<Image<4, 6, 6>, 4, 3, ktnn::Padding<1>>, ktnn::ReLU>,
      ktnn::MaxPool2D<2>, ktnn::Dropout<0.25>, ktnn::AvgPool2D<2, ktnn::Stride<1>>, ktnn::Flatten,
      ktnn::Dense<16, 6>, ktnn::Softmax>;
  using Vectors = ktnn::Sequential<ktnn::Standardize<4>, ktnn::Dense<4, 8>, ktnn::BatchNorm1d<8>,
                                   ktnn::LayerNorm<8>, ktnn::LeakyReLU, ktnn::Dense<8, 3>,
                                   ktnn::LogSoftmax, ktnn::Unstandardize<3>>;
  using Global = ktnn::Sequential<ktnn::Conv2D<Image<1, 4, 4>, 2, 3>, ktnn::GlobalAvgPool2D>;
  check_public_names<Images>(std::make_index_sequence<Images::depth>{});
  check_public_names<Vectors>(std::make_index_sequence<Vectors::depth>{});
  check_public_names<Global>(std::make_index_sequence<Global::depth>{});

  // The bound forms by name (the compiler's spelling of them), and their
  // name() strings as before.
  CHECK(spelled<Images::layer<1>>().find("ktnn::BatchNorm2dLayer<ktnn::Image<4, 6, 6> >") !=
        std::string::npos);
  CHECK(spelled<Images::layer<3>>().find("ktnn::ResidualLayer<ktnn::Image<4, 6, 6>, ") !=
        std::string::npos);
  CHECK(spelled<Images::layer<4>>().find(
            "ktnn::Pool2DLayer<ktnn::Pooling::max, ktnn::Image<4, 6, 6>, 2, 2, 0, 1>") !=
        std::string::npos);
  CHECK(spelled<Images::layer<6>>().find(
            "ktnn::Pool2DLayer<ktnn::Pooling::average, ktnn::Image<4, 3, 3>, 2, 1, 0, 1>") !=
        std::string::npos);
  CHECK(spelled<Images::layer<7>>().find("ktnn::FlattenLayer<ktnn::Image<4, 2, 2> >") !=
        std::string::npos);
  CHECK(spelled<Global::layer<1>>().find("ktnn::GlobalAvgPool2DLayer<ktnn::Image<2, 2, 2> >") !=
        std::string::npos);
  CHECK(Images::layer<4>::name() == "MaxPool2D<2> on Image<4, 6, 6>");
  CHECK(Images::layer<6>::name() == "AvgPool2D<2, Stride<1>> on Image<4, 3, 3>");
  CHECK(Images::layer<7>::name() == "Flatten on Image<4, 2, 2>");
  CHECK(Global::layer<1>::name() == "GlobalAvgPool2D on Image<2, 2, 2>");
  CHECK(Images::layer<3>::name() ==
        "Residual<Sequential<Conv2D<Image<4, 6, 6>, 4, 3, Padding<1>>, "
        "ReLU<144>>>");
}

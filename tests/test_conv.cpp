// Convolution, pooling and Flatten: gradients against central differences in
// double at awkward geometries, forward against the definition written out
// here, compile-time shapes, per-sample calls and repeatable training.

#include "helpers.hpp"

#include <cmath>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

using ktnn::AvgPool2D;
using ktnn::Conv2D;
using ktnn::Dense;
using ktnn::Dilation;
using ktnn::Flatten;
using ktnn::GlobalAvgPool2D;
using ktnn::Image;
using ktnn::MaxPool2D;
using ktnn::Padding;
using ktnn::Sequential;
using ktnn::Stride;
using ktnn_test::check_gradients;

TEST_CASE_TEMPLATE_DEFINE("finite differences: Conv2D strides, paddings, dilations, odd sizes",
                          Space, conv_fd) {
  check_gradients<Sequential<Conv2D<Image<2, 5, 6>, 3, 3>>, Space>(2, 31);
  check_gradients<Sequential<Conv2D<Image<3, 7, 5>, 4, 3, Padding<1>, ktnn::Tanh>>, Space>(3, 32);
  check_gradients<Sequential<Conv2D<Image<2, 9, 8>, 3, 3, Stride<2>, Padding<1>, ktnn::GELU>>,
                  Space>(2, 33);
  check_gradients<Sequential<Conv2D<Image<1, 8, 7>, 2, 2, ktnn::Sigmoid, Dilation<2>, Stride<3>>>,
                  Space>(3, 34);
  check_gradients<Sequential<Conv2D<Image<2, 6, 6>, 3, 5, Padding<2>, Dilation<2>, ktnn::SiLU>>,
                  Space>(1, 35);
  // Past a register tile in both directions of every product (37 output
  // channels, 45 lowered rows, 143 pixels), and a batch that is not a
  // multiple of the weight-gradient chunk.
  check_gradients<Sequential<Conv2D<Image<5, 11, 13>, 37, 3, Padding<1>>>, Space>(9, 36);
}
TEST_CASE_TEMPLATE_APPLY(conv_fd, ktnn_test::spaces);

TEST_CASE_TEMPLATE_DEFINE("finite differences: pooling, Flatten and a small CNN", Space, pool_fd) {
  check_gradients<Sequential<Conv2D<Image<2, 6, 7>, 3, 1>, MaxPool2D<2>>, Space>(3, 41);
  // Overlapping windows with padding: the gather form of backward.
  check_gradients<Sequential<Conv2D<Image<2, 7, 6>, 3, 1>, MaxPool2D<3, Stride<2>, Padding<1>>>,
                  Space>(2, 42);
  check_gradients<Sequential<Conv2D<Image<2, 7, 6>, 2, 1>, AvgPool2D<3, Stride<1>, Padding<1>>>,
                  Space>(2, 43);
  check_gradients<
      Sequential<Conv2D<Image<3, 5, 4>, 4, 3, Padding<1>>, GlobalAvgPool2D, Dense<4, 2>>, Space>(
      3, 44);
  check_gradients<Sequential<Conv2D<Image<1, 8, 8>, 4, 3, ktnn::Tanh, Padding<1>>, MaxPool2D<2>,
                             Conv2D<Image<4, 4, 4>, 5, 3, Padding<1>>, ktnn::ReLU, AvgPool2D<2>,
                             Flatten, Dense<20, 3>>,
                  Space>(5, 45);
}
TEST_CASE_TEMPLATE_APPLY(pool_fd, ktnn_test::spaces);

namespace {
/// torch.nn.functional.conv2d written out, on host vectors.
template <int C, int H, int W, int O, int K, int S, int P, int D>
std::vector<double> reference_conv(std::vector<double> const& params, std::vector<double> const& x,
                                   int batch) {
  int const oh_n = (H + 2 * P - D * (K - 1) - 1) / S + 1;
  int const ow_n = (W + 2 * P - D * (K - 1) - 1) / S + 1;
  std::vector<double> y(std::size_t(batch) * O * oh_n * ow_n);
  std::size_t const weights = std::size_t(O) * C * K * K;
  for (int n = 0; n < batch; ++n)
    for (int o = 0; o < O; ++o)
      for (int oh = 0; oh < oh_n; ++oh)
        for (int ow = 0; ow < ow_n; ++ow) {
          double acc = params[weights + o];
          for (int c = 0; c < C; ++c)
            for (int kh = 0; kh < K; ++kh)
              for (int kw = 0; kw < K; ++kw) {
                int const ih = oh * S - P + kh * D, iw = ow * S - P + kw * D;
                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                acc += params[((std::size_t(o) * C + c) * K + kh) * K + kw] *
                       x[((std::size_t(n) * C + c) * H + ih) * W + iw];
              }
          y[((std::size_t(n) * O + o) * oh_n + oh) * ow_n + ow] = acc;
        }
  return y;
}

template <class Arch, class Space, class Reference>
void check_forward(int batch, std::uint64_t seed, Reference reference) {
  ktnn::Model<Arch, double, Space> model(seed);
  typename ktnn::Model<Arch, double, Space>::batch_view x("x", batch, Arch::in_features);
  ktnn_test::fill_uniform(x, seed + 1);
  auto const y = ktnn_test::to_vector(model.forward(x));
  auto const expected =
      reference(ktnn_test::to_vector(model.parameters()), ktnn_test::to_vector(x), batch);
  INFO(Arch::name());
  ktnn_test::check_close(y, expected, 1e-12, 1e-12);
}
}  // namespace

TEST_CASE_TEMPLATE_DEFINE("Conv2D forward equals torch.nn.functional.conv2d's definition", Space,
                          conv_forward) {
  check_forward<Sequential<Conv2D<Image<3, 9, 7>, 5, 3, Padding<1>>>, Space>(
      4, 51, reference_conv<3, 9, 7, 5, 3, 1, 1, 1>);
  check_forward<Sequential<Conv2D<Image<2, 10, 11>, 33, 3, Stride<2>, Dilation<2>, Padding<2>>>,
                Space>(3, 52, reference_conv<2, 10, 11, 33, 3, 2, 2, 2>);
  check_forward<Sequential<Conv2D<Image<1, 28, 28>, 32, 3, Padding<1>>>, Space>(
      2, 53, reference_conv<1, 28, 28, 32, 3, 1, 1, 1>);
}
TEST_CASE_TEMPLATE_APPLY(conv_forward, ktnn_test::spaces);

TEST_CASE("Sequential: image shapes at compile time, PyTorch names and shapes") {
  using Cnn = Sequential<Conv2D<Image<1, 28, 28>, 32, 3, ktnn::ReLU, Padding<1>>, MaxPool2D<2>,
                         Conv2D<Image<32, 14, 14>, 64, 3, ktnn::ReLU, Padding<1>>, MaxPool2D<2>,
                         Flatten, Dense<3136, 128, ktnn::ReLU>, Dense<128, 10>>;
  static_assert(std::is_same_v<Cnn::in_shape, Image<1, 28, 28>>);
  static_assert(std::is_same_v<std::tuple_element_t<1, Cnn::shapes>, Image<32, 14, 14>>);
  static_assert(std::is_same_v<std::tuple_element_t<3, Cnn::shapes>, Image<64, 7, 7>>);
  static_assert(std::is_same_v<std::tuple_element_t<4, Cnn::shapes>, ktnn::Features<3136>>);
  static_assert(std::is_same_v<Cnn::out_shape, ktnn::Features<10>>);
  static_assert(Cnn::in_features == 784 && Cnn::out_features == 10);
  static_assert(Cnn::param_count == 32 * 9 + 32 + 64 * 32 * 9 + 64 + 3136 * 128 + 128 + 1290);
  // An activation after a convolution keeps the image shape.
  using Unfused = Sequential<Conv2D<Image<2, 5, 5>, 3, 3>, ktnn::ReLU, MaxPool2D<3>>;
  static_assert(std::is_same_v<Unfused::out_shape, Image<3, 1, 1>>);
  auto const names = Cnn::describe();
  REQUIRE(names.size() == 8);
  CHECK(names[0].name == "0.weight");
  CHECK(names[0].shape == std::vector<std::size_t>{32, 1, 3, 3});
  CHECK(names[3].name == "3.bias");  // Conv2d, ReLU, MaxPool2d, Conv2d
  CHECK(names[2].shape == std::vector<std::size_t>{64, 32, 3, 3});
  CHECK(Cnn::name().find("Conv2D<Image<1, 28, 28>, 32, 3, ReLU, Padding<1>>") != std::string::npos);
  CHECK(Cnn::name().find("MaxPool2D<2> on Image<32, 28, 28>") != std::string::npos);
  CHECK(Cnn::name().find("Flatten on Image<64, 7, 7>") != std::string::npos);
}

TEST_CASE_TEMPLATE_DEFINE("a CNN's per-sample call equals its batched forward", Space,
                          cnn_per_sample) {
  using Cnn = Sequential<Conv2D<Image<2, 9, 9>, 4, 3, ktnn::ReLU, Padding<1>>,
                         MaxPool2D<3, Stride<2>, Padding<1>>, Conv2D<Image<4, 5, 5>, 3, 3>,
                         ktnn::Tanh, GlobalAvgPool2D, Dense<3, 2>>;
  ktnn::Model<Cnn, double, Space> model(61);
  typename ktnn::Model<Cnn, double, Space>::batch_view x("x", 5, Cnn::in_features);
  ktnn_test::fill_uniform(x, 62);
  auto const batched = ktnn_test::to_vector(model.forward(x));
  auto const params = ktnn_test::to_vector(model.parameters());
  auto const xs = ktnn_test::to_vector(x);
  std::vector<double> const state(1, 0.0);
  for (int n = 0; n < 5; ++n) {
    double y[Cnn::out_features];
    Cnn::apply(params.data(), state.data(), xs.data() + std::size_t(n) * Cnn::in_features, y);
    for (int j = 0; j < Cnn::out_features; ++j)
      CHECK(y[j] == doctest::Approx(batched[n * Cnn::out_features + j]).epsilon(1e-13));
  }
}
TEST_CASE_TEMPLATE_APPLY(cnn_per_sample, ktnn_test::spaces);

TEST_CASE_TEMPLATE_DEFINE("CNN training repeats bit for bit; gradients accumulate", Space,
                          cnn_repeat) {
  using Cnn = Sequential<Conv2D<Image<1, 12, 12>, 6, 3, ktnn::ReLU, Padding<1>>, MaxPool2D<2>,
                         Conv2D<Image<6, 6, 6>, 8, 3, ktnn::ReLU>, Flatten, Dense<128, 4>>;
  using Model = ktnn::Model<Cnn, float, Space>;
  auto train = [](int steps) {
    Model model(71);
    ktnn::Adam optimizer(model, {.lr = 1e-2f});
    ktnn::CrossEntropy loss;
    typename Model::batch_view x("x", 37, Cnn::in_features);
    ktnn_test::fill_uniform(x, 72);
    Kokkos::View<int*, typename Model::memory_space> labels("labels", 37);
    Kokkos::parallel_for(
        "labels", Kokkos::RangePolicy<Space>(0, 37), KOKKOS_LAMBDA(int i) { labels(i) = i % 4; });
    for (int s = 0; s < steps; ++s) ktnn::train_step(model, loss, optimizer, x, labels);
    return ktnn_test::to_vector(model.parameters());
  };
  auto const a = train(5), b = train(5);
  CHECK(a == b);
  CHECK(a != train(4));

  Model model(73);
  typename Model::batch_view x("x", 6, Cnn::in_features), r("r", 6, Cnn::out_features);
  ktnn_test::fill_uniform(x, 74);
  ktnn_test::fill_uniform(r, 75);
  model.zero_grad();
  model.forward(x);
  model.backward(r);
  auto const once = ktnn_test::to_vector(model.gradients());
  model.forward(x);
  model.backward(r);
  auto const twice = ktnn_test::to_vector(model.gradients());
  for (std::size_t i = 0; i < once.size(); ++i)
    CHECK(twice[i] == doctest::Approx(2 * once[i]).epsilon(1e-5));
  // An empty batch with Accumulate::no leaves zeros.
  typename Model::batch_view none_x("none", 0, Cnn::in_features), none_r("none_r", 0, 4);
  model.forward(none_x);
  model.backward(none_r, false, ktnn::Accumulate::no);
  for (double g : ktnn_test::to_vector(model.gradients())) CHECK(g == 0.0);
}
TEST_CASE_TEMPLATE_APPLY(cnn_repeat, ktnn_test::spaces);

TEST_CASE_TEMPLATE_DEFINE("check_finite names the first layer that made NaN or Inf", Space,
                          check_finite) {
  using Arch = Sequential<Dense<3, 4, ktnn::Tanh>, Dense<4, 5>, ktnn::ReLU, Dense<5, 2>>;
  using Model = ktnn::Model<Arch, double, Space>;
  Model model(3);
  typename Model::batch_view x("x", 2, 3), r("r", 2, 2);
  ktnn_test::fill_uniform(x, 4);
  ktnn_test::fill_uniform(r, 5);
  model.set_check_finite(true);
  CHECK(model.check_finite());
  model.forward(x);  // all finite: no error
  model.backward(r);

  std::size_t const weight = Arch::offset_of<1> + 2;
  double const saved = ktnn_test::to_vector(model.parameters())[weight];
  ktnn_test::set_element(model.parameters(), std::nan(""), weight);
  CHECK_THROWS_WITH_AS(model.forward(x),
                       doctest::Contains("forward output of layer 1 (Dense<4, 5, Identity>)"),
                       ktnn::Error);
  model.set_check_finite(false);
  CHECK_NOTHROW(model.forward(x));  // off: NaN flows on unchecked
  ktnn_test::set_element(model.parameters(), saved, weight);

  model.set_check_finite(true);
  model.forward(x);
  ktnn_test::set_element(r, std::numeric_limits<double>::infinity(), 1, 0);
  CHECK_THROWS_WITH_AS(model.backward(r),
                       doctest::Contains("parameter gradient of layer 3 (Dense<5, 2, Identity>)"),
                       ktnn::Error);
}
TEST_CASE_TEMPLATE_APPLY(check_finite, ktnn_test::spaces);

TEST_CASE_TEMPLATE_DEFINE("finite differences: Residual blocks on vectors and images", Space,
                          residual_fd) {
  check_gradients<
      Sequential<Dense<5, 6>, ktnn::Residual<Dense<6, 6, ktnn::Tanh>, Dense<6, 6>>, Dense<6, 2>>,
      Space>(4, 81);
  // A bare activation inside the block, two blocks in a row, and a block
  // of one layer.
  check_gradients<Sequential<Conv2D<Image<2, 5, 5>, 3, 1>,
                             ktnn::Residual<Conv2D<Image<3, 5, 5>, 3, 3, ktnn::Tanh, Padding<1>>,
                                            ktnn::Sigmoid, Conv2D<Image<3, 5, 5>, 3, 1>>,
                             ktnn::Residual<Conv2D<Image<3, 5, 5>, 3, 3, Padding<1>>>,
                             GlobalAvgPool2D, Dense<3, 2>>,
                  Space>(3, 82);
}
TEST_CASE_TEMPLATE_APPLY(residual_fd, ktnn_test::spaces);

TEST_CASE_TEMPLATE_DEFINE("Residual: x + block(x), names, per-sample call", Space, residual) {
  using Block = ktnn::Residual<Dense<4, 7, ktnn::ReLU>, Dense<7, 4>>;
  using Arch = Sequential<Dense<3, 4>, Block, Dense<4, 2>>;
  using Plain = Sequential<Dense<3, 4>, Dense<4, 7, ktnn::ReLU>, Dense<7, 4>, Dense<4, 2>>;
  static_assert(Arch::param_count == Plain::param_count);
  auto const names = Arch::describe();
  REQUIRE(names.size() == 8);
  CHECK(names[2].name == "1.block.0.weight");
  CHECK(names[5].name == "1.block.2.bias");  // Linear, ReLU, Linear
  CHECK(names[6].name == "2.weight");
  CHECK(names[6].offset == Plain::offset_of<3>);

  ktnn::Model<Arch, double, Space> model(91);
  typename ktnn::Model<Arch, double, Space>::batch_view x("x", 5, 3);
  ktnn_test::fill_uniform(x, 92);
  auto const batched = ktnn_test::to_vector(model.forward(x));
  auto const p = ktnn_test::to_vector(model.parameters());
  auto const xs = ktnn_test::to_vector(x);
  std::vector<double> const state(1, 0.0);
  for (int n = 0; n < 5; ++n) {
    // The definition, layer by layer on the host: h = W0 x + b0, then
    // y = W3 (h + W2 relu(W1 h + b1) + b2) + b3.
    auto dense = [&](std::size_t offset, int in, int out, std::vector<double> const& v) {
      std::vector<double> r(out);
      for (int o = 0; o < out; ++o) {
        r[o] = p[offset + std::size_t(in) * out + o];
        for (int i = 0; i < in; ++i) r[o] += p[offset + std::size_t(o) * in + i] * v[i];
      }
      return r;
    };
    std::vector<double> in(xs.begin() + n * 3, xs.begin() + n * 3 + 3);
    auto h = dense(0, 3, 4, in);
    auto a = dense(Plain::offset_of<1>, 4, 7, h);
    for (auto& v : a) v = v > 0 ? v : 0;
    auto b = dense(Plain::offset_of<2>, 7, 4, a);
    for (int j = 0; j < 4; ++j) b[j] += h[j];
    auto const y = dense(Plain::offset_of<3>, 4, 2, b);
    double single[2];
    Arch::apply(p.data(), state.data(), xs.data() + n * 3, single);
    for (int j = 0; j < 2; ++j) {
      CHECK(batched[n * 2 + j] == doctest::Approx(y[j]).epsilon(1e-12));
      CHECK(single[j] == doctest::Approx(y[j]).epsilon(1e-12));
    }
  }
}
TEST_CASE_TEMPLATE_APPLY(residual, ktnn_test::spaces);

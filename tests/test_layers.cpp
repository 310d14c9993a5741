// Every layer's backward pass against central finite differences in double,
// at awkward sizes; fused Dense+activation against the separate layers.

#include "helpers.hpp"

#include <cstdint>
#include <string>

using ktnn_test::check_gradients;

TEST_CASE_TEMPLATE_DEFINE("finite differences: Dense with each fused activation", Space, dense_fd) {
  check_gradients<ktnn::Sequential<ktnn::Dense<3, 5>>, Space>(4, 1);
  check_gradients<ktnn::Sequential<ktnn::Dense<7, 4, ktnn::ReLU>>, Space>(1, 2);
  check_gradients<ktnn::Sequential<ktnn::Dense<5, 3, ktnn::Tanh>>, Space>(3, 3);
  check_gradients<ktnn::Sequential<ktnn::Dense<6, 9, ktnn::Sigmoid>>, Space>(5, 4);
  check_gradients<ktnn::Sequential<ktnn::Dense<4, 7, ktnn::GELU>>, Space>(3, 5);
  check_gradients<ktnn::Sequential<ktnn::Dense<9, 5, ktnn::SiLU>>, Space>(2, 6);
  // Sizes past one register tile in every direction, with ragged edges.
  check_gradients<ktnn::Sequential<ktnn::Dense<37, 41, ktnn::Tanh>>, Space>(19, 7);
  // A long batch: on the device path the weight gradient splits K (the batch)
  // across teams and the bias gradient sums row chunks in a second pass.
  check_gradients<ktnn::Sequential<ktnn::Dense<4, 3, ktnn::Tanh>, ktnn::Dense<3, 2>>, Space>(300,
                                                                                             8);
}
TEST_CASE_TEMPLATE_APPLY(dense_fd, ktnn_test::spaces);

TEST_CASE_TEMPLATE_DEFINE("finite differences: activations as layers and deep stacks", Space,
                          stack_fd) {
  check_gradients<ktnn::Sequential<ktnn::Dense<4, 6>, ktnn::ReLU, ktnn::Dense<6, 3>>, Space>(5, 11);
  check_gradients<ktnn::Sequential<ktnn::Dense<3, 6>, ktnn::Tanh, ktnn::Dense<6, 6>, ktnn::GELU,
                                   ktnn::Dense<6, 2>, ktnn::Sigmoid>,
                  Space>(3, 12);
  check_gradients<ktnn::Sequential<ktnn::Dense<2, 9, ktnn::SiLU>, ktnn::Dense<9, 9, ktnn::ReLU>,
                                   ktnn::Dense<9, 1>>,
                  Space>(1, 13);
  // Chained Dense layers: each one's input gradient carries the derivative
  // of the activation below it (Tanh, Sigmoid, ReLU), so the lower layer
  // starts from dL/dz (runner.hpp, hands_down_activation).
  check_gradients<ktnn::Sequential<ktnn::Dense<3, 8, ktnn::ReLU>, ktnn::Dense<8, 7, ktnn::Sigmoid>,
                                   ktnn::Dense<7, 6, ktnn::Tanh>, ktnn::Dense<6, 2, ktnn::Tanh>>,
                  Space>(23, 14);
  // Wider than a register tile: the derivative is applied a tile row at a time.
  check_gradients<ktnn::Sequential<ktnn::Dense<3, 40, ktnn::Tanh>,
                                   ktnn::Dense<40, 34, ktnn::Sigmoid>, ktnn::Dense<34, 2>>,
                  Space>(21, 15);
}
TEST_CASE_TEMPLATE_APPLY(stack_fd, ktnn_test::spaces);

namespace {
/// Models of architectures A and B (B: A's layers with activations split
/// out, the same parameters) give the same outputs, parameter gradients and
/// input gradients on one batch, over `passes` backward passes (the later
/// ones accumulate).
template <class A, class B, class Space>
void check_same_model(int batch, std::uint64_t seed, int passes) {
  static_assert(A::param_count == B::param_count);
  ktnn::Model<A, double, Space> a(seed);
  ktnn::Model<B, double, Space> b(seed);
  Kokkos::deep_copy(b.parameters(), a.parameters());
  typename ktnn::Model<A, double, Space>::batch_view x("x", batch, A::in_features),
      r("r", batch, A::out_features);
  ktnn_test::fill_uniform(x, seed + 1);
  ktnn_test::fill_uniform(r, seed + 2);
  ktnn_test::check_close(ktnn_test::to_vector(a.forward(x)), ktnn_test::to_vector(b.forward(x)),
                         1e-13, 1e-14);
  for (int pass = 0; pass < passes; ++pass) {
    auto const accumulate = pass == 0 ? ktnn::Accumulate::no : ktnn::Accumulate::yes;
    a.backward(r, true, accumulate);
    b.backward(r, true, accumulate);
    ktnn_test::check_close(ktnn_test::to_vector(a.gradients()), ktnn_test::to_vector(b.gradients()),
                           1e-12, 1e-14);
    ktnn_test::check_close(ktnn_test::to_vector(a.input_gradient()),
                           ktnn_test::to_vector(b.input_gradient()), 1e-12, 1e-14);
  }
}
}  // namespace

TEST_CASE_TEMPLATE_DEFINE("fused Dense+activation equals Dense then the activation layer", Space,
                          fused_vs_unfused) {
  using Fused = ktnn::Sequential<ktnn::Dense<13, 11, ktnn::GELU>, ktnn::Dense<11, 3, ktnn::ReLU>>;
  using Split = ktnn::Sequential<ktnn::Dense<13, 11>, ktnn::GELU, ktnn::Dense<11, 3>, ktnn::ReLU>;
  check_same_model<Fused, Split, Space>(17, 5, 1);
}
TEST_CASE_TEMPLATE_APPLY(fused_vs_unfused, ktnn_test::spaces);

TEST_CASE_TEMPLATE_DEFINE("chained Dense backward equals the layers one by one", Space, chained) {
  // Sequential<Dense<.., Tanh>, Dense<.., Sigmoid>, Dense> hands each
  // activation's derivative to the layer above; with the activations as
  // layers of their own nothing is handed down.
  using Chained = ktnn::Sequential<ktnn::Dense<6, 9, ktnn::Tanh>, ktnn::Dense<9, 5, ktnn::Sigmoid>,
                                   ktnn::Dense<5, 4>>;
  using Split = ktnn::Sequential<ktnn::Dense<6, 9>, ktnn::Tanh, ktnn::Dense<9, 5>, ktnn::Sigmoid,
                                 ktnn::Dense<5, 4>>;
  static_assert(ktnn::hands_down_activation<ktnn::StandardPasses, Chained, 1>() &&
                ktnn::hands_down_activation<ktnn::StandardPasses, Chained, 2>() &&
                !ktnn::hands_down_activation<ktnn::StandardPasses, Split, 2>());
  check_same_model<Chained, Split, Space>(29, 3, 2);
  // Layers wider than a register tile and a batch past several: the host
  // tile applies the handed-down derivative a row at a time.
  using Wide = ktnn::Sequential<ktnn::Dense<6, 40, ktnn::ReLU>, ktnn::Dense<40, 36, ktnn::Tanh>,
                                ktnn::Dense<36, 4>>;
  using WideSplit = ktnn::Sequential<ktnn::Dense<6, 40>, ktnn::ReLU, ktnn::Dense<40, 36>,
                                     ktnn::Tanh, ktnn::Dense<36, 4>>;
  check_same_model<Wide, WideSplit, Space>(70, 7, 2);
}
TEST_CASE_TEMPLATE_APPLY(chained, ktnn_test::spaces);

TEST_CASE("Sequential: compile-time shapes, parameter layout and PyTorch names") {
  using Mlp = ktnn::Sequential<ktnn::Dense<784, 256, ktnn::ReLU>, ktnn::Dense<256, 128>, ktnn::ReLU,
                               ktnn::Dense<128, 10>>;
  static_assert(Mlp::in_features == 784 && Mlp::out_features == 10);
  static_assert(Mlp::depth == 4);
  static_assert(std::is_same_v<Mlp::layer<2>, ktnn::Activation<ktnn::ReLU, 128>>);
  static_assert(Mlp::param_count == 784 * 256 + 256 + 256 * 128 + 128 + 128 * 10 + 10);
  static_assert(Mlp::param_offset[1] == 784 * 256 + 256);
  auto const index = Mlp::describe();
  REQUIRE(index.size() == 6);
  CHECK(index[0].name == "0.weight");
  CHECK(index[0].shape == std::vector<std::size_t>{256, 784});
  CHECK(index[1].name == "0.bias");
  CHECK(index[1].offset == 784 * 256);
  CHECK(index[2].name == "2.weight");  // the fused ReLU is module 1, as in PyTorch
  CHECK(index[4].name == "4.weight");  // the ReLU at index 3 has no parameters
  CHECK(index[5].offset + index[5].size() == Mlp::param_count);
}

TEST_CASE_TEMPLATE_DEFINE("Model: parameters by name, zero_grad, bad gradient sizes", Space,
                          model_api) {
  using Arch = ktnn::Sequential<ktnn::Dense<3, 2>>;
  ktnn::Model<Arch, float, Space> model(1);
  auto bias = model.parameter("0.bias");
  CHECK(bias.extent(0) == 2);
  CHECK(bias.data() == model.parameters().data() + 6);
  CHECK_THROWS_AS(model.parameter("0.weights"), ktnn::Error);
  typename ktnn::Model<Arch, float, Space>::batch_view x("x", 4, 3), wrong("dy", 4, 3);
  model.forward(x);
  CHECK_THROWS_WITH_AS(model.backward(wrong), doctest::Contains("ktnn::Model::backward"),
                       ktnn::Error);
  CHECK_THROWS_AS(model.input_gradient(), ktnn::Error);
  typename ktnn::Model<Arch, float, Space>::batch_view bad_x("bad_x", 4, 5);
  CHECK_THROWS_WITH_AS(model.forward(bad_x), doctest::Contains("has 5 features"), ktnn::Error);
}
TEST_CASE_TEMPLATE_APPLY(model_api, ktnn_test::spaces);

TEST_CASE_TEMPLATE_DEFINE("initialization: keyed by seed, bounded, zero bias", Space, init) {
  using Arch = ktnn::Sequential<ktnn::Dense<64, 32, ktnn::ReLU>, ktnn::Dense<32, 8>>;
  ktnn::Model<Arch, float, Space> a(7), b(7), c(8);
  auto const pa = ktnn_test::to_vector(a.parameters());
  CHECK(pa == ktnn_test::to_vector(b.parameters()));
  CHECK(pa != ktnn_test::to_vector(c.parameters()));
  double const he = std::sqrt(6.0 / 64), glorot = std::sqrt(6.0 / 40);
  double sum = 0, sum2 = 0;
  for (std::size_t i = 0; i < 64 * 32; ++i) {
    CHECK(std::abs(pa[i]) <= he);
    sum += pa[i];
    sum2 += pa[i] * pa[i];
  }
  for (std::size_t i = 64 * 32; i < 64 * 32 + 32; ++i) CHECK(pa[i] == 0.0);
  for (std::size_t i = 64 * 32 + 32; i < 64 * 32 + 32 + 32 * 8; ++i)
    CHECK(std::abs(pa[i]) <= glorot);
  // U(-a, a) has variance a^2 / 3.
  double const mean = sum / 2048, var = sum2 / 2048 - mean * mean;
  CHECK(std::abs(mean) < 0.02);
  CHECK(var == doctest::Approx(he * he / 3).epsilon(0.1));
  // Each value is a pure function of (seed, arena index), computed here on the
  // host: the same on every backend and thread count.
  for (std::size_t i : {0ul, 1ul, 777ul, 2047ul})
    CHECK(pa[i] == double(float(ktnn::detail::init_value(ktnn::Init::HeUniform, 7, i, 64, 32))));
  for (std::size_t i : {2080ul, 2200ul})
    CHECK(pa[i] == double(float(ktnn::detail::init_value(ktnn::Init::GlorotUniform, 7, i, 32, 8))));
  // The normal schemes: mean 0, variance 2 / fan_in.
  ktnn::Model<Arch, double, Space> normal(3, ktnn::Init::HeNormal);
  auto const pn = ktnn_test::to_vector(normal.parameters());
  sum = sum2 = 0;
  for (std::size_t i = 0; i < 2048; ++i) {
    sum += pn[i];
    sum2 += pn[i] * pn[i];
  }
  CHECK(std::abs(sum / 2048) < 0.02);
  CHECK(sum2 / 2048 == doctest::Approx(2.0 / 64).epsilon(0.1));
}
TEST_CASE_TEMPLATE_APPLY(init, ktnn_test::spaces);

TEST_CASE_TEMPLATE_DEFINE("backward accumulates into the gradients or overwrites them", Space,
                          accumulate) {
  using Arch = ktnn::Sequential<ktnn::Dense<5, 9, ktnn::ReLU>, ktnn::Dense<9, 4>>;
  using Model = ktnn::Model<Arch, double, Space>;
  Model model(2);
  typename Model::batch_view x("x", 6, 5), r("r", 6, 4);
  ktnn_test::fill_uniform(x, 3);
  ktnn_test::fill_uniform(r, 4);
  model.zero_grad();
  model.forward(x);
  model.backward(r);
  auto const once = ktnn_test::to_vector(model.gradients());
  model.forward(x);
  model.backward(r);  // Accumulate::yes: twice the gradient
  auto const twice = ktnn_test::to_vector(model.gradients());
  for (std::size_t i = 0; i < once.size(); ++i) CHECK(twice[i] == doctest::Approx(2 * once[i]));
  model.forward(x);
  model.backward(r, false, ktnn::Accumulate::no);  // what was there is ignored
  CHECK(ktnn_test::to_vector(model.gradients()) == once);
}
TEST_CASE_TEMPLATE_APPLY(accumulate, ktnn_test::spaces);

TEST_CASE_TEMPLATE_DEFINE("an empty batch leaves zero gradients (Accumulate::no)", Space,
                          empty_batch) {
  using Arch = ktnn::Sequential<ktnn::Dense<5, 9, ktnn::ReLU>, ktnn::Dense<9, 4>>;
  using Model = ktnn::Model<Arch, double, Space>;
  Model model(2);
  typename Model::batch_view x("x", 6, 5), r("r", 6, 4), none_x("none", 0, 5),
      none_r("none_r", 0, 4);
  ktnn_test::fill_uniform(x, 3);
  ktnn_test::fill_uniform(r, 4);
  model.forward(x);
  model.backward(r);  // non-zero gradients first
  model.forward(none_x);
  CHECK(model.output().extent(0) == 0);
  model.backward(none_r, false, ktnn::Accumulate::no);
  for (double g : ktnn_test::to_vector(model.gradients())) CHECK(g == 0.0);
}
TEST_CASE_TEMPLATE_APPLY(empty_batch, ktnn_test::spaces);

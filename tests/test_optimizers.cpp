// Optimizer steps against values computed by hand from the update rules of
// torch.optim (SGD, Adam, AdamW).

#include "helpers.hpp"

namespace {
template <class Space>
using Arena = Kokkos::View<double*, typename Space::memory_space>;

template <class Space>
Arena<Space> arena(std::vector<double> const& values) {
  Arena<Space> v("arena", values.size());
  auto h = Kokkos::create_mirror_view(v);
  for (std::size_t i = 0; i < values.size(); ++i) h(i) = values[i];
  Kokkos::deep_copy(v, h);
  return v;
}
}  // namespace

TEST_CASE_TEMPLATE_DEFINE("Adam: first and second steps by hand", Space, adam) {
  auto p = arena<Space>({1.0, -2.0, 0.5});
  auto g = arena<Space>({0.1, -0.3, 0.0});
  ktnn::Adam<double, Space> adam(3, {.lr = 0.1});
  adam.step(p, g);
  // Step 1: m_hat = g, v_hat = g^2, so p -= lr * g / (|g| + eps).
  auto const p1 = ktnn_test::to_vector(p);
  CHECK(p1[0] == doctest::Approx(1.0 - 0.1 * 0.1 / (0.1 + 1e-8)).epsilon(1e-14));
  CHECK(p1[1] == doctest::Approx(-2.0 + 0.1 * 0.3 / (0.3 + 1e-8)).epsilon(1e-14));
  CHECK(p1[2] == 0.5);
  // Step 2 with gradient 0.2 on the first parameter:
  // m = 0.9*0.01 + 0.1*0.2 = 0.029 -> m_hat = 0.029/0.19
  // v = 0.999*1e-5 + 0.001*0.04 = 4.999e-5 -> v_hat = 4.999e-5/(1-0.999^2)
  g = arena<Space>({0.2, -0.3, 0.0});
  adam.step(p, g);
  double const m_hat = 0.029 / 0.19, v_hat = 4.999e-5 / (1 - 0.999 * 0.999);
  CHECK(ktnn_test::to_vector(p)[0] ==
        doctest::Approx(p1[0] - 0.1 * m_hat / (std::sqrt(v_hat) + 1e-8)).epsilon(1e-12));
  CHECK(adam.steps() == 2);
}
TEST_CASE_TEMPLATE_APPLY(adam, ktnn_test::spaces);

TEST_CASE_TEMPLATE_DEFINE("Adam with L2 weight decay and AdamW with decoupled decay", Space,
                          adam_decay) {
  // Adam, L2: the gradient becomes g + wd * p = 0.1 + 0.5 * 2 = 1.1; step 1
  // moves by lr * sign.
  auto p = arena<Space>({2.0});
  auto g = arena<Space>({0.1});
  ktnn::Adam<double, Space> adam(1, {.lr = 0.01, .weight_decay = 0.5});
  adam.step(p, g);
  CHECK(ktnn_test::to_vector(p)[0] == doctest::Approx(2.0 - 0.01 * 1.1 / (1.1 + 1e-8)));
  // AdamW: p is first shrunk by (1 - lr * wd), then the Adam step on g alone.
  auto q = arena<Space>({2.0});
  ktnn::Adam<double, Space> adamw(
      1, {.lr = 0.01, .weight_decay = 0.5, .decoupled_weight_decay = true});
  adamw.step(q, g);
  CHECK(ktnn_test::to_vector(q)[0] ==
        doctest::Approx(2.0 * (1 - 0.01 * 0.5) - 0.01 * 0.1 / (0.1 + 1e-8)).epsilon(1e-14));
}
TEST_CASE_TEMPLATE_APPLY(adam_decay, ktnn_test::spaces);

TEST_CASE_TEMPLATE_DEFINE("SGD: plain, momentum, Nesterov, weight decay", Space, sgd) {
  auto g = arena<Space>({0.5});
  {
    auto p = arena<Space>({1.0});
    ktnn::SGD<double, Space> sgd(1, {.lr = 0.1});
    sgd.step(p, g);
    CHECK(ktnn_test::to_vector(p)[0] == doctest::Approx(0.95).epsilon(1e-15));
  }
  {
    // momentum 0.9: v1 = g = 0.5, p = 1 - 0.05 = 0.95; v2 = 0.9*0.5 + 0.5 = 0.95,
    // p = 0.95 - 0.095 = 0.855.
    auto p = arena<Space>({1.0});
    ktnn::SGD<double, Space> sgd(1, {.lr = 0.1, .momentum = 0.9});
    sgd.step(p, g);
    sgd.step(p, g);
    CHECK(ktnn_test::to_vector(p)[0] == doctest::Approx(0.855).epsilon(1e-15));
  }
  {
    // Nesterov: step 1 d = g + 0.9*v1 = 0.5 + 0.45 = 0.95 -> p = 0.905;
    // step 2 v2 = 0.95, d = 0.5 + 0.855 = 1.355 -> p = 0.905 - 0.1355 = 0.7695.
    auto p = arena<Space>({1.0});
    ktnn::SGD<double, Space> sgd(1, {.lr = 0.1, .momentum = 0.9, .nesterov = true});
    sgd.step(p, g);
    CHECK(ktnn_test::to_vector(p)[0] == doctest::Approx(0.905).epsilon(1e-15));
    sgd.step(p, g);
    CHECK(ktnn_test::to_vector(p)[0] == doctest::Approx(0.7695).epsilon(1e-15));
  }
  {
    // weight decay 0.1: d = 0.5 + 0.1 * 1 = 0.6 -> p = 0.94.
    auto p = arena<Space>({1.0});
    ktnn::SGD<double, Space> sgd(1, {.lr = 0.1, .weight_decay = 0.1});
    sgd.step(p, g);
    CHECK(ktnn_test::to_vector(p)[0] == doctest::Approx(0.94).epsilon(1e-15));
  }
  CHECK_THROWS_WITH_AS((ktnn::SGD<double, Space>(1, {.lr = 0.1, .nesterov = true})),
                       doctest::Contains("Nesterov momentum needs momentum > 0"), ktnn::Error);
  auto p = arena<Space>({1.0, 2.0});
  ktnn::SGD<double, Space> sgd(1, {.lr = 0.1});
  CHECK_THROWS_AS(sgd.step(p, g), ktnn::Error);
}
TEST_CASE_TEMPLATE_APPLY(sgd, ktnn_test::spaces);

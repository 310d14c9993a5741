// Optimizer steps against values computed by hand from the update rules of
// torch.optim (SGD, Adam, AdamW).

#include "helpers.hpp"

namespace {
template <class Space>
using Arena = Kokkos::View<double*, typename Space::memory_space>;

template <class Space>
Arena<Space> arena(std::vector<double> const& values) {
  return ktnn_test::device_vector<double, Space>(values, "arena");
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

namespace {
/// An optimizer of the whole protocol but member `Missing` (-1: none), so
/// each requirement of ktnn::Optimizer is seen to count.
template <int Missing>
struct ProbeOptimizer {
  using value_type = double;
  using execution_space = Kokkos::DefaultHostExecutionSpace;
  using memory_space = execution_space::memory_space;
  using Arena = Kokkos::View<double*, memory_space>;
  void step(Arena const&, Arena const&)
    requires(Missing != 0)
  {}
  double learning_rate() const
    requires(Missing != 1)
  {
    return 0;
  }
  void set_learning_rate(double)
    requires(Missing != 2)
  {}
  std::int64_t non_finite_step() const
    requires(Missing != 3)
  {
    return -1;
  }
  void clear_non_finite()
    requires(Missing != 4)
  {}
  std::string state_type() const
    requires(Missing != 5)
  {
    return "Probe";
  }
  std::vector<ktnn::StateTensor<double, memory_space>> state_tensors() const
    requires(Missing != 6)
  {
    return {};
  }
  ktnn::Counters export_counters() const
    requires(Missing != 7)
  {
    return {};
  }
  void import_counters(ktnn::Counters const&, bool = false)
    requires(Missing != 8)
  {}
};

template <int... Missing>
constexpr bool each_member_counts(std::integer_sequence<int, Missing...>) {
  return (!ktnn::Optimizer<ProbeOptimizer<Missing>> && ...);
}
static_assert(ktnn::check_optimizer<ProbeOptimizer<-1>>());
static_assert(each_member_counts(std::make_integer_sequence<int, 9>{}));
}  // namespace

TEST_CASE_TEMPLATE_DEFINE("every ktnn optimizer and wrapper meets its protocol", Space, protocol) {
  using Model = ktnn::Model<ktnn::Sequential<ktnn::Dense<2, 1>>, double, Space>;
  using Adam = ktnn::Adam<double, Space>;
  static_assert(ktnn::check_optimizer_for<ktnn::SGD<double, Space>, Model>());
  static_assert(ktnn::check_optimizer_for<Adam, Model>());
  static_assert(ktnn::check_optimizer_for<ktnn::AdamW<double, Space>, Model>());
  static_assert(ktnn::check_optimizer_for<ktnn::RMSprop<double, Space>, Model>());
  static_assert(ktnn::check_optimizer_for<ktnn::Adagrad<double, Space>, Model>());
  using Clipped = ktnn::Clipped<Adam>;
  using Scheduled = ktnn::Scheduled<Clipped, ktnn::StepLR>;
  static_assert(ktnn::check_optimizer_wrapper<Clipped>());
  static_assert(ktnn::check_optimizer_wrapper<Scheduled>());
  static_assert(ktnn::check_optimizer_for<Scheduled, Model>());
  static_assert(!ktnn::OptimizerWrapper<Adam>);
  // A plateau's reduction would be undone by a schedule's next step, so
  // ReduceLROnPlateau refuses a Scheduled, wrapped or not.
  static_assert(ktnn::KeepsSetRate<Adam> && ktnn::KeepsSetRate<Clipped>);
  static_assert(!ktnn::KeepsSetRate<Scheduled>);
  static_assert(!ktnn::KeepsSetRate<ktnn::Clipped<Scheduled>>);
  static_assert(requires(ktnn::ReduceLROnPlateau& plateau, Clipped& o) { plateau.step(1.0, o); });
  static_assert(
      !requires(ktnn::ReduceLROnPlateau& plateau, Scheduled& o) { plateau.step(1.0, o); });
  // A float optimizer does not step a double model's arenas.
  static_assert(!requires(ktnn::Adam<float, Space>& o, Model const& m) {
    o.step(m.parameters(), m.gradients());
  });

  // The forwarding of the wrappers reaches the optimizer they hold; a rate
  // set through Scheduled lasts until its next step sets the schedule's.
  auto p = arena<Space>({1.0});
  auto g = arena<Space>({1.0});
  Adam adam(1, {.lr = 0.5});
  Clipped clipped(adam, 10.0);
  Scheduled scheduled(clipped, ktnn::StepLR({.base_lr = 0.25, .step_size = 10}));
  CHECK(&scheduled.optimizer().optimizer() == &adam);
  scheduled.set_learning_rate(0.125);
  CHECK(adam.learning_rate() == 0.125);
  CHECK(clipped.learning_rate() == 0.125);
  scheduled.step(p, g);
  CHECK(adam.learning_rate() == 0.25);
  CHECK(adam.steps() == 1);
  CHECK(scheduled.state_type() == "Scheduled<Clipped<Adam>>");
  auto const counters = scheduled.export_counters();
  CHECK(counters.at("optimizer.max_norm") == "10");
  CHECK(counters.at("optimizer.optimizer.lr") == "0.25");
  CHECK(counters.at("steps") == "1");
}
TEST_CASE_TEMPLATE_APPLY(protocol, ktnn_test::spaces);

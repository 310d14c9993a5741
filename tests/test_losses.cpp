// Losses: values against hand computation, gradients against finite
// differences in double, numerical stability at extreme logits.

#include "helpers.hpp"

using ktnn_test::check_loss_gradient;
using ktnn_test::Rows;
using ktnn_test::run_loss;

TEST_CASE_TEMPLATE_DEFINE("CrossEntropy: value, accuracy and gradient", Space, cross_entropy) {
  using Mem = typename Space::memory_space;
  Rows<Space> logits("logits", 2, 3);
  Kokkos::View<int*, Mem> labels("labels", 2);
  auto lh = Kokkos::create_mirror_view(logits);
  auto yh = Kokkos::create_mirror_view(labels);
  lh(0, 0) = 1;
  lh(0, 1) = 2;
  lh(0, 2) = 3;
  yh(0) = 2;  // predicted right
  lh(1, 0) = 0;
  lh(1, 1) = 0;
  lh(1, 2) = 0;
  yh(1) = 0;  // a tie: arg-max is class 0
  Kokkos::deep_copy(logits, lh);
  Kokkos::deep_copy(labels, yh);
  auto const sums = run_loss<Space>(ktnn::CrossEntropy{}, logits, labels, Rows<Space>());
  double const first = std::log(std::exp(1.0) + std::exp(2.0) + std::exp(3.0)) - 3.0;
  double const second = std::log(3.0);
  CHECK(sums.loss == doctest::Approx(first + second).epsilon(1e-14));
  CHECK(sums.mean_loss() == doctest::Approx((first + second) / 2).epsilon(1e-14));
  CHECK(sums.correct == 2);
  CHECK(sums.count == 2);

  Rows<Space> random_logits("random_logits", 5, 7);
  Kokkos::View<int*, Mem> random_labels("random_labels", 5);
  ktnn_test::fill_uniform(random_logits, 3, -4, 4);
  auto rl = Kokkos::create_mirror_view(random_labels);
  for (int i = 0; i < 5; ++i) rl(i) = (3 * i + 1) % 7;
  Kokkos::deep_copy(random_labels, rl);
  check_loss_gradient<Space>(ktnn::CrossEntropy{}, random_logits, random_labels);
}
TEST_CASE_TEMPLATE_APPLY(cross_entropy, ktnn_test::spaces);

TEST_CASE_TEMPLATE_DEFINE("CrossEntropy is stable at extreme logits", Space, ce_stable) {
  using Mem = typename Space::memory_space;
  Kokkos::View<float**, Kokkos::LayoutRight, Mem> logits("logits", 1, 3), grad("grad", 1, 3);
  Kokkos::View<int*, Mem> labels("labels", 1);
  auto lh = Kokkos::create_mirror_view(logits);
  lh(0, 0) = 1e4f;
  lh(0, 1) = -1e4f;
  lh(0, 2) = 0;  // exp(1e4) overflows a float
  Kokkos::deep_copy(logits, lh);
  Kokkos::deep_copy(labels, 1);
  Kokkos::View<ktnn::LossSums, Mem> result("result");
  ktnn::CrossEntropy{}(Space{}, ktnn::Matrix<float const>(ktnn::as_matrix(logits)), labels,
                       ktnn::as_matrix(grad), result);
  auto host = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace{}, result);
  CHECK(host().loss == doctest::Approx(2e4).epsilon(1e-6));
  auto const g = ktnn_test::to_vector(grad);
  CHECK(g[0] == doctest::Approx(1.0));
  CHECK(g[1] == doctest::Approx(-1.0));
  CHECK(g[2] == doctest::Approx(0.0));
}
TEST_CASE_TEMPLATE_APPLY(ce_stable, ktnn_test::spaces);

TEST_CASE_TEMPLATE_DEFINE("MSE: value and gradient", Space, mse) {
  Rows<Space> prediction("prediction", 3, 2), target("target", 3, 2);
  ktnn_test::fill_uniform(prediction, 1);
  ktnn_test::fill_uniform(target, 2);
  auto const p = ktnn_test::to_vector(prediction), t = ktnn_test::to_vector(target);
  double expected = 0;
  for (std::size_t i = 0; i < p.size(); ++i) expected += (p[i] - t[i]) * (p[i] - t[i]);
  auto const sums = run_loss<Space>(ktnn::MSE{}, prediction, target, Rows<Space>());
  CHECK(sums.mean_loss() == doctest::Approx(expected / 6).epsilon(1e-14));
  check_loss_gradient<Space>(ktnn::MSE{}, prediction, target);
  Rows<Space> wrong("wrong", 3, 3);
  CHECK_THROWS_WITH_AS(run_loss<Space>(ktnn::MSE{}, prediction, wrong, Rows<Space>()),
                       doctest::Contains("ktnn::MSE: prediction is 3x2 but targets are 3x3"),
                       ktnn::Error);
}
TEST_CASE_TEMPLATE_APPLY(mse, ktnn_test::spaces);

namespace {
/// Loss probes: the kernel call (it computes nothing), then with every
/// requirement of ktnn::Loss, and without one each.
struct DoNothingKernel {
  template <class ExecSpace, class T, class Targets>
  void operator()(ExecSpace const&, ktnn::Matrix<T const>, Targets const&, ktnn::Matrix<T>,
                  Kokkos::View<ktnn::LossSums, typename ExecSpace::memory_space>) const {}
};
struct Complete : DoNothingKernel {
  static constexpr char const* name = "Probe";
  static constexpr bool reports_accuracy = true;
};
struct Unnamed : DoNothingKernel {};
struct NoKernel {
  static constexpr char const* name = "Probe";
};
struct AccuracyNotBool : DoNothingKernel {
  static constexpr char const* name = "Probe";
  static constexpr struct {
  } reports_accuracy{};
};
/// A name that is not static: compute_loss could not read it.
struct MemberName : DoNothingKernel {
  char const* name = "Probe";
};

static_assert(ktnn::check_loss<Complete>());
static_assert(!ktnn::Loss<Unnamed>);
static_assert(!ktnn::Loss<NoKernel>);
static_assert(!ktnn::Loss<AccuracyNotBool>);
static_assert(!ktnn::Loss<MemberName>);
}  // namespace

TEST_CASE_TEMPLATE_DEFINE("every ktnn loss meets the loss protocol", Space, loss_protocol) {
  static_assert(ktnn::check_loss<ktnn::MSE>());
  static_assert(ktnn::check_loss<ktnn::L1>());
  static_assert(ktnn::check_loss<ktnn::Huber>());
  static_assert(ktnn::check_loss<ktnn::CrossEntropy>());
  static_assert(ktnn::check_loss<ktnn::NLLLoss>());
  static_assert(ktnn::check_loss<ktnn::BinaryCrossEntropyWithLogits>());
  // compute_loss names a user's loss by its `name` in its messages.
  Rows<Space> prediction("prediction", 2, 3), targets("targets", 3, 3);
  CHECK_THROWS_WITH_AS(ktnn::loss_sums(Space{}, Complete{}, prediction, targets),
                       doctest::Contains("Probe: 2 predictions but 3 targets"), ktnn::Error);
}
TEST_CASE_TEMPLATE_APPLY(loss_protocol, ktnn_test::spaces);

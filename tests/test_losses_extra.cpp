// The losses beside MSE and plain CrossEntropy: L1, Huber,
// BinaryCrossEntropyWithLogits, CrossEntropy with label smoothing and class
// weights, NLLLoss. Values against PyTorch's definitions written out here in
// plain double arithmetic (independent of the kernels' stable rewrites),
// gradients against central differences in double, extreme logits, empty
// batches, every error, and one of them through fit and train_step.

#include "helpers.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

namespace {

using ktnn_test::check_loss_gradient;
using ktnn_test::loss_gradient;
using ktnn_test::Rows;
using ktnn_test::run_loss;
template <class Space>
using Labels = Kokkos::View<int*, typename Space::memory_space>;
template <class Space>
using Values = Kokkos::View<double*, typename Space::memory_space>;

template <class Space>
Labels<Space> make_labels(std::vector<int> const& values) {
  return ktnn_test::device_vector<int, Space>(values, "labels");
}

template <class Space>
Values<Space> make_values(std::vector<double> const& values) {
  return ktnn_test::device_vector<double, Space>(values);
}

template <class Space>
Rows<Space> make_rows(int rows, int cols, std::vector<double> const& values) {
  return ktnn_test::device_rows<Space>(rows, cols, values);
}

// PyTorch's definitions, element by element, in the textbook form.

double l1_reference(std::vector<double> const& y, std::vector<double> const& t) {
  double sum = 0;
  for (std::size_t e = 0; e < y.size(); ++e) sum += std::abs(y[e] - t[e]);
  return sum / double(y.size());
}

double huber_reference(std::vector<double> const& y, std::vector<double> const& t, double delta) {
  double sum = 0;
  for (std::size_t e = 0; e < y.size(); ++e) {
    double const d = std::abs(y[e] - t[e]);
    sum += d < delta ? 0.5 * d * d : delta * (d - 0.5 * delta);
  }
  return sum / double(y.size());
}

/// torch.nn.SmoothL1Loss(beta).
double smooth_l1_reference(std::vector<double> const& y, std::vector<double> const& t,
                           double beta) {
  double sum = 0;
  for (std::size_t e = 0; e < y.size(); ++e) {
    double const d = std::abs(y[e] - t[e]);
    sum += d < beta ? 0.5 * d * d / beta : d - 0.5 * beta;
  }
  return sum / double(y.size());
}

/// -(p t log sigmoid(x) + (1 - t) log(1 - sigmoid(x))), for moderate x.
double bce_reference(std::vector<double> const& x, std::vector<double> const& t, int width,
                     std::vector<double> const& pos_weight = {}) {
  double sum = 0;
  for (std::size_t e = 0; e < x.size(); ++e) {
    double const s = 1 / (1 + std::exp(-x[e]));
    double const p = pos_weight.empty() ? 1.0 : pos_weight[e % width];
    sum += -(p * t[e] * std::log(s) + (1 - t[e]) * std::log(1 - s));
  }
  return sum / double(x.size());
}

/// torch.nn.CrossEntropyLoss(weight, label_smoothing) with reduction 'mean':
/// [(1 - e) sum_i w_yi nll_i + e / C sum_i sum_c w_c (-logp_ic)] / sum_i w_yi,
/// over the samples in `rows` (all by default).
double ce_reference(std::vector<double> const& x, std::vector<int> const& y, int classes,
                    std::vector<double> const& w, double e, std::vector<int> rows = {}) {
  if (rows.empty())
    for (std::size_t i = 0; i < y.size(); ++i) rows.push_back(int(i));
  auto weight = [&](int c) { return w.empty() ? 1.0 : w[std::size_t(c)]; };
  double nll = 0, smooth = 0, total = 0;
  for (int i : rows) {
    double z = 0;
    for (int c = 0; c < classes; ++c) z += std::exp(x[std::size_t(i) * classes + c]);
    auto const logp = [&](int c) { return x[std::size_t(i) * classes + c] - std::log(z); };
    nll += weight(y[i]) * -logp(y[i]);
    for (int c = 0; c < classes; ++c) smooth += weight(c) * -logp(c);
    total += weight(y[i]);
  }
  return ((1 - e) * nll + e / classes * smooth) / total;
}

/// Samples whose largest entry (first on ties) is at their label.
double arg_max_hits(std::vector<double> const& x, std::vector<int> const& y, int classes) {
  double hits = 0;
  for (std::size_t i = 0; i < y.size(); ++i) {
    auto const row = x.begin() + std::ptrdiff_t(i * classes);
    hits += std::max_element(row, row + classes) - row == y[i] ? 1 : 0;
  }
  return hits;
}

}  // namespace

TEST_CASE_TEMPLATE_DEFINE("L1: value, gradient, slope 0 at the target", Space, lx_l1) {
  Rows<Space> prediction("prediction", 5, 3), target("target", 5, 3);
  ktnn_test::fill_uniform(prediction, 11, -2, 2);
  ktnn_test::fill_uniform(target, 12, -2, 2);
  auto const y = ktnn_test::to_vector(prediction), t = ktnn_test::to_vector(target);
  // Central differences need every |y - t| well away from the kink.
  for (std::size_t e = 0; e < y.size(); ++e) REQUIRE(std::abs(y[e] - t[e]) > 1e-3);
  auto const sums = run_loss<Space>(ktnn::L1{}, prediction, target, Rows<Space>());
  CHECK(sums.count == 5);
  CHECK(sums.mean_loss() == doctest::Approx(l1_reference(y, t)).epsilon(1e-14));
  check_loss_gradient<Space>(ktnn::L1{}, prediction, target);

  // PyTorch's sign(0) = 0 where the prediction hits the target.
  auto const hit = make_rows<Space>(1, 3, {0.5, 2.0, -1.0});
  auto const aim = make_rows<Space>(1, 3, {0.5, 1.0, 0.0});
  auto const g = loss_gradient<Space>(ktnn::L1{}, hit, aim);
  CHECK(g == std::vector<double>{0.0, 1.0 / 3, -1.0 / 3});
}
TEST_CASE_TEMPLATE_APPLY(lx_l1, ktnn_test::spaces);

TEST_CASE_TEMPLATE_DEFINE("Huber: both sides of delta, SmoothL1 and MSE relations", Space,
                          lx_huber) {
  double const delta = 0.8;
  // Differences on both sides of +-delta, none within reach of the step.
  std::vector<double> const d = {-2.5, -0.9, -0.3, 0.1, 0.6, 1.4, 3.0, -0.05, 0.79, -1.7, 2.2};
  std::vector<double> y, t;
  for (std::size_t e = 0; e < d.size(); ++e) {
    t.push_back(0.25 * double(e) - 1);
    y.push_back(t.back() + d[e]);
  }
  int inside = 0;
  for (double v : d) inside += std::abs(v) < delta ? 1 : 0;
  REQUIRE(inside > 0);
  REQUIRE(inside < int(d.size()));
  auto const prediction = make_rows<Space>(11, 1, y), target = make_rows<Space>(11, 1, t);
  auto const sums = run_loss<Space>(ktnn::Huber(delta), prediction, target, Rows<Space>());
  CHECK(sums.count == 11);
  CHECK(sums.mean_loss() == doctest::Approx(huber_reference(y, t, delta)).epsilon(1e-14));
  check_loss_gradient<Space>(ktnn::Huber(delta), prediction, target);
  // The slope is the difference inside, +-delta beyond.
  auto const g = loss_gradient<Space>(ktnn::Huber(delta), prediction, target);
  for (std::size_t e = 0; e < d.size(); ++e)
    CHECK(
        g[e] * 11 ==
        doctest::Approx(std::abs(d[e]) < delta ? d[e] : std::copysign(delta, d[e])).epsilon(1e-14));

  // Several outputs per sample, default delta 1.
  Rows<Space> wide("wide", 3, 4), wide_target("wide_target", 3, 4);
  ktnn_test::fill_uniform(wide, 21, -3, 3);
  ktnn_test::fill_uniform(wide_target, 22, -1, 1);
  auto const wy = ktnn_test::to_vector(wide), wt = ktnn_test::to_vector(wide_target);
  for (std::size_t e = 0; e < wy.size(); ++e) REQUIRE(std::abs(std::abs(wy[e] - wt[e]) - 1) > 1e-3);
  CHECK(ktnn::Huber{}.delta() == 1.0);
  CHECK(run_loss<Space>(ktnn::Huber{}, wide, wide_target, Rows<Space>()).mean_loss() ==
        doctest::Approx(huber_reference(wy, wt, 1.0)).epsilon(1e-14));
  check_loss_gradient<Space>(ktnn::Huber{}, wide, wide_target);

  // SmoothL1(beta) = Huber(beta) / beta.
  for (double beta : {0.3, 2.5})
    CHECK(run_loss<Space>(ktnn::Huber(beta), wide, wide_target, Rows<Space>()).mean_loss() / beta ==
          doctest::Approx(smooth_l1_reference(wy, wt, beta)).epsilon(1e-13));
  // With every difference inside delta, Huber is half the MSE.
  CHECK(run_loss<Space>(ktnn::Huber(100), wide, wide_target, Rows<Space>()).mean_loss() ==
        doctest::Approx(0.5 *
                        run_loss<Space>(ktnn::MSE{}, wide, wide_target, Rows<Space>()).mean_loss())
            .epsilon(1e-14));
}
TEST_CASE_TEMPLATE_APPLY(lx_huber, ktnn_test::spaces);

TEST_CASE_TEMPLATE_DEFINE("BinaryCrossEntropyWithLogits: value and gradient, with pos_weight",
                          Space, lx_bce) {
  Rows<Space> logits("logits", 5, 3), target("target", 5, 3);
  ktnn_test::fill_uniform(logits, 31, -4, 4);
  ktnn_test::fill_uniform(target, 32, 0, 1);  // soft labels
  ktnn_test::set_element(target, 1.0, 0, 0);  // and hard ones
  ktnn_test::set_element(target, 0.0, 1, 2);
  auto const x = ktnn_test::to_vector(logits), t = ktnn_test::to_vector(target);
  ktnn::BinaryCrossEntropyWithLogits const plain;
  CHECK(!plain.has_pos_weight());
  auto const sums = run_loss<Space>(plain, logits, target, Rows<Space>());
  CHECK(sums.count == 5);
  CHECK(sums.mean_loss() == doctest::Approx(bce_reference(x, t, 3)).epsilon(1e-13));
  check_loss_gradient<Space>(plain, logits, target);

  std::vector<double> const pos = {0.5, 3.0, 1.0};
  ktnn::BinaryCrossEntropyWithLogits const weighted(make_values<Space>(pos));
  CHECK(weighted.has_pos_weight());
  CHECK(run_loss<Space>(weighted, logits, target, Rows<Space>()).mean_loss() ==
        doctest::Approx(bce_reference(x, t, 3, pos)).epsilon(1e-13));
  check_loss_gradient<Space>(weighted, logits, target);
  // pos_weight of 1 everywhere is the plain loss; a float View works too.
  Kokkos::View<float*, typename Space::memory_space> ones("ones", 3);
  Kokkos::deep_copy(ones, 1.0f);
  CHECK(loss_gradient<Space>(ktnn::BinaryCrossEntropyWithLogits(ones), logits, target) ==
        loss_gradient<Space>(plain, logits, target));
}
TEST_CASE_TEMPLATE_APPLY(lx_bce, ktnn_test::spaces);

TEST_CASE_TEMPLATE_DEFINE("BinaryCrossEntropyWithLogits is stable at large logits", Space,
                          lx_bce_stable) {
  using Mem = typename Space::memory_space;
  // Logits of both signs, far beyond where exp overflows a float (and, at
  // 1e4, a double); targets 0, 1 and soft; pos_weight 2 on the last output.
  std::vector<double> const x = {40, -40, 800, -800, 1e4, -1e4};
  std::vector<double> const t = {1, 0.3, 0, 1, 0.3, 0.7};
  std::vector<double> const pos = {1, 2};
  auto const logits = make_rows<Space>(3, 2, x), target = make_rows<Space>(3, 2, t);
  ktnn::BinaryCrossEntropyWithLogits const loss(make_values<Space>(pos));
  // Far from 0, l = (1 - t) x for x > 0 and -p t x for x < 0 (the neglected
  // terms are below exp(-40) ~ 4e-18); the slopes are 1 - t and -p t.
  double expected = 0;
  std::vector<double> slopes;
  for (std::size_t e = 0; e < x.size(); ++e) {
    double const p = pos[e % 2];
    expected += x[e] > 0 ? (1 - t[e]) * x[e] : -p * t[e] * x[e];
    slopes.push_back((x[e] > 0 ? 1 - t[e] : -p * t[e]) / 6);
  }
  auto const sums = run_loss<Space>(loss, logits, target, Rows<Space>());
  CHECK(sums.mean_loss() == doctest::Approx(expected / 6).epsilon(1e-14));
  ktnn_test::check_close(loss_gradient<Space>(loss, logits, target), slopes, 1e-14, 1e-17);
  // Central differences where the loss is small enough for them to resolve
  // (confident and right: slopes near 0), and on moderate logits between.
  auto const right = make_rows<Space>(3, 2, {800, -800, 1e4, -1e4, 30, -30});
  auto const right_target = make_rows<Space>(3, 2, {1, 0, 1, 0, 0.5, 0.2});
  check_loss_gradient<Space>(loss, right, right_target);

  // The same in float: finite, and right.
  Kokkos::View<float**, Kokkos::LayoutRight, Mem> xf("xf", 3, 2), tf("tf", 3, 2), gf("gf", 3, 2);
  auto xh = Kokkos::create_mirror_view(xf);
  auto th = Kokkos::create_mirror_view(tf);
  for (int e = 0; e < 6; ++e) {
    xh(e / 2, e % 2) = float(x[std::size_t(e)]);
    th(e / 2, e % 2) = float(t[std::size_t(e)]);
  }
  Kokkos::deep_copy(xf, xh);
  Kokkos::deep_copy(tf, th);
  Kokkos::View<ktnn::LossSums, Mem> result("result");
  loss(Space{}, ktnn::Matrix<float const>(ktnn::as_matrix(xf)), tf, ktnn::as_matrix(gf), result);
  auto host = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace{}, result);
  CHECK(host().mean_loss() == doctest::Approx(expected / 6).epsilon(1e-6));
  ktnn_test::check_close(ktnn_test::to_vector(gf), slopes, 1e-6, 1e-7);
}
TEST_CASE_TEMPLATE_APPLY(lx_bce_stable, ktnn_test::spaces);

TEST_CASE_TEMPLATE_DEFINE("CrossEntropy with label smoothing and class weights: PyTorch's formula",
                          Space, lx_ce_options) {
  int const classes = 5;
  Rows<Space> logits("logits", 7, classes);
  ktnn_test::fill_uniform(logits, 41, -3, 3);
  std::vector<int> const y = {0, 3, 1, 1, 4, 2, 3};  // class 2 weighs 0 below
  auto const labels = make_labels<Space>(y);
  auto const x = ktnn_test::to_vector(logits);
  std::vector<double> const w = {0.5, 2.0, 0.0, 1.5, 1.0};
  auto const weights = make_values<Space>(w);

  struct Case {
    ktnn::CrossEntropy loss;
    std::vector<double> weights;
    double smoothing;
  };
  std::vector<Case> const cases = {
      {ktnn::CrossEntropy({.label_smoothing = 0.1}), {}, 0.1},
      {ktnn::CrossEntropy({.label_smoothing = 1.0}), {}, 1.0},
      {ktnn::CrossEntropy(weights), w, 0.0},
      {ktnn::CrossEntropy(weights, {.label_smoothing = 0.25}), w, 0.25},
  };
  for (auto const& c : cases) {
    INFO("smoothing " << c.smoothing << ", weights " << !c.weights.empty());
    CHECK(c.loss.label_smoothing() == c.smoothing);
    CHECK(c.loss.has_weights() == !c.weights.empty());
    auto const sums = run_loss<Space>(c.loss, logits, labels, Rows<Space>());
    CHECK(sums.count == 7);
    CHECK(sums.correct == arg_max_hits(x, y, classes));
    CHECK(sums.invalid_labels == 0);
    CHECK(sums.mean_loss() ==
          doctest::Approx(ce_reference(x, y, classes, c.weights, c.smoothing)).epsilon(1e-13));
    check_loss_gradient<Space>(c.loss, logits, labels);
    // Through compute_loss, with its gradient: the same numbers.
    Kokkos::View<ktnn::LossSums, typename Space::memory_space> device_sums("sums");
    Rows<Space> grad("grad", 7, classes);
    ktnn::compute_loss(Space{}, c.loss, logits, labels, device_sums, grad);
    CHECK(ktnn_test::to_vector(grad) == loss_gradient<Space>(c.loss, logits, labels));
  }

  // Smoothing 0 takes the plain kernel; weights of 1 give the plain loss.
  ktnn::CrossEntropy const zero({.label_smoothing = 0.0}), plain;
  CHECK(loss_gradient<Space>(zero, logits, labels) == loss_gradient<Space>(plain, logits, labels));
  auto const unit = ktnn::CrossEntropy(make_values<Space>({1, 1, 1, 1, 1}));
  CHECK(run_loss<Space>(unit, logits, labels, Rows<Space>()).mean_loss() ==
        doctest::Approx(run_loss<Space>(plain, logits, labels, Rows<Space>()).mean_loss())
            .epsilon(1e-14));
  ktnn_test::check_close(loss_gradient<Space>(unit, logits, labels),
                         loss_gradient<Space>(plain, logits, labels), 1e-13, 1e-16);
  // A copy of a weighted loss uses the same weights; integer weights work.
  Kokkos::View<int*, typename Space::memory_space> int_weights("int_weights", classes);
  Kokkos::deep_copy(int_weights, 2);
  ktnn::CrossEntropy const twos(int_weights, {.label_smoothing = 0.3});
  auto const copy = twos;
  CHECK(run_loss<Space>(copy, logits, labels, Rows<Space>()).mean_loss() ==
        doctest::Approx(ce_reference(x, y, classes, {2, 2, 2, 2, 2}, 0.3)).epsilon(1e-13));
}
TEST_CASE_TEMPLATE_APPLY(lx_ce_options, ktnn_test::spaces);

TEST_CASE_TEMPLATE_DEFINE("CrossEntropy with options: large logits, zero weights, bad labels",
                          Space, lx_ce_edges) {
  using Mem = typename Space::memory_space;
  int const classes = 4;
  std::vector<double> const w = {1.0, 0.0, 2.0, 0.5};
  auto const weights = make_values<Space>(w);
  ktnn::CrossEntropy const loss(weights, {.label_smoothing = 0.2});

  // Large logits in float: finite, and the value PyTorch's formula gives
  // (computed in double, where these do not overflow after the shift).
  std::vector<double> const big = {1e4, -1e4, 0, 5e3, -3e3, 2e3, 2e3, -1e3};
  std::vector<int> const big_y = {1, 2};  // sample 0 weighs 0: W = 2
  Kokkos::View<float**, Kokkos::LayoutRight, Mem> xf("xf", 2, classes), gf("gf", 2, classes);
  auto xh = Kokkos::create_mirror_view(xf);
  for (int e = 0; e < 8; ++e) xh(e / classes, e % classes) = float(big[std::size_t(e)]);
  Kokkos::deep_copy(xf, xh);
  Kokkos::View<ktnn::LossSums, Mem> result("result");
  loss(Space{}, ktnn::Matrix<float const>(ktnn::as_matrix(xf)), make_labels<Space>(big_y),
       ktnn::as_matrix(gf), result);
  auto host = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace{}, result);
  // log-probabilities by hand: the shift by the row maximum, as a person would.
  auto logp = [&](int i, int c) {
    double top = -1e300, z = 0;
    for (int k = 0; k < classes; ++k) top = std::max(top, big[std::size_t(i * classes + k)]);
    for (int k = 0; k < classes; ++k) z += std::exp(big[std::size_t(i * classes + k)] - top);
    return big[std::size_t(i * classes + c)] - top - std::log(z);
  };
  double nll = 0, smooth = 0;
  for (int i = 0; i < 2; ++i) {
    nll += w[std::size_t(big_y[std::size_t(i)])] * -logp(i, big_y[std::size_t(i)]);
    for (int c = 0; c < classes; ++c) smooth += w[std::size_t(c)] * -logp(i, c);
  }
  double const expected = (0.8 * nll + 0.2 / classes * smooth) / 2.0;
  CHECK(std::isfinite(host().loss));
  CHECK(host().mean_loss() == doctest::Approx(expected).epsilon(1e-6));
  for (double g : ktnn_test::to_vector(gf)) CHECK(std::isfinite(g));

  // A batch whose labels all weigh 0: PyTorch's 0 / 0; here nothing is
  // trained and the loss is 0.
  Rows<Space> logits("logits", 3, classes);
  ktnn_test::fill_uniform(logits, 51, -2, 2);
  auto const none = make_labels<Space>({1, 1, 1});
  auto const sums = run_loss<Space>(loss, logits, none, Rows<Space>());
  CHECK(sums.count == 3);
  CHECK(sums.loss == 0);
  for (double g : loss_gradient<Space>(loss, logits, none)) CHECK(g == 0);

  // Labels outside [0, classes): counted, never read, zero loss and gradient;
  // the rest is the weighted mean over the valid samples alone.
  Rows<Space> odd("odd", 5, classes);
  ktnn_test::fill_uniform(odd, 52, -2, 2);
  std::vector<int> const y = {2, -1, 0, 7, 3};
  auto const labels = make_labels<Space>(y);
  auto const x = ktnn_test::to_vector(odd);
  for (auto const& l : {loss, ktnn::CrossEntropy({.label_smoothing = 0.2})}) {
    auto const s = run_loss<Space>(l, odd, labels, Rows<Space>());
    CHECK(s.count == 5);
    CHECK(s.invalid_labels == 2);
    CHECK(s.bad_label == 7);
    double const valid =
        ce_reference(x, y, classes, l.has_weights() ? w : std::vector<double>{}, 0.2, {0, 2, 4});
    // Weighted: the mean over the valid samples' weights; plain: over the
    // batch (the invalid ones count as 0), as plain CrossEntropy does.
    CHECK(s.mean_loss() == doctest::Approx(l.has_weights() ? valid : valid * 3 / 5).epsilon(1e-13));
    auto const g = loss_gradient<Space>(l, odd, labels);
    for (int j = 0; j < classes; ++j) {
      CHECK(g[std::size_t(1 * classes + j)] == 0);
      CHECK(g[std::size_t(3 * classes + j)] == 0);
    }
    check_loss_gradient<Space>(l, odd, labels);
  }
}
TEST_CASE_TEMPLATE_APPLY(lx_ce_edges, ktnn_test::spaces);

TEST_CASE_TEMPLATE_DEFINE("NLLLoss: value, accuracy, gradient, bad labels", Space, lx_nll) {
  int const classes = 4;
  Rows<Space> input("input", 5, classes);
  ktnn_test::fill_uniform(input, 61, -3, 0);  // log-probability-like
  std::vector<int> const y = {3, 0, 0, 2, 1};
  auto const labels = make_labels<Space>(y);
  auto const x = ktnn_test::to_vector(input);
  double expected = 0;
  for (std::size_t i = 0; i < y.size(); ++i) expected -= x[i * classes + std::size_t(y[i])];
  auto const sums = run_loss<Space>(ktnn::NLLLoss{}, input, labels, Rows<Space>());
  CHECK(sums.count == 5);
  CHECK(sums.mean_loss() == doctest::Approx(expected / 5).epsilon(1e-14));
  CHECK(sums.correct == arg_max_hits(x, y, classes));
  check_loss_gradient<Space>(ktnn::NLLLoss{}, input, labels);
  auto const g = loss_gradient<Space>(ktnn::NLLLoss{}, input, labels);
  for (std::size_t i = 0; i < y.size(); ++i)
    for (int j = 0; j < classes; ++j)
      CHECK(g[i * classes + std::size_t(j)] == (j == y[i] ? -0.2 : 0.0));

  // On log_softmax of logits it is CrossEntropy of the logits.
  Rows<Space> logits("logits", 5, classes);
  ktnn_test::fill_uniform(logits, 62, -3, 3);
  auto const z = ktnn_test::to_vector(logits);
  std::vector<double> log_probs(z.size());
  for (std::size_t i = 0; i < 5; ++i) {
    double s = 0;
    for (int j = 0; j < classes; ++j) s += std::exp(z[i * classes + std::size_t(j)]);
    for (int j = 0; j < classes; ++j)
      log_probs[i * classes + std::size_t(j)] = z[i * classes + std::size_t(j)] - std::log(s);
  }
  auto const lp = make_rows<Space>(5, classes, log_probs);
  auto const nll = run_loss<Space>(ktnn::NLLLoss{}, lp, labels, Rows<Space>());
  auto const ce = run_loss<Space>(ktnn::CrossEntropy{}, logits, labels, Rows<Space>());
  CHECK(nll.mean_loss() == doctest::Approx(ce.mean_loss()).epsilon(1e-13));
  CHECK(nll.correct == ce.correct);

  auto const bad = make_labels<Space>({1, -3, 4, 0, 2});
  auto const s = run_loss<Space>(ktnn::NLLLoss{}, input, bad, Rows<Space>());
  CHECK(s.invalid_labels == 2);
  CHECK(s.bad_label == 4);
  CHECK(s.mean_loss() == doctest::Approx(-(x[1] + x[12] + x[18]) / 5).epsilon(1e-14));
  auto const gb = loss_gradient<Space>(ktnn::NLLLoss{}, input, bad);
  for (int j = 0; j < classes; ++j) {
    CHECK(gb[std::size_t(classes + j)] == 0);
    CHECK(gb[std::size_t(2 * classes + j)] == 0);
  }
}
TEST_CASE_TEMPLATE_APPLY(lx_nll, ktnn_test::spaces);

TEST_CASE_TEMPLATE_DEFINE("the new losses on an empty batch", Space, lx_empty) {
  Rows<Space> none("none", 0, 3), grad("grad", 0, 3);
  auto const no_labels = make_labels<Space>({});
  auto const weights = make_values<Space>({1, 2, 3});
  auto check_empty = [](ktnn::LossSums const& s) {
    CHECK(s.count == 0);
    CHECK(s.loss == 0);
    CHECK(s.correct == 0);
    CHECK(s.invalid_labels == 0);
  };
  check_empty(run_loss<Space>(ktnn::L1{}, none, none, grad));
  check_empty(run_loss<Space>(ktnn::Huber(0.5), none, none, grad));
  check_empty(run_loss<Space>(ktnn::BinaryCrossEntropyWithLogits(weights), none, none, grad));
  check_empty(run_loss<Space>(ktnn::CrossEntropy({.label_smoothing = 0.1}), none, no_labels, grad));
  check_empty(run_loss<Space>(ktnn::CrossEntropy(weights, {.label_smoothing = 0.1}), none,
                              no_labels, grad));
  check_empty(run_loss<Space>(ktnn::NLLLoss{}, none, no_labels, grad));
  Kokkos::View<ktnn::LossSums, typename Space::memory_space> sums("sums");
  ktnn::compute_loss(Space{}, ktnn::CrossEntropy(weights), none, no_labels, sums, grad);
  auto host = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace{}, sums);
  check_empty(host());
}
TEST_CASE_TEMPLATE_APPLY(lx_empty, ktnn_test::spaces);

TEST_CASE_TEMPLATE_DEFINE("the new losses' errors name the loss and the value", Space, lx_errors) {
  using Mem = typename Space::memory_space;
  double const nan = std::numeric_limits<double>::quiet_NaN();
  double const inf = std::numeric_limits<double>::infinity();
  // Options.
  CHECK_THROWS_WITH_AS(ktnn::Huber(-1.0),
                       doctest::Contains("ktnn::Huber: option delta is -1, must be > 0"),
                       ktnn::Error);
  CHECK_THROWS_WITH_AS(ktnn::Huber(0.0), doctest::Contains("ktnn::Huber: option delta is 0"),
                       ktnn::Error);
  CHECK_THROWS_WITH_AS(ktnn::Huber{nan}, doctest::Contains("ktnn::Huber: option delta is nan"),
                       ktnn::Error);
  CHECK_THROWS_WITH_AS(ktnn::Huber{inf}, doctest::Contains("ktnn::Huber: option delta is inf"),
                       ktnn::Error);
  for (double bad : {-0.1, 1.5, nan}) {
    INFO("label_smoothing " << bad);
    CHECK_THROWS_WITH_AS(ktnn::CrossEntropy({.label_smoothing = bad}),
                         doctest::Contains("ktnn::CrossEntropy: option label_smoothing is"),
                         ktnn::Error);
    CHECK_THROWS_WITH_AS(ktnn::CrossEntropy(make_values<Space>({1, 1}), {.label_smoothing = bad}),
                         doctest::Contains("must be in [0, 1]"), ktnn::Error);
  }
  CHECK_THROWS_WITH_AS(ktnn::CrossEntropy({.label_smoothing = 1.5}),
                       doctest::Contains("option label_smoothing is 1.5, must be in [0, 1]"),
                       ktnn::Error);
  // Weights.
  CHECK_THROWS_WITH_AS(ktnn::CrossEntropy(make_values<Space>({1, -2, 3})),
                       doctest::Contains("ktnn::CrossEntropy: class weight 1 is -2, must be finite "
                                         "and >= 0"),
                       ktnn::Error);
  CHECK_THROWS_WITH_AS(ktnn::CrossEntropy(make_values<Space>({1, 2, nan})),
                       doctest::Contains("ktnn::CrossEntropy: class weight 2 is nan"), ktnn::Error);
  CHECK_THROWS_WITH_AS(ktnn::CrossEntropy(make_values<Space>({inf})),
                       doctest::Contains("ktnn::CrossEntropy: class weight 0 is inf"), ktnn::Error);
  CHECK_THROWS_WITH_AS(ktnn::BinaryCrossEntropyWithLogits(make_values<Space>({-1})),
                       doctest::Contains("ktnn::BinaryCrossEntropyWithLogits: pos_weight 0 is -1, "
                                         "must be finite and >= 0"),
                       ktnn::Error);
  CHECK_THROWS_WITH_AS(ktnn::BinaryCrossEntropyWithLogits(make_values<Space>({1, nan})),
                       doctest::Contains("pos_weight 1 is nan"), ktnn::Error);

  Rows<Space> prediction("prediction", 4, 3), wrong("wrong", 4, 2), grad("grad", 4, 3);
  ktnn_test::fill_uniform(prediction, 71);
  auto const labels = make_labels<Space>({0, 1, 2, 1});
  auto const five = make_labels<Space>({0, 1, 2, 1, 0});
  Kokkos::View<ktnn::LossSums, Mem> sums("sums");
  // Sizes: the weights against the classes or outputs.
  CHECK_THROWS_WITH_AS(run_loss<Space>(ktnn::CrossEntropy(make_values<Space>({1, 2, 3, 4})),
                                       prediction, labels, grad),
                       doctest::Contains("ktnn::CrossEntropy: 4 class weights for logits of 3 "
                                         "classes"),
                       ktnn::Error);
  CHECK_THROWS_WITH_AS(
      run_loss<Space>(ktnn::BinaryCrossEntropyWithLogits(make_values<Space>({1, 2})), prediction,
                      prediction, grad),
      doctest::Contains("ktnn::BinaryCrossEntropyWithLogits: 2 pos_weight values for 3 outputs"),
      ktnn::Error);
  // Targets against predictions, at the kernel call and through compute_loss.
  CHECK_THROWS_WITH_AS(run_loss<Space>(ktnn::L1{}, prediction, wrong, grad),
                       doctest::Contains("ktnn::L1: prediction is 4x3 but targets are 4x2"),
                       ktnn::Error);
  CHECK_THROWS_WITH_AS(run_loss<Space>(ktnn::Huber{}, prediction, wrong, grad),
                       doctest::Contains("ktnn::Huber: prediction is 4x3 but targets are 4x2"),
                       ktnn::Error);
  CHECK_THROWS_WITH_AS(
      run_loss<Space>(ktnn::BinaryCrossEntropyWithLogits{}, prediction, wrong, grad),
      doctest::Contains("ktnn::BinaryCrossEntropyWithLogits: prediction is 4x3 but targets are "
                        "4x2"),
      ktnn::Error);
  CHECK_THROWS_WITH_AS(run_loss<Space>(ktnn::NLLLoss{}, prediction, five, grad),
                       doctest::Contains("ktnn::NLLLoss: 4 predictions but 5 labels"), ktnn::Error);
  CHECK_THROWS_WITH_AS(
      run_loss<Space>(ktnn::CrossEntropy({.label_smoothing = 0.1}), prediction, five, grad),
      doctest::Contains("ktnn::CrossEntropy: 4 predictions but 5 labels"), ktnn::Error);
  Rows<Space> five_rows("five_rows", 5, 3);
  CHECK_THROWS_WITH_AS(ktnn::compute_loss(Space{}, ktnn::Huber{}, prediction, five_rows, sums),
                       doctest::Contains("ktnn::compute_loss: Huber: 4 predictions but 5 targets"),
                       ktnn::Error);
  CHECK_THROWS_WITH_AS(ktnn::compute_loss(Space{}, ktnn::NLLLoss{}, prediction, five, sums),
                       doctest::Contains("ktnn::compute_loss: NLLLoss: 4 predictions but 5 "
                                         "targets"),
                       ktnn::Error);
  // No columns to index, at the kernel call.
  Rows<Space> empty("empty", 4, 0);
  auto const m = ktnn::Matrix<double const>(ktnn::as_matrix(empty));
  CHECK_THROWS_WITH_AS(ktnn::NLLLoss{}(Space{}, m, labels, ktnn::Matrix<double>{}, sums),
                       doctest::Contains("ktnn::NLLLoss: an input with no classes"), ktnn::Error);
  CHECK_THROWS_WITH_AS(ktnn::L1{}(Space{}, m, empty, ktnn::Matrix<double>{}, sums),
                       doctest::Contains("ktnn::L1: a prediction with no columns"), ktnn::Error);
  CHECK_THROWS_WITH_AS(ktnn::CrossEntropy({.label_smoothing = 0.1})(Space{}, m, labels,
                                                                    ktnn::Matrix<double>{}, sums),
                       doctest::Contains("ktnn::CrossEntropy: logits with no classes"),
                       ktnn::Error);
}
TEST_CASE_TEMPLATE_APPLY(lx_errors, ktnn_test::spaces);

TEST_CASE_TEMPLATE_DEFINE("the new losses plug into fit, evaluate and train_step", Space,
                          lx_training) {
  using Mem = typename Space::memory_space;
  // XOR as one yes/no output, trained with BinaryCrossEntropyWithLogits.
  ktnn_test::XorProblem<Space> const problem;
  auto const x = problem.x;
  auto const y = problem.targets;
  auto const classes = problem.classes;
  auto const ch = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace{}, classes);
  ktnn::data::RegressionDataset<float, 2, Mem> data(ktnn::as_tensor<2>(x), y);
  using Net = ktnn::Sequential<ktnn::Dense<2, 8, ktnn::Tanh>, ktnn::Dense<8, 1>>;
  ktnn::Model<Net, float, Space> model(4);
  ktnn::SGD<float, Space> sgd(model, {.lr = 0.5f, .momentum = 0.9f});
  ktnn::data::DataLoader<decltype(data), Space> loader(data, {.batch_size = 4});
  ktnn::FitOptions options;
  options.epochs = 300;
  options.out = nullptr;
  ktnn::BinaryCrossEntropyWithLogits const bce;
  auto const before = ktnn::evaluate(model, bce, data);
  auto const history = ktnn::fit(model, bce, sgd, loader, options);
  REQUIRE(history.size() == 300);
  CHECK(history.front().loss == doctest::Approx(before.mean_loss()).epsilon(1e-5));
  auto const after = ktnn::evaluate(model, bce, data);
  INFO("before " << before.mean_loss() << " after " << after.mean_loss());
  CHECK(after.count == 4);
  CHECK(after.mean_loss() < 0.05);
  auto const out = ktnn_test::to_vector(model.forward(x));
  for (int i = 0; i < 4; ++i) CHECK((out[std::size_t(i)] > 0) == (ch(i) == 1));

  // Weighted, smoothed CrossEntropy in train_step: the returned sums are the
  // loss of the model before the step, and the step lowers it.
  using Net2 = ktnn::Sequential<ktnn::Dense<2, 8, ktnn::Tanh>, ktnn::Dense<8, 2>>;
  ktnn::Model<Net2, float, Space> classifier(5);
  ktnn::Adam<float, Space> adam(classifier, {.lr = 1e-2f});
  Kokkos::View<float*, Mem> weights("weights", 2);
  Kokkos::deep_copy(weights, 1.5f);
  ktnn::CrossEntropy const ce(weights, {.label_smoothing = 0.1});
  auto const start = ktnn::loss_sums(Space{}, ce, classifier.forward(x), classes);
  ktnn::LossSums first;
  Kokkos::deep_copy(first, ktnn::train_step(classifier, ce, adam, x, classes));
  CHECK(first.mean_loss() == doctest::Approx(start.mean_loss()).epsilon(1e-6));
  for (int step = 0; step < 20; ++step) ktnn::train_step(classifier, ce, adam, x, classes);
  auto const end = ktnn::loss_sums(Space{}, ce, classifier.forward(x), classes);
  INFO("start " << start.mean_loss() << " end " << end.mean_loss());
  CHECK(end.mean_loss() < start.mean_loss());
}
TEST_CASE_TEMPLATE_APPLY(lx_training, ktnn_test::spaces);

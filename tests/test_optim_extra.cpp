// RMSprop and Adagrad against plain scalar loops of torch.optim's documented
// algorithms; the learning-rate schedules against PyTorch's recursive
// (chainable) forms and hand-worked values; gradient clipping against a host
// norm; option errors; and the new optimizers and wrappers in fit and in both
// train_steps.

#include "helpers.hpp"

#include <cmath>
#include <cstdint>
#include <limits>
#include <numbers>
#include <vector>

namespace {
template <class Space, class T = double>
using Arena = Kokkos::View<T*, typename Space::memory_space>;

template <class Space, class T = double>
Arena<Space, T> arena_of(std::vector<double> const& values) {
  return ktnn_test::device_vector<T, Space>(values, "arena");
}

template <class View>
double read_scalar(View const& v) {
  typename View::non_const_value_type host{};
  Kokkos::deep_copy(host, v);
  return double(host);
}

/// Initial parameters and the gradient of step k (0-based): smooth, of both
/// signs and varied sizes, with an exact zero at element 3.
std::vector<double> initial_parameters(std::size_t n) {
  std::vector<double> p(n);
  for (std::size_t i = 0; i < n; ++i) p[i] = std::cos(0.21 * double(i));
  return p;
}
std::vector<double> gradient_of_step(std::size_t n, int k) {
  std::vector<double> g(n);
  for (std::size_t i = 0; i < n; ++i)
    g[i] = std::sin(0.37 * double(i) + 1.1 * k) * (0.5 + double(i % 7) / 3);
  if (n > 3) g[3] = 0;
  return g;
}

/// torch.optim.RMSprop's documented algorithm, element by element; elements
/// whose gradient is not finite are skipped (ktnn's rule).
struct RMSpropReference {
  ktnn::RMSpropOptions<double> o;
  std::vector<double> v, a, b;
  RMSpropReference(ktnn::RMSpropOptions<double> options, std::size_t n)
      : o(options), v(n, 0.0), a(n, 0.0), b(n, 0.0) {}
  void step(std::vector<double>& p, std::vector<double> const& grad) {
    for (std::size_t i = 0; i < p.size(); ++i) {
      if (!std::isfinite(grad[i])) continue;
      double const g = grad[i] + o.weight_decay * p[i];
      v[i] = o.alpha * v[i] + (1 - o.alpha) * g * g;
      double vt = v[i];
      if (o.centered) {
        a[i] = o.alpha * a[i] + (1 - o.alpha) * g;
        vt -= a[i] * a[i];
      }
      double const d = g / (std::sqrt(vt) + o.eps);
      if (o.momentum > 0) {
        b[i] = o.momentum * b[i] + d;
        p[i] -= o.lr * b[i];
      } else {
        p[i] -= o.lr * d;
      }
    }
  }
};

/// torch.optim.Adagrad's documented algorithm.
struct AdagradReference {
  ktnn::AdagradOptions<double> o;
  std::vector<double> sum;
  int t = 0;
  AdagradReference(ktnn::AdagradOptions<double> options, std::size_t n)
      : o(options), sum(n, options.initial_accumulator_value) {}
  void step(std::vector<double>& p, std::vector<double> const& grad) {
    ++t;
    double const clr = o.lr / (1 + (t - 1) * o.lr_decay);
    for (std::size_t i = 0; i < p.size(); ++i) {
      if (!std::isfinite(grad[i])) continue;
      double const g = grad[i] + o.weight_decay * p[i];
      sum[i] += g * g;
      p[i] -= clr * g / (std::sqrt(sum[i]) + o.eps);
    }
  }
};

/// Runs `steps` steps of a ktnn optimizer of scalar T and of its reference
/// (in double) on the same gradients, changing the learning rate of both
/// half way, and compares parameters and the named state.
template <class Space, class T, class Optimizer, class Reference, class State>
void compare_with_reference(Optimizer& optimizer, Reference& reference, std::size_t n, int steps,
                            double rtol, double atol, State const& state) {
  auto expected = initial_parameters(n);
  auto p = arena_of<Space, T>(expected);
  for (int k = 0; k < steps; ++k) {
    if (k == steps / 2) {
      optimizer.set_learning_rate(T(0.003));
      reference.o.lr = 0.003;
    }
    auto const g = gradient_of_step(n, k);
    optimizer.step(p, arena_of<Space, T>(g));
    reference.step(expected, g);
  }
  CHECK(optimizer.steps() == steps);
  CHECK(double(optimizer.learning_rate()) == doctest::Approx(0.003));
  ktnn_test::check_close(ktnn_test::to_vector(p), expected, rtol, atol);
  state(optimizer, reference);
  CHECK(optimizer.non_finite_step() == -1);
}
}  // namespace

TEST_CASE_TEMPLATE_DEFINE("RMSprop: steps against torch's algorithm, every option", Space,
                          rmsprop_reference) {
  using Options = ktnn::RMSpropOptions<double>;
  std::vector<Options> const configs = {{},
                                        {.weight_decay = 0.1},
                                        {.momentum = 0.9},
                                        {.centered = true},
                                        {.lr = 0.05,
                                         .alpha = 0.9,
                                         .eps = 1e-6,
                                         .weight_decay = 0.01,
                                         .momentum = 0.5,
                                         .centered = true}};
  std::size_t const n = 700;  // more than one block of the finite check
  for (auto const& o : configs) {
    INFO("momentum " << o.momentum << " centered " << o.centered << " weight_decay "
                     << o.weight_decay);
    {
      ktnn::RMSprop<double, Space> rmsprop(n, o);
      RMSpropReference reference(o, n);
      compare_with_reference<Space, double>(
          rmsprop, reference, n, 6, 1e-12, 1e-14, [&](auto& opt, auto& ref) {
            ktnn_test::check_close(ktnn_test::to_vector(opt.square_average()), ref.v, 1e-12, 1e-16);
            if (o.centered)
              ktnn_test::check_close(ktnn_test::to_vector(opt.gradient_average()), ref.a, 1e-12,
                                     1e-16);
            else
              CHECK(opt.gradient_average().extent(0) == 0);
            if (o.momentum > 0)
              ktnn_test::check_close(ktnn_test::to_vector(opt.momentum_buffer()), ref.b, 1e-12,
                                     1e-14);
            else
              CHECK(opt.momentum_buffer().extent(0) == 0);
          });
    }
    {
      // float: the same steps within float rounding.
      ktnn::RMSpropOptions<float> f{float(o.lr),           float(o.alpha),    float(o.eps),
                                    float(o.weight_decay), float(o.momentum), o.centered};
      ktnn::RMSprop<float, Space> rmsprop(n, f);
      RMSpropReference reference(o, n);
      compare_with_reference<Space, float>(rmsprop, reference, n, 6, 1e-4, 1e-5,
                                           [](auto&, auto&) {});
    }
  }
}
TEST_CASE_TEMPLATE_APPLY(rmsprop_reference, ktnn_test::spaces);

TEST_CASE_TEMPLATE_DEFINE("Adagrad: steps against torch's algorithm, every option", Space,
                          adagrad_reference) {
  using Options = ktnn::AdagradOptions<double>;
  std::vector<Options> const configs = {{},
                                        {.lr_decay = 0.1},
                                        {.weight_decay = 0.05},
                                        {.initial_accumulator_value = 0.3},
                                        {.lr = 0.1,
                                         .lr_decay = 0.5,
                                         .weight_decay = 0.02,
                                         .initial_accumulator_value = 0.1,
                                         .eps = 1e-6}};
  std::size_t const n = 700;
  for (auto const& o : configs) {
    INFO("lr_decay " << o.lr_decay << " weight_decay " << o.weight_decay << " initial "
                     << o.initial_accumulator_value);
    {
      ktnn::Adagrad<double, Space> adagrad(n, o);
      AdagradReference reference(o, n);
      compare_with_reference<Space, double>(
          adagrad, reference, n, 6, 1e-12, 1e-14, [](auto& opt, auto& ref) {
            ktnn_test::check_close(ktnn_test::to_vector(opt.sum_of_squares()), ref.sum, 1e-12,
                                   1e-16);
          });
    }
    {
      ktnn::AdagradOptions<float> f{float(o.lr), float(o.lr_decay), float(o.weight_decay),
                                    float(o.initial_accumulator_value), float(o.eps)};
      ktnn::Adagrad<float, Space> adagrad(n, f);
      AdagradReference reference(o, n);
      compare_with_reference<Space, float>(adagrad, reference, n, 6, 1e-4, 1e-5,
                                           [](auto&, auto&) {});
    }
  }
}
TEST_CASE_TEMPLATE_APPLY(adagrad_reference, ktnn_test::spaces);

TEST_CASE_TEMPLATE_DEFINE("RMSprop and Adagrad skip and report gradients that are not finite",
                          Space, extra_non_finite) {
  std::size_t const n = 600;
  auto run = [&](auto& optimizer, auto& reference) {
    auto expected = initial_parameters(n);
    auto p = arena_of<Space>(expected);
    for (int k = 0; k < 3; ++k) {
      auto g = gradient_of_step(n, k);
      if (k == 1) {
        g[5] = -std::numeric_limits<double>::infinity();
        g[300] = std::numeric_limits<double>::quiet_NaN();
        g[301] = std::numeric_limits<double>::infinity();
      }
      optimizer.step(p, arena_of<Space>(g));
      reference.step(expected, g);
    }
    auto const got = ktnn_test::to_vector(p);
    ktnn_test::check_close(got, expected, 1e-12, 1e-14);
    for (double v : got) CHECK(std::isfinite(v));
    CHECK(optimizer.non_finite_step() == 2);
    optimizer.clear_non_finite();
    CHECK(optimizer.non_finite_step() == -1);
  };
  ktnn::RMSpropOptions<double> const r{.weight_decay = 0.01, .momentum = 0.9, .centered = true};
  ktnn::RMSprop<double, Space> rmsprop(n, r);
  RMSpropReference rmsprop_reference(r, n);
  run(rmsprop, rmsprop_reference);
  ktnn::AdagradOptions<double> const a{.lr_decay = 0.1, .weight_decay = 0.01};
  ktnn::Adagrad<double, Space> adagrad(n, a);
  AdagradReference adagrad_reference(a, n);
  run(adagrad, adagrad_reference);
}
TEST_CASE_TEMPLATE_APPLY(extra_non_finite, ktnn_test::spaces);

TEST_CASE_TEMPLATE_DEFINE("RMSprop, Adagrad and set_learning_rate: option errors", Space,
                          extra_option_errors) {
  using R = ktnn::RMSprop<double, Space>;
  using RO = ktnn::RMSpropOptions<double>;
  double const nan = std::numeric_limits<double>::quiet_NaN();
  auto rmsprop_error = [](RO o, char const* what) {
    CHECK_THROWS_WITH_AS(R(4, o), doctest::Contains(what), ktnn::Error);
  };
  rmsprop_error({.lr = -1}, "ktnn::RMSprop: option lr is -1, must be a finite value >= 0");
  rmsprop_error({.alpha = 1.5}, "ktnn::RMSprop: option alpha is 1.5, must be [0, 1]");
  rmsprop_error({.alpha = nan}, "ktnn::RMSprop: option alpha is nan");
  rmsprop_error({.eps = 0}, "ktnn::RMSprop: option eps is 0, must be a finite value > 0");
  rmsprop_error({.weight_decay = -0.5}, "ktnn::RMSprop: option weight_decay is -0.5");
  rmsprop_error({.momentum = -0.1}, "ktnn::RMSprop: option momentum is -0.1");

  using A = ktnn::Adagrad<double, Space>;
  using AO = ktnn::AdagradOptions<double>;
  auto adagrad_error = [](AO o, char const* what) {
    CHECK_THROWS_WITH_AS(A(4, o), doctest::Contains(what), ktnn::Error);
  };
  adagrad_error({.lr = nan}, "ktnn::Adagrad: option lr is nan");
  adagrad_error({.lr_decay = -1}, "ktnn::Adagrad: option lr_decay is -1");
  adagrad_error({.weight_decay = -1}, "ktnn::Adagrad: option weight_decay is -1");
  adagrad_error({.initial_accumulator_value = -0.25},
                "ktnn::Adagrad: option initial_accumulator_value is -0.25");
  adagrad_error({.eps = 0}, "ktnn::Adagrad: option eps is 0");

  // Options changed after construction are checked at the next step; the
  // buffers of momentum and centered exist only if asked for at construction.
  auto p = arena_of<Space>({1, 2, 3, 4});
  auto g = arena_of<Space>({0.1, 0.2, 0.3, 0.4});
  R rmsprop(4, {});
  rmsprop.options().alpha = 2;
  CHECK_THROWS_WITH_AS(rmsprop.step(p, g), doctest::Contains("ktnn::RMSprop::step: option alpha"),
                       ktnn::Error);
  rmsprop.options().alpha = 0.99;
  rmsprop.options().momentum = 0.5;
  CHECK_THROWS_WITH_AS(rmsprop.step(p, g), doctest::Contains("no momentum buffer"), ktnn::Error);
  rmsprop.options().momentum = 0;
  rmsprop.options().centered = true;
  CHECK_THROWS_WITH_AS(rmsprop.step(p, g), doctest::Contains("option centered"), ktnn::Error);
  rmsprop.options().centered = false;
  auto short_g = arena_of<Space>({0.1, 0.2});
  CHECK_THROWS_WITH_AS(rmsprop.step(p, short_g),
                       doctest::Contains("ktnn::RMSprop::step: 4 parameters, 2 gradients"),
                       ktnn::Error);
  CHECK(rmsprop.steps() == 0);  // nothing ran
  A adagrad(4, {});
  adagrad.options().lr_decay = -2;
  CHECK_THROWS_WITH_AS(adagrad.step(p, g),
                       doctest::Contains("ktnn::Adagrad::step: option lr_decay is -2"),
                       ktnn::Error);
  adagrad.options().lr_decay = 0;
  CHECK_THROWS_WITH_AS(adagrad.step(p, short_g), doctest::Contains("ktnn::Adagrad::step"),
                       ktnn::Error);

  // The learning rate of every optimizer: read, set, checked, used.
  ktnn::Adam<double, Space> adam(4, {});
  ktnn::SGD<double, Space> sgd(4, {});
  auto check_rate = [&](auto& optimizer, char const* name) {
    optimizer.set_learning_rate(0.25);
    CHECK(optimizer.learning_rate() == 0.25);
    CHECK_THROWS_WITH_AS(
        optimizer.set_learning_rate(-1),
        doctest::Contains((std::string(name) + "::set_learning_rate: option lr is -1").c_str()),
        ktnn::Error);
    CHECK_THROWS_AS(optimizer.set_learning_rate(nan), ktnn::Error);
    CHECK(optimizer.learning_rate() == 0.25);  // unchanged by the failures
  };
  check_rate(adam, "ktnn::Adam");
  check_rate(sgd, "ktnn::SGD");
  check_rate(rmsprop, "ktnn::RMSprop");
  check_rate(adagrad, "ktnn::Adagrad");
  auto q = arena_of<Space>({1, 1, 1, 1});
  sgd.step(q, g);  // p -= 0.25 g
  ktnn_test::check_close(ktnn_test::to_vector(q), {0.975, 0.95, 0.925, 0.9}, 1e-15, 0);
}
TEST_CASE_TEMPLATE_APPLY(extra_option_errors, ktnn_test::spaces);

TEST_CASE("StepLR and ExponentialLR against PyTorch's recursive forms") {
  {
    ktnn::StepLR const step({.base_lr = 0.1, .step_size = 3, .gamma = 0.5});
    CHECK(step(0) == 0.1);
    CHECK(step(2) == 0.1);
    CHECK(step(3) == doctest::Approx(0.05).epsilon(1e-15));
    CHECK(step(5) == doctest::Approx(0.05).epsilon(1e-15));
    CHECK(step(6) == doctest::Approx(0.025).epsilon(1e-15));
  }
  for (auto const& o : {ktnn::StepLROptions{.base_lr = 0.1, .step_size = 3, .gamma = 0.5},
                        ktnn::StepLROptions{.base_lr = 2, .step_size = 1, .gamma = 0.9},
                        ktnn::StepLROptions{.base_lr = 1e-3, .step_size = 7}}) {
    ktnn::StepLR const schedule(o);
    double lr = o.base_lr;  // StepLR.get_lr: times gamma whenever n is a multiple of step_size
    for (std::int64_t n = 0; n < 200; ++n) {
      if (n > 0 && n % o.step_size == 0) lr *= o.gamma;
      INFO("step " << n);
      CHECK(schedule(n) == doctest::Approx(lr).epsilon(1e-12));
    }
  }
  ktnn::ExponentialLR const exponential({.base_lr = 0.5, .gamma = 0.97});
  double lr = 0.5;
  for (std::int64_t n = 0; n < 200; ++n) {
    if (n > 0) lr *= 0.97;
    CHECK(exponential(n) == doctest::Approx(lr).epsilon(1e-12));
  }
  CHECK_THROWS_WITH_AS(ktnn::StepLR({.base_lr = 0.1}),
                       doctest::Contains("ktnn::StepLR: option step_size is 0"), ktnn::Error);
  CHECK_THROWS_WITH_AS(ktnn::StepLR({.step_size = 2}),
                       doctest::Contains("ktnn::StepLR: option base_lr is 0"), ktnn::Error);
  CHECK_THROWS_WITH_AS(ktnn::StepLR({.base_lr = 0.1, .step_size = 2, .gamma = -1}),
                       doctest::Contains("ktnn::StepLR: option gamma is -1"), ktnn::Error);
  CHECK_THROWS_WITH_AS(ktnn::ExponentialLR({.base_lr = 0.1}),
                       doctest::Contains("ktnn::ExponentialLR: option gamma is 0"), ktnn::Error);
  CHECK_THROWS_WITH_AS(exponential(-1), doctest::Contains("ktnn::ExponentialLR: step -1"),
                       ktnn::Error);
}

TEST_CASE("CosineWarmupLR: warm-up, cosine and floor") {
  double const pi = std::numbers::pi;
  {
    // transformers' get_cosine_schedule_with_warmup: 0 at step 0.
    ktnn::CosineWarmupLR const s({.base_lr = 1.0, .warmup_steps = 10, .total_steps = 110});
    CHECK(s(0) == 0);
    CHECK(s(5) == doctest::Approx(0.5).epsilon(1e-15));
    CHECK(s(9) == doctest::Approx(0.9).epsilon(1e-15));
    CHECK(s(10) == 1.0);                                  // the peak
    CHECK(s(60) == doctest::Approx(0.5).epsilon(1e-14));  // half way down
    CHECK(s(109) == doctest::Approx(0.5 * (1 + std::cos(pi * 99 / 100))).epsilon(1e-14));
    CHECK(s(110) == 0);
    CHECK(s(1000) == 0);
    for (std::int64_t n = 1; n <= 10; ++n) CHECK(s(n) > s(n - 1));
    for (std::int64_t n = 11; n <= 110; ++n) CHECK(s(n) < s(n - 1));
  }
  {
    // PyTorch's SequentialLR(LinearLR(0.1, 1, 8), CosineAnnealingLR(40, 0.01), [8]),
    // both in their recursive forms.
    double const base = 0.3, start = 0.1, floor = 0.01;
    std::int64_t const warmup = 8, total = 48, t_max = total - warmup;
    ktnn::CosineWarmupLR const s({.base_lr = base,
                                  .warmup_steps = warmup,
                                  .total_steps = total,
                                  .min_lr = floor,
                                  .warmup_start_factor = start});
    double lr = base * start;
    for (std::int64_t n = 0; n <= total; ++n) {
      if (n > 0 && n < warmup) {  // LinearLR.get_lr, end_factor 1
        double const e = double(n);
        lr *= 1 + (1 - start) / (warmup * start + (e - 1) * (1 - start));
      } else if (n == warmup) {  // the cosine starts at its base
        lr = base;
      } else if (n > warmup) {  // CosineAnnealingLR.get_lr
        double const e = double(n - warmup);
        lr = (1 + std::cos(pi * e / t_max)) / (1 + std::cos(pi * (e - 1) / t_max)) * (lr - floor) +
             floor;
      }
      INFO("step " << n);
      CHECK(s(n) == doctest::Approx(lr).epsilon(1e-12));
    }
    CHECK(s(total + 7) == floor);
  }
  {
    ktnn::CosineWarmupLR const no_warmup({.base_lr = 2.0, .total_steps = 4});
    CHECK(no_warmup(0) == 2.0);
    CHECK(no_warmup(2) == doctest::Approx(1.0).epsilon(1e-15));
    CHECK(no_warmup(4) == 0);
  }
  auto error = [](ktnn::CosineWarmupLROptions o, char const* what) {
    CHECK_THROWS_WITH_AS(ktnn::CosineWarmupLR{o}, doctest::Contains(what), ktnn::Error);
  };
  error({.base_lr = 1, .warmup_steps = 5, .total_steps = 4},
        "ktnn::CosineWarmupLR: option warmup_steps is 5, must be in [0, total_steps]");
  error({.base_lr = 1}, "option total_steps is 0");
  error({.base_lr = 1, .total_steps = 4, .min_lr = 2}, "option min_lr is 2");
  error({.base_lr = 1, .total_steps = 4, .warmup_start_factor = 1.5},
        "option warmup_start_factor is 1.5");
}

namespace {
/// OneCycleLR.get_lr as PyTorch writes it (two phases, cos annealing).
double one_cycle_reference(ktnn::OneCycleLROptions const& o, std::int64_t step) {
  double const initial = o.max_lr / o.div_factor, floor = initial / o.final_div_factor;
  struct Phase {
    double end_step, start_lr, end_lr;
  };
  Phase const phases[2] = {{o.pct_start * double(o.total_steps) - 1, initial, o.max_lr},
                           {double(o.total_steps) - 1, o.max_lr, floor}};
  double start_step = 0;
  for (int i = 0; i < 2; ++i) {
    double const end_step = phases[i].end_step;
    if (double(step) <= end_step || i == 1) {
      double const pct = (double(step) - start_step) / (end_step - start_step);
      double const cos_out = std::cos(std::numbers::pi * pct) + 1;
      return phases[i].end_lr + (phases[i].start_lr - phases[i].end_lr) / 2.0 * cos_out;
    }
    start_step = end_step;
  }
  return 0;
}
}  // namespace

TEST_CASE("OneCycleLR against PyTorch's get_lr") {
  {
    ktnn::OneCycleLR const s({.max_lr = 0.1, .total_steps = 100});
    CHECK(s(0) == doctest::Approx(0.1 / 25).epsilon(1e-15));         // max / div_factor
    CHECK(s(29) == doctest::Approx(0.1).epsilon(1e-15));             // the peak
    CHECK(s(99) == doctest::Approx(0.1 / 25 / 1e4).epsilon(1e-12));  // the floor
    CHECK(s(100) > s(99));  // PyTorch allows one step past the end
    CHECK_THROWS_WITH_AS(s(101), doctest::Contains("ktnn::OneCycleLR: step 101 is past"),
                         ktnn::Error);
  }
  for (auto const& o :
       {ktnn::OneCycleLROptions{.max_lr = 0.1, .total_steps = 100},
        ktnn::OneCycleLROptions{.max_lr = 1,
                                .total_steps = 7,
                                .pct_start = 0.25,
                                .div_factor = 10,
                                .final_div_factor = 100},
        ktnn::OneCycleLROptions{.max_lr = 3e-3, .total_steps = 1000},
        ktnn::OneCycleLROptions{.max_lr = 0.5, .total_steps = 50, .pct_start = 0},
        ktnn::OneCycleLROptions{.max_lr = 0.5, .total_steps = 33, .pct_start = 1}}) {
    ktnn::OneCycleLR const s(o);
    // PyTorch divides by zero at step total_steps when pct_start is 1.
    std::int64_t const last = o.pct_start == 1 ? o.total_steps - 1 : o.total_steps;
    for (std::int64_t n = 0; n <= last; ++n) {
      INFO("total " << o.total_steps << " pct_start " << o.pct_start << " step " << n);
      CHECK(s(n) == doctest::Approx(one_cycle_reference(o, n)).epsilon(1e-12));
    }
  }
  auto error = [](ktnn::OneCycleLROptions o, char const* what) {
    CHECK_THROWS_WITH_AS(ktnn::OneCycleLR{o}, doctest::Contains(what), ktnn::Error);
  };
  error({.total_steps = 10}, "ktnn::OneCycleLR: option max_lr is 0");
  error({.max_lr = 1}, "ktnn::OneCycleLR: option total_steps is 0");
  error({.max_lr = 1, .total_steps = 10, .pct_start = 1.5}, "option pct_start is 1.5");
  error({.max_lr = 1, .total_steps = 10, .div_factor = 0}, "option div_factor is 0");
  error({.max_lr = 1, .total_steps = 10, .final_div_factor = -1}, "option final_div_factor is -1");
}

namespace {
/// ReduceLROnPlateau.step as PyTorch writes it.
struct PlateauReference {
  ktnn::ReduceLROnPlateauOptions o;
  double best, lr;
  int bad = 0, cooldown = 0;
  PlateauReference(ktnn::ReduceLROnPlateauOptions options, double initial_lr)
      : o(options),
        best(options.mode == ktnn::ReduceLROnPlateauOptions::Mode::min
                 ? std::numeric_limits<double>::infinity()
                 : -std::numeric_limits<double>::infinity()),
        lr(initial_lr) {}
  bool is_better(double a) const {
    using M = ktnn::ReduceLROnPlateauOptions::Mode;
    using T = ktnn::ReduceLROnPlateauOptions::Threshold;
    if (o.mode == M::min && o.threshold_mode == T::rel) return a < best * (1.0 - o.threshold);
    if (o.mode == M::min) return a < best - o.threshold;
    if (o.threshold_mode == T::rel) return a > best * (o.threshold + 1.0);
    return a > best + o.threshold;
  }
  void step(double current) {
    if (is_better(current)) {
      best = current;
      bad = 0;
    } else {
      bad += 1;
    }
    if (cooldown > 0) {
      cooldown -= 1;
      bad = 0;
    }
    if (bad > o.patience) {
      double const new_lr = std::max(lr * o.factor, o.min_lr);
      if (lr - new_lr > o.eps) lr = new_lr;
      cooldown = o.cooldown;
      bad = 0;
    }
  }
};
}  // namespace

TEST_CASE("ReduceLROnPlateau: patience, threshold, cooldown, floor") {
  // Worked by hand: best 10 at epoch 1; 9.5, 9.2, 9.1 are not below
  // 10 * (1 - 0.1) = 9, so the third of them (3 > patience 2) halves the rate;
  // one cooldown epoch ignores its bad epoch; 8 is a new best; and so on
  // down to min_lr 0.1, where a reduction smaller than eps is not made.
  ktnn::ReduceLROnPlateau plateau(
      {.factor = 0.5, .patience = 2, .threshold = 0.1, .cooldown = 1, .min_lr = 0.1});
  std::vector<double> const metrics = {10, 9.5, 9.2, 9.1, 9.9, 9.9, 8, 8, 8, 8, 8,
                                       8,  8,   8,   8,   8,   8,   8, 8, 8, 8, 8};
  std::vector<double> const expected = {1,     1,    1,    0.5,  0.5,  0.5,   0.5,   0.5,
                                        0.5,   0.25, 0.25, 0.25, 0.25, 0.125, 0.125, 0.125,
                                        0.125, 0.1,  0.1,  0.1,  0.1,  0.1};
  REQUIRE(metrics.size() == expected.size());
  double lr = 1;
  for (std::size_t e = 0; e < metrics.size(); ++e) {
    lr = plateau.step(metrics[e], lr);
    INFO("epoch " << e + 1);
    CHECK(lr == expected[e]);
  }
  CHECK(plateau.best() == 8);
  CHECK(plateau.epochs() == 22);
  CHECK(plateau.reductions() == 4);
  // A NaN metric is a bad epoch.
  ktnn::ReduceLROnPlateau strict({.patience = 0});
  CHECK(strict.step(1.0, 1.0) == 1.0);
  CHECK(strict.step(std::numeric_limits<double>::quiet_NaN(), 1.0) == doctest::Approx(0.1));

  // Long runs in every mode against PyTorch's step().
  using O = ktnn::ReduceLROnPlateauOptions;
  for (auto const& o :
       {O{}, O{.mode = O::Mode::max, .factor = 0.3, .patience = 1, .threshold = 0.05},
        O{.factor = 0.7,
          .patience = 3,
          .threshold = 0.02,
          .threshold_mode = O::Threshold::abs,
          .cooldown = 2,
          .min_lr = 1e-3},
        O{.mode = O::Mode::max,
          .patience = 0,
          .threshold_mode = O::Threshold::abs,
          .cooldown = 1,
          .eps = 1e-3}}) {
    ktnn::ReduceLROnPlateau s(o);
    PlateauReference reference(o, 0.1);
    double rate = 0.1;
    for (int e = 0; e < 300; ++e) {
      // A slow trend with noise, so both improvements and plateaus occur.
      double const metric = 1.0 / (1 + 0.01 * e) + 0.05 * std::sin(1.7 * e * e);
      rate = s.step(metric, rate);
      reference.step(metric);
      INFO("epoch " << e + 1);
      CHECK(rate == reference.lr);
      CHECK(s.bad_epochs() == reference.bad);
      CHECK(s.cooldown_counter() == reference.cooldown);
    }
  }
  auto error = [](O o, char const* what) {
    CHECK_THROWS_WITH_AS(ktnn::ReduceLROnPlateau{o}, doctest::Contains(what), ktnn::Error);
  };
  error({.factor = 1}, "ktnn::ReduceLROnPlateau: option factor is 1, must be [0, 1)");
  error({.patience = -1}, "option patience is -1");
  error({.threshold = -0.1}, "option threshold is -0.1");
  error({.cooldown = -2}, "option cooldown is -2");
  error({.min_lr = -1}, "option min_lr is -1");
}

TEST_CASE_TEMPLATE_DEFINE("Scheduled sets the rate of each step; the plateau sets an optimizer's",
                          Space, scheduled) {
  // Plain SGD on a gradient of 1: each step moves the parameter by its rate.
  auto one = arena_of<Space>({1.0});
  auto p = arena_of<Space>({0.0});
  ktnn::SGD<double, Space> sgd(1, {.lr = 99});
  ktnn::ExponentialLR const exponential({.base_lr = 0.1, .gamma = 0.5});
  ktnn::Scheduled scheduled(sgd, exponential);
  static_assert(
      ktnn::check_optimizer_for<decltype(scheduled),
                                ktnn::Model<ktnn::Sequential<ktnn::Dense<1, 1>>, double, Space>>());
  double position = 0;
  for (int k = 0; k < 5; ++k) {
    scheduled.step(p, one);
    position -= exponential(k);
    CHECK(scheduled.learning_rate() == exponential(k));
    CHECK(ktnn_test::to_vector(p)[0] == doctest::Approx(position).epsilon(1e-15));
  }
  CHECK(scheduled.steps() == 5);
  CHECK(sgd.steps() == 5);

  // Per epoch: three steps an epoch, epoch e at 0.1 * 0.5^e; a lambda schedule.
  ktnn::SGD<double, Space> sgd2(1, {});
  ktnn::Scheduled per_epoch(sgd2, ktnn::StepLR({.base_lr = 0.1, .step_size = 1, .gamma = 0.5}), 3);
  auto q = arena_of<Space>({0.0});
  for (int k = 0; k < 9; ++k) per_epoch.step(q, one);
  CHECK(ktnn_test::to_vector(q)[0] == doctest::Approx(-3 * (0.1 + 0.05 + 0.025)).epsilon(1e-15));
  per_epoch.set_steps(3);  // resume: the next step is epoch 1's
  per_epoch.step(q, one);
  CHECK(sgd2.learning_rate() == 0.05);
  ktnn::Scheduled halving(sgd2, [](std::int64_t n) { return 1.0 / double(n + 1); });
  halving.step(q, one);
  halving.step(q, one);
  CHECK(sgd2.learning_rate() == 0.5);
  CHECK_THROWS_WITH_AS(ktnn::Scheduled(sgd2, exponential, 0),
                       doctest::Contains("ktnn::Scheduled: steps_per_epoch is 0"), ktnn::Error);
  ktnn::Scheduled bad(sgd2, [](std::int64_t) { return -1.0; });
  CHECK_THROWS_WITH_AS(bad.step(q, one), doctest::Contains("ktnn::SGD::set_learning_rate"),
                       ktnn::Error);

  // A gradient that is not finite is reported through the wrapper.
  auto nan = arena_of<Space>({std::numeric_limits<double>::quiet_NaN()});
  scheduled.step(p, nan);
  CHECK(scheduled.non_finite_step() == 6);
  scheduled.clear_non_finite();
  CHECK(sgd.non_finite_step() == -1);

  // The plateau sets an optimizer's rate when it reduces it.
  ktnn::RMSprop<double, Space> rmsprop(1, {.lr = 0.2});
  ktnn::ReduceLROnPlateau plateau({.factor = 0.5, .patience = 1});
  CHECK_FALSE(plateau.step(1.0, rmsprop));
  CHECK_FALSE(plateau.step(1.0, rmsprop));
  CHECK(plateau.step(1.0, rmsprop));
  CHECK(rmsprop.learning_rate() == 0.1);
  ktnn::EpochMetrics metrics;
  metrics.loss = 1.0;
  std::function<void(ktnn::EpochMetrics const&)> callback = plateau.on_epoch_end(rmsprop);
  callback(metrics);
  callback(metrics);
  CHECK(rmsprop.learning_rate() == 0.05);
}
TEST_CASE_TEMPLATE_APPLY(scheduled, ktnn_test::spaces);

namespace {
double host_norm(std::vector<double> const& g) {
  double sum = 0;
  for (double v : g) sum += v * v;
  return std::sqrt(sum);
}
}  // namespace

TEST_CASE_TEMPLATE_DEFINE("clip_gradient_norm: the global L2 norm, clipped or not", Space,
                          clip_norm) {
  std::size_t const n = 10007;  // several host blocks and device teams, a ragged end
  Arena<Space> grads("grads", n);
  ktnn_test::fill_uniform(grads, 5);
  auto const g = ktnn_test::to_vector(grads);
  double const norm = host_norm(g);
  REQUIRE(norm > 20);

  ktnn::GradientClipper<double, Space> clip(100.0);
  {
    // Below max_norm: unchanged, bit for bit.
    auto const returned = clip(grads);
    CHECK(read_scalar(returned) == doctest::Approx(norm).epsilon(1e-13));
    CHECK(ktnn_test::to_vector(grads) == g);
  }
  {
    // Above: scaled by max_norm / (norm + 1e-6), PyTorch's factor.
    clip.set_max_norm(10.0);
    auto const returned = clip(grads);
    double const got = read_scalar(returned);
    CHECK(got == doctest::Approx(norm).epsilon(1e-13));
    double const factor = 10.0 / (got + 1e-6);
    auto const clipped = ktnn_test::to_vector(grads);
    for (std::size_t i = 0; i < n; ++i) REQUIRE(clipped[i] == g[i] * factor);
    CHECK(host_norm(clipped) == doctest::Approx(10.0).epsilon(1e-6));
    CHECK(host_norm(clipped) < 10.0);
    // The same gradients give the same norm, bit for bit.
    auto again = arena_of<Space>(g);
    CHECK(read_scalar(clip(again)) == got);
    CHECK(ktnn_test::to_vector(again) == clipped);
  }
  {
    // float, summed in double.
    auto small = arena_of<Space, float>(g);
    ktnn::GradientClipper<float, Space> fclip(1.0f);
    CHECK(read_scalar(fclip(small)) == doctest::Approx(norm).epsilon(1e-6));
    CHECK(host_norm(ktnn_test::to_vector(small)) == doctest::Approx(1.0).epsilon(1e-5));
  }
  {
    // A NaN makes the norm and every gradient NaN (as PyTorch).
    auto bad = g;
    bad[4321] = std::numeric_limits<double>::quiet_NaN();
    auto v = arena_of<Space>(bad);
    CHECK(std::isnan(read_scalar(clip(v))));
    for (double x : ktnn_test::to_vector(v)) REQUIRE(std::isnan(x));
    // An Inf makes the norm Inf, the finite gradients 0 and itself NaN.
    bad[4321] = std::numeric_limits<double>::infinity();
    v = arena_of<Space>(bad);
    CHECK(read_scalar(clip(v)) == std::numeric_limits<double>::infinity());
    auto const after = ktnn_test::to_vector(v);
    for (std::size_t i = 0; i < n; ++i) REQUIRE((i == 4321 ? std::isnan(after[i]) : after[i] == 0));
  }
  {
    // Empty and tiny arenas.
    Arena<Space> empty("empty", 0);
    CHECK(read_scalar(clip(empty)) == 0);
    auto three = arena_of<Space>({3, 0, 4});
    clip.set_max_norm(2.5);
    CHECK(read_scalar(clip(three)) == 5);
    ktnn_test::check_close(ktnn_test::to_vector(three),
                           {3 * 2.5 / (5 + 1e-6), 0, 4 * 2.5 / (5 + 1e-6)}, 1e-15, 0);
  }
  for (double bad : {0.0, -1.0, std::numeric_limits<double>::quiet_NaN()})
    CHECK_THROWS_WITH_AS((ktnn::GradientClipper<double, Space>(bad)),
                         doctest::Contains("ktnn::clip_gradient_norm: option max_norm is"),
                         ktnn::Error);
}
TEST_CASE_TEMPLATE_APPLY(clip_norm, ktnn_test::spaces);

namespace {
using SmallNet = ktnn::Sequential<ktnn::Dense<3, 8, ktnn::Tanh>, ktnn::Dense<8, 2>>;

/// A residual that uses the Laplacian, the value and the point.
struct Poisson {
  template <class S>
  KOKKOS_FUNCTION S operator()(ktnn::PointDerivatives<S, 2, 1> const& p) const {
    return p.laplacian[0] + p.u[0] - p.x[0] * p.x[1];
  }
};
using PinnNet = ktnn::Sequential<ktnn::Dense<2, 6, ktnn::Tanh>, ktnn::Dense<6, 1>>;

/// y = (x0 x1 + 2 x2, 2 sin(3 x0) - x2): a smooth function a small net learns.
template <class X, class Y>
void learnable_targets(X const& x, Y const& y) {
  auto xh = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace{}, x);
  auto yh = Kokkos::create_mirror_view(y);
  for (std::size_t i = 0; i < x.extent(0); ++i) {
    yh(i, 0) = xh(i, 0) * xh(i, 1) + 2 * xh(i, 2);
    yh(i, 1) = 2 * std::sin(3 * xh(i, 0)) - xh(i, 2);
  }
  Kokkos::deep_copy(y, yh);
}
}  // namespace

TEST_CASE_TEMPLATE_DEFINE("clipping and the new optimizers in train_step, the physics step, fit",
                          Space, extra_plug_in) {
  using Mem = typename Space::memory_space;
  using Model = ktnn::Model<SmallNet, double, Space>;
  static_assert(ktnn::check_optimizer_for<ktnn::RMSprop<double, Space>, Model>());
  static_assert(ktnn::check_optimizer_for<ktnn::Adagrad<double, Space>, Model>());
  static_assert(ktnn::check_optimizer_for<ktnn::Clipped<ktnn::Adam<double, Space>>, Model>());
  Kokkos::View<double**, Mem> x("x", 29, 3), y("y", 29, 2);
  ktnn_test::fill_uniform(x, 11);
  learnable_targets(x, y);

  {
    // The model's gradients through clip_gradient_norm.
    Model model(4);
    ktnn::SGD<double, Space> frozen(model, {.lr = 0});  // a step that leaves the gradients
    ktnn::train_step(model, ktnn::MSE{}, frozen, x, y);
    auto const g = ktnn_test::to_vector(model.gradients());
    double const norm = host_norm(g);
    auto const returned = ktnn::clip_gradient_norm(model, 0.5 * norm);
    CHECK(read_scalar(returned) == doctest::Approx(norm).epsilon(1e-13));
    CHECK(host_norm(ktnn_test::to_vector(model.gradients())) ==
          doctest::Approx(0.5 * norm).epsilon(1e-6));
  }
  {
    // Clipped(SGD, lr 1) in train_step moves the parameters by exactly the
    // clipped gradient that a twin model computes.
    Model model(4), twin(4);
    ktnn::SGD<double, Space> sgd(model, {.lr = 1}), frozen(twin, {.lr = 0});
    ktnn::Clipped clipped(sgd, 0.25, model.execution());
    auto const p0 = ktnn_test::to_vector(model.parameters());
    ktnn::train_step(twin, ktnn::MSE{}, frozen, x, y);
    auto const g = ktnn_test::to_vector(twin.gradients());
    double const norm = host_norm(g);
    REQUIRE(norm > 0.25);
    ktnn::train_step(model, ktnn::MSE{}, clipped, x, y);
    CHECK(read_scalar(clipped.norm()) == doctest::Approx(norm).epsilon(1e-13));
    double const factor = 0.25 / (read_scalar(clipped.norm()) + 1e-6);
    std::vector<double> expected(p0.size());
    for (std::size_t i = 0; i < p0.size(); ++i) expected[i] = p0[i] - g[i] * factor;
    ktnn_test::check_close(ktnn_test::to_vector(model.parameters()), expected, 1e-14, 1e-15);
    CHECK(clipped.steps() == 1);
    clipped.set_learning_rate(0.5);
    CHECK(sgd.learning_rate() == 0.5);
  }
  {
    // RMSprop and Adagrad in train_step lower the loss.
    auto loss_after = [&](auto make_optimizer) {
      Model model(6);
      auto optimizer = make_optimizer(model);
      ktnn::LossSums first, last;
      for (int k = 0; k < 40; ++k) {
        auto const sums = ktnn::train_step(model, ktnn::MSE{}, optimizer, x, y);
        Kokkos::deep_copy(k == 0 ? first : last, sums);
      }
      return last.mean_loss() / first.mean_loss();
    };
    CHECK(loss_after([](Model& m) { return ktnn::RMSprop<double, Space>(m, {.lr = 0.01}); }) < 0.3);
    CHECK(loss_after([](Model& m) { return ktnn::Adagrad<double, Space>(m, {.lr = 0.1}); }) < 0.3);
  }
  {
    // The physics-informed step with Clipped(Adagrad): the norm is that of
    // the twin's gradient, and the first Adagrad step is lr * g / (|g| + eps)
    // of the clipped gradient.
    using Pinn = ktnn::Model<PinnNet, double, Space>;
    Pinn model(3), twin(3);
    Kokkos::View<double**, Mem> interior("interior", 17, 2);
    ktnn_test::fill_uniform(interior, 13);
    ktnn::PhysicsInformed pinn(model, Poisson{});
    ktnn::PhysicsInformed twin_pinn(twin, Poisson{});
    twin_pinn.gradient(interior);
    auto const g = ktnn_test::to_vector(twin.gradients());
    double const norm = host_norm(g);
    ktnn::Adagrad<double, Space> adagrad(model, {.lr = 0.05});
    ktnn::Clipped clipped(adagrad, 0.5 * norm, model.execution());
    auto const p0 = ktnn_test::to_vector(model.parameters());
    ktnn::train_step(model, pinn, clipped, interior);
    CHECK(read_scalar(clipped.norm()) == doctest::Approx(norm).epsilon(1e-13));
    double const factor = 0.5 * norm / (read_scalar(clipped.norm()) + 1e-6);
    std::vector<double> expected(p0.size());
    for (std::size_t i = 0; i < p0.size(); ++i) {
      double const c = g[i] * factor;
      expected[i] = p0[i] - 0.05 * c / (std::abs(c) + 1e-10);
    }
    ktnn_test::check_close(ktnn_test::to_vector(model.parameters()), expected, 1e-12, 1e-14);
  }
  {
    // fit with RMSprop, clipped and scheduled per epoch; then with Adagrad
    // and a plateau on the epoch loss.
    Kokkos::View<double**, Kokkos::LayoutRight, Mem> xs("xs", 96, 3), ys("ys", 96, 2);
    ktnn_test::fill_uniform(xs, 21);
    learnable_targets(xs, ys);
    ktnn::data::RegressionDataset<double, 3, Mem> data{
        ktnn::Tensor<double, 3, Kokkos::LayoutRight, Mem>(xs), ys};
    ktnn::data::DataLoader<decltype(data), Space> loader(data, {.batch_size = 16, .seed = 3});
    ktnn::FitOptions options;
    options.epochs = 30;
    Model model(8);
    ktnn::RMSprop<double, Space> rmsprop(model, {.lr = 0.01, .momentum = 0.5, .centered = true});
    ktnn::StepLR const schedule({.base_lr = 0.01, .step_size = 10, .gamma = 0.5});
    ktnn::Scheduled scheduled(rmsprop, schedule, loader.batches());
    ktnn::Clipped clipped(scheduled, 5.0, model.execution());
    auto const history = ktnn::fit(model, ktnn::MSE{}, clipped, loader, options);
    REQUIRE(history.size() == 30);
    INFO("first " << history.front().loss << " last " << history.back().loss);
    CHECK(history.back().loss < 0.3 * history.front().loss);
    CHECK(rmsprop.steps() == 30 * loader.batches());
    CHECK(rmsprop.learning_rate() == schedule(29));

    Model other(8);
    ktnn::Adagrad<double, Space> adagrad(other, {.lr = 0.05});
    ktnn::ReduceLROnPlateau plateau({.patience = 0, .threshold = 0.99});
    options.epochs = 4;
    options.on_epoch_end.push_back(plateau.on_epoch_end(adagrad));
    ktnn::fit(other, ktnn::MSE{}, adagrad, loader, options);
    CHECK(plateau.epochs() == 4);
    // No epoch divides the best loss by 100: each after the first reduces.
    CHECK(adagrad.learning_rate() == doctest::Approx(0.05 * 1e-3));
  }
}
TEST_CASE_TEMPLATE_APPLY(extra_plug_in, ktnn_test::spaces);

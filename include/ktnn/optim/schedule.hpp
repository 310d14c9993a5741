#pragma once
/// \file Learning-rate schedules as torch.optim.lr_scheduler's, and
/// Scheduled, the optimizer that follows one.
///
/// A schedule is a host object whose value at step (or epoch) n is a closed
/// form in double: nothing waits for the device, and a run resumed at step n
/// gets the same rate as one that got there. The optimizers pass their
/// learning rate to their kernel by value each step, so setting it
/// (`set_learning_rate`, which every ktnn optimizer has) costs nothing.
///
/// Driving an optimizer:
///   - per step: `ktnn::Scheduled scheduled(adam, schedule)`, used wherever
///     the optimizer was (fit, train_step): each step first sets the rate to
///     schedule(steps so far);
///   - per epoch: `ktnn::Scheduled scheduled(adam, schedule, loader.batches())`
///     sets schedule(steps so far / steps_per_epoch), i.e. schedule(epoch);
///   - on a plateau of fit's epoch loss: `FitOptions::on_epoch_end` takes
///     `plateau.on_epoch_end(adam)`.

#include <ktnn/core/error.hpp>
#include <ktnn/optim/checks.hpp>
#include <ktnn/optim/forwarding.hpp>
#include <ktnn/optim/optimizer_concept.hpp>
#include <ktnn/optim/state.hpp>

#include <Kokkos_Core.hpp>

#include <algorithm>
#include <cmath>
#include <concepts>
#include <cstdint>
#include <limits>
#include <numbers>
#include <string>
#include <utility>
#include <vector>

namespace ktnn {

namespace detail {
inline void check_schedule_index(char const* operation, std::int64_t n) {
  if (n < 0) fail(operation, "step ", n, " is negative");
}
}  // namespace detail

/// torch.optim.lr_scheduler.StepLR: base_lr * gamma^floor(n / step_size).
struct StepLROptions {
  double base_lr = 0;          ///< the optimizer's learning rate at step 0 (required)
  std::int64_t step_size = 0;  ///< steps (or epochs) between decays (required)
  double gamma = 0.1;
};

class StepLR {
 public:
  using Options = StepLROptions;
  explicit StepLR(Options options) : options_(options) {
    detail::check_option("ktnn::StepLR", "base_lr", options.base_lr, options.base_lr > 0,
                         "a finite value > 0");
    detail::check_option("ktnn::StepLR", "step_size", options.step_size, options.step_size > 0,
                         "> 0");
    detail::check_option("ktnn::StepLR", "gamma", options.gamma, options.gamma >= 0,
                         "a finite value >= 0");
  }
  double operator()(std::int64_t n) const {
    detail::check_schedule_index("ktnn::StepLR", n);
    return options_.base_lr * std::pow(options_.gamma, double(n / options_.step_size));
  }
  Options const& options() const { return options_; }

 private:
  Options options_;
};

/// torch.optim.lr_scheduler.ExponentialLR: base_lr * gamma^n.
struct ExponentialLROptions {
  double base_lr = 0;  ///< required
  double gamma = 0;    ///< required
};

class ExponentialLR {
 public:
  using Options = ExponentialLROptions;
  explicit ExponentialLR(Options options) : options_(options) {
    detail::check_option("ktnn::ExponentialLR", "base_lr", options.base_lr, options.base_lr > 0,
                         "a finite value > 0");
    detail::check_option("ktnn::ExponentialLR", "gamma", options.gamma, options.gamma > 0,
                         "a finite value > 0");
  }
  double operator()(std::int64_t n) const {
    detail::check_schedule_index("ktnn::ExponentialLR", n);
    return options_.base_lr * std::pow(options_.gamma, double(n));
  }
  Options const& options() const { return options_; }

 private:
  Options options_;
};

/// Linear warm-up, then a cosine from base_lr down to min_lr at total_steps,
/// and min_lr after. The warm-up rises from warmup_start_factor * base_lr at
/// step 0 to base_lr at step warmup_steps. This is PyTorch's
/// SequentialLR(LinearLR(start_factor, 1, warmup_steps),
/// CosineAnnealingLR(total_steps - warmup_steps, min_lr), [warmup_steps])
/// up to total_steps (the cosine then stays at its floor instead of rising
/// again), and with the defaults (start factor 0, min_lr 0) transformers'
/// get_cosine_schedule_with_warmup.
struct CosineWarmupLROptions {
  double base_lr = 0;              ///< the peak, reached at warmup_steps (required)
  std::int64_t warmup_steps = 0;   ///< in [0, total_steps]
  std::int64_t total_steps = 0;    ///< where the cosine reaches min_lr (required)
  double min_lr = 0;               ///< in [0, base_lr]
  double warmup_start_factor = 0;  ///< in [0, 1]
};

class CosineWarmupLR {
 public:
  using Options = CosineWarmupLROptions;
  explicit CosineWarmupLR(Options options) : options_(options) {
    char const* const op = "ktnn::CosineWarmupLR";
    detail::check_option(op, "base_lr", options.base_lr, options.base_lr > 0, "a finite value > 0");
    detail::check_option(op, "total_steps", options.total_steps, options.total_steps > 0, "> 0");
    detail::check_option(op, "warmup_steps", options.warmup_steps,
                         options.warmup_steps >= 0 && options.warmup_steps <= options.total_steps,
                         "in [0, total_steps]");
    detail::check_option(op, "min_lr", options.min_lr,
                         options.min_lr >= 0 && options.min_lr <= options.base_lr,
                         "in [0, base_lr]");
    detail::check_option(op, "warmup_start_factor", options.warmup_start_factor,
                         options.warmup_start_factor >= 0 && options.warmup_start_factor <= 1,
                         "[0, 1]");
  }
  double operator()(std::int64_t n) const {
    detail::check_schedule_index("ktnn::CosineWarmupLR", n);
    auto const& o = options_;
    if (n < o.warmup_steps) {
      double const s = o.warmup_start_factor;
      return o.base_lr * (s + (1 - s) * double(n) / double(o.warmup_steps));
    }
    if (n >= o.total_steps) return o.min_lr;
    double const t = double(n - o.warmup_steps) / double(o.total_steps - o.warmup_steps);
    return o.min_lr + (o.base_lr - o.min_lr) * 0.5 * (1 + std::cos(std::numbers::pi * t));
  }
  Options const& options() const { return options_; }

 private:
  Options options_;
};

/// torch.optim.lr_scheduler.OneCycleLR with cosine annealing (two phases):
/// from max_lr / div_factor up to max_lr at step pct_start * total_steps - 1,
/// then down to max_lr / (div_factor * final_div_factor) at total_steps - 1.
/// Only the learning rate is cycled (PyTorch's cycle_momentum=False).
struct OneCycleLROptions {
  double max_lr = 0;             ///< required
  std::int64_t total_steps = 0;  ///< required
  double pct_start = 0.3;        ///< in [0, 1]
  double div_factor = 25;
  double final_div_factor = 1e4;
};

class OneCycleLR {
 public:
  using Options = OneCycleLROptions;
  explicit OneCycleLR(Options options) : options_(options) {
    char const* const op = "ktnn::OneCycleLR";
    detail::check_option(op, "max_lr", options.max_lr, options.max_lr > 0, "a finite value > 0");
    detail::check_option(op, "total_steps", options.total_steps, options.total_steps > 0, "> 0");
    detail::check_option(op, "pct_start", options.pct_start,
                         options.pct_start >= 0 && options.pct_start <= 1, "[0, 1]");
    detail::check_option(op, "div_factor", options.div_factor, options.div_factor > 0,
                         "a finite value > 0");
    detail::check_option(op, "final_div_factor", options.final_div_factor,
                         options.final_div_factor > 0, "a finite value > 0");
  }
  /// The rate at step n in [0, total_steps] (PyTorch allows one step past
  /// the last, where the cosine goes on a little).
  double operator()(std::int64_t n) const {
    auto const& o = options_;
    detail::check_schedule_index("ktnn::OneCycleLR", n);
    if (n > o.total_steps)
      detail::fail("ktnn::OneCycleLR", "step ", n, " is past total_steps ", o.total_steps);
    double const initial = o.max_lr / o.div_factor;
    double const floor = initial / o.final_div_factor;
    double const peak = o.pct_start * double(o.total_steps) - 1;
    double const last = double(o.total_steps) - 1;
    double const x = double(n);
    // PyTorch divides by the phase's length; a phase of length 0 is at its end.
    auto anneal = [](double from, double to, double done, double length) {
      double const pct = length != 0 ? done / length : 1.0;
      return to + (from - to) / 2 * (std::cos(std::numbers::pi * pct) + 1);
    };
    if (x <= peak) return anneal(initial, o.max_lr, x, peak);
    return anneal(o.max_lr, floor, x - peak, last - peak);
  }
  Options const& options() const { return options_; }

 private:
  Options options_;
};

/// torch.optim.lr_scheduler.ReduceLROnPlateau: the rate times `factor` once
/// the metric has not improved (by more than `threshold`) for more than
/// `patience` epochs; then `cooldown` epochs in which bad epochs do not
/// count; never below `min_lr`, and no change smaller than `eps`. Its state
/// depends on the metrics seen, so it is stepped, not evaluated at n.
struct ReduceLROnPlateauOptions {
  enum class Mode { min, max };
  enum class Threshold { rel, abs };
  Mode mode = Mode::min;  ///< min: lower metric is better (a loss)
  double factor = 0.1;    ///< in [0, 1)
  int patience = 10;
  double threshold = 1e-4;
  Threshold threshold_mode = Threshold::rel;  ///< rel: better than best * (1 -+ threshold)
  int cooldown = 0;
  double min_lr = 0;
  double eps = 1e-8;
};

namespace detail {
/// Whether O, or an optimizer it wraps, declares `sets_rate_every_step`
/// (Scheduled does).
template <class O>
constexpr bool rate_set_every_step() {
  if constexpr (requires { O::sets_rate_every_step; }) {
    if (O::sets_rate_every_step) return true;
  }
  if constexpr (requires { typename O::inner_optimizer; })
    return rate_set_every_step<typename O::inner_optimizer>();
  else
    return false;
}
}  // namespace detail

/// An optimizer whose rate, once set, stays until set again: what
/// ReduceLROnPlateau steps. Not a Scheduled (nor a wrapper around one): its
/// every step sets the schedule's rate and would undo the reduction.
template <class O>
concept KeepsSetRate = Optimizer<O> && !detail::rate_set_every_step<O>();

class ReduceLROnPlateau {
 public:
  using Options = ReduceLROnPlateauOptions;
  explicit ReduceLROnPlateau(Options options = {}) : options_(options) {
    char const* const op = "ktnn::ReduceLROnPlateau";
    detail::check_option(op, "factor", options.factor, options.factor >= 0 && options.factor < 1,
                         "[0, 1)");
    detail::check_option(op, "patience", options.patience, options.patience >= 0, ">= 0");
    detail::check_option(op, "threshold", options.threshold, options.threshold >= 0,
                         "a finite value >= 0");
    detail::check_option(op, "cooldown", options.cooldown, options.cooldown >= 0, ">= 0");
    detail::check_option(op, "min_lr", options.min_lr, options.min_lr >= 0, "a finite value >= 0");
    detail::check_option(op, "eps", options.eps, options.eps >= 0, "a finite value >= 0");
    reset();
  }

  /// One epoch's metric and the rate in use; returns the rate for the next
  /// epoch (the same one, or reduced). A NaN metric is a bad epoch.
  double step(double metric, double lr) {
    ++epochs_;
    if (better(metric)) {
      best_ = metric;
      bad_epochs_ = 0;
    } else {
      ++bad_epochs_;
    }
    if (cooldown_counter_ > 0) {
      --cooldown_counter_;
      bad_epochs_ = 0;  // bad epochs in the cooldown do not count
    }
    if (bad_epochs_ > options_.patience) {
      cooldown_counter_ = options_.cooldown;
      bad_epochs_ = 0;
      double const reduced = std::max(lr * options_.factor, options_.min_lr);
      if (lr - reduced > options_.eps) {
        ++reductions_;
        return reduced;
      }
    }
    return lr;
  }

  /// step(metric, optimizer.learning_rate()), setting the optimizer's rate;
  /// returns whether it was reduced.
  template <KeepsSetRate O>
  bool step(double metric, O& optimizer) {
    using T = decltype(optimizer.learning_rate());
    double const lr = double(optimizer.learning_rate());
    double const next = step(metric, lr);
    if (next != lr) optimizer.set_learning_rate(T(next));
    return next != lr;
  }

  /// A callback for FitOptions::on_epoch_end that steps on each epoch's
  /// training loss. This object and `optimizer` must outlive the fit.
  template <KeepsSetRate O>
  auto on_epoch_end(O& optimizer) {
    return [this, &optimizer](auto const& metrics) { step(double(metrics.loss), optimizer); };
  }

  /// Forgets the best metric, the bad epochs and the cooldown.
  void reset() {
    best_ = options_.mode == Options::Mode::min ? std::numeric_limits<double>::infinity()
                                                : -std::numeric_limits<double>::infinity();
    bad_epochs_ = 0;
    cooldown_counter_ = 0;
  }
  /// The checkpoint protocol (optim/state.hpp): the best metric, the bad
  /// epochs, the cooldown, the counts, and the options (as PyTorch's
  /// state_dict of the scheduler holds them). A checkpoint carries it as an
  /// extra object: ktnn::save_checkpoint(path, model, optimizer, progress, plateau).
  std::string state_type() const { return "ReduceLROnPlateau"; }
  Counters export_counters() const {
    auto const& o = options_;
    using detail::counter_text;
    return {{"best", counter_text(best_)},
            {"bad_epochs", counter_text(bad_epochs_)},
            {"cooldown_counter", counter_text(cooldown_counter_)},
            {"epochs", counter_text(epochs_)},
            {"reductions", counter_text(reductions_)},
            {"mode", o.mode == Options::Mode::min ? "min" : "max"},
            {"factor", counter_text(o.factor)},
            {"patience", counter_text(o.patience)},
            {"threshold", counter_text(o.threshold)},
            {"threshold_mode", o.threshold_mode == Options::Threshold::rel ? "rel" : "abs"},
            {"cooldown", counter_text(o.cooldown)},
            {"min_lr", counter_text(o.min_lr)},
            {"eps", counter_text(o.eps)}};
  }
  void import_counters(Counters const& counters, bool check_only = false) {
    char const* const op = "ktnn::ReduceLROnPlateau::import_counters";
    detail::CounterReader in(counters, op);
    auto const best = in.get<double>("best");
    auto const bad_epochs = in.get<int>("bad_epochs");
    auto const cooldown_counter = in.get<int>("cooldown_counter");
    auto const epochs = in.get<std::int64_t>("epochs");
    auto const reductions = in.get<std::int64_t>("reductions");
    Options o;
    o.mode = in.choice("mode", "min", "max") ? Options::Mode::min : Options::Mode::max;
    o.factor = in.get<double>("factor");
    o.patience = in.get<int>("patience");
    o.threshold = in.get<double>("threshold");
    o.threshold_mode = in.choice("threshold_mode", "rel", "abs") ? Options::Threshold::rel
                                                                 : Options::Threshold::abs;
    o.cooldown = in.get<int>("cooldown");
    o.min_lr = in.get<double>("min_lr");
    o.eps = in.get<double>("eps");
    in.finish();
    ReduceLROnPlateau const checked(o);  // validates the options
    if (bad_epochs < 0 || cooldown_counter < 0 || epochs < 0 || reductions < 0)
      detail::fail(op, "counters bad_epochs ", bad_epochs, ", cooldown_counter ", cooldown_counter,
                   ", epochs ", epochs, " and reductions ", reductions, " must be >= 0");
    if (check_only) return;
    options_ = o;
    best_ = best;
    bad_epochs_ = bad_epochs;
    cooldown_counter_ = cooldown_counter;
    epochs_ = epochs;
    reductions_ = reductions;
  }

  double best() const { return best_; }
  int bad_epochs() const { return bad_epochs_; }
  int cooldown_counter() const { return cooldown_counter_; }
  std::int64_t epochs() const { return epochs_; }
  std::int64_t reductions() const { return reductions_; }
  Options const& options() const { return options_; }

 private:
  bool better(double metric) const {
    auto const& o = options_;
    bool const rel = o.threshold_mode == Options::Threshold::rel;
    if (o.mode == Options::Mode::min)
      return metric < (rel ? best_ * (1 - o.threshold) : best_ - o.threshold);
    return metric > (rel ? best_ * (1 + o.threshold) : best_ + o.threshold);
  }

  Options options_;
  double best_ = 0;
  int bad_epochs_ = 0;
  int cooldown_counter_ = 0;
  std::int64_t epochs_ = 0;
  std::int64_t reductions_ = 0;
};

/// An optimizer that follows a schedule: each step sets the wrapped
/// optimizer's rate to schedule(n / steps_per_epoch), n the steps taken so
/// far, then steps it. `Schedule` is any callable from the index to a rate
/// (the classes above, or a lambda). It holds a reference: the optimizer
/// must outlive it. A rate set through set_learning_rate lasts until the next
/// step sets the schedule's (as under PyTorch's closed-form schedulers).
///
/// Its checkpoint state (optim/state.hpp) is the wrapped optimizer's, the
/// steps taken and steps_per_epoch, and a schedule's own counters under
/// "schedule." when it has any (the schedules above are closed forms of the
/// step: their options are the code's, not the checkpoint's).
template <class Inner, class Schedule>
  requires std::invocable<Schedule const&, std::int64_t>
class Scheduled : public ForwardingOptimizer<Scheduled<Inner, Schedule>, Inner> {
  using Base = ForwardingOptimizer<Scheduled, Inner>;
  friend Base;

 public:
  using typename Base::memory_space;
  using typename Base::value_type;
  static constexpr char const* name = "Scheduled";
  /// Its every step sets the schedule's rate (see KeepsSetRate).
  static constexpr bool sets_rate_every_step = true;

  Scheduled(Inner& optimizer, Schedule schedule, std::int64_t steps_per_epoch = 1)
      : Base(optimizer), schedule_(std::move(schedule)), steps_per_epoch_(steps_per_epoch) {
    if (steps_per_epoch <= 0)
      detail::fail("ktnn::Scheduled", "steps_per_epoch is ", steps_per_epoch, ", must be > 0");
  }
  Scheduled(Inner&&, Schedule, std::int64_t = 1) = delete;  // would dangle

  void step(Kokkos::View<value_type*, memory_space> const& params,
            Kokkos::View<value_type*, memory_space> const& grads) {
    Inner& inner = this->optimizer();
    inner.set_learning_rate(value_type(schedule_(steps_ / steps_per_epoch_)));
    inner.step(params, grads);
    ++steps_;
  }

  /// Steps taken through this object.
  std::int64_t steps() const { return steps_; }
  /// Resumes a schedule at step n (the next step uses schedule(n / steps_per_epoch)).
  void set_steps(std::int64_t n) {
    detail::check_schedule_index("ktnn::Scheduled::set_steps", n);
    steps_ = n;
  }
  Schedule const& schedule() const { return schedule_; }

 private:
  struct Own {
    std::int64_t steps, steps_per_epoch;
    Counters schedule;
  };
  Counters own_counters() const {
    Counters out{{"steps", detail::counter_text(steps_)},
                 {"steps_per_epoch", detail::counter_text(steps_per_epoch_)}};
    if constexpr (HasCounters<Schedule>)
      for (auto const& [key, value] : schedule_.export_counters()) out["schedule." + key] = value;
    return out;
  }
  Own read_counters(detail::CounterReader& in) const {
    Own own{in.get<std::int64_t>("steps"), in.get<std::int64_t>("steps_per_epoch"), {}};
    if constexpr (HasCounters<Schedule>) own.schedule = in.sub("schedule.");
    return own;
  }
  void check_counters(Own const& own, detail::CounterReader const& in) {
    detail::check_steps(in, own.steps);
    if (own.steps_per_epoch <= 0)
      detail::fail(in.operation(), "counter 'steps_per_epoch' is ", own.steps_per_epoch,
                   ", must be > 0");
    if constexpr (HasCounters<Schedule>) schedule_.import_counters(own.schedule, true);
  }
  void apply_counters(Own const& own) {
    if constexpr (HasCounters<Schedule>) schedule_.import_counters(own.schedule);
    steps_ = own.steps;
    steps_per_epoch_ = own.steps_per_epoch;
  }

  Schedule schedule_;
  std::int64_t steps_per_epoch_ = 1;
  std::int64_t steps_ = 0;
};

}  // namespace ktnn

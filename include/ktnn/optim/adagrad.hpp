#pragma once
/// \file Adagrad as torch.optim.Adagrad: a running sum of squared gradients
/// per parameter, a learning rate decayed as lr / (1 + (t - 1) lr_decay),
/// L2 weight decay added to the gradient. One kernel over the whole arena.

#include <ktnn/core/error.hpp>
#include <ktnn/ops/elementwise.hpp>
#include <ktnn/optim/checks.hpp>
#include <ktnn/optim/state.hpp>

#include <Kokkos_Core.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace ktnn {

namespace detail {
/// The update of elements [begin, end) whose gradients are all finite,
/// restrict-qualified so it vectorizes. `clr` is this step's decayed rate.
template <class T>
KOKKOS_INLINE_FUNCTION void adagrad_update_finite(T* KOKKOS_RESTRICT p, T const* KOKKOS_RESTRICT g,
                                                  T* KOKKOS_RESTRICT sum, std::size_t begin,
                                                  std::size_t end, T const clr, T const eps,
                                                  T const weight_decay) {
  using Kokkos::sqrt;
  for (std::size_t i = begin; i < end; ++i) {
    T const gi = g[i] + weight_decay * p[i];
    T const si = sum[i] + gi * gi;
    sum[i] = si;
    // si >= 0; the fabs tells the compiler so (vector square root, no errno path).
    p[i] -= clr * (gi / (sqrt(Kokkos::fabs(si)) + eps));
  }
}

/// The update of elements [begin, end); an element whose gradient is not
/// finite is left as it was (parameter and sum), and the return value says
/// whether there was one.
template <class T>
KOKKOS_INLINE_FUNCTION bool adagrad_update(T* KOKKOS_RESTRICT p, T const* KOKKOS_RESTRICT g,
                                           T* KOKKOS_RESTRICT sum, std::size_t begin,
                                           std::size_t end, T const clr, T const eps,
                                           T const weight_decay) {
  bool bad = false;
  // Blocks of a few cache lines: checked, then updated while still in L1.
  for (std::size_t b = begin; b < end; b += finite_block) {
    std::size_t const e = b + finite_block < end ? b + finite_block : end;
    if (all_finite(g, b, e)) {
      adagrad_update_finite(p, g, sum, b, e, clr, eps, weight_decay);
      continue;
    }
    bad = true;
    for (std::size_t i = b; i < e; ++i)
      if (g[i] - g[i] == T(0)) adagrad_update_finite(p, g, sum, i, i + 1, clr, eps, weight_decay);
  }
  return bad;
}

/// Adagrad's kernel: the update of a range with this step's decayed rate
/// `clr`, the first step with a non-finite gradient into `flag`.
template <class T, class MemorySpace>
struct AdagradStep {
  T* p;
  T const* g;
  T* sum;
  T clr, eps, weight_decay;
  Kokkos::View<std::int64_t, MemorySpace> flag;
  std::int64_t step;
  KOKKOS_FUNCTION void operator()(std::size_t begin, std::size_t end) const {
    if (adagrad_update(p, g, sum, begin, end, clr, eps, weight_decay))
      Kokkos::atomic_min(&flag(), step);
  }
};
}  // namespace detail

/// torch.optim.Adagrad's options and defaults.
template <class T = float>
struct AdagradOptions {
  T lr = T(1e-2);
  T lr_decay = T(0);                   ///< step t uses lr / (1 + (t - 1) lr_decay)
  T weight_decay = T(0);               ///< added to the gradient: g += weight_decay * p
  T initial_accumulator_value = T(0);  ///< the sum of squares before the first step
  T eps = T(1e-10);
};

template <class T, class ExecutionSpace = Kokkos::DefaultExecutionSpace>
class Adagrad {
 public:
  using value_type = T;
  using execution_space = ExecutionSpace;
  using memory_space = typename ExecutionSpace::memory_space;
  using Options = AdagradOptions<T>;

  /// State shaped like `model`'s parameter arena.
  template <class Model>
    requires requires(Model const& m) { m.parameters(); }
  explicit Adagrad(Model const& model, Options options = {})
      : Adagrad(model.parameters().extent(0), options, model.execution()) {}

  Adagrad(std::size_t param_count, Options options, ExecutionSpace const& exec = {})
      : exec_(exec),
        options_(options),
        sum_(Kokkos::view_alloc(exec, Kokkos::WithoutInitializing, "ktnn::Adagrad::sum"),
             param_count),
        non_finite_(exec, "ktnn::Adagrad") {
    validate(options, "ktnn::Adagrad");
    ops::fill(exec, "ktnn::Adagrad::initial_accumulator", sum_.data(), param_count,
              options.initial_accumulator_value);
  }

  /// The options; changes are checked at the next step()
  /// (initial_accumulator_value is used at construction only).
  Options& options() { return options_; }
  std::int64_t steps() const { return steps_; }
  /// The learning rate before lr_decay (what a schedule sets).
  T learning_rate() const { return options_.lr; }
  void set_learning_rate(T lr) {
    detail::check_option("ktnn::Adagrad::set_learning_rate", "lr", lr, lr >= T(0),
                         "a finite value >= 0");
    options_.lr = lr;
  }
  /// The first step (1-based) whose gradients held a NaN or Inf (those
  /// elements were not updated), or -1. Waits for the device.
  std::int64_t non_finite_step() const { return non_finite_.first(); }
  void clear_non_finite() { non_finite_.clear(); }

  /// Throws ktnn::Error naming the option, its value and the allowed range.
  static void validate(Options const& o, char const* operation) {
    detail::check_option(operation, "lr", o.lr, o.lr >= T(0), "a finite value >= 0");
    detail::check_option(operation, "lr_decay", o.lr_decay, o.lr_decay >= T(0),
                         "a finite value >= 0");
    detail::check_option(operation, "weight_decay", o.weight_decay, o.weight_decay >= T(0),
                         "a finite value >= 0");
    detail::check_option(operation, "initial_accumulator_value", o.initial_accumulator_value,
                         o.initial_accumulator_value >= T(0), "a finite value >= 0");
    detail::check_option(operation, "eps", o.eps, o.eps > T(0), "a finite value > 0");
  }
  /// PyTorch's state "sum": the running sum of squared gradients.
  Kokkos::View<T*, memory_space> const& sum_of_squares() const { return sum_; }

  /// The checkpoint protocol (optim/state.hpp).
  std::string state_type() const { return "Adagrad"; }
  /// PyTorch's state "sum".
  std::vector<StateTensor<T, memory_space>> state_tensors() const { return {{"sum", sum_}}; }
  /// The step count (the rate's decay depends on it) and the options.
  Counters export_counters() const {
    auto const& o = options_;
    return {{"steps", detail::counter_text(steps_)},
            {"lr", detail::counter_text(o.lr)},
            {"lr_decay", detail::counter_text(o.lr_decay)},
            {"weight_decay", detail::counter_text(o.weight_decay)},
            {"initial_accumulator_value", detail::counter_text(o.initial_accumulator_value)},
            {"eps", detail::counter_text(o.eps)}};
  }
  void import_counters(Counters const& counters, bool check_only = false) {
    detail::CounterReader in(counters, "ktnn::Adagrad::import_counters");
    auto const steps = in.get<std::int64_t>("steps");
    Options o = options_;
    o.lr = in.get<T>("lr");
    o.lr_decay = in.get<T>("lr_decay");
    o.weight_decay = in.get<T>("weight_decay");
    o.initial_accumulator_value = in.get<T>("initial_accumulator_value");
    o.eps = in.get<T>("eps");
    in.finish();
    detail::check_steps(in, steps);
    validate(o, in.operation().c_str());
    if (check_only) return;
    options_ = o;
    steps_ = steps;
  }

  void step(Kokkos::View<T*, memory_space> const& params,
            Kokkos::View<T*, memory_space> const& grads) {
    if (params.extent(0) != grads.extent(0) || params.extent(0) != sum_.extent(0))
      detail::fail("ktnn::Adagrad::step", params.extent(0), " parameters, ", grads.extent(0),
                   " gradients, state for ", sum_.extent(0));
    validate(options_, "ktnn::Adagrad::step");
    // The decayed rate on the host in double, once per step.
    T const clr = T(double(options_.lr) / (1.0 + double(steps_) * double(options_.lr_decay)));
    ops::for_each_range(exec_, "ktnn::Adagrad::step", params.extent(0),
                        detail::AdagradStep<T, memory_space>{.p = params.data(),
                                                             .g = grads.data(),
                                                             .sum = sum_.data(),
                                                             .clr = clr,
                                                             .eps = options_.eps,
                                                             .weight_decay = options_.weight_decay,
                                                             .flag = non_finite_.flag,
                                                             .step = steps_ + 1});
    ++steps_;
  }

 private:
  ExecutionSpace exec_;
  Options options_;
  Kokkos::View<T*, memory_space> sum_;
  detail::NonFiniteFlag<ExecutionSpace> non_finite_;
  std::int64_t steps_ = 0;
};

template <class Model>
Adagrad(Model const&, AdagradOptions<typename Model::value_type> = {})
    -> Adagrad<typename Model::value_type, typename Model::execution_space>;

}  // namespace ktnn

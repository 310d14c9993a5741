#pragma once
/// \file RMSprop as torch.optim.RMSprop: a running average of squared
/// gradients (optionally centered by a running average of the gradients),
/// L2 weight decay added to the gradient, optional momentum on the scaled
/// gradient. One kernel over the whole parameter arena.

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
template <class T>
struct RMSpropCoefficients {
  T lr, alpha, eps, weight_decay, momentum;
  bool centered;
};

/// The update of elements [begin, end) whose gradients are all finite,
/// restrict-qualified so it vectorizes. `average` (centered) and `buffer`
/// (momentum) are only read when their option is on.
template <class T>
KOKKOS_INLINE_FUNCTION void rmsprop_update_finite(T* KOKKOS_RESTRICT p, T const* KOKKOS_RESTRICT g,
                                                  T* KOKKOS_RESTRICT square,
                                                  T* KOKKOS_RESTRICT average,
                                                  T* KOKKOS_RESTRICT buffer, std::size_t begin,
                                                  std::size_t end, RMSpropCoefficients<T> const c) {
  using Kokkos::sqrt;
  for (std::size_t i = begin; i < end; ++i) {
    T const gi = g[i] + c.weight_decay * p[i];
    T const vi = c.alpha * square[i] + (T(1) - c.alpha) * (gi * gi);
    square[i] = vi;
    T variance = vi;
    if (c.centered) {
      // PyTorch's lerp: a + (1 - alpha) (g - a).
      T const ai = average[i] + (T(1) - c.alpha) * (gi - average[i]);
      average[i] = ai;
      variance = vi - ai * ai;
      // >= 0 in exact arithmetic; rounding must not make a NaN of it.
      variance = variance > T(0) ? variance : T(0);
    }
    // The fabs says variance >= 0, so the vector square root needs no errno path.
    T const d = gi / (sqrt(Kokkos::fabs(variance)) + c.eps);
    if (c.momentum > T(0)) {
      T const bi = c.momentum * buffer[i] + d;
      buffer[i] = bi;
      p[i] -= c.lr * bi;
    } else {
      p[i] -= c.lr * d;
    }
  }
}

/// The update of elements [begin, end); an element whose gradient is not
/// finite is left as it was (parameter and state), and the return value says
/// whether there was one.
template <class T>
KOKKOS_INLINE_FUNCTION bool rmsprop_update(T* KOKKOS_RESTRICT p, T const* KOKKOS_RESTRICT g,
                                           T* KOKKOS_RESTRICT square, T* KOKKOS_RESTRICT average,
                                           T* KOKKOS_RESTRICT buffer, std::size_t begin,
                                           std::size_t end, RMSpropCoefficients<T> const c) {
  bool bad = false;
  // Blocks of a few cache lines: checked, then updated while still in L1.
  for (std::size_t b = begin; b < end; b += finite_block) {
    std::size_t const e = b + finite_block < end ? b + finite_block : end;
    if (all_finite(g, b, e)) {
      rmsprop_update_finite(p, g, square, average, buffer, b, e, c);
      continue;
    }
    bad = true;
    for (std::size_t i = b; i < e; ++i)
      if (g[i] - g[i] == T(0)) rmsprop_update_finite(p, g, square, average, buffer, i, i + 1, c);
  }
  return bad;
}

/// RMSprop's kernel: the update of a range, the first step with a
/// non-finite gradient into `flag`.
template <class T, class MemorySpace>
struct RMSpropStep {
  T* p;
  T const* g;
  T* square;
  T* average;
  T* buffer;
  RMSpropCoefficients<T> c;
  Kokkos::View<std::int64_t, MemorySpace> flag;
  std::int64_t step;
  KOKKOS_FUNCTION void operator()(std::size_t begin, std::size_t end) const {
    if (rmsprop_update(p, g, square, average, buffer, begin, end, c))
      Kokkos::atomic_min(&flag(), step);
  }
};
}  // namespace detail

/// torch.optim.RMSprop's options and defaults.
template <class T = float>
struct RMSpropOptions {
  T lr = T(1e-2);
  T alpha = T(0.99);  ///< smoothing of the squared-gradient average
  T eps = T(1e-8);
  T weight_decay = T(0);  ///< added to the gradient: g += weight_decay * p
  T momentum = T(0);
  bool centered = false;  ///< divide by the gradient's running variance, not its mean square
};

template <class T, class ExecutionSpace = Kokkos::DefaultExecutionSpace>
class RMSprop {
 public:
  using value_type = T;
  using execution_space = ExecutionSpace;
  using memory_space = typename ExecutionSpace::memory_space;
  using Options = RMSpropOptions<T>;

  /// State shaped like `model`'s parameter arena.
  template <class Model>
    requires requires(Model const& m) { m.parameters(); }
  explicit RMSprop(Model const& model, Options options = {})
      : RMSprop(model.parameters().extent(0), options, model.execution()) {}

  /// The buffers of momentum and of the centered average exist only when
  /// their option is on here.
  RMSprop(std::size_t param_count, Options options, ExecutionSpace const& exec = {})
      : exec_(exec),
        options_(options),
        square_(Kokkos::view_alloc(exec, "ktnn::RMSprop::square_average"), param_count),
        non_finite_(exec, "ktnn::RMSprop") {
    validate(options, "ktnn::RMSprop");
    if (options.centered)
      average_ = Kokkos::View<T*, memory_space>(
          Kokkos::view_alloc(exec, "ktnn::RMSprop::gradient_average"), param_count);
    if (options.momentum > T(0))
      buffer_ = Kokkos::View<T*, memory_space>(
          Kokkos::view_alloc(exec, "ktnn::RMSprop::momentum_buffer"), param_count);
  }

  /// The options; changes are checked at the next step() (momentum and
  /// centered can only be switched on at construction: they need buffers).
  Options& options() { return options_; }
  std::int64_t steps() const { return steps_; }
  /// The learning rate of the next step (what a schedule sets).
  T learning_rate() const { return options_.lr; }
  void set_learning_rate(T lr) {
    detail::check_option("ktnn::RMSprop::set_learning_rate", "lr", lr, lr >= T(0),
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
    detail::check_option(operation, "alpha", o.alpha, o.alpha >= T(0) && o.alpha <= T(1), "[0, 1]");
    detail::check_option(operation, "eps", o.eps, o.eps > T(0), "a finite value > 0");
    detail::check_option(operation, "weight_decay", o.weight_decay, o.weight_decay >= T(0),
                         "a finite value >= 0");
    detail::check_option(operation, "momentum", o.momentum, o.momentum >= T(0),
                         "a finite value >= 0");
  }
  /// PyTorch's state "square_avg", "grad_avg" (centered) and
  /// "momentum_buffer" (momentum); the last two are empty when off.
  Kokkos::View<T*, memory_space> const& square_average() const { return square_; }
  Kokkos::View<T*, memory_space> const& gradient_average() const { return average_; }
  Kokkos::View<T*, memory_space> const& momentum_buffer() const { return buffer_; }

  /// The checkpoint protocol (optim/state.hpp).
  std::string state_type() const { return "RMSprop"; }
  /// PyTorch's state "square_avg", and "momentum_buffer" and "grad_avg" when
  /// the optimizer was made with momentum and centered.
  std::vector<StateTensor<T, memory_space>> state_tensors() const {
    std::vector<StateTensor<T, memory_space>> out{{"square_avg", square_}};
    if (buffer_.data()) out.push_back({"momentum_buffer", buffer_});
    if (average_.data()) out.push_back({"grad_avg", average_});
    return out;
  }
  Counters export_counters() const {
    auto const& o = options_;
    return {{"steps", detail::counter_text(steps_)},
            {"lr", detail::counter_text(o.lr)},
            {"alpha", detail::counter_text(o.alpha)},
            {"eps", detail::counter_text(o.eps)},
            {"weight_decay", detail::counter_text(o.weight_decay)},
            {"momentum", detail::counter_text(o.momentum)},
            {"centered", detail::counter_text(o.centered)}};
  }
  void import_counters(Counters const& counters, bool check_only = false) {
    detail::CounterReader in(counters, "ktnn::RMSprop::import_counters");
    auto const steps = in.get<std::int64_t>("steps");
    Options o = options_;
    o.lr = in.get<T>("lr");
    o.alpha = in.get<T>("alpha");
    o.eps = in.get<T>("eps");
    o.weight_decay = in.get<T>("weight_decay");
    o.momentum = in.get<T>("momentum");
    o.centered = in.get<bool>("centered");
    in.finish();
    detail::check_steps(in, steps);
    validate(o, in.operation().c_str());
    if (o.momentum > T(0) && !buffer_.data())
      detail::fail(in.operation(), "counter 'momentum' is ", o.momentum,
                   ", but this optimizer was made without momentum (no momentum buffer)");
    if (o.centered && !average_.data())
      detail::fail(in.operation(),
                   "counter 'centered' is true, but this optimizer was made without it (no "
                   "gradient average)");
    if (check_only) return;
    options_ = o;
    steps_ = steps;
  }

  void step(Kokkos::View<T*, memory_space> const& params,
            Kokkos::View<T*, memory_space> const& grads) {
    if (params.extent(0) != grads.extent(0) || params.extent(0) != square_.extent(0))
      detail::fail("ktnn::RMSprop::step", params.extent(0), " parameters, ", grads.extent(0),
                   " gradients, state for ", square_.extent(0));
    validate(options_, "ktnn::RMSprop::step");
    if (options_.momentum > T(0) && !buffer_.data())
      detail::fail("ktnn::RMSprop::step", "option momentum is ", options_.momentum,
                   ", but the optimizer was made without momentum (no momentum buffer)");
    if (options_.centered && !average_.data())
      detail::fail("ktnn::RMSprop::step",
                   "option centered is on, but the optimizer was made without it (no gradient "
                   "average)");
    detail::RMSpropCoefficients<T> const c{options_.lr,       options_.alpha,
                                           options_.eps,      options_.weight_decay,
                                           options_.momentum, options_.centered};
    ops::for_each_range(exec_, "ktnn::RMSprop::step", params.extent(0),
                        detail::RMSpropStep<T, memory_space>{.p = params.data(),
                                                             .g = grads.data(),
                                                             .square = square_.data(),
                                                             .average = average_.data(),
                                                             .buffer = buffer_.data(),
                                                             .c = c,
                                                             .flag = non_finite_.flag,
                                                             .step = steps_ + 1});
    ++steps_;
  }

 private:
  ExecutionSpace exec_;
  Options options_;
  Kokkos::View<T*, memory_space> square_;
  Kokkos::View<T*, memory_space> average_;
  Kokkos::View<T*, memory_space> buffer_;
  detail::NonFiniteFlag<ExecutionSpace> non_finite_;
  std::int64_t steps_ = 0;
};

template <class Model>
RMSprop(Model const&, RMSpropOptions<typename Model::value_type> = {})
    -> RMSprop<typename Model::value_type, typename Model::execution_space>;

}  // namespace ktnn

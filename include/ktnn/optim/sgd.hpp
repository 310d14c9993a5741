#pragma once
/// \file Stochastic gradient descent with momentum, Nesterov momentum and L2
/// weight decay, as torch.optim.SGD (dampening 0). One kernel over the arena.

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
/// restrict-qualified so it vectorizes.
template <class T>
KOKKOS_INLINE_FUNCTION void sgd_update_finite(T* KOKKOS_RESTRICT p, T const* KOKKOS_RESTRICT g,
                                              T* KOKKOS_RESTRICT velocity, std::size_t begin,
                                              std::size_t end, T const lr, T const momentum,
                                              T const weight_decay, bool const nesterov,
                                              bool const first) {
  for (std::size_t i = begin; i < end; ++i) {
    T d = g[i] + weight_decay * p[i];
    if (momentum != T(0)) {
      T const vi = first ? d : momentum * velocity[i] + d;
      velocity[i] = vi;
      d = nesterov ? d + momentum * vi : vi;
    }
    p[i] -= lr * d;
  }
}

/// The update of elements [begin, end); an element whose gradient is not
/// finite is left as it was, and the return value says whether there was one.
template <class T>
KOKKOS_INLINE_FUNCTION bool sgd_update(T* KOKKOS_RESTRICT p, T const* KOKKOS_RESTRICT g,
                                       T* KOKKOS_RESTRICT velocity, std::size_t begin,
                                       std::size_t end, T const lr, T const momentum,
                                       T const weight_decay, bool const nesterov,
                                       bool const first) {
  bool bad = false;
  // Blocks of a few cache lines: checked, then updated while still in L1.
  for (std::size_t b = begin; b < end; b += finite_block) {
    std::size_t const e = b + finite_block < end ? b + finite_block : end;
    if (all_finite(g, b, e)) {
      sgd_update_finite(p, g, velocity, b, e, lr, momentum, weight_decay, nesterov, first);
      continue;
    }
    bad = true;
    for (std::size_t i = b; i < e; ++i)
      if (g[i] - g[i] == T(0))
        sgd_update_finite(p, g, velocity, i, i + 1, lr, momentum, weight_decay, nesterov, first);
  }
  return bad;
}

/// SGD's kernel: the update of a range, the first step with a non-finite
/// gradient into `flag`.
template <class T, class MemorySpace>
struct SGDStep {
  T* p;
  T const* g;
  T* velocity;
  T lr, momentum, weight_decay;
  bool nesterov, first;
  Kokkos::View<std::int64_t, MemorySpace> flag;
  std::int64_t step;
  KOKKOS_FUNCTION void operator()(std::size_t begin, std::size_t end) const {
    if (sgd_update(p, g, velocity, begin, end, lr, momentum, weight_decay, nesterov, first))
      Kokkos::atomic_min(&flag(), step);
  }
};
}  // namespace detail

template <class T = float>
struct SGDOptions {
  T lr = T(0.01);
  T momentum = T(0);
  T weight_decay = T(0);  ///< added to the gradient: g += weight_decay * p
  bool nesterov = false;
};

template <class T, class ExecutionSpace = Kokkos::DefaultExecutionSpace>
class SGD {
 public:
  using value_type = T;
  using execution_space = ExecutionSpace;
  using memory_space = typename ExecutionSpace::memory_space;
  using Options = SGDOptions<T>;

  /// State shaped like `model`'s parameter arena.
  template <class Model>
    requires requires(Model const& m) { m.parameters(); }
  explicit SGD(Model const& model, Options options = {})
      : SGD(model.parameters().extent(0), options, model.execution()) {}

  SGD(std::size_t param_count, Options options, ExecutionSpace const& exec = {})
      : exec_(exec), options_(options), non_finite_(exec, "ktnn::SGD") {
    validate(options, "ktnn::SGD");
    if (options.momentum != T(0))
      velocity_ = Kokkos::View<T*, memory_space>(Kokkos::view_alloc(exec, "ktnn::SGD::velocity"),
                                                 param_count);
  }

  /// The options; changes are checked at the next step() (momentum can only
  /// be switched on at construction: it needs the velocity buffer).
  Options& options() { return options_; }
  std::int64_t steps() const { return steps_; }
  /// The learning rate of the next step (what a schedule sets).
  T learning_rate() const { return options_.lr; }
  void set_learning_rate(T lr) {
    detail::check_option("ktnn::SGD::set_learning_rate", "lr", lr, lr >= T(0),
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
    detail::check_option(operation, "momentum", o.momentum, o.momentum >= T(0),
                         "a finite value >= 0");
    detail::check_option(operation, "weight_decay", o.weight_decay, o.weight_decay >= T(0),
                         "a finite value >= 0");
    if (o.nesterov && o.momentum <= T(0))
      detail::fail(operation, "Nesterov momentum needs momentum > 0 (got ", o.momentum, ")");
  }

  /// The velocity (empty without momentum).
  Kokkos::View<T*, memory_space> const& velocity() const { return velocity_; }

  /// The checkpoint protocol (optim/state.hpp).
  std::string state_type() const { return "SGD"; }
  /// PyTorch's state "momentum_buffer", when the optimizer was made with momentum.
  std::vector<StateTensor<T, memory_space>> state_tensors() const {
    if (!velocity_.data()) return {};
    return {{"momentum_buffer", velocity_}};
  }
  /// The step count (the first step starts the velocity) and the options.
  Counters export_counters() const {
    auto const& o = options_;
    return {{"steps", detail::counter_text(steps_)},
            {"lr", detail::counter_text(o.lr)},
            {"momentum", detail::counter_text(o.momentum)},
            {"weight_decay", detail::counter_text(o.weight_decay)},
            {"nesterov", detail::counter_text(o.nesterov)}};
  }
  void import_counters(Counters const& counters, bool check_only = false) {
    detail::CounterReader in(counters, "ktnn::SGD::import_counters");
    auto const steps = in.get<std::int64_t>("steps");
    Options o = options_;
    o.lr = in.get<T>("lr");
    o.momentum = in.get<T>("momentum");
    o.weight_decay = in.get<T>("weight_decay");
    o.nesterov = in.get<bool>("nesterov");
    in.finish();
    detail::check_steps(in, steps);
    validate(o, in.operation().c_str());
    if (o.momentum != T(0) && !velocity_.data())
      detail::fail(in.operation(), "counter 'momentum' is ", o.momentum,
                   ", but this optimizer was made without momentum (no velocity buffer)");
    if (check_only) return;
    options_ = o;
    steps_ = steps;
  }

  /// p -= lr * update(g): one fused kernel over the whole arena.
  void step(Kokkos::View<T*, memory_space> const& params,
            Kokkos::View<T*, memory_space> const& grads) {
    if (params.extent(0) != grads.extent(0) ||
        (velocity_.data() && velocity_.extent(0) != params.extent(0)))
      detail::fail("ktnn::SGD::step", params.extent(0), " parameters, ", grads.extent(0),
                   " gradients, state for ", velocity_.extent(0));
    validate(options_, "ktnn::SGD::step");
    if (options_.momentum != T(0) && !velocity_.data())
      detail::fail("ktnn::SGD::step", "option momentum is ", options_.momentum,
                   ", but the optimizer was made without momentum (no velocity buffer)");
    ops::for_each_range(exec_, "ktnn::SGD::step", params.extent(0),
                        detail::SGDStep<T, memory_space>{.p = params.data(),
                                                         .g = grads.data(),
                                                         .velocity = velocity_.data(),
                                                         .lr = options_.lr,
                                                         .momentum = options_.momentum,
                                                         .weight_decay = options_.weight_decay,
                                                         .nesterov = options_.nesterov,
                                                         .first = steps_ == 0,
                                                         .flag = non_finite_.flag,
                                                         .step = steps_ + 1});
    ++steps_;
  }

 private:
  ExecutionSpace exec_;
  Options options_;
  Kokkos::View<T*, memory_space> velocity_;
  detail::NonFiniteFlag<ExecutionSpace> non_finite_;
  std::int64_t steps_ = 0;
};

template <class Model>
SGD(Model const&, SGDOptions<typename Model::value_type> = {})
    -> SGD<typename Model::value_type, typename Model::execution_space>;

}  // namespace ktnn

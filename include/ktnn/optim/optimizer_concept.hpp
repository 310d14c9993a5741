#pragma once
/// \file The optimizer protocol: what a type needs to train a model through
/// train_step, fit and a checkpoint, and the check that tells an optimizer's
/// author exactly which member is missing.
///
///   value_type, execution_space, memory_space
///                                   the parameters' scalar type and where they live
///   step(params, grads)             one update from the parameter and gradient
///                                   arenas (Kokkos::View<value_type*, memory_space>)
///   learning_rate(), set_learning_rate(lr)
///                                   the rate of the next step (what schedules set)
///   non_finite_step(), clear_non_finite()
///                                   the first step whose gradients were not all
///                                   finite (-1 if none), and its reset
///   state_type(), state_tensors(), export_counters(), import_counters(c, check_only)
///                                   the checkpoint state (optim/state.hpp)
///
/// OptimizerBase (optim/optimizer_base.hpp) supplies all but step and
/// state_tensors; ForwardingOptimizer (optim/forwarding.hpp) all but step
/// for a wrapper.

#include <ktnn/optim/state.hpp>

#include <Kokkos_Core.hpp>

#include <concepts>
#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

namespace ktnn {

/// One requirement of the optimizer protocol each, so check_optimizer can
/// say which is missing.
namespace detail::optimizer_requirements {
template <class O>
concept typed = requires {
  typename O::value_type;
  typename O::execution_space;
  typename O::memory_space;
};
template <class O>
using Arena = Kokkos::View<typename O::value_type*, typename O::memory_space>;

template <class O>
concept steps = typed<O> && requires(O& o, Arena<O> const& arena) { o.step(arena, arena); };
template <class O>
concept rate = typed<O> && requires(O const& o) {
  { o.learning_rate() } -> std::convertible_to<typename O::value_type>;
};
template <class O>
concept rate_setter =
    typed<O> && requires(O& o, typename O::value_type lr) { o.set_learning_rate(lr); };
template <class O>
concept non_finite_report = requires(O const& o) {
  { o.non_finite_step() } -> std::convertible_to<std::int64_t>;
};
template <class O>
concept non_finite_reset = requires(O& o) { o.clear_non_finite(); };
}  // namespace detail::optimizer_requirements

/// A type that can train a model (see the file comment).
template <class O>
concept Optimizer =
    detail::optimizer_requirements::typed<O> && detail::optimizer_requirements::steps<O> &&
    detail::optimizer_requirements::rate<O> && detail::optimizer_requirements::rate_setter<O> &&
    detail::optimizer_requirements::non_finite_report<O> &&
    detail::optimizer_requirements::non_finite_reset<O> && CheckpointableOptimizer<O>;

/// Checks the protocol one requirement at a time, so the compiler's first
/// error says which member is missing (and names O in its instantiation).
template <class O>
constexpr bool check_optimizer() {
  namespace r = detail::optimizer_requirements;
  namespace s = detail::state_requirements;
  static_assert(r::typed<O>,
                "ktnn::Optimizer: missing `using value_type`, `execution_space` or "
                "`memory_space`");
  static_assert(r::steps<O>,
                "ktnn::Optimizer: missing `void step(Kokkos::View<value_type*, memory_space> "
                "const& params, Kokkos::View<value_type*, memory_space> const& grads)`");
  static_assert(r::rate<O>, "ktnn::Optimizer: missing `value_type learning_rate() const`");
  static_assert(r::rate_setter<O>, "ktnn::Optimizer: missing `void set_learning_rate(value_type)`");
  static_assert(r::non_finite_report<O>,
                "ktnn::Optimizer: missing `std::int64_t non_finite_step() const` (-1 when every "
                "gradient was finite)");
  static_assert(r::non_finite_reset<O>, "ktnn::Optimizer: missing `void clear_non_finite()`");
  static_assert(s::state_type<O>, "ktnn::Optimizer: missing `std::string state_type() const`");
  static_assert(s::state_tensors<O>,
                "ktnn::Optimizer: missing `std::vector<ktnn::StateTensor<value_type, "
                "memory_space>> state_tensors() const`");
  static_assert(s::exports<O>, "ktnn::Optimizer: missing `ktnn::Counters export_counters() const`");
  static_assert(s::imports<O>,
                "ktnn::Optimizer: missing `void import_counters(ktnn::Counters const&, bool "
                "check_only = false)`");
  return Optimizer<O>;
}

/// check_optimizer<O>(), and that O steps the parameter and gradient arenas
/// of Model.
template <class O, class Model>
constexpr bool check_optimizer_for() {
  if constexpr (!check_optimizer<O>()) {
    return false;
  } else {
    constexpr bool fits =
        requires(O& o, Model const& model) { o.step(model.parameters(), model.gradients()); };
    static_assert(fits,
                  "ktnn::Optimizer: its step does not take this model's arenas (its value_type or "
                  "memory_space differs from the model's?)");
    return fits;
  }
}

}  // namespace ktnn

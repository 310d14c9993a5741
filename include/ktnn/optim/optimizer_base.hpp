#pragma once
/// \file What every ktnn optimizer (SGD, Adam, RMSprop, Adagrad) shares,
/// written once: its options and step count, the learning rate a schedule
/// reads and sets, the report of non-finite gradients, the checks of its
/// options, and its counters in a checkpoint (optim/state.hpp).
///
/// An optimizer derives from OptimizerBase<Itself, T, ExecutionSpace,
/// Options> (CRTP) and declares
///
///   static constexpr char const* name        "SGD": labels "ktnn::SGD::step", messages
///   static constexpr auto option_fields()    a std::tuple of OptionField: each option
///                                            a checkpoint saves, its key and its range
///   step(params, grads)                      checks (check_step), then runs its
///                                            update through run_step
///   state_tensors()                          its buffers
///
/// The field list is the one place an option is named: export_counters,
/// import_counters and validate all read it, in its order. An optimizer may
/// hide validate (to check more, calling OptimizerBase::validate first),
/// state_type (a name that depends on the options) and declare
/// `void check_imported(Options const&, std::string const& operation) const`
/// (options a checkpoint may not switch on, such as momentum without its
/// buffer).

#include <ktnn/core/error.hpp>
#include <ktnn/ops/elementwise.hpp>
#include <ktnn/optim/checks.hpp>
#include <ktnn/optim/state.hpp>

#include <Kokkos_Core.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <tuple>
#include <type_traits>

namespace ktnn {

/// The values an option may take; checked at construction, at each step and
/// when a checkpoint is imported.
enum class OptionRange {
  any,             ///< not checked (a switch)
  non_negative,    ///< finite, >= 0
  positive,        ///< finite, > 0
  unit_half_open,  ///< [0, 1)
  unit_closed,     ///< [0, 1]
};

/// One option of an optimizer: its key in a checkpoint's counters, the
/// member of the Options struct, and its range.
template <class Options, class V>
struct OptionField {
  using value_type = V;
  char const* key;
  V Options::* member;
  OptionRange range = OptionRange::any;
};

/// The shared members of the ktnn optimizers (see the file comment).
/// \tparam Derived the optimizer itself
/// \tparam T the parameters' scalar type
/// \tparam Options its options struct (with a learning rate `lr`)
template <class Derived, class T, class ExecutionSpace, class Options>
class OptimizerBase {
 public:
  using value_type = T;
  using execution_space = ExecutionSpace;
  using memory_space = typename ExecutionSpace::memory_space;

  /// The options; changes are checked at the next step().
  Options& options() { return options_; }
  std::int64_t steps() const { return steps_; }
  /// The learning rate of the next step (what a schedule sets).
  T learning_rate() const { return options_.lr; }
  void set_learning_rate(T lr) {
    detail::check_option(operation("::set_learning_rate").c_str(), "lr", lr, lr >= T(0),
                         "a finite value >= 0");
    options_.lr = lr;
  }
  /// The first step (1-based) whose gradients held a NaN or Inf (those
  /// elements were not updated), or -1. Waits for the device.
  std::int64_t non_finite_step() const { return non_finite_.first(); }
  void clear_non_finite() { non_finite_.clear(); }

  /// Throws ktnn::Error naming the option, its value and the allowed range.
  static void validate(Options const& o, char const* operation) {
    std::apply([&](auto const&... field) { (check_field(o, operation, field), ...); },
               Derived::option_fields());
  }

  /// The checkpoint protocol (optim/state.hpp): the name of the state.
  std::string state_type() const { return Derived::name; }
  /// The step count and the options of the field list.
  Counters export_counters() const {
    Counters out{{"steps", detail::counter_text(steps_)}};
    std::apply(
        [&](auto const&... field) {
          ((out[field.key] = detail::counter_text(options_.*field.member)), ...);
        },
        Derived::option_fields());
    return out;
  }
  void import_counters(Counters const& counters, bool check_only = false) {
    detail::CounterReader in(counters, "ktnn::" + derived().state_type() + "::import_counters");
    auto const steps = in.get<std::int64_t>("steps");
    Options o = options_;
    std::apply(
        [&](auto const&... field) {
          ((o.*field.member =
                in.template get<typename std::remove_cvref_t<decltype(field)>::value_type>(
                    field.key)),
           ...);
        },
        Derived::option_fields());
    in.finish();
    detail::check_steps(in, steps);
    Derived::validate(o, in.operation().c_str());
    if constexpr (requires { derived().check_imported(o, in.operation()); })
      derived().check_imported(o, in.operation());
    if (check_only) return;
    options_ = o;
    steps_ = steps;
  }

 protected:
  /// Checks the options (ktnn::Error "ktnn::<name>: option ...").
  OptimizerBase(Options const& options, ExecutionSpace const& exec)
      : exec_(exec), options_(options), non_finite_(exec, operation("")) {
    Derived::validate(options, operation("").c_str());
  }

  /// Throws "<operation>: ..." unless the parameters, the gradients and the
  /// state (unless `state_optional` and it is empty) have one size and the
  /// options are in range.
  template <class View>
  void check_step(char const* operation, View const& params, View const& grads, View const& state,
                  bool state_optional = false) const {
    if (params.extent(0) != grads.extent(0) ||
        ((!state_optional || state.data()) && state.extent(0) != params.extent(0)))
      detail::fail(operation, params.extent(0), " parameters, ", grads.extent(0),
                   " gradients, state for ", state.extent(0));
    Derived::validate(options_, operation);
  }

  /// Runs `update` (the optimizer's restrict-qualified loop over a range
  /// whose gradients are all finite) over the n elements of the arenas inside
  /// detail::FiniteUpdate's checks, as step number `step`.
  template <class Update>
  void run_step(char const* label, std::size_t n, Update const& update, std::int64_t step) {
    ops::for_each_range(
        exec_, label, n,
        detail::FiniteUpdate<Update, T, memory_space>{
            .update = update, .g = update.g, .flag = non_finite_.flag, .step = step});
  }

  /// "ktnn::<name><suffix>".
  static std::string operation(char const* suffix) {
    return std::string("ktnn::") + Derived::name + suffix;
  }

  ExecutionSpace exec_;
  Options options_;
  detail::NonFiniteFlag<ExecutionSpace> non_finite_;
  std::int64_t steps_ = 0;

 private:
  Derived const& derived() const { return static_cast<Derived const&>(*this); }

  /// Switches (bool) take any value.
  template <class V>
  static void check_field(Options const& o, char const* operation,
                          OptionField<Options, V> const& field) {
    if constexpr (!std::is_same_v<V, bool>) {
      V const value = o.*field.member;
      char const* const key = field.key;
      switch (field.range) {
        case OptionRange::any:
          return;
        case OptionRange::non_negative:
          return detail::check_option(operation, key, value, value >= V(0), "a finite value >= 0");
        case OptionRange::positive:
          return detail::check_option(operation, key, value, value > V(0), "a finite value > 0");
        case OptionRange::unit_half_open:
          return detail::check_option(operation, key, value, value >= V(0) && value < V(1),
                                      "[0, 1)");
        case OptionRange::unit_closed:
          return detail::check_option(operation, key, value, value >= V(0) && value <= V(1),
                                      "[0, 1]");
      }
    }
  }
};

}  // namespace ktnn

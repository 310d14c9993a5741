#pragma once
/// \file What an optimizer wrapper (Scheduled, Clipped) forwards to the
/// optimizer it wraps, written once: the scalar type and spaces, the
/// learning rate, the report of non-finite gradients, and the checkpoint
/// protocol (optim/state.hpp) with the wrapped optimizer's tensors and its
/// counters under "optimizer.".
///
/// A wrapper derives from ForwardingOptimizer<Itself, Inner> (CRTP), declares
/// `static constexpr char const* name` ("Clipped": its state is then
/// "Clipped<Adam>") and its step, and gives the base (a friend) its own
/// counters through four members:
///
///   Counters own_counters() const            what export_counters adds
///   Own read_counters(detail::CounterReader&) its keys read (no checks yet)
///   void check_counters(Own const&, detail::CounterReader const&)
///                                            throws naming a bad one
///   void apply_counters(Own const&)          takes them
///
/// import_counters reads the wrapper's keys and the wrapped optimizer's,
/// refuses any other key, checks both, and only then changes anything.

#include <ktnn/optim/optimizer_concept.hpp>
#include <ktnn/optim/state.hpp>

#include <Kokkos_Core.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace ktnn {

/// The forwarding members of an optimizer wrapper (see the file comment).
/// It holds a reference: the wrapped optimizer must outlive the wrapper.
/// \tparam Derived the wrapper itself
/// \tparam Inner the optimizer it wraps
template <class Derived, class Inner>
class ForwardingOptimizer {
  static_assert(check_optimizer<Inner>(),
                "ktnn: the optimizer a wrapper holds does not meet the ktnn::Optimizer protocol "
                "(see above)");

 public:
  using value_type = typename Inner::value_type;
  using execution_space = typename Inner::execution_space;
  using memory_space = typename Inner::memory_space;
  /// The wrapped optimizer's type.
  using inner_optimizer = Inner;

  /// The wrapped optimizer.
  Inner& optimizer() const { return inner_; }

  /// The wrapped optimizer's learning rate (the one the last step used).
  value_type learning_rate() const { return inner_.learning_rate(); }
  void set_learning_rate(value_type lr) { inner_.set_learning_rate(lr); }
  /// The wrapped optimizer's first step with gradients not all finite, or -1.
  std::int64_t non_finite_step() const { return inner_.non_finite_step(); }
  void clear_non_finite() { inner_.clear_non_finite(); }

  /// "<name><the wrapped optimizer's state type>", e.g. "Scheduled<Adam>".
  std::string state_type() const {
    return std::string(Derived::name) + "<" + std::string(inner_.state_type()) + ">";
  }
  /// The wrapped optimizer's tensors.
  std::vector<StateTensor<value_type, memory_space>> state_tensors() const {
    return inner_.state_tensors();
  }
  /// The wrapper's own counters, and the wrapped optimizer's under "optimizer.".
  Counters export_counters() const {
    Counters out = derived().own_counters();
    for (auto const& [key, value] : inner_.export_counters()) out["optimizer." + key] = value;
    return out;
  }
  void import_counters(Counters const& counters, bool check_only = false) {
    detail::CounterReader in(counters, "ktnn::" + std::string(Derived::name) + "::import_counters");
    auto const own = derived().read_counters(in);
    auto const inner = in.sub("optimizer.");
    in.finish();
    derived().check_counters(own, in);
    inner_.import_counters(inner, true);
    if (check_only) return;
    inner_.import_counters(inner);
    derived().apply_counters(own);
  }

 protected:
  explicit ForwardingOptimizer(Inner& inner) : inner_(inner) {}

 private:
  Derived& derived() { return static_cast<Derived&>(*this); }
  Derived const& derived() const { return static_cast<Derived const&>(*this); }

  Inner& inner_;
};

}  // namespace ktnn

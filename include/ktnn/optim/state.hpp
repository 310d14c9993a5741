#pragma once
/// \file The checkpoint protocol of optimizers, their wrappers and stateful
/// schedules: what a training checkpoint (io/checkpoint.hpp) saves of them,
/// so that a run resumed from it continues bit for bit as if it had never
/// stopped.
///
/// Every ktnn optimizer (SGD, Adam, AdamW, RMSprop, Adagrad) and wrapper
/// (Scheduled, Clipped) has
///
///   std::string state_type() const
///       "SGD", "Adam", "AdamW", ..., "Scheduled<Adam>": a checkpoint loads
///       only into an optimizer of the same type.
///   std::vector<StateTensor<T, memory_space>> state_tensors() const
///       the per-parameter buffers under PyTorch's names (exp_avg,
///       momentum_buffer, ...), each a View shaped like the parameter arena
///       that shares the optimizer's memory: a checkpoint copies out of and
///       into them.
///   Counters export_counters() const
///       the scalars: step counts, the learning rate in force (schedules
///       change it) and the other options, as text that reads back exactly.
///   void import_counters(Counters const&, bool check_only = false)
///       the reverse: throws ktnn::Error naming the key and the problem, and
///       then has changed nothing; with check_only, only checks.
///
/// ReduceLROnPlateau, whose state is not a function of the step, has the
/// three counter members (no tensors), so a checkpoint can carry it too.
///
/// The options are restored with the state, as PyTorch's load_state_dict
/// restores an optimizer's param_groups: to change one after loading, set it
/// through options() then.

#include <ktnn/core/error.hpp>

#include <Kokkos_Core.hpp>

#include <charconv>
#include <concepts>
#include <cstdint>
#include <limits>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

namespace ktnn {

/// The scalars of an optimizer's or schedule's state: key to exact text.
using Counters = std::map<std::string, std::string>;

/// One per-parameter buffer of an optimizer's state.
template <class T, class MemorySpace>
struct StateTensor {
  std::string name;  ///< PyTorch's name in the optimizer's per-parameter state
  Kokkos::View<T*, MemorySpace> values;
};

/// One member of the checkpoint protocol each, so check_optimizer
/// (optim/optimizer_concept.hpp) can say which is missing.
namespace detail::state_requirements {
template <class S>
concept state_type = requires(S const& s) {
  { s.state_type() } -> std::convertible_to<std::string>;
};
template <class S>
concept exports = requires(S const& s) {
  { s.export_counters() } -> std::same_as<Counters>;
};
template <class S>
concept imports = requires(S& s, Counters const& c) {
  s.import_counters(c, true);
  s.import_counters(c);
};
template <class O>
concept state_tensors = requires(O const& o) {
  {
    o.state_tensors()
  } -> std::same_as<std::vector<StateTensor<typename O::value_type, typename O::memory_space>>>;
};
}  // namespace detail::state_requirements

/// What a checkpoint needs of a stateful object without tensors
/// (ReduceLROnPlateau) and of every optimizer.
template <class S>
concept HasCounters =
    detail::state_requirements::state_type<S> && detail::state_requirements::exports<S> &&
    detail::state_requirements::imports<S>;

/// What a checkpoint needs of an optimizer.
template <class O>
concept CheckpointableOptimizer = HasCounters<O> && detail::state_requirements::state_tensors<O>;

namespace detail {

/// Exact text of a counter: integers in decimal, floating values in the
/// shortest form that reads back to the same bits ("inf" and "nan" too),
/// booleans as true/false.
template <class V>
std::string counter_text(V value) {
  if constexpr (std::is_same_v<V, bool>) {
    return value ? "true" : "false";
  } else {
    static_assert(std::is_arithmetic_v<V>, "ktnn counters are numbers or booleans");
    char buffer[64];
    auto const [end, error] = std::to_chars(buffer, buffer + sizeof buffer, value);
    if (error != std::errc{}) fail("ktnn::counter_text", "cannot format a value");
    return std::string(buffer, end);
  }
}

/// Reads the counters of one object: each get() marks its key as read, sub()
/// takes a nested object's keys, and finish() fails on any key left unread
/// (a checkpoint of another configuration).
class CounterReader {
 public:
  CounterReader(Counters const& counters, std::string operation)
      : counters_(counters), operation_(std::move(operation)) {}

  /// The text of `key`, which must be there.
  std::string const& text(std::string const& key) {
    auto const it = counters_.find(key);
    if (it == counters_.end()) fail(operation_, "counter '", key, "' is missing");
    read_.insert(key);
    return it->second;
  }

  /// The text of `key`, which must be `first` (true) or `second` (false).
  bool choice(std::string const& key, std::string_view first, std::string_view second) {
    std::string const& value = text(key);
    if (value != first && value != second)
      fail(operation_, "counter '", key, "' is '", value, "', not ", first, " or ", second);
    return value == first;
  }

  template <class V>
  V get(std::string const& key) {
    std::string const& written = text(key);
    V value{};
    if constexpr (std::is_same_v<V, bool>) {
      if (written == "true" || written == "false") return written == "true";
    } else {
      char const* const begin = written.data();
      char const* const end = begin + written.size();
      // from_chars takes no leading '+' or space, and its "inf"/"nan" are
      // what to_chars writes.
      auto const [stop, error] = std::from_chars(begin, end, value);
      if (!written.empty() && error == std::errc{} && stop == end) return value;
    }
    fail(operation_, "counter '", key, "' is '", written, "', not ", kind<V>());
  }

  /// The keys that start with `prefix`, without it (a nested object's).
  Counters sub(std::string const& prefix) {
    Counters out;
    for (auto const& [key, value] : counters_)
      if (key.size() > prefix.size() && key.compare(0, prefix.size(), prefix) == 0) {
        out[key.substr(prefix.size())] = value;
        read_.insert(key);
      }
    return out;
  }

  void finish() const {
    for (auto const& [key, value] : counters_)
      if (!read_.count(key))
        fail(operation_, "counter '", key, "' (", value,
             ") is not one of this object's (a checkpoint of another configuration?)");
  }

  std::string const& operation() const { return operation_; }

 private:
  template <class V>
  static char const* kind() {
    if constexpr (std::is_same_v<V, bool>)
      return "true or false";
    else if constexpr (std::is_floating_point_v<V>)
      return "a number";
    else if constexpr (std::is_signed_v<V>)
      return "an integer in range";
    else
      return "a non-negative integer in range";
  }

  Counters const& counters_;
  std::string operation_;
  std::set<std::string> read_;
};

/// Throws unless the counters' step count is >= 0.
inline void check_steps(CounterReader const& reader, std::int64_t steps) {
  if (steps < 0) fail(reader.operation(), "counter 'steps' is ", steps, ", must be >= 0");
}

}  // namespace detail
}  // namespace ktnn

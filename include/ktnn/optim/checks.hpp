#pragma once
/// \file What every optimizer checks: its options (finite, in range; at
/// construction and at each step, so a change made through options() is
/// checked too) and its gradients (a device flag raised inside the update
/// kernel itself, which already reads every gradient: no extra pass).

#include <ktnn/core/error.hpp>

#include <Kokkos_Core.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>

namespace ktnn::detail {

/// Throws "<operation>: option <name> is <value>, must be <range>" unless
/// `in_range` holds and the value is finite.
template <class T>
void check_option(char const* operation, char const* name, T value, bool in_range,
                  char const* range) {
  if (!in_range || !std::isfinite(double(value)))
    fail(operation, "option ", name, " is ", value, ", must be ", range);
}

/// Elements the optimizers check and then update at a time (a few cache lines).
inline constexpr std::size_t finite_block = 256;

/// Whether g[begin, end) holds only finite values (x - x is 0 exactly for
/// those, NaN otherwise), as an integer OR so it vectorizes.
template <class T>
KOKKOS_INLINE_FUNCTION bool all_finite(T const* KOKKOS_RESTRICT g, std::size_t begin,
                                       std::size_t end) {
  int bad = 0;
  for (std::size_t i = begin; i < end; ++i) bad |= int(!(g[i] - g[i] == T(0)));
  return bad == 0;
}

/// The range body of every optimizer's step: blocks of finite_block
/// elements, each checked (all_finite) and then updated while still in L1 by
/// `update(b, e)`, the optimizer's restrict-qualified loop, which vectorizes
/// as a functor (a lambda in its place did not; bench/RESULTS.md has the
/// measurements). In a block with a gradient that is not finite only the
/// finite elements are updated, and `step` goes to `flag` (atomic_min).
template <class Update, class T, class MemorySpace>
struct FiniteUpdate {
  Update update;
  T const* g;
  Kokkos::View<std::int64_t, MemorySpace> flag;
  std::int64_t step;
  KOKKOS_FUNCTION void operator()(std::size_t begin, std::size_t end) const {
    bool bad = false;
    for (std::size_t b = begin; b < end; b += finite_block) {
      std::size_t const e = b + finite_block < end ? b + finite_block : end;
      if (all_finite(g, b, e)) {
        update(b, e);
        continue;
      }
      bad = true;
      for (std::size_t i = b; i < e; ++i)
        if (g[i] - g[i] == T(0)) update(i, i + 1);
    }
    if (bad) Kokkos::atomic_min(&flag(), step);
  }
};

/// The first optimizer step whose gradients were not all finite, kept on the
/// device (atomic_min of the step number, so the same whatever the order).
template <class ExecSpace>
struct NonFiniteFlag {
  static constexpr std::int64_t none = std::numeric_limits<std::int64_t>::max();
  Kokkos::View<std::int64_t, typename ExecSpace::memory_space> flag;

  NonFiniteFlag() = default;
  NonFiniteFlag(ExecSpace const& exec, std::string const& owner)
      : flag(Kokkos::view_alloc(exec, Kokkos::WithoutInitializing, owner + "::non_finite")),
        exec_(exec) {
    clear();
  }
  void clear() { Kokkos::deep_copy(exec_, flag, none); }
  /// -1 when every gradient so far was finite. Waits for the device.
  std::int64_t first() const {
    std::int64_t value = none;
    Kokkos::deep_copy(exec_, value, flag);
    exec_.fence("ktnn::optimizer::non_finite_step");
    return value == none ? -1 : value;
  }

 private:
  ExecSpace exec_;
};

}  // namespace ktnn::detail

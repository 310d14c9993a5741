#pragma once
/// \file The loss protocol: what a type needs to be the loss of compute_loss,
/// train_step, fit and evaluate, and the check that tells a loss's author
/// exactly which member is missing.
///
///   static constexpr char const* name    for messages ("MSE")
///   loss(exec, Matrix<T const> prediction, targets, Matrix<T> gradient,
///        Kokkos::View<LossSums, memory space> sums) const
///       the kernel-level call: reduces the batch's LossSums into the device
///       scalar `sums` (a training step never waits for the host) and writes
///       d(mean loss)/d(prediction) unless `gradient` is empty. `targets` is
///       a rank-1 View of class labels or a rank-2 View of values (batch x
///       width); a loss takes one of the two.
///   static constexpr bool reports_accuracy   optional: whether LossSums::correct
///                                            means something (default false)

#include <ktnn/core/matrix.hpp>
#include <ktnn/losses/loss_sums.hpp>

#include <Kokkos_Core.hpp>

#include <concepts>
#include <string_view>
#include <type_traits>

namespace ktnn {

/// One requirement of the loss protocol each, so check_loss can say which is
/// missing. The kernel call is probed with float on the host space.
namespace detail::loss_requirements {
using Exec = Kokkos::DefaultHostExecutionSpace;
using Mem = Exec::memory_space;

template <class L>
concept named = requires {
  { L::name } -> std::convertible_to<std::string_view>;
} && !std::is_member_object_pointer_v<decltype(&L::name)>;

template <class L, class Targets>
concept takes = requires(L const& loss, Matrix<float const> prediction, Targets const& targets,
                         Matrix<float> gradient, Kokkos::View<LossSums, Mem> sums) {
  loss(Exec{}, prediction, targets, gradient, sums);
};
template <class L>
concept kernel_call = takes<L, Kokkos::View<int*, Mem>> || takes<L, Kokkos::View<float**, Mem>>;

template <class L>
concept accuracy_flag = !requires { L::reports_accuracy; } || requires {
  { L::reports_accuracy } -> std::convertible_to<bool>;
};
}  // namespace detail::loss_requirements

/// A type that can be a loss (see the file comment).
template <class L>
concept Loss = detail::loss_requirements::named<L> && detail::loss_requirements::kernel_call<L> &&
               detail::loss_requirements::accuracy_flag<L>;

/// Checks the protocol one requirement at a time, so the compiler's first
/// error says which member is missing (and names L in its instantiation).
template <class L>
constexpr bool check_loss() {
  namespace r = detail::loss_requirements;
  static_assert(r::named<L>, "ktnn::Loss: missing `static constexpr char const* name`");
  static_assert(r::kernel_call<L>,
                "ktnn::Loss: missing the kernel call `template <class ExecSpace, class T, class "
                "Targets> void operator()(ExecSpace const&, Matrix<T const> prediction, Targets "
                "const& targets, Matrix<T> gradient, Kokkos::View<LossSums, typename "
                "ExecSpace::memory_space> sums) const` (targets: a rank-1 View of class labels "
                "or a rank-2 View of values)");
  static_assert(r::accuracy_flag<L>,
                "ktnn::Loss: `reports_accuracy` must be a `static constexpr bool`");
  return Loss<L>;
}

}  // namespace ktnn

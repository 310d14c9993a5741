#pragma once
/// \file compute_loss, the public call of a loss (losses/loss_concept.hpp)
/// on Views or Tensors, and what the class-label loss kernels share.

#include <ktnn/core/error.hpp>
#include <ktnn/core/matrix.hpp>
#include <ktnn/losses/loss_concept.hpp>
#include <ktnn/losses/loss_sums.hpp>

#include <Kokkos_Core.hpp>

#include <cstddef>
#include <string>
#include <type_traits>

namespace ktnn {

namespace detail {
/// Sample i's class label, checked in a loss kernel: a label outside
/// [0, classes) is never used as an index; the sample is counted in
/// LossSums::invalid_labels, and its gradient row (unless `grad` is empty)
/// is zero. Returns whether the label is valid.
template <class T, class Label>
KOKKOS_INLINE_FUNCTION bool accept_label(Label label, int classes, int i, LossSums& sums,
                                         Matrix<T> const& grad) {
  if (label >= 0 && label < classes) return true;
  sums.invalid_labels += 1.0;
  sums.bad_label = double(label);
  if (!grad.empty())
    for (int j = 0; j < classes; ++j) grad(i, j) = T(0);
  return false;
}

/// The largest entry of row i of x (classes columns) and its column, the
/// first one on ties: a class-label loss's prediction.
template <class T>
KOKKOS_INLINE_FUNCTION void row_arg_max(Matrix<T const> const& x, int i, int classes, T& top,
                                        int& arg) {
  top = x(i, 0);
  arg = 0;
  for (int j = 1; j < classes; ++j)
    if (x(i, j) > top) {
      top = x(i, j);
      arg = j;
    }
}
}  // namespace detail

/// Marks "no gradient wanted" in compute_loss.
struct NoGradient {};

/// `loss` of `prediction` (a rank-2 View or Tensor: batch x outputs) against
/// `targets` (class labels, batch, or values, batch x outputs), reduced into
/// the device scalar `sums` without waiting for it; with `gradient` (a rank-2
/// View of the prediction's shape) also d(mean loss)/d(prediction).
/// Throws ktnn::Error when the sizes disagree.
template <class ExecSpace, class Loss, class Prediction, class Targets, class Gradient = NoGradient>
void compute_loss(ExecSpace const& exec, Loss const& loss, Prediction const& prediction,
                  Targets const& targets,
                  Kokkos::View<LossSums, typename ExecSpace::memory_space> const& sums,
                  Gradient const& gradient = {}) {
  static_assert(check_loss<Loss>(),
                "ktnn::compute_loss: the loss does not meet the ktnn::Loss protocol (see above)");
  if constexpr (requires { prediction.view(); }) {
    compute_loss(exec, loss, prediction.view(), targets, sums, gradient);
  } else {
    static_assert(Kokkos::is_view_v<Prediction> && Prediction::rank() == 2,
                  "ktnn::compute_loss: the prediction is a rank-2 View or a ktnn::Tensor");
    static_assert(Kokkos::is_view_v<Targets> && (Targets::rank() == 1 || Targets::rank() == 2),
                  "ktnn::compute_loss: targets are a rank-1 View of labels or a rank-2 View");
    static_assert(
        Kokkos::SpaceAccessibility<ExecSpace, typename Targets::memory_space>::accessible &&
            Kokkos::SpaceAccessibility<ExecSpace, typename Prediction::memory_space>::accessible,
        "ktnn::compute_loss: the prediction and the targets must be in memory the execution "
        "space can reach");
    using T = typename Prediction::non_const_value_type;
    if (prediction.extent(1) == 0)
      detail::fail("ktnn::compute_loss", Loss::name, ": the prediction has no columns");
    if (targets.extent(0) != prediction.extent(0))
      detail::fail("ktnn::compute_loss", Loss::name, ": ", prediction.extent(0),
                   " predictions but ", targets.extent(0), " targets");
    Matrix<T> grad;
    if constexpr (!std::is_same_v<Gradient, NoGradient>) {
      static_assert(Kokkos::is_view_v<Gradient> && Gradient::rank() == 2,
                    "ktnn::compute_loss: the gradient is a rank-2 View");
      static_assert(std::is_same_v<typename Gradient::value_type, T>,
                    "ktnn::compute_loss: the gradient's scalar type is not the prediction's");
      if (gradient.extent(0) != prediction.extent(0) || gradient.extent(1) != prediction.extent(1))
        detail::fail("ktnn::compute_loss", Loss::name, ": the gradient is ", gradient.extent(0),
                     "x", gradient.extent(1), ", the prediction ", prediction.extent(0), "x",
                     prediction.extent(1));
      grad = as_matrix(gradient);
    }
    Matrix<T const> const p = as_matrix(prediction);
    loss(exec, p, targets, grad, sums);
  }
}

/// The sums of `loss` over a prediction, waited for and copied to the host.
template <class ExecSpace, class Loss, class Prediction, class Targets>
LossSums loss_sums(ExecSpace const& exec, Loss const& loss, Prediction const& prediction,
                   Targets const& targets) {
  Kokkos::View<LossSums, typename ExecSpace::memory_space> sums(
      Kokkos::view_alloc(exec, "ktnn::loss_sums"));
  compute_loss(exec, loss, prediction, targets, sums);
  LossSums host;
  Kokkos::deep_copy(exec, host, sums);
  exec.fence("ktnn::loss_sums");
  return host;
}

namespace detail {
/// Throws when a loss kernel met labels outside [0, classes).
/// \param where e.g. "epoch 2, batch 17"
inline void check_labels_seen(char const* operation, LossSums const& sums, std::string const& where,
                              int classes) {
  if (sums.invalid_labels > 0)
    fail(operation, where, ": ", sums.invalid_labels, " class label(s) outside [0, ", classes,
         "), e.g. ", static_cast<long long>(sums.bad_label),
         " (those samples were not trained on)");
}
}  // namespace detail

}  // namespace ktnn

#pragma once
/// \file Binary cross-entropy on logits (torch.nn.BCEWithLogitsLoss, reduction
/// 'mean'): every output is its own yes/no question (multi-label
/// classification, or one output for a binary one). With x the logit, t the
/// target probability in [0, 1] and p the output's pos_weight (1 without):
///
///   l = -(p t log sigmoid(x) + (1 - t) log(1 - sigmoid(x)))
///     = (1 - t) x + (p t + 1 - t) softplus(-x),
///   softplus(-x) = log1p(exp(-|x|)) + max(-x, 0),
///
/// the second form being the one that never overflows (exp of a non-positive
/// number only) nor takes the log of 0, whatever the logit; its slope is
/// dl/dx = (1 - t) - (p t + 1 - t) sigmoid(-x), sigmoid(-x) again from
/// exp(-|x|). The sigmoid is fused in, so the model's last layer stays linear
/// (a Sigmoid layer followed by a log would lose precision where it saturates).
///
/// pos_weight > 1 weighs the positives of an output up (recall), < 1 down
/// (precision); PyTorch's usual choice is negatives / positives of that output.

#include <ktnn/core/error.hpp>
#include <ktnn/core/matrix.hpp>
#include <ktnn/losses/elementwise.hpp>
#include <ktnn/losses/loss.hpp>
#include <ktnn/losses/weights.hpp>

#include <Kokkos_Core.hpp>

#include <type_traits>

namespace ktnn {

namespace detail {
template <class T, class PosWeight>
struct BinaryCrossEntropyElement {
  PosWeight pos_weight;  ///< empty: 1 for every output
  bool weighted;
  KOKKOS_INLINE_FUNCTION void operator()(T x, T t, int j, T& value, T& slope) const {
    T const e = Kokkos::exp(-Kokkos::fabs(x));  // in (0, 1]
    T const softplus_neg = Kokkos::log1p(e) + (x < T(0) ? -x : T(0));
    T const sigmoid_neg = x >= T(0) ? e / (T(1) + e) : T(1) / (T(1) + e);
    T const p = weighted ? T(pos_weight(j)) : T(1);
    T const log_weight = p * t + (T(1) - t);
    value = (T(1) - t) * x + log_weight * softplus_neg;
    slope = (T(1) - t) - log_weight * sigmoid_neg;
  }
};
}  // namespace detail

class BinaryCrossEntropyWithLogits {
 public:
  static constexpr char const* name = "BinaryCrossEntropyWithLogits";
  static constexpr bool reports_accuracy = false;

  BinaryCrossEntropyWithLogits() = default;
  /// With pos_weight: a rank-1 View with a weight per output, finite and >=
  /// 0 (checked now, and copied: a later change to the View is not seen), in
  /// the memory of the execution space the loss will run on.
  template <class PosWeight>
    requires Kokkos::is_view_v<PosWeight>
  explicit BinaryCrossEntropyWithLogits(PosWeight const& pos_weight)
      : pos_weight_("ktnn::BinaryCrossEntropyWithLogits", "pos_weight", pos_weight) {}

  bool has_pos_weight() const { return !pos_weight_.empty(); }

  /// `targets`: a rank-2 View (batch x width) like the logits, probabilities
  /// in [0, 1] (hard 0/1 labels or soft ones). The loss reported per sample
  /// is its sum over outputs / width, so LossSums::mean_loss() is PyTorch's
  /// value.
  template <class ExecSpace, class T, class Targets>
  void operator()(ExecSpace const& exec, Matrix<T const> logits, Targets const& targets,
                  Matrix<T> grad,
                  Kokkos::View<LossSums, typename ExecSpace::memory_space> result) const {
    using Weights = Kokkos::View<double const*, typename ExecSpace::memory_space>;
    Weights weights;
    if (has_pos_weight()) {
      if (pos_weight_.size() != std::size_t(logits.cols))
        detail::fail("ktnn::BinaryCrossEntropyWithLogits", pos_weight_.size(),
                     " pos_weight values for ", logits.cols, " outputs");
      weights = pos_weight_.values<ExecSpace>("ktnn::BinaryCrossEntropyWithLogits", "pos_weight");
    }
    detail::elementwise_loss(
        name, exec, logits, targets, grad, result,
        detail::BinaryCrossEntropyElement<T, Weights>{weights, has_pos_weight()});
  }

 private:
  detail::LossWeights pos_weight_;
};

}  // namespace ktnn

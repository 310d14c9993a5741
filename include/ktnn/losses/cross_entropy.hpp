#pragma once
/// \file Softmax cross-entropy over logits and integer class labels, fused:
/// one pass per sample computes the log-sum-exp (shifted by the maximum, so it
/// never overflows), the loss, the arg-max and the gradient (softmax - onehot)
/// / batch of the mean loss.
///
/// Label smoothing and class weights are torch.nn.CrossEntropyLoss(weight=w,
/// label_smoothing=e)'s, reduction 'mean'. With C classes, log-probabilities
/// q = log_softmax(x) and W the sum of w over the batch's labels:
///
///   L = [ sum_i (1 - e) w_{y_i} (-q_{i,y_i}) + (e / C) sum_i sum_c w_c (-q_{i,c}) ] / W
///
/// Note the smoothing term weighs class c by w_c, not by the sample's w_{y_i}
/// (PyTorch's definition). Without weights, w = 1 and W is the batch size.
/// The gradient of a sample is
///
///   [ softmax_c ((1 - e) w_y + (e / C) sum_k w_k) - (1 - e) w_y [c == y] - (e / C) w_c ] / W.
///
/// W is a sum over the batch, needed before any gradient is written: the
/// weighted form takes a first pass that reduces it into a device scalar
/// (no host round trip). Neither option set: the plain single pass, unchanged.

#include <ktnn/core/error.hpp>
#include <ktnn/core/matrix.hpp>
#include <ktnn/losses/loss.hpp>
#include <ktnn/losses/weights.hpp>
#include <ktnn/optim/checks.hpp>

#include <Kokkos_Core.hpp>

#include <cstddef>
#include <type_traits>

namespace ktnn {

/// CrossEntropy's options beside the class weights.
struct CrossEntropyOptions {
  /// e in [0, 1]: the target is (1 - e) on the label plus e / C on every
  /// class (PyTorch's label_smoothing).
  double label_smoothing = 0;
};

namespace detail {
/// sum over j of exp(x(i, j) - top), top the row's largest entry (so no term
/// overflows).
template <class T>
KOKKOS_INLINE_FUNCTION T exp_sum(Matrix<T const> const& x, int i, int classes, T top) {
  using Kokkos::exp;
  T sum = 0;
  for (int j = 0; j < classes; ++j) sum += exp(x(i, j) - top);
  return sum;
}

/// Plain CrossEntropy's kernel: a thread per sample, one pass.
template <class T, class Labels>
struct CrossEntropyRows {
  Matrix<T const> logits;
  Labels labels;
  Matrix<T> grad;
  int classes;
  bool want_grad;
  T scale;
  KOKKOS_FUNCTION void operator()(int i, LossSums& sums) const {
    using Kokkos::exp;
    using Kokkos::log;
    auto const label = labels(i);
    sums.count += 1.0;
    // Never index with an invalid label: count it, train nothing on it.
    if (!detail::accept_label(label, classes, i, sums, grad)) return;
    T top;
    int arg;
    row_arg_max(logits, i, classes, top, arg);
    T const sum = exp_sum(logits, i, classes, top);
    T const log_sum = log(sum);
    sums.loss += double(log_sum + top - logits(i, int(label)));
    sums.correct += arg == label ? 1.0 : 0.0;
    if (want_grad) {
      T const inv = T(1) / sum;
      for (int j = 0; j < classes; ++j)
        grad(i, j) = scale * (exp(logits(i, j) - top) * inv - (j == label ? T(1) : T(0)));
    }
  }
};

/// The kernels of CrossEntropy with label smoothing (`keep` = 1 - e on the
/// label, `spread` = e / C on every class) and, when `weighted`, class
/// weights `weights` (`total` their sum, C without them): the first pass
/// (WeightSum) reduces W into the device scalar `weight_sum`, the second
/// (Rows) is a thread per sample.
template <class T, class Labels, class MemorySpace>
struct CrossEntropyWithOptions {
  struct WeightSum {};
  struct Rows {};
  Matrix<T const> logits;
  Labels labels;
  Matrix<T> grad;
  int batch, classes;
  bool want_grad, weighted;
  Kokkos::View<double const*, MemorySpace> weights;
  Kokkos::View<double, MemorySpace> weight_sum;
  T keep, spread, total, unweighted_scale;

  KOKKOS_FUNCTION void operator()(WeightSum, int i, double& sum) const {
    auto const label = labels(i);
    if (label >= 0 && label < classes) sum += weights(int(label));
  }
  KOKKOS_FUNCTION void operator()(Rows, int i, LossSums& sums) const {
    using Kokkos::exp;
    using Kokkos::log;
    auto const label = labels(i);
    sums.count += 1.0;
    if (!detail::accept_label(label, classes, i, sums, grad)) return;
    // The gradient's scale 1 / W, and the factor that makes this sample's
    // reported loss sum to the batch's weighted mean (LossSums::mean_loss()
    // divides by the batch size). A batch whose labels all weigh 0 (W = 0)
    // trains nothing and reports 0.
    T scale = unweighted_scale;
    double report = 1.0;
    if (weighted) {
      double const w_sum = weight_sum();
      scale = w_sum > 0 ? T(1.0 / w_sum) : T(0);
      report = w_sum > 0 ? double(batch) / w_sum : 0.0;
    }
    T top;
    int arg;
    row_arg_max(logits, i, classes, top, arg);
    T const sum = exp_sum(logits, i, classes, top);
    // -q_c = log(sum) + (top - x_c): the difference of logits first (exact
    // for nearby ones), then the small log(sum).
    T const log_sum = log(sum);
    T const w_label = weighted ? T(weights(int(label))) : T(1);
    T smooth = 0;
    if (spread != T(0))
      for (int j = 0; j < classes; ++j)
        smooth += (weighted ? T(weights(j)) : T(1)) * (log_sum + (top - logits(i, j)));
    T const loss = keep * w_label * (log_sum + (top - logits(i, int(label)))) + spread * smooth;
    sums.loss += double(loss) * report;
    sums.correct += arg == label ? 1.0 : 0.0;
    if (want_grad) {
      T const inv = T(1) / sum;
      T const mass = keep * w_label + spread * total;
      for (int j = 0; j < classes; ++j)
        grad(i, j) =
            scale * (mass * exp(logits(i, j) - top) * inv - (j == label ? keep * w_label : T(0)) -
                     spread * (weighted ? T(weights(j)) : T(1)));
    }
  }
};

/// CrossEntropy with label smoothing and class weights: the kernels above.
template <class ExecSpace, class T, class Labels>
void cross_entropy_with_options(
    ExecSpace const& exec, Matrix<T const> logits, Labels const& labels, Matrix<T> grad,
    Kokkos::View<LossSums, typename ExecSpace::memory_space> result, T smoothing, bool weighted,
    Kokkos::View<double const*, typename ExecSpace::memory_space> weights,
    Kokkos::View<double, typename ExecSpace::memory_space> weight_sum, T weight_total) {
  int const batch = logits.rows, classes = logits.cols;
  using Mem = typename ExecSpace::memory_space;
  using Kernel = CrossEntropyWithOptions<T, Labels, Mem>;
  Kernel const kernel{.logits = logits,
                      .labels = labels,
                      .grad = grad,
                      .batch = batch,
                      .classes = classes,
                      .want_grad = !grad.empty(),
                      .weighted = weighted,
                      .weights = weights,
                      .weight_sum = weight_sum,
                      .keep = T(1) - smoothing,
                      .spread = smoothing / T(classes),
                      .total = weighted ? weight_total : T(classes),
                      .unweighted_scale = batch > 0 ? T(1) / T(batch) : T(0)};
  if (weighted)
    Kokkos::parallel_reduce(
        "ktnn::CrossEntropy::weight_sum",
        Kokkos::RangePolicy<ExecSpace, typename Kernel::WeightSum>(exec, 0, batch), kernel,
        Kokkos::Sum<double, Mem>(weight_sum));
  Kokkos::parallel_reduce("ktnn::CrossEntropy::options",
                          Kokkos::RangePolicy<ExecSpace, typename Kernel::Rows>(exec, 0, batch),
                          kernel, Kokkos::Sum<LossSums, Mem>(result));
}
}  // namespace detail

struct CrossEntropy {
  using target_type = int;  ///< a class index per sample
  static constexpr int target_width = 1;
  static constexpr char const* name = "CrossEntropy";
  static constexpr bool reports_accuracy = true;  ///< LossSums::correct means something

  /// Plain softmax cross-entropy (the fused single pass).
  CrossEntropy() = default;
  /// With label smoothing; throws ktnn::Error unless it is in [0, 1].
  explicit CrossEntropy(CrossEntropyOptions const& options) : smoothing_(options.label_smoothing) {
    check_options();
  }
  /// With class weights: a rank-1 View of a weight per class, finite and >=
  /// 0 (checked now, and copied: a later change to the View is not seen), in
  /// the memory of the execution space the loss will run on. The loss of a
  /// batch is then the weighted mean; a batch whose labels all weigh 0 gives
  /// loss and gradient 0 (PyTorch's 0 / 0 would be NaN). Over several
  /// batches (fit's epoch loss, evaluate) LossSums averages the batches'
  /// weighted means by their sizes, as a loop over PyTorch's batch losses
  /// would. Calls with one
  /// weighted loss object, or its copies, share a device scalar: run them on
  /// one execution space instance (in order), not on two at once.
  template <class Weights>
    requires Kokkos::is_view_v<Weights>
  explicit CrossEntropy(Weights const& weight, CrossEntropyOptions const& options = {})
      : smoothing_(options.label_smoothing) {
    check_options();
    weights_ = detail::LossWeights("ktnn::CrossEntropy", "class weight", weight);
  }

  double label_smoothing() const { return smoothing_; }
  bool has_weights() const { return !weights_.empty(); }

  /// Writes this batch's sums to `result` and, unless `grad` is empty,
  /// d(mean loss)/d(logits) into `grad`. A label outside [0, classes) is
  /// never used as an index: the sample is counted in
  /// LossSums::invalid_labels and gets zero loss and gradient.
  template <class ExecSpace, class T, class Labels>
  void operator()(ExecSpace const& exec, Matrix<T const> logits, Labels const& labels,
                  Matrix<T> grad,
                  Kokkos::View<LossSums, typename ExecSpace::memory_space> result) const {
    int const batch = logits.rows, classes = logits.cols;
    static_assert(std::is_integral_v<typename Labels::value_type>,
                  "ktnn::CrossEntropy: targets are integer class labels");
    if (classes <= 0) detail::fail("ktnn::CrossEntropy", "logits with no classes");
    if (labels.extent(0) != std::size_t(batch))
      detail::fail("ktnn::CrossEntropy", batch, " predictions but ", labels.extent(0), " labels");
    if (smoothing_ != 0 || has_weights()) {
      using Mem = typename ExecSpace::memory_space;
      Kokkos::View<double const*, Mem> weights;
      Kokkos::View<double, Mem> weight_sum;
      if (has_weights()) {
        if (weights_.size() != std::size_t(classes))
          detail::fail("ktnn::CrossEntropy", weights_.size(), " class weights for logits of ",
                       classes, " classes");
        weights = weights_.values<ExecSpace>("ktnn::CrossEntropy", "class weight");
        weight_sum = weights_.scratch<ExecSpace>("ktnn::CrossEntropy", "class weight");
      }
      detail::cross_entropy_with_options(exec, logits, labels, grad, result, T(smoothing_),
                                         has_weights(), weights, weight_sum, T(weights_.total()));
      return;
    }
    Kokkos::parallel_reduce(
        "ktnn::CrossEntropy", Kokkos::RangePolicy<ExecSpace>(exec, 0, batch),
        detail::CrossEntropyRows<T, Labels>{.logits = logits,
                                            .labels = labels,
                                            .grad = grad,
                                            .classes = classes,
                                            .want_grad = !grad.empty(),
                                            .scale = batch > 0 ? T(1) / T(batch) : T(0)},
        Kokkos::Sum<LossSums, typename ExecSpace::memory_space>(result));
  }

 private:
  void check_options() const {
    detail::check_option("ktnn::CrossEntropy", "label_smoothing", smoothing_,
                         smoothing_ >= 0 && smoothing_ <= 1, "in [0, 1]");
  }

  double smoothing_ = 0;
  detail::LossWeights weights_;
};

}  // namespace ktnn

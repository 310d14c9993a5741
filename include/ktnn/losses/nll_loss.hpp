#pragma once
/// \file Negative log-likelihood (torch.nn.NLLLoss, reduction 'mean'): the
/// prediction holds log-probabilities (a LogSoftmax output, say) and the loss
/// of a sample is minus its label's entry, L = -sum_i x(i, label_i) / batch.
/// CrossEntropy is this after a log-softmax, fused; NLLLoss is for models
/// that produce log-probabilities themselves.

#include <ktnn/core/error.hpp>
#include <ktnn/core/matrix.hpp>
#include <ktnn/losses/loss.hpp>

#include <Kokkos_Core.hpp>

#include <cstddef>
#include <type_traits>

namespace ktnn {

namespace detail {
/// NLLLoss's kernel: a thread per sample.
template <class T, class Labels>
struct NegativeLogLikelihood {
  Matrix<T const> input;
  Labels labels;
  Matrix<T> grad;
  int classes;
  bool want_grad;
  T scale;
  KOKKOS_FUNCTION void operator()(int i, LossSums& sums) const {
    auto const label = labels(i);
    sums.count += 1.0;
    if (!detail::accept_label(label, classes, i, sums, grad)) return;
    if (want_grad)
      for (int j = 0; j < classes; ++j) grad(i, j) = j == label ? -scale : T(0);
    T top;
    int arg;
    row_arg_max(input, i, classes, top, arg);
    sums.loss -= double(input(i, int(label)));
    sums.correct += arg == label ? 1.0 : 0.0;
  }
};
}  // namespace detail

struct NLLLoss {
  using target_type = int;  ///< a class index per sample
  static constexpr int target_width = 1;
  static constexpr char const* name = "NLLLoss";
  static constexpr bool reports_accuracy = true;  ///< arg-max of the input against the label

  /// Writes this batch's sums to `result` and, unless `grad` is empty,
  /// d(mean loss)/d(input) into `grad` (-1 / batch at the label, 0
  /// elsewhere). A label outside [0, classes) is never used as an index, as
  /// in CrossEntropy: the sample is counted in LossSums::invalid_labels and
  /// gets zero loss and gradient.
  template <class ExecSpace, class T, class Labels>
  void operator()(ExecSpace const& exec, Matrix<T const> input, Labels const& labels,
                  Matrix<T> grad,
                  Kokkos::View<LossSums, typename ExecSpace::memory_space> result) const {
    int const batch = input.rows, classes = input.cols;
    static_assert(std::is_integral_v<typename Labels::value_type>,
                  "ktnn::NLLLoss: targets are integer class labels");
    if (classes <= 0) detail::fail("ktnn::NLLLoss", "an input with no classes");
    if (labels.extent(0) != std::size_t(batch))
      detail::fail("ktnn::NLLLoss", batch, " predictions but ", labels.extent(0), " labels");
    Kokkos::parallel_reduce(
        "ktnn::NLLLoss", Kokkos::RangePolicy<ExecSpace>(exec, 0, batch),
        detail::NegativeLogLikelihood<T, Labels>{.input = input,
                                                 .labels = labels,
                                                 .grad = grad,
                                                 .classes = classes,
                                                 .want_grad = !grad.empty(),
                                                 .scale = batch > 0 ? T(1) / T(batch) : T(0)},
        Kokkos::Sum<LossSums, typename ExecSpace::memory_space>(result));
  }
};

}  // namespace ktnn

#pragma once
/// \file Softmax cross-entropy over logits and integer class labels, fused:
/// one pass per sample computes the log-sum-exp (shifted by the maximum, so it
/// never overflows), the loss, the arg-max and the gradient (softmax - onehot)
/// / batch of the mean loss.

#include <ktnn/core/error.hpp>
#include <ktnn/core/matrix.hpp>
#include <ktnn/losses/loss.hpp>

#include <Kokkos_Core.hpp>

namespace ktnn {

struct CrossEntropy {
  using target_type = int;  ///< a class index per sample
  static constexpr int target_width = 1;
  static constexpr char const* name = "CrossEntropy";
  static constexpr bool reports_accuracy = true;  ///< LossSums::correct means something

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
    bool const want_grad = !grad.empty();
    T const scale = batch > 0 ? T(1) / T(batch) : T(0);
    Kokkos::parallel_reduce(
        "ktnn::CrossEntropy", Kokkos::RangePolicy<ExecSpace>(exec, 0, batch),
        KOKKOS_LAMBDA(int i, LossSums& sums) {
          using Kokkos::exp;
          using Kokkos::log;
          auto const label = labels(i);
          sums.count += 1.0;
          if (!(label >= 0 && label < classes)) {
            // Never index with it: count it, train nothing on this sample.
            sums.invalid_labels += 1.0;
            sums.bad_label = double(label);
            if (want_grad)
              for (int j = 0; j < classes; ++j) grad(i, j) = T(0);
            return;
          }
          T top = logits(i, 0);
          int arg = 0;
          for (int j = 1; j < classes; ++j)
            if (logits(i, j) > top) {
              top = logits(i, j);
              arg = j;
            }
          T sum = 0;
          for (int j = 0; j < classes; ++j) sum += exp(logits(i, j) - top);
          T const log_sum = log(sum);
          sums.loss += double(log_sum + top - logits(i, int(label)));
          sums.correct += arg == label ? 1.0 : 0.0;
          if (want_grad) {
            T const inv = T(1) / sum;
            for (int j = 0; j < classes; ++j)
              grad(i, j) = scale * (exp(logits(i, j) - top) * inv - (j == label ? T(1) : T(0)));
          }
        },
        Kokkos::Sum<LossSums, typename ExecSpace::memory_space>(result));
  }
};

}  // namespace ktnn

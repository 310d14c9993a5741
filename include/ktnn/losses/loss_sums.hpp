#pragma once
/// \file What a loss kernel reduces into a device scalar: the summed loss,
/// the number of correct predictions and of samples, and the class labels it
/// refused.

#include <Kokkos_Core.hpp>

namespace ktnn {

struct LossSums {
  double loss = 0;     ///< sum over samples of the per-sample loss
  double correct = 0;  ///< samples whose arg-max matched the label
  double count = 0;    ///< samples
  /// Samples whose class label was outside [0, classes): the kernel neither
  /// read with it nor trained on them (zero loss and gradient); fit and
  /// evaluate turn this into a ktnn::Error.
  double invalid_labels = 0;
  /// One of those labels (of largest magnitude, so the same whatever the
  /// order of the reduction).
  double bad_label = 0;
  KOKKOS_INLINE_FUNCTION LossSums& operator+=(LossSums const& other) {
    loss += other.loss;
    correct += other.correct;
    count += other.count;
    if (other.invalid_labels > 0) {
      double const a = bad_label < 0 ? -bad_label : bad_label;
      double const b = other.bad_label < 0 ? -other.bad_label : other.bad_label;
      if (invalid_labels == 0 || b > a || (b == a && other.bad_label > bad_label))
        bad_label = other.bad_label;
      invalid_labels += other.invalid_labels;
    }
    return *this;
  }
  double mean_loss() const { return count > 0 ? loss / count : 0.0; }
  double accuracy() const { return count > 0 ? correct / count : 0.0; }
};

}  // namespace ktnn

template <>
struct Kokkos::reduction_identity<ktnn::LossSums> {
  KOKKOS_FORCEINLINE_FUNCTION static ktnn::LossSums sum() { return {}; }
};

#pragma once
/// \file What a loss kernel reduces: the summed loss, the number of correct
/// predictions (classification) and the number of samples. Losses reduce into
/// a device scalar of this type, so a training step never waits for the host.

#include <Kokkos_Core.hpp>

namespace ktnn {

struct LossSums {
  double loss = 0;     ///< sum over samples of the per-sample loss
  double correct = 0;  ///< samples whose arg-max matched the label
  double count = 0;    ///< samples
  KOKKOS_INLINE_FUNCTION LossSums& operator+=(LossSums const& other) {
    loss += other.loss;
    correct += other.correct;
    count += other.count;
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

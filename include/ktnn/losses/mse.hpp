#pragma once
/// \file Mean squared error over every element, as PyTorch's MSELoss with mean
/// reduction: L = sum (y - t)^2 / (batch * width).

#include <ktnn/core/error.hpp>
#include <ktnn/core/matrix.hpp>
#include <ktnn/losses/elementwise.hpp>
#include <ktnn/losses/loss.hpp>
#include <ktnn/ops/space.hpp>

#include <Kokkos_Core.hpp>

#include <cstddef>

namespace ktnn {

namespace detail {
/// MSE's kernel: a thread per element (devices; a sample is counted by its
/// first element) or per sample (host spaces).
template <class T, class Targets>
struct MeanSquaredError {
  struct PerElement {};
  struct PerSample {};
  Matrix<T const> prediction;
  Targets targets;
  Matrix<T> grad;
  int width;
  bool want_grad;
  T scale;
  KOKKOS_FUNCTION void operator()(PerElement, std::size_t e, LossSums& sums) const {
    int const i = int(e / width), j = int(e - std::size_t(i) * width);
    T const diff = prediction(i, j) - T(targets(i, j));
    if (want_grad) grad(i, j) = scale * diff;
    sums.loss += double(diff * diff) / width;
    sums.count += j == 0 ? 1.0 : 0.0;
  }
  KOKKOS_FUNCTION void operator()(PerSample, int i, LossSums& sums) const {
    T sum = 0;
    for (int j = 0; j < width; ++j) {
      T const diff = prediction(i, j) - T(targets(i, j));
      sum += diff * diff;
      if (want_grad) grad(i, j) = scale * diff;
    }
    sums.loss += double(sum) / width;
    sums.count += 1.0;
  }
};
}  // namespace detail

struct MSE {
  static constexpr char const* name = "MSE";
  static constexpr bool reports_accuracy = false;

  /// `targets` is a rank-2 View (batch x width) like the prediction. The loss
  /// sum reported per sample is that sample's sum of squares / width, so
  /// LossSums::mean_loss() is the MSE.
  template <class ExecSpace, class T, class Targets>
  void operator()(ExecSpace const& exec, Matrix<T const> prediction, Targets const& targets,
                  Matrix<T> grad,
                  Kokkos::View<LossSums, typename ExecSpace::memory_space> result) const {
    int const batch = prediction.rows, width = prediction.cols;
    static_assert(Targets::rank() == 2, "ktnn::MSE: targets are a rank-2 View (batch x width)");
    if (targets.extent(0) != std::size_t(batch) || targets.extent(1) != std::size_t(width))
      detail::fail("ktnn::MSE", "prediction is ", batch, "x", width, " but targets are ",
                   targets.extent(0), "x", targets.extent(1));
    using Kernel = detail::MeanSquaredError<T, Targets>;
    Kernel const kernel{.prediction = prediction,
                        .targets = targets,
                        .grad = grad,
                        .width = width,
                        .want_grad = !grad.empty(),
                        .scale = batch > 0 ? T(2) / (T(batch) * T(width)) : T(0)};
    detail::reduce_per_sample(exec, "ktnn::MSE", kernel, batch, width, result);
  }
};

}  // namespace ktnn

#pragma once
/// \file The kernel shared by the losses that are a mean over every element
/// of (prediction, target) pairs (L1, Huber, BinaryCrossEntropyWithLogits),
/// as PyTorch's reduction 'mean': L = sum over elements of l(y, t) / (batch *
/// width). Each loss gives only its element: the value and the slope dl/dy.
/// The kernel shapes are MSE's (reduce_per_sample): a thread per sample on
/// host spaces, a thread per element on devices.

#include <ktnn/core/error.hpp>
#include <ktnn/core/matrix.hpp>
#include <ktnn/losses/loss.hpp>
#include <ktnn/ops/space.hpp>

#include <Kokkos_Core.hpp>

#include <cstddef>
#include <string>

namespace ktnn::detail {

/// Reduces a loss kernel over a batch x width prediction into `result`: a
/// thread per element on devices (Kernel's PerElement operator), so
/// neighbouring threads read neighbouring elements, a thread per sample on
/// host spaces (PerSample).
template <class ExecSpace, class Kernel>
void reduce_per_sample(ExecSpace const& exec, std::string const& label, Kernel const& kernel,
                       int batch, int width,
                       Kokkos::View<LossSums, typename ExecSpace::memory_space> result) {
  using Sum = Kokkos::Sum<LossSums, typename ExecSpace::memory_space>;
  if constexpr (ops::device_kernels<ExecSpace>) {
    Kokkos::parallel_reduce(label,
                            Kokkos::RangePolicy<ExecSpace, typename Kernel::PerElement>(
                                exec, 0, std::size_t(batch) * width),
                            kernel, Sum(result));
  } else {
    Kokkos::parallel_reduce(
        label, Kokkos::RangePolicy<ExecSpace, typename Kernel::PerSample>(exec, 0, batch), kernel,
        Sum(result));
  }
}

/// The kernel of elementwise_loss: a thread per element (devices; a sample
/// is counted by its first element) or per sample (host spaces).
template <class T, class Targets, class Element>
struct ElementwiseLoss {
  struct PerElement {};
  struct PerSample {};
  Matrix<T const> prediction;
  Targets targets;
  Matrix<T> grad;
  Element element;
  int width;
  bool want_grad;
  T scale;
  KOKKOS_FUNCTION void operator()(PerElement, std::size_t e, LossSums& sums) const {
    int const i = int(e / width), j = int(e - std::size_t(i) * width);
    T value, slope;
    element(prediction(i, j), T(targets(i, j)), j, value, slope);
    if (want_grad) grad(i, j) = scale * slope;
    sums.loss += double(value) / width;
    sums.count += j == 0 ? 1.0 : 0.0;
  }
  KOKKOS_FUNCTION void operator()(PerSample, int i, LossSums& sums) const {
    T sum = 0;
    for (int j = 0; j < width; ++j) {
      T value, slope;
      element(prediction(i, j), T(targets(i, j)), j, value, slope);
      sum += value;
      if (want_grad) grad(i, j) = scale * slope;
    }
    sums.loss += double(sum) / width;
    sums.count += 1.0;
  }
};

/// `element(y, t, j, value, slope)` (a device functor) sets the loss of one
/// element in output column j and its derivative with respect to y. The loss
/// sum reported per sample is that sample's sum / width, so
/// LossSums::mean_loss() is the mean over elements.
template <class ExecSpace, class T, class Targets, class Element>
void elementwise_loss(char const* name, ExecSpace const& exec, Matrix<T const> prediction,
                      Targets const& targets, Matrix<T> grad,
                      Kokkos::View<LossSums, typename ExecSpace::memory_space> result,
                      Element const& element) {
  std::string const operation = std::string("ktnn::") + name;
  static_assert(Kokkos::is_view_v<Targets> && Targets::rank() == 2,
                "ktnn: this loss takes targets as a rank-2 View (batch x width)");
  int const batch = prediction.rows, width = prediction.cols;
  if (width <= 0) fail(operation, "a prediction with no columns");
  if (targets.extent(0) != std::size_t(batch) || targets.extent(1) != std::size_t(width))
    fail(operation, "prediction is ", batch, "x", width, " but targets are ", targets.extent(0),
         "x", targets.extent(1));
  using Kernel = ElementwiseLoss<T, Targets, Element>;
  Kernel const kernel{.prediction = prediction,
                      .targets = targets,
                      .grad = grad,
                      .element = element,
                      .width = width,
                      .want_grad = !grad.empty(),
                      .scale = batch > 0 ? T(1) / (T(batch) * T(width)) : T(0)};
  reduce_per_sample(exec, operation, kernel, batch, width, result);
}

}  // namespace ktnn::detail

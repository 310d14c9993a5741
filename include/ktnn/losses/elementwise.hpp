#pragma once
/// \file The kernel shared by the losses that are a mean over every element
/// of (prediction, target) pairs (L1, Huber, BinaryCrossEntropyWithLogits),
/// as PyTorch's reduction 'mean': L = sum over elements of l(y, t) / (batch *
/// width). Each loss gives only its element: the value and the slope dl/dy.
/// The kernel shapes follow MSE's: a thread per sample on host spaces, a
/// thread per element on devices (neighbouring threads read neighbouring
/// elements).

#include <ktnn/core/error.hpp>
#include <ktnn/core/kernel_linkage.hpp>
#include <ktnn/core/matrix.hpp>
#include <ktnn/losses/loss.hpp>
#include <ktnn/ops/space.hpp>

#include <Kokkos_Core.hpp>

#include <cstddef>
#include <string>

namespace ktnn::detail {

/// `element(y, t, j, value, slope)` (a device functor) sets the loss of one
/// element in output column j and its derivative with respect to y. The loss
/// sum reported per sample is that sample's sum / width, so
/// LossSums::mean_loss() is the mean over elements.
template <class ExecSpace, class T, class Targets, class Element,
          class KtnnTU = ::ktnn::detail::ThisTU>
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
  bool const want_grad = !grad.empty();
  T const scale = batch > 0 ? T(1) / (T(batch) * T(width)) : T(0);
  using Sum = Kokkos::Sum<LossSums, typename ExecSpace::memory_space>;
  if constexpr (ops::device_kernels<ExecSpace>) {
    Kokkos::parallel_reduce(
        operation, Kokkos::RangePolicy<ExecSpace>(exec, 0, std::size_t(batch) * width),
        KOKKOS_LAMBDA(std::size_t e, LossSums& sums) {
          int const i = int(e / width), j = int(e - std::size_t(i) * width);
          T value, slope;
          element(prediction(i, j), T(targets(i, j)), j, value, slope);
          if (want_grad) grad(i, j) = scale * slope;
          sums.loss += double(value) / width;
          sums.count += j == 0 ? 1.0 : 0.0;
        },
        Sum(result));
  } else {
    Kokkos::parallel_reduce(
        operation, Kokkos::RangePolicy<ExecSpace>(exec, 0, batch),
        KOKKOS_LAMBDA(int i, LossSums& sums) {
          T sum = 0;
          for (int j = 0; j < width; ++j) {
            T value, slope;
            element(prediction(i, j), T(targets(i, j)), j, value, slope);
            sum += value;
            if (want_grad) grad(i, j) = scale * slope;
          }
          sums.loss += double(sum) / width;
          sums.count += 1.0;
        },
        Sum(result));
  }
}

}  // namespace ktnn::detail

#pragma once
/// \file Regression losses beside MSE, as PyTorch defines them with reduction
/// 'mean' (a mean over every element, batch x width):
///
///  - L1 (torch.nn.L1Loss): l = |y - t|. Its slope at y == t is 0, as
///    PyTorch's sign(0).
///  - Huber (torch.nn.HuberLoss(delta)): l = (y - t)^2 / 2 where |y - t| <
///    delta, delta (|y - t| - delta / 2) beyond: quadratic near the target,
///    linear (so outliers pull no harder than delta) far from it. Value and
///    slope are continuous at |y - t| = delta.
///
/// torch.nn.SmoothL1Loss(beta) is Huber(beta) / beta for beta > 0: the same
/// curve with slope 1 instead of delta in the linear part. Use Huber(beta) and
/// a learning rate divided by beta, or read its value divided by beta.

#include <ktnn/core/error.hpp>
#include <ktnn/core/matrix.hpp>
#include <ktnn/losses/elementwise.hpp>
#include <ktnn/losses/loss.hpp>
#include <ktnn/optim/checks.hpp>

#include <Kokkos_Core.hpp>

namespace ktnn {

namespace detail {
template <class T>
struct L1Element {
  KOKKOS_INLINE_FUNCTION void operator()(T y, T t, int, T& value, T& slope) const {
    T const d = y - t;
    value = Kokkos::fabs(d);
    slope = d > T(0) ? T(1) : (d < T(0) ? T(-1) : T(0));
  }
};

template <class T>
struct HuberElement {
  T delta;
  KOKKOS_INLINE_FUNCTION void operator()(T y, T t, int, T& value, T& slope) const {
    T const d = y - t;
    T const a = Kokkos::fabs(d);
    if (a < delta) {
      value = T(0.5) * d * d;
      slope = d;
    } else {
      value = delta * (a - T(0.5) * delta);
      slope = d > T(0) ? delta : -delta;
    }
  }
};
}  // namespace detail

/// Mean absolute error over every element (torch.nn.L1Loss).
struct L1 {
  static constexpr char const* name = "L1";
  static constexpr bool reports_accuracy = false;

  /// `targets` is a rank-2 View (batch x width) like the prediction. The loss
  /// reported per sample is its sum over outputs / width, so
  /// LossSums::mean_loss() is PyTorch's value.
  template <class ExecSpace, class T, class Targets>
  void operator()(ExecSpace const& exec, Matrix<T const> prediction, Targets const& targets,
                  Matrix<T> grad,
                  Kokkos::View<LossSums, typename ExecSpace::memory_space> result) const {
    detail::elementwise_loss(name, exec, prediction, targets, grad, result, detail::L1Element<T>{});
  }
};

/// Huber loss over every element (torch.nn.HuberLoss(delta)); see the file
/// comment for its SmoothL1 relation.
class Huber {
 public:
  static constexpr char const* name = "Huber";
  static constexpr bool reports_accuracy = false;

  /// Throws ktnn::Error unless delta is finite and > 0 (as PyTorch asks).
  explicit Huber(double delta = 1.0) : delta_(delta) {
    detail::check_option("ktnn::Huber", "delta", delta, delta > 0, "> 0");
  }
  double delta() const { return delta_; }

  /// `targets` as for L1.
  template <class ExecSpace, class T, class Targets>
  void operator()(ExecSpace const& exec, Matrix<T const> prediction, Targets const& targets,
                  Matrix<T> grad,
                  Kokkos::View<LossSums, typename ExecSpace::memory_space> result) const {
    detail::elementwise_loss(name, exec, prediction, targets, grad, result,
                             detail::HuberElement<T>{T(delta_)});
  }

 private:
  double delta_;
};

}  // namespace ktnn

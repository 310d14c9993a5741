#pragma once
/// \file Softmax and LogSoftmax over the features of each sample (PyTorch's
/// nn.Softmax(dim=1) and nn.LogSoftmax(dim=1) on a batch of vectors).
///
/// Both take their width from the layer before (`Sequential<Dense<64, 10>,
/// Softmax>`); `Softmax::bind<Features<10>>` is the bound layer,
/// `SoftmaxLayer<10>`. Neither keeps anything for backward: the gradient
/// comes from the output alone,
///   Softmax     dx = y * (dy - sum_j dy_j y_j)
///   LogSoftmax  dx = dy - exp(y) * sum_j dy_j.
/// For training a classifier, CrossEntropy on the logits is the cheaper and
/// more accurate form of LogSoftmax followed by a log-likelihood.
///
/// One thread per sample on every space: a sample's features are summed in
/// order, so the result repeats bit for bit, and class counts are small.

#include <ktnn/core/matrix.hpp>
#include <ktnn/core/shape.hpp>
#include <ktnn/layers/layer.hpp>

#include <Kokkos_Core.hpp>

#include <cstddef>
#include <string>
#include <type_traits>

namespace ktnn {

namespace detail {
/// The forward kernel of a softmax layer L (Softmax or LogSoftmax), a
/// thread per sample.
template <class L, class T>
struct SoftmaxForward {
  Matrix<T const> x;
  Matrix<T> y;
  KOKKOS_INLINE_FUNCTION void operator()(int i) const {
    L::template sample<T>([&](int j) { return x(i, j); }, [&](int j) -> T& { return y(i, j); });
  }
};

/// The backward kernel of a softmax layer L, a thread per sample: dx from
/// the output y and dy alone.
template <class L, class T>
struct SoftmaxBackward {
  Matrix<T const> y;
  Matrix<T> dy;
  Matrix<T> dx;
  KOKKOS_INLINE_FUNCTION void operator()(int i) const {
    constexpr int N = L::in_features;
    T sum = 0;
    if constexpr (L::log) {
      for (int j = 0; j < N; ++j) sum += dy(i, j);
      for (int j = 0; j < N; ++j) dx(i, j) = dy(i, j) - Kokkos::exp(y(i, j)) * sum;
    } else {
      for (int j = 0; j < N; ++j) sum += dy(i, j) * y(i, j);
      for (int j = 0; j < N; ++j) dx(i, j) = y(i, j) * (dy(i, j) - sum);
    }
  }
};

}  // namespace detail

/// Softmax (Log false) or LogSoftmax (Log true) over N features: what
/// SoftmaxLayer<N> and LogSoftmaxLayer<N> are, each adding its name().
template <int N, bool Log>
struct SoftmaxBase : LayerDefaults {
  static_assert(N > 0, "ktnn::Softmax: the width must be positive");
  static constexpr int in_features = N;
  static constexpr int out_features = N;
  static constexpr bool log = Log;
  static constexpr char const* forward_label =
      Log ? "ktnn::LogSoftmax::forward" : "ktnn::Softmax::forward";
  static constexpr char const* backward_label =
      Log ? "ktnn::LogSoftmax::backward" : "ktnn::Softmax::backward";

  /// y = softmax(x) or log_softmax(x) of one sample, shifted by its largest
  /// value so no exponential overflows. S may be a Jet (softmax is
  /// shift-invariant, so shifting by a Jet changes no derivative).
  template <class S, class X, class Y>
  KOKKOS_INLINE_FUNCTION static void sample(X const& x, Y const& y) {
    using Kokkos::exp;
    using Kokkos::log;
    S m = x(0);
    for (int j = 1; j < N; ++j) m = x(j) > m ? S(x(j)) : m;
    S sum = S(0);
    for (int j = 0; j < N; ++j) sum += exp(S(x(j)) - m);
    if constexpr (Log) {
      S const shift = m + log(sum);
      for (int j = 0; j < N; ++j) y(j) = S(x(j)) - shift;
    } else {
      S const inv = S(1) / sum;
      for (int j = 0; j < N; ++j) y(j) = exp(S(x(j)) - m) * inv;
    }
  }

  template <class ExecSpace, class T, class Isa>
  static void forward(LayerContext<ExecSpace, T, Isa> const& ctx, Matrix<T const> x, Matrix<T> y) {
    Kokkos::parallel_for(forward_label, Kokkos::RangePolicy<ExecSpace>(ctx.exec, 0, x.rows),
                         detail::SoftmaxForward<SoftmaxBase, T>{.x = x, .y = y});
  }

  template <class ExecSpace, class T, class Isa>
  static void backward(LayerContext<ExecSpace, T, Isa> const& ctx, Matrix<T const> x,
                       Matrix<T const> y, Matrix<T> dy, Matrix<T> dx) {
    if (dx.empty()) return;
    Kokkos::parallel_for(backward_label, Kokkos::RangePolicy<ExecSpace>(ctx.exec, 0, x.rows),
                         detail::SoftmaxBackward<SoftmaxBase, T>{.y = y, .dy = dy, .dx = dx});
  }

  template <class P, class S>
  KOKKOS_INLINE_FUNCTION static void apply(P const*, P const*, S const* x, S* y) {
    sample<S>([&](int j) -> S const& { return x[j]; }, [&](int j) -> S& { return y[j]; });
  }
};

/// Softmax over the N features of a sample (Softmax bound to Features<N>).
template <int N>
struct SoftmaxLayer : SoftmaxBase<N, false> {
  static std::string name() { return "Softmax<" + std::to_string(N) + ">"; }
};

/// LogSoftmax over the N features of a sample (LogSoftmax bound to Features<N>).
template <int N>
struct LogSoftmaxLayer : SoftmaxBase<N, true> {
  static std::string name() { return "LogSoftmax<" + std::to_string(N) + ">"; }
};

/// What Softmax (Log false) and LogSoftmax (Log true) become after a layer
/// whose output has shape In: SoftmaxLayer<N> or LogSoftmaxLayer<N> after
/// Features<N>; an image is refused with a message.
template <class In, bool Log>
struct SoftmaxBinding {
  static_assert(Shape<In>, "ktnn::Softmax: bound to something that is not a ktnn shape");
  static_assert(!In::is_image,
                "ktnn::Softmax and ktnn::LogSoftmax normalize over the features of a vector "
                "(torch dim=1) and were placed after a layer with an image-shaped output: put "
                "ktnn::Flatten before them");
  using type = std::conditional_t<Log, LogSoftmaxLayer<In::size>, SoftmaxLayer<In::size>>;
};

/// Softmax over the features of each sample, its width from the layer
/// before: `Sequential<Dense<64, 10>, Softmax>`.
struct Softmax {
  static constexpr bool binds_shape = true;
  template <class In>
  using bind = typename SoftmaxBinding<In, false>::type;
};

/// LogSoftmax over the features of each sample, its width from the layer
/// before: `Sequential<Dense<64, 10>, LogSoftmax>`.
struct LogSoftmax {
  static constexpr bool binds_shape = true;
  template <class In>
  using bind = typename SoftmaxBinding<In, true>::type;
};

}  // namespace ktnn

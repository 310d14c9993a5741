#pragma once
/// \file Activations on batches: the Activation<Act, N> layer (what a
/// Sequential makes of a bare activation, `Sequential<Dense<In, Out>, ReLU,
/// ...>`) and the Taylor passes of an activation and their adjoints, which
/// Dense's fused activation uses too. The functions themselves are in
/// layers/activation_functions.hpp.

#include <ktnn/core/matrix.hpp>
#include <ktnn/layers/activation_functions.hpp>
#include <ktnn/layers/layer.hpp>
#include <ktnn/ops/elementwise.hpp>
#include <ktnn/ops/space.hpp>

#include <Kokkos_Core.hpp>

#include <cstddef>
#include <string>

namespace ktnn {

namespace detail {
/// Taylor mode of an activation (input derivatives, ktnn/derivatives.hpp):
/// rows i K .. i K + K - 1 of a column hold, for sample i, the input's value
/// z, its derivatives t_r along each input direction and its Laplacian s.
/// The output holds act(z), act'(z) t_r and act'(z) s + act''(z) sum_r t_r^2.
template <class Act, int K, class T>
KOKKOS_INLINE_FUNCTION void taylor_activation_at(int i, int j, Matrix<T const> z, Matrix<T> y) {
  int const r0 = i * K, last = r0 + K - 1;
  T const z0 = z(r0, j);
  T const y0 = Act::value(z0);
  T const d1 = Act::derivative(z0, y0), d2 = Act::second(z0, y0);
  T squares = 0;
  for (int r = r0 + 1; r < last; ++r) {
    T const t = z(r, j);
    squares += t * t;
    y(r, j) = d1 * t;
  }
  y(last, j) = d1 * z(last, j) + d2 * squares;
  y(r0, j) = y0;
}

/// The same for one sample's K contiguous rows (row pitches zs and ys), a
/// loop over columns that vectorizes on host cores.
template <class Act, int K, class T>
KOKKOS_INLINE_FUNCTION void taylor_activation_rows(T const* KOKKOS_RESTRICT z, std::ptrdiff_t zs,
                                                   T* KOKKOS_RESTRICT y, std::ptrdiff_t ys,
                                                   int cols) {
  for (int j = 0; j < cols; ++j) {
    T const z0 = z[j];
    T const y0 = Act::value(z0);
    T const d1 = Act::derivative(z0, y0), d2 = Act::second(z0, y0);
    T squares = 0;
    for (int r = 1; r < K - 1; ++r) {
      T const t = z[r * zs + j];
      squares += t * t;
      y[r * ys + j] = d1 * t;
    }
    y[(K - 1) * ys + j] = d1 * z[(K - 1) * zs + j] + d2 * squares;
    y[j] = y0;
  }
}

/// The Taylor pass of Act over samples of K rows: a sample's K contiguous
/// rows per work item on host cores (Rows), one element per call otherwise.
template <class Act, int K, class T>
struct TaylorActivationForward {
  struct Rows {};
  Matrix<T const> z;
  Matrix<T> y;
  KOKKOS_INLINE_FUNCTION void operator()(Rows, int i) const {
    taylor_activation_rows<Act, K>(z.row(i * K), z.row_stride, y.row(i * K), y.row_stride, z.cols);
  }
  KOKKOS_INLINE_FUNCTION void operator()(std::size_t i, std::size_t j) const {
    taylor_activation_at<Act, K>(int(i), int(j), z, y);
  }
};

template <class Act, int K, class ExecSpace, class T>
void taylor_activation_forward(ExecSpace const& exec, char const* label, Matrix<T const> z,
                               Matrix<T> y) {
  static_assert(SmoothActivation<Act>,
                "ktnn: input derivatives need the activation's second and third derivatives "
                "(static members second(z, y) and third(z, y))");
  using Kernel = TaylorActivationForward<Act, K, T>;
  Kernel const kernel{.z = z, .y = y};
  if constexpr (!ops::device_kernels<ExecSpace>) {
    if (z.col_stride == 1 && y.col_stride == 1) {
      Kokkos::parallel_for(
          label, Kokkos::RangePolicy<ExecSpace, typename Kernel::Rows>(exec, 0, z.rows / K),
          kernel);
      return;
    }
  }
  ops::for_each_element(exec, label, std::size_t(z.rows / K), std::size_t(z.cols), kernel);
}

/// The adjoint of taylor_activation_at for sample i, column j: from the
/// adjoints dy of the output rows, the adjoints of the input rows into dz
/// (which may be dy itself). Returns the value row's adjoint.
template <class Act, int K, class T>
KOKKOS_INLINE_FUNCTION T taylor_activation_adjoint(int i, int j, Matrix<T const> z,
                                                   Matrix<T const> y, Matrix<T const> dy,
                                                   Matrix<T> dz) {
  int const r0 = i * K, last = r0 + K - 1;
  T const z0 = z(r0, j), y0 = y(r0, j);
  T const d1 = Act::derivative(z0, y0), d2 = Act::second(z0, y0), d3 = Act::third(z0, y0);
  T const s_bar = dy(last, j);
  T t_dot = 0, squares = 0;
  for (int r = r0 + 1; r < last; ++r) {
    T const t = z(r, j);
    t_dot += t * dy(r, j);
    squares += t * t;
  }
  T const z0_bar = d1 * dy(r0, j) + d2 * (t_dot + z(last, j) * s_bar) + d3 * squares * s_bar;
  T const two_d2_s_bar = T(2) * d2 * s_bar;
  for (int r = r0 + 1; r < last; ++r) dz(r, j) = d1 * dy(r, j) + two_d2_s_bar * z(r, j);
  dz(last, j) = d1 * s_bar;
  dz(r0, j) = z0_bar;
  return z0_bar;
}

/// Column j of taylor_adjoint_rows (dy and dz may be the same rows).
template <class Act, int K, class T>
KOKKOS_FORCEINLINE_FUNCTION void taylor_adjoint_column(int j, T const* z, std::ptrdiff_t zs,
                                                       T const* y, T const* dy, std::ptrdiff_t dys,
                                                       T* dz, std::ptrdiff_t dzs) {
  T const z0 = z[j], y0 = y[j];
  T const d1 = Act::derivative(z0, y0), d2 = Act::second(z0, y0), d3 = Act::third(z0, y0);
  T const s_bar = dy[(K - 1) * dys + j];
  T t_dot = 0, squares = 0;
  T t[K > 2 ? K - 2 : 1], t_bar[K > 2 ? K - 2 : 1];
  for (int r = 1; r < K - 1; ++r) {
    t[r - 1] = z[r * zs + j];
    t_bar[r - 1] = dy[r * dys + j];
    t_dot += t[r - 1] * t_bar[r - 1];
    squares += t[r - 1] * t[r - 1];
  }
  T const z0_bar = d1 * dy[j] + d2 * (t_dot + z[(K - 1) * zs + j] * s_bar) + d3 * squares * s_bar;
  T const two_d2_s_bar = T(2) * d2 * s_bar;
  for (int r = 1; r < K - 1; ++r) dz[r * dzs + j] = d1 * t_bar[r - 1] + two_d2_s_bar * t[r - 1];
  dz[(K - 1) * dzs + j] = d1 * s_bar;
  dz[j] = z0_bar;
}

/// taylor_activation_adjoint for one sample's K contiguous rows, over
/// columns: a loop that vectorizes, its arrays restrict-qualified (dz apart
/// from dy here; taylor_adjoint_rows_in_place when they are the same rows,
/// where a compiler's run-time overlap check would send the loop to its
/// scalar version).
template <class Act, int K, class T>
KOKKOS_INLINE_FUNCTION void taylor_adjoint_rows(T const* KOKKOS_RESTRICT z, std::ptrdiff_t zs,
                                                T const* KOKKOS_RESTRICT y,
                                                T const* KOKKOS_RESTRICT dy, std::ptrdiff_t dys,
                                                T* KOKKOS_RESTRICT dz, std::ptrdiff_t dzs,
                                                int cols) {
  for (int j = 0; j < cols; ++j) taylor_adjoint_column<Act, K>(j, z, zs, y, dy, dys, dz, dzs);
}
template <class Act, int K, class T>
KOKKOS_INLINE_FUNCTION void taylor_adjoint_rows_in_place(T const* KOKKOS_RESTRICT z,
                                                         std::ptrdiff_t zs,
                                                         T const* KOKKOS_RESTRICT y,
                                                         T* KOKKOS_RESTRICT d, std::ptrdiff_t ds,
                                                         int cols) {
  for (int j = 0; j < cols; ++j) taylor_adjoint_column<Act, K>(j, z, zs, y, d, ds, d, ds);
}

/// The adjoint of TaylorActivationForward: dz from dy (dz may be dy), z the
/// pass's input and y its output; per sample's rows on host cores (Rows, or
/// RowsInPlace when dz is dy), per element otherwise.
template <class Act, int K, class T>
struct TaylorActivationBackward {
  struct Rows {};
  struct RowsInPlace {};
  Matrix<T const> z;
  Matrix<T const> y;
  Matrix<T> dy;
  Matrix<T> dz;
  KOKKOS_INLINE_FUNCTION void operator()(RowsInPlace, int i) const {
    taylor_adjoint_rows_in_place<Act, K>(z.row(i * K), z.row_stride, y.row(i * K), dz.row(i * K),
                                         dz.row_stride, z.cols);
  }
  KOKKOS_INLINE_FUNCTION void operator()(Rows, int i) const {
    taylor_adjoint_rows<Act, K>(z.row(i * K), z.row_stride, y.row(i * K), dy.row(i * K),
                                dy.row_stride, dz.row(i * K), dz.row_stride, z.cols);
  }
  KOKKOS_INLINE_FUNCTION void operator()(std::size_t i, std::size_t j) const {
    taylor_activation_adjoint<Act, K>(int(i), int(j), z, y, Matrix<T const>(dy), dz);
  }
};

/// Adjoints of a Taylor activation pass for all samples: dz from dy (dz may
/// be dy), z the pass's input and y its output.
template <class Act, int K, class ExecSpace, class T>
void taylor_activation_backward(ExecSpace const& exec, char const* label, Matrix<T const> z,
                                Matrix<T const> y, Matrix<T> dy, Matrix<T> dz) {
  using Kernel = TaylorActivationBackward<Act, K, T>;
  Kernel const kernel{.z = z, .y = y, .dy = dy, .dz = dz};
  if constexpr (!ops::device_kernels<ExecSpace>) {
    if (z.col_stride == 1 && y.col_stride == 1 && dy.col_stride == 1 && dz.col_stride == 1) {
      if (dy.data == dz.data && dy.row_stride == dz.row_stride)
        Kokkos::parallel_for(
            label,
            Kokkos::RangePolicy<ExecSpace, typename Kernel::RowsInPlace>(exec, 0, z.rows / K),
            kernel);
      else
        Kokkos::parallel_for(
            label, Kokkos::RangePolicy<ExecSpace, typename Kernel::Rows>(exec, 0, z.rows / K),
            kernel);
      return;
    }
  }
  ops::for_each_element(exec, label, std::size_t(z.rows / K), std::size_t(z.cols), kernel);
}

/// y = Act(x), element by element.
template <class Act, class T>
struct ActivationValues {
  Matrix<T const> x;
  Matrix<T> y;
  KOKKOS_INLINE_FUNCTION void operator()(std::size_t i, std::size_t j) const {
    y(i, j) = Act::value(x(i, j));
  }
};

/// dx = dy * Act'(x, y), element by element.
template <class Act, class T>
struct ActivationInputGradient {
  Matrix<T const> x;
  Matrix<T const> y;
  Matrix<T> dy;
  Matrix<T> dx;
  KOKKOS_INLINE_FUNCTION void operator()(std::size_t i, std::size_t j) const {
    dx(i, j) = dy(i, j) * Act::derivative(x(i, j), y(i, j));
  }
};
}  // namespace detail

/// An activation applied as a layer of its own, of width N. A Sequential makes
/// this from a bare activation (`Sequential<Dense<4, 8>, ReLU, ...>`), taking N
/// from the layer before.
template <ActivationFunction Act, int N>
struct Activation : LayerDefaults {
  static constexpr int in_features = N;
  static constexpr int out_features = N;
  /// Element-wise: after an image layer its output is the same image shape.
  static constexpr bool preserves_shape = true;
  using activation = Act;

  template <class ExecSpace, class T, class Isa>
  static void forward(LayerContext<ExecSpace, T, Isa> const& ctx, Matrix<T const> x, Matrix<T> y) {
    ops::for_each_element(ctx.exec, "ktnn::Activation::forward", std::size_t(x.rows), N,
                          detail::ActivationValues<Act, T>{.x = x, .y = y});
  }

  template <class ExecSpace, class T, class Isa>
  static void backward(LayerContext<ExecSpace, T, Isa> const& ctx, Matrix<T const> x,
                       Matrix<T const> y, Matrix<T> dy, Matrix<T> dx) {
    if (dx.empty()) return;
    ops::for_each_element(
        ctx.exec, "ktnn::Activation::backward", std::size_t(x.rows), N,
        detail::ActivationInputGradient<Act, T>{.x = x, .y = y, .dy = dy, .dx = dx});
  }

  /// Taylor mode (see Dense::forward_taylor).
  template <int K, class ExecSpace, class T, class Isa>
  static void forward_taylor(LayerContext<ExecSpace, T, Isa> const& ctx, Matrix<T const> x,
                             Matrix<T> y) {
    detail::taylor_activation_forward<Act, K>(ctx.exec, "ktnn::Activation::forward_taylor", x, y);
  }
  template <int K, class ExecSpace, class T, class Isa>
  static void backward_taylor(LayerContext<ExecSpace, T, Isa> const& ctx, Matrix<T const> x,
                              Matrix<T const> y, Matrix<T> dy, Matrix<T> dx) {
    if (dx.empty()) return;
    detail::taylor_activation_backward<Act, K>(ctx.exec, "ktnn::Activation::backward_taylor", x, y,
                                               dy, dx);
  }

  template <class P, class S>
  KOKKOS_INLINE_FUNCTION static void apply(P const*, P const*, S const* x, S* y) {
    for (int j = 0; j < N; ++j) y[j] = detail::activate<Act>(x[j]);
  }

  static std::string name() { return std::string(Act::name) + "<" + std::to_string(N) + ">"; }
};

}  // namespace ktnn

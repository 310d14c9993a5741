#pragma once
/// \file Layers that take their shape from the layer before: MaxPool2D,
/// AvgPool2D, GlobalAvgPool2D and Flatten (each a ShapeBindingLayer, see
/// layers/layer.hpp). In a Sequential they are written without sizes:
///
///   Sequential<Conv2D<Image<1, 28, 28>, 32, 3, ReLU, Padding<1>>, MaxPool2D<2>, Flatten,
///              Dense<32 * 14 * 14, 10>>
///
/// and bound to the shape before them they are Pool2DLayer<Pooling::max, In,
/// Kernel, Stride, Padding, Dilation> (AvgPool2D: Pooling::average),
/// GlobalAvgPool2DLayer<In> and FlattenLayer<In>.
///
/// Pooling as torch.nn.MaxPool2d / AvgPool2d (stride defaults to the kernel;
/// max pooling sends the gradient to the first largest element of a window,
/// average pooling divides by the whole window, padding included, as
/// count_include_pad = True). Overlapping windows need no atomics: on host
/// spaces a plane's gradient is summed by one work item, on devices each
/// input element gathers from its windows.

#include <ktnn/core/matrix.hpp>
#include <ktnn/core/shape.hpp>
#include <ktnn/layers/activation_functions.hpp>
#include <ktnn/layers/layer.hpp>
#include <ktnn/layers/window2d.hpp>
#include <ktnn/ops/elementwise.hpp>

#include <Kokkos_Core.hpp>

#include <cstddef>
#include <string>
#include <type_traits>

namespace ktnn {

/// Which window statistic a pooling layer takes.
enum class Pooling { max, average };

namespace detail {
/// The kernels of a pooling layer L: forward a thread per output (n, e) on
/// devices or a work item per (sample, channel) plane on host spaces.
template <class L, class T>
struct PoolForward {
  struct Planes {};
  Matrix<T const> x;
  Matrix<T> y;
  KOKKOS_INLINE_FUNCTION void operator()(std::size_t n, std::size_t e) const {
    using G = typename L::geometry;
    int const c = int(e / G::out_pixels);
    int const p = int(e - std::size_t(c) * G::out_pixels);
    int const oh = p / G::out_width, ow = p - oh * G::out_width;
    int arg;
    y(n, e) = L::window(x.row(n), c, oh, ow, arg);
  }
  KOKKOS_INLINE_FUNCTION void operator()(Planes, std::size_t plane) const {
    using G = typename L::geometry;
    std::size_t const n = plane / G::channels;
    int const c = int(plane - n * G::channels);
    T* const out = y.row(n) + std::size_t(c) * G::out_pixels;
    for (int oh = 0; oh < G::out_height; ++oh)
      for (int ow = 0; ow < G::out_width; ++ow) {
        int arg;
        out[oh * G::out_width + ow] = L::window(x.row(n), c, oh, ow, arg);
      }
  }
};

/// Backward of a pooling layer L. Host spaces (Planes): a work item per
/// plane zeroes it and adds each window's gradient in window order (serial
/// within the plane, so overlapping windows need no atomics). Devices: a
/// thread per input element (n, e) gathers from the windows that contain it.
template <class L, class T>
struct PoolBackward {
  struct Planes {};
  Matrix<T const> x;
  Matrix<T> dy;
  Matrix<T> dx;
  KOKKOS_INLINE_FUNCTION void operator()(Planes, std::size_t plane) const {
    using G = typename L::geometry;
    constexpr int kernel = G::kernel;
    std::size_t const n = plane / G::channels;
    int const c = int(plane - n * G::channels);
    T* const image = dx.row(n);
    T const* const xn = x.row(n);
    T* const out = image + std::size_t(c) * G::in_pixels;
    T const* const grad = dy.row(n) + std::size_t(c) * G::out_pixels;
    for (int i = 0; i < G::in_pixels; ++i) out[i] = T(0);
    for (int oh = 0; oh < G::out_height; ++oh)
      for (int ow = 0; ow < G::out_width; ++ow) {
        T const g = grad[oh * G::out_width + ow];
        if constexpr (L::is_max) {
          int arg;
          L::window(xn, c, oh, ow, arg);
          if (arg >= 0) image[arg] += g;
        } else {
          T const share = g / T(kernel * kernel);
          for (int kh = 0; kh < kernel; ++kh) {
            int const ih = oh * G::stride - G::padding + kh * G::dilation;
            if (ih < 0 || ih >= G::height) continue;
            for (int kw = 0; kw < kernel; ++kw) {
              int const iw = ow * G::stride - G::padding + kw * G::dilation;
              if (iw < 0 || iw >= G::width) continue;
              out[ih * G::width + iw] += share;
            }
          }
        }
      }
  }
  KOKKOS_INLINE_FUNCTION void operator()(std::size_t n, std::size_t e) const {
    using G = typename L::geometry;
    constexpr int kernel = G::kernel;
    int const c = int(e / G::in_pixels), rest = int(e - std::size_t(c) * G::in_pixels);
    int const ih = rest / G::width, iw = rest - ih * G::width;
    T const* const xn = x.row(n);
    T sum = 0;
    G::windows_containing(ih, iw, [&](int oh, int ow, int, int) {
      T const g = dy(n, std::size_t(c) * G::out_pixels + oh * G::out_width + ow);
      if constexpr (L::is_max) {
        int arg;
        L::window(xn, c, oh, ow, arg);
        if (arg == int(e)) sum += g;
      } else {
        sum += g / T(kernel * kernel);
      }
    });
    dx(n, e) = sum;
  }
};

/// y(n, c) = the mean of channel c's Pixels values of sample n.
template <int Pixels, class T>
struct ChannelMeans {
  Matrix<T const> x;
  Matrix<T> y;
  KOKKOS_INLINE_FUNCTION void operator()(std::size_t n, std::size_t c) const {
    T const* row = x.row(n) + c * Pixels;
    T sum = 0;
    for (int p = 0; p < Pixels; ++p) sum += row[p];
    y(n, c) = sum / T(Pixels);
  }
};

/// dx(n, e) = dy(n, c) / Pixels for every value e of channel c.
template <int Pixels, class T>
struct ChannelMeansGradient {
  Matrix<T> dy;
  Matrix<T> dx;
  KOKKOS_INLINE_FUNCTION void operator()(std::size_t n, std::size_t e) const {
    dx(n, e) = dy(n, e / Pixels) / T(Pixels);
  }
};

/// The options of a pooling layer: what is set, else the defaults (stride
/// the kernel).
template <int Kernel, class... Options>
struct pool_options {
  static constexpr bool known =
      ((conv_option<Options>::known && !ActivationFunction<Options>) && ...);
  static constexpr int stride = first_set<0, Kernel, conv_option<Options>::stride...>();
  static constexpr int padding = first_set<-1, 0, conv_option<Options>::padding...>();
  static constexpr int dilation = first_set<0, 1, conv_option<Options>::dilation...>();
};
}  // namespace detail

/// A pooling layer bound to its input shape In: Pool2D<Kind, Kernel,
/// Options...>::bind<In> (MaxPool2D, AvgPool2D), with Stride S, Padding P and
/// Dilation D resolved.
template <Pooling Kind, class In, int Kernel, int S, int P, int D>
struct Pool2DLayer : LayerDefaults {
  static_assert(ImageShape<In>,
                "ktnn::MaxPool2D / AvgPool2D: the layer before must output an "
                "image (ktnn::Image<C, H, W>)");
  static_assert(2 * P <= Kernel,
                "ktnn::MaxPool2D / AvgPool2D: padding must be at most half the "
                "kernel, as in PyTorch");
  // A stand-in image after a failed check above, so the compiler stops at
  // that message instead of a cascade of missing members.
  using geometry =
      detail::Window2D<std::conditional_t<ImageShape<In>, In, Image<1, Kernel, Kernel>>, Kernel, S,
                       P, D>;
  static_assert(geometry::out_height > 0 && geometry::out_width > 0,
                "ktnn::MaxPool2D / AvgPool2D: the window does not fit in the padded image");
  using in_shape = In;
  using out_shape = Image<geometry::channels, geometry::out_height, geometry::out_width>;
  static constexpr int in_features = In::size;
  static constexpr int out_features = out_shape::size;
  static constexpr bool is_max = Kind == Pooling::max;

  /// The window of output (c, oh, ow): its value, and for max pooling the
  /// flat index of its first largest input (-1 if the window is all padding).
  template <class S_>
  KOKKOS_INLINE_FUNCTION static S_ window(S_ const* x, int c, int oh, int ow, int& arg) {
    using G = geometry;
    S_ acc = S_(0);
    bool any = false;
    arg = -1;
    for (int kh = 0; kh < Kernel; ++kh) {
      int const ih = oh * S - P + kh * D;
      if (ih < 0 || ih >= G::height) continue;
      for (int kw = 0; kw < Kernel; ++kw) {
        int const iw = ow * S - P + kw * D;
        if (iw < 0 || iw >= G::width) continue;
        int const at = (c * G::height + ih) * G::width + iw;
        S_ const v = x[at];
        if constexpr (is_max) {
          // A NaN wins, as in PyTorch, so it is not hidden.
          if (!any || v > acc || !(v == v)) {
            acc = v;
            arg = at;
          }
          any = true;
        } else {
          acc += v;
        }
      }
    }
    if constexpr (!is_max) acc = acc / S_(Kernel * Kernel);
    return acc;
  }

  /// Forward. Host spaces: a work item per (sample, channel) plane; devices:
  /// a thread per output.
  template <class ExecSpace, class T, class Isa>
  static void forward(LayerContext<ExecSpace, T, Isa> const& ctx, Matrix<T const> x, Matrix<T> y) {
    using Kernels = detail::PoolForward<Pool2DLayer, T>;
    if constexpr (ops::device_kernels<ExecSpace>)
      ops::for_each_element(ctx.exec, "ktnn::Pool2D::forward", std::size_t(x.rows),
                            std::size_t(out_features), Kernels{.x = x, .y = y});
    else
      Kokkos::parallel_for("ktnn::Pool2D::forward",
                           Kokkos::RangePolicy<ExecSpace, typename Kernels::Planes>(
                               ctx.exec, 0, std::size_t(x.rows) * geometry::channels),
                           Kernels{.x = x, .y = y});
  }

  /// Backward (see PoolBackward).
  template <class ExecSpace, class T, class Isa>
  static void backward(LayerContext<ExecSpace, T, Isa> const& ctx, Matrix<T const> x,
                       Matrix<T const>, Matrix<T> dy, Matrix<T> dx) {
    if (dx.empty()) return;
    using Kernels = detail::PoolBackward<Pool2DLayer, T>;
    if constexpr (ops::device_kernels<ExecSpace>)
      ops::for_each_element(ctx.exec, "ktnn::Pool2D::backward", std::size_t(x.rows),
                            std::size_t(in_features), Kernels{.x = x, .dy = dy, .dx = dx});
    else
      Kokkos::parallel_for("ktnn::Pool2D::backward",
                           Kokkos::RangePolicy<ExecSpace, typename Kernels::Planes>(
                               ctx.exec, 0, std::size_t(x.rows) * geometry::channels),
                           Kernels{.x = x, .dy = dy, .dx = dx});
  }

  template <class P_, class S_>
  KOKKOS_INLINE_FUNCTION static void apply(P_ const*, P_ const*, S_ const* x, S_* y) {
    for (int c = 0; c < geometry::channels; ++c)
      for (int oh = 0; oh < geometry::out_height; ++oh)
        for (int ow = 0; ow < geometry::out_width; ++ow) {
          int arg;
          y[(c * geometry::out_height + oh) * geometry::out_width + ow] = window(x, c, oh, ow, arg);
        }
  }

  static std::string name() {
    std::string out =
        std::string(is_max ? "MaxPool2D" : "AvgPool2D") + "<" + std::to_string(Kernel);
    if (S != Kernel) out += ", Stride<" + std::to_string(S) + ">";
    if (P != 0) out += ", Padding<" + std::to_string(P) + ">";
    if (D != 1) out += ", Dilation<" + std::to_string(D) + ">";
    return out + "> on " + In::name();
  }
};
/// Kind pooling over Kernel x Kernel windows, its shape from the layer
/// before; options Stride<S> (default Kernel), Padding<P>, Dilation<D>. What
/// MaxPool2D and AvgPool2D are.
template <Pooling Kind, int Kernel, class... Options>
struct Pool2D {
  static_assert(Kernel > 0, "ktnn::MaxPool2D / AvgPool2D: Kernel must be positive");
  static_assert(detail::pool_options<Kernel, Options...>::known,
                "ktnn::MaxPool2D / AvgPool2D: an option is not ktnn::Stride<S>, ktnn::Padding<P> "
                "or ktnn::Dilation<D>");
  static constexpr bool binds_shape = true;
  static constexpr int stride = detail::pool_options<Kernel, Options...>::stride;
  static constexpr int padding = detail::pool_options<Kernel, Options...>::padding;
  static constexpr int dilation = detail::pool_options<Kernel, Options...>::dilation;
  template <class In>
  using bind = Pool2DLayer<Kind, In, Kernel, stride, padding, dilation>;
};

/// Max pooling over Kernel x Kernel windows; options Stride<S> (default
/// Kernel), Padding<P>, Dilation<D>.
template <int Kernel, class... Options>
struct MaxPool2D : Pool2D<Pooling::max, Kernel, Options...> {};

/// Average pooling over Kernel x Kernel windows (padding counts in the mean).
template <int Kernel, class... Options>
struct AvgPool2D : Pool2D<Pooling::average, Kernel, Options...> {};

/// GlobalAvgPool2D bound to its input image In: one mean per channel.
template <class In>
struct GlobalAvgPool2DLayer : LayerDefaults {
  static_assert(ImageShape<In>,
                "ktnn::GlobalAvgPool2D: the layer before must output an image "
                "(ktnn::Image<C, H, W>)");
  using in_shape = In;
  using out_shape = Features<In::channels>;
  static constexpr int in_features = In::size;
  static constexpr int out_features = In::channels;

  template <class ExecSpace, class T, class Isa>
  static void forward(LayerContext<ExecSpace, T, Isa> const& ctx, Matrix<T const> x, Matrix<T> y) {
    ops::for_each_element(ctx.exec, "ktnn::GlobalAvgPool2D::forward", std::size_t(x.rows),
                          std::size_t(out_features),
                          detail::ChannelMeans<In::pixels, T>{.x = x, .y = y});
  }
  template <class ExecSpace, class T, class Isa>
  static void backward(LayerContext<ExecSpace, T, Isa> const& ctx, Matrix<T const>, Matrix<T const>,
                       Matrix<T> dy, Matrix<T> dx) {
    if (dx.empty()) return;
    ops::for_each_element(ctx.exec, "ktnn::GlobalAvgPool2D::backward", std::size_t(dy.rows),
                          std::size_t(in_features),
                          detail::ChannelMeansGradient<In::pixels, T>{.dy = dy, .dx = dx});
  }
  template <class P, class S>
  KOKKOS_INLINE_FUNCTION static void apply(P const*, P const*, S const* x, S* y) {
    for (int c = 0; c < In::channels; ++c) {
      S sum = S(0);
      for (int p = 0; p < In::pixels; ++p) sum += x[c * In::pixels + p];
      y[c] = sum / S(In::pixels);
    }
  }
  static std::string name() { return "GlobalAvgPool2D on " + In::name(); }
};

/// The mean of each channel: Image<C, H, W> to Features<C>.
struct GlobalAvgPool2D {
  static constexpr bool binds_shape = true;
  template <class In>
  using bind = GlobalAvgPool2DLayer<In>;
};

/// Flatten bound to its input shape In: the same values, as a vector.
template <class In>
struct FlattenLayer : LayerDefaults {
  using in_shape = In;
  using out_shape = Features<In::size>;
  static constexpr int in_features = In::size;
  static constexpr int out_features = In::size;

  template <class ExecSpace, class T, class Isa>
  static void forward(LayerContext<ExecSpace, T, Isa> const& ctx, Matrix<T const> x, Matrix<T> y) {
    ops::for_each_element(ctx.exec, "ktnn::Flatten::forward", std::size_t(x.rows),
                          std::size_t(in_features), detail::CopyElements<T>{.from = x, .to = y});
  }
  template <class ExecSpace, class T, class Isa>
  static void backward(LayerContext<ExecSpace, T, Isa> const& ctx, Matrix<T const>, Matrix<T const>,
                       Matrix<T> dy, Matrix<T> dx) {
    if (dx.empty()) return;
    ops::for_each_element(ctx.exec, "ktnn::Flatten::backward", std::size_t(dy.rows),
                          std::size_t(in_features), detail::CopyElements<T>{.from = dy, .to = dx});
  }
  template <class P, class S>
  KOKKOS_INLINE_FUNCTION static void apply(P const*, P const*, S const* x, S* y) {
    for (int e = 0; e < in_features; ++e) y[e] = x[e];
  }
  static std::string name() { return "Flatten on " + In::name(); }
};
/// An image as a vector of C * H * W values (NCHW order, as torch.flatten).
struct Flatten {
  static constexpr bool binds_shape = true;
  template <class In>
  using bind = FlattenLayer<In>;
};

}  // namespace ktnn

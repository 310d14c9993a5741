#pragma once
/// \file The geometry of a 2-D window sweep over NCHW images, what Conv2D and
/// the pooling layers share: the options Stride<S>, Padding<P>, Dilation<D>
/// (as torch.nn.Conv2d and MaxPool2d take them), the output extent, and
/// Window2D (the valid ranges, the windows that read a pixel, im2col and its
/// adjoint col2im).

#include <ktnn/layers/activation_functions.hpp>

#include <Kokkos_Core.hpp>

#include <cstddef>

namespace ktnn {

/// Conv2D and pooling options.
template <int S>
struct Stride {
  static_assert(S > 0, "ktnn::Stride: must be positive");
  static constexpr int value = S;
};
template <int P>
struct Padding {
  static_assert(P >= 0, "ktnn::Padding: must not be negative");
  static constexpr int value = P;
};
template <int D>
struct Dilation {
  static_assert(D > 0, "ktnn::Dilation: must be positive");
  static constexpr int value = D;
};

namespace detail {
template <class O>
struct conv_option {
  static constexpr bool known = ActivationFunction<O>;
  static constexpr int stride = 0, padding = -1, dilation = 0;
};
template <int S>
struct conv_option<Stride<S>> {
  static constexpr bool known = true;
  static constexpr int stride = S, padding = -1, dilation = 0;
};
template <int P>
struct conv_option<Padding<P>> {
  static constexpr bool known = true;
  static constexpr int stride = 0, padding = P, dilation = 0;
};
template <int D>
struct conv_option<Dilation<D>> {
  static constexpr bool known = true;
  static constexpr int stride = 0, padding = -1, dilation = D;
};

/// The first of `values` that is set (not `unset`), else `fallback`.
template <int unset, int fallback, int... values>
constexpr int first_set() {
  int out = fallback;
  bool found = false;
  ((!found && values != unset ? (out = values, found = true) : false), ...);
  return out;
}

/// A convolution's or pooling window's geometry along one image axis.
KOKKOS_INLINE_FUNCTION constexpr int conv_output_extent(int in, int kernel, int stride, int padding,
                                                        int dilation) {
  return (in + 2 * padding - dilation * (kernel - 1) - 1) / stride + 1;
}

/// The compile-time geometry of a 2-D window sweep (convolution or pooling).
template <class In, int Kernel, int S, int P, int D>
struct Window2D {
  static constexpr int channels = In::channels;
  static constexpr int height = In::height, width = In::width;
  static constexpr int kernel = Kernel, stride = S, padding = P, dilation = D;
  static constexpr int out_height = conv_output_extent(height, Kernel, S, P, D);
  static constexpr int out_width = conv_output_extent(width, Kernel, S, P, D);
  static constexpr int out_pixels = out_height * out_width;
  static constexpr int in_pixels = height * width;

  /// The range [begin, end) of output columns ow whose input column
  /// ow * S - P + offset lies inside the image.
  KOKKOS_INLINE_FUNCTION static void valid_columns(int offset, int& begin, int& end) {
    // iw >= 0  <=>  ow >= ceil((P - offset) / S)
    int const low = P - offset;
    begin = low <= 0 ? 0 : (low + S - 1) / S;
    // iw <= width - 1  <=>  ow <= floor((width - 1 + P - offset) / S)
    int const high = width - 1 + P - offset;
    end = high < 0 ? 0 : high / S + 1;
    if (end > out_width) end = out_width;
    if (begin > end) begin = end;
  }

  /// Calls f(oh, ow, kh, kw) for every output whose window reads input
  /// pixel (ih, iw) through tap (kh, kw): what an input gradient gathers.
  template <class F>
  KOKKOS_INLINE_FUNCTION static void windows_containing(int ih, int iw, F const& f) {
    for (int kh = 0; kh < Kernel; ++kh) {
      int const th = ih + P - kh * D;  // = oh * S
      if (th < 0 || th % S != 0 || th / S >= out_height) continue;
      for (int kw = 0; kw < Kernel; ++kw) {
        int const tw = iw + P - kw * D;
        if (tw < 0 || tw % S != 0 || tw / S >= out_width) continue;
        f(th / S, tw / S, kh, kw);
      }
    }
  }

  /// Lowers one sample: col[(c, kh, kw)][(oh, ow)] = x[c][oh S - P + kh D][ow S - P + kw D],
  /// zero outside the image.
  template <class T>
  KOKKOS_INLINE_FUNCTION static void im2col(T const* KOKKOS_RESTRICT x, T* KOKKOS_RESTRICT col) {
    for (int c = 0; c < channels; ++c)
      for (int kh = 0; kh < Kernel; ++kh)
        for (int kw = 0; kw < Kernel; ++kw) {
          T* KOKKOS_RESTRICT row = col + std::size_t((c * Kernel + kh) * Kernel + kw) * out_pixels;
          int begin, end;
          valid_columns(kw * D, begin, end);
          for (int oh = 0; oh < out_height; ++oh) {
            int const ih = oh * S - P + kh * D;
            T* KOKKOS_RESTRICT out = row + oh * out_width;
            if (ih < 0 || ih >= height) {
              for (int ow = 0; ow < out_width; ++ow) out[ow] = T(0);
              continue;
            }
            T const* KOKKOS_RESTRICT in = x + (c * height + ih) * width - P + kw * D;
            for (int ow = 0; ow < begin; ++ow) out[ow] = T(0);
            for (int ow = begin; ow < end; ++ow) out[ow] = in[ow * S];
            for (int ow = end; ow < out_width; ++ow) out[ow] = T(0);
          }
        }
  }

  /// The adjoint of im2col: dx = sum over the lowered rows of col, folded
  /// back onto the image (dx is overwritten).
  template <class T>
  KOKKOS_INLINE_FUNCTION static void col2im(T const* KOKKOS_RESTRICT col, T* KOKKOS_RESTRICT dx) {
    for (int i = 0; i < channels * in_pixels; ++i) dx[i] = T(0);
    for (int c = 0; c < channels; ++c)
      for (int kh = 0; kh < Kernel; ++kh)
        for (int kw = 0; kw < Kernel; ++kw) {
          T const* KOKKOS_RESTRICT row =
              col + std::size_t((c * Kernel + kh) * Kernel + kw) * out_pixels;
          int begin, end;
          valid_columns(kw * D, begin, end);
          for (int oh = 0; oh < out_height; ++oh) {
            int const ih = oh * S - P + kh * D;
            if (ih < 0 || ih >= height) continue;
            T* KOKKOS_RESTRICT out = dx + (c * height + ih) * width - P + kw * D;
            T const* KOKKOS_RESTRICT in = row + oh * out_width;
            for (int ow = begin; ow < end; ++ow) out[ow * S] += in[ow];
          }
        }
  }
};

}  // namespace detail

}  // namespace ktnn

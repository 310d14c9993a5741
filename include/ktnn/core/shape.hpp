#pragma once
/// \file Compile-time shapes of one sample: Features<N> (a vector) and
/// Image<C, H, W> (channels, height, width, stored NCHW as PyTorch stores
/// them, so a sample is C * H * W contiguous values, channel-major).
///
/// Layers stay flat (in_features, out_features); how a layer declares its
/// shapes, takes them from the layer before or passes them through is part of
/// the layer protocol (layers/layer.hpp: ShapedLayer, ShapeBindingLayer,
/// ShapePreservingLayer).

#include <string>
#include <type_traits>

namespace ktnn {

/// A sample that is a vector of N values.
template <int N>
struct Features {
  static_assert(N > 0, "ktnn::Features: the width must be positive");
  static constexpr int size = N;
  static constexpr bool is_image = false;
  static std::string name() { return "Features<" + std::to_string(N) + ">"; }
};

/// A sample that is C channels of H x W values, NCHW.
template <int C, int H, int W>
struct Image {
  static_assert(C > 0 && H > 0 && W > 0, "ktnn::Image: every extent must be positive");
  static constexpr int channels = C;
  static constexpr int height = H;
  static constexpr int width = W;
  static constexpr int pixels = H * W;
  static constexpr int size = C * H * W;
  static constexpr bool is_image = true;
  static std::string name() {
    return "Image<" + std::to_string(C) + ", " + std::to_string(H) + ", " + std::to_string(W) + ">";
  }
};

namespace detail {
template <class S>
struct is_shape : std::false_type {};
template <int N>
struct is_shape<Features<N>> : std::true_type {};
template <int C, int H, int W>
struct is_shape<Image<C, H, W>> : std::true_type {};
}  // namespace detail

/// Features<N> or Image<C, H, W>.
template <class S>
concept Shape = detail::is_shape<S>::value;

/// An image shape.
template <class S>
concept ImageShape = Shape<S> && S::is_image;

}  // namespace ktnn

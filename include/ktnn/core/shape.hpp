#pragma once
/// \file Compile-time shapes of one sample: Features<N> (a vector) and
/// Image<C, H, W> (channels, height, width, stored NCHW as PyTorch stores
/// them, so a sample is C * H * W contiguous values, channel-major).
///
/// Layers stay flat (in_features, out_features); a layer that cares about the
/// image shape also declares
///   using in_shape = Image<...>;  using out_shape = Image<...> or Features<...>;
/// and a layer whose shape comes from the layer before (pooling, Flatten,
/// BatchNorm2d, Dropout) is a type with the members
///   static constexpr bool binds_shape = true;
///   template <class Shape> using bind = TheBoundLayer;
/// and Sequential puts bind<the previous layer's output shape> in its place. A
/// layer that declares `static constexpr bool preserves_shape = true`
/// (element-wise: activations, Dropout) passes the shape before it through.

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

/// A layer template waiting for the shape of its input (see the file comment).
template <class L>
concept ShapeGeneric = requires { requires L::binds_shape; };

namespace detail {
template <class L>
concept declares_in_shape = requires { typename L::in_shape; };
template <class L>
concept declares_out_shape = requires { typename L::out_shape; };
template <class L>
concept preserves_shape = requires { requires L::preserves_shape; };
}  // namespace detail

}  // namespace ktnn

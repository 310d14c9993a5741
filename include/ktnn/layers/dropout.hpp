#pragma once
/// \file Dropout<P>: PyTorch's inverted dropout. In training mode each value
/// is zeroed with probability P and the others are scaled by 1 / (1 - P), so
/// evaluation mode is the identity.
///
/// The mask is counter-based: whether value j of sample i is kept is a pure
/// function of (the model's seed, the training step, the layer's index in
/// its Sequential, i, j) through ktnn::random, so a seed reproduces every mask
/// on every backend and thread count, and backward recomputes the mask
/// instead of keeping it (one hash per value, cheaper than a saved block's
/// traffic, and no memory). Backward must run in the mode its forward ran in.
///
/// Dropout takes its shape from the layer before and passes it through, so it
/// goes after vectors and images alike: `Sequential<Dense<64, 64>, ReLU,
/// Dropout<0.5>, Dense<64, 10>>`.

#include <ktnn/core/matrix.hpp>
#include <ktnn/core/random.hpp>
#include <ktnn/core/shape.hpp>
#include <ktnn/layers/layer.hpp>
#include <ktnn/ops/elementwise.hpp>

#include <Kokkos_Core.hpp>

#include <cstddef>
#include <cstdint>
#include <sstream>
#include <string>

namespace ktnn {

namespace detail {
/// The random stream of one dropout layer at one training step: a hash of
/// (layer, step), under a key of its own.
KOKKOS_INLINE_FUNCTION std::uint64_t dropout_stream(std::uint64_t layer, std::uint64_t step) {
  return random::bits(0x64726f706f7574ULL, layer, step);  // "dropout"
}

/// The smallest k with k 2^-53 >= P: a value is kept when the top 53 bits of
/// its draw reach it, which is `random::uniform(...) >= P` without the
/// conversion to double (P 2^53 is exact, P being at most 1).
constexpr std::uint64_t dropout_threshold(double p) {
  double const scaled = p * 0x1p53;
  auto const k = static_cast<std::uint64_t>(scaled);
  return static_cast<double>(k) < scaled ? k + 1 : k;
}

/// Whether value `counter` (sample i times the width, plus j) survives.
template <std::uint64_t Threshold>
KOKKOS_INLINE_FUNCTION bool dropout_kept(std::uint64_t seed, std::uint64_t stream,
                                         std::uint64_t counter) {
  if constexpr (Threshold == 0) {  // P = 0: every value (and no comparison with 0)
    (void)seed, (void)stream, (void)counter;
    return true;
  } else {
    return (random::bits(seed, stream, counter) >> 11) >= Threshold;
  }
}

/// out = in with the mask of Dropout layer L and its scale (training), or
/// out = in (evaluation).
template <class L, class T>
struct DropoutMask {
  Matrix<T const> in;
  Matrix<T> out;
  bool train;
  std::uint64_t seed;
  std::uint64_t stream;
  T factor;
  KOKKOS_INLINE_FUNCTION void operator()(std::size_t i, std::size_t j) const {
    T const v = in(i, j);
    out(i, j) = !train ? v
                : dropout_kept<L::threshold>(seed, stream, std::uint64_t(i) * L::in_features + j)
                    ? v * factor
                    : T(0);
  }
};

inline std::string format_probability(double p) {
  std::ostringstream out;
  out << p;
  return out.str();
}
}  // namespace detail

/// Dropout<P> bound to the shape In of the layer before it.
template <double P, class In>
struct DropoutLayer : LayerDefaults {
  static_assert(Shape<In>, "ktnn::Dropout: bound to something that is not a ktnn shape");
  static_assert(P >= 0 && P <= 1,
                "ktnn::Dropout: P is the probability of zeroing a value, in [0, 1]");
  static constexpr int in_features = In::size;
  static constexpr int out_features = In::size;
  using in_shape = In;
  using out_shape = In;
  static constexpr bool preserves_shape = true;
  static constexpr double p = P;
  /// What a kept value is multiplied by in training mode (P = 1 zeroes all).
  static constexpr double scale = P < 1 ? 1 / (1 - P) : 0;
  static constexpr std::uint64_t threshold = detail::dropout_threshold(P);

  /// Whether value j of sample i is kept in training mode at `step`, for the
  /// layer at index `layer` of a model with seed `seed`.
  KOKKOS_INLINE_FUNCTION static bool kept(std::uint64_t seed, std::uint64_t step,
                                          std::uint64_t layer, std::size_t i, std::size_t j) {
    return detail::dropout_kept<threshold>(seed, detail::dropout_stream(layer, step),
                                           std::uint64_t(i) * in_features + j);
  }

  /// y = x * mask / (1 - P) in training mode, y = x in evaluation mode.
  template <class ExecSpace, class T, class Isa>
  static void forward(LayerContext<ExecSpace, T, Isa> const& ctx, Matrix<T const> x, Matrix<T> y) {
    mask(ctx, "ktnn::Dropout::forward", x, y);
  }

  /// dx = dy * mask / (1 - P) in training mode (the mask recomputed), dx = dy
  /// in evaluation mode.
  template <class ExecSpace, class T, class Isa>
  static void backward(LayerContext<ExecSpace, T, Isa> const& ctx, Matrix<T const>, Matrix<T const>,
                       Matrix<T> dy, Matrix<T> dx) {
    if (dx.empty()) return;
    mask(ctx, "ktnn::Dropout::backward", Matrix<T const>(dy), dx);
  }

  /// out = in with the layer's mask and scale (training) or out = in.
  template <class ExecSpace, class T, class Isa>
  static void mask(LayerContext<ExecSpace, T, Isa> const& ctx, char const* label,
                   Matrix<T const> in, Matrix<T> out) {
    ops::for_each_element(
        ctx.exec, label, std::size_t(in.rows), std::size_t(in_features),
        detail::DropoutMask<DropoutLayer, T>{.in = in,
                                             .out = out,
                                             .train = ctx.mode == Mode::train,
                                             .seed = ctx.seed,
                                             .stream = detail::dropout_stream(ctx.layer, ctx.step),
                                             .factor = T(scale)});
  }

  /// One sample, as inference runs it: evaluation mode, the identity.
  template <class Param, class S>
  KOKKOS_INLINE_FUNCTION static void apply(Param const*, Param const*, S const* x, S* y) {
    for (int j = 0; j < in_features; ++j) y[j] = x[j];
  }

  static std::string name() {
    return "Dropout<" + detail::format_probability(P) + ", " + In::name() + ">";
  }
};

/// Inverted dropout with probability P (e.g. Dropout<0.5>), its shape from
/// the layer before (see the file comment).
template <double P>
struct Dropout {
  static_assert(P >= 0 && P <= 1,
                "ktnn::Dropout: P is the probability of zeroing a value, in [0, 1]");
  static constexpr bool binds_shape = true;
  static constexpr bool preserves_shape = true;
  template <class In>
  using bind = DropoutLayer<P, In>;
};

}  // namespace ktnn

#pragma once
/// \file Residual<Layers...>: y = x + block(x), a skip connection around a
/// block of layers (ResNet's basic block without its final activation):
///
///   Sequential<Conv2D<Image<1, 28, 28>, 16, 3, ReLU, Padding<1>>,
///              Residual<Conv2D<Image<16, 28, 28>, 16, 3, ReLU, Padding<1>>,
///                       Conv2D<Image<16, 28, 28>, 16, 3, Padding<1>>>,
///              ReLU, ...>
///
/// The block is bound to the shape before it and must give that shape back
/// (bare activations, Dropout and BatchNorm2d inside it are bound like
/// anywhere else; pooling would change the shape). On images the block must
/// start with a layer that names its in_shape (Conv2D): the block is checked
/// as a Sequential of its layers, which takes its input shape from its first
/// layer, so a leading bare activation would make the next image layer a
/// compile error. Its layers' parameters, state and saved values are
/// blocks of the Residual's own, at the same compile-time offsets a
/// Sequential of them would have; the inner layers' outputs are kept in the
/// saved block for backward, and backward's two gradient buffers live at the
/// front of the workspace, the inner layers' workspace after them.
/// Parameters are named "<index>.block.<inner index>.<name>". Bound, the
/// layer is ResidualLayer<In, Layers...>.

#include <ktnn/core/matrix.hpp>
#include <ktnn/core/shape.hpp>
#include <ktnn/layers/layer.hpp>
#include <ktnn/layers/sequential.hpp>
#include <ktnn/ops/elementwise.hpp>

#include <Kokkos_Core.hpp>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

namespace ktnn {

namespace detail {
template <class Tuple>
struct sequential_of;
template <class... L>
struct sequential_of<std::tuple<L...>> {
  using type = Sequential<L...>;
};

/// y = x + block(x), element by element.
template <class T>
struct SkipSum {
  Matrix<T const> x;
  Matrix<T const> block;
  Matrix<T> y;
  KOKKOS_INLINE_FUNCTION void operator()(std::size_t i, std::size_t j) const {
    y(i, j) = x(i, j) + block(i, j);
  }
};

/// dx += dy, element by element: the skip connection's share of the input
/// gradient.
template <class T>
struct AddSkipGradient {
  Matrix<T> dy;
  Matrix<T> dx;
  KOKKOS_INLINE_FUNCTION void operator()(std::size_t i, std::size_t j) const {
    dx(i, j) += dy(i, j);
  }
};

}  // namespace detail

/// Residual<Layers...> bound to its input shape In.
template <class In, class... Layers>
struct ResidualLayer {
  using bound = detail::bind_layers<In, std::tuple<>, std::tuple<>, Layers...>;
  /// The block as a Sequential of the bound layers: protocol and neighbour
  /// checks, offsets, names, the per-sample call.
  using block = typename detail::sequential_of<typename bound::layers>::type;
  using block_out =
      std::tuple_element_t<std::tuple_size_v<typename bound::shapes> - 1, typename bound::shapes>;
  static_assert(std::is_same_v<block_out, In>,
                "ktnn::Residual: the block must give back the shape it takes (x + block(x))");
  static constexpr std::size_t depth = block::depth;
  template <std::size_t I>
  using layer = typename block::template layer<I>;

  using in_shape = In;
  using out_shape = In;
  static constexpr int in_features = In::size;
  static constexpr int out_features = In::size;
  static constexpr std::size_t param_count = block::param_count;
  static constexpr std::size_t state_count = block::state_count;

 private:
  template <std::size_t... I>
  static constexpr std::array<std::size_t, depth + 1> output_prefix(std::index_sequence<I...>) {
    std::array<std::size_t, depth + 1> out{};
    std::size_t const widths[] = {std::size_t(layer<I>::out_features)...};
    for (std::size_t i = 0; i < depth; ++i) out[i + 1] = out[i] + widths[i];
    return out;
  }

 public:
  /// Offsets, per sample, of each inner layer's output after the inner
  /// layers' own saved values.
  static constexpr std::array<std::size_t, depth + 1> output_offset =
      output_prefix(std::make_index_sequence<depth>{});
  static constexpr std::size_t saved_per_sample = block::saved_per_sample + output_offset[depth];

  static void describe(std::string const& prefix, std::size_t offset,
                       std::vector<ParameterInfo>& out) {
    for (auto info : block::describe()) {
      info.name = prefix + "block." + info.name;
      info.offset += offset;
      out.push_back(info);
    }
  }
  static void describe_state(std::string const& prefix, std::size_t offset,
                             std::vector<ParameterInfo>& out) {
    for (auto info : block::describe_state()) {
      info.name = prefix + "block." + info.name;
      info.offset += offset;
      out.push_back(info);
    }
  }

  template <class ExecSpace, class T>
  static void initialize(ExecSpace const& exec, T* params, T* state, std::size_t arena_offset,
                         std::uint64_t seed, Init init) {
    initialize_from<0>(exec, params, state, arena_offset, seed, init);
  }

  template <class ExecSpace>
  static std::size_t workspace_size(ExecSpace const& exec, int batch) {
    return gradient_buffers(batch) + inner_workspace<0>(exec, batch);
  }

  template <class ExecSpace, class T, class Isa>
  static void forward(LayerContext<ExecSpace, T, Isa> const& ctx, Matrix<T const> x, Matrix<T> y) {
    forward_from<0>(ctx, x);
    ops::for_each_element(ctx.exec, "ktnn::Residual::forward", std::size_t(x.rows),
                          std::size_t(out_features),
                          detail::SkipSum<T>{.x = x, .block = output<depth - 1>(ctx), .y = y});
  }

  template <class ExecSpace, class T, class Isa>
  static void backward(LayerContext<ExecSpace, T, Isa> const& ctx, Matrix<T const> x,
                       Matrix<T const>, Matrix<T> dy, Matrix<T> dx) {
    // dy goes to the block unchanged (inner layers may overwrite theirs), so
    // the block starts from a copy; dx = dy + the block's input gradient.
    int const batch = x.rows;
    Matrix<T> const g = buffer(ctx, 0, out_features);
    ops::for_each_element(ctx.exec, "ktnn::Residual::backward::copy", std::size_t(batch),
                          std::size_t(out_features), detail::CopyElements<T>{.from = dy, .to = g});
    backward_from<depth - 1>(ctx, x, g, dx);
    if (dx.empty()) return;
    ops::for_each_element(ctx.exec, "ktnn::Residual::backward::skip", std::size_t(batch),
                          std::size_t(in_features), detail::AddSkipGradient<T>{.dy = dy, .dx = dx});
  }

  template <class P, class S>
  KOKKOS_INLINE_FUNCTION static void apply(P const* params, P const* state, S const* x, S* y) {
    block::apply(params, state, x, y);
    for (int j = 0; j < out_features; ++j) y[j] += x[j];
  }

  static std::string name() { return "Residual<" + block::name() + ">"; }

 private:
  static constexpr int widest = block::max_width;
  static std::size_t gradient_buffers(int batch) { return 2 * std::size_t(batch) * widest; }

  template <std::size_t I, class ExecSpace>
  static std::size_t inner_workspace(ExecSpace const& exec, int batch) {
    std::size_t const here = layer<I>::workspace_size(exec, batch);
    if constexpr (I + 1 < depth)
      return std::max(here, inner_workspace<I + 1>(exec, batch));
    else
      return here;
  }

  template <std::size_t I, class ExecSpace, class T>
  static void initialize_from(ExecSpace const& exec, T* params, T* state, std::size_t arena_offset,
                              std::uint64_t seed, Init init) {
    layer<I>::initialize(exec, params + block::param_offset[I], state + block::state_offset[I],
                         arena_offset + block::param_offset[I], seed, init);
    if constexpr (I + 1 < depth)
      initialize_from<I + 1>(exec, params, state, arena_offset, seed, init);
  }

  /// Inner layer I's context: its blocks of this layer's arenas, the
  /// workspace after the gradient buffers, a layer index of its own.
  template <std::size_t I, class ExecSpace, class T, class Isa>
  static LayerContext<ExecSpace, T, Isa> inner(LayerContext<ExecSpace, T, Isa> const& ctx) {
    LayerContext<ExecSpace, T, Isa> c = ctx;
    std::size_t const batch = std::size_t(ctx.batch);
    c.parameters = ctx.parameters + block::param_offset[I];
    c.gradients = ctx.gradients + block::param_offset[I];
    c.state = ctx.state + block::state_offset[I];
    c.saved = ctx.saved + batch * block::saved_offset[I];
    std::size_t const skip = gradient_buffers(ctx.batch);
    c.workspace = {ctx.workspace.data + skip, ctx.workspace.size - skip};
    // Distinct from every top-level index and from other blocks' layers.
    c.layer = ((ctx.layer + 1) << 16) + I;
    return c;
  }

  template <std::size_t I, class ExecSpace, class T, class Isa>
  static Matrix<T> output(LayerContext<ExecSpace, T, Isa> const& ctx) {
    std::size_t const batch = std::size_t(ctx.batch);
    return row_major(ctx.saved + batch * (block::saved_per_sample + output_offset[I]), ctx.batch,
                     layer<I>::out_features);
  }

  template <class ExecSpace, class T, class Isa>
  static Matrix<T> buffer(LayerContext<ExecSpace, T, Isa> const& ctx, int which, int width) {
    return row_major(ctx.workspace.data + std::size_t(which) * ctx.batch * widest, ctx.batch,
                     width);
  }

  template <std::size_t I, class ExecSpace, class T, class Isa>
  static void forward_from(LayerContext<ExecSpace, T, Isa> const& ctx, Matrix<T const> x) {
    Matrix<T const> in = x;
    if constexpr (I > 0) in = output<I - 1>(ctx);
    layer<I>::forward(inner<I>(ctx), in, output<I>(ctx));
    if constexpr (I + 1 < depth) forward_from<I + 1>(ctx, x);
  }

  /// Backward of inner layer I from its output gradient g (in buffer I % 2
  /// of the two; the first layer's input gradient is the block's, dx).
  template <std::size_t I, class ExecSpace, class T, class Isa>
  static void backward_from(LayerContext<ExecSpace, T, Isa> const& ctx, Matrix<T const> x,
                            Matrix<T> g, Matrix<T> dx) {
    Matrix<T const> in = x;
    if constexpr (I > 0) in = output<I - 1>(ctx);
    Matrix<T> next = dx;
    if constexpr (I > 0) next = buffer(ctx, int((depth - I) % 2), layer<I>::in_features);
    layer<I>::backward(inner<I>(ctx), in, Matrix<T const>(output<I>(ctx)), g, next);
    if constexpr (I > 0) backward_from<I - 1>(ctx, x, next, dx);
  }
};

/// A skip connection around Layers: y = x + Layers(x) (see the file comment).
template <class... Layers>
struct Residual {
  static_assert(sizeof...(Layers) > 0, "ktnn::Residual: the block needs at least one layer");
  static constexpr bool binds_shape = true;
  template <class In>
  using bind = ResidualLayer<In, Layers...>;
};

}  // namespace ktnn

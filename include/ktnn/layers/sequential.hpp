#pragma once
/// \file Sequential<Layers...>: layers chained at compile time. Every layer is
/// checked against the protocol (layers/layer.hpp) and shapes between
/// neighbours; a bare activation takes its width from the layer before. The
/// architecture holds no memory: it gives the compile-time offsets of each
/// layer's block in the Model's parameter, state and saved arenas.

#include <ktnn/core/shape.hpp>
#include <ktnn/layers/activation.hpp>
#include <ktnn/layers/layer.hpp>

#include <Kokkos_Core.hpp>

#include <algorithm>
#include <array>
#include <cstddef>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

namespace ktnn {

namespace detail {
using layer_requirements::declares_in_shape;
using layer_requirements::declares_out_shape;

/// A type with either member of a ShapeBindingLayer: checked for both.
template <class L>
concept binds_a_shape =
    layer_requirements::declares_binds_shape<L> || layer_requirements::declares_bind<L>;

/// L's bind<Previous> once check_shape_binding_layer passed, else L itself
/// (the check's message then comes first).
template <class L, class Previous, bool Checked>
struct bound_to {
  using type = L;
};
template <class L, class Previous>
struct bound_to<L, Previous, true> {
  using type = typename L::template bind<Previous>;
};

/// The layer L stands for after a layer whose output shape is Previous: a
/// bare activation gets Previous's width, a shape-binding layer (pooling,
/// Flatten, ...) its bind<Previous>.
template <class L, class Previous>
struct bind_layer {
  using type = L;
};
template <ActivationFunction F, class Previous>
struct bind_layer<F, Previous> {
  using type = Activation<F, Previous::size>;
};
template <binds_a_shape L, class Previous>
struct bind_layer<L, Previous> {
  using type = typename bound_to<L, Previous, check_shape_binding_layer<L>()>::type;
};

/// The shape of one sample after the bound layer L, whose input has shape In.
template <class L, class In>
struct output_shape {
  using type = Features<L::out_features>;
};
template <class L, class In>
  requires declares_out_shape<L>
struct output_shape<L, In> {
  using type = typename L::out_shape;
};
template <class L, class In>
  requires(!declares_out_shape<L> && ShapePreservingLayer<L>)
struct output_shape<L, In> {
  using type = In;
};

/// The shape a layer that comes first takes in.
template <class L>
struct input_shape {
  using type = Features<L::in_features>;
};
template <class L>
  requires declares_in_shape<L>
struct input_shape<L> {
  using type = typename L::in_shape;
};

/// The protocol (check_layer), and the shapes where L declares one.
template <class L>
constexpr bool check_sequential_layer() {
  if constexpr (declares_in_shape<L> || declares_out_shape<L>)
    return check_layer<L>() && check_shaped_layer<L>();
  else
    return check_layer<L>();
}

template <class Previous, class Done, class Shapes, class... Rest>
struct bind_layers;
template <class Previous, class... Done, class... Shapes>
struct bind_layers<Previous, std::tuple<Done...>, std::tuple<Shapes...>> {
  using layers = std::tuple<Done...>;
  using shapes = std::tuple<Shapes...>;
};
template <class Previous, class... Done, class... Shapes, class L, class... Rest>
struct bind_layers<Previous, std::tuple<Done...>, std::tuple<Shapes...>, L, Rest...> {
  using bound = typename bind_layer<L, Previous>::type;
  using out = typename output_shape<bound, Previous>::type;
  using next = bind_layers<out, std::tuple<Done..., bound>, std::tuple<Shapes..., out>, Rest...>;
  using layers = typename next::layers;
  using shapes = typename next::shapes;
};

}  // namespace detail

/// The width check between two neighbours of a Sequential, instantiated for
/// every pair: when the sizes differ, the compiler's error names this
/// template with both layers (and so both sizes).
template <class Left, class Right>
struct SequentialNeighbours {
  static_assert(Left::out_features == Right::in_features,
                "ktnn::Sequential: layer shape mismatch: the out_features of the left layer "
                "must equal the in_features of the right layer (both are named in "
                "'SequentialNeighbours<Left, Right>' above)");
  static constexpr bool ok = true;
};

/// The image-shape checks between two neighbours of a Sequential (LeftOut is
/// the left layer's output shape), named with both layers in the error.
template <class Left, class Right, class LeftOut>
struct SequentialImageNeighbours {
  static constexpr bool takes_image =
      detail::declares_in_shape<Right> || ShapePreservingLayer<Right>;
  static_assert(takes_image || !LeftOut::is_image,
                "ktnn::Sequential: an image-shaped output feeds a layer that takes vectors: put "
                "ktnn::Flatten between them (both are named in "
                "'SequentialImageNeighbours<Left, Right, LeftOut>' above)");
  static constexpr bool ok = takes_image || !LeftOut::is_image;
};
template <class Left, class Right, class LeftOut>
  requires detail::declares_in_shape<Right>
struct SequentialImageNeighbours<Left, Right, LeftOut> {
  static_assert(std::is_same_v<typename Right::in_shape, LeftOut>,
                "ktnn::Sequential: image shape mismatch: the right layer's in_shape must be the "
                "left layer's output shape (both layers and the left one's output are named in "
                "'SequentialImageNeighbours<Left, Right, LeftOut>' above)");
  static constexpr bool ok = std::is_same_v<typename Right::in_shape, LeftOut>;
};

namespace detail {
/// Both checks for one pair; the image check first, whose message is the
/// more precise one.
template <class Left, class Right, class LeftOut>
constexpr bool neighbours_fit() {
  if constexpr (!SequentialImageNeighbours<Left, Right, LeftOut>::ok)
    return false;
  else
    return SequentialNeighbours<Left, Right>::ok;
}
}  // namespace detail

/// Layers applied in order.
template <class First, class... Rest>
struct Sequential {
  static_assert(!ActivationFunction<First>,
                "ktnn::Sequential: the first layer must fix the input width; an activation "
                "cannot come first");
  static_assert(!detail::binds_a_shape<First>,
                "ktnn::Sequential: the first layer must fix the input shape; a layer that takes "
                "its shape from the layer before (pooling, Flatten, ...) cannot come first");

 private:
  using first_out =
      typename detail::output_shape<First, typename detail::input_shape<First>::type>::type;
  using bound = detail::bind_layers<first_out, std::tuple<First>, std::tuple<first_out>, Rest...>;

 public:
  using layers = typename bound::layers;
  /// The shape of one sample after each layer (Features<N> or Image<C, H, W>).
  using shapes = typename bound::shapes;
  /// The shape of one sample going in and coming out.
  using in_shape = typename detail::input_shape<First>::type;
  using out_shape = std::tuple_element_t<std::tuple_size_v<shapes> - 1, shapes>;
  static constexpr std::size_t depth = std::tuple_size_v<layers>;
  template <std::size_t I>
  using layer = std::tuple_element_t<I, layers>;

 private:
  template <std::size_t... I>
  static constexpr bool all_layers(std::index_sequence<I...>) {
    return (detail::check_sequential_layer<layer<I>>() && ...);
  }
  static_assert(all_layers(std::make_index_sequence<depth>{}),
                "ktnn::Sequential: a layer does not meet the ktnn::Layer protocol (see above)");
  template <std::size_t... I>
  static constexpr bool neighbours_fit(std::index_sequence<I...>) {
    return (detail::neighbours_fit<layer<I>, layer<I + 1>, std::tuple_element_t<I, shapes>>() &&
            ... && true);
  }
  static_assert(neighbours_fit(std::make_index_sequence<depth - 1>{}));

  /// Prefix sums of one count per layer; the last entry is the total.
  static constexpr std::array<std::size_t, depth + 1> prefix(
      std::array<std::size_t, depth> counts) {
    std::array<std::size_t, depth + 1> out{};
    for (std::size_t i = 0; i < depth; ++i) out[i + 1] = out[i] + counts[i];
    return out;
  }
  using all = std::make_index_sequence<depth>;
  // Plain static functions rather than lambdas in the initializers below:
  // the form nvcc has compiled here before.
  template <std::size_t... I>
  static constexpr std::array<std::size_t, depth + 1> param_count_prefix(
      std::index_sequence<I...>) {
    return prefix({layer<I>::param_count...});
  }
  template <std::size_t... I>
  static constexpr std::array<std::size_t, depth + 1> state_count_prefix(
      std::index_sequence<I...>) {
    return prefix({layer<I>::state_count...});
  }
  template <std::size_t... I>
  static constexpr std::array<std::size_t, depth + 1> saved_per_sample_prefix(
      std::index_sequence<I...>) {
    return prefix({layer<I>::saved_per_sample...});
  }
  template <std::size_t... I>
  static constexpr std::array<std::size_t, depth + 1> torch_index_prefix(
      std::index_sequence<I...>) {
    return prefix({torch_modules_of<layer<I>>...});
  }
  template <std::size_t... I>
  static constexpr int widest(std::index_sequence<I...>) {
    return std::max({layer<I>::out_features...});
  }

 public:
  static constexpr int in_features = First::in_features;
  static constexpr int out_features = layer<depth - 1>::out_features;
  /// Offset of each layer's parameters in the arena; the last entry is the total.
  static constexpr std::array<std::size_t, depth + 1> param_offset = param_count_prefix(all{});
  /// Offset of each layer's state in the state arena.
  static constexpr std::array<std::size_t, depth + 1> state_offset = state_count_prefix(all{});
  /// Offset of each layer's saved values within one sample's saved row.
  static constexpr std::array<std::size_t, depth + 1> saved_offset = saved_per_sample_prefix(all{});
  static constexpr std::size_t param_count = param_offset[depth];
  static constexpr std::size_t state_count = state_offset[depth];
  static constexpr std::size_t saved_per_sample = saved_offset[depth];
  /// Layer I's offsets as constants (device code may not call the array's
  /// host-only operator[]).
  template <std::size_t I>
  static constexpr std::size_t offset_of = param_offset[I];
  template <std::size_t I>
  static constexpr std::size_t state_offset_of = state_offset[I];
  /// The widest layer output (the per-sample path's buffer size).
  static constexpr int max_width = widest(all{});
  /// Each layer's index in the equivalent torch.nn.Sequential, where a fused
  /// activation is a module of its own: the prefix of its tensors' names.
  static constexpr std::array<std::size_t, depth + 1> torch_index = torch_index_prefix(all{});
  /// Modules of the equivalent torch.nn.Sequential.
  static constexpr std::size_t torch_modules = torch_index[depth];

  /// Parameter names as the equivalent torch.nn.Sequential's state_dict has
  /// them: Sequential<Dense<784, 256, ReLU>, Dense<256, 10>> is Linear, ReLU,
  /// Linear, so "0.weight", "0.bias", "2.weight", "2.bias".
  static std::vector<ParameterInfo> describe() {
    std::vector<ParameterInfo> out;
    describe_from<0>(out, false);
    return out;
  }
  /// State (buffer) names, as PyTorch names a module's buffers.
  static std::vector<ParameterInfo> describe_state() {
    std::vector<ParameterInfo> out;
    describe_from<0>(out, true);
    return out;
  }

  /// One sample through every layer: y[out_features] = f(x[in_features]).
  /// Callable inside a user's kernel; no allocation (two stack buffers of
  /// max_width values).
  template <class P, class S>
  KOKKOS_INLINE_FUNCTION static void apply(P const* params, P const* state, S const* x, S* y) {
    if constexpr (depth == 1) {
      layer<0>::apply(params, state, x, y);
    } else {
      S buffers[2][max_width];
      apply_from<0>(params, state, x, buffers, y);
    }
  }

  static std::string name() {
    std::string out = "Sequential<";
    name_from<0>(out);
    return out + ">";
  }

 private:
  template <std::size_t I>
  static void describe_from(std::vector<ParameterInfo>& out, bool state) {
    if (state)
      layer<I>::describe_state(std::to_string(torch_index[I]) + ".", state_offset[I], out);
    else
      layer<I>::describe(std::to_string(torch_index[I]) + ".", param_offset[I], out);
    if constexpr (I + 1 < depth) describe_from<I + 1>(out, state);
  }
  template <std::size_t I>
  static void name_from(std::string& out) {
    out += layer<I>::name();
    if constexpr (I + 1 < depth) {
      out += ", ";
      name_from<I + 1>(out);
    }
  }
  template <std::size_t I, class P, class S>
  KOKKOS_INLINE_FUNCTION static void apply_from(P const* params, P const* state, S const* in,
                                                S (*buffers)[max_width], S* y) {
    if constexpr (I + 1 == depth) {
      layer<I>::apply(params + offset_of<I>, state + state_offset_of<I>, in, y);
    } else {
      S* out = buffers[I % 2];
      layer<I>::apply(params + offset_of<I>, state + state_offset_of<I>, in, out);
      apply_from<I + 1>(params, state, out, buffers, y);
    }
  }
};

}  // namespace ktnn

#pragma once
/// \file The layer protocol: what a type needs to be a layer of a Sequential,
/// the context a Model hands each layer, and the checks that tell a layer's
/// author exactly which requirement is missing.
///
/// A layer is a type with static members only; the Model owns all memory in
/// three arenas with compile-time offsets (parameters and their gradients,
/// state, saved values per sample) plus a shared workspace, and hands each
/// layer its part of them through a LayerContext.
///
///   in_features, out_features      widths of one sample in and out
///   param_count                    trainable values (gradients: as many)
///   state_count                    non-trainable values (running statistics,
///                                  standardisation), never touched by an
///                                  optimizer, named like PyTorch buffers
///   saved_per_sample               values forward keeps per sample for backward
///   name()                         for messages
///   describe(prefix, offset, out)  parameter names and shapes (ParameterInfo)
///   describe_state(prefix, offset, out)   state names and shapes
///   initialize(exec, params, state, arena_offset, seed, init)
///   workspace_size(exec, batch)    scratch elements forward/backward may use
///   forward(ctx, x, y)             y = f(x) for a batch (Matrix<T const> x, Matrix<T> y)
///   backward(ctx, x, y, dy, dx)    gradients of the parameters (by ctx.accumulate)
///                                  and dx (unless empty) from dy (which it may
///                                  overwrite)
///   apply(params, state, x, y)     one sample, callable in device code; the value
///                                  type may differ from the parameter type
///
/// LayerDefaults supplies the members a simple layer does not need.
///
/// Optional members, each family a concept below (with a check_* that names
/// the member missing where a layer can have part of a family):
///
///   forward_taylor<K>(ctx, x, y)   Taylor mode over K rows per sample (value,
///   backward_taylor<K>(ctx, x, y, dy, dx)   one derivative per input,
///                                  Laplacian), which ktnn::InputDerivatives
///                                  runs (TaylorLayer, check_taylor_layer);
///   taylor_saved_per_row           values per Taylor row forward_taylor keeps
///                                  for backward_taylor (default 0)
///   binds_shape = true, bind<Shape>   a layer template that takes its shape
///                                  from the layer before: Sequential puts
///                                  bind<that layer's output shape> in its place
///                                  (ShapeBindingLayer, check_shape_binding_layer)
///   in_shape, out_shape            one sample's shapes in and out (Features<N>
///                                  or Image<C, H, W>), checked between
///                                  neighbours (ShapedLayer, check_shaped_layer)
///   preserves_shape = true         element-wise: the shape before passes
///                                  through (ShapePreservingLayer)
///   activation, backward_fused<Below, DyIsDz>(ctx, x, y, dy, dx)
///                                  a layer whose output is activation(z) and
///                                  whose backward can start from dL/dz and
///                                  multiply its dx by the derivative of the
///                                  layer below's activation Below: the runner
///                                  chains two such neighbours so the lower
///                                  one needs no activation pass
///                                  (ChainedBackwardLayer)
///   torch_modules                  modules of the equivalent torch.nn.Sequential
///                                  the layer stands for (default 1; a Dense
///                                  with a fused ReLU is two, Linear then ReLU):
///                                  Sequential numbers its tensors by it, so names
///                                  match PyTorch's state_dict (TorchModuleCount)

#include <ktnn/core/matrix.hpp>
#include <ktnn/core/shape.hpp>
#include <ktnn/layers/activation_functions.hpp>
#include <ktnn/layers/init.hpp>
#include <ktnn/ops/gemm.hpp>

#include <Kokkos_Core.hpp>

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace ktnn {

/// Whether backward() adds to the gradient arena or writes over it.
enum class Accumulate { no, yes };

/// Training mode (dropout active, batch statistics) or evaluation mode.
enum class Mode { train, evaluate };

/// Name, offset and shape of one tensor in a model's parameter or state arena.
struct ParameterInfo {
  std::string name;  ///< as PyTorch's state_dict names it, e.g. "0.weight"
  std::size_t offset;
  std::vector<std::size_t> shape;
  std::size_t size() const {
    std::size_t n = 1;
    for (auto e : shape) n *= e;
    return n;
  }
};

/// What a Model hands one layer for one batched forward or backward call.
/// Pointers are this layer's own blocks of the model's arenas.
/// \tparam Isa the host GEMM tile (part of the type: see ops::NativeIsa).
template <class ExecSpace, class T, class Isa = ops::NativeIsa>
struct LayerContext {
  using execution_space = ExecSpace;
  using value_type = T;
  using isa = Isa;

  ExecSpace exec;
  T const* parameters = nullptr;
  T* gradients = nullptr;  ///< written by backward only
  T* state = nullptr;      ///< non-trainable buffers
  /// batch rows of saved_per_sample values (row-major): what forward keeps
  /// for backward. Valid from a forward until the next forward.
  T* saved = nullptr;
  ops::Workspace<T> workspace;  ///< shared by all layers, valid during the call
  Mode mode = Mode::train;
  std::uint64_t seed = 0;  ///< the model's seed (counter-based randomness)
  std::uint64_t step = 0;  ///< forward passes in training mode before this one
  /// The layer's index in its Sequential: with seed and step, it keys the
  /// layer's counter-based randomness, so two dropout layers of one model
  /// draw different masks.
  std::uint64_t layer = 0;
  Accumulate accumulate = Accumulate::yes;
  int batch = 0;

  /// The saved block as a batch x Width row-major matrix.
  template <std::size_t Width>
  Matrix<T> saved_rows() const {
    return row_major(saved, batch, int(Width));
  }
  /// 1 when backward adds to the gradients, 0 when it overwrites them.
  T gradient_beta() const { return accumulate == Accumulate::yes ? T(1) : T(0); }
};

/// The members a layer without parameters, state, saved values or workspace
/// can leave out; derive from it and declare the rest.
struct LayerDefaults {
  static constexpr std::size_t param_count = 0;
  static constexpr std::size_t state_count = 0;
  static constexpr std::size_t saved_per_sample = 0;
  static void describe(std::string const&, std::size_t, std::vector<ParameterInfo>&) {}
  static void describe_state(std::string const&, std::size_t, std::vector<ParameterInfo>&) {}
  template <class ExecSpace, class T>
  static void initialize(ExecSpace const&, T*, T*, std::size_t, std::uint64_t, Init) {}
  template <class ExecSpace>
  static std::size_t workspace_size(ExecSpace const&, int) {
    return 0;
  }
};

namespace detail {
/// to(i, j) = from(i, j): the element kernel of layers that pass values
/// through (Flatten, a Residual's copy of its output gradient).
template <class T>
struct CopyElements {
  Matrix<T const> from;
  Matrix<T> to;
  KOKKOS_INLINE_FUNCTION void operator()(std::size_t i, std::size_t j) const {
    to(i, j) = from(i, j);
  }
};

/// Kernel `Tag` of a functor that has several (an operator() per tag), as a
/// callable of the indices alone: what ops::for_each_element and other
/// callers of a plain body call.
template <class Tag, class Kernels>
struct Tagged {
  Kernels kernels;
  template <class... Index>
  KOKKOS_INLINE_FUNCTION auto operator()(Index const&... index) const {
    return kernels(Tag{}, index...);
  }
};
template <class Tag, class Kernels>
Tagged<Tag, Kernels> tagged(Kernels const& kernels) {
  return {kernels};
}
}  // namespace detail

/// One requirement of the layer protocol each, so check_layer can say which
/// is missing. Signatures are probed with a float context on the host space.
namespace detail::layer_requirements {
using Probe = LayerContext<Kokkos::DefaultHostExecutionSpace, float>;

template <class L>
concept widths = requires {
  { L::in_features } -> std::convertible_to<int>;
  { L::out_features } -> std::convertible_to<int>;
};
template <class L>
concept counts = requires {
  { L::param_count } -> std::convertible_to<std::size_t>;
  { L::state_count } -> std::convertible_to<std::size_t>;
  { L::saved_per_sample } -> std::convertible_to<std::size_t>;
};
template <class L>
concept named = requires {
  { L::name() } -> std::convertible_to<std::string>;
};
template <class L>
concept described = requires(std::string const& prefix, std::vector<ParameterInfo>& out) {
  L::describe(prefix, std::size_t(0), out);
  L::describe_state(prefix, std::size_t(0), out);
};
template <class L>
concept initializable = requires(float* p) {
  L::initialize(Kokkos::DefaultHostExecutionSpace{}, p, p, std::size_t(0), std::uint64_t(0),
                Init::Auto);
};
template <class L>
concept sized_workspace = requires {
  { L::workspace_size(Kokkos::DefaultHostExecutionSpace{}, 1) } -> std::convertible_to<std::size_t>;
};
template <class L>
concept forward_pass =
    requires(Probe const& ctx, Matrix<float const> x, Matrix<float> y) { L::forward(ctx, x, y); };
template <class L>
concept backward_pass = requires(Probe const& ctx, Matrix<float const> x, Matrix<float> dy) {
  L::backward(ctx, x, x, dy, dy);
};
template <class L>
concept per_sample = requires(float const* p, float const* x, float* y) { L::apply(p, p, x, y); };

// The optional members, probed with K = 3 Taylor rows.
template <class L>
concept forward_taylor_pass = requires(Probe const& ctx, Matrix<float const> x, Matrix<float> y) {
  L::template forward_taylor<3>(ctx, x, y);
};
template <class L>
concept backward_taylor_pass = requires(Probe const& ctx, Matrix<float const> x, Matrix<float> y) {
  L::template backward_taylor<3>(ctx, x, x, y, y);
};
template <class L>
concept backward_fused_pass = requires(Probe const& ctx, Matrix<float const> x, Matrix<float> dy) {
  typename L::activation;
  L::template backward_fused<Identity, true>(ctx, x, x, dy, dy);
};
template <class L>
concept declares_taylor_saved = requires {
  { L::taylor_saved_per_row } -> std::convertible_to<std::size_t>;
};
template <class L>
concept declares_binds_shape = requires { L::binds_shape; };
template <class L>
concept binds_shape = requires { requires bool(L::binds_shape); };
/// Takes a member template of one shape without instantiating it (a bound
/// layer may refuse the probe's shape with a static_assert).
template <template <class> class Bind>
struct shape_template {};
template <class L>
concept declares_bind = requires { typename shape_template<L::template bind>; };
template <class L>
concept declares_in_shape = requires { typename L::in_shape; };
template <class L>
concept declares_out_shape = requires { typename L::out_shape; };
template <class L>
concept shapes_are_shapes = Shape<typename L::in_shape> && Shape<typename L::out_shape>;
template <class L>
concept shapes_fit_widths =
    L::in_shape::size == L::in_features && L::out_shape::size == L::out_features;
}  // namespace detail::layer_requirements

/// A type that can be a layer of a Sequential (see the file comment).
template <class L>
concept Layer =
    detail::layer_requirements::widths<L> && detail::layer_requirements::counts<L> &&
    detail::layer_requirements::named<L> && detail::layer_requirements::described<L> &&
    detail::layer_requirements::initializable<L> &&
    detail::layer_requirements::sized_workspace<L> && detail::layer_requirements::forward_pass<L> &&
    detail::layer_requirements::backward_pass<L> && detail::layer_requirements::per_sample<L>;

/// Checks the protocol one requirement at a time, so the compiler's first
/// error says which member is missing (and names L in its instantiation).
template <class L>
constexpr bool check_layer() {
  namespace r = detail::layer_requirements;
  static_assert(r::widths<L>,
                "ktnn::Layer: missing `static constexpr int in_features` and `out_features`");
  static_assert(r::counts<L>,
                "ktnn::Layer: missing `static constexpr std::size_t param_count`, `state_count` "
                "or `saved_per_sample` (derive from ktnn::LayerDefaults for zeros)");
  static_assert(r::named<L>, "ktnn::Layer: missing `static std::string name()`");
  static_assert(r::described<L>,
                "ktnn::Layer: missing `static void describe(prefix, offset, "
                "std::vector<ParameterInfo>&)` or `describe_state(...)` (ktnn::LayerDefaults "
                "has empty ones)");
  static_assert(r::initializable<L>,
                "ktnn::Layer: missing `template <class ExecSpace, class T> static void "
                "initialize(ExecSpace const&, T* params, T* state, std::size_t arena_offset, "
                "std::uint64_t seed, ktnn::Init)`");
  static_assert(r::sized_workspace<L>,
                "ktnn::Layer: missing `template <class ExecSpace> static std::size_t "
                "workspace_size(ExecSpace const&, int batch)`");
  static_assert(r::forward_pass<L>,
                "ktnn::Layer: missing `static void forward(LayerContext<ExecSpace, T, Isa> const&, "
                "Matrix<T const> x, Matrix<T> y)`");
  static_assert(r::backward_pass<L>,
                "ktnn::Layer: missing `static void backward(LayerContext<ExecSpace, T, Isa> "
                "const&, Matrix<T const> x, Matrix<T const> y, Matrix<T> dy, Matrix<T> dx)`");
  static_assert(r::per_sample<L>,
                "ktnn::Layer: missing `template <class P, class S> KOKKOS_FUNCTION static void "
                "apply(P const* params, P const* state, S const* x, S* y)`");
  if constexpr (Layer<L>) {
    static_assert(L::in_features > 0 && L::out_features > 0,
                  "ktnn::Layer: in_features and out_features must be positive");
  }
  return Layer<L>;
}

/// A layer with Taylor mode (see the file comment): what ktnn::InputDerivatives
/// needs of every layer.
template <class L>
concept TaylorLayer = Layer<L> && detail::layer_requirements::forward_taylor_pass<L> &&
                      detail::layer_requirements::backward_taylor_pass<L>;

/// Checks the Taylor members one at a time (check_layer checks the rest).
template <class L>
constexpr bool check_taylor_layer() {
  namespace r = detail::layer_requirements;
  static_assert(r::forward_taylor_pass<L>,
                "ktnn::TaylorLayer: missing `template <int K, class ExecSpace, class T, class Isa> "
                "static void forward_taylor(LayerContext<ExecSpace, T, Isa> const&, Matrix<T "
                "const> x, Matrix<T> y)` (input derivatives run every layer in Taylor mode)");
  static_assert(r::backward_taylor_pass<L>,
                "ktnn::TaylorLayer: missing `template <int K, class ExecSpace, class T, class Isa> "
                "static void backward_taylor(LayerContext<ExecSpace, T, Isa> const&, Matrix<T "
                "const> x, Matrix<T const> y, Matrix<T> dy, Matrix<T> dx)` (input derivatives run "
                "every layer in Taylor mode)");
  return r::forward_taylor_pass<L> && r::backward_taylor_pass<L>;
}

/// Values per Taylor row L's forward_taylor keeps for backward_taylor.
template <class L>
inline constexpr std::size_t taylor_saved_per_row_of = 0;
template <detail::layer_requirements::declares_taylor_saved L>
inline constexpr std::size_t taylor_saved_per_row_of<L> = L::taylor_saved_per_row;

/// A layer template that takes its shape from the layer before (see the
/// file comment): not a layer itself, bind<Shape> is.
template <class L>
concept ShapeBindingLayer =
    detail::layer_requirements::binds_shape<L> && detail::layer_requirements::declares_bind<L>;

/// Checks a type that declares either member of ShapeBindingLayer for both.
template <class L>
constexpr bool check_shape_binding_layer() {
  namespace r = detail::layer_requirements;
  static_assert(r::binds_shape<L>,
                "ktnn::ShapeBindingLayer: missing `static constexpr bool binds_shape = true`");
  static_assert(r::declares_bind<L>,
                "ktnn::ShapeBindingLayer: missing `template <class Shape> using bind = ...` (the "
                "layer it stands for after a layer whose output has shape Shape)");
  return ShapeBindingLayer<L>;
}

/// A layer that declares the shapes of one sample in and out.
template <class L>
concept ShapedLayer = detail::layer_requirements::declares_in_shape<L> &&
                      detail::layer_requirements::declares_out_shape<L> &&
                      detail::layer_requirements::shapes_are_shapes<L> &&
                      detail::layer_requirements::shapes_fit_widths<L>;

/// Checks a layer that declares either shape for both, and both against its
/// widths.
template <class L>
constexpr bool check_shaped_layer() {
  namespace r = detail::layer_requirements;
  static_assert(r::declares_in_shape<L>,
                "ktnn::ShapedLayer: missing `using in_shape = ...` (a ktnn::Features<N> or "
                "ktnn::Image<C, H, W>; a layer that declares out_shape declares both)");
  static_assert(r::declares_out_shape<L>,
                "ktnn::ShapedLayer: missing `using out_shape = ...` (a ktnn::Features<N> or "
                "ktnn::Image<C, H, W>; a layer that declares in_shape declares both)");
  if constexpr (r::declares_in_shape<L> && r::declares_out_shape<L>) {
    static_assert(r::shapes_are_shapes<L>,
                  "ktnn::ShapedLayer: in_shape and out_shape must be ktnn::Features<N> or "
                  "ktnn::Image<C, H, W>");
    if constexpr (r::shapes_are_shapes<L>)
      static_assert(r::shapes_fit_widths<L>,
                    "ktnn::ShapedLayer: in_shape::size must be in_features and out_shape::size "
                    "out_features");
  }
  return ShapedLayer<L>;
}

/// A layer whose backward the runner can chain with its neighbours' (see
/// backward_fused above; Dense is one).
template <class L>
concept ChainedBackwardLayer = Layer<L> && detail::layer_requirements::backward_fused_pass<L>;

/// An element-wise layer (or layer template): the shape before it passes through.
template <class L>
concept ShapePreservingLayer = requires { requires bool(L::preserves_shape); };

/// A layer that says how many modules of the equivalent torch.nn.Sequential
/// it stands for.
template <class L>
concept TorchModuleCount = requires {
  { L::torch_modules } -> std::convertible_to<std::size_t>;
};

/// Modules of the equivalent torch.nn.Sequential layer L stands for.
template <class L>
inline constexpr std::size_t torch_modules_of = 1;
template <TorchModuleCount L>
inline constexpr std::size_t torch_modules_of<L> = L::torch_modules;

}  // namespace ktnn

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
/// Optional: `static constexpr std::size_t torch_modules`, how many modules of
/// the equivalent torch.nn.Sequential the layer stands for (default 1; a
/// Dense with a fused ReLU is two, Linear then ReLU). Sequential numbers its
/// tensors by it, so names and indexes match PyTorch's state_dict.

#include <ktnn/core/matrix.hpp>
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

}  // namespace ktnn

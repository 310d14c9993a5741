#pragma once
/// \file LayerRunner: the one walk over a Sequential's layers that every
/// engine uses (Model's training passes, InputDerivatives' Taylor passes).
/// It owns the batch-sized memory of a walk (each layer's output rows, the
/// saved block, two backward buffers used in turn, the workspace shared by
/// all layers), builds each layer's LayerContext, and runs the layers
/// forward and backward, optionally checking every result for NaN and Inf.
///
/// What differs between engines is which pair of layer members a walk calls
/// and how much each layer saves per row: a Passes type (StandardPasses,
/// TaylorPasses<K>). How rows relate to samples is the engine's business: a
/// Model walks one row per sample, InputDerivatives K rows per point.

#include <ktnn/core/error.hpp>
#include <ktnn/core/matrix.hpp>
#include <ktnn/layers/layer.hpp>
#include <ktnn/ops/gemm.hpp>

#include <Kokkos_Core.hpp>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <type_traits>
#include <utility>

namespace ktnn {

/// The layers' ordinary passes: forward and backward, saved_per_sample
/// values saved per row.
struct StandardPasses {
  template <class L>
  static constexpr std::size_t saved_per_row = L::saved_per_sample;

  template <class L, class Context, class T>
  static void forward(Context const& ctx, Matrix<T const> x, Matrix<T> y) {
    L::forward(ctx, x, y);
  }
  template <class L, class Context, class T>
  static void backward(Context const& ctx, Matrix<T const> x, Matrix<T const> y, Matrix<T> dy,
                       Matrix<T> dx) {
    L::backward(ctx, x, y, dy, dx);
  }
};

/// The layers' Taylor passes over K rows per point (value, one derivative
/// per input, Laplacian: derivatives.hpp): forward_taylor<K> and
/// backward_taylor<K>, taylor_saved_per_row values saved per row.
template <int K>
struct TaylorPasses {
  template <class L>
  static constexpr std::size_t saved_per_row = taylor_saved_per_row_of<L>;

  template <class L, class Context, class T>
  static void forward(Context const& ctx, Matrix<T const> x, Matrix<T> y) {
    L::template forward_taylor<K>(ctx, x, y);
  }
  template <class L, class Context, class T>
  static void backward(Context const& ctx, Matrix<T const> x, Matrix<T const> y, Matrix<T> dy,
                       Matrix<T> dx) {
    L::template backward_taylor<K>(ctx, x, y, dy, dx);
  }
};

/// Whether layer I of `Architecture`, in a walk of `Passes`, applies the
/// activation derivative of layer I-1 in its input gradient: both chain
/// their backward (ChainedBackwardLayer), the standard passes, and layer
/// I-1's activation takes its derivative from its output alone (which is
/// layer I's input). Layer I-1 then starts its backward from dL/dz.
template <class Passes, class Architecture, std::size_t I>
constexpr bool hands_down_activation();

namespace detail {
/// The activation layer I's backward multiplies its input gradient by:
/// layer I-1's where it is handed down, Identity otherwise.
template <bool HandsDown, class Architecture, std::size_t I>
struct activation_below {
  using type = Identity;
};
template <class Architecture, std::size_t I>
struct activation_below<true, Architecture, I> {
  using type = typename Architecture::template layer<I - 1>::activation;
};
}  // namespace detail

template <class Passes, class Architecture, std::size_t I>
constexpr bool hands_down_activation() {
  if constexpr (I == 0 || I >= Architecture::depth || !std::is_same_v<Passes, StandardPasses>) {
    return false;
  } else {
    using Upper = typename Architecture::template layer<I>;
    using Lower = typename Architecture::template layer<I - 1>;
    if constexpr (ChainedBackwardLayer<Upper> && ChainedBackwardLayer<Lower>)
      return !Lower::activation::needs_input;
    else
      return false;
  }
}

/// What every layer of one walk shares: the model's arenas (each layer gets
/// its block of them) and the keys of its counter-based randomness.
template <class T>
struct RunArguments {
  T const* parameters = nullptr;
  T* gradients = nullptr;
  T* state = nullptr;
  Mode mode = Mode::train;
  std::uint64_t seed = 0;
  /// Forward passes in training mode before the one this walk belongs to:
  /// a backward walk passes its forward walk's value.
  std::uint64_t step = 0;
  /// After each layer, check its results for NaN and Inf and throw naming
  /// the layer (a reduction and a wait per layer: a debugging aid).
  bool check_finite = false;
};

namespace detail {
/// Counts the values of an array that are NaN or Inf.
template <class T>
struct CountNonFinite {
  T const* data;
  KOKKOS_FUNCTION void operator()(std::size_t i, std::size_t& count) const {
    if (!Kokkos::isfinite(data[i])) ++count;
  }
};
}  // namespace detail

/// The walk over the layers of `Architecture` with the members `Passes`
/// names, on ExecSpace, in scalar T, with the host GEMM tile Isa.
template <class Architecture, class Passes, class T, class ExecSpace, class Isa = ops::NativeIsa>
class LayerRunner {
 public:
  static constexpr std::size_t depth = Architecture::depth;
  using memory_space = typename ExecSpace::memory_space;
  using rows_view = Kokkos::View<T**, Kokkos::LayoutRight, memory_space>;
  using arena_type = Kokkos::View<T*, memory_space>;
  using context_type = LayerContext<ExecSpace, T, Isa>;
  template <std::size_t I>
  using layer = typename Architecture::template layer<I>;

  /// `owner` prefixes the labels of the allocations ("ktnn::Model").
  explicit LayerRunner(std::string owner) : owner_(std::move(owner)) {}

  /// Allocates the buffers for walks of up to `rows` rows; nothing when they
  /// fit already, so a walk of a size seen before allocates nothing.
  void reserve(ExecSpace const& exec, int rows) {
    if (rows <= capacity_) return;
    auto alloc = [&](char const* what, std::size_t n) {
      return arena_type(Kokkos::view_alloc(exec, Kokkos::WithoutInitializing, owner_ + what), n);
    };
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      ((outputs_[I] =
            rows_view(Kokkos::view_alloc(exec, Kokkos::WithoutInitializing, owner_ + "::output"),
                      rows, layer<I>::out_features)),
       ...);
    }(std::make_index_sequence<depth>{});
    for (auto& g : backward_)
      g = alloc("::backward_buffer", std::size_t(rows) * Architecture::max_width);
    saved_ = alloc("::saved", std::size_t(rows) * saved_offset[depth]);
    std::size_t const work = workspace_size(exec, rows);
    if (work > work_.extent(0)) work_ = alloc("::workspace", work);
    capacity_ = rows;
  }
  int capacity() const { return capacity_; }
  /// Rows of the last forward walk.
  int rows() const { return rows_; }

  /// Every layer forward over `input` (rows x in_features, any strides); the
  /// last layer's rows are output(). Reserve the rows first.
  void forward(ExecSpace const& exec, RunArguments<T> const& args, Matrix<T const> input) {
    if (input.rows > capacity_)
      detail::fail(owner_ + "::forward", input.rows, " rows, buffers for ", capacity_);
    rows_ = input.rows;
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      (forward_layer<I>(exec, args, input), ...);
    }(std::make_index_sequence<depth>{});
  }

  /// Every layer backward, last to first, from output_gradient() (which it
  /// overwrites): parameter gradients added to args.gradients or written
  /// over them (`accumulate`), and dL/d(input) into `input_gradient` unless
  /// it is empty. `input` is the forward walk's.
  void backward(ExecSpace const& exec, RunArguments<T> const& args, Matrix<T const> input,
                Matrix<T> input_gradient, Accumulate accumulate) {
    backward_layer<depth - 1>(exec, args, input, input_gradient, accumulate);
  }

  /// Layer I's output rows of the last forward walk.
  template <std::size_t I>
  Matrix<T> layer_output() const {
    return row_major(outputs_[I].data(), rows_, layer<I>::out_features);
  }
  /// The last layer's output buffer (capacity rows).
  rows_view const& output_buffer() const { return outputs_[depth - 1]; }
  /// Where dL/d(output) goes before backward(): rows x out_features.
  T* output_gradient_data() const { return backward_[(depth - 1) % 2].data(); }

  /// Whether `p` points into any buffer of this runner.
  bool holds(T const* p) const {
    bool inside = false;
    auto check = [&](T const* begin, std::size_t size) {
      inside = inside ||
               (std::less_equal<T const*>{}(begin, p) && std::less<T const*>{}(p, begin + size));
    };
    for (auto const& o : outputs_) check(o.data(), o.span());
    for (auto const& g : backward_) check(g.data(), g.span());
    check(saved_.data(), saved_.span());
    check(work_.data(), work_.span());
    return inside;
  }

 private:
  template <std::size_t... I>
  static constexpr std::array<std::size_t, depth + 1> saved_prefix(std::index_sequence<I...>) {
    std::array<std::size_t, depth> counts{Passes::template saved_per_row<layer<I>>...};
    std::array<std::size_t, depth + 1> out{};
    for (std::size_t i = 0; i < depth; ++i) out[i + 1] = out[i] + counts[i];
    return out;
  }
  /// Layer I's block of the saved buffer starts at rows * saved_offset[I].
  static constexpr std::array<std::size_t, depth + 1> saved_offset =
      saved_prefix(std::make_index_sequence<depth>{});

  static std::size_t workspace_size(ExecSpace const& exec, int rows) {
    std::size_t size = 0;
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      ((size = std::max(size, layer<I>::workspace_size(exec, rows))), ...);
    }(std::make_index_sequence<depth>{});
    return size;
  }

  template <std::size_t I>
  context_type context(ExecSpace const& exec, RunArguments<T> const& args,
                       Accumulate accumulate) const {
    return {.exec = exec,
            .parameters = args.parameters + Architecture::param_offset[I],
            .gradients = args.gradients + Architecture::param_offset[I],
            .state = args.state + Architecture::state_offset[I],
            .saved = saved_.data() + std::size_t(rows_) * saved_offset[I],
            .workspace = {work_.data(), work_.extent(0)},
            .mode = args.mode,
            .seed = args.seed,
            .step = args.step,
            .layer = I,
            .accumulate = accumulate,
            .batch = rows_};
  }

  template <std::size_t I>
  Matrix<T const> layer_input(Matrix<T const> input) const {
    if constexpr (I == 0)
      return input;
    else
      return layer_output<I - 1>();
  }

  template <std::size_t I>
  void forward_layer(ExecSpace const& exec, RunArguments<T> const& args, Matrix<T const> input) {
    using L = layer<I>;
    Passes::template forward<L>(context<I>(exec, args, Accumulate::yes), layer_input<I>(input),
                                layer_output<I>());
    if (args.check_finite)
      require_finite<I>(exec, "forward output", outputs_[I].data(),
                        std::size_t(rows_) * L::out_features);
  }

  template <std::size_t I>
  void backward_layer(ExecSpace const& exec, RunArguments<T> const& args, Matrix<T const> input,
                      Matrix<T> input_gradient, Accumulate accumulate) {
    using L = layer<I>;
    auto dy = row_major(backward_[I % 2].data(), rows_, L::out_features);
    Matrix<T> dx;
    if constexpr (I > 0)
      dx = row_major(backward_[(I + 1) % 2].data(), rows_, L::in_features);
    else
      dx = input_gradient;
    constexpr bool below = hands_down_activation<Passes, Architecture, I>();
    constexpr bool dy_is_dz = hands_down_activation<Passes, Architecture, I + 1>();
    if constexpr (below || dy_is_dz) {
      using Below = typename detail::activation_below<below, Architecture, I>::type;
      L::template backward_fused<Below, dy_is_dz>(context<I>(exec, args, accumulate),
                                                  layer_input<I>(input),
                                                  Matrix<T const>(layer_output<I>()), dy, dx);
    } else {
      Passes::template backward<L>(context<I>(exec, args, accumulate), layer_input<I>(input),
                                   Matrix<T const>(layer_output<I>()), dy, dx);
    }
    if (args.check_finite) {
      require_finite<I>(exec, "parameter gradient", args.gradients + Architecture::param_offset[I],
                        L::param_count);
      if (!dx.empty())
        require_finite<I>(exec, "input gradient", dx.data, std::size_t(rows_) * L::in_features);
    }
    if constexpr (I > 0) backward_layer<I - 1>(exec, args, input, input_gradient, accumulate);
  }

  /// Throws naming layer I when one of the n values at `data` is NaN or Inf.
  template <std::size_t I>
  static void require_finite(ExecSpace const& exec, char const* what, T const* data,
                             std::size_t n) {
    std::size_t bad = 0;
    Kokkos::parallel_reduce("ktnn::Model::check_finite", Kokkos::RangePolicy<ExecSpace>(exec, 0, n),
                            detail::CountNonFinite<T>{data}, bad);
    if (bad > 0)
      detail::fail("ktnn::Model::check_finite", what, " of layer ", I, " (", layer<I>::name(),
                   "): ", bad, " of ", n, " values are NaN or Inf");
  }

  std::string owner_;
  std::array<rows_view, depth> outputs_;
  std::array<arena_type, 2> backward_;
  arena_type saved_;
  arena_type work_;
  int capacity_ = 0;
  int rows_ = 0;
};

}  // namespace ktnn

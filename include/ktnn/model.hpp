#pragma once
/// \file Model<Architecture, T, ExecutionSpace>: an architecture's memory.
///
///   parameters and gradients  one contiguous arena each (an optimizer step is
///                             one kernel, an all-reduce one call, a
///                             checkpoint one blob)
///   state                     non-trainable buffers (standardisation,
///                             running statistics), one arena, never touched
///                             by an optimizer
///   saved                     what each layer's forward keeps for its
///                             backward, batch rows of the architecture's
///                             saved_per_sample values
///   outputs, workspace        each layer's output rows, two backward
///                             buffers, and scratch shared by all layers
///
/// Every offset into the arenas is a compile-time constant of the
/// architecture. Batch-sized memory is allocated when the batch grows past
/// what was reserved, never inside a step of a size seen before.

#include <ktnn/core/batch.hpp>
#include <ktnn/core/error.hpp>
#include <ktnn/core/matrix.hpp>
#include <ktnn/core/profiling.hpp>
#include <ktnn/core/tensor.hpp>
#include <ktnn/inference.hpp>
#include <ktnn/layers/init.hpp>
#include <ktnn/layers/layer.hpp>
#include <ktnn/layers/runner.hpp>
#include <ktnn/layers/sequential.hpp>
#include <ktnn/losses/loss.hpp>
#include <ktnn/ops/elementwise.hpp>
#include <ktnn/ops/gemm.hpp>
#include <ktnn/ops/space.hpp>

#include <Kokkos_Core.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace ktnn {

namespace detail {
/// dst(i, j) = src(i, j): any strides, dst's shape.
template <class S, class T>
struct CopyRows {
  Matrix<S const> src;
  Matrix<T> dst;
  KOKKOS_FUNCTION void operator()(std::size_t i, std::size_t j) const { dst(i, j) = T(src(i, j)); }
};
}  // namespace detail

/// \tparam Isa the host GEMM tile (see ops::NativeIsa); leave it defaulted.
template <class Architecture, class T = float, class ExecutionSpace = Kokkos::DefaultExecutionSpace,
          class Isa = ops::NativeIsa>
class Model {
 public:
  using architecture = Architecture;
  using value_type = T;
  using execution_space = ExecutionSpace;
  using memory_space = typename ExecutionSpace::memory_space;
  using isa = Isa;
  using arena_type = Kokkos::View<T*, memory_space>;
  /// A batch of rows, row-major, in the model's memory space.
  using batch_view = Kokkos::View<T**, Kokkos::LayoutRight, memory_space>;
  using context_type = LayerContext<ExecutionSpace, T, Isa>;
  /// The walk over the layers (layers/runner.hpp) that forward and backward run.
  using runner_type = LayerRunner<Architecture, StandardPasses, T, ExecutionSpace, Isa>;
  static constexpr int in_features = Architecture::in_features;
  static constexpr int out_features = Architecture::out_features;
  static constexpr std::size_t param_count = Architecture::param_count;
  static constexpr std::size_t state_count = Architecture::state_count;
  static constexpr std::size_t depth = Architecture::depth;

  /// Parameters initialized from `seed` (the same values on every backend and
  /// thread count), state at its layers' defaults, gradients zero.
  explicit Model(std::uint64_t seed = 0, Init init = Init::Auto,
                 ExecutionSpace const& exec = ExecutionSpace{})
      : exec_(exec),
        params_(Kokkos::view_alloc(exec, "ktnn::Model::parameters"), param_count),
        grads_(Kokkos::view_alloc(exec, "ktnn::Model::gradients"), param_count),
        state_(Kokkos::view_alloc(exec, "ktnn::Model::state"), state_count),
        loss_sums_(Kokkos::view_alloc(exec, "ktnn::Model::loss_sums")),
        index_(Architecture::describe()),
        state_index_(Architecture::describe_state()),
        seed_(seed) {
    initialize(seed, init);
  }
  /// On an execution space instance of the caller's (a stream, say).
  Model(std::uint64_t seed, ExecutionSpace const& exec) : Model(seed, Init::Auto, exec) {}

  /// Re-draws every parameter from `seed` and resets the state.
  void initialize(std::uint64_t seed, Init init = Init::Auto) {
    Kokkos::Profiling::ScopedRegion region("ktnn::Model::initialize");
    seed_ = seed;
    step_ = 0;
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      (Architecture::template layer<I>::initialize(exec_,
                                                   params_.data() + Architecture::param_offset[I],
                                                   state_.data() + Architecture::state_offset[I],
                                                   Architecture::param_offset[I], seed, init),
       ...);
    }(std::make_index_sequence<depth>{});
    zero_grad();
  }

  execution_space const& execution() const { return exec_; }
  arena_type const& parameters() const { return params_; }
  arena_type const& gradients() const { return grads_; }
  /// Non-trainable buffers of every layer (state_index() names them).
  arena_type const& state() const { return state_; }
  /// Name, offset and shape of every parameter tensor, in arena order.
  std::vector<ParameterInfo> const& parameter_index() const { return index_; }
  /// Name, offset and shape of every state tensor, in arena order.
  std::vector<ParameterInfo> const& state_index() const { return state_index_; }

  /// The parameter tensor called `name` (e.g. "0.weight"), flattened,
  /// sharing the arena's memory.
  arena_type parameter(std::string_view name) const {
    return Kokkos::subview(params_, range_of(index_, name, "ktnn::Model::parameter"));
  }
  arena_type gradient(std::string_view name) const {
    return Kokkos::subview(grads_, range_of(index_, name, "ktnn::Model::gradient"));
  }
  /// The state tensor called `name` (e.g. "0.mean").
  arena_type state(std::string_view name) const {
    return Kokkos::subview(state_, range_of(state_index_, name, "ktnn::Model::state"));
  }
  /// Layer I's block of the state arena.
  template <std::size_t I>
  arena_type layer_state() const {
    return Kokkos::subview(
        state_, std::make_pair(Architecture::state_offset[I], Architecture::state_offset[I + 1]));
  }

  /// Training mode (the default) or evaluation mode; layers that behave
  /// differently (dropout, batch statistics) read it from their context.
  void set_mode(Mode mode) { mode_ = mode; }
  Mode mode() const { return mode_; }
  std::uint64_t seed() const { return seed_; }

  /// A debugging aid, off by default: after each layer's forward pass its
  /// output, and after its backward pass its parameter gradients and input
  /// gradient, are checked for NaN and Inf; the first layer with one throws
  /// ktnn::Error naming it (index and type) and what went bad. It costs a
  /// reduction and a wait for the device per layer and pass.
  void set_check_finite(bool on) { check_finite_ = on; }
  bool check_finite() const { return check_finite_; }

  /// Forward passes run in training mode so far (the counter of layers'
  /// counter-based randomness).
  std::uint64_t steps() const { return step_; }
  /// Restores that count from a checkpoint, so the next training forward
  /// draws the masks it would have drawn in the run that wrote it.
  void set_steps(std::uint64_t steps) { step_ = steps; }
  /// Restores the seed of the layers' randomness from a checkpoint. Unlike
  /// initialize(seed), it redraws nothing: the parameters are as they are.
  void set_seed(std::uint64_t seed) { seed_ = seed; }

  void zero_grad() {
    ops::fill(exec_, "ktnn::Model::zero_grad", grads_.data(), grads_.extent(0), T(0));
  }

  /// Allocates the batch-sized memory for batches of up to `batch` samples.
  void reserve(int batch) {
    if (batch <= capacity_) return;
    Kokkos::Profiling::ScopedRegion region("ktnn::Model::reserve");
    runner_.reserve(exec_, batch);
    input_copy_ = batch_view(
        Kokkos::view_alloc(exec_, Kokkos::WithoutInitializing, "ktnn::Model::input_copy"), batch,
        in_features);
    capacity_ = batch;
  }

  /// Runs the batch `x` (a Tensor or a rank-2 View of `in_features` columns,
  /// of the model's scalar type, in any layout, in a memory space the
  /// execution space can reach) forward and returns the output rows. The
  /// model keeps a reference to `x` for backward(): change it only after.
  /// The returned rows are the model's: the next forward() overwrites them
  /// (forward may read them: a rollout y = f(y) copies its input first).
  template <class X>
  batch_view forward(X const& x) {
    auto const view =
        detail::checked_rows<T, in_features, ExecutionSpace>("ktnn::Model::forward", x);
    Kokkos::Profiling::ScopedRegion region("ktnn::Model::forward");
    int const batch = int(view.extent(0));
    reserve(std::max(batch, 1));  // an empty batch still needs the layers' workspace
    batch_ = batch;
    forward_step_ = step_;
    input_ = input_view(view);
    runner_.forward(exec_, arguments(), as_matrix(input_));
    if (mode_ == Mode::train) ++step_;
    backward_ready_ = true;
    return output();
  }

  /// The output of the last forward(), rows [0, batch).
  batch_view output() const {
    return Kokkos::subview(runner_.output_buffer(), std::make_pair(0, batch_), Kokkos::ALL);
  }
  int batch() const { return batch_; }

  /// Where a loss writes dL/d(output) for backward(): batch x out_features.
  batch_view output_gradient() const {
    return batch_view(runner_.output_gradient_data(), batch_, out_features);
  }

  /// Backpropagates output_gradient() (which it overwrites) into gradients():
  /// added to what is there (Accumulate::yes, as PyTorch; zero_grad() first),
  /// or written over it (Accumulate::no, which saves the zero_grad() pass).
  /// With `want_input_gradient`, also computes dL/dx (input_gradient()).
  void backward(bool want_input_gradient = false, Accumulate accumulate = Accumulate::yes) {
    if (!backward_ready_)
      detail::fail("ktnn::Model::backward",
                   "no forward() since the model was made; call forward first");
    Kokkos::Profiling::ScopedRegion region("ktnn::Model::backward");
    if (want_input_gradient && (input_grad_.extent(0) < std::size_t(capacity_)))
      input_grad_ = batch_view(Kokkos::view_alloc(exec_, "ktnn::Model::input_gradient"), capacity_,
                               in_features);
    Matrix<T> dx;
    if (want_input_gradient) dx = row_major(input_grad_.data(), batch_, in_features);
    runner_.backward(exec_, arguments(), as_matrix(input_), dx, accumulate);
    input_gradient_valid_ = want_input_gradient;
  }

  /// Copies `dy` (batch x out_features) to output_gradient(), then backward().
  template <class DY>
    requires Kokkos::is_view_v<DY>
  void backward(DY const& dy, bool want_input_gradient = false,
                Accumulate accumulate = Accumulate::yes) {
    static_assert(DY::rank() == 2, "ktnn::Model::backward: expected a rank-2 View");
    if (dy.extent(0) != std::size_t(batch_) || dy.extent(1) != std::size_t(out_features))
      detail::fail("ktnn::Model::backward", "output gradient is ", dy.extent(0), "x", dy.extent(1),
                   ", the last forward produced ", batch_, "x", out_features);
    copy_rows(exec_, "ktnn::Model::backward::copy_gradient",
              Matrix<typename DY::value_type const>(as_matrix(dy)), as_matrix(output_gradient()));
    backward(want_input_gradient, accumulate);
  }

  /// dL/dx of the last backward(true): batch x in_features.
  batch_view input_gradient() const {
    if (!input_gradient_valid_)
      detail::fail("ktnn::Model::input_gradient",
                   "the last backward() did not compute it; "
                   "call backward(true)");
    return Kokkos::subview(input_grad_, std::make_pair(0, batch_), Kokkos::ALL);
  }

  /// A device scalar a training step may reduce its loss into (train_step's
  /// default), so a step needs no allocation and no fence.
  Kokkos::View<LossSums, memory_space> const& loss_sums() const { return loss_sums_; }

  /// The per-sample forward pass for use in a user's kernel.
  Inference<Architecture, T, memory_space> inference() const { return {params_, state_}; }

 private:
  using input_type = Kokkos::View<T const**, Kokkos::LayoutStride, memory_space>;

  static std::pair<std::size_t, std::size_t> range_of(std::vector<ParameterInfo> const& index,
                                                      std::string_view name, char const* what) {
    for (auto const& p : index)
      if (p.name == name) return {p.offset, p.offset + p.size()};
    detail::fail(what, "no tensor named '", name, "' in ", Architecture::name());
  }

  /// The input as backward will read it: the caller's View itself, kept by
  /// reference count; a copy where its rows are not contiguous (the weight
  /// gradient reads them as a GEMM operand) or where it lies in the model's
  /// own buffers (a rollout y = f(y), or a gradient fed back), which forward
  /// and backward overwrite.
  template <class View>
  input_type input_view(View const& x) {
    auto const m = as_matrix(x);
    bool const aliases = runner_.holds(m.data) ||
                         (std::less_equal<T const*>{}(input_grad_.data(), m.data) &&
                          std::less<T const*>{}(m.data, input_grad_.data() + input_grad_.span()));
    if (m.col_stride == 1 && !aliases) return input_type(x);
    auto copy = Kokkos::subview(input_copy_, std::make_pair(0, batch_), Kokkos::ALL);
    copy_rows(exec_, "ktnn::Model::forward::copy_input", Matrix<T const>(m), as_matrix(copy));
    return input_type(copy);
  }

  /// dst = src, element by element (any strides; dst's shape).
  template <class S>
  static void copy_rows(ExecutionSpace const& exec, char const* label, Matrix<S const> src,
                        Matrix<T> dst) {
    ops::for_each_element(exec, label, std::size_t(dst.rows), std::size_t(dst.cols),
                          detail::CopyRows<S, T>{src, dst});
  }

  /// What every layer of a walk shares: the arenas, the mode and the keys of
  /// the layers' randomness (the step of the last forward, for backward too).
  RunArguments<T> arguments() const {
    return {.parameters = params_.data(),
            .gradients = grads_.data(),
            .state = state_.data(),
            .mode = mode_,
            .seed = seed_,
            .step = forward_step_,
            .check_finite = check_finite_};
  }

  execution_space exec_;
  arena_type params_;
  arena_type grads_;
  arena_type state_;
  Kokkos::View<LossSums, memory_space> loss_sums_;
  std::vector<ParameterInfo> index_;
  std::vector<ParameterInfo> state_index_;
  runner_type runner_{"ktnn::Model"};
  batch_view input_copy_;
  batch_view input_grad_;
  input_type input_;
  std::uint64_t seed_ = 0;
  std::uint64_t step_ = 0;
  std::uint64_t forward_step_ = 0;
  Mode mode_ = Mode::train;
  bool check_finite_ = false;
  int capacity_ = 0;
  int batch_ = 0;
  bool input_gradient_valid_ = false;
  bool backward_ready_ = false;
};

}  // namespace ktnn

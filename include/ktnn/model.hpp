#pragma once
/// \file Model<Architecture, T, ExecutionSpace>: the parameters of an
/// architecture in one contiguous arena, the gradients in another, and the
/// workspace of a batch.
///
/// The arenas are the unit of exchange: an optimizer step is one kernel over
/// them, an all-reduce is one call, a checkpoint is one blob. Workspace is
/// allocated when the batch grows past what was reserved, never inside a step
/// of a size seen before.

#include <ktnn/core/error.hpp>
#include <ktnn/core/profiling.hpp>
#include <ktnn/core/tensor.hpp>
#include <ktnn/detail/matrix.hpp>
#include <ktnn/layers/init.hpp>
#include <ktnn/layers/sequential.hpp>
#include <ktnn/ops/elementwise.hpp>
#include <ktnn/ops/gemm.hpp>
#include <ktnn/ops/space.hpp>

#include <Kokkos_Core.hpp>

#include <algorithm>
#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ktnn {

/// Whether backward() adds to the gradient arena or writes over it.
enum class Accumulate { no, yes };

/// A trained architecture's forward pass for one sample, for use inside a
/// user's own kernel: `net(x, y)` with x[in_features], y[out_features]. S may
/// differ from T (a dual number, say). Copy it into the kernel by value.
template <class Architecture, class T, class MemorySpace>
struct Inference {
  static constexpr int in_features = Architecture::in_features;
  static constexpr int out_features = Architecture::out_features;
  Kokkos::View<T const*, MemorySpace> parameters;

  template <class S>
  KOKKOS_INLINE_FUNCTION void operator()(S const* x, S* y) const {
    Architecture::apply(parameters.data(), x, y);
  }
};

template <class Architecture, class T = float, class ExecutionSpace = Kokkos::DefaultExecutionSpace>
class Model {
 public:
  using architecture = Architecture;
  using value_type = T;
  using execution_space = ExecutionSpace;
  using memory_space = typename ExecutionSpace::memory_space;
  using arena_type = Kokkos::View<T*, memory_space>;
  /// A batch of rows, row-major, in the model's memory space.
  using batch_view = Kokkos::View<T**, Kokkos::LayoutRight, memory_space>;
  static constexpr int in_features = Architecture::in_features;
  static constexpr int out_features = Architecture::out_features;
  static constexpr std::size_t param_count = Architecture::param_count;
  static constexpr std::size_t depth = Architecture::depth;

  /// Parameters initialized from `seed` (the same values on every backend and
  /// thread count); gradients zero.
  explicit Model(std::uint64_t seed = 0, Init init = Init::Auto,
                 ExecutionSpace const& exec = ExecutionSpace{})
      : exec_(exec),
        params_(Kokkos::view_alloc(exec, "ktnn::Model::parameters"), param_count),
        grads_(Kokkos::view_alloc(exec, "ktnn::Model::gradients"), param_count),
        // Devices read W^T through strides; host spaces copy it here.
        scratch_(Kokkos::view_alloc(exec, "ktnn::Model::scratch"),
                 ops::device_kernels<ExecutionSpace> ? 0 : Architecture::scratch_count),
        index_(Architecture::describe()) {
    initialize(seed, init);
  }

  /// Re-draws every parameter from `seed`.
  void initialize(std::uint64_t seed, Init init = Init::Auto) {
    Kokkos::Profiling::ScopedRegion region("ktnn::Model::initialize");
    initialize_layers(seed, init, std::make_index_sequence<depth>{});
  }

  execution_space const& execution() const { return exec_; }
  arena_type const& parameters() const { return params_; }
  arena_type const& gradients() const { return grads_; }
  /// Name, offset and shape of every parameter tensor, in arena order.
  std::vector<ParameterInfo> const& parameter_index() const { return index_; }

  /// The parameter tensor called `name` (e.g. "0.weight"), flattened,
  /// sharing the arena's memory.
  Kokkos::View<T*, memory_space> parameter(std::string_view name) const {
    return Kokkos::subview(params_, range_of(name));
  }
  Kokkos::View<T*, memory_space> gradient(std::string_view name) const {
    return Kokkos::subview(grads_, range_of(name));
  }

  void zero_grad() {
    ops::fill(exec_, "ktnn::Model::zero_grad", grads_.data(), grads_.extent(0), T(0));
  }

  /// Allocates the workspace for batches of up to `batch` samples.
  void reserve(int batch) {
    if (batch <= capacity_) return;
    Kokkos::Profiling::ScopedRegion region("ktnn::Model::reserve");
    reserve_layers(batch, std::make_index_sequence<depth>{});
    for (auto& g : grad_)
      g = arena_type(
          Kokkos::view_alloc(exec_, Kokkos::WithoutInitializing, "ktnn::Model::backward_buffer"),
          std::size_t(batch) * Architecture::max_width);
    input_copy_ = batch_view(
        Kokkos::view_alloc(exec_, Kokkos::WithoutInitializing, "ktnn::Model::input_copy"), batch,
        in_features);
    std::size_t const work = workspace_size(batch, std::make_index_sequence<depth>{});
    if (work > work_.extent(0))
      work_ = arena_type(
          Kokkos::view_alloc(exec_, Kokkos::WithoutInitializing, "ktnn::Model::workspace"), work);
    capacity_ = batch;
  }

  /// Runs the batch `x` (a Tensor or a rank-2 View of `in_features` columns, in
  /// any layout, in a memory space the execution space can reach) forward and
  /// returns the output rows. The model reads `x` again in backward(): keep it
  /// alive and unchanged until then.
  template <class X>
  batch_view forward(X const& x) {
    auto matrix = input_matrix(x);
    Kokkos::Profiling::ScopedRegion region("ktnn::Model::forward");
    reserve(matrix.rows);
    batch_ = matrix.rows;
    if (matrix.col_stride != 1 && batch_ > 0) {
      // Backward reads the input as the right operand of dW += dz^T x, which
      // needs contiguous rows: copy a column-major input once.
      auto copy = detail::row_major(input_copy_.data(), batch_, in_features);
      Kokkos::parallel_for(
          "ktnn::Model::forward::copy_input",
          Kokkos::RangePolicy<execution_space>(exec_, 0, batch_ * in_features),
          KOKKOS_LAMBDA(int e) {
            int const i = e / in_features, j = e - (e / in_features) * in_features;
            copy(i, j) = matrix(i, j);
          });
      matrix = copy;
    }
    input_ = matrix;
    forward_layers(std::make_index_sequence<depth>{});
    return output();
  }

  /// The output of the last forward(), rows [0, batch).
  batch_view output() const {
    return Kokkos::subview(outputs_[depth - 1], std::make_pair(0, batch_), Kokkos::ALL);
  }
  int batch() const { return batch_; }

  /// Where a loss writes dL/d(output) for backward(): batch x out_features.
  batch_view output_gradient() const {
    return batch_view(grad_[(depth - 1) % 2].data(), batch_, out_features);
  }

  /// Backpropagates output_gradient() (which it overwrites) into gradients():
  /// added to what is there (Accumulate::yes, as PyTorch; zero_grad() first),
  /// or written over it (Accumulate::no, which saves the zero_grad() pass).
  /// With `want_input_gradient`, also computes dL/dx (input_gradient()).
  void backward(bool want_input_gradient = false, Accumulate accumulate = Accumulate::yes) {
    Kokkos::Profiling::ScopedRegion region("ktnn::Model::backward");
    if (want_input_gradient && (input_grad_.extent(0) < std::size_t(capacity_)))
      input_grad_ = batch_view(Kokkos::view_alloc(exec_, "ktnn::Model::input_gradient"), capacity_,
                               in_features);
    backward_layer<depth - 1>(want_input_gradient, accumulate == Accumulate::yes ? T(1) : T(0));
    input_gradient_valid_ = want_input_gradient;
  }

  /// Copies `dy` (batch x out_features) to output_gradient(), then backward().
  template <class DY>
    requires Kokkos::is_view_v<DY>
  void backward(DY const& dy, bool want_input_gradient = false,
                Accumulate accumulate = Accumulate::yes) {
    auto g = detail::as_matrix(dy);
    if (g.rows != batch_ || g.cols != out_features)
      detail::fail("ktnn::Model::backward", "output gradient is ", g.rows, "x", g.cols,
                   ", the last forward produced ", batch_, "x", out_features);
    auto out = detail::Matrix<T>(detail::as_matrix(output_gradient()));
    Kokkos::parallel_for(
        "ktnn::Model::backward::copy_gradient",
        Kokkos::RangePolicy<execution_space>(exec_, 0, batch_ * out_features),
        KOKKOS_LAMBDA(int e) {
          int const i = e / out_features, j = e - (e / out_features) * out_features;
          out(i, j) = g(i, j);
        });
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

  /// The per-sample forward pass for use in a user's kernel.
  Inference<Architecture, T, memory_space> inference() const { return {params_}; }

 private:
  std::pair<std::size_t, std::size_t> range_of(std::string_view name) const {
    for (auto const& p : index_)
      if (p.name == name) return {p.offset, p.offset + p.size()};
    detail::fail("ktnn::Model::parameter", "no parameter named '", name, "' in ",
                 Architecture::name());
  }

  template <class X>
  static detail::Matrix<T const> input_matrix(X const& x) {
    if constexpr (requires { X::features; }) {
      static_assert(X::features == std::size_t(in_features),
                    "ktnn::Model::forward: the Tensor's feature extent is not the model's "
                    "in_features");
      return input_matrix(x.view());
    } else {
      static_assert(Kokkos::is_view_v<X>, "ktnn::Model::forward: expected a Tensor or a View");
      static_assert(X::rank() == 2,
                    "ktnn::Model::forward: expected a rank-2 View (batch, features)");
      static_assert(
          Kokkos::SpaceAccessibility<execution_space, typename X::memory_space>::accessible,
          "ktnn::Model::forward: the input's memory space is not reachable from the "
          "model's execution space");
      if (x.extent(1) != std::size_t(in_features))
        detail::fail("ktnn::Model::forward", "input '", x.label(), "' has ", x.extent(1),
                     " features, ", Architecture::name(), " takes ", in_features);
      auto m = detail::as_matrix(x);
      return {m.data, m.rows, m.cols, m.row_stride, m.col_stride};
    }
  }

  template <std::size_t... I>
  void initialize_layers(std::uint64_t seed, Init init, std::index_sequence<I...>) {
    (Architecture::template layer<I>::initialize(exec_, params_.data(),
                                                 Architecture::param_offset[I], seed, init),
     ...);
    zero_grad();
  }

  /// Workspace the layers can use for `batch` rows (split-K slices and
  /// partial sums on devices; none on host spaces).
  template <std::size_t... I>
  std::size_t workspace_size(int batch, std::index_sequence<I...>) const {
    std::size_t size = 0;
    ((size = std::max(size, Architecture::template layer<I>::workspace_size(exec_, batch))), ...);
    return size;
  }
  ops::Workspace<T> workspace() const { return {work_.data(), work_.extent(0)}; }

  template <std::size_t... I>
  void reserve_layers(int batch, std::index_sequence<I...>) {
    ((outputs_[I] = batch_view(Kokkos::view_alloc(exec_, Kokkos::WithoutInitializing,
                                                  "ktnn::Model::activation_" + std::to_string(I)),
                               batch, Architecture::template layer<I>::out_features),
      preactivations_[I] =
          Architecture::template layer<I>::keeps_preactivation
              ? batch_view(Kokkos::view_alloc(exec_, Kokkos::WithoutInitializing,
                                              "ktnn::Model::preactivation_" + std::to_string(I)),
                           batch, Architecture::template layer<I>::out_features)
              : batch_view()),
     ...);
  }

  detail::Matrix<T> rows_of(batch_view const& v) const {
    if (v.data() == nullptr) return {};
    return detail::row_major(v.data(), batch_, int(v.extent(1)));
  }
  template <std::size_t I>
  detail::Matrix<T const> layer_input() const {
    if constexpr (I == 0)
      return input_;
    else
      return rows_of(outputs_[I - 1]);
  }

  template <std::size_t... I>
  void forward_layers(std::index_sequence<I...>) {
    (Architecture::template layer<I>::forward(
         exec_, params_.data() + Architecture::param_offset[I], scratch_.data(), layer_input<I>(),
         rows_of(outputs_[I]), rows_of(preactivations_[I]), workspace()),
     ...);
  }

  template <std::size_t I>
  void backward_layer(bool want_input_gradient, T grad_beta) {
    using L = typename Architecture::template layer<I>;
    auto dy = detail::row_major(grad_[I % 2].data(), batch_, L::out_features);
    detail::Matrix<T> dx;
    if constexpr (I > 0)
      dx = detail::row_major(grad_[(I + 1) % 2].data(), batch_, L::in_features);
    else if (want_input_gradient)
      dx = detail::row_major(input_grad_.data(), batch_, L::in_features);
    L::backward(exec_, params_.data() + Architecture::param_offset[I],
                grads_.data() + Architecture::param_offset[I], layer_input<I>(),
                detail::Matrix<T const>(rows_of(outputs_[I])),
                detail::Matrix<T const>(rows_of(preactivations_[I])), dy, dx, grad_beta,
                workspace());
    if constexpr (I > 0) backward_layer<I - 1>(want_input_gradient, grad_beta);
  }

  execution_space exec_;
  arena_type params_;
  arena_type grads_;
  arena_type scratch_;
  arena_type work_;
  std::vector<ParameterInfo> index_;
  std::array<batch_view, depth> outputs_;
  std::array<batch_view, depth> preactivations_;
  std::array<arena_type, 2> grad_;
  batch_view input_copy_;
  batch_view input_grad_;
  detail::Matrix<T const> input_;
  int capacity_ = 0;
  int batch_ = 0;
  bool input_gradient_valid_ = false;
};

}  // namespace ktnn

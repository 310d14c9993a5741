#pragma once
/// \file Derivatives of a network with respect to its inputs.
///
/// Per sample, inside a user's kernel: `ktnn::derivatives(net, x)` runs the
/// per-sample path (`model.inference()`) on Jets (core/jet.hpp) and returns,
/// for each output, its value, its gradient (a row of the Jacobian), its
/// second derivatives along each input (the Hessian diagonal) and their sum
/// (the Laplacian). Compile-time sizes, no allocation.
///
/// Batched: `ktnn::InputDerivatives<Model>` pushes a batch of points through
/// the layers' own batched kernels in Taylor mode. Each point becomes
/// in_features + 2 rows (its value, the derivatives along each input, the
/// Laplacian) that go through the same GEMM as one matrix; the activation's
/// first two derivatives carry them through it. Its backward pass (the
/// activations' third derivative enters there) gives the parameter gradient
/// of any loss of the outputs, their gradients and their Laplacians: what a
/// physics-informed training step needs (train/physics.hpp).
///
/// The Laplacian is carried, not the full Hessian diagonal, in the batched
/// pass: one row per point instead of in_features. The per-sample form has
/// both.

#include <ktnn/core/error.hpp>
#include <ktnn/core/jet.hpp>
#include <ktnn/core/matrix.hpp>
#include <ktnn/core/profiling.hpp>
#include <ktnn/layers/layer.hpp>
#include <ktnn/layers/runner.hpp>
#include <ktnn/ops/elementwise.hpp>
#include <ktnn/ops/gemm.hpp>

#include <Kokkos_Core.hpp>

#include <algorithm>
#include <array>
#include <cstddef>
#include <string>
#include <type_traits>
#include <utility>

namespace ktnn {

/// The outputs of `net` (model.inference(), or anything with its per-sample
/// call operator) at one point `x` (`Kokkos::Array<T, in_features>`, `T
/// x[in_features]` or a rank-1 View row), as Jets: `y[o].value()`,
/// `y[o].derivative(k)` = du_o/dx_k, `y[o].second_derivative(k)` =
/// d2u_o/dx_k2, `y[o].laplacian()`. Callable in device code.
template <class Net, class X>
KOKKOS_INLINE_FUNCTION auto derivatives(Net const& net, X const& x) {
  constexpr int in = Net::in_features;
  if constexpr (Kokkos::is_view_v<X>) {
    static_assert(X::rank() == 1, "ktnn::derivatives: a point is a rank-1 View (a row)");
    using J = Jet<typename X::non_const_value_type, in, 2>;
    if (x.extent(0) != std::size_t(in))
      Kokkos::abort("ktnn::derivatives: a row's extent is not the network's in_features");
    Kokkos::Array<J, in> seeded;
    for (int k = 0; k < in; ++k) seeded[k] = J::variable(x(k), k);
    return net(seeded);
  } else {
    using T = std::remove_cv_t<std::remove_reference_t<decltype(x[0])>>;
    static_assert(sizeof(x) == sizeof(T) * in,
                  "ktnn::derivatives: the point must have the network's in_features values");
    using J = Jet<T, in, 2>;
    Kokkos::Array<J, in> seeded;
    for (int k = 0; k < in; ++k) seeded[k] = J::variable(x[k], k);
    return net(seeded);
  }
}

namespace detail {
/// The Taylor rows of a batch of points: for point i, row i k is the point,
/// rows i k + 1 + r the unit vector along input r, row i k + k - 1 zero.
template <class T>
struct SeedTaylorRows {
  Matrix<T const> points;
  Matrix<T> rows;
  KOKKOS_FUNCTION void operator()(std::size_t i, std::size_t j) const {
    int const in = points.cols, k = in + 2;
    int const r0 = int(i) * k;
    rows(r0, j) = points(i, j);
    for (int r = 0; r < in; ++r) rows(r0 + 1 + r, j) = r == int(j) ? T(1) : T(0);
    rows(r0 + k - 1, j) = T(0);
  }
};
}  // namespace detail

/// Batched input derivatives of a model (Dense, activation and
/// standardisation layers). It shares the model's parameters, state and
/// gradient arenas and keeps its own batch-sized buffers, allocated when the
/// batch grows past what was reserved.
///
///   InputDerivatives jets(model);
///   jets.forward(points);        // points: n x in_features, any layout
///   jets.value()                 // n x out_features
///   jets.gradient()              // n x out_features x in_features (the Jacobian)
///   jets.laplacian()             // n x out_features
///
/// and for training: write dL/d(value), dL/d(gradient) and dL/d(laplacian)
/// into value_adjoint(), gradient_adjoint() and laplacian_adjoint() (all of
/// them: backward reads every element), then backward() adds (or writes) dL/d
/// parameters into model.gradients().
template <class Model>
class InputDerivatives {
 public:
  using architecture = typename Model::architecture;
  using value_type = typename Model::value_type;
  using execution_space = typename Model::execution_space;
  using memory_space = typename Model::memory_space;
  using T = value_type;
  static constexpr int in_features = Model::in_features;
  static constexpr int out_features = Model::out_features;
  /// Taylor rows per point: the value, one per input, the Laplacian.
  static constexpr int rows_per_sample = in_features + 2;
  static constexpr std::size_t depth = architecture::depth;
  using rows_view = Kokkos::View<T**, Kokkos::LayoutStride, memory_space>;
  using jacobian_view = Kokkos::View<T***, Kokkos::LayoutStride, memory_space>;

 private:
  template <std::size_t... I>
  static constexpr bool all_supported(std::index_sequence<I...>) {
    return (check_taylor_layer<typename architecture::template layer<I>>() && ...);
  }
  static_assert(all_supported(std::make_index_sequence<depth>{}));
  using buffer = Kokkos::View<T**, Kokkos::LayoutRight, memory_space>;
  using runner_type = LayerRunner<architecture, TaylorPasses<rows_per_sample>, T, execution_space,
                                  typename Model::isa>;

 public:
  explicit InputDerivatives(Model& model) : model_(&model) {}

  Model& model() const { return *model_; }
  /// Points of the last forward().
  int samples() const { return samples_; }

  /// Allocates the buffers for batches of up to `samples` points.
  void reserve(int samples) {
    if (samples <= capacity_) return;
    if (samples > 2147483647 / rows_per_sample)
      detail::fail("ktnn::InputDerivatives::reserve", samples,
                   " points are more than one pass takes (", 2147483647 / rows_per_sample, ")");
    Kokkos::Profiling::ScopedRegion region("ktnn::InputDerivatives::reserve");
    auto const& exec = model_->execution();
    int const rows = samples * rows_per_sample;
    input_ = buffer(Kokkos::view_alloc(exec, Kokkos::WithoutInitializing,
                                       std::string("ktnn::InputDerivatives::input")),
                    rows, in_features);
    runner_.reserve(exec, rows);
    capacity_ = samples;
  }

  /// The outputs, their gradients and Laplacians at `points` (a rank-2 View
  /// of in_features columns, any layout, of the model's scalar type, in
  /// memory the model's execution space reaches). Nothing waits for the
  /// device.
  template <class X>
  void forward(X const& points) {
    static_assert(Kokkos::is_view_v<X> && X::rank() == 2,
                  "ktnn::InputDerivatives::forward: points are a rank-2 View (points x inputs)");
    static_assert(std::is_same_v<typename X::non_const_value_type, T>,
                  "ktnn::InputDerivatives::forward: the points' scalar type is not the model's");
    static_assert(
        Kokkos::SpaceAccessibility<execution_space, typename X::memory_space>::accessible,
        "ktnn::InputDerivatives::forward: the points are in memory the model's execution space "
        "cannot reach");
    if (points.extent(1) != std::size_t(in_features))
      detail::fail("ktnn::InputDerivatives::forward", "'", points.label(), "' has ",
                   points.extent(1), " inputs per point, the model ", in_features);
    if (points.extent(0) > std::size_t(2147483647 / rows_per_sample))
      detail::fail("ktnn::InputDerivatives::forward", points.extent(0),
                   " points are more than one pass takes (", 2147483647 / rows_per_sample, ")");
    Kokkos::Profiling::ScopedRegion region("ktnn::InputDerivatives::forward");
    int const n = int(points.extent(0));
    reserve(std::max(n, 1));
    samples_ = n;
    ops::for_each_element(
        model_->execution(), "ktnn::InputDerivatives::seed", std::size_t(n),
        std::size_t(in_features),
        detail::SeedTaylorRows<T>{as_matrix(points), rows_of(input_, in_features)});
    runner_.forward(model_->execution(), arguments(), rows_of(input_, in_features));
    ready_ = true;
  }

  /// Network outputs at the points of the last forward(): n x out_features.
  rows_view value() const { return rows_at(output_data(), 0); }
  /// du_o/dx_k: n x out_features x in_features.
  jacobian_view gradient() const { return jacobian_at(output_data()); }
  /// Laplacian of each output: n x out_features.
  rows_view laplacian() const { return rows_at(output_data(), rows_per_sample - 1); }

  /// Where a loss writes its derivatives with respect to value(), gradient()
  /// and laplacian() before backward().
  rows_view value_adjoint() const { return rows_at(adjoint_data(), 0); }
  jacobian_view gradient_adjoint() const { return jacobian_at(adjoint_data()); }
  rows_view laplacian_adjoint() const { return rows_at(adjoint_data(), rows_per_sample - 1); }

  /// Back through the Taylor pass: the parameter gradient of the loss whose
  /// adjoints were written, added to model.gradients() (Accumulate::yes) or
  /// written over them (Accumulate::no). The adjoints are overwritten.
  void backward(Accumulate accumulate = Accumulate::yes) {
    if (!ready_)
      detail::fail("ktnn::InputDerivatives::backward",
                   "no forward() since it was made; call forward first");
    Kokkos::Profiling::ScopedRegion region("ktnn::InputDerivatives::backward");
    runner_.backward(model_->execution(), arguments(), rows_of(input_, in_features), Matrix<T>{},
                     accumulate);
  }

 private:
  int rows() const { return samples_ * rows_per_sample; }
  Matrix<T> rows_of(buffer const& b, int width) const { return row_major(b.data(), rows(), width); }
  T* output_data() const {
    if (!ready_)
      detail::fail("ktnn::InputDerivatives", "no forward() since it was made; call forward first");
    return runner_.output_buffer().data();
  }
  T* adjoint_data() const {
    if (!ready_)
      detail::fail("ktnn::InputDerivatives", "no forward() since it was made; call forward first");
    return runner_.output_gradient_data();
  }
  /// Row `offset` of every point's block: n x out_features.
  rows_view rows_at(T* data, int offset) const {
    std::size_t const pitch = std::size_t(rows_per_sample) * out_features;
    return rows_view(data + std::size_t(offset) * out_features,
                     Kokkos::LayoutStride(std::size_t(samples_), pitch, out_features, 1));
  }
  jacobian_view jacobian_at(T* data) const {
    std::size_t const pitch = std::size_t(rows_per_sample) * out_features;
    return jacobian_view(data + out_features,
                         Kokkos::LayoutStride(std::size_t(samples_), pitch, out_features, 1,
                                              in_features, out_features));
  }

  /// The model's arenas and keys, read at each call (the model may have
  /// stepped since the forward pass).
  RunArguments<T> arguments() const {
    return {.parameters = model_->parameters().data(),
            .gradients = model_->gradients().data(),
            .state = model_->state().data(),
            .mode = model_->mode(),
            .seed = model_->seed(),
            .step = model_->steps(),
            .check_finite = model_->check_finite()};
  }

  Model* model_;
  buffer input_;
  runner_type runner_{"ktnn::InputDerivatives"};
  int capacity_ = 0;
  int samples_ = 0;
  bool ready_ = false;
};

}  // namespace ktnn

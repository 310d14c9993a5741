#pragma once
/// \file Standardisation that travels with the model: Standardize<N> maps
/// inputs to (x - mean) / std, Unstandardize<N> maps outputs back to
/// y * std + mean. Mean and std are state (named "mean" and "std", like
/// buffers of a PyTorch module), set once from data by ktnn::standardize
/// (model.hpp), and applied in the batched path and in inference() alike, so a
/// user never repeats the scaling in a kernel. An optimizer never touches them.

#include <ktnn/core/matrix.hpp>
#include <ktnn/layers/layer.hpp>
#include <ktnn/ops/elementwise.hpp>

#include <Kokkos_Core.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace ktnn {

namespace detail {
/// values[k] = 0 for k < zeros, 1 after: an identity standardisation.
template <class T>
struct ZerosThenOnes {
  T* values;
  int zeros;
  KOKKOS_INLINE_FUNCTION void operator()(int k) const { values[k] = k < zeros ? T(0) : T(1); }
};

/// dx = dy / std (Divide) or dy * std, feature by feature: the input
/// gradient of Standardize and Unstandardize on every row.
template <int N, bool Divide, class T>
struct ScaleByStd {
  T const* state;
  Matrix<T> dy;
  Matrix<T> dx;
  KOKKOS_INLINE_FUNCTION void operator()(std::size_t i, std::size_t j) const {
    if constexpr (Divide)
      dx(i, j) = dy(i, j) / state[N + j];
    else
      dx(i, j) = dy(i, j) * state[N + j];
  }
};

/// The forward of Standardize, y = (x - mean) / std, or of Unstandardize
/// (Inverse), y = x * std + mean, over K Taylor rows per sample: the shift
/// applies to value rows only.
template <int N, int K, bool Inverse, class T>
struct StandardizeRows {
  T const* state;
  Matrix<T const> x;
  Matrix<T> y;
  KOKKOS_INLINE_FUNCTION void operator()(std::size_t i, std::size_t j) const {
    if constexpr (Inverse) {
      y(i, j) = x(i, j) * state[N + j] + (i % K == 0 ? state[j] : T(0));
    } else {
      T const shift = i % K == 0 ? state[j] : T(0);
      y(i, j) = (x(i, j) - shift) / state[N + j];
    }
  }
};

}  // namespace detail

/// What Standardize<N> and Unstandardize<N> share: their state, mean[N] then
/// std[N] (PyTorch buffers "mean" and "std"), the identity at first.
template <int N>
struct StandardizeState : LayerDefaults {
  static_assert(N > 0, "ktnn::Standardize: N must be positive");
  static constexpr int in_features = N;
  static constexpr int out_features = N;
  static constexpr std::size_t state_count = 2 * std::size_t(N);

  static void describe_state(std::string const& prefix, std::size_t offset,
                             std::vector<ParameterInfo>& out) {
    out.push_back({prefix + "mean", offset, {std::size_t(N)}});
    out.push_back({prefix + "std", offset + N, {std::size_t(N)}});
  }
  template <class ExecSpace, class T>
  static void initialize(ExecSpace const& exec, T*, T* state, std::size_t, std::uint64_t, Init) {
    Kokkos::parallel_for("ktnn::Standardize::initialize",
                         Kokkos::RangePolicy<ExecSpace>(exec, 0, 2 * N),
                         detail::ZerosThenOnes<T>{.values = state, .zeros = N});
  }
};

/// y = (x - mean) / std, feature by feature.
template <int N>
struct Standardize : StandardizeState<N> {
  /// Taylor mode with one row per sample: every row is a value row.
  template <class ExecSpace, class T, class Isa>
  static void forward(LayerContext<ExecSpace, T, Isa> const& ctx, Matrix<T const> x, Matrix<T> y) {
    forward_taylor<1>(ctx, x, y);
  }
  template <class ExecSpace, class T, class Isa>
  static void backward(LayerContext<ExecSpace, T, Isa> const& ctx, Matrix<T const> x,
                       Matrix<T const>, Matrix<T> dy, Matrix<T> dx) {
    if (dx.empty()) return;
    ops::for_each_element(ctx.exec, "ktnn::Standardize::backward", std::size_t(x.rows), N,
                          detail::ScaleByStd<N, true, T>{.state = ctx.state, .dy = dy, .dx = dx});
  }
  /// Taylor mode (see Dense::forward_taylor): the shift applies to value
  /// rows only; derivative rows are scaled.
  template <int K, class ExecSpace, class T, class Isa>
  static void forward_taylor(LayerContext<ExecSpace, T, Isa> const& ctx, Matrix<T const> x,
                             Matrix<T> y) {
    ops::for_each_element(
        ctx.exec, "ktnn::Standardize::forward", std::size_t(x.rows), N,
        detail::StandardizeRows<N, K, false, T>{.state = ctx.state, .x = x, .y = y});
  }
  /// dx = dy / std on every row, as backward.
  template <int K, class ExecSpace, class T, class Isa>
  static void backward_taylor(LayerContext<ExecSpace, T, Isa> const& ctx, Matrix<T const> x,
                              Matrix<T const> y, Matrix<T> dy, Matrix<T> dx) {
    backward(ctx, x, y, dy, dx);
  }
  template <class P, class S>
  KOKKOS_INLINE_FUNCTION static void apply(P const*, P const* state, S const* x, S* y) {
    for (int j = 0; j < N; ++j) y[j] = (x[j] - state[j]) / state[N + j];
  }
  static std::string name() { return "Standardize<" + std::to_string(N) + ">"; }
};

/// y = x * std + mean, feature by feature: a network's last layer, so it
/// learns targets of order one and answers in the targets' units.
template <int N>
struct Unstandardize : StandardizeState<N> {
  /// Taylor mode with one row per sample: every row is a value row.
  template <class ExecSpace, class T, class Isa>
  static void forward(LayerContext<ExecSpace, T, Isa> const& ctx, Matrix<T const> x, Matrix<T> y) {
    forward_taylor<1>(ctx, x, y);
  }
  template <class ExecSpace, class T, class Isa>
  static void backward(LayerContext<ExecSpace, T, Isa> const& ctx, Matrix<T const> x,
                       Matrix<T const>, Matrix<T> dy, Matrix<T> dx) {
    if (dx.empty()) return;
    ops::for_each_element(ctx.exec, "ktnn::Unstandardize::backward", std::size_t(x.rows), N,
                          detail::ScaleByStd<N, false, T>{.state = ctx.state, .dy = dy, .dx = dx});
  }
  template <int K, class ExecSpace, class T, class Isa>
  static void forward_taylor(LayerContext<ExecSpace, T, Isa> const& ctx, Matrix<T const> x,
                             Matrix<T> y) {
    ops::for_each_element(
        ctx.exec, "ktnn::Unstandardize::forward", std::size_t(x.rows), N,
        detail::StandardizeRows<N, K, true, T>{.state = ctx.state, .x = x, .y = y});
  }
  template <int K, class ExecSpace, class T, class Isa>
  static void backward_taylor(LayerContext<ExecSpace, T, Isa> const& ctx, Matrix<T const> x,
                              Matrix<T const> y, Matrix<T> dy, Matrix<T> dx) {
    backward(ctx, x, y, dy, dx);
  }
  template <class P, class S>
  KOKKOS_INLINE_FUNCTION static void apply(P const*, P const* state, S const* x, S* y) {
    for (int j = 0; j < N; ++j) y[j] = x[j] * state[N + j] + state[j];
  }
  static std::string name() { return "Unstandardize<" + std::to_string(N) + ">"; }
};

namespace detail {
/// Column means and standard deviations (population, as the data is the
/// whole set) of an n x N matrix, into state[0, N) and state[N, 2N), in
/// double. Deterministic: fixed chunks of rows are summed in order by one
/// thread each, then the chunks in order, so every backend and thread count
/// gives the same bits. A constant column gets std 1 (no division by zero).
template <class ExecSpace, class T, class Source>
struct ColumnStatistics {
  struct ColumnSums {};
  static constexpr std::size_t chunk = 1024;
  using Mem = typename ExecSpace::memory_space;
  Source x;
  std::size_t n;
  int columns;
  T* state;
  std::size_t chunks;
  Kokkos::View<double**, Kokkos::LayoutRight, Mem> partial;
  Kokkos::View<double*, Mem> mean;
  int pass;
  /// Chunk c's sum of column j (pass 0) or of its squared deviations (pass 1).
  KOKKOS_INLINE_FUNCTION void operator()(std::size_t c, std::size_t j) const {
    std::size_t const end = (c + 1) * chunk < n ? (c + 1) * chunk : n;
    double sum = 0;
    for (std::size_t i = c * chunk; i < end; ++i) {
      double const v = double(x(i, j));
      sum += pass == 0 ? v : (v - mean(j)) * (v - mean(j));
    }
    partial(c, j) = sum;
  }
  /// The chunks of column j in order: its mean (pass 0) or deviation (pass 1).
  KOKKOS_INLINE_FUNCTION void operator()(ColumnSums, int j) const {
    double sum = 0;
    for (std::size_t c = 0; c < chunks; ++c) sum += partial(c, j);
    double const value = n > 0 ? sum / double(n) : (pass == 0 ? 0.0 : 1.0);
    if (pass == 0) {
      mean(j) = value;
      state[j] = T(value);
    } else {
      double const sd = Kokkos::sqrt(value);
      state[columns + j] = sd > 0 ? T(sd) : T(1);
    }
  }
};

template <class ExecSpace, class T, class Source>
void column_statistics(ExecSpace const& exec, Source const& x, std::size_t n, int columns,
                       T* state) {
  using Kernels = ColumnStatistics<ExecSpace, T, Source>;
  std::size_t const chunks = (n + Kernels::chunk - 1) / Kernels::chunk;
  using Mem = typename ExecSpace::memory_space;
  Kernels kernels{.x = x,
                  .n = n,
                  .columns = columns,
                  .state = state,
                  .chunks = chunks,
                  .partial = Kokkos::View<double**, Kokkos::LayoutRight, Mem>(
                      Kokkos::view_alloc(exec, "ktnn::standardize::partial"), chunks, columns),
                  .mean = Kokkos::View<double*, Mem>(
                      Kokkos::view_alloc(exec, "ktnn::standardize::mean"), columns),
                  .pass = 0};
  for (int pass = 0; pass < 2; ++pass) {
    kernels.pass = pass;
    ops::for_each_element(exec, "ktnn::standardize::chunk_sums", chunks, std::size_t(columns),
                          kernels);
    Kokkos::parallel_for(
        "ktnn::standardize::column_sums",
        Kokkos::RangePolicy<ExecSpace, typename Kernels::ColumnSums>(exec, 0, columns), kernels);
  }
}
}  // namespace detail

}  // namespace ktnn

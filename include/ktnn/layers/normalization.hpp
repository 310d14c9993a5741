#pragma once
/// \file Normalization layers, as PyTorch's modules of the same names:
///
///   LayerNorm<N>    each sample over its N features (nn.LayerNorm(N)):
///                   y = (x - mean) / sqrt(var + eps) * weight + bias,
///                   the same in training and evaluation mode
///   BatchNorm1d<N>  each of N features over the batch (nn.BatchNorm1d(N))
///   BatchNorm2d     each channel of an image over the batch and its pixels
///                   (nn.BatchNorm2d(C)); its shape from the layer before,
///                   which it passes through: `Sequential<Conv2D<...>,
///                   BatchNorm2d, ReLU, ...>`
///
/// eps is 1e-5 and weight and bias start at one and zero, as in PyTorch, and
/// are named "weight" and "bias". BatchNorm in training mode normalizes with
/// the batch's mean and biased variance and moves its running statistics
/// toward them with momentum 0.1,
///   running_mean = 0.9 running_mean + 0.1 mean
///   running_var  = 0.9 running_var  + 0.1 var * n / (n - 1)   (unbiased)
/// (n values per channel), counting the batches in num_batches_tracked: the
/// three buffers PyTorch has, as the layer's state (num_batches_tracked is a
/// value of the model's type here, exact up to 2^24 batches in float). In
/// evaluation mode, and in apply() (inference in a user's kernel), it
/// normalizes with the running statistics instead. Its backward in training
/// mode is the full gradient through the batch statistics.
///
/// Sums over the batch run in a fixed order (channel_sums), never with
/// atomics, so every result repeats bit for bit. BatchNorm keeps nothing per
/// sample for backward: backward sums the batch statistics again (the same
/// sums in the same order, so the same bits) instead of holding them between
/// the two calls.

#include <ktnn/core/error.hpp>
#include <ktnn/core/matrix.hpp>
#include <ktnn/core/shape.hpp>
#include <ktnn/layers/channel_sums.hpp>
#include <ktnn/layers/init.hpp>
#include <ktnn/layers/layer.hpp>
#include <ktnn/ops/elementwise.hpp>
#include <ktnn/ops/gemm.hpp>
#include <ktnn/ops/space.hpp>

#include <Kokkos_Core.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

namespace ktnn {

namespace detail {
/// g (+)= v by the gradient_beta of a context (0: overwrite, 1: add).
template <class T>
KOKKOS_INLINE_FUNCTION void accumulate_gradient(T& g, T beta, T v) {
  g = beta == T(0) ? v : g + v;
}

/// values[k] = 1 for k < ones, 0 after.
template <class T>
struct OnesThenZeros {
  T* values;
  int ones;
  KOKKOS_INLINE_FUNCTION void operator()(int k) const { values[k] = k < ones ? T(1) : T(0); }
};

/// LayerNorm's forward (L the layer): a thread per sample, its mean, then
/// its variance about the mean; the normalized row and the inverse
/// deviation into the saved block.
template <class L, class T>
struct LayerNormForward {
  Matrix<T const> x;
  Matrix<T> y;
  Matrix<T> saved;
  T const* weight;
  T const* bias;
  KOKKOS_INLINE_FUNCTION void operator()(int i) const {
    constexpr int N = L::in_features;
    T mean = 0;
    for (int j = 0; j < N; ++j) mean += x(i, j);
    mean /= T(N);
    T var = 0;
    for (int j = 0; j < N; ++j) var += (x(i, j) - mean) * (x(i, j) - mean);
    T const inv = T(1) / Kokkos::sqrt(var / T(N) + T(L::eps));
    for (int j = 0; j < N; ++j) {
      T const hat = (x(i, j) - mean) * inv;
      saved(i, j) = hat;
      y(i, j) = hat * weight[j] + bias[j];
    }
    saved(i, N) = inv;
  }
};

/// LayerNorm's backward: the parameter gradients' terms and their sums
/// (channel_sums over the batch), and the input gradient, a thread per
/// sample.
template <class L, class T>
struct LayerNormBackward {
  struct ParameterTerms {};
  struct ParameterGradients {};
  struct InputGradient {};
  Matrix<T> dy;
  Matrix<T> dx;
  Matrix<T> saved;
  T const* weight;
  T* grads;
  T beta;
  KOKKOS_INLINE_FUNCTION Kokkos::Array<T, 2> operator()(ParameterTerms, int i, int j, int) const {
    return Kokkos::Array<T, 2>{dy(i, j) * saved(i, j), dy(i, j)};
  }
  KOKKOS_INLINE_FUNCTION void operator()(ParameterGradients, int j,
                                         Kokkos::Array<T, 2> const& s) const {
    accumulate_gradient(grads[j], beta, s[0]);
    accumulate_gradient(grads[L::in_features + j], beta, s[1]);
  }
  KOKKOS_INLINE_FUNCTION void operator()(InputGradient, int i) const {
    constexpr int N = L::in_features;
    T sum = 0, dot = 0;
    for (int j = 0; j < N; ++j) {
      T const g = dy(i, j) * weight[j];
      sum += g;
      dot += g * saved(i, j);
    }
    T const inv_n = saved(i, N) / T(N);
    for (int j = 0; j < N; ++j)
      dx(i, j) = inv_n * (T(N) * dy(i, j) * weight[j] - sum - saved(i, j) * dot);
  }
};
}  // namespace detail

/// PyTorch's nn.LayerNorm(N): each sample normalized over its N features,
/// then scaled and shifted feature by feature. Forward keeps the normalized
/// row and the inverse deviation for backward.
template <int N>
struct LayerNorm : LayerDefaults {
  static_assert(N > 0, "ktnn::LayerNorm: N must be positive");
  static constexpr int in_features = N;
  static constexpr int out_features = N;
  static constexpr std::size_t param_count = 2 * std::size_t(N);
  static constexpr std::size_t saved_per_sample = std::size_t(N) + 1;  // x-hat, then 1 / sigma
  static constexpr double eps = 1e-5;

  static void describe(std::string const& prefix, std::size_t offset,
                       std::vector<ParameterInfo>& out) {
    out.push_back({prefix + "weight", offset, {std::size_t(N)}});
    out.push_back({prefix + "bias", offset + N, {std::size_t(N)}});
  }
  /// weight ones, bias zeros, as PyTorch.
  template <class ExecSpace, class T>
  static void initialize(ExecSpace const& exec, T* params, T*, std::size_t, std::uint64_t, Init) {
    Kokkos::parallel_for("ktnn::LayerNorm::initialize",
                         Kokkos::RangePolicy<ExecSpace>(exec, 0, 2 * N),
                         detail::OnesThenZeros<T>{.values = params, .ones = N});
  }
  template <class ExecSpace>
  static std::size_t workspace_size(ExecSpace const& exec, int batch) {
    return detail::channel_sums_workspace<2, N, 1>(exec, batch);
  }

  /// A thread per sample: its mean, then its variance about the mean.
  template <class ExecSpace, class T, class Isa>
  static void forward(LayerContext<ExecSpace, T, Isa> const& ctx, Matrix<T const> x, Matrix<T> y) {
    Kokkos::parallel_for(
        "ktnn::LayerNorm::forward", Kokkos::RangePolicy<ExecSpace>(ctx.exec, 0, x.rows),
        detail::LayerNormForward<LayerNorm, T>{.x = x,
                                               .y = y,
                                               .saved = ctx.template saved_rows<N + 1>(),
                                               .weight = ctx.parameters,
                                               .bias = ctx.parameters + N});
  }

  /// d weight = sum_i dy x-hat and d bias = sum_i dy (channel_sums over the
  /// batch); dx = inv / N (N g - sum_j g - x-hat sum_j g x-hat), g = dy weight,
  /// a thread per sample.
  template <class ExecSpace, class T, class Isa>
  static void backward(LayerContext<ExecSpace, T, Isa> const& ctx, Matrix<T const> x,
                       Matrix<T const>, Matrix<T> dy, Matrix<T> dx) {
    using Kernels = detail::LayerNormBackward<LayerNorm, T>;
    Kernels const kernels{.dy = dy,
                          .dx = dx,
                          .saved = ctx.template saved_rows<N + 1>(),
                          .weight = ctx.parameters,
                          .grads = ctx.gradients,
                          .beta = ctx.gradient_beta()};
    detail::channel_sums<2, N, 1>(ctx.exec, ctx.workspace, 0,
                                  "ktnn::LayerNorm::backward::parameters", x.rows,
                                  detail::tagged<typename Kernels::ParameterTerms>(kernels),
                                  detail::tagged<typename Kernels::ParameterGradients>(kernels));
    if (dx.empty()) return;
    Kokkos::parallel_for(
        "ktnn::LayerNorm::backward::input",
        Kokkos::RangePolicy<ExecSpace, typename Kernels::InputGradient>(ctx.exec, 0, x.rows),
        kernels);
  }

  template <class P, class S>
  KOKKOS_INLINE_FUNCTION static void apply(P const* params, P const*, S const* x, S* y) {
    using Kokkos::sqrt;
    S mean = S(0);
    for (int j = 0; j < N; ++j) mean += x[j];
    mean = mean / S(N);
    S var = S(0);
    for (int j = 0; j < N; ++j) var += (x[j] - mean) * (x[j] - mean);
    S const inv = S(1) / sqrt(var / S(N) + S(eps));
    for (int j = 0; j < N; ++j) y[j] = (x[j] - mean) * inv * S(params[j]) + S(params[N + j]);
  }

  static std::string name() { return "LayerNorm<" + std::to_string(N) + ">"; }
};

namespace detail {
// The kernels of BatchNorm, L the layer (C = L::channels channels of
// L::pixels values each); sums over the batch go through channel_sums.

/// weight ones, bias zeros; running mean zeros, running variance ones, no
/// batches tracked.
template <class L, class T>
struct BatchNormInitialize {
  T* params;
  T* state;
  KOKKOS_INLINE_FUNCTION void operator()(int k) const {
    constexpr int C = L::channels;
    if (k < 2 * C) params[k] = k < C ? T(1) : T(0);
    state[k] = k >= C && k < 2 * C ? T(1) : T(0);
  }
};

/// The batch mean of each channel: its terms and what finishes a channel.
template <class L, class T>
struct BatchMean {
  struct Terms {};
  struct Finish {};
  Matrix<T const> x;
  T* mean;
  T count;
  KOKKOS_INLINE_FUNCTION Kokkos::Array<T, 1> operator()(Terms, int i, int c, int p) const {
    return Kokkos::Array<T, 1>{x(i, c * L::pixels + p)};
  }
  KOKKOS_INLINE_FUNCTION void operator()(Finish, int c, Kokkos::Array<T, 1> const& s) const {
    mean[c] = s[0] / count;
  }
};

/// BatchNorm's forward: with the running statistics (Running), or the
/// batch's variance about its mean (VarianceTerms, VarianceFinish, which
/// also moves the running statistics) and the normalization (Normalize).
template <class L, class T>
struct BatchNormForward {
  struct Running {};
  struct VarianceTerms {};
  struct VarianceFinish {};
  struct Normalize {};
  Matrix<T const> x;
  Matrix<T> y;
  T const* weight;
  T const* bias;
  T* state;
  T* mean = nullptr;
  T* inv = nullptr;
  T count = 0;
  T unbiased = 0;
  T keep = 0;
  T move = 0;
  KOKKOS_INLINE_FUNCTION void operator()(Running, std::size_t i, std::size_t j) const {
    constexpr int C = L::channels;
    int const c = int(j / L::pixels);
    T const inverse = T(1) / Kokkos::sqrt(state[C + c] + T(L::eps));
    y(i, j) = (x(i, j) - state[c]) * inverse * weight[c] + bias[c];
  }
  KOKKOS_INLINE_FUNCTION Kokkos::Array<T, 1> operator()(VarianceTerms, int i, int c, int p) const {
    T const d = x(i, c * L::pixels + p) - mean[c];
    return Kokkos::Array<T, 1>{d * d};
  }
  KOKKOS_INLINE_FUNCTION void operator()(VarianceFinish, int c,
                                         Kokkos::Array<T, 1> const& s) const {
    constexpr int C = L::channels;
    T const var = s[0] / count;
    inv[c] = T(1) / Kokkos::sqrt(var + T(L::eps));
    state[c] = keep * state[c] + move * mean[c];
    state[C + c] = keep * state[C + c] + move * var * unbiased;
    if (c == 0) state[2 * C] += T(1);
  }
  KOKKOS_INLINE_FUNCTION void operator()(Normalize, std::size_t i, std::size_t j) const {
    int const c = int(j / L::pixels);
    y(i, j) = (x(i, j) - mean[c]) * inv[c] * weight[c] + bias[c];
  }
};

/// BatchNorm's backward: with the running statistics (Running...), with no
/// values (Empty), or through the batch statistics: the sums of each channel
/// (Terms), the parameter gradients and backward's coefficients from them
/// (Gradients), the input gradient (Input).
template <class L, class T>
struct BatchNormBackward {
  struct RunningTerms {};
  struct RunningGradients {};
  struct RunningInput {};
  struct Empty {};
  struct Terms {};
  struct Gradients {};
  struct Input {};
  Matrix<T const> x;
  Matrix<T> dy;
  Matrix<T> dx;
  T const* weight;
  T const* state;
  T* grads;
  T beta;
  T* mean = nullptr;
  T* inv = nullptr;
  T* shift = nullptr;  // d bias / n
  T* slope = nullptr;  // d weight / n
  T count = 0;
  KOKKOS_INLINE_FUNCTION Kokkos::Array<T, 2> operator()(RunningTerms, int i, int c, int p) const {
    constexpr int C = L::channels;
    std::size_t const j = std::size_t(c) * L::pixels + std::size_t(p);
    T const inverse = T(1) / Kokkos::sqrt(state[C + c] + T(L::eps));
    return Kokkos::Array<T, 2>{dy(i, j) * ((x(i, j) - state[c]) * inverse), dy(i, j)};
  }
  KOKKOS_INLINE_FUNCTION void operator()(RunningGradients, int c,
                                         Kokkos::Array<T, 2> const& s) const {
    accumulate_gradient(grads[c], beta, s[0]);
    accumulate_gradient(grads[L::channels + c], beta, s[1]);
  }
  KOKKOS_INLINE_FUNCTION void operator()(RunningInput, std::size_t i, std::size_t j) const {
    constexpr int C = L::channels;
    int const c = int(j / L::pixels);
    T const inverse = T(1) / Kokkos::sqrt(state[C + c] + T(L::eps));
    dx(i, j) = dy(i, j) * weight[c] * inverse;
  }
  KOKKOS_INLINE_FUNCTION void operator()(Empty, int k) const {
    accumulate_gradient(grads[k], beta, T(0));
  }
  KOKKOS_INLINE_FUNCTION Kokkos::Array<T, 3> operator()(Terms, int i, int c, int p) const {
    std::size_t const j = std::size_t(c) * L::pixels + std::size_t(p);
    T const d = x(i, j) - mean[c];
    T const g = dy(i, j);
    return Kokkos::Array<T, 3>{d * d, g, g * d};
  }
  KOKKOS_INLINE_FUNCTION void operator()(Gradients, int c, Kokkos::Array<T, 3> const& s) const {
    T const iv = T(1) / Kokkos::sqrt(s[0] / count + T(L::eps));
    T const d_weight = s[2] * iv;
    inv[c] = iv;
    shift[c] = s[1] / count;
    slope[c] = d_weight / count;
    accumulate_gradient(grads[c], beta, d_weight);
    accumulate_gradient(grads[L::channels + c], beta, s[1]);
  }
  KOKKOS_INLINE_FUNCTION void operator()(Input, std::size_t i, std::size_t j) const {
    int const c = int(j / L::pixels);
    T const hat = (x(i, j) - mean[c]) * inv[c];
    dx(i, j) = weight[c] * inv[c] * (dy(i, j) - shift[c] - hat * slope[c]);
  }
};

}  // namespace detail

/// Batch normalization over C channels of Pixels values each: what
/// BatchNorm1d<N> (N channels of one value) and BatchNorm2dLayer<In> (an
/// image's channels of H * W pixels) are, each adding its name(). IsImage
/// picks the name in kernel labels and messages.
template <int C, int Pixels, bool IsImage>
struct BatchNormBase : LayerDefaults {
  static_assert(C > 0 && Pixels > 0, "ktnn::BatchNorm: sizes must be positive");
  static constexpr int channels = C;
  static constexpr int pixels = Pixels;
  static constexpr int in_features = C * Pixels;
  static constexpr int out_features = C * Pixels;
  static constexpr std::size_t param_count = 2 * std::size_t(C);      // weight, bias
  static constexpr std::size_t state_count = 2 * std::size_t(C) + 1;  // see describe_state
  static constexpr double eps = 1e-5;
  static constexpr double momentum = 0.1;

  static void describe(std::string const& prefix, std::size_t offset,
                       std::vector<ParameterInfo>& out) {
    out.push_back({prefix + "weight", offset, {std::size_t(C)}});
    out.push_back({prefix + "bias", offset + C, {std::size_t(C)}});
  }
  /// PyTorch's buffers: running_mean [C], running_var [C],
  /// num_batches_tracked (a scalar, shape []).
  static void describe_state(std::string const& prefix, std::size_t offset,
                             std::vector<ParameterInfo>& out) {
    out.push_back({prefix + "running_mean", offset, {std::size_t(C)}});
    out.push_back({prefix + "running_var", offset + C, {std::size_t(C)}});
    out.push_back({prefix + "num_batches_tracked", offset + 2 * std::size_t(C), {}});
  }
  /// weight ones, bias zeros; running mean zeros, running variance ones, no
  /// batches tracked: PyTorch's starting values.
  template <class ExecSpace, class T>
  static void initialize(ExecSpace const& exec, T* params, T* state, std::size_t, std::uint64_t,
                         Init) {
    Kokkos::parallel_for(
        label("initialize"), Kokkos::RangePolicy<ExecSpace>(exec, 0, 2 * C + 1),
        detail::BatchNormInitialize<BatchNormBase, T>{.params = params, .state = state});
  }

  /// Four values per channel (the batch statistics and backward's
  /// coefficients), then channel_sums' partial sums on devices.
  static constexpr std::size_t stats_size = 4 * std::size_t(C);
  template <class ExecSpace>
  static std::size_t workspace_size(ExecSpace const& exec, int batch) {
    return stats_size + detail::channel_sums_workspace<3, C, Pixels>(exec, batch);
  }

  /// Training mode: the batch's statistics (and the running ones updated);
  /// evaluation mode: the running statistics.
  template <class ExecSpace, class T, class Isa>
  static void forward(LayerContext<ExecSpace, T, Isa> const& ctx, Matrix<T const> x, Matrix<T> y) {
    using Kernels = detail::BatchNormForward<BatchNormBase, T>;
    Kernels kernels{
        .x = x, .y = y, .weight = ctx.parameters, .bias = ctx.parameters + C, .state = ctx.state};
    if (ctx.mode == Mode::evaluate) {
      ops::for_each_element(ctx.exec, label("forward::running").c_str(), std::size_t(x.rows),
                            std::size_t(C) * Pixels,
                            detail::tagged<typename Kernels::Running>(kernels));
      return;
    }
    if (x.rows == 0) return;
    kernels.mean = checked_stats(ctx, x.rows, "forward");
    kernels.inv = kernels.mean + C;
    batch_mean(ctx, x, kernels.mean, "forward::mean");
    std::size_t const n = std::size_t(x.rows) * Pixels;
    kernels.count = T(n);
    kernels.unbiased = T(double(n) / double(n - 1));
    kernels.keep = T(1 - momentum);
    kernels.move = T(momentum);
    detail::channel_sums<1, C, Pixels>(ctx.exec, ctx.workspace, stats_size,
                                       label("forward::variance"), x.rows,
                                       detail::tagged<typename Kernels::VarianceTerms>(kernels),
                                       detail::tagged<typename Kernels::VarianceFinish>(kernels));
    ops::for_each_element(ctx.exec, label("forward::normalize").c_str(), std::size_t(x.rows),
                          std::size_t(C) * Pixels,
                          detail::tagged<typename Kernels::Normalize>(kernels));
  }

  /// Training mode, with x-hat = (x - mean) inv and n values per channel:
  ///   d bias = sum dy,  d weight = sum dy x-hat,
  ///   dx = weight inv (dy - d bias / n - x-hat d weight / n);
  /// evaluation mode: the same sums with the running statistics, and
  /// dx = dy weight inv.
  template <class ExecSpace, class T, class Isa>
  static void backward(LayerContext<ExecSpace, T, Isa> const& ctx, Matrix<T const> x,
                       Matrix<T const>, Matrix<T> dy, Matrix<T> dx) {
    using Kernels = detail::BatchNormBackward<BatchNormBase, T>;
    Kernels kernels{.x = x,
                    .dy = dy,
                    .dx = dx,
                    .weight = ctx.parameters,
                    .state = ctx.state,
                    .grads = ctx.gradients,
                    .beta = ctx.gradient_beta()};
    if (ctx.mode == Mode::evaluate) {
      detail::channel_sums<2, C, Pixels>(
          ctx.exec, ctx.workspace, stats_size, label("backward::running_parameters"), x.rows,
          detail::tagged<typename Kernels::RunningTerms>(kernels),
          detail::tagged<typename Kernels::RunningGradients>(kernels));
      if (dx.empty()) return;
      ops::for_each_element(ctx.exec, label("backward::running_input").c_str(), std::size_t(x.rows),
                            std::size_t(C) * Pixels,
                            detail::tagged<typename Kernels::RunningInput>(kernels));
      return;
    }
    if (x.rows == 0) {
      // No values: zero gradients (written over, or nothing added).
      Kokkos::parallel_for(
          label("backward::empty"),
          Kokkos::RangePolicy<ExecSpace, typename Kernels::Empty>(ctx.exec, 0, 2 * C), kernels);
      return;
    }
    kernels.mean = checked_stats(ctx, x.rows, "backward");
    kernels.inv = kernels.mean + C;
    kernels.shift = kernels.mean + 2 * C;
    kernels.slope = kernels.mean + 3 * C;
    batch_mean(ctx, x, kernels.mean, "backward::mean");
    kernels.count = T(std::size_t(x.rows) * Pixels);
    detail::channel_sums<3, C, Pixels>(ctx.exec, ctx.workspace, stats_size, label("backward::sums"),
                                       x.rows, detail::tagged<typename Kernels::Terms>(kernels),
                                       detail::tagged<typename Kernels::Gradients>(kernels));
    if (dx.empty()) return;
    ops::for_each_element(ctx.exec, label("backward::input").c_str(), std::size_t(x.rows),
                          std::size_t(C) * Pixels,
                          detail::tagged<typename Kernels::Input>(kernels));
  }

  /// One sample with the running statistics (evaluation mode), as
  /// model.inference() runs it.
  template <class P, class S>
  KOKKOS_INLINE_FUNCTION static void apply(P const* params, P const* state, S const* x, S* y) {
    for (int c = 0; c < C; ++c) {
      P const inv = P(1) / Kokkos::sqrt(state[C + c] + P(eps));
      for (int p = 0; p < Pixels; ++p) {
        std::size_t const j = std::size_t(c) * Pixels + std::size_t(p);
        y[j] = (x[j] - S(state[c])) * S(inv) * S(params[c]) + S(params[C + c]);
      }
    }
  }

 private:
  static std::string label(char const* step) {
    return std::string(IsImage ? "ktnn::BatchNorm2d::" : "ktnn::BatchNorm1d::") + step;
  }

  /// The per-channel block of the workspace, checked, for a training pass of
  /// `batch` samples (which must give more than one value per channel, as
  /// PyTorch requires).
  template <class ExecSpace, class T, class Isa>
  static T* checked_stats(LayerContext<ExecSpace, T, Isa> const& ctx, int batch, char const* step) {
    if (std::size_t(batch) * Pixels < 2)
      detail::fail(
          label(step),
          "training mode needs more than one value per channel to take batch statistics, got "
          "a batch of ",
          batch, " x ", Pixels, " value(s) per channel (switch to Mode::evaluate, or batch more)");
    if (ctx.workspace.size < stats_size)
      detail::fail(label(step), "workspace of ", ctx.workspace.size, " elements, ", stats_size,
                   " needed");
    return ctx.workspace.data;
  }

  /// mean[c] = the batch's mean of channel c.
  template <class ExecSpace, class T, class Isa>
  static void batch_mean(LayerContext<ExecSpace, T, Isa> const& ctx, Matrix<T const> x, T* mean,
                         char const* step) {
    using Kernels = detail::BatchMean<BatchNormBase, T>;
    Kernels const kernels{.x = x, .mean = mean, .count = T(std::size_t(x.rows) * Pixels)};
    detail::channel_sums<1, C, Pixels>(ctx.exec, ctx.workspace, stats_size, label(step), x.rows,
                                       detail::tagged<typename Kernels::Terms>(kernels),
                                       detail::tagged<typename Kernels::Finish>(kernels));
  }
};

/// PyTorch's nn.BatchNorm1d(N) on a batch of N features (see the file
/// comment).
template <int N>
struct BatchNorm1d : BatchNormBase<N, 1, false> {
  static std::string name() { return "BatchNorm1d<" + std::to_string(N) + ">"; }
};

namespace detail {
/// In if it is an image, else a one-pixel stand-in, so that a BatchNorm2d
/// after vectors stops at BatchNorm2dLayer's message.
template <class In>
using image_or_pixel = std::conditional_t<ImageShape<In>, In, Image<1, 1, 1>>;
}  // namespace detail

/// BatchNorm2d bound to the image shape In of the layer before.
template <class In>
struct BatchNorm2dLayer : BatchNormBase<detail::image_or_pixel<In>::channels,
                                        detail::image_or_pixel<In>::pixels, true> {
  static_assert(Shape<In>, "ktnn::BatchNorm2d: bound to something that is not a ktnn shape");
  static_assert(ImageShape<In> || !Shape<In>,
                "ktnn::BatchNorm2d normalizes the channels of an image and was placed after a "
                "layer with a vector output: use ktnn::BatchNorm1d<N> there");
  using in_shape = In;
  using out_shape = In;
  static constexpr bool preserves_shape = true;
  static std::string name() { return "BatchNorm2d<" + In::name() + ">"; }
};

/// PyTorch's nn.BatchNorm2d over the channels of the image the layer before
/// puts out (see the file comment).
struct BatchNorm2d {
  static constexpr bool binds_shape = true;
  static constexpr bool preserves_shape = true;
  template <class In>
  using bind = BatchNorm2dLayer<In>;
};

}  // namespace ktnn

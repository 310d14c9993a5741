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
#include <ktnn/core/kernel_linkage.hpp>
#include <ktnn/core/matrix.hpp>
#include <ktnn/core/shape.hpp>
#include <ktnn/layers/init.hpp>
#include <ktnn/layers/layer.hpp>
#include <ktnn/ops/elementwise.hpp>
#include <ktnn/ops/gemm.hpp>
#include <ktnn/ops/space.hpp>

#include <Kokkos_Core.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace ktnn {

namespace detail {
/// Threads per channel in the device form of channel_sums: enough (channel,
/// chunk) threads to fill the device, at least 64 values each. A function of
/// the device and the sizes alone, so the sums repeat bit for bit.
template <class ExecSpace>
int channel_chunks(ExecSpace const& exec, std::size_t length, int channels) {
  std::size_t const threads =
      std::size_t(ops::device_team_target(exec)) * ops::device_team_size<ExecSpace>;
  std::size_t chunks = threads / std::size_t(channels);
  std::size_t const most = (length + 63) / 64;
  if (chunks > most) chunks = most;
  if (chunks < 1) chunks = 1;
  return int(chunks);
}

/// Workspace elements channel_sums<K> takes for `batch` samples.
template <int K, int Channels, int Pixels, class ExecSpace>
std::size_t channel_sums_workspace(ExecSpace const& exec, int batch) {
  if constexpr (ops::device_kernels<ExecSpace>)
    return std::size_t(K) * Channels *
           std::size_t(channel_chunks(exec, std::size_t(batch) * Pixels, Channels));
  else
    return 0;
}

/// For every channel c < Channels, K sums over the samples i < batch and the
/// channel's pixels p < Pixels of values(i, c, p) (a Kokkos::Array<T, K>),
/// handed to finish(c, sums) once per channel, in a kernel. The order of
/// every sum is fixed by the sizes (and, on devices, the device), never by
/// the scheduling: runs repeat bit for bit.
///
/// Host spaces: a work item per channel; each sample's pixels go to eight
/// running sums (so the loop vectorizes), then to the channel's sum.
/// Devices: `chunks` threads per channel, thread k summing the channel's
/// values k, k + chunks, ... (neighbouring threads read neighbouring
/// pixels) into partial sums in the workspace from `offset` on; then a team
/// per channel sums its chunks.
template <int K, int Channels, int Pixels, class ExecSpace, class T, class Values, class Finish,
          class KtnnTU = ::ktnn::detail::ThisTU>
void channel_sums(ExecSpace const& exec, ops::Workspace<T> const& work, std::size_t offset,
                  std::string const& label, int batch, Values const& values, Finish const& finish) {
  using Sums = Kokkos::Array<T, K>;
  if constexpr (ops::device_kernels<ExecSpace>) {
    std::size_t const length = std::size_t(batch) * Pixels;
    int const chunks = channel_chunks(exec, length, Channels);
    std::size_t const needed = offset + std::size_t(K) * Channels * chunks;
    if (work.size < needed)
      fail(label, "workspace of ", work.size, " elements, ", needed, " needed for batch ", batch);
    T* const partial = work.data + offset;
    Kokkos::parallel_for(
        label, Kokkos::RangePolicy<ExecSpace>(exec, 0, std::size_t(Channels) * chunks),
        KOKKOS_LAMBDA(std::size_t e) {
          int const c = int(e / chunks), k = int(e - std::size_t(c) * chunks);
          Sums acc = {};
          for (std::size_t t = k; t < length; t += chunks) {
            std::size_t const i = t / Pixels;
            Sums const v = values(int(i), c, int(t - i * Pixels));
            for (int q = 0; q < K; ++q) acc[q] += v[q];
          }
          for (int q = 0; q < K; ++q)
            partial[(std::size_t(q) * Channels + c) * chunks + k] = acc[q];
        });
    using Policy = Kokkos::TeamPolicy<ExecSpace>;
    Kokkos::parallel_for(
        label + "::total", Policy(exec, Channels, ops::device_team_size<ExecSpace>),
        KOKKOS_LAMBDA(typename Policy::member_type const& team) {
          int const c = team.league_rank();
          Sums sums = {};
          for (int q = 0; q < K; ++q) {
            T const* block = partial + (std::size_t(q) * Channels + c) * chunks;
            Kokkos::parallel_reduce(
                Kokkos::TeamThreadRange(team, chunks), [&](int k, T& local) { local += block[k]; },
                sums[q]);
          }
          Kokkos::single(Kokkos::PerTeam(team), [&] { finish(c, sums); });
        });
  } else {
    (void)work, (void)offset;
    constexpr int lanes = 8;
    Kokkos::parallel_for(
        label, Kokkos::RangePolicy<ExecSpace>(exec, 0, Channels), KOKKOS_LAMBDA(int c) {
          Sums total = {};
          for (int i = 0; i < batch; ++i) {
            T lane[K][lanes] = {};
            int p = 0;
            for (; p + lanes <= Pixels; p += lanes)
              for (int l = 0; l < lanes; ++l) {
                Sums const v = values(i, c, p + l);
                for (int q = 0; q < K; ++q) lane[q][l] += v[q];
              }
            for (; p < Pixels; ++p) {
              Sums const v = values(i, c, p);
              for (int q = 0; q < K; ++q) lane[q][0] += v[q];
            }
            for (int q = 0; q < K; ++q) {
              T sum = lane[q][0];
              for (int l = 1; l < lanes; ++l) sum += lane[q][l];
              total[q] += sum;
            }
          }
          finish(c, total);
        });
  }
}

/// g (+)= v by the gradient_beta of a context (0: overwrite, 1: add).
template <class T>
KOKKOS_INLINE_FUNCTION void accumulate_gradient(T& g, T beta, T v) {
  g = beta == T(0) ? v : g + v;
}
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
  template <class ExecSpace, class T, class KtnnTU = ::ktnn::detail::ThisTU>
  static void initialize(ExecSpace const& exec, T* params, T*, std::size_t, std::uint64_t, Init) {
    Kokkos::parallel_for(
        "ktnn::LayerNorm::initialize", Kokkos::RangePolicy<ExecSpace>(exec, 0, 2 * N),
        KOKKOS_LAMBDA(int k) { params[k] = k < N ? T(1) : T(0); });
  }
  template <class ExecSpace>
  static std::size_t workspace_size(ExecSpace const& exec, int batch) {
    return detail::channel_sums_workspace<2, N, 1>(exec, batch);
  }

  /// A thread per sample: its mean, then its variance about the mean.
  template <class ExecSpace, class T, class Isa, class KtnnTU = ::ktnn::detail::ThisTU>
  static void forward(LayerContext<ExecSpace, T, Isa> const& ctx, Matrix<T const> x, Matrix<T> y) {
    T const* weight = ctx.parameters;
    T const* bias = ctx.parameters + N;
    auto const saved = ctx.template saved_rows<N + 1>();
    Kokkos::parallel_for(
        "ktnn::LayerNorm::forward", Kokkos::RangePolicy<ExecSpace>(ctx.exec, 0, x.rows),
        KOKKOS_LAMBDA(int i) {
          T mean = 0;
          for (int j = 0; j < N; ++j) mean += x(i, j);
          mean /= T(N);
          T var = 0;
          for (int j = 0; j < N; ++j) var += (x(i, j) - mean) * (x(i, j) - mean);
          T const inv = T(1) / Kokkos::sqrt(var / T(N) + T(eps));
          for (int j = 0; j < N; ++j) {
            T const hat = (x(i, j) - mean) * inv;
            saved(i, j) = hat;
            y(i, j) = hat * weight[j] + bias[j];
          }
          saved(i, N) = inv;
        });
  }

  /// d weight = sum_i dy x-hat and d bias = sum_i dy (channel_sums over the
  /// batch); dx = inv / N (N g - sum_j g - x-hat sum_j g x-hat), g = dy weight,
  /// a thread per sample.
  template <class ExecSpace, class T, class Isa, class KtnnTU = ::ktnn::detail::ThisTU>
  static void backward(LayerContext<ExecSpace, T, Isa> const& ctx, Matrix<T const> x,
                       Matrix<T const>, Matrix<T> dy, Matrix<T> dx) {
    T const* weight = ctx.parameters;
    T* const grads = ctx.gradients;
    T const beta = ctx.gradient_beta();
    auto const saved = ctx.template saved_rows<N + 1>();
    detail::channel_sums<2, N, 1>(
        ctx.exec, ctx.workspace, 0, "ktnn::LayerNorm::backward::parameters", x.rows,
        KOKKOS_LAMBDA(int i, int j, int) {
          return Kokkos::Array<T, 2>{dy(i, j) * saved(i, j), dy(i, j)};
        },
        KOKKOS_LAMBDA(int j, Kokkos::Array<T, 2> const& s) {
          detail::accumulate_gradient(grads[j], beta, s[0]);
          detail::accumulate_gradient(grads[N + j], beta, s[1]);
        });
    if (dx.empty()) return;
    Kokkos::parallel_for(
        "ktnn::LayerNorm::backward::input", Kokkos::RangePolicy<ExecSpace>(ctx.exec, 0, x.rows),
        KOKKOS_LAMBDA(int i) {
          T sum = 0, dot = 0;
          for (int j = 0; j < N; ++j) {
            T const g = dy(i, j) * weight[j];
            sum += g;
            dot += g * saved(i, j);
          }
          T const inv_n = saved(i, N) / T(N);
          for (int j = 0; j < N; ++j)
            dx(i, j) = inv_n * (T(N) * dy(i, j) * weight[j] - sum - saved(i, j) * dot);
        });
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
/// BatchNorm over C channels of Pixels values each (BatchNorm1d: C features,
/// one pixel); `Image` picks the name in labels and messages.
template <int C, int Pixels, bool Image>
struct BatchNormBase : LayerDefaults {
  static_assert(C > 0 && Pixels > 0, "ktnn::BatchNorm: sizes must be positive");
  static constexpr int channels = C;
  static constexpr int in_features = C * Pixels;
  static constexpr int out_features = C * Pixels;
  static constexpr std::size_t param_count = 2 * std::size_t(C);      // weight, bias
  static constexpr std::size_t state_count = 2 * std::size_t(C) + 1;  // see describe_state
  static constexpr double eps = 1e-5;
  static constexpr double momentum = 0.1;

  static std::string label(char const* step) {
    return std::string(Image ? "ktnn::BatchNorm2d::" : "ktnn::BatchNorm1d::") + step;
  }

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
  template <class ExecSpace, class T, class KtnnTU = ::ktnn::detail::ThisTU>
  static void initialize(ExecSpace const& exec, T* params, T* state, std::size_t, std::uint64_t,
                         Init) {
    Kokkos::parallel_for(
        label("initialize"), Kokkos::RangePolicy<ExecSpace>(exec, 0, 2 * C + 1),
        KOKKOS_LAMBDA(int k) {
          if (k < 2 * C) params[k] = k < C ? T(1) : T(0);
          state[k] = k >= C && k < 2 * C ? T(1) : T(0);
        });
  }

  /// Four values per channel (the batch statistics and backward's
  /// coefficients), then channel_sums' partial sums on devices.
  static constexpr std::size_t stats_size = 4 * std::size_t(C);
  template <class ExecSpace>
  static std::size_t workspace_size(ExecSpace const& exec, int batch) {
    return stats_size + channel_sums_workspace<3, C, Pixels>(exec, batch);
  }

  /// Training mode: the batch's statistics (and the running ones updated);
  /// evaluation mode: the running statistics.
  template <class ExecSpace, class T, class Isa, class KtnnTU = ::ktnn::detail::ThisTU>
  static void forward(LayerContext<ExecSpace, T, Isa> const& ctx, Matrix<T const> x, Matrix<T> y) {
    T const* weight = ctx.parameters;
    T const* bias = ctx.parameters + C;
    T* const state = ctx.state;
    if (ctx.mode == Mode::evaluate) {
      ops::for_each_element(
          ctx.exec, label("forward::running").c_str(), std::size_t(x.rows), std::size_t(C) * Pixels,
          KOKKOS_LAMBDA(std::size_t i, std::size_t j) {
            int const c = int(j / Pixels);
            T const inv = T(1) / Kokkos::sqrt(state[C + c] + T(eps));
            y(i, j) = (x(i, j) - state[c]) * inv * weight[c] + bias[c];
          });
      return;
    }
    if (x.rows == 0) return;
    T* const mean = checked_stats(ctx, x.rows, "forward");
    T* const inv = mean + C;
    batch_mean(ctx, x, mean, "forward::mean");
    std::size_t const n = std::size_t(x.rows) * Pixels;
    T const count = T(n);
    T const unbiased = T(double(n) / double(n - 1));
    T const keep = T(1 - momentum), move = T(momentum);
    detail::channel_sums<1, C, Pixels>(
        ctx.exec, ctx.workspace, stats_size, label("forward::variance"), x.rows,
        KOKKOS_LAMBDA(int i, int c, int p) {
          T const d = x(i, c * Pixels + p) - mean[c];
          return Kokkos::Array<T, 1>{d * d};
        },
        KOKKOS_LAMBDA(int c, Kokkos::Array<T, 1> const& s) {
          T const var = s[0] / count;
          inv[c] = T(1) / Kokkos::sqrt(var + T(eps));
          state[c] = keep * state[c] + move * mean[c];
          state[C + c] = keep * state[C + c] + move * var * unbiased;
          if (c == 0) state[2 * C] += T(1);
        });
    ops::for_each_element(
        ctx.exec, label("forward::normalize").c_str(), std::size_t(x.rows), std::size_t(C) * Pixels,
        KOKKOS_LAMBDA(std::size_t i, std::size_t j) {
          int const c = int(j / Pixels);
          y(i, j) = (x(i, j) - mean[c]) * inv[c] * weight[c] + bias[c];
        });
  }

  /// Training mode, with x-hat = (x - mean) inv and n values per channel:
  ///   d bias = sum dy,  d weight = sum dy x-hat,
  ///   dx = weight inv (dy - d bias / n - x-hat d weight / n);
  /// evaluation mode: the same sums with the running statistics, and
  /// dx = dy weight inv.
  template <class ExecSpace, class T, class Isa, class KtnnTU = ::ktnn::detail::ThisTU>
  static void backward(LayerContext<ExecSpace, T, Isa> const& ctx, Matrix<T const> x,
                       Matrix<T const>, Matrix<T> dy, Matrix<T> dx) {
    T const* weight = ctx.parameters;
    T* const grads = ctx.gradients;
    T const beta = ctx.gradient_beta();
    T const* state = ctx.state;
    if (ctx.mode == Mode::evaluate) {
      detail::channel_sums<2, C, Pixels>(
          ctx.exec, ctx.workspace, stats_size, label("backward::running_parameters"), x.rows,
          KOKKOS_LAMBDA(int i, int c, int p) {
            std::size_t const j = std::size_t(c) * Pixels + std::size_t(p);
            T const inv = T(1) / Kokkos::sqrt(state[C + c] + T(eps));
            return Kokkos::Array<T, 2>{dy(i, j) * ((x(i, j) - state[c]) * inv), dy(i, j)};
          },
          KOKKOS_LAMBDA(int c, Kokkos::Array<T, 2> const& s) {
            detail::accumulate_gradient(grads[c], beta, s[0]);
            detail::accumulate_gradient(grads[C + c], beta, s[1]);
          });
      if (dx.empty()) return;
      ops::for_each_element(
          ctx.exec, label("backward::running_input").c_str(), std::size_t(x.rows),
          std::size_t(C) * Pixels, KOKKOS_LAMBDA(std::size_t i, std::size_t j) {
            int const c = int(j / Pixels);
            T const inv = T(1) / Kokkos::sqrt(state[C + c] + T(eps));
            dx(i, j) = dy(i, j) * weight[c] * inv;
          });
      return;
    }
    if (x.rows == 0) {
      // No values: zero gradients (written over, or nothing added).
      Kokkos::parallel_for(
          label("backward::empty"), Kokkos::RangePolicy<ExecSpace>(ctx.exec, 0, 2 * C),
          KOKKOS_LAMBDA(int k) { detail::accumulate_gradient(grads[k], beta, T(0)); });
      return;
    }
    T* const mean = checked_stats(ctx, x.rows, "backward");
    T* const inv = mean + C;
    T* const shift = mean + 2 * C;  // d bias / n
    T* const slope = mean + 3 * C;  // d weight / n
    batch_mean(ctx, x, mean, "backward::mean");
    T const count = T(std::size_t(x.rows) * Pixels);
    detail::channel_sums<3, C, Pixels>(
        ctx.exec, ctx.workspace, stats_size, label("backward::sums"), x.rows,
        KOKKOS_LAMBDA(int i, int c, int p) {
          std::size_t const j = std::size_t(c) * Pixels + std::size_t(p);
          T const d = x(i, j) - mean[c];
          T const g = dy(i, j);
          return Kokkos::Array<T, 3>{d * d, g, g * d};
        },
        KOKKOS_LAMBDA(int c, Kokkos::Array<T, 3> const& s) {
          T const iv = T(1) / Kokkos::sqrt(s[0] / count + T(eps));
          T const d_weight = s[2] * iv;
          inv[c] = iv;
          shift[c] = s[1] / count;
          slope[c] = d_weight / count;
          detail::accumulate_gradient(grads[c], beta, d_weight);
          detail::accumulate_gradient(grads[C + c], beta, s[1]);
        });
    if (dx.empty()) return;
    ops::for_each_element(
        ctx.exec, label("backward::input").c_str(), std::size_t(x.rows), std::size_t(C) * Pixels,
        KOKKOS_LAMBDA(std::size_t i, std::size_t j) {
          int const c = int(j / Pixels);
          T const hat = (x(i, j) - mean[c]) * inv[c];
          dx(i, j) = weight[c] * inv[c] * (dy(i, j) - shift[c] - hat * slope[c]);
        });
  }

  /// The per-channel block of the workspace, checked, for a training pass of
  /// `batch` samples (which must give more than one value per channel, as
  /// PyTorch requires).
  template <class ExecSpace, class T, class Isa>
  static T* checked_stats(LayerContext<ExecSpace, T, Isa> const& ctx, int batch, char const* step) {
    if (std::size_t(batch) * Pixels < 2)
      fail(label(step),
           "training mode needs more than one value per channel to take batch statistics, got "
           "a batch of ",
           batch, " x ", Pixels, " value(s) per channel (switch to Mode::evaluate, or batch more)");
    if (ctx.workspace.size < stats_size)
      fail(label(step), "workspace of ", ctx.workspace.size, " elements, ", stats_size, " needed");
    return ctx.workspace.data;
  }

  /// mean[c] = the batch's mean of channel c.
  template <class ExecSpace, class T, class Isa, class KtnnTU = ::ktnn::detail::ThisTU>
  static void batch_mean(LayerContext<ExecSpace, T, Isa> const& ctx, Matrix<T const> x, T* mean,
                         char const* step) {
    T const count = T(std::size_t(x.rows) * Pixels);
    detail::channel_sums<1, C, Pixels>(
        ctx.exec, ctx.workspace, stats_size, label(step), x.rows,
        KOKKOS_LAMBDA(int i, int c, int p) { return Kokkos::Array<T, 1>{x(i, c * Pixels + p)}; },
        KOKKOS_LAMBDA(int c, Kokkos::Array<T, 1> const& s) { mean[c] = s[0] / count; });
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
};

template <class In>
struct bind_batchnorm2d;
}  // namespace detail

/// PyTorch's nn.BatchNorm1d(N) on a batch of N features (see the file
/// comment).
template <int N>
struct BatchNorm1d : detail::BatchNormBase<N, 1, false> {
  static std::string name() { return "BatchNorm1d<" + std::to_string(N) + ">"; }
};

/// BatchNorm2d bound to the image shape In of the layer before.
template <class In>
struct BatchNorm2dLayer : detail::BatchNormBase<In::channels, In::pixels, true> {
  using in_shape = In;
  using out_shape = In;
  static constexpr bool preserves_shape = true;
  static std::string name() { return "BatchNorm2d<" + In::name() + ">"; }
};

namespace detail {
template <class In>
struct bind_batchnorm2d {
  static_assert(Shape<In>, "ktnn::BatchNorm2d: bound to something that is not a ktnn shape");
  static_assert(In::is_image,
                "ktnn::BatchNorm2d normalizes the channels of an image and was placed after a "
                "layer with a vector output: use ktnn::BatchNorm1d<N> there");
  using type = BatchNorm2dLayer<In>;
};
}  // namespace detail

/// PyTorch's nn.BatchNorm2d over the channels of the image the layer before
/// puts out (see the file comment).
struct BatchNorm2d {
  static constexpr bool binds_shape = true;
  static constexpr bool preserves_shape = true;
  template <class In>
  using bind = typename detail::bind_batchnorm2d<In>::type;
};

}  // namespace ktnn

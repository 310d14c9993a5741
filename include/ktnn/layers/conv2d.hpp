#pragma once
/// \file Conv2D<Image<C, H, W>, OutChannels, Kernel, options...>: a 2-D
/// convolution as torch.nn.Conv2d (groups = 1), weight [Out, C, K, K] then
/// bias [Out], on NCHW samples, optionally fused with an activation.
///
///   Conv2D<Image<1, 28, 28>, 32, 3, ReLU, Padding<1>>
///
/// The options, in any order: an activation, Stride<S>, Padding<P>,
/// Dilation<D> (defaults Identity, 1, 0, 1). The output shape is a type
/// (out_shape), so the next layer's input is checked at compile time.
///
/// Host spaces: a work item per sample lowers the sample to a K x pixels
/// matrix (im2col, K = C * Kernel^2) in a per-thread block of the workspace
/// and multiplies it by the weights with the register-tiled GEMM, bias and
/// activation fused in the epilogue, while the lowered sample is still in
/// that core's cache. Backward takes fixed chunks of samples: each chunk sums
/// its weight and bias gradients into a block of its own, and a last pass adds
/// the blocks in chunk order, so the result does not depend on the thread
/// count. The input gradient is W^T dz, folded back (col2im) per sample.
///
/// Devices: direct kernels, one thread per output (forward), per input
/// element (input gradient) and per (chunk of samples, weight) with a
/// deterministic second pass (weight and bias gradients).

#include <ktnn/core/error.hpp>
#include <ktnn/core/matrix.hpp>
#include <ktnn/core/shape.hpp>
#include <ktnn/layers/activation.hpp>
#include <ktnn/layers/dense.hpp>
#include <ktnn/layers/init.hpp>
#include <ktnn/layers/layer.hpp>
#include <ktnn/layers/window2d.hpp>
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
template <class... Options>
struct first_activation {
  using type = Identity;
};
template <class O, class... Options>
struct first_activation<O, Options...> {
  using type =
      std::conditional_t<ActivationFunction<O>, O, typename first_activation<Options...>::type>;
};

/// Forward epilogue of the host convolution: one sample's [Out][pixels]
/// block, bias per output channel (row i), activation, optional
/// pre-activation store.
template <class T, class Act>
struct ConvForwardEpilogue {
  T const* bias;
  T* y;
  T* z;  // only written when Act::needs_input
  int pixels;
  KOKKOS_INLINE_FUNCTION void operator()(int i, int j, T acc) const {
    T const pre = acc + bias[i];
    if constexpr (Act::needs_input) z[std::size_t(i) * pixels + j] = pre;
    y[std::size_t(i) * pixels + j] = Act::value(pre);
  }
};

/// Samples per block of the host weight gradient: fixed, so the sums do not
/// depend on the thread count.
inline constexpr int conv_chunk_samples = 4;

// The kernels of Conv2D: L is the layer, whose compile-time geometry they read.

/// Forward on host spaces, a work item per sample: the sample lowered
/// (im2col) into its thread's block of the workspace, multiplied by the
/// weights with the register tiles run serially, bias and activation in the
/// epilogue, while the lowered sample is still in that core's cache.
template <class L, class ExecSpace, class T, class Isa>
struct ConvForwardLowered {
  Kokkos::Experimental::UniqueToken<ExecSpace> token;
  T* work;
  T const* params;
  Matrix<T const> x;
  Matrix<T> y;
  Matrix<T> z;  // the pre-activations, when the activation needs its input
  KOKKOS_INLINE_FUNCTION void operator()(int n) const {
    using Tile = ops::GemmTile<T, Isa>;
    using Act = typename L::activation;
    int const id = token.acquire();
    T* const col = work + std::size_t(id) * L::per_thread;
    L::geometry::im2col(x.row(n), col);
    ConvForwardEpilogue<T, Act> const epilogue{
        params + L::weight_count, y.row(n), Act::needs_input ? z.row(n) : nullptr, L::out_pixels};
    serial_gemm<Tile::mr, Tile::nr>(Matrix<T const>{params, L::out_channels, L::patch, L::patch, 1},
                                    Matrix<T const>{col, L::patch, L::out_pixels, L::out_pixels, 1},
                                    epilogue);
    token.release(id);
  }
};

/// Backward on host spaces, a work item per chunk of conv_chunk_samples
/// samples: dz, its weight and bias gradients summed into the chunk's own
/// block of `partials`, and the input gradient col2im(W^T dz) per sample.
template <class L, class ExecSpace, class T, class Isa>
struct ConvBackwardLowered {
  Kokkos::Experimental::UniqueToken<ExecSpace> token;
  T* work;
  T* partials;
  T const* params;
  Matrix<T const> x;
  Matrix<T const> y;
  Matrix<T const> z;
  Matrix<T> dy;
  Matrix<T> dx;
  int batch;
  bool want_dx;
  KOKKOS_INLINE_FUNCTION void operator()(int b) const {
    using Tile = ops::GemmTile<T, Isa>;
    using Act = typename L::activation;
    constexpr int out_channels = L::out_channels, out_pixels = L::out_pixels, patch = L::patch;
    int const id = token.acquire();
    T* const col = work + std::size_t(id) * L::per_thread;
    T* const dz_t = col + std::size_t(patch) * out_pixels;
    T* const dcol = dz_t + std::size_t(out_pixels) * out_channels;
    T* const block = partials + std::size_t(b) * L::param_count;  // [patch][Out], then [Out]
    int const end = (b + 1) * conv_chunk_samples < batch ? (b + 1) * conv_chunk_samples : batch;
    for (int n = b * conv_chunk_samples; n < end; ++n) {
      bool const first = n == b * conv_chunk_samples;
      T* const dz = dy.row(n);
      T const* const yn = y.row(n);
      T const* const zn = Act::needs_input ? z.row(n) : nullptr;
      // dz^T = (dy * act'(z, y))^T for the weight product, and dz in place
      // where the input gradient needs it (a first layer's activations are
      // the largest; writing them back is a pass over memory), in blocks of
      // pixels whose rows of dz^T stay in L1 while every channel is written.
      for (int p0 = 0; p0 < out_pixels; p0 += L::transpose_block) {
        int const p1 = p0 + L::transpose_block < out_pixels ? p0 + L::transpose_block : out_pixels;
        for (int o = 0; o < out_channels; ++o) {
          std::size_t const base = std::size_t(o) * out_pixels;
          for (int p = p0; p < p1; ++p) {
            T const d = dz[base + p] *
                        Act::derivative(Act::needs_input ? zn[base + p] : T(0), yn[base + p]);
            if (want_dx) dz[base + p] = d;
            dz_t[std::size_t(p) * out_channels + o] = d;
          }
        }
      }
      // The bias gradient: sums over pixels, read from dz^T so that the loop
      // runs across channels and vectorizes (a sum along a row of dz would
      // be one serial chain of additions).
      T* const bias = block + L::weight_count;
      if (first)
        for (int o = 0; o < out_channels; ++o) bias[o] = T(0);
      for (int p = 0; p < out_pixels; ++p) {
        T const* const row = dz_t + std::size_t(p) * out_channels;
        for (int o = 0; o < out_channels; ++o) bias[o] += row[o];
      }
      L::geometry::im2col(x.row(n), col);
      // dW^T [patch][Out] (+)= col [patch][pixels] * dz^T [pixels][Out]
      serial_gemm<Tile::mr, Tile::nr>(
          Matrix<T const>{col, patch, out_pixels, out_pixels, 1},
          Matrix<T const>{dz_t, out_pixels, out_channels, out_channels, 1},
          ops::StoreScaled<T>{Matrix<T>{block, patch, out_channels, out_channels, 1},
                              first ? T(0) : T(1)});
      if (want_dx) {
        // dcol [patch][pixels] = W^T [patch][Out] * dz [Out][pixels]
        serial_gemm<Tile::mr, Tile::nr>(
            Matrix<T const>{params, patch, out_channels, 1, patch},
            Matrix<T const>{dz, out_channels, out_pixels, out_pixels, 1},
            ops::StoreScaled<T>{Matrix<T>{dcol, patch, out_pixels, out_pixels, 1}, T(0)});
        L::geometry::col2im(dcol, dx.row(n));
      }
    }
    token.release(id);
  }
};

/// The chunks' gradient blocks of ConvBackwardLowered added in chunk order
/// (the same bits at any thread count) and transposed back to PyTorch's
/// [Out][patch]: a work item per output channel.
template <class L, class T>
struct ConvSumBlocks {
  T const* partials;
  T* grads;
  T beta;
  int blocks;
  KOKKOS_INLINE_FUNCTION void operator()(int o) const {
    constexpr int patch = L::patch, out_channels = L::out_channels;
    constexpr std::size_t weight_count = L::weight_count;
    T sums[patch > 0 ? patch : 1];
    T bias = 0;
    for (int k = 0; k < patch; ++k) sums[k] = T(0);
    for (int b = 0; b < blocks; ++b) {
      T const* block = partials + std::size_t(b) * L::param_count;
      for (int k = 0; k < patch; ++k) sums[k] += block[std::size_t(k) * out_channels + o];
      bias += block[weight_count + o];
    }
    T* const g = grads + std::size_t(o) * patch;
    for (int k = 0; k < patch; ++k) g[k] = beta == T(0) ? sums[k] : g[k] + sums[k];
    grads[weight_count + o] = beta == T(0) ? bias : grads[weight_count + o] + bias;
  }
};

/// Forward on devices: a thread per output (n, e), from the definition.
template <class L, class T>
struct ConvForwardDirect {
  T const* params;
  Matrix<T const> x;
  Matrix<T> y;
  Matrix<T> z;  // the pre-activations, when the activation needs its input
  KOKKOS_INLINE_FUNCTION void operator()(std::size_t n, std::size_t e) const {
    using Act = typename L::activation;
    int const o = int(e / L::out_pixels), p = int(e - std::size_t(o) * L::out_pixels);
    T const pre = L::pre_activation(params, x.row(n), o, p);
    if constexpr (Act::needs_input) z(n, e) = pre;
    y(n, e) = Act::value(pre);
  }
};

/// dy *= act'(z, y), in place, on devices.
template <class L, class T>
struct ConvActivationGradient {
  Matrix<T const> y;
  Matrix<T const> z;
  Matrix<T> dy;
  KOKKOS_INLINE_FUNCTION void operator()(std::size_t n, std::size_t e) const {
    using Act = typename L::activation;
    dy(n, e) *= Act::derivative(Act::needs_input ? z(n, e) : T(0), y(n, e));
  }
};

/// Sample n's term of parameter j's gradient (weights, then biases), for
/// dense_bias_gradient's two deterministic passes on devices.
template <class L, class T>
struct ConvParameterTerm {
  Matrix<T const> x;
  Matrix<T> dy;
  KOKKOS_INLINE_FUNCTION T operator()(int n, int j) const {
    using G = typename L::geometry;
    constexpr int out_pixels = L::out_pixels, patch = L::patch, kernel = G::kernel;
    T const* dz = dy.row(n);
    if (std::size_t(j) >= L::weight_count) {
      int const o = j - int(L::weight_count);
      T sum = 0;
      for (int p = 0; p < out_pixels; ++p) sum += dz[o * out_pixels + p];
      return sum;
    }
    int const o = j / patch, k = j - o * patch;
    int const c = k / (kernel * kernel), kh = (k / kernel) % kernel, kw = k % kernel;
    T const* xn = x.row(n);
    T sum = 0;
    for (int oh = 0; oh < G::out_height; ++oh) {
      int const ih = oh * G::stride - G::padding + kh * G::dilation;
      if (ih < 0 || ih >= G::height) continue;
      for (int ow = 0; ow < G::out_width; ++ow) {
        int const iw = ow * G::stride - G::padding + kw * G::dilation;
        if (iw < 0 || iw >= G::width) continue;
        sum +=
            dz[o * out_pixels + oh * G::out_width + ow] * xn[(c * G::height + ih) * G::width + iw];
      }
    }
    return sum;
  }
};

/// The input gradient on devices: a thread per input element (n, e)
/// gathers from the windows that contain it.
template <class L, class T>
struct ConvInputGradient {
  T const* params;
  Matrix<T> dy;
  Matrix<T> dx;
  KOKKOS_INLINE_FUNCTION void operator()(std::size_t n, std::size_t e) const {
    using G = typename L::geometry;
    constexpr int out_pixels = L::out_pixels, patch = L::patch, kernel = G::kernel;
    int const c = int(e / G::in_pixels), rest = int(e - std::size_t(c) * G::in_pixels);
    int const ih = rest / G::width, iw = rest - ih * G::width;
    T const* dz = dy.row(n);
    T sum = 0;
    G::windows_containing(ih, iw, [&](int oh, int ow, int kh, int kw) {
      for (int o = 0; o < L::out_channels; ++o)
        sum += dz[o * out_pixels + oh * G::out_width + ow] *
               params[std::size_t(o) * patch + (c * kernel + kh) * kernel + kw];
    });
    dx(n, e) = sum;
  }
};
}  // namespace detail

/// A 2-D convolution (see the file comment).
template <ImageShape In, int OutChannels, int Kernel, class... Options>
struct Conv2D {
  static_assert(OutChannels > 0, "ktnn::Conv2D: OutChannels must be positive");
  static_assert(Kernel > 0, "ktnn::Conv2D: Kernel must be positive");
  static_assert((detail::conv_option<Options>::known && ...),
                "ktnn::Conv2D: an option is not an activation, ktnn::Stride<S>, ktnn::Padding<P> "
                "or ktnn::Dilation<D>");
  using activation = typename detail::first_activation<Options...>::type;
  /// Conv2d, then the activation's module unless it is Identity.
  static constexpr std::size_t torch_modules = std::is_same_v<activation, Identity> ? 1 : 2;
  static constexpr int stride = detail::first_set<0, 1, detail::conv_option<Options>::stride...>();
  static constexpr int padding =
      detail::first_set<-1, 0, detail::conv_option<Options>::padding...>();
  static constexpr int dilation =
      detail::first_set<0, 1, detail::conv_option<Options>::dilation...>();
  using geometry = detail::Window2D<In, Kernel, stride, padding, dilation>;
  static_assert(geometry::out_height > 0 && geometry::out_width > 0,
                "ktnn::Conv2D: the kernel (with its dilation) does not fit in the padded image");

  using in_shape = In;
  using out_shape = Image<OutChannels, geometry::out_height, geometry::out_width>;
  static constexpr int in_features = In::size;
  static constexpr int out_features = out_shape::size;
  static constexpr int in_channels = In::channels;
  static constexpr int out_channels = OutChannels;
  /// Rows of the lowered sample: one per (input channel, kernel row, kernel column).
  static constexpr int patch = In::channels * Kernel * Kernel;
  static constexpr int out_pixels = geometry::out_pixels;
  static constexpr std::size_t weight_count = std::size_t(OutChannels) * patch;
  static constexpr std::size_t param_count = weight_count + OutChannels;
  static constexpr std::size_t state_count = 0;
  static constexpr std::size_t saved_per_sample = activation::needs_input ? out_features : 0;

  static void describe(std::string const& prefix, std::size_t offset,
                       std::vector<ParameterInfo>& out) {
    out.push_back({prefix + "weight",
                   offset,
                   {std::size_t(OutChannels), std::size_t(In::channels), std::size_t(Kernel),
                    std::size_t(Kernel)}});
    out.push_back({prefix + "bias", offset + weight_count, {std::size_t(OutChannels)}});
  }
  static void describe_state(std::string const&, std::size_t, std::vector<ParameterInfo>&) {}

  /// Weights from the counter-based generator keyed by their arena index
  /// (fan in C * K^2, fan out Out * K^2, as PyTorch counts them); zero biases.
  template <class ExecSpace, class T>
  static void initialize(ExecSpace const& exec, T* params, T*, std::size_t arena_offset,
                         std::uint64_t seed, Init scheme) {
    detail::initialize_weights<activation>(exec, "ktnn::Conv2D::initialize", params, param_count,
                                           weight_count, arena_offset, seed, scheme, patch,
                                           OutChannels * Kernel * Kernel);
  }

  /// Host spaces: per thread, the lowered sample, dz^T and the lowered input
  /// gradient; then per chunk of samples a weight and bias gradient block.
  /// Devices: the per-(chunk, weight) partial sums of the gradients.
  template <class ExecSpace>
  static std::size_t workspace_size(ExecSpace const& exec, int batch) {
    if constexpr (ops::device_kernels<ExecSpace>) {
      return std::size_t(detail::column_chunks(exec, batch, int(param_count))) * param_count;
    } else {
      return std::size_t(exec.concurrency()) * per_thread +
             std::size_t(chunks(batch)) * param_count;
    }
  }

  template <class ExecSpace, class T, class Isa>
  static void forward(LayerContext<ExecSpace, T, Isa> const& ctx, Matrix<T const> x, Matrix<T> y) {
    check_workspace(ctx, x.rows, "ktnn::Conv2D::forward");
    Matrix<T> z;
    if constexpr (activation::needs_input) z = ctx.template saved_rows<out_features>();
    if constexpr (ops::device_kernels<ExecSpace>)
      forward_direct(ctx, x, y, z);
    else
      forward_lowered(ctx, x, y, z);
  }

  /// `dy` holds dL/dy on entry and may be overwritten (with dL/dz).
  template <class ExecSpace, class T, class Isa>
  static void backward(LayerContext<ExecSpace, T, Isa> const& ctx, Matrix<T const> x,
                       Matrix<T const> y, Matrix<T> dy, Matrix<T> dx) {
    check_workspace(ctx, x.rows, "ktnn::Conv2D::backward");
    Matrix<T const> z;
    if constexpr (activation::needs_input) z = ctx.template saved_rows<out_features>();
    if constexpr (ops::device_kernels<ExecSpace>)
      backward_direct(ctx, x, y, z, dy, dx);
    else
      backward_lowered(ctx, x, y, z, dy, dx);
  }

  /// One sample: y[Out][pixels] = act(W * x + b). P is the parameter type,
  /// S the value type (the same, or a Jet for input derivatives).
  template <class P, class S>
  KOKKOS_INLINE_FUNCTION static void apply(P const* params, P const*, S const* x, S* y) {
    for (int o = 0; o < OutChannels; ++o)
      for (int p = 0; p < out_pixels; ++p)
        y[o * out_pixels + p] = detail::activate<activation>(pre_activation(params, x, o, p));
  }

  static std::string name() {
    std::string out =
        "Conv2D<" + In::name() + ", " + std::to_string(OutChannels) + ", " + std::to_string(Kernel);
    if (!std::is_same_v<activation, Identity>) out += std::string(", ") + activation::name;
    if (stride != 1) out += ", Stride<" + std::to_string(stride) + ">";
    if (padding != 0) out += ", Padding<" + std::to_string(padding) + ">";
    if (dilation != 1) out += ", Dilation<" + std::to_string(dilation) + ">";
    return out + ">";
  }

  /// The pre-activation of output (o, p) of one sample, straight from the
  /// definition (the device forward and the per-sample call).
  template <class S, class P>
  KOKKOS_INLINE_FUNCTION static S pre_activation(P const* params, S const* x, int o, int p) {
    using G = geometry;
    int const oh = p / G::out_width, ow = p - oh * G::out_width;
    S acc = S(params[weight_count + o]);
    P const* w = params + std::size_t(o) * patch;
    for (int c = 0; c < G::channels; ++c)
      for (int kh = 0; kh < Kernel; ++kh) {
        int const ih = oh * stride - padding + kh * dilation;
        if (ih < 0 || ih >= G::height) continue;
        for (int kw = 0; kw < Kernel; ++kw) {
          int const iw = ow * stride - padding + kw * dilation;
          if (iw < 0 || iw >= G::width) continue;
          acc += x[(c * G::height + ih) * G::width + iw] * w[(c * Kernel + kh) * Kernel + kw];
        }
      }
    return acc;
  }

  /// Workspace of one host thread: the lowered sample, dz^T and the lowered
  /// input gradient.
  static constexpr std::size_t per_thread =
      2 * std::size_t(patch) * out_pixels + std::size_t(out_pixels) * OutChannels;
  /// Pixels per block of the host backward's transpose of dz.
  static constexpr int transpose_block = 16;

 private:
  static int chunks(int batch) {
    return (batch + detail::conv_chunk_samples - 1) / detail::conv_chunk_samples;
  }

  /// The per-thread blocks of the workspace are counted by the space's
  /// concurrency; the tokens that pick one must not outnumber them.
  static void check_token(int tokens, int concurrency) {
    if (tokens > concurrency)
      detail::fail("ktnn::Conv2D", tokens, " thread tokens for ", concurrency,
                   " per-thread workspace blocks in ", name());
  }

  template <class ExecSpace, class T, class Isa>
  static void check_workspace(LayerContext<ExecSpace, T, Isa> const& ctx, int batch,
                              char const* operation) {
    std::size_t const need = workspace_size(ctx.exec, batch);
    if (ctx.workspace.size < need)
      detail::fail(operation, "workspace of ", ctx.workspace.size, " elements, ", need,
                   " needed for batch ", batch, " in ", name());
  }

  template <class ExecSpace, class T, class Isa>
  static void forward_lowered(LayerContext<ExecSpace, T, Isa> const& ctx, Matrix<T const> x,
                              Matrix<T> y, Matrix<T> z) {
    Kokkos::Experimental::UniqueToken<ExecSpace> token(ctx.exec);
    check_token(token.size(), ctx.exec.concurrency());
    Kokkos::parallel_for(
        "ktnn::Conv2D::forward", Kokkos::RangePolicy<ExecSpace>(ctx.exec, 0, x.rows),
        detail::ConvForwardLowered<Conv2D, ExecSpace, T, Isa>{.token = token,
                                                              .work = ctx.workspace.data,
                                                              .params = ctx.parameters,
                                                              .x = x,
                                                              .y = y,
                                                              .z = z});
  }

  template <class ExecSpace, class T, class Isa>
  static void backward_lowered(LayerContext<ExecSpace, T, Isa> const& ctx, Matrix<T const> x,
                               Matrix<T const> y, Matrix<T const> z, Matrix<T> dy, Matrix<T> dx) {
    int const batch = x.rows;
    int const blocks = chunks(batch);
    Kokkos::Experimental::UniqueToken<ExecSpace> token(ctx.exec);
    check_token(token.size(), ctx.exec.concurrency());
    T* const work = ctx.workspace.data;
    T* const partials = work + std::size_t(ctx.exec.concurrency()) * per_thread;
    Kokkos::parallel_for(
        "ktnn::Conv2D::backward", Kokkos::RangePolicy<ExecSpace>(ctx.exec, 0, blocks),
        detail::ConvBackwardLowered<Conv2D, ExecSpace, T, Isa>{.token = token,
                                                               .work = work,
                                                               .partials = partials,
                                                               .params = ctx.parameters,
                                                               .x = x,
                                                               .y = y,
                                                               .z = z,
                                                               .dy = dy,
                                                               .dx = dx,
                                                               .batch = batch,
                                                               .want_dx = !dx.empty()});
    // The blocks in chunk order, transposed back to PyTorch's [Out][patch].
    Kokkos::parallel_for("ktnn::Conv2D::backward::sum_blocks",
                         Kokkos::RangePolicy<ExecSpace>(ctx.exec, 0, OutChannels),
                         detail::ConvSumBlocks<Conv2D, T>{.partials = partials,
                                                          .grads = ctx.gradients,
                                                          .beta = ctx.gradient_beta(),
                                                          .blocks = blocks});
  }

  template <class ExecSpace, class T, class Isa>
  static void forward_direct(LayerContext<ExecSpace, T, Isa> const& ctx, Matrix<T const> x,
                             Matrix<T> y, Matrix<T> z) {
    ops::for_each_element(
        ctx.exec, "ktnn::Conv2D::forward", std::size_t(x.rows), std::size_t(out_features),
        detail::ConvForwardDirect<Conv2D, T>{.params = ctx.parameters, .x = x, .y = y, .z = z});
  }

  template <class ExecSpace, class T, class Isa>
  static void backward_direct(LayerContext<ExecSpace, T, Isa> const& ctx, Matrix<T const> x,
                              Matrix<T const> y, Matrix<T const> z, Matrix<T> dy, Matrix<T> dx) {
    int const batch = x.rows;
    ops::for_each_element(ctx.exec, "ktnn::Conv2D::backward::activation", std::size_t(batch),
                          std::size_t(out_features),
                          detail::ConvActivationGradient<Conv2D, T>{.y = y, .z = z, .dy = dy});
    // Each weight's (and bias's) gradient: the sum over samples of its
    // per-sample term, in the two deterministic passes of Dense's bias.
    detail::dense_bias_gradient(ctx.exec, ctx.workspace, batch, int(param_count), ctx.gradients,
                                ctx.gradient_beta(),
                                detail::ConvParameterTerm<Conv2D, T>{.x = x, .dy = dy});
    if (dx.empty()) return;
    ops::for_each_element(
        ctx.exec, "ktnn::Conv2D::backward::input", std::size_t(batch), std::size_t(in_features),
        detail::ConvInputGradient<Conv2D, T>{.params = ctx.parameters, .dy = dy, .dx = dx});
  }
};

}  // namespace ktnn

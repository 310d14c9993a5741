#pragma once
/// \file Dense<In, Out, Activation>: y = activation(x W^T + b), with W stored as
/// PyTorch stores it, [Out, In] row-major, followed by b [Out].

#include <ktnn/core/error.hpp>
#include <ktnn/core/matrix.hpp>
#include <ktnn/layers/activation.hpp>
#include <ktnn/layers/init.hpp>
#include <ktnn/layers/layer.hpp>
#include <ktnn/ops/gemm.hpp>

#include <Kokkos_Core.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

namespace ktnn {

namespace detail {
/// Forward epilogue of Dense: bias, optional pre-activation store, activation.
template <class T, class Act>
struct DenseForwardEpilogue {
  T const* bias;
  Matrix<T> y;
  Matrix<T> z;  // only written when Act::needs_input
  Matrix<T> output() const { return y; }
  KOKKOS_INLINE_FUNCTION void operator()(int i, int j, T acc) const {
    T const pre = acc + bias[j];
    if constexpr (Act::needs_input) z(i, j) = pre;
    y(i, j) = Act::value(pre);
  }
};
/// The initialize of a layer whose `count` parameters are `weights` weights
/// of a fan_in x fan_out scheme (Init::Auto: Act's preferred_init) followed
/// by zero biases.
template <class Act, class ExecSpace, class T>
void initialize_weights(ExecSpace const& exec, char const* label, T* params, std::size_t count,
                        std::size_t weights, std::size_t arena_offset, std::uint64_t seed,
                        Init scheme, int fan_in, int fan_out) {
  if (scheme == Init::Auto) scheme = preferred_init<Act>;
  Kokkos::parallel_for(label, Kokkos::RangePolicy<ExecSpace>(exec, 0, count),
                       InitialWeights<T>{.params = params,
                                         .weights = weights,
                                         .scheme = scheme,
                                         .seed = seed,
                                         .arena_offset = arena_offset,
                                         .fan_in = fan_in,
                                         .fan_out = fan_out});
}

/// Row chunks of the device bias-gradient pass: enough (chunk, column) threads
/// to fill the device, chunks of at least 16 rows; none for an empty batch.
template <class ExecSpace>
int column_chunks(ExecSpace const& exec, int batch, int columns) {
  if (batch <= 0) return 0;
  int const threads = ops::device_team_target(exec) * ops::device_team_size<ExecSpace>;
  int chunks = threads / columns;
  int const most = (batch + 15) / 16;
  if (chunks > most) chunks = most;
  if (chunks < 1) chunks = 1;
  int const rows = (batch + chunks - 1) / chunks;
  return (batch + rows - 1) / rows;
}

/// Epilogue of the linear part of Dense in Taylor mode: the bias goes to the
/// value rows only (every K-th row; K a constant, so no division per
/// element), derivative rows are linear in the input.
template <class T, int K>
struct TaylorLinearEpilogue {
  T const* bias;
  Matrix<T> z;
  Matrix<T> output() const { return z; }
  KOKKOS_INLINE_FUNCTION void operator()(int i, int j, T acc) const {
    z(i, j) = i % K == 0 ? acc + bias[j] : acc;
  }
};

/// The linear product of Dense<In, Out>, x W^T through `epilogue`: W^T is W
/// read through transposed strides (the host kernel packs its panels).
template <int In, int Out, class ExecSpace, class T, class Isa, class Epilogue>
void dense_product(LayerContext<ExecSpace, T, Isa> const& ctx, char const* label, Matrix<T const> x,
                   Epilogue const& epilogue) {
  auto w = row_major(ctx.parameters, Out, In);
  ops::gemm<Isa>(ctx.exec, label, x, Matrix<T const>(w).transposed(), x.rows, Out, epilogue,
                 ctx.workspace);
}

/// The kernels of dense_bias_gradient: for each column j, the sum over the
/// samples of dz_at(i, j), written over or added to grad_bias by grad_beta.
/// On devices a thread per (chunk of `rows` samples, column) into `partial`
/// (ChunkSums), then a team per column sums the chunks in order (Totals); on
/// host spaces a work item per column (Columns).
template <class ExecSpace, class T, class DzAt>
struct BiasGradient {
  struct ChunkSums {};
  struct Totals {};
  struct Columns {};
  DzAt dz_at;
  T* partial = nullptr;
  T* grad_bias;
  T grad_beta;
  int samples;
  int columns;
  int rows = 0;
  int chunks = 0;

  KOKKOS_INLINE_FUNCTION void operator()(ChunkSums, std::size_t e) const {
    int const c = int(e / columns), j = int(e - std::size_t(c) * columns);
    int const end = (c + 1) * rows < samples ? (c + 1) * rows : samples;
    T sum = 0;
    for (int i = c * rows; i < end; ++i) sum += dz_at(i, j);
    partial[e] = sum;
  }
  KOKKOS_INLINE_FUNCTION void operator()(
      Totals, typename Kokkos::TeamPolicy<ExecSpace>::member_type const& team) const {
    int const j = team.league_rank();
    T sum = 0;
    Kokkos::parallel_reduce(
        Kokkos::TeamThreadRange(team, chunks),
        [&](int c, T& local) { local += partial[std::size_t(c) * columns + j]; }, sum);
    Kokkos::single(Kokkos::PerTeam(team),
                   [&] { grad_bias[j] = grad_beta == T(0) ? sum : grad_bias[j] + sum; });
  }
  KOKKOS_INLINE_FUNCTION void operator()(Columns, int j) const {
    T sum = 0;
    for (int i = 0; i < samples; ++i) sum += dz_at(i, j);
    grad_bias[j] = grad_beta == T(0) ? sum : grad_bias[j] + sum;
  }
};

/// The bias gradient of Dense: for each column j, the sum over `samples` of
/// dz(i, j) = dz_at(i, j) (which also writes whatever dz it owns in place),
/// written over or added to grad_bias by grad_beta. On devices a thread per
/// (chunk of samples, column) and then a team per column sums the chunks in
/// a fixed order, so the result repeats bit for bit; on host spaces a work
/// item per column.
template <class ExecSpace, class T, class DzAt>
void dense_bias_gradient(ExecSpace const& exec, ops::Workspace<T> const& work, int samples,
                         int columns, T* grad_bias, T grad_beta, DzAt const& dz_at) {
  using Kernel = BiasGradient<ExecSpace, T, DzAt>;
  if constexpr (ops::device_kernels<ExecSpace>) {
    int const chunks = column_chunks(exec, samples, columns);
    if (std::size_t(chunks) * columns > work.size)
      detail::fail("ktnn::Dense::backward", "workspace of ", work.size, " elements, ",
                   std::size_t(chunks) * columns, " needed for batch ", samples);
    int const rows = chunks > 0 ? (samples + chunks - 1) / chunks : 0;
    Kernel const kernel{.dz_at = dz_at,
                        .partial = work.data,
                        .grad_bias = grad_bias,
                        .grad_beta = grad_beta,
                        .samples = samples,
                        .columns = columns,
                        .rows = rows,
                        .chunks = chunks};
    Kokkos::parallel_for("ktnn::Dense::backward::activation_bias",
                         Kokkos::RangePolicy<ExecSpace, typename Kernel::ChunkSums>(
                             exec, 0, std::size_t(chunks) * columns),
                         kernel);
    Kokkos::parallel_for("ktnn::Dense::backward::bias_sum",
                         Kokkos::TeamPolicy<ExecSpace, typename Kernel::Totals>(
                             exec, columns, ops::device_team_size<ExecSpace>),
                         kernel);
  } else {
    Kokkos::parallel_for("ktnn::Dense::backward::activation_bias",
                         Kokkos::RangePolicy<ExecSpace, typename Kernel::Columns>(exec, 0, columns),
                         Kernel{.dz_at = dz_at,
                                .grad_bias = grad_bias,
                                .grad_beta = grad_beta,
                                .samples = samples,
                                .columns = columns});
  }
}

/// grad_bias[j] (+)= sum over samples i of dz(i k, j), on host cores: a work
/// item per block of columns walks the rows in order (each column's sum in
/// the same order as a column-by-column loop, so the same bits), reading
/// contiguous runs of a row instead of one element per row.
template <class T>
struct ValueRowColumnSums {
  static constexpr int block = 16;
  Matrix<T const> dz;
  int k;
  int samples;
  T* grad_bias;
  T grad_beta;
  KOKKOS_INLINE_FUNCTION void operator()(int b) const {
    int const columns = dz.cols;
    int const j0 = b * block;
    int const width = columns - j0 < block ? columns - j0 : block;
    T sum[block] = {};
    for (int i = 0; i < samples; ++i) {
      T const* row = dz.row(std::ptrdiff_t(i) * k) + j0 * dz.col_stride;
      for (int j = 0; j < width; ++j) sum[j] += row[j * dz.col_stride];
    }
    for (int j = 0; j < width; ++j)
      grad_bias[j0 + j] = grad_beta == T(0) ? sum[j] : grad_bias[j0 + j] + sum[j];
  }
};

/// dz = dy * act'(z, y) of Dense's backward, written into dy in place and
/// returned for the bias sum.
template <class Act, class T>
struct DenseActivationGradient {
  Matrix<T const> z;  // the pre-activations, when Act::needs_input
  Matrix<T const> y;
  Matrix<T> dy;
  KOKKOS_INLINE_FUNCTION T operator()(int i, int j) const {
    T const pre = Act::needs_input ? z(i, j) : T(0);
    T const d = dy(i, j) * Act::derivative(pre, y(i, j));
    dy(i, j) = d;
    return d;
  }
};

/// The adjoint of the Taylor activation pass for sample i, column j, written
/// into dy in place; returns the value row's adjoint (for the bias sum).
template <class Act, int K, class T>
struct TaylorActivationAdjointAt {
  Matrix<T const> z;
  Matrix<T const> y;
  Matrix<T> dy;
  KOKKOS_INLINE_FUNCTION T operator()(int i, int j) const {
    return taylor_activation_adjoint<Act, K>(i, j, z, y, Matrix<T const>(dy), dy);
  }
};

/// dy of sample i's value row (every K-th row), column j.
template <int K, class T>
struct ValueRowAt {
  Matrix<T> dy;
  KOKKOS_INLINE_FUNCTION T operator()(int i, int j) const { return dy(i * K, j); }
};

/// The two products of Dense's backward from dz: dW (+)= dz^T x and, unless
/// dx is empty, dx = dz W.
/// Elements the host register tile computes for an m x n product, padding
/// included.
template <class T, class Isa>
constexpr long padded_tile_work(int m, int n) {
  using Tile = ops::GemmTile<T, Isa>;
  return long((m + Tile::mr - 1) / Tile::mr) * Tile::mr * long((n + Tile::nr - 1) / Tile::nr) *
         Tile::nr;
}

/// The input gradient of Dense's backward, dx = dz W, times the derivative of
/// the layer below's activation `Below` (taken from that layer's output,
/// which is this layer's input x) when the runner hands it down, so that the
/// layer below starts from dL/dz and needs no pass of its own for it. The
/// product is the one DenseActivationGradient would form (the same bits).
///
/// With a layer below, dx and x are the runner's row-major buffers, and the
/// host tile hands over a row at a time (`row`): a loop over contiguous
/// columns that vectorizes. Element by element, through two runtime column
/// strides, it stayed scalar with a branch per element and took longer than
/// the product (other strides still go that way).
template <class T, class Below>
struct InputGradientEpilogue {
  Matrix<T> dx;
  Matrix<T const> x;
  Matrix<T> output() const { return dx; }
  KOKKOS_INLINE_FUNCTION void operator()(int i, int j, T acc) const {
    if constexpr (std::is_same_v<Below, Identity>)
      dx(i, j) = acc;
    else
      dx(i, j) = acc * Below::derivative(T(0), x(i, j));
  }
  template <int N>
    requires(!std::is_same_v<Below, Identity>)
  KOKKOS_INLINE_FUNCTION void row(int i, int j0, T const (&acc)[N]) const {
    if (dx.col_stride != 1 || x.col_stride != 1) {  // not the runner's buffers
      for (int j = 0; j < N; ++j) (*this)(i, j0 + j, acc[j]);
      return;
    }
    T* KOKKOS_RESTRICT out = dx.row(i) + j0;
    T const* KOKKOS_RESTRICT below = x.row(i) + j0;
    // The derivatives first: multiplied in the same loop, a piecewise
    // derivative (ReLU's 0 or 1) is folded into a branch per element.
    T slope[N];
    KTNN_IMPL_SIMD_LOOP
    for (int j = 0; j < N; ++j) slope[j] = Below::derivative(T(0), below[j]);
    KTNN_IMPL_SIMD_LOOP
    for (int j = 0; j < N; ++j) out[j] = acc[j] * slope[j];
  }
};

/// The bias gradient as the lead of Dense's products launch on host spaces:
/// a work item per block of columns (ValueRowColumnSums).
template <class T>
struct BiasSumsLead {
  static constexpr char const* label = "ktnn::Dense::backward::bias";
  ValueRowColumnSums<T> sums;
  int items = 0;
  KOKKOS_INLINE_FUNCTION void operator()(int b) const { sums(b); }
};

/// The bias sums over every k-th row of dz's first `samples * k` rows.
template <class T>
BiasSumsLead<T> bias_sums_lead(Matrix<T const> dz, int k, int samples, T* grad_bias, T grad_beta) {
  using Sums = ValueRowColumnSums<T>;
  return {.sums = {.dz = dz,
                   .k = k,
                   .samples = samples,
                   .grad_bias = grad_bias,
                   .grad_beta = grad_beta},
          .items = (dz.cols + Sums::block - 1) / Sums::block};
}

/// The products of Dense's backward from dz: dW (+)= dz^T x and, unless dx is
/// empty, dx = dz W (through InputGradientEpilogue<T, Below>), after `lead`;
/// on host spaces all in one launch.
template <int In, int Out, class Below = Identity, class ExecSpace, class T, class Isa,
          class Lead = ops::NoLead>
void dense_backward_products(LayerContext<ExecSpace, T, Isa> const& ctx, Matrix<T const> dz,
                             Matrix<T const> x, Matrix<T> dx, Lead const& lead = {}) {
  auto const dw = row_major(ctx.gradients, Out, In);
  auto const w = Matrix<T const>(row_major(ctx.parameters, Out, In));
  using Weights = ops::Product<T, ops::StoreScaled<T>>;
  using Input = ops::Product<T, InputGradientEpilogue<T, Below>>;
  auto products = [&](Matrix<T const> a, Matrix<T const> b, Matrix<T> c) {
    Weights const weights{"ktnn::Dense::backward::weights", a, b, {c, ctx.gradient_beta()}};
    Input const input = dx.empty() ? Input{"ktnn::Dense::backward::input", {}, {}, {}}
                                   : Input{"ktnn::Dense::backward::input", dz, w, {dx, x}};
    ops::gemm_pair<Isa>(ctx.exec, "ktnn::Dense::backward::products", weights, input, ctx.workspace,
                        lead);
  };
  // A narrow input (a network's first layer on a few coordinates) leaves
  // most of a register tile's columns empty in dW = dz^T x; dW^T = x^T dz
  // is the same sums in the same order on a tile that fits, written through
  // dW's transposed strides.
  if constexpr (!ops::device_kernels<ExecSpace> &&
                2 * padded_tile_work<T, Isa>(In, Out) < padded_tile_work<T, Isa>(Out, In))
    products(x.transposed(), dz, dw.transposed());
  else
    products(dz.transposed(), x, dw);
}
}  // namespace detail

/// A fully connected layer with In inputs and Out outputs, optionally fused
/// with an activation (the activation's derivative comes from its output, or
/// from the pre-activation kept in the saved block when it needs its input).
template <int In, int Out, ActivationFunction Act = Identity>
struct Dense {
  static_assert(In > 0 && Out > 0, "ktnn::Dense: In and Out must be positive");
  static constexpr int in_features = In;
  static constexpr int out_features = Out;
  static constexpr std::size_t weight_count = std::size_t(In) * Out;
  static constexpr std::size_t param_count = weight_count + Out;
  static constexpr std::size_t state_count = 0;
  static constexpr std::size_t saved_per_sample = Act::needs_input ? Out : 0;
  using activation = Act;
  /// Linear, then the activation's module unless it is Identity.
  static constexpr std::size_t torch_modules = std::is_same_v<Act, Identity> ? 1 : 2;

  static void describe(std::string const& prefix, std::size_t offset,
                       std::vector<ParameterInfo>& out) {
    out.push_back({prefix + "weight", offset, {std::size_t(Out), std::size_t(In)}});
    out.push_back({prefix + "bias", offset + weight_count, {std::size_t(Out)}});
  }
  static void describe_state(std::string const&, std::size_t, std::vector<ParameterInfo>&) {}

  /// Weights from the counter-based generator keyed by their arena index
  /// (`arena_offset` + position), so a seed gives the same model everywhere;
  /// zero biases.
  template <class ExecSpace, class T>
  static void initialize(ExecSpace const& exec, T* params, T*, std::size_t arena_offset,
                         std::uint64_t seed, Init scheme) {
    detail::initialize_weights<Act>(exec, "ktnn::Dense::initialize", params, param_count,
                                    weight_count, arena_offset, seed, scheme, In, Out);
  }

  /// Workspace elements forward and backward use on `exec` for `batch` rows:
  /// on devices the split-K slices of the products and the per-chunk column
  /// sums of the bias gradient; none on host spaces.
  template <class ExecSpace>
  static std::size_t workspace_size(ExecSpace const& exec, int batch) {
    if constexpr (!ops::device_kernels<ExecSpace>) {
      (void)exec, (void)batch;
      return 0;
    } else {
      std::size_t size = ops::gemm_workspace_size(exec, batch, Out, In);  // forward
      auto grow = [&](std::size_t s) { size = s > size ? s : size; };
      grow(ops::gemm_workspace_size(exec, Out, In, batch));              // dW
      grow(ops::gemm_workspace_size(exec, batch, In, Out));              // dx
      grow(std::size_t(detail::column_chunks(exec, batch, Out)) * Out);  // db
      return size;
    }
  }

  /// Batched forward: y = act(x W^T + b), keeping z = x W^T + b in the saved
  /// block when the activation's derivative needs it.
  template <class ExecSpace, class T, class Isa>
  static void forward(LayerContext<ExecSpace, T, Isa> const& ctx, Matrix<T const> x, Matrix<T> y) {
    Matrix<T> z;
    if constexpr (Act::needs_input) z = ctx.template saved_rows<Out>();
    detail::DenseForwardEpilogue<T, Act> const epilogue{ctx.parameters + weight_count, y, z};
    detail::dense_product<In, Out>(ctx, "ktnn::Dense::forward", x, epilogue);
  }

  /// Batched backward. `dy` holds dL/dy on entry and is overwritten with
  /// dL/dz. Adds dL/dW and dL/db to the gradients or overwrites them (by
  /// ctx.accumulate); writes dL/dx into `dx` unless `dx` is empty.
  template <class ExecSpace, class T, class Isa>
  static void backward(LayerContext<ExecSpace, T, Isa> const& ctx, Matrix<T const> x,
                       Matrix<T const> y, Matrix<T> dy, Matrix<T> dx) {
    backward_fused<Identity, false>(ctx, x, y, dy, dx);
  }

  /// backward as the layer runner chains Dense layers (layers/runner.hpp):
  /// with DyIsDz, `dy` already holds dL/dz (the layer above applied this
  /// layer's activation derivative); `dx` gets dL/dx times the derivative of
  /// Below, the activation of the layer below (Identity: plain dL/dx). On
  /// host spaces the bias sums and both products are then one launch.
  template <class Below, bool DyIsDz, class ExecSpace, class T, class Isa>
  static void backward_fused(LayerContext<ExecSpace, T, Isa> const& ctx, Matrix<T const> x,
                             Matrix<T const> y, Matrix<T> dy, Matrix<T> dx) {
    T* const grad_bias = ctx.gradients + weight_count;
    constexpr bool dz_ready = DyIsDz || std::is_same_v<Act, Identity>;
    if constexpr (dz_ready && !ops::device_kernels<ExecSpace>) {
      // dz = dy: the bias sums lead the products' launch.
      detail::dense_backward_products<In, Out, Below>(
          ctx, Matrix<T const>(dy), x, dx,
          detail::bias_sums_lead(Matrix<T const>(dy), 1, x.rows, grad_bias, ctx.gradient_beta()));
      return;
    } else if constexpr (dz_ready) {
      detail::dense_bias_gradient(ctx.exec, ctx.workspace, x.rows, Out, grad_bias,
                                  ctx.gradient_beta(), detail::ValueRowAt<1, T>{.dy = dy});
    } else {
      Matrix<T const> z;
      if constexpr (Act::needs_input) z = ctx.template saved_rows<Out>();
      // dz = dy * act'(z, y) in place, and the bias gradient (column sums of
      // dz) in the same pass.
      detail::dense_bias_gradient(
          ctx.exec, ctx.workspace, x.rows, Out, grad_bias, ctx.gradient_beta(),
          detail::DenseActivationGradient<Act, T>{.z = z, .y = y, .dy = dy});
    }
    detail::dense_backward_products<In, Out, Below>(ctx, Matrix<T const>(dy), x, dx);
  }

  /// Values per Taylor row forward_taylor keeps for backward_taylor: the
  /// pre-activations, unless the activation is the identity.
  static constexpr std::size_t taylor_saved_per_row = std::is_same_v<Act, Identity> ? 0 : Out;

  /// Taylor mode (input derivatives, see ktnn/derivatives.hpp): `x` holds K
  /// rows per sample, the value, then its derivatives along each input
  /// direction, then its Laplacian; `y` gets the same of the output. The
  /// linear part is one product over all rows; the activation's first two
  /// derivatives push the rows through it.
  template <int K, class ExecSpace, class T, class Isa>
  static void forward_taylor(LayerContext<ExecSpace, T, Isa> const& ctx, Matrix<T const> x,
                             Matrix<T> y) {
    Matrix<T> z = y;
    if constexpr (!std::is_same_v<Act, Identity>) z = ctx.template saved_rows<Out>();
    detail::TaylorLinearEpilogue<T, K> const epilogue{ctx.parameters + weight_count, z};
    detail::dense_product<In, Out>(ctx, "ktnn::Dense::forward_taylor", x, epilogue);
    if constexpr (!std::is_same_v<Act, Identity>)
      detail::taylor_activation_forward<Act, K>(ctx.exec, "ktnn::Dense::forward_taylor::activation",
                                                Matrix<T const>(z), y);
  }

  /// The backward pass of forward_taylor: parameter gradients (by
  /// ctx.accumulate) and, unless empty, dx, from dy (overwritten).
  template <int K, class ExecSpace, class T, class Isa>
  static void backward_taylor(LayerContext<ExecSpace, T, Isa> const& ctx, Matrix<T const> x,
                              Matrix<T const> y, Matrix<T> dy, Matrix<T> dx) {
    T* const grad_bias = ctx.gradients + weight_count;
    int const samples = x.rows / K;
    constexpr bool fused = ops::device_kernels<ExecSpace> && !std::is_same_v<Act, Identity>;
    Matrix<T const> z;
    if constexpr (!std::is_same_v<Act, Identity>) z = ctx.template saved_rows<Out>();
    // On host cores the activation's adjoint is a pass of its own (it
    // vectorizes over columns); on devices it is fused into the bias pass.
    if constexpr (fused) {
      detail::dense_bias_gradient(
          ctx.exec, ctx.workspace, samples, Out, grad_bias, ctx.gradient_beta(),
          detail::TaylorActivationAdjointAt<Act, K, T>{.z = z, .y = y, .dy = dy});
    } else {
      if constexpr (!std::is_same_v<Act, Identity>)
        detail::taylor_activation_backward<Act, K>(
            ctx.exec, "ktnn::Dense::backward_taylor::activation", z, y, dy, dy);
      if constexpr (ops::device_kernels<ExecSpace>) {
        detail::dense_bias_gradient(ctx.exec, ctx.workspace, samples, Out, grad_bias,
                                    ctx.gradient_beta(), detail::ValueRowAt<K, T>{.dy = dy});
      } else {
        // The bias sums (over the value rows) lead the products' launch.
        detail::dense_backward_products<In, Out>(
            ctx, Matrix<T const>(dy), x, dx,
            detail::bias_sums_lead(Matrix<T const>(dy), K, samples, grad_bias,
                                   ctx.gradient_beta()));
        return;
      }
    }
    detail::dense_backward_products<In, Out>(ctx, Matrix<T const>(dy), x, dx);
  }

  /// One sample: y[Out] = act(W x + b). P is the parameter type, S the value
  /// type (the same, or a dual number for input derivatives).
  template <class P, class S>
  KOKKOS_INLINE_FUNCTION static void apply(P const* params, P const*, S const* x, S* y) {
    P const* bias = params + weight_count;
    for (int o = 0; o < Out; ++o) {
      P const* w = params + std::size_t(o) * In;
      S acc = S(bias[o]);
      for (int i = 0; i < In; ++i) acc += x[i] * w[i];
      y[o] = detail::activate<Act>(acc);
    }
  }

  static std::string name() {
    return "Dense<" + std::to_string(In) + ", " + std::to_string(Out) + ", " + Act::name + ">";
  }
};

}  // namespace ktnn

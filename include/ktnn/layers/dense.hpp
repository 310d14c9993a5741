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
    if (scheme == Init::Auto) scheme = preferred_init<Act>;
    Kokkos::parallel_for(
        "ktnn::Dense::initialize", Kokkos::RangePolicy<ExecSpace>(exec, 0, param_count),
        KOKKOS_LAMBDA(std::size_t p) {
          params[p] = p < weight_count
                          ? T(detail::init_value(scheme, seed, arena_offset + p, In, Out))
                          : T(0);
        });
  }

  /// Workspace elements forward and backward use on `exec` for `batch` rows:
  /// on host spaces the transposed weights (the GEMM there wants B's rows
  /// contiguous); on devices the split-K slices of the products and the
  /// per-chunk column sums of the bias gradient.
  template <class ExecSpace>
  static std::size_t workspace_size(ExecSpace const& exec, int batch) {
    if constexpr (!ops::gemm_takes_strided_b<ExecSpace>) {
      (void)exec, (void)batch;
      return weight_count;
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
    T const* params = ctx.parameters;
    auto w = row_major(params, Out, In);
    Matrix<T> z;
    if constexpr (Act::needs_input) z = ctx.template saved_rows<Out>();
    detail::DenseForwardEpilogue<T, Act> const epilogue{params + weight_count, y, z};
    if constexpr (ops::gemm_takes_strided_b<ExecSpace>) {
      ops::gemm<Isa>(ctx.exec, "ktnn::Dense::forward", x, Matrix<T const>(w).transposed(), x.rows,
                     Out, epilogue, ctx.workspace);
    } else {
      if (ctx.workspace.size < weight_count)
        detail::fail("ktnn::Dense::forward", "workspace of ", ctx.workspace.size, " elements, ",
                     weight_count, " needed for W^T");
      auto w_t = row_major(ctx.workspace.data, In, Out);
      ops::transpose(ctx.exec, "ktnn::Dense::forward::transpose", w, w_t);
      ops::gemm<Isa>(ctx.exec, "ktnn::Dense::forward", x, Matrix<T const>(w_t), x.rows, Out,
                     epilogue);
    }
  }

  /// Batched backward. `dy` holds dL/dy on entry and is overwritten with
  /// dL/dz. Adds dL/dW and dL/db to the gradients or overwrites them (by
  /// ctx.accumulate); writes dL/dx into `dx` unless `dx` is empty.
  template <class ExecSpace, class T, class Isa>
  static void backward(LayerContext<ExecSpace, T, Isa> const& ctx, Matrix<T const> x,
                       Matrix<T const> y, Matrix<T> dy, Matrix<T> dx) {
    auto const& exec = ctx.exec;
    T const* params = ctx.parameters;
    T* grads = ctx.gradients;
    T const grad_beta = ctx.gradient_beta();
    ops::Workspace<T> const work = ctx.workspace;
    int const batch = x.rows;
    T* grad_bias = grads + weight_count;
    Matrix<T const> z;
    if constexpr (Act::needs_input) z = ctx.template saved_rows<Out>();
    // dz = dy * act'(z, y), and the bias gradient (column sums of dz) in the
    // same pass.
    auto dz_at = [=] KOKKOS_FUNCTION(int i, int j) {
      T const pre = Act::needs_input ? z(i, j) : T(0);
      T const d = dy(i, j) * Act::derivative(pre, y(i, j));
      dy(i, j) = d;
      return d;
    };
    if constexpr (ops::device_kernels<ExecSpace>) {
      // A thread per (chunk of rows, column): dz in place and the chunk's
      // column sum; then a team per column sums the chunks in a fixed order.
      int const chunks = detail::column_chunks(exec, batch, Out);
      if (std::size_t(chunks) * Out > work.size)
        detail::fail("ktnn::Dense::backward", "workspace of ", work.size, " elements, ",
                     std::size_t(chunks) * Out, " needed for batch ", batch);
      int const rows = chunks > 0 ? (batch + chunks - 1) / chunks : 0;
      T* const partial = work.data;
      Kokkos::parallel_for(
          "ktnn::Dense::backward::activation_bias",
          Kokkos::RangePolicy<ExecSpace>(exec, 0, std::size_t(chunks) * Out),
          KOKKOS_LAMBDA(std::size_t e) {
            int const c = int(e / Out), j = int(e - std::size_t(c) * Out);
            int const end = (c + 1) * rows < batch ? (c + 1) * rows : batch;
            T sum = 0;
            for (int i = c * rows; i < end; ++i) sum += dz_at(i, j);
            partial[e] = sum;
          });
      using Policy = Kokkos::TeamPolicy<ExecSpace>;
      Kokkos::parallel_for(
          "ktnn::Dense::backward::bias_sum", Policy(exec, Out, ops::device_team_size<ExecSpace>),
          KOKKOS_LAMBDA(typename Policy::member_type const& team) {
            int const j = team.league_rank();
            T sum = 0;
            Kokkos::parallel_reduce(
                Kokkos::TeamThreadRange(team, chunks),
                [&](int c, T& local) { local += partial[std::size_t(c) * Out + j]; }, sum);
            Kokkos::single(Kokkos::PerTeam(team),
                           [&] { grad_bias[j] = grad_beta == T(0) ? sum : grad_bias[j] + sum; });
          });
    } else {
      Kokkos::parallel_for(
          "ktnn::Dense::backward::activation_bias", Kokkos::RangePolicy<ExecSpace>(exec, 0, Out),
          KOKKOS_LAMBDA(int j) {
            T sum = 0;
            for (int i = 0; i < batch; ++i) sum += dz_at(i, j);
            grad_bias[j] = grad_beta == T(0) ? sum : grad_bias[j] + sum;
          });
    }
    Matrix<T const> dz = dy;
    // dW += dz^T x
    ops::gemm<Isa>(exec, "ktnn::Dense::backward::weights", dz.transposed(), x,
                   row_major(grads, Out, In), grad_beta, work);
    // dx = dz W
    if (!dx.empty())
      ops::gemm<Isa>(exec, "ktnn::Dense::backward::input", dz, row_major(params, Out, In), dx, T(0),
                     work);
  }

  /// One sample: y[Out] = act(W x + b). P is the parameter type, S the value
  /// type (the same, or a dual number for input derivatives).
  template <class P, class S>
  KOKKOS_INLINE_FUNCTION static void apply(P const* params, P const*, S const* x, S* y) {
    P const* bias = params + weight_count;
    for (int o = 0; o < Out; ++o) {
      P const* w = params + std::size_t(o) * In;
      S acc = S(bias[o]);
      for (int i = 0; i < In; ++i) acc += S(w[i]) * x[i];
      y[o] = Act::value(acc);
    }
  }

  static std::string name() {
    return "Dense<" + std::to_string(In) + ", " + std::to_string(Out) + ", " + Act::name + ">";
  }
};

}  // namespace ktnn

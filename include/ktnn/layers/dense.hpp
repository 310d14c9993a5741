#pragma once
/// \file Dense<In, Out, Activation>: y = activation(x W^T + b), with W stored as
/// PyTorch stores it, [Out, In] row-major, followed by b [Out].

#include <ktnn/core/error.hpp>
#include <ktnn/detail/matrix.hpp>
#include <ktnn/layers/activation.hpp>
#include <ktnn/layers/init.hpp>
#include <ktnn/ops/gemm.hpp>

#include <Kokkos_Core.hpp>

#include <cstddef>
#include <string>
#include <type_traits>
#include <vector>

namespace ktnn {

/// Name, offset and shape of one parameter tensor in a model's arena.
struct ParameterInfo {
  std::string name;  ///< as PyTorch's state_dict names it, e.g. "0.weight"
  std::size_t offset;
  std::vector<std::size_t> shape;
  std::size_t size() const {
    std::size_t n = 1;
    for (auto e : shape) n *= e;
    return n;
  }
};

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
/// with an activation.
template <int In, int Out, ActivationFunction Act = Identity>
struct Dense {
  static_assert(In > 0 && Out > 0, "ktnn::Dense: In and Out must be positive");
  static constexpr int in_features = In;
  static constexpr int out_features = Out;
  static constexpr std::size_t param_count = std::size_t(In) * Out + Out;
  static constexpr bool keeps_preactivation = Act::needs_input;
  /// Scratch elements forward needs (the transposed weights).
  static constexpr std::size_t scratch_count = std::size_t(In) * Out;
  using activation = Act;

  static void describe(std::string const& prefix, std::size_t offset,
                       std::vector<ParameterInfo>& out) {
    out.push_back({prefix + "weight", offset, {std::size_t(Out), std::size_t(In)}});
    out.push_back({prefix + "bias", offset + std::size_t(In) * Out, {std::size_t(Out)}});
  }

  template <class ExecSpace, class T>
  static void initialize(ExecSpace const& exec, T* params, std::size_t offset, std::uint64_t seed,
                         Init scheme) {
    if (scheme == Init::Auto)
      scheme = std::is_same_v<Act, ReLU> || std::is_same_v<Act, GELU> || std::is_same_v<Act, SiLU>
                   ? Init::HeUniform
                   : Init::GlorotUniform;
    Kokkos::parallel_for(
        "ktnn::Dense::initialize", Kokkos::RangePolicy<ExecSpace>(exec, 0, param_count),
        KOKKOS_LAMBDA(std::size_t p) {
          params[offset + p] = p < std::size_t(In) * Out
                                   ? T(detail::init_value(scheme, seed, offset + p, In, Out))
                                   : T(0);
        });
  }

  /// Workspace elements forward and backward can use on `exec` for `batch`
  /// rows (0 on host spaces): split-K slices of the products and the
  /// per-chunk column sums of the bias gradient.
  template <class ExecSpace>
  static std::size_t workspace_size(ExecSpace const& exec, int batch) {
    std::size_t size = ops::gemm_workspace_size(exec, batch, Out, In);  // forward
    auto grow = [&](std::size_t s) { size = s > size ? s : size; };
    grow(ops::gemm_workspace_size(exec, Out, In, batch));  // dW
    grow(ops::gemm_workspace_size(exec, batch, In, Out));  // dx
    if constexpr (ops::device_kernels<ExecSpace>)
      grow(std::size_t(detail::column_chunks(exec, batch, Out)) * Out);  // db
    return size;
  }

  /// Batched forward: y = act(x W^T + b); z = x W^T + b when the activation
  /// needs it for backward.
  template <class ExecSpace, class T>
  static void forward(ExecSpace const& exec, T const* params, T* scratch, detail::Matrix<T const> x,
                      detail::Matrix<T> y, detail::Matrix<T> z, ops::Workspace<T> work = {}) {
    auto w = detail::row_major(params, Out, In);
    detail::DenseForwardEpilogue<T, Act> const epilogue{params + std::size_t(In) * Out, y, z};
    if constexpr (ops::gemm_takes_strided_b<ExecSpace>) {
      (void)scratch;
      ops::gemm(exec, "ktnn::Dense::forward", x, detail::Matrix<T const>(w).transposed(), x.rows,
                Out, epilogue, work);
    } else {
      auto w_t = detail::row_major(scratch, In, Out);
      ops::transpose(exec, "ktnn::Dense::forward::transpose", w, w_t);
      ops::gemm(exec, "ktnn::Dense::forward", x, detail::Matrix<T const>(w_t), x.rows, Out,
                epilogue, work);
    }
  }

  /// Batched backward. `dy` holds dL/dy on entry and is overwritten with
  /// dL/dz. Adds dL/dW and dL/db to `grads` (grad_beta 1) or overwrites them
  /// (grad_beta 0); writes dL/dx into `dx` unless `dx` is empty.
  template <class ExecSpace, class T>
  static void backward(ExecSpace const& exec, T const* params, T* grads, detail::Matrix<T const> x,
                       detail::Matrix<T const> y, detail::Matrix<T const> z, detail::Matrix<T> dy,
                       detail::Matrix<T> dx, T grad_beta, ops::Workspace<T> work = {}) {
    int const batch = x.rows;
    T* grad_bias = grads + std::size_t(In) * Out;
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
    detail::Matrix<T const> dz = dy;
    // dW += dz^T x
    ops::gemm(exec, "ktnn::Dense::backward::weights", dz.transposed(), x,
              detail::row_major(grads, Out, In), grad_beta, work);
    // dx = dz W
    if (!dx.empty())
      ops::gemm(exec, "ktnn::Dense::backward::input", dz, detail::row_major(params, Out, In), dx,
                T(0), work);
  }

  /// One sample: y[Out] = act(W x + b). P is the parameter type, S the value
  /// type (the same, or a dual number for input derivatives).
  template <class P, class S>
  KOKKOS_INLINE_FUNCTION static void apply(P const* params, S const* x, S* y) {
    P const* bias = params + std::size_t(In) * Out;
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

/// An activation applied as a layer of its own, of width N. A Sequential makes
/// this from a bare activation (`Sequential<Dense<4, 8>, ReLU, ...>`), taking N
/// from the layer before.
template <ActivationFunction Act, int N>
struct Activation {
  static constexpr int in_features = N;
  static constexpr int out_features = N;
  static constexpr std::size_t param_count = 0;
  static constexpr bool keeps_preactivation = false;
  static constexpr std::size_t scratch_count = 0;
  using activation = Act;

  static void describe(std::string const&, std::size_t, std::vector<ParameterInfo>&) {}

  template <class ExecSpace, class T>
  static void initialize(ExecSpace const&, T*, std::size_t, std::uint64_t, Init) {}

  template <class ExecSpace>
  static std::size_t workspace_size(ExecSpace const&, int) {
    return 0;
  }

  template <class ExecSpace, class T>
  static void forward(ExecSpace const& exec, T const*, T*, detail::Matrix<T const> x,
                      detail::Matrix<T> y, detail::Matrix<T>, ops::Workspace<T> = {}) {
    Kokkos::parallel_for(
        "ktnn::Activation::forward", Kokkos::RangePolicy<ExecSpace>(exec, 0, x.rows * N),
        KOKKOS_LAMBDA(int e) {
          int const i = e / N, j = e - (e / N) * N;
          y(i, j) = Act::value(x(i, j));
        });
  }

  template <class ExecSpace, class T>
  static void backward(ExecSpace const& exec, T const*, T*, detail::Matrix<T const> x,
                       detail::Matrix<T const> y, detail::Matrix<T const>, detail::Matrix<T> dy,
                       detail::Matrix<T> dx, T, ops::Workspace<T> = {}) {
    if (dx.empty()) return;
    Kokkos::parallel_for(
        "ktnn::Activation::backward", Kokkos::RangePolicy<ExecSpace>(exec, 0, x.rows * N),
        KOKKOS_LAMBDA(int e) {
          int const i = e / N, j = e - (e / N) * N;
          dx(i, j) = dy(i, j) * Act::derivative(x(i, j), y(i, j));
        });
  }

  template <class P, class S>
  KOKKOS_INLINE_FUNCTION static void apply(P const*, S const* x, S* y) {
    for (int j = 0; j < N; ++j) y[j] = Act::value(x[j]);
  }

  static std::string name() { return std::string(Act::name) + "<" + std::to_string(N) + ">"; }
};

}  // namespace ktnn

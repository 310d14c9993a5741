#pragma once
/// \file Activation functions, usable fused into a Dense layer
/// (`Dense<In, Out, ReLU>`) or as layers of their own in a Sequential
/// (`Sequential<Dense<In, Out>, ReLU, ...>`). Both paths, and the per-sample
/// path, call the same `value` and `derivative`, so they cannot drift apart.
///
/// Math goes through unqualified calls after `using Kokkos::...`, so a scalar
/// type with its own overloads found by ADL (a dual number) works too.

#include <ktnn/core/matrix.hpp>
#include <ktnn/layers/init.hpp>
#include <ktnn/layers/layer.hpp>
#include <ktnn/ops/elementwise.hpp>

#include <Kokkos_Core.hpp>

#include <string>

namespace ktnn {

/// Marks a type as an activation function.
template <class F>
concept ActivationFunction = requires {
  { F::is_activation } -> std::convertible_to<bool>;
  { F::needs_input } -> std::convertible_to<bool>;
} && F::is_activation;

/// The identity: a Dense layer with no activation.
struct Identity {
  static constexpr bool is_activation = true;
  static constexpr bool needs_input = false;  // derivative from the output alone
  static constexpr char const* name = "Identity";
  template <class S>
  KOKKOS_INLINE_FUNCTION static S value(S z) {
    return z;
  }
  template <class S>
  KOKKOS_INLINE_FUNCTION static S derivative(S, S) {
    return S(1);
  }
};

struct ReLU {
  static constexpr bool is_activation = true;
  static constexpr bool needs_input = false;
  static constexpr char const* name = "ReLU";
  template <class S>
  KOKKOS_INLINE_FUNCTION static S value(S z) {
    return z > S(0) ? z : S(0);
  }
  /// \param y the activation's output (the derivative at 0 is taken as 0).
  template <class S>
  KOKKOS_INLINE_FUNCTION static S derivative(S, S y) {
    return y > S(0) ? S(1) : S(0);
  }
};

struct Tanh {
  static constexpr bool is_activation = true;
  static constexpr bool needs_input = false;
  static constexpr char const* name = "Tanh";
  template <class S>
  KOKKOS_INLINE_FUNCTION static S value(S z) {
    using Kokkos::tanh;
    return tanh(z);
  }
  template <class S>
  KOKKOS_INLINE_FUNCTION static S derivative(S, S y) {
    return S(1) - y * y;
  }
};

struct Sigmoid {
  static constexpr bool is_activation = true;
  static constexpr bool needs_input = false;
  static constexpr char const* name = "Sigmoid";
  template <class S>
  KOKKOS_INLINE_FUNCTION static S value(S z) {
    using Kokkos::exp;
    return S(1) / (S(1) + exp(-z));
  }
  template <class S>
  KOKKOS_INLINE_FUNCTION static S derivative(S, S y) {
    return y * (S(1) - y);
  }
};

/// GELU in its exact form, z * Phi(z), as PyTorch's default.
struct GELU {
  static constexpr bool is_activation = true;
  static constexpr bool needs_input = true;
  static constexpr char const* name = "GELU";
  template <class S>
  KOKKOS_INLINE_FUNCTION static S value(S z) {
    using Kokkos::erf;
    return S(0.5) * z * (S(1) + erf(z * S(0.70710678118654752440)));
  }
  template <class S>
  KOKKOS_INLINE_FUNCTION static S derivative(S z, S) {
    using Kokkos::erf;
    using Kokkos::exp;
    S const cdf = S(0.5) * (S(1) + erf(z * S(0.70710678118654752440)));
    S const pdf = S(0.39894228040143267794) * exp(S(-0.5) * z * z);
    return cdf + z * pdf;
  }
};

/// SiLU (swish): z * sigmoid(z).
struct SiLU {
  static constexpr bool is_activation = true;
  static constexpr bool needs_input = true;
  static constexpr char const* name = "SiLU";
  template <class S>
  KOKKOS_INLINE_FUNCTION static S value(S z) {
    using Kokkos::exp;
    return z / (S(1) + exp(-z));
  }
  template <class S>
  KOKKOS_INLINE_FUNCTION static S derivative(S z, S) {
    using Kokkos::exp;
    S const s = S(1) / (S(1) + exp(-z));
    return s * (S(1) + z * (S(1) - s));
  }
};

/// The initialization Init::Auto picks for a layer followed by activation F:
/// He (Kaiming) before ReLU-like functions, Glorot (Xavier) otherwise.
/// Specialize it for an activation of your own.
template <class F>
inline constexpr Init preferred_init = Init::GlorotUniform;
template <>
inline constexpr Init preferred_init<ReLU> = Init::HeUniform;
template <>
inline constexpr Init preferred_init<GELU> = Init::HeUniform;
template <>
inline constexpr Init preferred_init<SiLU> = Init::HeUniform;

/// An activation applied as a layer of its own, of width N. A Sequential makes
/// this from a bare activation (`Sequential<Dense<4, 8>, ReLU, ...>`), taking N
/// from the layer before.
template <ActivationFunction Act, int N>
struct Activation : LayerDefaults {
  static constexpr int in_features = N;
  static constexpr int out_features = N;
  using activation = Act;

  template <class ExecSpace, class T, class Isa>
  static void forward(LayerContext<ExecSpace, T, Isa> const& ctx, Matrix<T const> x, Matrix<T> y) {
    ops::for_each_element(
        ctx.exec, "ktnn::Activation::forward", std::size_t(x.rows), N,
        KOKKOS_LAMBDA(std::size_t i, std::size_t j) { y(i, j) = Act::value(x(i, j)); });
  }

  template <class ExecSpace, class T, class Isa>
  static void backward(LayerContext<ExecSpace, T, Isa> const& ctx, Matrix<T const> x,
                       Matrix<T const> y, Matrix<T> dy, Matrix<T> dx) {
    if (dx.empty()) return;
    ops::for_each_element(
        ctx.exec, "ktnn::Activation::backward", std::size_t(x.rows), N,
        KOKKOS_LAMBDA(std::size_t i, std::size_t j) {
          dx(i, j) = dy(i, j) * Act::derivative(x(i, j), y(i, j));
        });
  }

  template <class P, class S>
  KOKKOS_INLINE_FUNCTION static void apply(P const*, P const*, S const* x, S* y) {
    for (int j = 0; j < N; ++j) y[j] = Act::value(x[j]);
  }

  static std::string name() { return std::string(Act::name) + "<" + std::to_string(N) + ">"; }
};

}  // namespace ktnn

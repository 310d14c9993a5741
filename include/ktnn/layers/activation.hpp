#pragma once
/// \file Activation functions, usable fused into a Dense layer
/// (`Dense<In, Out, ReLU>`) or as layers of their own in a Sequential
/// (`Sequential<Dense<In, Out>, ReLU, ...>`). Both paths, and the per-sample
/// path, call the same `value` and `derivative`, so they cannot drift apart.
///
/// Math goes through unqualified calls after `using Kokkos::...`, so a scalar
/// type with its own overloads found by ADL (a dual number) works too.

#include <Kokkos_Core.hpp>

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

}  // namespace ktnn

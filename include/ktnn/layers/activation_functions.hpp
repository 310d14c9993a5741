#pragma once
/// \file Activation functions: value, derivative and (for input derivatives)
/// second and third derivatives, written once for any scalar type, which
/// the batched layers, the per-sample path and the Taylor passes all call, so
/// they cannot drift apart. The layers that use them: Dense's fused
/// activation and Activation<Act, N> (layers/activation.hpp).
///
/// Math goes through unqualified calls after `using Kokkos::...`, so a scalar
/// type with its own overloads found by ADL (a dual number) works too.

#include <ktnn/core/jet.hpp>
#include <ktnn/layers/init.hpp>

#include <Kokkos_Core.hpp>

#include <concepts>
#include <cstdint>
#include <type_traits>
#include <utility>

namespace ktnn {

namespace detail {
/// c[0] x^(n-1) + ... + c[n-1] by Horner's rule, unrolled at compile time
/// (a loop here would keep the caller's loop from vectorizing).
template <class T, class... C>
KOKKOS_INLINE_FUNCTION T horner(T x, double first, C... rest) {
  T p = T(first);
  ((p = p * x + T(rest)), ...);
  return p;
}

KOKKOS_INLINE_FUNCTION constexpr double inverse_factorial(int k) {
  return k <= 1 ? 1.0 : inverse_factorial(k - 1) / k;
}

/// exp(r) for |r| <= ln2 / 2 by its Taylor polynomial of degree `sizeof...(K)`.
template <class T, int... K>
KOKKOS_INLINE_FUNCTION T exp_reduced(T r, std::integer_sequence<int, K...>) {
  constexpr int degree = sizeof...(K);
  return horner(r, inverse_factorial(degree - K)..., 1.0);
}

/// tanh for float and double on host cores, written as straight-line
/// arithmetic so loops over it vectorize (a libm call per element does not,
/// and dominates a Tanh network's forward pass). Within a few units in the
/// last place of std::tanh (tests/test_derivatives.cpp checks it):
///   |x| < 0.4   its odd Taylor series, to x^27 (double) or x^15 (float);
///   otherwise   (1 - e) / (1 + e), e = exp(-2|x|), with exp by range
///               reduction to [-ln2/2, ln2/2] and its Taylor polynomial,
///               and 2^n set in the exponent bits.
/// Both branches are computed and one is selected, without a jump.
template <class T>
KOKKOS_INLINE_FUNCTION T tanh_host(T x) {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>);
  constexpr bool is_double = std::is_same_v<T, double>;
  T const a = x < T(0) ? -x : x;
  // Series of tanh(a) / a in a^2 (coefficients from the Bernoulli numbers),
  // at a clamped so that it stays finite where it is not used.
  T const a_small = a < T(0.4) ? a : T(0.4);
  T const a2 = a_small * a_small;
  T series;
  if constexpr (is_double)
    series = horner(a2, -6.45168921565543065e-06, 1.59189050693289637e-05, -3.92783238833168327e-05,
                    9.69153795692945095e-05, -2.39129114243552478e-04, 5.90027440945585947e-04,
                    -1.45583438705131833e-03, 3.59212803657248114e-03, -8.86323552990219733e-03,
                    2.18694885361552030e-02, -5.39682539682539708e-02, 1.33333333333333331e-01,
                    -3.33333333333333315e-01, 1.0);
  else
    series = horner(a2, -1.45583438705131833e-03, 3.59212803657248114e-03, -8.86323552990219733e-03,
                    2.18694885361552030e-02, -5.39682539682539708e-02, 1.33333333333333331e-01,
                    -3.33333333333333315e-01, 1.0);
  T const small = a_small * series;
  // e = exp(-2 min(a, 20)): past 20 tanh rounds to 1 in double.
  T const y = T(-2) * (a < T(20) ? a : T(20));
  // n = y / ln2 rounded to nearest: y <= 0, so truncating y / ln2 - 1/2
  // rounds (a conversion vectorizes; floor does not, here). It lies in
  // [-59, 0], so it goes through 32 bits: AVX2 converts packed doubles to
  // 32-bit integers but not to 64-bit ones (AVX-512 does).
  using Bits = std::conditional_t<is_double, std::int64_t, std::int32_t>;
  Bits const n_bits = Bits(std::int32_t(y * T(1.44269504088896340736) - T(0.5)));
  T const n = T(n_bits);
  // r = y - n ln2 with ln2 split in two, so r keeps its low bits.
  T const r = (y - n * T(0.693145751953125)) - n * T(1.42860682030941723212e-06);
  T const p = exp_reduced(r, std::make_integer_sequence<int, is_double ? 13 : 7>{});
  constexpr int mantissa = is_double ? 52 : 23;
  constexpr Bits bias = is_double ? 1023 : 127;
  T const scale = Kokkos::bit_cast<T>(Bits((n_bits + bias) << mantissa));
  T const e = p * scale;
  T const large = (T(1) - e) / (T(1) + e);
  // A select by bit mask: GCC keeps a select of two computations as a
  // branch (they might trap), and turned an arithmetic blend of them back
  // into branches where the target has no masked vector operations (AVX2);
  // either stops the loop around it from vectorizing. Integer masks cannot
  // trap. (It also keeps the sign of a zero, as std::tanh does.)
  Bits const pick_small = -Bits(a < T(0.4));
  T const result = Kokkos::bit_cast<T>((Kokkos::bit_cast<Bits>(small) & pick_small) |
                                       (Kokkos::bit_cast<Bits>(large) & ~pick_small));
  T const signed_result = x < T(0) ? -result : result;
  return x == x ? signed_result : x;  // NaN stays NaN
}
}  // namespace detail

/// Marks a type as an activation function.
template <class F>
concept ActivationFunction = requires {
  { F::is_activation } -> std::convertible_to<bool>;
  { F::needs_input } -> std::convertible_to<bool>;
} && F::is_activation;

/// A base for a piecewise-linear activation (Identity, ReLU, LeakyReLU, or one
/// of your own): its second and third derivatives, zero away from its kinks,
/// where they do not exist (a ReLU network's Laplacian is zero almost
/// everywhere).
struct PiecewiseLinear {
  template <class S>
  KOKKOS_INLINE_FUNCTION static S second(S, S) {
    return S(0);
  }
  template <class S>
  KOKKOS_INLINE_FUNCTION static S third(S, S) {
    return S(0);
  }
};

/// The identity: a Dense layer with no activation.
struct Identity : PiecewiseLinear {
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

struct ReLU : PiecewiseLinear {
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
    if constexpr (std::is_floating_point_v<S>) {
      KOKKOS_IF_ON_HOST((return detail::tanh_host(z);))
      KOKKOS_IF_ON_DEVICE((return Kokkos::tanh(z);))
    } else {
      using Kokkos::tanh;
      return tanh(z);
    }
  }
  template <class S>
  KOKKOS_INLINE_FUNCTION static S derivative(S, S y) {
    return S(1) - y * y;
  }
  template <class S>
  KOKKOS_INLINE_FUNCTION static S second(S, S y) {
    return S(-2) * y * (S(1) - y * y);
  }
  template <class S>
  KOKKOS_INLINE_FUNCTION static S third(S, S y) {
    return S(-2) * (S(1) - y * y) * (S(1) - S(3) * y * y);
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
  template <class S>
  KOKKOS_INLINE_FUNCTION static S second(S, S y) {
    return y * (S(1) - y) * (S(1) - S(2) * y);
  }
  template <class S>
  KOKKOS_INLINE_FUNCTION static S third(S, S y) {
    S const d = y * (S(1) - y);
    return d * (S(1) - S(6) * d);  // d (1 - 2y)^2 - 2 d^2, with (1 - 2y)^2 = 1 - 4d
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
  template <class S>
  KOKKOS_INLINE_FUNCTION static S second(S z, S) {
    using Kokkos::exp;
    return S(0.39894228040143267794) * exp(S(-0.5) * z * z) * (S(2) - z * z);
  }
  template <class S>
  KOKKOS_INLINE_FUNCTION static S third(S z, S) {
    using Kokkos::exp;
    return S(0.39894228040143267794) * exp(S(-0.5) * z * z) * z * (z * z - S(4));
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
  /// (z s)'' = 2 s' + z s'', with s' = s (1 - s) and s'' = s' (1 - 2 s).
  template <class S>
  KOKKOS_INLINE_FUNCTION static S second(S z, S) {
    using Kokkos::exp;
    S const s = S(1) / (S(1) + exp(-z));
    S const s1 = s * (S(1) - s);
    return s1 * (S(2) + z * (S(1) - S(2) * s));
  }
  /// (z s)''' = 3 s'' + z s''', with s''' = s' (1 - 6 s').
  template <class S>
  KOKKOS_INLINE_FUNCTION static S third(S z, S) {
    using Kokkos::exp;
    S const s = S(1) / (S(1) + exp(-z));
    S const s1 = s * (S(1) - s);
    return S(3) * s1 * (S(1) - S(2) * s) + z * s1 * (S(1) - S(6) * s1);
  }
};

/// Softplus log(1 + e^z), as PyTorch's default (beta 1, threshold 20: the
/// identity above it, where log(1 + e^z) rounds to z anyway).
struct Softplus {
  static constexpr bool is_activation = true;
  static constexpr bool needs_input = true;
  static constexpr char const* name = "Softplus";
  template <class S>
  KOKKOS_INLINE_FUNCTION static S value(S z) {
    using Kokkos::exp;
    using Kokkos::log1p;
    return z > S(20) ? z : log1p(exp(z));
  }
  template <class S>
  KOKKOS_INLINE_FUNCTION static S derivative(S z, S) {
    using Kokkos::exp;
    return z > S(20) ? S(1) : S(1) / (S(1) + exp(-z));
  }
  template <class S>
  KOKKOS_INLINE_FUNCTION static S second(S z, S) {
    using Kokkos::exp;
    S const s = S(1) / (S(1) + exp(-z));
    return z > S(20) ? S(0) : s * (S(1) - s);
  }
  template <class S>
  KOKKOS_INLINE_FUNCTION static S third(S z, S) {
    using Kokkos::exp;
    S const s = S(1) / (S(1) + exp(-z));
    return z > S(20) ? S(0) : s * (S(1) - s) * (S(1) - S(2) * s);
  }
};

/// LeakyReLU as PyTorch's nn.LeakyReLU: z above 0, Slope * z below.
/// `LeakyReLU` has PyTorch's default negative_slope 0.01; `LeakyReLUSlope<0.2>`
/// another (a compile-time constant, like every part of a layer's type).
///
/// Piecewise linear, like ReLU (PiecewiseLinear): its second and third
/// derivatives are zero away from the kink at 0, so it is a SmoothActivation
/// in the same almost-everywhere sense. At 0 the derivative is taken as Slope,
/// as PyTorch's backward takes it.
template <double Slope>
struct LeakyReLUSlope : PiecewiseLinear {
  static constexpr bool is_activation = true;
  /// With a slope >= 0 the output is positive exactly where the input is, so
  /// the derivative comes from the output and Dense keeps no pre-activation;
  /// a negative slope needs the input.
  static constexpr bool needs_input = Slope < 0;
  static constexpr double negative_slope = Slope;
  /// The same for every slope (the slope is in the type, which compile
  /// errors print).
  static constexpr char const* name = "LeakyReLU";
  template <class S>
  KOKKOS_INLINE_FUNCTION static S value(S z) {
    return z > S(0) ? z : S(Slope) * z;
  }
  template <class S>
  KOKKOS_INLINE_FUNCTION static S derivative(S z, S y) {
    if constexpr (needs_input)
      return z > S(0) ? S(1) : S(Slope);
    else
      return y > S(0) ? S(1) : S(Slope);
  }
};
using LeakyReLU = LeakyReLUSlope<0.01>;

/// ELU as PyTorch's nn.ELU: z above 0, Alpha (e^z - 1) below. `ELU` has
/// PyTorch's default alpha 1; `ELUAlpha<A>` another (A > 0).
///
/// A SmoothActivation, by the same convention as ReLU: its derivatives exist
/// everywhere except at 0, and second() and third() give them there from the
/// left (Alpha e^z) and 0 from the right. ELU is C1 at 0 only for alpha 1 and
/// C2 for no alpha (f'' jumps from Alpha to 0), so a network's Laplacian is
/// exact almost everywhere but jumps where a pre-activation crosses 0; a
/// physics-informed loss that needs a smooth residual wants Tanh, SiLU, GELU
/// or Softplus instead.
template <double Alpha>
struct ELUAlpha {
  static_assert(Alpha > 0, "ktnn::ELUAlpha: alpha must be positive");
  static constexpr bool is_activation = true;
  /// For alpha > 0 the output is positive exactly where the input is, and
  /// below 0 every derivative is Alpha e^z = y + Alpha: all from the output.
  /// (Far below 0, y + Alpha cancels: in float its relative error reaches
  /// 1e-3 near z = -10, on a derivative of 5e-5; PyTorch's nn.ELU takes it
  /// from the input, at the price here of keeping the pre-activation.)
  static constexpr bool needs_input = false;
  static constexpr double alpha = Alpha;
  static constexpr char const* name = "ELU";
  template <class S>
  KOKKOS_INLINE_FUNCTION static S value(S z) {
    if constexpr (std::is_floating_point_v<S>) {
      return z > S(0) ? z : S(Alpha) * Kokkos::expm1(z);
    } else {
      using Kokkos::exp;
      return z > S(0) ? z : S(Alpha) * (exp(z) - S(1));
    }
  }
  template <class S>
  KOKKOS_INLINE_FUNCTION static S derivative(S, S y) {
    return y > S(0) ? S(1) : y + S(Alpha);
  }
  template <class S>
  KOKKOS_INLINE_FUNCTION static S second(S, S y) {
    return y > S(0) ? S(0) : y + S(Alpha);
  }
  template <class S>
  KOKKOS_INLINE_FUNCTION static S third(S, S y) {
    return y > S(0) ? S(0) : y + S(Alpha);
  }
};
using ELU = ELUAlpha<1.0>;

/// An activation whose second and third derivatives are known (`second(z,
/// y)`, `third(z, y)`, from the input z and the output y): what input
/// derivatives need (the batched Taylor pass takes the third for its
/// backward). Every built-in activation is one.
template <class F>
concept SmoothActivation = ActivationFunction<F> && requires(float z) {
  { F::second(z, z) } -> std::convertible_to<float>;
  { F::third(z, z) } -> std::convertible_to<float>;
};

namespace detail {
/// Act applied to one value of the per-sample path. A Jet goes through the
/// chain rule with the activation's own derivatives (one evaluation of the
/// function instead of the Jet arithmetic of its formula); an activation
/// without them falls back to its formula on Jets.
template <class Act, class S>
KOKKOS_INLINE_FUNCTION S activate(S const& z) {
  if constexpr (is_jet_v<S> && SmoothActivation<Act>) {
    auto const v = z.value();
    auto const y = Act::value(v);
    return z.chain(y, Act::derivative(v, y), Act::second(v, y));
  } else {
    return Act::value(z);
  }
}
}  // namespace detail

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
template <double Slope>
inline constexpr Init preferred_init<LeakyReLUSlope<Slope>> = Init::HeUniform;
template <double Alpha>
inline constexpr Init preferred_init<ELUAlpha<Alpha>> = Init::HeUniform;

}  // namespace ktnn

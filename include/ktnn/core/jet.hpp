#pragma once
/// \file Jet<T, N, Order>: a forward-mode number carrying, besides its value,
/// its derivatives along N input directions: the first derivatives (a
/// gradient) and, at Order 2, the second derivatives along each direction (a
/// Hessian diagonal; their sum is the Laplacian). Mixed second derivatives
/// are not carried: a PDE written with the Laplacian or with u_xx, u_yy
/// needs only these, and the cost stays linear in N.
///
/// A Jet flows unchanged through the per-sample path of a network (the
/// scalar type of `Inference`), so a user's own kernel gets a network's
/// Jacobian, Hessian diagonal and Laplacian with respect to its inputs, with
/// compile-time sizes and no allocation (ktnn/derivatives.hpp has the short
/// form). The arithmetic and the math functions are hidden friends found by
/// argument-dependent lookup, so generic code that calls `exp(z)` after
/// `using Kokkos::exp` works for float, double and Jet alike.

#include <Kokkos_Core.hpp>

#include <type_traits>

namespace ktnn {

template <class T, int N, int Order = 2>
struct Jet {
  static_assert(std::is_floating_point_v<T>, "ktnn::Jet: T must be float or double");
  static_assert(N > 0, "ktnn::Jet: N (the number of input directions) must be positive");
  static_assert(Order == 1 || Order == 2, "ktnn::Jet: Order is 1 or 2");
  using value_type = T;
  static constexpr int directions = N;
  static constexpr int order = Order;
  static constexpr int second_count = Order == 2 ? N : 1;  // unused storage at Order 1

  T v = 0;
  T d[N] = {};              ///< d v / d x_k
  T dd[second_count] = {};  ///< d^2 v / d x_k^2 (Order 2)

  KOKKOS_DEFAULTED_FUNCTION Jet() = default;
  /// A constant: all derivatives zero.
  KOKKOS_INLINE_FUNCTION Jet(T value) : v(value) {}  // NOLINT: implicit on purpose

  /// The input x_k = value: derivative 1 along direction k.
  KOKKOS_INLINE_FUNCTION static Jet variable(T value, int k) {
    Jet j(value);
    j.d[k] = T(1);
    return j;
  }

  KOKKOS_INLINE_FUNCTION T value() const { return v; }
  KOKKOS_INLINE_FUNCTION T derivative(int k) const { return d[k]; }
  KOKKOS_INLINE_FUNCTION T second_derivative(int k) const {
    static_assert(Order == 2, "ktnn::Jet: second derivatives need Order 2");
    return dd[k];
  }
  /// Sum of the second derivatives along all N directions.
  KOKKOS_INLINE_FUNCTION T laplacian() const {
    static_assert(Order == 2, "ktnn::Jet: the Laplacian needs Order 2");
    T sum = 0;
    for (int k = 0; k < N; ++k) sum += dd[k];
    return sum;
  }

  /// f(this) given f, f' and f'' at the value (the chain rule to second order).
  KOKKOS_INLINE_FUNCTION Jet chain(T f, T f1, T f2) const {
    Jet r(f);
    for (int k = 0; k < N; ++k) r.d[k] = f1 * d[k];
    if constexpr (Order == 2)
      for (int k = 0; k < N; ++k) r.dd[k] = f1 * dd[k] + f2 * d[k] * d[k];
    return r;
  }

  // ---------------------------------------------------------------- arithmetic
  KOKKOS_INLINE_FUNCTION friend Jet operator+(Jet const& a) { return a; }
  KOKKOS_INLINE_FUNCTION friend Jet operator-(Jet const& a) {
    Jet r(-a.v);
    for (int k = 0; k < N; ++k) r.d[k] = -a.d[k];
    if constexpr (Order == 2)
      for (int k = 0; k < N; ++k) r.dd[k] = -a.dd[k];
    return r;
  }
  KOKKOS_INLINE_FUNCTION Jet& operator+=(Jet const& b) {
    v += b.v;
    for (int k = 0; k < N; ++k) d[k] += b.d[k];
    if constexpr (Order == 2)
      for (int k = 0; k < N; ++k) dd[k] += b.dd[k];
    return *this;
  }
  KOKKOS_INLINE_FUNCTION Jet& operator-=(Jet const& b) {
    v -= b.v;
    for (int k = 0; k < N; ++k) d[k] -= b.d[k];
    if constexpr (Order == 2)
      for (int k = 0; k < N; ++k) dd[k] -= b.dd[k];
    return *this;
  }
  KOKKOS_INLINE_FUNCTION Jet& operator+=(T b) {
    v += b;
    return *this;
  }
  KOKKOS_INLINE_FUNCTION Jet& operator-=(T b) {
    v -= b;
    return *this;
  }
  KOKKOS_INLINE_FUNCTION Jet& operator*=(T b) {
    v *= b;
    for (int k = 0; k < N; ++k) d[k] *= b;
    if constexpr (Order == 2)
      for (int k = 0; k < N; ++k) dd[k] *= b;
    return *this;
  }
  KOKKOS_INLINE_FUNCTION Jet& operator/=(T b) { return *this *= T(1) / b; }
  KOKKOS_INLINE_FUNCTION Jet& operator*=(Jet const& b) { return *this = *this * b; }
  KOKKOS_INLINE_FUNCTION Jet& operator/=(Jet const& b) { return *this = *this / b; }

  KOKKOS_INLINE_FUNCTION friend Jet operator+(Jet a, Jet const& b) { return a += b; }
  KOKKOS_INLINE_FUNCTION friend Jet operator-(Jet a, Jet const& b) { return a -= b; }
  KOKKOS_INLINE_FUNCTION friend Jet operator+(Jet a, T b) { return a += b; }
  KOKKOS_INLINE_FUNCTION friend Jet operator+(T a, Jet b) { return b += a; }
  KOKKOS_INLINE_FUNCTION friend Jet operator-(Jet a, T b) { return a -= b; }
  KOKKOS_INLINE_FUNCTION friend Jet operator-(T a, Jet const& b) { return -b + a; }
  KOKKOS_INLINE_FUNCTION friend Jet operator*(Jet a, T b) { return a *= b; }
  KOKKOS_INLINE_FUNCTION friend Jet operator*(T a, Jet b) { return b *= a; }
  KOKKOS_INLINE_FUNCTION friend Jet operator/(Jet a, T b) { return a /= b; }
  KOKKOS_INLINE_FUNCTION friend Jet operator*(Jet const& a, Jet const& b) {
    Jet r(a.v * b.v);
    for (int k = 0; k < N; ++k) r.d[k] = a.d[k] * b.v + a.v * b.d[k];
    if constexpr (Order == 2)
      for (int k = 0; k < N; ++k) r.dd[k] = a.dd[k] * b.v + T(2) * a.d[k] * b.d[k] + a.v * b.dd[k];
    return r;
  }
  KOKKOS_INLINE_FUNCTION friend Jet operator/(Jet const& a, Jet const& b) {
    return a * reciprocal(b);
  }
  KOKKOS_INLINE_FUNCTION friend Jet operator/(T a, Jet const& b) { return reciprocal(b) *= a; }
  KOKKOS_INLINE_FUNCTION friend Jet reciprocal(Jet const& a) {
    T const r = T(1) / a.v;
    return a.chain(r, -r * r, T(2) * r * r * r);
  }

  // Comparisons look at values only (a branch in the network, as ReLU's).
  KOKKOS_INLINE_FUNCTION friend bool operator<(Jet const& a, Jet const& b) { return a.v < b.v; }
  KOKKOS_INLINE_FUNCTION friend bool operator>(Jet const& a, Jet const& b) { return a.v > b.v; }
  KOKKOS_INLINE_FUNCTION friend bool operator<=(Jet const& a, Jet const& b) { return a.v <= b.v; }
  KOKKOS_INLINE_FUNCTION friend bool operator>=(Jet const& a, Jet const& b) { return a.v >= b.v; }

  // ------------------------------------------------------------ math functions
  KOKKOS_INLINE_FUNCTION friend Jet exp(Jet const& a) {
    T const e = Kokkos::exp(a.v);
    return a.chain(e, e, e);
  }
  KOKKOS_INLINE_FUNCTION friend Jet log(Jet const& a) {
    T const r = T(1) / a.v;
    return a.chain(Kokkos::log(a.v), r, -r * r);
  }
  KOKKOS_INLINE_FUNCTION friend Jet log1p(Jet const& a) {
    T const r = T(1) / (T(1) + a.v);
    return a.chain(Kokkos::log1p(a.v), r, -r * r);
  }
  KOKKOS_INLINE_FUNCTION friend Jet sqrt(Jet const& a) {
    T const s = Kokkos::sqrt(a.v);
    return a.chain(s, T(0.5) / s, T(-0.25) / (s * a.v));
  }
  KOKKOS_INLINE_FUNCTION friend Jet sin(Jet const& a) {
    T const s = Kokkos::sin(a.v);
    return a.chain(s, Kokkos::cos(a.v), -s);
  }
  KOKKOS_INLINE_FUNCTION friend Jet cos(Jet const& a) {
    T const c = Kokkos::cos(a.v);
    return a.chain(c, -Kokkos::sin(a.v), -c);
  }
  KOKKOS_INLINE_FUNCTION friend Jet tanh(Jet const& a) {
    T const t = Kokkos::tanh(a.v);
    T const d1 = T(1) - t * t;
    return a.chain(t, d1, T(-2) * t * d1);
  }
  KOKKOS_INLINE_FUNCTION friend Jet erf(Jet const& a) {
    // d/dx erf = 2/sqrt(pi) exp(-x^2)
    T const g = T(1.12837916709551257390) * Kokkos::exp(-a.v * a.v);
    return a.chain(Kokkos::erf(a.v), g, T(-2) * a.v * g);
  }
  KOKKOS_INLINE_FUNCTION friend Jet abs(Jet const& a) { return a.v < T(0) ? -a : a; }
  /// a^p for a constant exponent.
  KOKKOS_INLINE_FUNCTION friend Jet pow(Jet const& a, T p) {
    T const f = Kokkos::pow(a.v, p);
    T const f1 = p * Kokkos::pow(a.v, p - T(1));
    T const f2 = p * (p - T(1)) * Kokkos::pow(a.v, p - T(2));
    return a.chain(f, f1, f2);
  }
};

template <class S>
inline constexpr bool is_jet_v = false;
template <class T, int N, int Order>
inline constexpr bool is_jet_v<Jet<T, N, Order>> = true;

/// The value of a Jet, or the number itself.
template <class S>
KOKKOS_INLINE_FUNCTION auto value_of(S const& s) {
  if constexpr (is_jet_v<S>)
    return s.value();
  else
    return s;
}

}  // namespace ktnn

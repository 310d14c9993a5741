#pragma once
/// \file Inference<Architecture, T, MemorySpace>: a trained network's forward
/// pass for one sample, for use inside a user's own kernel (thread level).
/// This header is light on purpose (the layers and Kokkos, no file, zlib or
/// stream headers), so a simulation's kernel file can include it alone.
///
/// Arguments have their extents in their types: `S x[in_features]`,
/// `Kokkos::Array<S, in_features>`; a wrong extent is a compile error. Rows of
/// a View (any layout, e.g. `Kokkos::subview(field, i, Kokkos::ALL)`) are read
/// and written through their strides. S may differ from T (a dual number).

#include <ktnn/layers/activation.hpp>
#include <ktnn/layers/dense.hpp>
#include <ktnn/layers/sequential.hpp>
#include <ktnn/layers/standardize.hpp>

#include <Kokkos_Core.hpp>

#include <type_traits>

namespace ktnn {

namespace detail {
template <class T>
inline constexpr bool dependent_false = false;
}  // namespace detail

/// Copy it into a kernel by value; it shares the model's parameters and state.
template <class Architecture, class T, class MemorySpace>
struct Inference {
  static constexpr int in_features = Architecture::in_features;
  static constexpr int out_features = Architecture::out_features;
  using value_type = T;
  Kokkos::View<T const*, MemorySpace> parameters;
  Kokkos::View<T const*, MemorySpace> state;

  /// y = f(x) on C arrays.
  template <class S>
  KOKKOS_INLINE_FUNCTION void operator()(S const (&x)[in_features], S (&y)[out_features]) const {
    Architecture::apply(parameters.data(), state.data(), &x[0], &y[0]);
  }

  /// y = f(x) on Kokkos::Arrays.
  template <class S>
  KOKKOS_INLINE_FUNCTION void operator()(Kokkos::Array<S, in_features> const& x,
                                         Kokkos::Array<S, out_features>& y) const {
    Architecture::apply(parameters.data(), state.data(), x.data(), y.data());
  }

  /// f(x), returned.
  template <class S>
  KOKKOS_INLINE_FUNCTION Kokkos::Array<S, out_features> operator()(
      Kokkos::Array<S, in_features> const& x) const {
    Kokkos::Array<S, out_features> y;
    Architecture::apply(parameters.data(), state.data(), x.data(), y.data());
    return y;
  }

  /// y = f(x) on rank-1 Views of any layout (rows of a user's fields). Their
  /// extents are runtime: a mismatch aborts the kernel with this message.
  template <class XView, class YView>
    requires(Kokkos::is_view_v<XView> && Kokkos::is_view_v<YView>)
  KOKKOS_INLINE_FUNCTION void operator()(XView const& x, YView const& y) const {
    static_assert(XView::rank() == 1 && YView::rank() == 1,
                  "ktnn::Inference: rows are rank-1 Views (Kokkos::subview(v, i, Kokkos::ALL))");
    using S = typename YView::non_const_value_type;
    if (x.extent(0) != std::size_t(in_features) || y.extent(0) != std::size_t(out_features))
      Kokkos::abort(
          "ktnn::Inference: a row's extent is not the network's in_features or "
          "out_features");
    S in[in_features], out[out_features];
    for (int j = 0; j < in_features; ++j) in[j] = S(x(j));
    Architecture::apply(parameters.data(), state.data(), in, out);
    for (int j = 0; j < out_features; ++j) y(j) = out[j];
  }

  /// f(x) for a row of a View (any layout), returned.
  template <class XView>
    requires Kokkos::is_view_v<XView>
  KOKKOS_INLINE_FUNCTION auto operator()(XView const& x) const {
    static_assert(XView::rank() == 1,
                  "ktnn::Inference: rows are rank-1 Views (Kokkos::subview(v, i, Kokkos::ALL))");
    using S = typename XView::non_const_value_type;
    if (x.extent(0) != std::size_t(in_features))
      Kokkos::abort("ktnn::Inference: a row's extent is not the network's in_features");
    Kokkos::Array<S, in_features> in;
    for (int j = 0; j < in_features; ++j) in[j] = x(j);
    Kokkos::Array<S, out_features> y;
    Architecture::apply(parameters.data(), state.data(), in.data(), y.data());
    return y;
  }

  /// Anything else (a raw pointer, an array of another extent) is refused at
  /// compile time rather than read past its end.
  template <class X, class Y>
  KOKKOS_INLINE_FUNCTION void operator()(X const&, Y const&) const
    requires(!(Kokkos::is_view_v<X> && Kokkos::is_view_v<Y>))
  {
    static_assert(detail::dependent_false<X>,
                  "ktnn::Inference: x must be S[in_features] or Kokkos::Array<S, in_features> "
                  "and y S[out_features] or Kokkos::Array<S, out_features> (or both rank-1 "
                  "Views); the extents are the network's");
  }
};

}  // namespace ktnn

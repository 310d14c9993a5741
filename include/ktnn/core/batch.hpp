#pragma once
/// \file checked_rows: the rank-2 View behind a batch a model is given (a
/// Tensor or a View of any layout), checked against the model at compile
/// time (scalar type, memory space, a Tensor's feature extent) and at run
/// time (the feature extent of a View).

#include <ktnn/core/error.hpp>

#include <Kokkos_Core.hpp>

#include <cstddef>
#include <type_traits>

namespace ktnn {

/// Instantiated when an input reaches a model; when the scalar types differ
/// the compiler names this template with both.
template <class InputScalar, class ModelScalar>
struct SameScalarType {
  static_assert(std::is_same_v<InputScalar, ModelScalar>,
                "ktnn::Model: the input's scalar type is not the model's (both are named in "
                "'SameScalarType<InputScalar, ModelScalar>' above); convert the data or build "
                "the model with that type");
  static constexpr bool ok = true;
};

namespace detail {
/// The rank-2 View behind a Tensor or a View, checked for use by a model of
/// scalar T, `Features` columns, on ExecSpace.
template <class T, int Features, class ExecSpace, class X>
auto checked_rows(char const* operation, X const& x) {
  if constexpr (requires { X::features; }) {
    static_assert(X::features == std::size_t(Features),
                  "ktnn::Model::forward: the Tensor's feature extent is not the model's "
                  "in_features");
    return checked_rows<T, Features, ExecSpace>(operation, x.view());
  } else {
    static_assert(Kokkos::is_view_v<X>, "ktnn::Model: expected a ktnn::Tensor or a Kokkos::View");
    static_assert(X::rank() == 2, "ktnn::Model: expected a rank-2 View (batch, features)");
    static_assert(SameScalarType<typename X::non_const_value_type, T>::ok);
    static_assert(Kokkos::SpaceAccessibility<ExecSpace, typename X::memory_space>::accessible,
                  "ktnn::Model: the View's memory space is not reachable from the model's "
                  "execution space");
    if (x.extent(1) != std::size_t(Features))
      fail(operation, "'", x.label(), "' has ", x.extent(1), " features per sample, expected ",
           Features);
    return x;
  }
}
}  // namespace detail

}  // namespace ktnn

#pragma once
/// \file ktnn::standardize: the state of a model's standardisation layers
/// (a Standardize first layer, an Unstandardize last layer) set from data,
/// by a deterministic reduction.

#include <ktnn/core/batch.hpp>
#include <ktnn/core/error.hpp>
#include <ktnn/core/matrix.hpp>
#include <ktnn/core/profiling.hpp>
#include <ktnn/layers/standardize.hpp>

#include <Kokkos_Core.hpp>

#include <cmath>
#include <cstddef>
#include <type_traits>

namespace ktnn {

/// Sets the state of a model's standardisation layers from data, by a
/// deterministic reduction: a Standardize first layer from the inputs `x`,
/// an Unstandardize last layer from the targets `y` (rank-2, any layout).
/// Pass an empty View for a side the model does not standardise.
template <class Model, class X, class Y>
void standardize(Model& model, X const& x, Y const& y) {
  using Arch = typename Model::architecture;
  using T = typename Model::value_type;
  using Exec = typename Model::execution_space;
  Kokkos::Profiling::ScopedRegion region("ktnn::standardize");
  using First = typename Arch::template layer<0>;
  using Last = typename Arch::template layer<Arch::depth - 1>;
  constexpr bool inputs = std::is_same_v<First, Standardize<Arch::in_features>>;
  constexpr bool targets = std::is_same_v<Last, Unstandardize<Arch::out_features>>;
  static_assert(inputs || targets,
                "ktnn::standardize: the model has neither a Standardize first layer nor an "
                "Unstandardize last layer");
  // Computed into a scratch copy of the state, checked, then committed: a
  // failure leaves the model as it was.
  auto state = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace{}, model.state());
  auto set = [&]<int Features>(auto const& v, std::size_t layer, char const* what) {
    if (v.extent(0) == 0) detail::fail("ktnn::standardize", "the ", what, " have no samples");
    using Mem = typename Exec::memory_space;
    Kokkos::View<T*, Mem> stats(Kokkos::view_alloc(model.execution(), "ktnn::standardize::stats"),
                                2 * Features);
    detail::column_statistics(model.execution(), as_matrix(v), v.extent(0), Features, stats.data());
    auto const host = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace{}, stats);
    for (int j = 0; j < Features; ++j)
      if (!std::isfinite(double(host(j))) || !std::isfinite(double(host(Features + j))))
        detail::fail("ktnn::standardize", "column ", j, " of the ", what, " has mean ",
                     double(host(j)), " and std ", double(host(Features + j)),
                     ": it holds values that are not finite (or too large)");
    for (int j = 0; j < 2 * Features; ++j) state(Arch::state_offset[layer] + j) = host(j);
  };
  if constexpr (inputs)
    set.template operator()<Arch::in_features>(
        detail::checked_rows<T, Arch::in_features, Exec>("ktnn::standardize", x), 0, "inputs");
  if constexpr (targets)
    set.template operator()<Arch::out_features>(
        detail::checked_rows<T, Arch::out_features, Exec>("ktnn::standardize", y), Arch::depth - 1,
        "targets");
  Kokkos::deep_copy(model.execution(), model.state(), state);
  model.execution().fence("ktnn::standardize");
}

/// standardize(model, dataset.inputs, dataset.targets).
template <class Model, class Dataset>
  requires requires(Dataset const& d) {
    d.inputs;
    d.targets;
  }
void standardize(Model& model, Dataset const& data) {
  standardize(model, data.inputs, data.targets);
}

}  // namespace ktnn

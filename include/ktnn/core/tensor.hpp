#pragma once
/// \file Tensor<T, Features, Layout, MemorySpace>: a batch of samples, each of
/// Features values. The feature extent is part of the type, the batch extent is
/// runtime, as in mdspan's extents<dynamic_extent, Features>. A Tensor is a
/// thin value type over a Kokkos::View: copying one shares the data.

#include <ktnn/core/error.hpp>
#include <ktnn/core/matrix.hpp>

#include <Kokkos_Core.hpp>

#include <cstddef>
#include <string>
#include <type_traits>
#include <utility>

namespace ktnn {

template <class T, std::size_t Features, class Layout = Kokkos::LayoutRight,
          class MemorySpace = Kokkos::DefaultExecutionSpace::memory_space>
class Tensor {
 public:
  static_assert(Features > 0, "ktnn::Tensor: the feature extent must be positive");
  using value_type = T;
  using layout_type = Layout;
  using memory_space = MemorySpace;
  using view_type = Kokkos::View<T* [Features], Layout, MemorySpace>;
  static constexpr std::size_t features = Features;

  Tensor() = default;

  /// Allocates `batch` samples, zero-filled, under a label Kokkos Tools show.
  Tensor(std::string const& label, std::size_t batch) : view_(label, batch) {}

  /// Wraps a user's rank-2 View without copying: any layout, subviews
  /// included. Throws ktnn::Error when its second extent is not Features.
  template <class View>
    requires Kokkos::is_view_v<View>
  explicit Tensor(View const& view) : view_(checked(view)) {}

  KOKKOS_INLINE_FUNCTION std::size_t batch() const { return view_.extent(0); }
  KOKKOS_INLINE_FUNCTION T* data() const { return view_.data(); }
  KOKKOS_INLINE_FUNCTION view_type const& view() const { return view_; }
  KOKKOS_INLINE_FUNCTION T& operator()(std::size_t sample, std::size_t feature) const {
    return view_(sample, feature);
  }

  /// Samples [begin, end), sharing the data.
  auto samples(std::size_t begin, std::size_t end) const {
    if (begin > end || end > batch())
      detail::fail("ktnn::Tensor::samples", "range [", begin, ", ", end, ") outside a batch of ",
                   batch());
    auto sub = Kokkos::subview(view_, std::make_pair(begin, end), Kokkos::ALL);
    return Tensor<T, Features, typename decltype(sub)::array_layout, MemorySpace>(sub);
  }

  /// A host copy of this tensor (no copy where the data is already host memory).
  auto to_host() const {
    auto host = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace{}, view_);
    return Tensor<std::remove_const_t<T>, Features, Layout, typename decltype(host)::memory_space>(
        host);
  }

  /// The matrix kernels read.
  Matrix<T> matrix() const { return as_matrix(view_); }

 private:
  template <class View>
  static view_type checked(View const& view) {
    static_assert(View::rank() == 2, "ktnn::Tensor: wraps only rank-2 Views (batch, features)");
    static_assert(Kokkos::SpaceAccessibility<MemorySpace, typename View::memory_space>::accessible,
                  "ktnn::Tensor: the View's memory space is not the Tensor's");
    if (view.extent(1) != Features)
      detail::fail("ktnn::Tensor", "View '", view.label(), "' has ", view.extent(1),
                   " features per sample, the Tensor ", Features);
    return view_type(view);
  }

  view_type view_;
};

/// A Tensor over a user's View, deducing value type, layout and memory space.
template <std::size_t Features, class View>
  requires Kokkos::is_view_v<View>
auto as_tensor(View const& view) {
  return Tensor<typename View::value_type, Features, typename View::array_layout,
                typename View::memory_space>(view);
}

}  // namespace ktnn

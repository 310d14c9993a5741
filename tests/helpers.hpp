#pragma once
// Shared test helpers: host copies, filling Views with known values, finite
// differences.

#include <ktnn/ktnn.hpp>

#include <doctest/doctest.h>
#include <test_spaces.hpp>

#include <cmath>
#include <cstdint>
#include <vector>

namespace ktnn_test {

/// The values of any View, on the host, flattened in index order.
template <class View>
std::vector<double> to_vector(View const& v) {
  auto host = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace{}, v);
  std::vector<double> out;
  if constexpr (View::rank() == 1) {
    for (std::size_t i = 0; i < host.extent(0); ++i) out.push_back(double(host(i)));
  } else {
    for (std::size_t i = 0; i < host.extent(0); ++i)
      for (std::size_t j = 0; j < host.extent(1); ++j) out.push_back(double(host(i, j)));
  }
  return out;
}

/// Fills a rank-2 View with values uniform in [lo, hi) from the test's seed.
template <class View>
void fill_uniform(View const& v, std::uint64_t seed, double lo = -1, double hi = 1) {
  auto host = Kokkos::create_mirror_view(Kokkos::HostSpace{}, v);
  std::uint64_t c = 0;
  if constexpr (View::rank() == 1) {
    for (std::size_t i = 0; i < host.extent(0); ++i)
      host(i) = lo + (hi - lo) * ktnn::random::uniform(seed, 7, c++);
  } else {
    for (std::size_t i = 0; i < host.extent(0); ++i)
      for (std::size_t j = 0; j < host.extent(1); ++j)
        host(i, j) = lo + (hi - lo) * ktnn::random::uniform(seed, 7, c++);
  }
  Kokkos::deep_copy(v, host);
}

/// Writes one element of a View from the host.
template <class View, class... I>
void set_element(View const& v, double value, I... index) {
  auto one = Kokkos::subview(v, index...);
  Kokkos::deep_copy(one, typename View::value_type(value));
}

/// |a - b| <= atol + rtol * |b|, element by element, with a message on failure.
inline void check_close(std::vector<double> const& a, std::vector<double> const& b, double rtol,
                        double atol) {
  REQUIRE(a.size() == b.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    INFO("element " << i << ": " << a[i] << " vs " << b[i]);
    CHECK(std::abs(a[i] - b[i]) <= atol + rtol * std::abs(b[i]));
  }
}

}  // namespace ktnn_test

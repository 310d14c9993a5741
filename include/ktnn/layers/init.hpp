#pragma once
/// \file Weight initialization schemes. Every value is drawn from the
/// counter-based generator keyed by (seed, parameter index), so a seed gives
/// the same initial weights on every backend and thread count.

#include <ktnn/core/random.hpp>

#include <Kokkos_Core.hpp>

#include <cstddef>
#include <cstdint>

namespace ktnn {

enum class Init {
  Auto,           ///< He uniform before ReLU-like activations, Glorot uniform otherwise
  GlorotUniform,  ///< U(-a, a), a = sqrt(6 / (fan_in + fan_out))
  GlorotNormal,   ///< N(0, 2 / (fan_in + fan_out))
  HeUniform,      ///< U(-a, a), a = sqrt(6 / fan_in)
  HeNormal,       ///< N(0, 2 / fan_in)
};

namespace detail {
/// One weight of a fan_in x fan_out matrix; `index` is its global position in
/// the parameter arena.
KOKKOS_INLINE_FUNCTION double init_value(Init scheme, std::uint64_t seed, std::uint64_t index,
                                         int fan_in, int fan_out) {
  double const glorot = 2.0 / (fan_in + fan_out);
  double const he = 2.0 / fan_in;
  switch (scheme) {
    case Init::GlorotNormal:
      return Kokkos::sqrt(glorot) * random::normal(seed, 0, index);
    case Init::HeNormal:
      return Kokkos::sqrt(he) * random::normal(seed, 0, index);
    case Init::HeUniform:
      return Kokkos::sqrt(3.0 * he) * (2.0 * random::uniform(seed, 0, index) - 1.0);
    case Init::GlorotUniform:
    case Init::Auto:
    default:
      return Kokkos::sqrt(3.0 * glorot) * (2.0 * random::uniform(seed, 0, index) - 1.0);
  }
}

/// The initialize kernel of a layer whose parameters are `weights` values of
/// a fan_in x fan_out scheme followed by zero biases. Each draw is keyed by
/// its index in the model's arena (`arena_offset` + position), so a seed
/// gives the same model on every backend and thread count.
template <class T>
struct InitialWeights {
  T* params;
  std::size_t weights;
  Init scheme;
  std::uint64_t seed;
  std::size_t arena_offset;
  int fan_in;
  int fan_out;
  KOKKOS_INLINE_FUNCTION void operator()(std::size_t p) const {
    params[p] = p < weights ? T(init_value(scheme, seed, arena_offset + p, fan_in, fan_out)) : T(0);
  }
};
}  // namespace detail
}  // namespace ktnn

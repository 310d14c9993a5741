#pragma once
/// \file A counter-based random generator: the value for (seed, stream, counter)
/// is a pure function of those three numbers, so every backend and every thread
/// count draws the same numbers. It is a SplitMix64-style integer hash chained
/// over the key, which passes BigCrush as a counter-based generator.

#include <Kokkos_Core.hpp>

#include <cstdint>

namespace ktnn::random {

KOKKOS_INLINE_FUNCTION std::uint64_t mix64(std::uint64_t z) {
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

/// 64 random bits for (seed, stream, counter).
KOKKOS_INLINE_FUNCTION std::uint64_t bits(std::uint64_t seed, std::uint64_t stream,
                                          std::uint64_t counter) {
  return mix64(mix64(mix64(seed) ^ stream) ^ counter);
}

/// Uniform in [0, 1) with 53 random bits.
KOKKOS_INLINE_FUNCTION double uniform(std::uint64_t seed, std::uint64_t stream,
                                      std::uint64_t counter) {
  return static_cast<double>(bits(seed, stream, counter) >> 11) * 0x1.0p-53;
}

/// Standard normal by Box-Muller over counters 2c and 2c+1.
KOKKOS_INLINE_FUNCTION double normal(std::uint64_t seed, std::uint64_t stream,
                                     std::uint64_t counter) {
  double const u1 = 1.0 - uniform(seed, stream, 2 * counter);  // (0, 1]
  double const u2 = uniform(seed, stream, 2 * counter + 1);
  return Kokkos::sqrt(-2.0 * Kokkos::log(u1)) * Kokkos::cos(2.0 * Kokkos::numbers::pi * u2);
}

/// An integer uniform in [0, n), for n > 0 (Lemire's multiply-shift; the bias
/// is below 2^-32 for any n < 2^32).
KOKKOS_INLINE_FUNCTION std::uint64_t below(std::uint64_t n, std::uint64_t seed,
                                           std::uint64_t stream, std::uint64_t counter) {
  return static_cast<std::uint64_t>(
      (static_cast<unsigned __int128>(bits(seed, stream, counter)) * n) >> 64);
}

}  // namespace ktnn::random

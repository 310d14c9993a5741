// Runs both units (the AVX2 one only where the CPU has AVX2) and checks that
// each ran its own instantiation and that both compute the same outputs.
#include "odr.hpp"

#include <Kokkos_Core.hpp>

#include <cmath>
#include <cstdio>

int main(int argc, char** argv) {
  Kokkos::ScopeGuard kokkos(argc, argv);
  int failures = 0;
  auto check = [&](bool ok, char const* what) {
    std::printf("%s: %s\n", ok ? "ok" : "FAILED", what);
    failures += !ok;
  };
  auto const baseline = run_baseline();
  check(baseline.isa == "sse2", "the baseline unit's Model is instantiated for SSE2");
#if defined(__x86_64__)
  bool const avx2 = __builtin_cpu_supports("avx2");
#else
  bool const avx2 = false;
#endif
  if (!avx2) {
    std::printf("this CPU has no AVX2: the AVX2 unit is not run\n");
    std::printf("%d passed, %d failed\n", 1 - failures, failures);
    return failures;
  }
  auto const native = run_native();
  check(native.isa == "avx2", "the AVX2 unit's Model is instantiated for AVX2");
  check(native.gemm != baseline.gemm, "each unit calls its own GEMM (distinct symbols)");
  bool same = native.output.size() == baseline.output.size() && !native.output.empty();
  for (std::size_t i = 0; same && i < native.output.size(); ++i)
    same = std::abs(native.output[i] - baseline.output[i]) <=
           1e-5 * (1 + std::abs(baseline.output[i]));
  check(same, "both units compute the same outputs");
  std::printf("%d passed, %d failed\n", 4 - failures, failures);
  return failures;
}

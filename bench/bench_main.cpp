// ktnn_bench's main: Kokkos first (benchmarks allocate Views), then Google
// Benchmark, with the context a result file needs to be compared with another:
// Kokkos version and backends, thread counts, compiler, flags, commit.
//
//   ktnn_bench [--benchmark_...] [--kokkos-...]

#include <ktnn/ops/gemm.hpp>
#include <ktnn/version.hpp>

#include <benchmark/benchmark.h>
#if defined(KTNN_BENCH_OPENBLAS)
#include <cblas.h>
#endif
#include <Kokkos_Core.hpp>

#include <string>

#ifndef KTNN_BENCH_REVISION
#define KTNN_BENCH_REVISION "unknown"
#endif
#ifndef KTNN_BENCH_ARCH_FLAGS
#define KTNN_BENCH_ARCH_FLAGS "unknown"
#endif

namespace {

std::string kokkos_backends() {
  std::string out;
  auto add = [&](char const* name) { out += out.empty() ? name : std::string(",") + name; };
#if defined(KOKKOS_ENABLE_SERIAL)
  add("Serial");
#endif
#if defined(KOKKOS_ENABLE_OPENMP)
  add("OpenMP");
#endif
#if defined(KOKKOS_ENABLE_THREADS)
  add("Threads");
#endif
#if defined(KOKKOS_ENABLE_CUDA)
  add("Cuda");
#endif
#if defined(KOKKOS_ENABLE_HIP)
  add("HIP");
#endif
#if defined(KOKKOS_ENABLE_SYCL)
  add("SYCL");
#endif
  return out;
}

void add_context() {
  using exec = Kokkos::DefaultExecutionSpace;
  benchmark::AddCustomContext("ktnn_version", ktnn::version);
  benchmark::AddCustomContext("git_revision", KTNN_BENCH_REVISION);
  benchmark::AddCustomContext("kokkos_version", std::to_string(KOKKOS_VERSION_MAJOR) + "." +
                                                    std::to_string(KOKKOS_VERSION_MINOR) + "." +
                                                    std::to_string(KOKKOS_VERSION_PATCH));
  benchmark::AddCustomContext("kokkos_backends", kokkos_backends());
  benchmark::AddCustomContext("execution_space", exec::name());
  benchmark::AddCustomContext("concurrency", std::to_string(exec().concurrency()));
  benchmark::AddCustomContext("compiler", __VERSION__);
  benchmark::AddCustomContext("arch_flags", KTNN_BENCH_ARCH_FLAGS);
  // The GEMM's tile: the host register tile follows the vector width the
  // compiler targets; devices run 64 x 64 blocks per team.
  if constexpr (ktnn::ops::device_kernels<Kokkos::DefaultExecutionSpace>)
    benchmark::AddCustomContext("ktnn_gemm_tile", "team 64x64, 4x4 per thread");
  else
    benchmark::AddCustomContext("ktnn_gemm_tile",
                                std::to_string(ktnn::ops::GemmTile<float>::mr) + "x" +
                                    std::to_string(ktnn::ops::GemmTile<float>::nr));
#if defined(KTNN_BENCH_OPENBLAS)
  benchmark::AddCustomContext("openblas_core", openblas_get_corename());
  benchmark::AddCustomContext("openblas_threads", std::to_string(openblas_get_num_threads()));
#endif
}

}  // namespace

int main(int argc, char** argv) {
  Kokkos::ScopeGuard kokkos(argc, argv);  // removes the --kokkos-* arguments
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  // OpenBLAS gets as many threads as Kokkos has on the host, whatever
  // OPENBLAS_NUM_THREADS says, so the GEMM comparison is core for core.
#if defined(KTNN_BENCH_OPENBLAS)
  openblas_set_num_threads(Kokkos::DefaultHostExecutionSpace().concurrency());
#endif
  add_context();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

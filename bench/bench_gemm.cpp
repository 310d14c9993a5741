// ktnn::ops::gemm against OpenBLAS's cblas_sgemm on the same data, with the
// same thread count (bench_main.cpp sets OpenBLAS's): square products, and the
// products one training step of the demo model (784-256-128-10, batch 128)
// runs. FLOP = 2 m n k.
//
// Names: gemm/<ktnn|openblas>/<shape>/m:M/n:N/k:K, so each pair sits together.

#include "bench_common.hpp"

#include <ktnn/detail/matrix.hpp>
#include <ktnn/ops/gemm.hpp>

#include <benchmark/benchmark.h>
#include <cblas.h>
#include <Kokkos_Core.hpp>

#include <string>
#include <vector>

namespace {

using ktnn::detail::Matrix;
using ktnn::detail::row_major;
using ktnn_bench::exec_space;
using ktnn_bench::memory_space;

/// C[m x n] = op(A) B + beta C, all row-major. With transpose_a, A is stored
/// k x m and read transposed, as Dense's weight gradient reads dZ.
struct Shape {
  std::string name;
  int m, n, k;
  bool transpose_a = false;
  float beta = 0;
};

std::vector<Shape> shapes() {
  std::vector<Shape> out;
  for (int n : {128, 256, 512, 1024, 2048}) out.push_back({"square", n, n, n});
  // Forward, layer by layer: X[128 x in] . W^T[in x out] (Dense transposes W
  // into scratch first, so B has contiguous rows).
  out.push_back({"fc1_forward", 128, 256, 784});
  out.push_back({"fc2_forward", 128, 128, 256});
  out.push_back({"fc3_forward", 128, 10, 128});
  // Backward of the first layer: dW += dZ^T[256 x 128] . X[128 x 784] (beta 1:
  // gradients accumulate) and dX = dZ[128 x 256] . W[256 x 784].
  out.push_back({"fc1_weight_grad", 256, 784, 128, true, 1.0f});
  out.push_back({"fc1_input_grad", 128, 784, 256});
  return out;
}

/// Operands of one shape, filled with values in [-1, 1).
struct Operands {
  Kokkos::View<float*, memory_space> a, b, c;
  explicit Operands(Shape const& s)
      : a("A", std::size_t(s.m) * s.k),
        b("B", std::size_t(s.k) * s.n),
        c("C", std::size_t(s.m) * s.n) {
    ktnn_bench::fill_uniform(a, -1.0f, 1.0f, 11);
    ktnn_bench::fill_uniform(b, -1.0f, 1.0f, 12);
    ktnn_bench::fill_uniform(c, -1.0f, 1.0f, 13);
  }
  Matrix<float const> a_matrix(Shape const& s) const {
    // Stored k x m when read transposed: the transpose is a stride swap.
    return s.transpose_a ? Matrix<float const>(row_major(a.data(), s.k, s.m)).transposed()
                         : Matrix<float const>(row_major(a.data(), s.m, s.k));
  }
};

void gemm_ktnn(benchmark::State& state, Shape const& s) {
  Operands ops(s);
  exec_space exec;
  auto const a = ops.a_matrix(s);
  Matrix<float const> const b = row_major(ops.b.data(), s.k, s.n);
  auto const c = row_major(ops.c.data(), s.m, s.n);
  auto run = [&] { ktnn::ops::gemm(exec, "bench::gemm", a, b, c, s.beta); };
  run();  // warm-up
  exec.fence();
  for (auto _ : state) {
    run();
    exec.fence();
  }
  ktnn_bench::rate(state, "FLOP/s", 2.0 * s.m * s.n * s.k);
}

void gemm_openblas(benchmark::State& state, Shape const& s) {
  Operands ops(s);
  auto run = [&] {
    cblas_sgemm(CblasRowMajor, s.transpose_a ? CblasTrans : CblasNoTrans, CblasNoTrans, s.m, s.n,
                s.k, 1.0f, ops.a.data(), s.transpose_a ? s.m : s.k, ops.b.data(), s.n, s.beta,
                ops.c.data(), s.n);
  };
  run();                       // warm-up: OpenBLAS starts its threads on the first call
  for (auto _ : state) run();  // synchronous: returns when C is written
  ktnn_bench::rate(state, "FLOP/s", 2.0 * s.m * s.n * s.k);
}

bool register_gemm() {
  for (auto const& s : shapes()) {
    std::string const suffix = "/" + s.name + "/m:" + std::to_string(s.m) +
                               "/n:" + std::to_string(s.n) + "/k:" + std::to_string(s.k);
    benchmark::RegisterBenchmark("gemm/ktnn" + suffix, gemm_ktnn, s)->UseRealTime();
    // OpenBLAS reads host memory: compare only where the Views live there.
    if constexpr (Kokkos::SpaceAccessibility<Kokkos::HostSpace, memory_space>::accessible)
      benchmark::RegisterBenchmark("gemm/openblas" + suffix, gemm_openblas, s)->UseRealTime();
  }
  return true;
}

[[maybe_unused]] bool const registered = register_gemm();

}  // namespace

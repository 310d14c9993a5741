// ktnn::ops::gemm against the vendor library on the same data: OpenBLAS's
// cblas_sgemm on host spaces, with the same thread count (bench_main.cpp sets
// OpenBLAS's), cuBLAS's cublasSgemm (plain FP32, no TF32) on CUDA. Square
// products (up to 8192 on a GPU), the products one training step of the demo
// model (784-256-128-10, batch 128) runs, and a weight gradient with a long K
// (the batch), which the GPU kernel splits across teams. FLOP = 2 m n k.
//
// Names: gemm/<ktnn|openblas|cublas>/<shape>/m:M/n:N/k:K, so pairs sit
// together.

#include "bench_common.hpp"

#include <ktnn/core/matrix.hpp>
#include <ktnn/ops/gemm.hpp>

#include <benchmark/benchmark.h>
#if defined(KTNN_BENCH_OPENBLAS)
#include <cblas.h>
#endif
#include <Kokkos_Core.hpp>

#if defined(KTNN_BENCH_CUBLAS)
#include <cublas_v2.h>
#endif

#include <string>
#include <vector>

namespace {

using ktnn::Matrix;
using ktnn::row_major;
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
  if (ktnn_bench::on_device)
    for (int n : {4096, 8192}) out.push_back({"square", n, n, n});
  // Forward, layer by layer: X[128 x in] . W^T[in x out] (Dense transposes W
  // into scratch first, so B has contiguous rows).
  out.push_back({"fc1_forward", 128, 256, 784});
  out.push_back({"fc2_forward", 128, 128, 256});
  out.push_back({"fc3_forward", 128, 10, 128});
  // Backward of the first layer: dW += dZ^T[256 x 128] . X[128 x 784] (beta 1:
  // gradients accumulate) and dX = dZ[128 x 256] . W[256 x 784].
  out.push_back({"fc1_weight_grad", 256, 784, 128, true, 1.0f});
  out.push_back({"fc1_input_grad", 128, 784, 256});
  // The 64-wide MLP's weight gradient at batch 16,384: dW[64 x 64] += dZ^T X.
  out.push_back({"mlp64_weight_grad", 64, 64, 16384, true, 1.0f});
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
  // As much workspace as the product can use (split-K on a GPU), as Model gives.
  Kokkos::View<float*, memory_space> work("work",
                                          ktnn::ops::gemm_workspace_size(exec, s.m, s.n, s.k));
  ktnn::ops::Workspace<float> const w{work.data(), work.extent(0)};
  auto run = [&] { ktnn::ops::gemm(exec, "bench::gemm", a, b, c, s.beta, w); };
  run();  // warm-up
  exec.fence();
  for (auto _ : state) {
    run();
    exec.fence();
  }
  ktnn_bench::rate(state, "FLOP/s", 2.0 * s.m * s.n * s.k);
}

#if defined(KTNN_BENCH_OPENBLAS)
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
#endif

#if defined(KTNN_BENCH_CUBLAS)
/// cuBLAS is column-major: the row-major C = op(A) B is C^T = B^T op(A)^T,
/// which is the column-major product of the same buffers.
void gemm_cublas(benchmark::State& state, Shape const& s) {
  Operands ops(s);
  cublasHandle_t handle;
  if (cublasCreate(&handle) != CUBLAS_STATUS_SUCCESS) {
    state.SkipWithError("cublasCreate failed");
    return;
  }
  cublasSetStream(handle, exec_space().cuda_stream());
  float const alpha = 1.0f, beta = s.beta;
  auto run = [&] {
    return cublasSgemm(handle, CUBLAS_OP_N, s.transpose_a ? CUBLAS_OP_T : CUBLAS_OP_N, s.n, s.m,
                       s.k, &alpha, ops.b.data(), s.n, ops.a.data(), s.transpose_a ? s.m : s.k,
                       &beta, ops.c.data(), s.n);
  };
  if (run() != CUBLAS_STATUS_SUCCESS) state.SkipWithError("cublasSgemm failed");
  exec_space().fence();
  for (auto _ : state) {
    run();
    exec_space().fence();
  }
  cublasDestroy(handle);
  ktnn_bench::rate(state, "FLOP/s", 2.0 * s.m * s.n * s.k);
}
#endif

bool register_gemm() {
  for (auto const& s : shapes()) {
    std::string const suffix = "/" + s.name + "/m:" + std::to_string(s.m) +
                               "/n:" + std::to_string(s.n) + "/k:" + std::to_string(s.k);
    benchmark::RegisterBenchmark(("gemm/ktnn" + suffix).c_str(), gemm_ktnn, s)->UseRealTime();
#if defined(KTNN_BENCH_OPENBLAS)
    // OpenBLAS reads host memory: compare only where the Views live there.
    if constexpr (!ktnn_bench::on_device)
      benchmark::RegisterBenchmark(("gemm/openblas" + suffix).c_str(), gemm_openblas, s)
          ->UseRealTime();
#endif
#if defined(KTNN_BENCH_CUBLAS)
    benchmark::RegisterBenchmark(("gemm/cublas" + suffix).c_str(), gemm_cublas, s)->UseRealTime();
#endif
  }
  return true;
}

[[maybe_unused]] bool const registered = register_gemm();

}  // namespace

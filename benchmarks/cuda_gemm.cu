// int8 GEMM on tensor cores: qtx::cuda::gemm (u8·s8 → s32, and the fused W8A8 epilogue → u8) vs
// cuBLASLt int8 IMMA (s8·s8 → s32, its fastest heuristic algorithm), M ∈ {128, 512, 2048, 8192},
// K, N ∈ {768, 3072, 4096}. Timed with CUDA events (UseManualTime); GOPS = 2·M·N·K / time.
// Without a GPU the program prints a note and exits 0.
#include <benchmark/benchmark.h>
#include <cublasLt.h>
#include <cuda_runtime.h>

#include <cstdio>
#include <string>
#include <vector>

#include <qtx/cuda/gemm.cuh>
#include <qtx/epilogue/pipeline.hpp>

namespace {

using namespace qtx;

void check_cublas(cublasStatus_t s, const char* what) {
  if (s != CUBLAS_STATUS_SUCCESS) throw cuda::runtime_error(std::string("cublasLt: ") + what);
}

// Times `launch` with CUDA events around each iteration.
template <class Launch>
void time_iterations(benchmark::State& state, Launch launch, double ops) {
  cudaEvent_t start, stop;
  cuda::check_cuda(cudaEventCreate(&start), "event");
  cuda::check_cuda(cudaEventCreate(&stop), "event");
  launch();  // warm-up (and lazy module load)
  cuda::check_cuda(cudaDeviceSynchronize(), "sync");
  for (auto _ : state) {
    cudaEventRecord(start);
    launch();
    cudaEventRecord(stop);
    cudaEventSynchronize(stop);
    float ms = 0.0f;
    cudaEventElapsedTime(&ms, start, stop);
    state.SetIterationTime(double(ms) / 1e3);
  }
  cuda::check_cuda(cudaGetLastError(), "benchmark kernel");
  state.counters["GOPS"] = benchmark::Counter(ops / 1e9, benchmark::Counter::kIsIterationInvariantRate);
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
}

struct problem {
  index_t m, k, n;
  cuda::device_buffer<uint8_t> a;
  cuda::packed_b<int8_t> b;
  explicit problem(index_t m_, index_t k_, index_t n_) : m(m_), k(k_), n(n_), a(m_ * k_) {
    cuda::check_cuda(cudaMemset(a.data(), 3, std::size_t(m * k)), "memset");
    std::vector<int8_t> w(std::size_t(k * n));
    for (std::size_t i = 0; i < w.size(); ++i) w[i] = int8_t(int(i * 7 % 255) - 127);
    b = cuda::pack_b<cuda::sm90>(make_view(w.data(), k, n));
  }
};

void qtx_int32(benchmark::State& state, index_t m, index_t k, index_t n) {
  problem p(m, k, n);
  cuda::device_buffer<int32_t> c(m * n);
  time_iterations(
      state,
      [&] { cuda::gemm(cuda::sm90{}, make_view(p.a.data(), m, k), p.b, make_view(c.data(), m, n), epilogue::make_pipeline(), 11); },
      2.0 * m * n * k);
}

void qtx_w8a8(benchmark::State& state, index_t m, index_t k, index_t n) {
  problem p(m, k, n);
  cuda::device_buffer<uint8_t> c(m * n);
  cuda::device_buffer<int32_t> bias(n);
  cuda::device_buffer<float> multipliers(n);
  cuda::check_cuda(cudaMemset(bias.data(), 0, std::size_t(n) * 4), "memset");
  const std::vector<float> mult(std::size_t(n), 1e-4f);
  multipliers.upload(mult);
  const auto ep = epilogue::make_pipeline(epilogue::bias<int32_t>{bias},
                                          epilogue::requantize<epilogue::per_n>{multipliers, 128});
  time_iterations(
      state, [&] { cuda::gemm(cuda::sm90{}, make_view(p.a.data(), m, k), p.b, make_view(c.data(), m, n), ep, 11); },
      2.0 * m * n * k);
}

// cuBLASLt: C(N×M, col-major = M×N row-major) = op_T(W: K×N col-major) · X(K×M col-major), TN form.
void cublaslt_int8(benchmark::State& state, index_t m, index_t k, index_t n) {
  cublasLtHandle_t handle;
  check_cublas(cublasLtCreate(&handle), "create");
  cuda::device_buffer<int8_t> x(m * k), w(k * n);
  cuda::device_buffer<int32_t> c(m * n);
  cudaMemset(x.data(), 3, std::size_t(m * k));
  cudaMemset(w.data(), 1, std::size_t(k * n));
  constexpr std::size_t workspace_bytes = 32u << 20;
  cuda::device_buffer<uint8_t> workspace(workspace_bytes);

  cublasLtMatmulDesc_t op;
  check_cublas(cublasLtMatmulDescCreate(&op, CUBLAS_COMPUTE_32I, CUDA_R_32I), "desc");
  const cublasOperation_t trans = CUBLAS_OP_T;
  check_cublas(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSA, &trans, sizeof(trans)), "transa");
  cublasLtMatrixLayout_t lw, lx, lc;
  check_cublas(cublasLtMatrixLayoutCreate(&lw, CUDA_R_8I, uint64_t(k), uint64_t(n), int64_t(k)), "layout w");
  check_cublas(cublasLtMatrixLayoutCreate(&lx, CUDA_R_8I, uint64_t(k), uint64_t(m), int64_t(k)), "layout x");
  check_cublas(cublasLtMatrixLayoutCreate(&lc, CUDA_R_32I, uint64_t(n), uint64_t(m), int64_t(n)), "layout c");
  cublasLtMatmulPreference_t pref;
  check_cublas(cublasLtMatmulPreferenceCreate(&pref), "pref");
  check_cublas(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &workspace_bytes,
                                                    sizeof(workspace_bytes)),
               "workspace");
  cublasLtMatmulHeuristicResult_t heuristic{};
  int found = 0;
  check_cublas(cublasLtMatmulAlgoGetHeuristic(handle, op, lw, lx, lc, lc, pref, 1, &heuristic, &found), "heuristic");
  if (found == 0) {
    state.SkipWithError("cuBLASLt has no int8 algorithm for this shape");
  } else {
    const int32_t alpha = 1, beta = 0;
    time_iterations(
        state,
        [&] {
          check_cublas(cublasLtMatmul(handle, op, &alpha, w.data(), lw, x.data(), lx, &beta, c.data(), lc, c.data(), lc,
                                      &heuristic.algo, workspace.data(), workspace_bytes, nullptr),
                       "matmul");
        },
        2.0 * m * n * k);
  }
  cublasLtMatmulPreferenceDestroy(pref);
  cublasLtMatrixLayoutDestroy(lw);
  cublasLtMatrixLayoutDestroy(lx);
  cublasLtMatrixLayoutDestroy(lc);
  cublasLtMatmulDescDestroy(op);
  cublasLtDestroy(handle);
}

}  // namespace

int main(int argc, char** argv) {
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
    std::printf("bench_cuda_gemm: no CUDA device, nothing to measure\n");
    return 0;
  }
  for (index_t m : {128, 512, 2048, 8192})
    for (index_t k : {768, 3072, 4096})
      for (index_t n : {768, 3072, 4096}) {
        const std::string shape = "/M:" + std::to_string(m) + "/K:" + std::to_string(k) + "/N:" + std::to_string(n);
        benchmark::RegisterBenchmark(("qtx_int8_s32" + shape).c_str(), qtx_int32, m, k, n)->UseManualTime();
        benchmark::RegisterBenchmark(("qtx_int8_w8a8_u8" + shape).c_str(), qtx_w8a8, m, k, n)->UseManualTime();
        benchmark::RegisterBenchmark(("cublaslt_int8_s32" + shape).c_str(), cublaslt_int8, m, k, n)->UseManualTime();
      }
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

// Fused attention (qtx::cuda::attention, fp16 in and out) vs the unfused pipeline it replaces:
// cuBLAS strided-batched GEMM S = scale·Q Kᵀ (fp32 out) → qtx::cuda::softmax (plain or clipped,
// fp16 out) → cuBLAS GEMM O = P V. Batch 4, 12 heads, d = 64, T ∈ {512, 2048}; vanilla and clipped
// (γ = −12/T). GFLOPS count the two matrix products, 4·B·H·T²·d, for both. CUDA-event timing.
#include <benchmark/benchmark.h>
#include <cublas_v2.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdio>
#include <string>
#include <vector>

#include <qtx/cuda/attention.cuh>
#include <qtx/cuda/softmax.cuh>

namespace {

using namespace qtx;

constexpr index_t batch = 4, heads = 12, head_dim = 64, width = heads * head_dim;

void check_cublas(cublasStatus_t s, const char* what) {
  if (s != CUBLAS_STATUS_SUCCESS) throw cuda::runtime_error(std::string("cublas: ") + what);
}

template <class Launch>
void time_iterations(benchmark::State& state, Launch launch, double flops) {
  cudaEvent_t start, stop;
  cudaEventCreate(&start);
  cudaEventCreate(&stop);
  launch();
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
  state.counters["GFLOPS"] = benchmark::Counter(flops / 1e9, benchmark::Counter::kIsIterationInvariantRate);
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
}

struct inputs {
  index_t t;
  cuda::device_buffer<__half> q, k, v, out;
  explicit inputs(index_t t_) : t(t_), q(batch * t_ * width), k(batch * t_ * width), v(batch * t_ * width),
                                out(batch * t_ * width) {
    std::vector<__half> host(std::size_t(batch * t * width));
    for (std::size_t i = 0; i < host.size(); ++i) host[i] = __float2half(float(int(i % 17) - 8) / 16.0f);
    q.upload(host);
    k.upload(host);
    v.upload(host);
  }
  batch_view<const __half> view(const cuda::device_buffer<__half>& x) const {
    return {x.data(), batch, t, width, t * width, width, 1};
  }
  double flops() const { return 4.0 * batch * heads * double(t) * double(t) * head_dim; }
};

cuda::attention_config config(index_t t, bool clipped) {
  cuda::attention_config cfg;
  cfg.n_heads = heads;
  cfg.scale = 0.125f;
  cfg.gamma = clipped ? -12.0f / float(t) : 0.0f;
  return cfg;
}

void qtx_fused(benchmark::State& state, index_t t, bool clipped) {
  inputs in(t);
  const auto cfg = config(t, clipped);
  const batch_view<__half> out{in.out.data(), batch, t, width, t * width, width, 1};
  time_iterations(state, [&] { cuda::attention(cuda::sm90{}, in.view(in.q), in.view(in.k), in.view(in.v), out, cfg); },
                  in.flops());
}

void cublas_unfused(benchmark::State& state, index_t t, bool clipped) {
  inputs in(t);
  cublasHandle_t handle;
  check_cublas(cublasCreate(&handle), "create");
  cuda::device_buffer<float> scores(batch * heads * t * t);
  cuda::device_buffer<__half> probs(batch * heads * t * t);
  const auto cfg = config(t, clipped);
  cuda::softmax_config soft;
  soft.gamma = cfg.gamma;
  const float alpha = cfg.scale, one = 1.0f, zero = 0.0f;
  const int T = int(t), d = int(head_dim), ld = int(width);
  const auto run = [&] {
    for (index_t b = 0; b < batch; ++b) {
      const __half* q = in.q.data() + b * t * width;
      const __half* k = in.k.data() + b * t * width;
      float* s = scores.data() + b * heads * t * t;
      // Column-major: Sᵀ (Tk × Tq) = K_h (as d×Tk, transposed) · Q_h (d×Tq); heads d columns apart.
      check_cublas(cublasGemmStridedBatchedEx(handle, CUBLAS_OP_T, CUBLAS_OP_N, T, T, d, &alpha, k, CUDA_R_16F, ld, d,
                                              q, CUDA_R_16F, ld, d, &zero, s, CUDA_R_32F, T, int64_t(T) * T, int(heads),
                                              CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
                   "scores");
    }
    cuda::softmax(cuda::sm90{}, make_view(static_cast<const float*>(scores.data()), batch * heads * t, t),
                  make_view(probs.data(), batch * heads * t, t), soft);
    for (index_t b = 0; b < batch; ++b) {
      const __half* v = in.v.data() + b * t * width;
      const __half* p = probs.data() + b * heads * t * t;
      __half* o = in.out.data() + b * t * width;
      // Oᵀ (d × Tq, ld = H·d) = V_hᵀ (d × Tk) · Pᵀ (Tk × Tq).
      check_cublas(cublasGemmStridedBatchedEx(handle, CUBLAS_OP_N, CUBLAS_OP_N, d, T, T, &one, v, CUDA_R_16F, ld, d, p,
                                              CUDA_R_16F, T, int64_t(T) * T, &zero, o, CUDA_R_16F, ld, d, int(heads),
                                              CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
                   "context");
    }
  };
  time_iterations(state, run, in.flops());
  cublasDestroy(handle);
}

}  // namespace

int main(int argc, char** argv) {
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
    std::printf("bench_cuda_attention: no CUDA device, nothing to measure\n");
    return 0;
  }
  for (index_t t : {512, 2048})
    for (bool clipped : {false, true}) {
      const std::string name = std::string(clipped ? "clipped" : "vanilla") + "/B:4/H:12/d:64/T:" + std::to_string(t);
      benchmark::RegisterBenchmark(("qtx_fused_" + name).c_str(), qtx_fused, t, clipped)->UseManualTime();
      benchmark::RegisterBenchmark(("cublas_unfused_" + name).c_str(), cublas_unfused, t, clipped)->UseManualTime();
    }
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

#pragma once
// Layer normalisation on the GPU (one CTA per row), with the residual add and the output
// quantization fused:
//   v = x + residual;   μ = mean(v);   σ² = mean((v − μ)²)  (biased, as PyTorch)
//   y = (v − μ) / √(σ² + eps) · gamma + beta         → float / fp16 / bf16, or quantized 8-bit
// Two-pass variance (no E[v²] − μ² cancellation); the row is re-read from L1/L2.
#if !defined(__CUDACC__)
#error "qtx/cuda/layer_norm.cuh needs nvcc (compile this translation unit as CUDA)"
#endif
#include <type_traits>

#include "../core/view.hpp"
#include "arch.hpp"
#include "arguments.hpp"
#include "row_common.cuh"
#include "runtime.cuh"
#include "../config.hpp"

namespace qtx::QTX_ABI::cuda {
namespace detail {

struct layer_norm_params {
  matrix_view<const float> residual;  // data == nullptr: none
  const float* gamma = nullptr;
  const float* beta = nullptr;
  float eps = 1e-5f;
  quant_params out;
  float out_inv_scale = 1.0f;
};

template <class TOut>
__global__ void layer_norm_kernel(matrix_view<const float> x, matrix_view<TOut> y, layer_norm_params p) {
  __shared__ float scratch[max_warps_per_block];
  const index_t row = blockIdx.x;
  const auto value = [&](index_t j) { return x(row, j) + (p.residual.data ? p.residual(row, j) : 0.0f); };
  const float inv_cols = 1.0f / float(x.cols);

  float local = 0.0f;
  for (index_t j = threadIdx.x; j < x.cols; j += blockDim.x) local += value(j);
  const float mean = block_reduce(local, sum_op{}, scratch) * inv_cols;

  local = 0.0f;
  for (index_t j = threadIdx.x; j < x.cols; j += blockDim.x) {
    const float d = value(j) - mean;
    local += d * d;
  }
  const float variance = block_reduce(local, sum_op{}, scratch) * inv_cols;
  const float inv_std = 1.0f / sqrtf(variance + p.eps);

  for (index_t j = threadIdx.x; j < x.cols; j += blockDim.x)
    y(row, j) = store_value<TOut>((value(j) - mean) * inv_std * p.gamma[j] + p.beta[j], p.out, p.out_inv_scale);
}

}  // namespace detail

// x, residual (optional: pass {}), y: device views of equal shape; gamma, beta: device arrays of
// x.cols floats. out_params are used when y is 8-bit.
template <class Arch, class TOut>
void layer_norm(Arch, matrix_view<const float> x, matrix_view<const float> residual, const float* gamma,
                const float* beta, float eps, matrix_view<TOut> y, quant_params out_params = {},
                cudaStream_t stream = nullptr) {
  static_assert(std::is_base_of_v<sm80, Arch>, "cuda::layer_norm: Arch must be a qtx::cuda tag");
  check_layer_norm_arguments(x, residual, gamma, beta, eps, y, out_params);
  if (x.empty()) return;
  detail::layer_norm_params p{residual, gamma, beta, eps, out_params, out_params.inv_scale()};
  detail::layer_norm_kernel<TOut><<<unsigned(x.rows), row_kernel_threads(x.cols), 0, stream>>>(x, y, p);
  check_launch("cuda::layer_norm");
}

}  // namespace qtx::cuda

#pragma once
// Building blocks of the one-CTA-per-row kernels: block-wide reductions and the output store
// (float, fp16, bf16, or quantized 8-bit with the normative quantize_one: RNE, +zp, saturate).
#if !defined(__CUDACC__)
#error "qtx/cuda/row_common.cuh needs nvcc (compile this translation unit as CUDA)"
#endif
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <type_traits>

#include "../core/types.hpp"
#include "../quant/params.hpp"
#include "../quant/quantize.hpp"
#include "launch_params.hpp"
#include "../config.hpp"

namespace qtx::QTX_ABI::cuda::detail {

inline constexpr unsigned full_warp_mask = 0xffffffffu;
inline constexpr int max_warps_per_block = 32;

struct max_op {
  __device__ float operator()(float a, float b) const { return fmaxf(a, b); }
};
struct sum_op {
  __device__ float operator()(float a, float b) const { return a + b; }
};

template <class Op>
__device__ inline float warp_reduce(float v, Op op) {
#pragma unroll
  for (int offset = warp_size / 2; offset > 0; offset /= 2) v = op(v, __shfl_xor_sync(full_warp_mask, v, offset));
  return v;
}

// Reduces v over the whole CTA and returns the result to every thread. `scratch` holds one float
// per warp; the trailing barrier lets the caller reuse it for the next reduction.
template <class Op>
__device__ inline float block_reduce(float v, Op op, float* scratch) {
  const int lane = threadIdx.x % warp_size, warp = threadIdx.x / warp_size;
  const int warps = (blockDim.x + warp_size - 1) / warp_size;
  v = warp_reduce(v, op);
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  float total = scratch[0];
  for (int w = 1; w < warps; ++w) total = op(total, scratch[w]);
  __syncthreads();
  return total;
}

// One output element from a float value.
template <class TOut>
__device__ inline TOut store_value(float v, const quant_params& out, float out_inv_scale) {
  if constexpr (std::is_same_v<TOut, float>) {
    return v;
  } else if constexpr (std::is_same_v<TOut, __half>) {
    return __float2half_rn(v);
  } else if constexpr (std::is_same_v<TOut, __nv_bfloat16>) {
    return __float2bfloat16_rn(v);
  } else {
    static_assert(element_traits<TOut>::is_quantized, "row kernels store float, fp16, bf16, int8 or uint8");
    return quantize_one<TOut>(v, out_inv_scale, out.zero_point);
  }
}

template <class T>
__device__ inline float load_value(T v) {
  if constexpr (std::is_same_v<T, __half>) return __half2float(v);
  else if constexpr (std::is_same_v<T, __nv_bfloat16>) return __bfloat162float(v);
  else return float(v);
}

}  // namespace qtx::cuda::detail

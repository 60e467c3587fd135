#pragma once
// Elementwise maps on device matrices (any strides):
//   gelu:       y = gelu(x)            (erf form or tanh approximation) → float/fp16/bf16 or 8-bit
//   quantize:   q = clamp(round_half_even(x / scale) + zp)        (qtx::quantize_one)
//   dequantize: x = scale · (q − zp)                               (qtx::dequantize_one)
// The formulas are the scalar ones of epilogue/stages.hpp and quant/quantize.hpp, called on device.
#if !defined(__CUDACC__)
#error "qtx/cuda/elementwise.cuh needs nvcc (compile this translation unit as CUDA)"
#endif
#include <type_traits>

#include "../core/view.hpp"
#include "../epilogue/stages.hpp"
#include "../quant/quantize.hpp"
#include "arch.hpp"
#include "arguments.hpp"
#include "row_common.cuh"
#include "runtime.cuh"
#include "../config.hpp"

namespace qtx::QTX_ABI::cuda {

enum class gelu_approximation { erf, tanh };

namespace detail {

inline constexpr int map_threads = 256;
inline constexpr int map_max_blocks = 65535;

template <class TIn, class TOut, class F>
__global__ void __launch_bounds__(map_threads) map_kernel(matrix_view<const TIn> x, matrix_view<TOut> y, F f) {
  const int64_t total = int64_t(x.rows) * x.cols;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const index_t r = index_t(i / x.cols), c = index_t(i % x.cols);
    y(r, c) = f(x(r, c));
  }
}

template <class TIn, class TOut, class F>
void launch_map(matrix_view<const TIn> x, matrix_view<TOut> y, F f, cudaStream_t stream, const char* fn) {
  if (x.empty()) return;
  const index_t blocks = ceil_div(x.rows * x.cols, map_threads);
  map_kernel<<<unsigned(blocks < map_max_blocks ? blocks : map_max_blocks), map_threads, 0, stream>>>(x, y, f);
  check_launch(fn);
}

template <class Gelu, class TOut>
struct gelu_map {
  quant_params out;
  float out_inv_scale;
  __device__ TOut operator()(float v) const { return store_value<TOut>(Gelu{}(v, 0, 0), out, out_inv_scale); }
};

template <class T>
struct quantize_map {
  float inv_scale;
  int32_t zero_point;
  __device__ T operator()(float v) const { return quantize_one<T>(v, inv_scale, zero_point); }
};

template <class T>
struct dequantize_map {
  quant_params params;
  __device__ float operator()(T q) const { return dequantize_one(q, params.scale, params.zero_point); }
};

}  // namespace detail

template <class Arch, class TOut>
void gelu(Arch, matrix_view<const float> x, matrix_view<TOut> y, gelu_approximation kind = gelu_approximation::erf,
          quant_params out_params = {}, cudaStream_t stream = nullptr) {
  static_assert(std::is_base_of_v<sm80, Arch>, "cuda::gelu: Arch must be a qtx::cuda tag");
  check_map_arguments("cuda::gelu", x, y);
  detail::check_output_params<TOut>("cuda::gelu", out_params);
  const float inv = out_params.inv_scale();
  if (kind == gelu_approximation::erf)
    detail::launch_map(x, y, detail::gelu_map<epilogue::gelu_erf, TOut>{out_params, inv}, stream, "cuda::gelu");
  else
    detail::launch_map(x, y, detail::gelu_map<epilogue::gelu_tanh, TOut>{out_params, inv}, stream, "cuda::gelu");
}

template <class Arch, class T>
void quantize(Arch, matrix_view<const float> x, matrix_view<T> q, quant_params params, cudaStream_t stream = nullptr) {
  static_assert(std::is_base_of_v<sm80, Arch>, "cuda::quantize: Arch must be a qtx::cuda tag");
  static_assert(element_traits<T>::is_quantized, "cuda::quantize: q must be int8 or uint8");
  check_map_arguments("cuda::quantize", x, q);
  check_quant_params<T>("cuda::quantize", "params", params);
  detail::launch_map(x, q, detail::quantize_map<T>{params.inv_scale(), params.zero_point}, stream, "cuda::quantize");
}

template <class Arch, class TQv>
void dequantize(Arch, matrix_view<TQv> q_view, matrix_view<float> x, quant_params params,
                cudaStream_t stream = nullptr) {
  using T = std::remove_const_t<TQv>;
  static_assert(std::is_base_of_v<sm80, Arch>, "cuda::dequantize: Arch must be a qtx::cuda tag");
  static_assert(element_traits<T>::is_quantized, "cuda::dequantize: q must be int8 or uint8");
  const matrix_view<const T> q = q_view;
  check_map_arguments("cuda::dequantize", q, x);
  check_quant_params<T>("cuda::dequantize", "params", params);
  detail::launch_map(q, x, detail::dequantize_map<T>{params}, stream, "cuda::dequantize");
}

}  // namespace qtx::cuda

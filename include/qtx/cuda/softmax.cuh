#pragma once
// Row softmax on the GPU, plain or clipped (one CTA per row):
//   v_j = scale · x_j + mask_j        (−∞ where causal hides j > i + causal_offset, i = row mod query_rows)
//   y_j = clip((ζ − γ) · exp(v_j − max v) / Σ exp(v − max v) + γ, 0, 1),   y = 0 on a fully hidden row
// ζ = 1, γ = 0 is plain softmax through the same code (the clip is then the identity). The output
// is float, fp16/bf16, or quantized 8-bit (uint8 for probabilities, usually scale 1/255, zp 0).
// Three passes over the row (max, sum, write); a row is read from L1/L2 after the first.
#if !defined(__CUDACC__)
#error "qtx/cuda/softmax.cuh needs nvcc (compile this translation unit as CUDA)"
#endif
#include <cmath>
#include <type_traits>

#include "../core/view.hpp"
#include "arch.hpp"
#include "arguments.hpp"
#include "row_common.cuh"
#include "runtime.cuh"
#include "../config.hpp"

namespace qtx::QTX_ABI::cuda {
namespace detail {

struct softmax_params {
  softmax_config cfg;
  index_t query_rows = 1;
  matrix_view<const float> mask;  // data == nullptr: none
  index_t mask_group = 1;         // x rows per mask row
  quant_params out;
  float out_inv_scale = 1.0f;
};

template <class TOut>
__global__ void softmax_kernel(matrix_view<const float> x, matrix_view<TOut> y, softmax_params p) {
  __shared__ float scratch[max_warps_per_block];
  const index_t row = blockIdx.x;
  const index_t query = row % p.query_rows;
  const float neg_inf = -INFINITY;
  const auto value = [&](index_t j) {
    if (p.cfg.causal && j > query + p.cfg.causal_offset) return neg_inf;
    const float masked = p.mask.data ? p.mask(row / p.mask_group, j) : 0.0f;
    return p.cfg.scale * x(row, j) + masked;
  };

  float local_max = neg_inf;
  for (index_t j = threadIdx.x; j < x.cols; j += blockDim.x) local_max = fmaxf(local_max, value(j));
  const float row_max = block_reduce(local_max, max_op{}, scratch);

  const bool hidden = row_max == neg_inf;  // every column masked: the row is all zeros
  float local_sum = 0.0f;
  if (!hidden)
    for (index_t j = threadIdx.x; j < x.cols; j += blockDim.x) local_sum += expf(value(j) - row_max);
  const float sum = block_reduce(local_sum, sum_op{}, scratch);

  const float stretch = p.cfg.zeta - p.cfg.gamma;
  for (index_t j = threadIdx.x; j < x.cols; j += blockDim.x) {
    float out = 0.0f;
    if (!hidden && sum > 0.0f) {
      const float prob = expf(value(j) - row_max) / sum;
      out = fminf(1.0f, fmaxf(0.0f, stretch * prob + p.cfg.gamma));
    }
    y(row, j) = store_value<TOut>(out, p.out, p.out_inv_scale);
  }
}

}  // namespace detail

// x, y, mask: device views. mask (optional, additive, e.g. 0 / −∞ for padding) has x.cols columns
// and rows that divide x.rows (row r uses mask row r / (x.rows / mask.rows)). out_params are used
// when y is 8-bit.
template <class Arch, class TOut>
void softmax(Arch, matrix_view<const float> x, matrix_view<TOut> y, const softmax_config& cfg = {},
             matrix_view<const float> mask = {}, quant_params out_params = {}, cudaStream_t stream = nullptr) {
  static_assert(std::is_base_of_v<sm80, Arch>, "cuda::softmax: Arch must be a qtx::cuda tag");
  check_softmax_arguments(x, y, cfg, mask, out_params);
  if (x.empty()) return;
  detail::softmax_params p;
  p.cfg = cfg;
  p.query_rows = cfg.query_rows == 0 ? x.rows : cfg.query_rows;
  p.mask = mask;
  p.mask_group = mask.data ? mask_row_group(x.rows, mask.rows) : 1;
  p.out = out_params;
  p.out_inv_scale = out_params.inv_scale();
  detail::softmax_kernel<TOut><<<unsigned(x.rows), row_kernel_threads(x.cols), 0, stream>>>(x, y, p);
  check_launch("cuda::softmax");
}

}  // namespace qtx::cuda

#pragma once
// Argument types and argument checks of the CUDA front (cuda/gemm.cuh, softmax.cuh, layer_norm.cuh,
// attention.cuh). Plain C++: the checks only read view metadata and pointer values, never device
// memory, so the CPU tests exercise every rejection. Each failure throws qtx::error naming the
// function, the argument and the values.
#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>

#include "../core/error.hpp"
#include "../core/view.hpp"
#include "../ops/gemm.hpp"
#include "../quant/params.hpp"
#include "../ops/rules.hpp"
#include "../ref/attention.hpp"
#include "launch_params.hpp"
#include "../config.hpp"

namespace qtx::QTX_ABI::cuda {

// Row softmax, plain or clipped (Bondarenko et al. 2023):
//   y = clip((ζ − γ) · softmax(scale · x + mask) + γ, 0, 1)
// with optional causal masking (column j of query i is hidden when j > i + causal_offset, where
// i = row mod query_rows) and rows whose every column is hidden giving y = 0.
struct softmax_config {
  float scale = 1.0f;
  float gamma = 0.0f;  // ≤ 0
  float zeta = 1.0f;   // ≥ 1
  bool causal = false;
  index_t causal_offset = 0;
  index_t query_rows = 0;  // rows per (sequence, head) block for the causal index; 0 = x.rows
};

// The fused attention takes the same configuration as the reference it is tested against.
using attention_config = ref::attention_config;

inline constexpr index_t max_kernel_extent = std::numeric_limits<int32_t>::max();

namespace detail {
template <class TOut>
void check_output_params(const char* fn, const quant_params& q) {
  if constexpr (std::is_integral_v<TOut>) check_quant_params<TOut>(fn, "output params", q);
}
template <class T>
bool fits_kernel(const matrix_view<T>& v) {
  return v.rows <= max_kernel_extent && v.cols <= max_kernel_extent;
}
}  // namespace detail

// C(M×N) = epilogue(A(M×K) · B) with B packed as N×K_padded. A and C are device views with unit
// column stride; A of any alignment is accepted (misaligned A is staged by the launcher).
template <class TA, class TC>
void check_gemm_arguments(const matrix_view<const TA>& a, index_t b_k, index_t b_n, int32_t b_zero_point,
                          const matrix_view<TC>& c, int32_t a_zero_point) {
  constexpr const char* fn = "cuda::gemm";
  check_view(fn, "a", a);
  check_view(fn, "c", c);
  check(a.cols == b_k, fn, ": a.cols (", a.cols, ") != b.rows (", b_k, ")");
  check(c.rows == a.rows && c.cols == b_n, fn, ": c is ", c.rows, "x", c.cols, " but a·b is ", a.rows,
        "x", b_n);
  check(a.row_contiguous(), fn, ": a must have unit column stride (col_stride ", a.col_stride, ")");
  check(c.row_contiguous(), fn, ": c must have unit column stride (col_stride ", c.col_stride, ")");
  check(a.rows <= 1 || a.row_stride >= a.cols, fn, ": a.row_stride (", a.row_stride, ") < a.cols (", a.cols, ")");
  check(c.rows <= 1 || c.row_stride >= c.cols, fn, ": c.row_stride (", c.row_stride, ") < c.cols (", c.cols,
        "): rows would overlap");
  check(detail::fits_kernel(a) && detail::fits_kernel(c), fn, ": extents (", a.rows, "x", a.cols, ", ",
        c.rows, "x", c.cols, ") exceed int32");
  const index_t smallest_block_m = shape_of(gemm_tile::t64x64).block_m;
  check(ceil_div(a.rows, smallest_block_m) <= max_grid_y, fn, ": M (", a.rows, ") exceeds ",
        max_grid_y * smallest_block_m);
  if constexpr (sizeof(TA) == 1) {  // 8-bit integer path; 16-bit A is fp16/bf16
    static_assert(std::is_same_v<TA, uint8_t>, "cuda::gemm: integer A must be uint8");
    check(a_zero_point >= 0 && a_zero_point <= 255, fn, ": a_zero_point (", a_zero_point,
          ") is outside uint8 range");
    check(b_k <= ops::int8_gemm_max_k, fn, ": K (", b_k, ") exceeds the int32-safe bound ",
          ops::int8_gemm_max_k);
  } else {
    check(a_zero_point == 0, fn, ": a_zero_point (", a_zero_point, ") must be 0 for float A");
    check(b_zero_point == 0, fn, ": b zero point (", b_zero_point, ") must be 0 for float B");
  }
}

// Elementwise maps (gelu, quantize, dequantize): y = f(x), same shape, any strides.
template <class TIn, class TOut>
void check_map_arguments(const char* fn, const matrix_view<const TIn>& x, const matrix_view<TOut>& y) {
  check_view(fn, "x", x);
  check_view(fn, "y", y);
  check_same_shape(fn, "x", x, "y", y);
  check(detail::fits_kernel(x), fn, ": x extents (", x.rows, "x", x.cols, ") exceed int32");
}

template <class TOut>
void check_softmax_arguments(const matrix_view<const float>& x, const matrix_view<TOut>& y,
                             const softmax_config& cfg, const matrix_view<const float>& mask,
                             const quant_params& out_params) {
  constexpr const char* fn = "cuda::softmax";
  check_view(fn, "x", x);
  check_view(fn, "y", y);
  check_same_shape(fn, "x", x, "y", y);
  check(detail::fits_kernel(x), fn, ": x extents (", x.rows, "x", x.cols, ") exceed int32");
  check(std::isfinite(cfg.scale), fn, ": scale (", cfg.scale, ") must be finite");
  check_clip(fn, cfg.gamma, cfg.zeta);
  const index_t query_rows = cfg.query_rows == 0 ? x.rows : cfg.query_rows;
  check(cfg.query_rows >= 0 && (x.rows == 0 || x.rows % query_rows == 0), fn, ": query_rows (",
        cfg.query_rows, ") must divide x.rows (", x.rows, ")");
  if (mask.data != nullptr) {
    check_view(fn, "mask", mask);
    check(mask.cols == x.cols, fn, ": mask.cols (", mask.cols, ") != x.cols (", x.cols, ")");
    check(x.rows == 0 || mask_row_group(x.rows, mask.rows) != 0, fn, ": mask.rows (", mask.rows,
          ") must divide x.rows (", x.rows, ")");
  }
  detail::check_output_params<TOut>(fn, out_params);
}

template <class TOut>
void check_layer_norm_arguments(const matrix_view<const float>& x, const matrix_view<const float>& residual,
                                const float* gamma, const float* beta, float eps,
                                const matrix_view<TOut>& y, const quant_params& out_params) {
  constexpr const char* fn = "cuda::layer_norm";
  check_view(fn, "x", x);
  check_view(fn, "y", y);
  check_same_shape(fn, "x", x, "y", y);
  check(detail::fits_kernel(x), fn, ": x extents (", x.rows, "x", x.cols, ") exceed int32");
  if (residual.data != nullptr) check_same_shape(fn, "x", x, "residual", residual);
  check(x.empty() || (gamma != nullptr && beta != nullptr), fn, ": gamma and beta must not be null");
  check_layer_norm_eps(fn, eps);
  detail::check_output_params<TOut>(fn, out_params);
}

// q, k, v: batch × T × (n_heads · d), 16-bit elements, 16-byte aligned rows; out: any strides.
template <class T, class TOut>
void check_attention_arguments(const batch_view<const T>& q, const batch_view<const T>& k,
                               const batch_view<const T>& v, const batch_view<TOut>& out,
                               const attention_config& cfg, const matrix_view<const float>& key_mask,
                               const batch_view<const float>& gate) {
  constexpr const char* fn = "cuda::attention";
  check(cfg.n_heads >= 1, fn, ": n_heads (", cfg.n_heads, ") must be >= 1");
  check(q.batch == k.batch && q.batch == v.batch && q.batch == out.batch, fn, ": batch sizes differ (q ",
        q.batch, ", k ", k.batch, ", v ", v.batch, ", out ", out.batch, ")");
  check(q.cols == k.cols && q.cols == v.cols && q.cols == out.cols, fn, ": widths differ (q ", q.cols,
        ", k ", k.cols, ", v ", v.cols, ", out ", out.cols, ")");
  check(k.rows == v.rows, fn, ": k has ", k.rows, " rows but v has ", v.rows);
  check(out.rows == q.rows, fn, ": out has ", out.rows, " rows but q has ", q.rows);
  check(q.cols % cfg.n_heads == 0, fn, ": width (", q.cols, ") is not a multiple of n_heads (", cfg.n_heads,
        ")");
  const index_t d = q.cols / cfg.n_heads;
  check(attention_head_dim_supported(d), fn, ": head dimension ", d, " is not supported (32, 64, 128)");
  check(q.rows <= max_kernel_extent && k.rows <= max_kernel_extent && q.batch <= max_grid_y, fn,
        ": extents too large");
  check(std::isfinite(cfg.scale), fn, ": scale (", cfg.scale, ") must be finite");
  check_clip(fn, cfg.gamma, cfg.zeta);
  check(cfg.causal_offset >= -max_kernel_extent && cfg.causal_offset <= max_kernel_extent, fn,
        ": causal_offset (", cfg.causal_offset, ") is out of range");
  const auto check_operand = [&](const char* name, const auto& x) {
    check(x.data != nullptr || x.batch * x.rows == 0, fn, ": ", name, " is null");
    check(x.col_stride == 1, fn, ": ", name, " must have unit column stride");
    check(x.batch <= 1 || x.batch_stride >= 0, fn, ": ", name, " has a negative batch stride");
    const bool aligned = cp_async_compatible(x.data, x.rows, x.row_stride, 1, int(sizeof(T))) &&
                         (x.batch <= 1 || (x.batch_stride * index_t(sizeof(T))) % copy_bytes == 0);
    check(aligned, fn, ": ", name, " rows must start 16-byte aligned (data, row_stride ", x.row_stride,
          ", batch_stride ", x.batch_stride, ")");
  };
  check_operand("q", q);
  check_operand("k", k);
  check_operand("v", v);
  check(out.data != nullptr || out.batch * out.rows == 0, fn, ": out is null");
  if (key_mask.data != nullptr) {
    check(key_mask.cols == k.rows, fn, ": key_mask.cols (", key_mask.cols, ") != keys (", k.rows, ")");
    check(key_mask.rows == 1 || key_mask.rows == q.batch, fn, ": key_mask.rows (", key_mask.rows,
          ") must be 1 or the batch size (", q.batch, ")");
  }
  if (gate.data != nullptr) {
    check(gate.batch == q.batch && gate.rows == q.rows && gate.cols == cfg.n_heads, fn, ": gate is ",
          gate.batch, "x", gate.rows, "x", gate.cols, " but must be ", q.batch, "x", q.rows, "x",
          cfg.n_heads);
  }
}

}  // namespace qtx::cuda

#pragma once
// Vectorized fused residual + layer norm + quantize over rows:
//   s = x + r (stored when asked: the residual stream), μ, σ² of s (shifted two-pass, float lanes:
//   s − μ = (s − s₀) − (μ − s₀), see ref/layernorm.hpp),
//   y = (s − μ)·(1/√(σ² + eps))·weight + bias, stored as float or quantized to 8 bits in the same pass
// — the formula of ref/layernorm.hpp, which the scalar backend runs as is.
//
// One kernel, three sweeps over a row that stays in L1: (1) s and Σ(s − s₀), (2) Σ(s − μ)², (3) y.
// The sum s lives in sum_out when it is written, in a per-thread scratch row when it is not, and is
// x itself without a residual, so the fused form reads x and r once from memory and writes y once.
#include <span>

#include "../../core/buffer.hpp"
#include "../../ref/layernorm.hpp"
#include "common.hpp"
#include "simd.hpp"
#include "../../config.hpp"

namespace qtx::QTX_ABI::cpu::rows {

#if QTX_HAS_AVX2 || QTX_HAS_AVX512_VNNI

inline constexpr index_t layer_norm_unroll = 2;

// Σ_j f(j, valid lanes) over a row with `layer_norm_unroll` independent accumulators; f sees full
// vectors (mask all true) and finally the tail.
template <class A, class F>
QTX_ALWAYS_INLINE float sum_over_row(index_t n, F&& f) {
  constexpr index_t W = lanes<A>;
  vfloat<A> acc[layer_norm_unroll] = {vfloat<A>(0.0f), vfloat<A>(0.0f)};
  index_t j = 0;
  for (; j + layer_norm_unroll * W <= n; j += layer_norm_unroll * W)
    for (index_t u = 0; u < layer_norm_unroll; ++u) acc[u] += f(j + u * W, W);
  for (; j + W <= n; j += W) acc[0] += f(j, W);
  if (j < n) acc[1] += xsimd::select(first_lanes<A>(n - j), f(j, n - j), vfloat<A>(0.0f));
  return reduce_sum<A>(acc[0] + acc[1]);
}

template <class A>
QTX_ALWAYS_INLINE vfloat<A> load_part(const float* p, index_t count) {
  return count == lanes<A> ? vfloat<A>::load_unaligned(p) : load_float_tail<A>(p, count);
}

template <class A, bool HasResidual, class Out>
void layer_norm_row(const float* x, const float* r, float* s_store, const float* weight, const float* bias,
                    Out* y, index_t n, float eps, const row_writer<A, Out>& write) {
  constexpr index_t W = lanes<A>;
  const float shift_value = HasResidual ? x[0] + r[0] : x[0];
  const vfloat<A> shift(shift_value);
  const float* s = HasResidual ? s_store : x;
  const float shifted_sum = sum_over_row<A>(n, [&](index_t j, index_t count) {
    vfloat<A> sv = load_part<A>(x + j, count);
    if constexpr (HasResidual) {
      sv += load_part<A>(r + j, count);
      if (count == W)
        sv.store_unaligned(s_store + j);
      else
        row_writer<A, float>{}.tail(s_store + j, sv, count);
    }
    return sv - shift;
  });
  const vfloat<A> shifted_mean(shifted_sum / float(n));  // μ − s₀
  const auto centered = [&](index_t j, index_t count) { return (load_part<A>(s + j, count) - shift) - shifted_mean; };
  const float squares = sum_over_row<A>(n, [&](index_t j, index_t count) {
    const vfloat<A> d = centered(j, count);
    return d * d;
  });
  const vfloat<A> rstd(1.0f / std::sqrt(squares / float(n) + eps));
  const auto normalize = [&](index_t j, index_t count) {
    const vfloat<A> d = centered(j, count);
    return xsimd::fma(d * rstd, load_part<A>(weight + j, count), load_part<A>(bias + j, count));
  };
  index_t j = 0;
  for (; j + W <= n; j += W) write(y + j, normalize(j, W));
  if (j < n) write.tail(y + j, normalize(j, n - j), n - j);
}

template <class A, bool HasResidual, class Out>
void layer_norm_rows(matrix_view<const float> x, matrix_view<const float> residual, matrix_view<float> sum_out,
                     std::span<const float> weight, std::span<const float> bias, matrix_view<Out> y, float eps,
                     quant_params y_params) {
  const index_t blocks = row_block_count(x.rows, x.cols);
  const bool scratch_needed = HasResidual && !sum_out.data;
  aligned_buffer<float> scratch(scratch_needed ? blocks * x.cols : 0);
  const row_writer<A, Out> write(y_params);
  for_row_blocks(x.rows, blocks, [&](index_t block, index_t first, index_t end) {
    for (index_t i = first; i < end; ++i) {
      float* s_store = scratch_needed ? scratch.data() + block * x.cols : (HasResidual ? sum_out.row(i) : nullptr);
      layer_norm_row<A, HasResidual>(x.row(i), HasResidual ? residual.row(i) : nullptr, s_store, weight.data(),
                                     bias.data(), y.row(i), x.cols, eps, write);
    }
  });
}

#endif  // QTX_HAS_AVX2 || QTX_HAS_AVX512_VNNI

// Backend entry (arguments checked by ops::layer_norm); views with strided columns take the
// reference path on every backend.
template <class Arch, class Out>
void layer_norm(Arch, matrix_view<const float> x, matrix_view<const float> residual, matrix_view<float> sum_out,
                std::span<const float> weight, std::span<const float> bias, matrix_view<Out> y, float eps,
                quant_params y_params) {
  if constexpr (has_simd<Arch>) {
    using A = simd_arch_t<Arch>;
    if (x.row_contiguous() && residual.row_contiguous() && sum_out.row_contiguous() && y.row_contiguous() &&
        x.cols > 0) {
      if (residual.data)
        layer_norm_rows<A, true>(x, residual, sum_out, weight, bias, y, eps, y_params);
      else
        layer_norm_rows<A, false>(x, residual, sum_out, weight, bias, y, eps, y_params);
      return;
    }
  }
  ref::layer_norm(x, residual, sum_out, weight, bias, y, eps, y_params);
}

}  // namespace qtx::cpu::rows

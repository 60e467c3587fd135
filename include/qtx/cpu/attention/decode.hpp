#pragma once
// Attention of a few queries against a long key/value cache (incremental decoding): scores and P·V
// as dot products that read K and V where they lie.
//
// Why not fused.hpp's GEMM path: it packs K_hᵀ and V_h of every head per call, which pays off over a
// block of queries but for one query costs far more than the attention itself (measured, 12 heads
// × 64, cache 512, one thread: ~500 µs packed vs tens of µs here; see bench_attention BM_decode).
// The arithmetic is the same as the GEMM path's: W8A8 scores are exact int32 sums
// Σ (q − z_q)(k − z_k), probabilities uint8 with scale 1/255, P·V exact int32 Σ p (v − z_v), then the
// same epilogue stages; so W8A8 results are bit-identical to the GEMM path, float ones agree to rounding.
#include <type_traits>

#include "../../core/buffer.hpp"
#include "../../core/parallel.hpp"
#include "../../core/view.hpp"
#include "../rows/softmax.hpp"
#include "common.hpp"

namespace qtx::cpu {

// Up to this many query rows take the decode path; more share packed K and V (fused.hpp).
inline constexpr index_t decode_max_queries = 4;

namespace detail {

// Σ_c a[c]·b[c] in float: vector lanes, one horizontal sum, scalar tail.
template <class Arch>
float dot(Arch, const float* a, const float* b, index_t n) {
  index_t c = 0;
  float sum = 0.0f;
#if QTX_HAS_AVX2 || QTX_HAS_AVX512_VNNI
  if constexpr (rows::has_simd<Arch>) {
    using V = rows::vfloat<rows::simd_arch_t<Arch>>;
    V acc(0.0f);
    for (; c + index_t(V::size) <= n; c += index_t(V::size))
      acc = xsimd::fma(V::load_unaligned(a + c), V::load_unaligned(b + c), acc);
    sum = xsimd::hadd(acc);
  }
#endif
  for (; c < n; ++c) sum += a[c] * b[c];
  return sum;
}

// Σ_c a[c]·(b[c] − zb) with a already centred (a = q − z_q), exact in int32 (|n · 255²| < 2^31 for
// n ≤ int8_gemm_max_k). Both factors fit int16, the form compilers turn into pmaddwd / vpdpwssd.
template <class Arch>
int32_t dot(Arch, const int16_t* a, const uint8_t* b, int16_t zb, index_t n) {
  int32_t sum = 0;
  for (index_t c = 0; c < n; ++c) sum += int32_t(a[c]) * int32_t(int16_t(int16_t(b[c]) - zb));
  return sum;
}

// acc[c] += p · (v[c] − zv) for c < n (zv = 0 for float).
template <class Acc, class P, class T>
void accumulate_row(Acc* acc, P p, const T* v, int32_t zv, index_t n) {
  for (index_t c = 0; c < n; ++c) acc[c] += Acc(p) * (Acc(v[c]) - Acc(zv));
}

}  // namespace detail

// Same contract as fused_attention (checked by ops::attention); q has at most decode_max_queries rows.
template <class Arch, class T, class TO>
void decode_attention(Arch arch, matrix_view<const T> q, matrix_view<const T> k, matrix_view<const T> v,
                      matrix_view<TO> out, const attention_params& p, matrix_view<const float> key_mask,
                      matrix_view<const float> gate, const attention_quant& quant) {
  constexpr bool quantized = std::is_same_v<T, uint8_t>;
  using score_t = std::conditional_t<quantized, int32_t, float>;
  using prob_t = std::conditional_t<quantized, uint8_t, float>;

  const index_t H = p.n_heads, d = q.cols / H, Tq = q.rows, Tk = k.rows;
  const float score_scale = quantized ? p.scale * quant.q.scale * quant.k.scale : p.scale;
  [[maybe_unused]] const int32_t zq = quant.q.zero_point, zk = quant.k.zero_point;
  const int32_t zv = quantized ? quant.v.zero_point : 0;

  parallel_for(0, H, [&](index_t h) {
    aligned_buffer<score_t> scores(Tk), context(d);
    aligned_buffer<int16_t> centred_query(quantized ? d : 0);
    aligned_buffer<prob_t> probs(Tk);
    float gate_column[decode_max_queries];
    if (gate.data)
      for (index_t i = 0; i < Tq; ++i) gate_column[i] = gate(i, h);
    for (index_t i = 0; i < Tq; ++i) {
      // Keys a causal query cannot see get no score; the softmax masks them to probability 0.
      const index_t visible = p.causal ? std::min(Tk, i + p.causal_offset + 1) : Tk;
      const T* query = q.row(i) + h * d;
      if constexpr (quantized) {
        for (index_t c = 0; c < d; ++c) centred_query[c] = int16_t(int32_t(query[c]) - zq);
        for (index_t t = 0; t < visible; ++t)
          scores[t] = detail::dot(arch, centred_query.data(), k.row(t) + h * d, int16_t(zk), d);
      } else {
        for (index_t t = 0; t < visible; ++t) scores[t] = detail::dot(arch, query, k.row(t) + h * d, d);
      }
      const softmax_params sp{score_scale, p.gamma, p.zeta, p.causal, p.causal_offset + i};
      if (Tk > 0)
        rows::softmax(arch, make_view(static_cast<const score_t*>(scores.data()), 1, Tk),
                      make_view(probs.data(), 1, Tk), sp, key_mask, probability_params);

      std::fill(context.data(), context.data() + d, score_t(0));
      for (index_t t = 0; t < visible; ++t)  // clipped softmax's exact zeros skip their value rows
        if (probs[t] != prob_t(0)) detail::accumulate_row(context.data(), probs[t], v.row(t) + h * d, zv, d);
      with_context_epilogue<T, TO>(quant, gate.data ? gate_column : nullptr, [&](const auto& pipeline) {
        TO* row = out.row(i) + h * d;
        for (index_t c = 0; c < d; ++c) row[c] = epilogue::evaluate<TO>(pipeline, context[c], i, c);
      });
    }
  });
}

}  // namespace qtx::cpu

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
#include <vector>

#include "../../core/buffer.hpp"
#include "../../core/parallel.hpp"
#include "../../core/view.hpp"
#include "../rows/softmax.hpp"
#include "common.hpp"
#include "../../config.hpp"

namespace qtx::QTX_ABI::cpu {

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

#if QTX_HAS_AVX2 || QTX_HAS_AVX512_VNNI
template <class A>
rows::vfloat<A> load_as_float(const float* p) {
  return rows::vfloat<A>::load_unaligned(p);
}
template <class A>
rows::vfloat<A> load_as_float(const uint8_t* p) {
  return rows::vto_float<A>(rows::widen(p, A{}));
}

// Scores of lanes<A> consecutive keys at once: one accumulator vector per key, then one transposing
// horizontal add (rows::sum_each) for all of them, instead of a reduction per key (which was most of the
// one-key-at-a-time loop: 1.6x slower at d = 64). For uint8 keys the float arithmetic is exact: the
// centred query and key values are integers of magnitude ≤ 255, so every partial sum is an integer
// below d·255² ≤ 2^24 (d ≤ exact_float_dot_max_d).
inline constexpr index_t exact_float_dot_max_d = (index_t(1) << 24) / (255 * 255);

template <class A, class T>
void score_block(const float* query, const T* keys, index_t key_stride, index_t n, float key_zero_point, float* out) {
  using V = rows::vfloat<A>;
  constexpr index_t L = rows::lanes<A>;
  V acc[L];
  for (auto& a : acc) a = V(0.0f);
  const V zk(key_zero_point);
  index_t c = 0;
  for (; c + L <= n; c += L) {
    const V qv = V::load_unaligned(query + c);
    for (index_t j = 0; j < L; ++j) acc[j] = xsimd::fma(qv, load_as_float<A>(keys + j * key_stride + c) - zk, acc[j]);
  }
  rows::sum_each<A>(acc).store_unaligned(out);
  for (; c < n; ++c)
    for (index_t j = 0; j < L; ++j) out[j] += query[c] * (float(keys[j * key_stride + c]) - key_zero_point);
}
#endif

// scores[t] for keys t < count of one head (keys[t] = k.row(t) + offset): blocks of vector-width keys
// where the backend has vectors (and, for uint8, float is exact), one key at a time otherwise.
template <class Arch, class T, class Score>
void head_scores(Arch arch, const T* query, int32_t zq, matrix_view<const T> k, index_t offset, int32_t zk, index_t d,
                 index_t count, Score* scores, [[maybe_unused]] float* query_float) {  // unused without SIMD
  constexpr bool quantized = std::is_same_v<T, uint8_t>;
  index_t t = 0;
#if QTX_HAS_AVX2 || QTX_HAS_AVX512_VNNI
  if constexpr (rows::has_simd<Arch>) {
    using A = rows::simd_arch_t<Arch>;
    constexpr index_t L = rows::lanes<A>;
    if (!quantized || d <= exact_float_dot_max_d) {
      for (index_t c = 0; c < d; ++c) query_float[c] = float(query[c]) - float(zq);
      alignas(64) float block[L];
      for (; t + L <= count; t += L) {
        score_block<A>(query_float, k.row(t) + offset, k.row_stride, d, float(zk), block);
        for (index_t j = 0; j < L; ++j) scores[t + j] = Score(block[j]);
      }
    }
  }
#endif
  if constexpr (quantized) {
    if (t == count) return;
    static thread_local aligned_buffer<int16_t> centred;  // reused: no allocation once warm
    centred.reserve(d);
    for (index_t c = 0; c < d; ++c) centred[c] = int16_t(int32_t(query[c]) - zq);
    for (; t < count; ++t) scores[t] = dot(arch, centred.data(), k.row(t) + offset, int16_t(zk), d);
  } else {
    for (; t < count; ++t) scores[t] = dot(arch, query, k.row(t) + offset, d);
  }
}

// out[c] = Σ_t p[t]·(v_t[c] − zv) for c < d over the keys t < count with p[t] ≠ 0 (clipped softmax's
// exact zeros skip their value rows). Column blocks of NV vectors stay in registers across all keys;
// uint8 sums are exact int32 (Σ p·v − zv·Σ p). zv = 0 for float.
template <class Arch, class P, class T, class Acc>
void weighted_sum(Arch, const P* p, index_t count, matrix_view<const T> v, index_t offset, int32_t zv, index_t d,
                  Acc* out) {
  index_t c0 = 0;
#if QTX_HAS_AVX2 || QTX_HAS_AVX512_VNNI
  if constexpr (rows::has_simd<Arch>) {
    using A = rows::simd_arch_t<Arch>;
    using V = std::conditional_t<std::is_same_v<Acc, float>, rows::vfloat<A>, rows::vint<A>>;
    constexpr index_t L = rows::lanes<A>;
    auto load = [](const T* at) {
      if constexpr (std::is_same_v<T, float>)
        return V::load_unaligned(at);
      else
        return V(rows::widen(at, A{}));
    };
    auto block = [&]<int NV>(std::integral_constant<int, NV>) {
      for (; c0 + NV * L <= d; c0 += NV * L) {
        V acc[NV];
        for (auto& a : acc) a = V(Acc(0));
        for (index_t t = 0; t < count; ++t) {
          if (p[t] == P(0)) continue;
          const V weight(static_cast<Acc>(p[t]));
          const T* row = v.row(t) + offset + c0;
          for (int j = 0; j < NV; ++j) acc[j] += weight * load(row + j * L);
        }
        for (int j = 0; j < NV; ++j) acc[j].store_unaligned(out + c0 + j * L);
      }
    };
    block(std::integral_constant<int, 4>{});
    block(std::integral_constant<int, 1>{});
  }
#endif
  for (index_t c = c0; c < d; ++c) {
    Acc sum = 0;
    for (index_t t = 0; t < count; ++t) sum += Acc(p[t]) * Acc(v.row(t)[offset + c]);
    out[c] = sum;
  }
  if constexpr (std::is_same_v<T, uint8_t>) {
    int32_t p_sum = 0;
    for (index_t t = 0; t < count; ++t) p_sum += p[t];
    for (index_t c = 0; c < d; ++c) out[c] -= zv * p_sum;
  }
}

// One head's score, context, float query and probability rows, kept by the thread that runs it.
template <class Score, class Prob>
struct decode_rows {
  struct parts {
    aligned_buffer<Score> scores, context;
    aligned_buffer<float> query_float;
    aligned_buffer<Prob> probs;
  } buffers;
  void reserve(index_t keys, index_t d) {
    buffers.scores.reserve(keys);
    buffers.context.reserve(d);
    buffers.query_float.reserve(d);
    buffers.probs.reserve(keys);
  }
  static decode_rows& local() {
    static thread_local decode_rows rows;
    return rows;
  }
};

}  // namespace detail

// Same contract as fused_attention (checked by ops::attention); q has at most decode_max_queries rows.
template <class Arch, class T, class TO>
void decode_attention(Arch arch, matrix_view<const T> q, matrix_view<const T> k, matrix_view<const T> v,
                      matrix_view<TO> out, const attention_params& p, matrix_view<const float> key_mask,
                      matrix_view<const float> gate, const attention_quant& quant) {
  using types = attention_types<T>;
  constexpr bool quantized = types::quantized;
  using score_t = typename types::score;
  using prob_t = typename types::prob;
  const index_t H = p.n_heads, d = q.cols / H, Tq = q.rows, Tk = k.rows;
  const float score_scale = types::score_scale(p, quant);
  [[maybe_unused]] const int32_t zq = quant.q.zero_point, zk = quant.k.zero_point;
  const int32_t zv = quantized ? quant.v.zero_point : 0;

  parallel_for(0, H, [&](index_t h) {
    auto& rows_of_head = detail::decode_rows<score_t, prob_t>::local();
    rows_of_head.reserve(Tk, d);
    // References, not a structured binding: lambdas below capture them (Clang 14 cannot capture bindings).
    auto& scores = rows_of_head.buffers.scores;
    auto& context = rows_of_head.buffers.context;
    auto& query_float = rows_of_head.buffers.query_float;
    auto& probs = rows_of_head.buffers.probs;
    float gate_column[decode_max_queries];
    if (gate.data)
      for (index_t i = 0; i < Tq; ++i) gate_column[i] = gate(i, h);
    for (index_t i = 0; i < Tq; ++i) {
      // Keys a causal query cannot see get no score; the softmax masks them to probability 0.
      const index_t visible = p.causal ? std::min(Tk, i + p.causal_offset + 1) : Tk;
      detail::head_scores(arch, q.row(i) + h * d, zq, k, h * d, zk, d, visible, scores.data(), query_float.data());
      const softmax_params sp{score_scale, p.gamma, p.zeta, p.causal, p.causal_offset + i};
      if (Tk > 0)
        rows::softmax(arch, make_view(static_cast<const score_t*>(scores.data()), 1, Tk),
                      make_view(probs.data(), 1, Tk), sp, key_mask, probability_params);

      detail::weighted_sum(arch, probs.data(), visible, v, h * d, zv, d, context.data());
      with_context_epilogue<T, TO>(quant, h, {gate_column, gate.data ? Tq : 0}, [&](const auto& pipeline) {
        TO* row = out.row(i) + h * d;
        for (index_t c = 0; c < d; ++c) row[c] = epilogue::evaluate<TO>(pipeline, context[c], i, c);
      });
    }
  });
}

}  // namespace qtx::cpu

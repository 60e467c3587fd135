#pragma once
// Fused multi-head attention on the CPU: per (head, block of queries), scores → (clipped) softmax →
// P·V → gate, without materialising the Tq × Tk matrix of a whole head.
//
// Why full score rows per query block (and not online softmax): the clip of clipped softmax
// applies to the *normalised* probability, so every row needs its final max and sum before any
// P·V contribution can be formed. A block of Bq query rows keeps its Bq × Tk scores in a per-task
// buffer (Bq ≤ 64, so the extra memory is O(Bq·Tk) = O(T·d) per thread, not O(T²)), normalises
// them exactly, and multiplies by V. Two passes over the keys (max/sum, then P·V) would also be
// exact but recompute Q·Kᵀ; for T up to a few thousand the row buffer stays in L2 and is cheaper.
//
// K and V of each head are packed once (K_hᵀ as the (d, Tk) right operand of the score GEMM, V_h as
// the (Tk, d) operand of P·V) and shared by all query blocks; the packed operands and the score rows
// live in per-thread memory reused by the next call (nothing is allocated once a thread is warm). W8A8: uint8 K and V are re-centred to
// int8 (x − 128, zero point − 128) by the packing, the product Q·Kᵀ stays in int32 and feeds the
// softmax with the scale s_q·s_k·scale, probabilities are uint8 with scale 1/255 (zero point 0), and
// P·V's epilogue dequantizes, applies the gate and requantizes in registers.
#include <algorithm>
#include <type_traits>
#include <vector>

#include "../../core/buffer.hpp"
#include "../../core/parallel.hpp"
#include "../../core/view.hpp"
#include "../../epilogue/pipeline.hpp"
#include "../../ops/gemm.hpp"
#include "../../quant/params.hpp"
#include "../rows/softmax.hpp"
#include "../gemm/scratch.hpp"
#include "common.hpp"
#include "../../config.hpp"

namespace qtx::QTX_ABI::cpu {

// Query rows per task: 64 rows × Tk scores stay in L2 for Tk up to ~4k, and 64 ≥ the GEMM's row tile.
inline constexpr index_t attention_query_block = 64;

namespace detail {

// K_hᵀ (d, Tk) and V_h (Tk, d) of every head, packed once per call and shared by all query blocks.
// The calling thread keeps them for its next call, so a warm caller packs into memory it already
// holds instead of allocating. uint8 K and V are re-centred to int8 by the packing itself.
template <class Arch, class T>
struct packed_heads {
  using element = std::conditional_t<std::is_same_v<T, float>, float, int8_t>;
  std::vector<ops::packed_b<Arch, element>> keys_t, values;  // per head

  static packed_heads& local() {
    static thread_local packed_heads heads;
    return heads;
  }
  std::size_t bytes() const {
    std::size_t held = 0;
    for (const auto& p : keys_t) held += p.bytes();
    for (const auto& p : values) held += p.bytes();
    return held;
  }
  void release() { *this = packed_heads{}; }

  void pack(matrix_view<const T> k, matrix_view<const T> v, index_t n_heads, const attention_quant& quant) {
    if (index_t(keys_t.size()) < n_heads) {
      keys_t.resize(static_cast<std::size_t>(n_heads));
      values.resize(static_cast<std::size_t>(n_heads));
    }
    const index_t d = k.cols / n_heads;
    const int32_t zk = std::is_same_v<T, float> ? 0 : quant.k.zero_point;
    const int32_t zv = std::is_same_v<T, float> ? 0 : quant.v.zero_point;
    parallel_for(0, n_heads, [&](index_t h) {
      cpu::pack_b_into(Arch{}, keys_t[h], k.block(0, h * d, k.rows, d).transposed(), zk);
      cpu::pack_b_into(Arch{}, values[h], v.block(0, h * d, v.rows, d), zv);
    });
  }
};

// A task's score and probability rows, kept by the thread that runs it.
template <class Score, class Prob>
struct score_rows {
  aligned_buffer<Score> scores;
  aligned_buffer<Prob> probs;
  static score_rows& local() {
    static thread_local score_rows rows;
    return rows;
  }
};

}  // namespace detail

/// Bytes of packed K and V (elements T: float or uint8) the calling thread keeps between fused
/// attention calls on backend Arch: at most gemm_scratch_retained_bytes once a call returns.
template <class Arch, class T>
std::size_t attention_scratch_bytes() {
  return detail::packed_heads<Arch, T>::local().bytes();
}

template <class Arch, class T, class TO>
void fused_attention(Arch arch, matrix_view<const T> q, matrix_view<const T> k, matrix_view<const T> v,
                     matrix_view<TO> out, const attention_params& p, matrix_view<const float> key_mask,
                     matrix_view<const float> gate, const attention_quant& quant) {
  using types = attention_types<T>;
  constexpr bool quantized = types::quantized;
  using score_t = typename types::score;
  using prob_t = typename types::prob;
  const index_t H = p.n_heads, d = q.cols / H, Tq = q.rows, Tk = k.rows;
  const float score_scale = types::score_scale(p, quant);
  // Packed K/V larger than the GEMM scratch bound are freed on return, as the GEMM's own scratch.
  const gemm_detail::scratch_use<detail::packed_heads<Arch, T>> scratch;
  auto& heads = scratch.ws;
  heads.pack(k, v, H, quant);
  const index_t blocks = (Tq + attention_query_block - 1) / attention_query_block;
  const int32_t q_zero_point = quantized ? quant.q.zero_point : 0;

  parallel_for(0, H * blocks, [&](index_t task) {
    const index_t h = task / blocks, q0 = (task % blocks) * attention_query_block;
    const index_t rows = std::min(attention_query_block, Tq - q0);
    auto& buffers = detail::score_rows<score_t, prob_t>::local();
    auto& scores = buffers.scores;
    auto& probs = buffers.probs;
    scores.reserve(rows * Tk);
    if constexpr (quantized) probs.reserve(rows * Tk);
    const auto score_view = make_view(scores.data(), rows, Tk);
    cpu::gemm(arch, q.block(q0, h * d, rows, d), heads.keys_t[h], score_view, epilogue::make_pipeline(),
              q_zero_point);

    // Row i of the block is query q0 + i: the causal window moves with the block.
    const softmax_params sp{score_scale, p.gamma, p.zeta, p.causal, p.causal_offset + q0};
    matrix_view<prob_t> prob_view;
    if constexpr (quantized) {
      prob_view = make_view(probs.data(), rows, Tk);
    } else {
      prob_view = score_view;  // normalised in place
    }
    rows::softmax(arch, matrix_view<const score_t>(score_view), prob_view, sp, key_mask, probability_params);

    float gate_column[attention_query_block];
    if (gate.data)
      for (index_t i = 0; i < rows; ++i) gate_column[i] = gate(q0 + i, h);
    with_context_epilogue<T, TO>(quant, h, {gate_column, gate.data ? rows : 0}, [&](const auto& pipeline) {
      cpu::gemm(arch, matrix_view<const prob_t>(prob_view), heads.values[h], out.block(q0, h * d, rows, d), pipeline,
                0);
    });
  });
}

}  // namespace qtx::cpu

#pragma once
/// @file
/// Reference W8A8 multi-head attention: the exact semantics of ops::attention on uint8 inputs, step
/// by step, written for clarity (the oracle of the fused and the decode CPU paths, which must match
/// it bit for bit). For head h (columns [h·d, (h+1)·d) of q, k, v, out), query i and key j:
///
///   S(i, j) = Σ_c (q(i, h·d+c) − z_q)·(k(j, h·d+c) − z_k)                       exact int32
///   P(i, ·) = uint8 levels of ref::softmax over the int32 row S(i, ·) with
///               input_scale = (scale·s_q)·s_k  (float products, in this order), γ, ζ, the key mask,
///               causal: keys j ≤ i + causal_offset visible, the others level 0,
///             quantized with scale 1/255, zero point 0: level = round_half_even(p·(1/(1/255))), where
///             the float 1/(1/255) is 254.99998 (1.0 → 255, 0.5 → 127)
///   A(i, c) = Σ_j P(i, j)·(v(j, h·d+c) − z_v)                                   exact int32
///   o(i, c) = float(A)·s_pv, then ·π(i, h) when gated          s_pv = (1/255)·s_v (one float product)
///   out     = o (float output), or clamp(round_half_even(o·(1/s_out)) + z_out, 0, 255) (uint8 output;
///             s_out, z_out of head h when the output is quantized per head)
///
/// The softmax is the one float step inside (besides the epilogue's float multiplies): its levels are
/// ref::softmax's by definition. The vector backends evaluate the same formula with a vector exp
/// (≤ 1 ulp from std::exp) and float lane sums (the reference sums in double), so their float
/// probabilities differ from the reference's by a few ulp, and a level differs by one exactly where
/// p·255 lies within those ulp of a half-integer (a rounding tie: of the order of 1 level in 10^4). The
/// `softmax` parameter replaces this one step (e.g. by a backend's own row kernel) so that all the
/// integer steps around it can be checked exactly against any backend.
#include <cmath>
#include <cstdint>
#include <vector>

#include "../core/view.hpp"
#include "../quant/params.hpp"
#include "attention.hpp"
#include "softmax.hpp"
#include "../config.hpp"

namespace qtx::QTX_ABI::ref {

/// Quantization parameters of the int8 attention oracle's operands.
struct attention_int8_quant {
  /// Parameters of q, k, v and the output.
  ///@{
  quant_params q, k, v, out;  ///< uint8 inputs (scale, zero point) and the uint8 output's
  ///@}
  /// A uint8 output quantized per head: head h's parameters (out is then unused); empty: out for all.
  std::vector<quant_params> out_per_head = {};
};

/// The probability levels of one block of score rows: ref::softmax quantized to uint8 (scale 1/255).
/// Row r of `scores` is query first_query + r (the causal window moves with it).
struct reference_probabilities {
  /// Quantized probabilities of a block of int32 scores, as the int8 kernel must produce them.
  void operator()(matrix_view<const int32_t> scores, matrix_view<uint8_t> levels, const softmax_params& p,
                  matrix_view<const float> key_mask) const {
    ref::softmax(scores, levels, p, key_mask, quant_params{1.0f / 255.0f, 0});
  }
};

namespace detail {
inline uint8_t quantize_output(float o, const quant_params& out) {
  if (o != o) return uint8_t(out.zero_point);  // NaN (a NaN gate) → the zero point
  const double level = double(std::nearbyint(o * out.inv_scale())) + double(out.zero_point);
  return uint8_t(level < 0.0 ? 0.0 : level > 255.0 ? 255.0 : level);
}
}  // namespace detail

/// out (Tq × D): uint8 or float. probabilities_out, when given, receives P of every head
/// (H × Tq × Tk levels, head-major).
template <class Out, class Probabilities = reference_probabilities>
void attention_int8(matrix_view<const uint8_t> q, matrix_view<const uint8_t> k, matrix_view<const uint8_t> v,
                    matrix_view<Out> out, const attention_config& cfg, const attention_int8_quant& quant,
                    matrix_view<const float> key_mask = {}, matrix_view<const float> gate = {},
                    Probabilities probabilities = {}, std::vector<uint8_t>* probabilities_out = nullptr) {
  const index_t H = cfg.n_heads, d = q.cols / H, Tq = q.rows, Tk = k.rows;
  const float input_scale = cfg.scale * quant.q.scale * quant.k.scale;
  const float pv_scale = (1.0f / 255.0f) * quant.v.scale;
  std::vector<int32_t> S(static_cast<std::size_t>(Tq * Tk));
  std::vector<uint8_t> P(static_cast<std::size_t>(Tq * Tk));
  if (probabilities_out) probabilities_out->assign(static_cast<std::size_t>(H * Tq * Tk), 0);

  for (index_t h = 0; h < H; ++h) {
    for (index_t i = 0; i < Tq; ++i)
      for (index_t j = 0; j < Tk; ++j) {
        int32_t s = 0;
        for (index_t c = 0; c < d; ++c)
          s += (int32_t(q(i, h * d + c)) - quant.q.zero_point) * (int32_t(k(j, h * d + c)) - quant.k.zero_point);
        S[i * Tk + j] = s;
      }
    const softmax_params sp{input_scale, cfg.gamma, cfg.zeta, cfg.causal, cfg.causal_offset};
    if (Tk > 0) probabilities(make_view(S.data(), Tq, Tk), make_view(P.data(), Tq, Tk), sp, key_mask);
    if (probabilities_out)
      for (index_t e = 0; e < Tq * Tk; ++e) (*probabilities_out)[h * Tq * Tk + e] = P[e];

    for (index_t i = 0; i < Tq; ++i)
      for (index_t c = 0; c < d; ++c) {
        int32_t a = 0;
        for (index_t j = 0; j < Tk; ++j) a += int32_t(P[i * Tk + j]) * (int32_t(v(j, h * d + c)) - quant.v.zero_point);
        float o = float(a) * pv_scale;
        if (gate.data) o *= gate(i, h);
        if constexpr (std::is_same_v<Out, float>)
          out(i, h * d + c) = o;
        else
          out(i, h * d + c) = detail::quantize_output(
              o, quant.out_per_head.empty() ? quant.out : quant.out_per_head[std::size_t(h)]);
      }
  }
}

}  // namespace qtx::ref

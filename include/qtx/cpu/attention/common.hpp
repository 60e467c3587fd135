#pragma once
// What the two CPU attention paths (fused.hpp: blocks of queries over packed K and V; decode.hpp: a
// few queries reading a KV cache in place) share: the parameters, the W8A8 quantization, and the
// epilogue that turns P·V accumulators into the head's output.
#include <span>
#include <type_traits>

#include "../../core/types.hpp"
#include "../../epilogue/pipeline.hpp"
#include "../../quant/params.hpp"
#include "../../config.hpp"

namespace qtx::QTX_ABI::cpu {

/// The attention variant of ops::attention (re-exported as qtx::ops::attention_params): heads, score
/// scale, the paper's clipped softmax and causal masking.
struct attention_params {
  /// Number of heads; the columns of q, k, v must be a multiple.
  index_t n_heads = 1;
  float scale = 1.0f;  ///< applied to Q·Kᵀ, usually 1/√d_head
  float gamma = 0.0f;  ///< clipped softmax (γ ≤ 0, ζ ≥ 1); γ = 0, ζ = 1 is plain softmax
  /// Clipped softmax's stretch ζ ≥ 1.
  float zeta = 1.0f;
  /// Decoder masking: query i sees keys j ≤ i + causal_offset only.
  bool causal = false;
  index_t causal_offset = 0;  ///< query i sees keys j ≤ i + causal_offset (decoding with a KV cache)
};

/// Quantization of a W8A8 attention: inputs q, k, v and the output (when it is uint8); re-exported
/// as qtx::ops::attention_quant.
struct attention_quant {
  /// Calibrated uint8 parameters of q, k, v and the output.
  ///@{
  quant_params q, k, v, out;
  ///@}
  /// A uint8 output quantized per head: one parameter set per head (out is then unused), so a head
  /// whose gate scales it down keeps its own uint8 levels; empty: every head uses out.
  std::span<const quant_params> out_per_head = {};

  /// The output parameters of head h.
  const quant_params& out_of(index_t h) const { return out_per_head.empty() ? out : out_per_head[std::size_t(h)]; }
};

/// Probabilities in [0, 1] as uint8: scale 1/255, zero point 0 (1.0 → 255 exactly).
inline constexpr quant_params probability_params{1.0f / 255.0f, 0};

// The element types of an attention on inputs T: float runs in float; uint8 (W8A8) gives int32 scores
// (scaled by s_q·s_k·scale in the softmax) and uint8 probabilities.
template <class T>
struct attention_types {
  static constexpr bool quantized = std::is_same_v<T, uint8_t>;
  using score = std::conditional_t<quantized, int32_t, float>;
  using prob = std::conditional_t<quantized, uint8_t, float>;
  static float score_scale(const attention_params& p, const attention_quant& quant) {
    return quantized ? p.scale * quant.q.scale * quant.k.scale : p.scale;
  }
};

// Calls f(pipeline) with the epilogue of P·V of head h for inputs T and output TO: W8A8 dequantizes
// the int32 sums (scale 1/255 · s_v); then the gate multiplies row m by gate_column[m] (when not
// empty); a uint8 output is quantized last, with the head's parameters. The pipeline lives only
// during the call (it points at local scales).
template <class T, class TO, class F>
void with_context_epilogue(const attention_quant& quant, index_t h, epilogue::span<const float> gate_column, F&& f) {
  namespace ep = epilogue;
  auto with_gate = [&](auto... stages) {
    if (!gate_column.empty())
      f(ep::make_pipeline(stages..., ep::row_scale{gate_column}));
    else
      f(ep::make_pipeline(stages...));
  };
  if constexpr (std::is_same_v<T, uint8_t>) {
    const float pv_scale[] = {probability_params.scale * quant.v.scale};
    const ep::dequantize<ep::per_tensor> dq{pv_scale};
    if constexpr (std::is_same_v<TO, uint8_t>) {
      const quant_params& out = quant.out_of(h);
      const ep::quantize to_out{out.inv_scale(), out.zero_point};
      if (!gate_column.empty())
        f(ep::make_pipeline(dq, ep::row_scale{gate_column}, to_out));
      else
        f(ep::make_pipeline(dq, to_out));
    } else {
      with_gate(dq);
    }
  } else {
    with_gate();
  }
}

}  // namespace qtx::cpu

#pragma once
// Softmax over a block of attention score rows (row i is query q0 + i): the step between the two
// GEMMs of fused attention. y = clip((ζ−γ)·softmax(scale·s + mask) + γ, 0, 1), causal rows masked
// past key q0 + i + causal_offset; rows with no visible key give zeros.
#include <cmath>
#include <limits>

#include "../../core/view.hpp"
#include "../../quant/quantize.hpp"

namespace qtx::cpu {

struct softmax_block_params {
  float scale;
  float gamma;
  float zeta;
  bool causal;
  index_t causal_offset;  // already includes the block's first query index
};

template <class Arch, class S, class P>
void softmax_block(Arch, matrix_view<const S> scores, matrix_view<P> probs, const softmax_block_params& sp,
                   matrix_view<const float> key_mask, quant_params prob_params) {
  const float neg_inf = -std::numeric_limits<float>::infinity();
  const float inv = prob_params.inv_scale();
  for (index_t i = 0; i < scores.rows; ++i) {
    const index_t visible = sp.causal ? std::min(scores.cols, i + sp.causal_offset + 1) : scores.cols;
    float row_max = neg_inf;
    for (index_t j = 0; j < visible; ++j) {
      const float z = sp.scale * float(scores(i, j)) + (key_mask.data ? key_mask(0, j) : 0.0f);
      row_max = std::max(row_max, z);
    }
    float sum = 0.0f;
    for (index_t j = 0; j < visible; ++j) {
      const float z = sp.scale * float(scores(i, j)) + (key_mask.data ? key_mask(0, j) : 0.0f);
      sum += row_max == neg_inf ? 0.0f : std::exp(z - row_max);
    }
    const float norm = sum > 0.0f ? 1.0f / sum : 0.0f;
    for (index_t j = 0; j < scores.cols; ++j) {
      float y = 0.0f;
      if (j < visible && sum > 0.0f) {
        const float z = sp.scale * float(scores(i, j)) + (key_mask.data ? key_mask(0, j) : 0.0f);
        const float e = std::exp(z - row_max);
        y = std::fmin(1.0f, std::fmax(0.0f, (sp.zeta - sp.gamma) * (e * norm) + sp.gamma));
      }
      if constexpr (std::is_same_v<P, float>)
        probs(i, j) = y;
      else
        probs(i, j) = quantize_one<P>(y, inv, prob_params.zero_point);
    }
  }
}

}  // namespace qtx::cpu

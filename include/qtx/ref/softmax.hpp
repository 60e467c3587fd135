#pragma once
/// @file
/// Reference (clipped) softmax over the rows of a matrix, written for clarity: the oracle of the
/// vector kernels and the semantics of the qtx::cpu::scalar backend.
///
///   z_j = input_scale · x_j + mask_j        (−inf where causally hidden: j > i + causal_offset)
///   p_j = exp(z_j − max_k z_k) / Σ_k exp(z_k − max_k z_k)
///   y_j = clip((ζ − γ) · p_j + γ, 0, 1)     (Bondarenko et al. 2023; ζ = 1, γ = 0 is softmax)
///
/// Evaluated in float (the sum accumulated in double) as y_j = clip(e_j · r + γ, 0, 1) with e_j = exp(z_j − max), r = (ζ − γ) · (1/Σe):
/// with ζ = 1, γ = 0 the same expression is exactly e_j · (1/Σe), plain softmax, bit for bit.
/// Defined cases: entries with z = −inf get probability 0; a row whose visible entries are all −inf
/// (or that has none) is all zeros; causally hidden entries are always 0; a NaN among the visible z
/// (or a +inf, as in any softmax) makes every visible output of its row NaN, and an 8-bit output
/// then holds the zero point (quantize_one maps NaN to it).
#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <vector>

#include "../core/view.hpp"
#include "../quant/quantize.hpp"
#include "../config.hpp"

namespace qtx::QTX_ABI {

/// The (clipped) softmax variant: y = clip((ζ − γ)·softmax(input_scale·x + mask) + γ, 0, 1) over the visible columns.
struct softmax_params {
  float input_scale = 1.0f;   ///< e.g. dequantization scale · 1/√d for int32 QKᵀ scores
  float gamma = 0.0f;         ///< γ ≤ 0: probabilities below −γ/(ζ−γ) become exact zeros
  float zeta = 1.0f;          ///< ζ ≥ 1
  bool causal = false;        ///< row i sees columns j ≤ i + causal_offset
  index_t causal_offset = 0;  ///< KV-cache decoding: the number of cached keys before row 0's query
};

/// The paper's γ = −α/T (e.g. OPT: α = 12 at block size T = 512).
inline float gamma_for(float alpha, index_t T) { return -alpha / float(T); }

/// Columns [0, visible) of row i take part in the softmax.
inline index_t softmax_visible_columns(const softmax_params& p, index_t row, index_t cols) {
  if (!p.causal) return cols;
  const index_t last = row + p.causal_offset;  // last visible column
  return last < 0 ? 0 : (last + 1 < cols ? last + 1 : cols);
}

namespace ref {

/// x: float or int32 scores (R × C); y: float probabilities or 8-bit levels (quantize_one with
/// y_params); mask: empty, 1 × C (shared by all rows) or R × C, added to the scaled scores.
template <class XV, class Out>
void softmax(matrix_view<XV> x, matrix_view<Out> y, const softmax_params& p,
             matrix_view<const float> mask = {}, quant_params y_params = {}) {
  const float neg_inf = -std::numeric_limits<float>::infinity();
  std::vector<float> z(static_cast<std::size_t>(x.cols));
  for (index_t i = 0; i < x.rows; ++i) {
    const index_t visible = softmax_visible_columns(p, i, x.cols);
    const index_t mask_row = mask.rows == 1 ? 0 : i;
    float row_max = neg_inf;
    for (index_t j = 0; j < visible; ++j) {
      z[j] = std::fma(p.input_scale, float(x(i, j)), mask.data ? mask(mask_row, j) : 0.0f);
      row_max = z[j] > row_max ? z[j] : row_max;
    }
    // All −inf: subtract 0 instead, so every e_j is exp(−inf) = 0 and the row stays all zeros.
    const float shift = row_max == neg_inf ? 0.0f : row_max;
    double sum = 0.0;  // a long float sum in order drifts by ~n·ε/2; the backends sum lane-wise
    for (index_t j = 0; j < visible; ++j) {
      z[j] = std::exp(z[j] - shift);
      sum += z[j];
    }
    const float r = sum == 0.0 ? 0.0f : (p.zeta - p.gamma) * (1.0f / float(sum));
    for (index_t j = 0; j < x.cols; ++j) {
      float v = 0.0f;
      if (j < visible) {
        v = std::fma(z[j], r, p.gamma);
        v = v < 0.0f ? 0.0f : (v > 1.0f ? 1.0f : v);  // written so that NaN passes through
      }
      y(i, j) = store_float_as<Out>(v, y_params);
    }
  }
}

}  // namespace ref
}  // namespace qtx

#pragma once
/// @file
/// Reference multi-head attention for one sequence: materialised scores, double accumulation.
/// Written for clarity; the fused kernels are tested against it.
///
///   for every head h (columns [h·d, (h+1)·d) of q, k, v, out):
///     S = scale · Q_h K_hᵀ + mask            (Tq × Tk; causal: S(i, j) = −inf for j > i + causal_offset)
///     P = clip((ζ − γ) · softmax_rows(S) + γ, 0, 1)     (rows with no visible key: P = 0)
///     O_h = π(:, h) ⊙ (P V_h)                 (π = gate probabilities, 1 without a gate)
#include <cmath>
#include <limits>
#include <vector>

#include "../core/view.hpp"
#include "../config.hpp"

namespace qtx::QTX_ABI::ref {

/// The attention variant the oracle computes (the same fields as ops::attention_params).
struct attention_config {
  /// Number of heads; q.cols must be a multiple.
  index_t n_heads = 1;
  float scale = 1.0f;  ///< usually 1/√d_head
  float gamma = 0.0f;  ///< clipped softmax: γ ≤ 0, ζ ≥ 1; (0, 1) is plain softmax
  /// Clipped softmax's stretch ζ ≥ 1.
  float zeta = 1.0f;
  /// Decoder masking: query i sees keys j ≤ i + causal_offset only.
  bool causal = false;
  index_t causal_offset = 0;  ///< query i sees keys j ≤ i + causal_offset (KV-cache decoding)
};

/// The float attention oracle, straight from the formula (per head: clipped softmax of scaled
/// Q Kᵀ + mask, times V, times the gate): what ops::attention is tested against. Unchecked.
inline void attention(matrix_view<const float> q, matrix_view<const float> k, matrix_view<const float> v,
                      matrix_view<float> out, const attention_config& cfg,
                      matrix_view<const float> key_mask = {}, matrix_view<const float> gate = {}) {
  const index_t d = q.cols / cfg.n_heads;
  const index_t Tq = q.rows, Tk = k.rows;
  std::vector<double> p(static_cast<std::size_t>(Tk));
  for (index_t h = 0; h < cfg.n_heads; ++h) {
    for (index_t i = 0; i < Tq; ++i) {
      double row_max = -std::numeric_limits<double>::infinity();
      for (index_t j = 0; j < Tk; ++j) {
        double s = -std::numeric_limits<double>::infinity();
        if (!cfg.causal || j <= i + cfg.causal_offset) {
          s = 0.0;
          for (index_t c = 0; c < d; ++c) s += double(q(i, h * d + c)) * double(k(j, h * d + c));
          s = s * cfg.scale + (key_mask.data ? double(key_mask(0, j)) : 0.0);
        }
        p[j] = s;
        if (s > row_max) row_max = s;
      }
      double sum = 0.0;
      for (index_t j = 0; j < Tk; ++j) {
        p[j] = std::isinf(row_max) ? 0.0 : std::exp(p[j] - row_max);
        sum += p[j];
      }
      const double pi = gate.data ? double(gate(i, h)) : 1.0;
      for (index_t j = 0; j < Tk; ++j) {
        const double prob = sum > 0.0 ? p[j] / sum : 0.0;
        const double clipped = (double(cfg.zeta) - cfg.gamma) * prob + cfg.gamma;
        p[j] = sum > 0.0 ? std::fmin(1.0, std::fmax(0.0, clipped)) : 0.0;
      }
      for (index_t c = 0; c < d; ++c) {
        double o = 0.0;
        for (index_t j = 0; j < Tk; ++j) o += p[j] * double(v(j, h * d + c));
        out(i, h * d + c) = float(pi * o);
      }
    }
  }
}

}  // namespace qtx::ref

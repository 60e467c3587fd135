#pragma once
/// @file
/// Reference layer norm over rows (optionally fused with the residual add), written for clarity: the
/// oracle of the vector kernels and the semantics of the qtx::cpu::scalar backend.
///
///   s = x + r                     (r optional: the transformer's skip connection; s may be written out)
///   μ = mean(s),  σ² = mean((s − μ)²)          (population variance, as PyTorch)
///   y = (s − μ) · (1/√(σ² + eps)) · weight + bias      (8-bit y: quantize_one with y_params)
///
/// Statistics are shifted two-pass sums: with s₀ the row's first element, m = mean(s − s₀) and
/// s − μ = (s − s₀) − m (s − s₀ is exact for nearby values), so rows like 1e4 ± 1 lose no digits
/// to the mean; then Σ(s − μ)². The reference accumulates in double, the vector kernels in float lanes.
#include <cmath>
#include <cstdint>
#include <span>
#include <type_traits>
#include <vector>

#include "../core/view.hpp"
#include "../quant/quantize.hpp"
#include "../config.hpp"

namespace qtx::QTX_ABI {

/// PyTorch's nn.LayerNorm default (BERT checkpoints use 1e-12).
inline constexpr float layer_norm_default_eps = 1e-5f;

namespace ref {

/// y = LN(x + residual); residual and sum_out may be empty views (no residual / s not written).
template <class Out>
void layer_norm(matrix_view<const float> x, matrix_view<const float> residual, matrix_view<float> sum_out,
                std::span<const float> weight, std::span<const float> bias, matrix_view<Out> y,
                float eps = layer_norm_default_eps, quant_params y_params = {}) {
  const index_t n = x.cols;
  std::vector<float> s(static_cast<std::size_t>(n));
  for (index_t i = 0; i < x.rows; ++i) {
    for (index_t j = 0; j < n; ++j) s[j] = residual.data ? x(i, j) + residual(i, j) : x(i, j);
    if (sum_out.data)
      for (index_t j = 0; j < n; ++j) sum_out(i, j) = s[j];
    if (n == 0) continue;

    double shifted_sum = 0.0;
    for (index_t j = 0; j < n; ++j) shifted_sum += double(s[j] - s[0]);
    // μ − s₀, kept apart from s₀: s − μ = (s − s₀) − (μ − s₀) without rounding μ to the scale of s.
    const float shifted_mean = float(shifted_sum / double(n));
    const auto centered = [&](index_t j) { return (s[j] - s[0]) - shifted_mean; };
    double squares = 0.0;
    for (index_t j = 0; j < n; ++j) squares += double(centered(j)) * double(centered(j));
    const float rstd = 1.0f / std::sqrt(float(squares / double(n)) + eps);

    for (index_t j = 0; j < n; ++j) {
      const float v = std::fma(centered(j) * rstd, weight[j], bias[j]);
      y(i, j) = store_float_as<Out>(v, y_params);
    }
  }
}

}  // namespace ref
}  // namespace qtx

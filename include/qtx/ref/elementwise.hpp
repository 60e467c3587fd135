#pragma once
/// @file
/// Reference element-wise operations over matrix views: GELU (both forms) and buffer quantize /
/// dequantize / requantize. The per-element formulas are the normative scalar ones —
/// epilogue::gelu_erf / gelu_tanh (epilogue/stages.hpp) and quantize_one / dequantize_one /
/// requantize_one (quant/quantize.hpp) — applied at every (r, c); the qtx::cpu::scalar backend.
#include <cstdint>
#include <span>

#include "../core/view.hpp"
#include "../epilogue/stages.hpp"
#include "../quant/dynamic.hpp"
#include "../quant/quantize.hpp"
#include "../config.hpp"

namespace qtx::QTX_ABI {

/// PyTorch's GELU(approximate='none' | 'tanh'): 0.5·x·(1 + erf(x/√2)) or the tanh approximation.
enum class gelu_approximation { none, tanh };

namespace ref {

/// y(r, c) = f(x(r, c)) element by element: the shape of every element-wise oracle.
template <class XV, class Out, class F>
void map(matrix_view<XV> x, matrix_view<Out> y, F&& f) {
  for (index_t r = 0; r < x.rows; ++r)
    for (index_t c = 0; c < x.cols; ++c) y(r, c) = f(x(r, c));
}

/// GELU oracle, element by element with the epilogue stages' scalar formulas.
template <class XV>
void gelu(matrix_view<XV> x, matrix_view<float> y, gelu_approximation form) {
  if (form == gelu_approximation::none)
    map(x, y, [](float v) { return epilogue::gelu_erf{}(v, 0, 0); });
  else
    map(x, y, [](float v) { return epilogue::gelu_tanh{}(v, 0, 0); });
}

/// Quantize oracle: quantize_one per element.
template <class XV, class T>
void quantize(matrix_view<XV> x, matrix_view<T> q, quant_params p) {
  map(x, q, [inv = p.inv_scale(), zp = p.zero_point](float v) { return quantize_one<T>(v, inv, zp); });
}

/// Dequantize oracle: dequantize_one per element.
template <class QV>
void dequantize(matrix_view<QV> q, matrix_view<float> x, quant_params p) {
  map(q, x, [p](auto v) { return dequantize_one(v, p.scale, p.zero_point); });
}

/// Multiplier: a float (s_in / s_out) or a fixed_point_multiplier (integer-only form).
template <class AV, class T, class Multiplier>
void requantize(matrix_view<AV> acc, matrix_view<T> q, Multiplier multiplier, int32_t zero_point) {
  map(acc, q, [=](int32_t v) { return requantize_one<T>(v, multiplier, zero_point); });
}

/// Dynamic quantize oracle: the range rule of quant/dynamic.hpp over each row (dynamic_token) or
/// the whole matrix (dynamic_tensor), then quantize_one with those parameters; row r's parameters
/// go to scales[r], zero_points[r].
template <class XV>
void quantize_dynamic(matrix_view<XV> x, matrix_view<uint8_t> q, std::span<float> scales,
                      std::span<int32_t> zero_points, activation_scaling scaling) {
  finite_range tensor;
  for (index_t r = 0; r < x.rows; ++r)
    for (index_t c = 0; c < x.cols; ++c) tensor.add(x(r, c));
  for (index_t r = 0; r < x.rows; ++r) {
    finite_range row;
    for (index_t c = 0; c < x.cols; ++c) row.add(x(r, c));
    const quant_params p = scaling == activation_scaling::dynamic_token ? row.params() : tensor.params();
    scales[r] = p.scale;
    zero_points[r] = p.zero_point;
    for (index_t c = 0; c < x.cols; ++c) q(r, c) = quantize_one<uint8_t>(x(r, c), p.inv_scale(), p.zero_point);
  }
}

}  // namespace ref
}  // namespace qtx

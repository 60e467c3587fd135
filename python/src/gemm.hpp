#pragma once
// What the GEMM binding shares between its sources: packed weights, the epilogue a Python call
// described (parsed once into the fixed grammar below), and the two typed entry points, each in
// its own source (gemm_int.cpp, gemm_float.cpp) so their instantiations compile in parallel.
//
// qtx's epilogue is a compile-time pipeline; Python describes one at run time, so the binding
// instantiates every pipeline of this grammar and picks one per call:
//   uint8 A:   [bias(int32)] [relu] [requantize]                          -> int32, or uint8 / int8 with requantize
//              [bias(int32)] dequantize [relu | gelu] [residual_add] [quantize]  -> float32, or uint8 / int8 with quantize
//              [subtract_row_zero_point] (dequantize | dequantize_rows) [bias(float32)]  -> float32
//                (the per-token linear: A quantized per row, a float bias added in the same pass)
//   float32 A: [bias(float32)] [scale] [relu | gelu] [residual_add]       -> float32
// Per-tensor scales and multipliers run as per-channel ones holding the same value N times (the
// same arithmetic, half the instantiations).
#include <qtx/ops/gemm.hpp>

#include <optional>
#include <variant>
#include <vector>

#include "common.hpp"

namespace qtx::python {

using packed_int8 = ops::packed_b<arch, int8_t>;
using packed_float = ops::packed_b<arch, float>;

// B (K, N) packed once: int8 / uint8 (both pack to one int8 type, with B's zero point) or float32.
struct packed_weights {
  std::variant<packed_int8, packed_float> packed;
  element source = element::s8;  // dtype B had
};

enum class activation { none, relu, gelu_erf, gelu_tanh };

// One stage as Python built it (qtx.epilogue.*); data is checked when a GEMM uses it.
struct stage_spec {
  enum class kind {
    bias, dequantize, requantize, quantize, relu, gelu_erf, gelu_tanh, residual_add, scale,
    subtract_row_zero_point, dequantize_rows
  };
  kind what = kind::relu;
  py::object data;  // bias values, scales or multipliers, residual, row zero points / scales (kept alive)
  py::object data2;  // subtract_row_zero_point's column sums, dequantize_rows' column scales
  float value = 0.0f;  // scale alpha
  quant_params params;  // quantize
  int32_t zero_point = 0;  // requantize
};

// A parsed epilogue: which optional stages are present, with their data as views.
struct parsed_epilogue {
  std::optional<vector_arg<int32_t>> bias_int;
  std::optional<vector_arg<float>> bias_float;
  bool relu_acc = false;                      // relu on the int32 accumulator (before requantize)
  std::vector<float> requant_multipliers;     // N values when requantizing
  int32_t requant_zero_point = 0;
  std::vector<float> dequant_scales;          // N values when dequantizing
  std::optional<float> scale;                 // float GEMM: v * alpha
  activation act = activation::none;
  std::optional<matrix_arg<const float>> residual;
  std::optional<quant_params> quantize;
  // The per-row forms (uint8 A quantized per token) and a float bias after dequantizing.
  std::optional<vector_arg<int32_t>> row_zero_points, column_sums;
  std::optional<vector_arg<float>> row_scales;
  bool per_row() const { return row_zero_points || row_scales || (bias_float && dequantizes()); }
  bool requantizes() const { return !requant_multipliers.empty(); }
  bool dequantizes() const { return !dequant_scales.empty(); }
};

using any_output = std::variant<matrix_view<float>, matrix_view<int32_t>, matrix_view<uint8_t>, matrix_view<int8_t>>;

// C = ep(A · B) for uint8 A (zero point a_zero_point) and int8-packed B, with the GIL released.
void gemm_uint8(matrix_view<const uint8_t> a, const packed_int8& b, any_output c, const parsed_epilogue& ep,
                int32_t a_zero_point);
// C = ep(A · B) for float32 A and B.
void gemm_float(matrix_view<const float> a, const packed_float& b, matrix_view<float> c, const parsed_epilogue& ep);

}  // namespace qtx::python

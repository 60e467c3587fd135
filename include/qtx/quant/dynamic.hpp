#pragma once
/// @file
/// Dynamic activation quantization: uint8 parameters computed from the tensor itself at run time,
/// for the whole tensor or for each row (token), instead of calibrated once.
///
/// A pretrained transformer's activations vary from token to token far more than within one token
/// (a few tokens carry the outliers), so one calibrated range wastes most levels on most tokens.
/// Per-token parameters follow each row; the GEMM that consumes them applies each row's zero point
/// and scale in its epilogue (epilogue::subtract_row_zero_point, epilogue::dequantize_rows).
///
/// The range rule: each row's (or the tensor's) finite values, widened to contain 0, through
/// asymmetric_params<uint8_t>; NaN and ±inf do not widen the range and are then quantized as
/// quantize_one does (NaN → zero point, ±inf → 255 / 0), so one bad value cannot wreck its row.
#include <cmath>
#include <cstdint>
#include <span>

#include "../core/view.hpp"
#include "params.hpp"
#include "../config.hpp"

namespace qtx::QTX_ABI {

/// How the uint8 parameters of an activation are chosen.
enum class activation_scaling {
  static_tensor,   ///< one calibrated scale and zero point (the paper's W8A8)
  dynamic_tensor,  ///< one scale and zero point per call, from the tensor's own range (ONNX Runtime's dynamic)
  dynamic_token,   ///< one scale and zero point per row (token), from that row's range
};

/// The name a command line or a message uses: "static", "dynamic-tensor", "dynamic-token".
inline const char* to_string(activation_scaling s) {
  switch (s) {
    case activation_scaling::static_tensor: return "static";
    case activation_scaling::dynamic_tensor: return "dynamic-tensor";
    case activation_scaling::dynamic_token: return "dynamic-token";
  }
  return "unknown";
}

/// True for the two modes whose parameters are computed per call.
inline bool is_dynamic(activation_scaling s) { return s != activation_scaling::static_tensor; }

/// A uint8 matrix whose row r is quantized with (scales[r], zero_points[r]): what a dynamically
/// quantized activation is, as the GEMM consumes it (per-tensor dynamic: every row holds the same).
struct quantized_rows {
  matrix_view<const uint8_t> values;       ///< (M, K) levels
  std::span<const float> scales;           ///< M scales, finite and positive
  std::span<const int32_t> zero_points;    ///< M zero points in [0, 255]
};

/// The min / max accumulator of the range rule: finite values only; starts at 0 (the range
/// always contains 0).
struct finite_range {
  float lo = 0.0f;  ///< the lowest finite value so far (≤ 0)
  float hi = 0.0f;  ///< the highest finite value so far (≥ 0)
  /// Widens the range by v unless v is NaN or infinite.
  void add(float v) {
    if (!std::isfinite(v)) return;
    lo = v < lo ? v : lo;
    hi = v > hi ? v : hi;
  }
  /// Widens by another range (a thread's partial result).
  void add(const finite_range& r) {
    lo = r.lo < lo ? r.lo : lo;
    hi = r.hi > hi ? r.hi : hi;
  }
  /// The uint8 parameters of this range (asymmetric_params<uint8_t>).
  quant_params params() const { return asymmetric_params<uint8_t>(lo, hi); }
};

}  // namespace qtx

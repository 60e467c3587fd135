#pragma once
/// @file
/// The uint8 inputs of a W8A8 module's GEMMs, quantized either way quant/dynamic.hpp describes:
/// with calibrated parameters (static) or per call, per tensor or per token (dynamic).
///
/// A producer (a LayerNorm, attention's P·V, FC₁'s epilogue) writes the tensor; point_quantization
/// says how it becomes uint8; the consumer qlinear takes the result, linear_input, in whichever
/// form it has. input_buffer is the memory of one such tensor in a workspace.
#include <optional>
#include <span>

#include "../core/buffer.hpp"
#include "../core/error.hpp"
#include "../core/view.hpp"
#include "../ops/elementwise.hpp"
#include "../quant/dynamic.hpp"
#include "../quant/params.hpp"
#include "workspace.hpp"
#include "../config.hpp"

namespace qtx::QTX_ABI::nn {

/// How one quantization point is quantized: its scaling and, for static_tensor, its calibrated
/// parameters.
struct point_quantization {
  activation_scaling scaling = activation_scaling::static_tensor;  ///< static, or per call
  quant_params params;                                             ///< calibrated (static_tensor only)

  /// Static with scale 1, zero point 0.
  point_quantization() = default;
  /// Static with calibrated parameters (implicit: where a quant_params was taken before).
  point_quantization(quant_params calibrated) : params(calibrated) {}  // NOLINT(google-explicit-constructor)
  /// `s`, with `calibrated` read only when s is static_tensor.
  point_quantization(activation_scaling s, quant_params calibrated = {}) : scaling(s), params(calibrated) {}
  /// True when the parameters are computed per call.
  bool dynamic() const { return is_dynamic(scaling); }
};

/// The calibrated input parameters of the qlinear that consumes `point`: none for a dynamic point.
inline std::optional<quant_params> static_params(const point_quantization& point) {
  if (point.dynamic()) return std::nullopt;
  return point.params;
}

/// A qlinear's uint8 input as its producer made it: levels with the layer's calibrated
/// parameters, or levels with per-row parameters (rows).
struct linear_input {
  matrix_view<const uint8_t> values;   ///< (tokens, features) levels
  std::optional<quantized_rows> rows;  ///< the dynamic form (values with each row's parameters)

  /// Calls the qlinear's forward() that takes this form of input.
  template <class Linear, class... Args>
  void forward(const Linear& linear, Args&&... args) const {
    if (rows)
      linear.forward(*rows, std::forward<Args>(args)...);
    else
      linear.forward(values, std::forward<Args>(args)...);
  }
};

/// Memory of one GEMM input of up to max_tokens rows: its levels, the float form a dynamic point is
/// quantized from, and each row's parameters.
class input_buffer {
 public:
  /// An empty buffer.
  input_buffer() = default;
  /// Room for max_tokens rows of `cols` features.
  /// @throws qtx::error for a negative size.
  input_buffer(index_t max_tokens, index_t cols)
      : levels_(max_tokens, cols), staging_(max_tokens, cols), scales_(max_tokens), zero_points_(max_tokens) {}

  /// The first `tokens` rows of levels (what a static producer writes).
  matrix_view<uint8_t> levels(index_t tokens, const char* fn) { return levels_.rows(tokens, fn, "uint8 input"); }
  /// The first `tokens` float rows (what a dynamic producer writes before quantize()).
  matrix_view<float> staging(index_t tokens, const char* fn) { return staging_.rows(tokens, fn, "float input"); }

  /// The levels a static producer wrote, as a consumer takes them.
  linear_input static_input(index_t tokens, const char* fn) { return {levels(tokens, fn), std::nullopt}; }

  /// x (tokens, cols) quantized as `point` says: with its parameters, or per call (parameters into
  /// this buffer). x may be staging() or any other float view of the same shape. column_factors,
  /// when given (one per column: a smoothing's s⁻¹, quant/smoothing.hpp), multiply x first.
  /// @throws qtx::error for x of the wrong shape or invalid static parameters.
  template <class Arch>
  linear_input quantize(Arch arch, matrix_view<const float> x, const point_quantization& point, const char* fn,
                        std::span<const float> column_factors = {}) {
    if (!column_factors.empty()) {
      check(index_t(column_factors.size()) == x.cols, fn, ": ", column_factors.size(), " column factors for ",
            x.cols, " columns");
      const auto scaled = staging(x.rows, fn);  // may be x itself: each element is read, then written
      for (index_t r = 0; r < x.rows; ++r)
        for (index_t c = 0; c < x.cols; ++c) scaled(r, c) = x(r, c) * column_factors[std::size_t(c)];
      x = scaled;
    }
    const auto q = levels(x.rows, fn);
    if (!point.dynamic()) {
      ops::quantize(arch, x, q, point.params);
      return {q, std::nullopt};
    }
    const std::span<float> scales(scales_.data(), std::size_t(x.rows));
    const std::span<int32_t> zero_points(zero_points_.data(), std::size_t(x.rows));
    ops::quantize_dynamic(arch, x, q, scales, zero_points, point.scaling);
    return {q, quantized_rows{q, scales, zero_points}};
  }

 private:
  row_buffer<uint8_t> levels_;
  row_buffer<float> staging_;
  aligned_buffer<float> scales_;
  aligned_buffer<int32_t> zero_points_;
};

}  // namespace qtx::nn

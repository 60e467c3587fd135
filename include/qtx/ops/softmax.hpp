#pragma once
/// @file
/// Public (clipped) softmax over rows: checked arguments, dispatch by backend tag.
///
///   qtx::ops::softmax(qtx::cpu::native{}, scores, probs);                        // plain softmax
///   qtx::ops::softmax(arch, scores, probs, {.gamma = qtx::gamma_for(12, 512)});  // clipped (OPT)
///   qtx::ops::softmax(arch, s32_scores, p_u8, {.input_scale = s_q * s_k / std::sqrt(d), .causal = true},
///                     key_mask, p_u8_params);                                     // fused W8A8 path
///
/// y = clip((ζ − γ)·softmax(input_scale·x + mask) + γ, 0, 1) per row; see ref/softmax.hpp for the
/// exact definition and the defined cases (−inf, fully masked rows, NaN).
/// x: float or int32 (R × C). y: float, or uint8/int8 quantized with y_params in the same pass.
/// mask: empty, 1 × C (broadcast over rows) or R × C. y may be x itself (float → float, same view);
/// any other overlap is an error. Views with col_stride ≠ 1 are accepted (reference path).
#include <cmath>
#include <cstdint>
#include <type_traits>

#include "../core/arch.hpp"
#include "../core/error.hpp"
#include "../core/view.hpp"
#include "../cpu/rows/common.hpp"
#include "../cpu/rows/softmax.hpp"
#include "../quant/params.hpp"
#include "../ref/softmax.hpp"
#include "rules.hpp"
#include "../config.hpp"

namespace qtx::QTX_ABI::ops {

/// Throws qtx::error naming `fn` unless p is a valid (clipped) softmax: input_scale > 0, γ ≤ 0, ζ ≥ 1, all finite.
inline void check_softmax_params(const char* fn, const softmax_params& p) {
  check(std::isfinite(p.input_scale) && p.input_scale > 0.0f, fn, ": input_scale (", p.input_scale,
        ") must be finite and positive");
  check_clip(fn, p.gamma, p.zeta);
}

/// y = clipped softmax of each row of x (plain softmax with the default p), in one pass that can also
/// dequantize int32 scores and quantize the probabilities (the W8A8 attention path).
/// @param mask additive mask: empty, 1 × C or R × C.
/// @param y_params quantization of y when y is 8-bit.
/// @throws qtx::error ("softmax: ...") for invalid views, unequal shapes, invalid p, a mask of the wrong
/// shape, invalid y_params or overlapping outputs.
template <class Arch, class XV, class Out>
void softmax(Arch arch, matrix_view<XV> x_view, matrix_view<Out> y, const softmax_params& p = {},
             matrix_view<const float> mask = {}, quant_params y_params = {}) {
  using In = std::remove_const_t<XV>;
  static_assert(std::is_same_v<In, float> || std::is_same_v<In, int32_t>, "ops::softmax: x must be float or int32");
  static_assert(std::is_same_v<Out, float> || std::is_same_v<Out, uint8_t> || std::is_same_v<Out, int8_t>,
                "ops::softmax: y must be (non-const) float, uint8 or int8");
  const matrix_view<const In> x = x_view;
  constexpr const char* fn = "softmax";
  check_view(fn, "x", x);
  check_view(fn, "y", y);
  check_same_shape(fn, "x", x, "y", y);
  check_softmax_params(fn, p);
  if (mask.data != nullptr || mask.rows != 0 || mask.cols != 0) {
    check_view(fn, "mask", mask);
    check(mask.cols == x.cols, fn, ": mask has ", mask.cols, " columns but x has ", x.cols);
    check(mask.rows == 1 || mask.rows == x.rows, fn, ": mask has ", mask.rows, " rows; expected 1 or ", x.rows);
    cpu::rows::check_alias(fn, "y", y, "mask", mask);
  }
  if constexpr (!std::is_same_v<Out, float>) check_quant_params<Out>(fn, "y_params", y_params);
  cpu::rows::check_alias(fn, "y", y, "x", x);
  if (x.empty()) return;
  cpu::rows::softmax(arch, x, y, p, mask.data ? mask : matrix_view<const float>{}, y_params);
}

}  // namespace qtx::ops

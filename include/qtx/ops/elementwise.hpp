#pragma once
/// @file
/// Public element-wise operations over matrix views: GELU, quantize, dequantize, requantize.
///
///   qtx::ops::gelu(arch, h, h);                                   // in place, erf form (BERT)
///   qtx::ops::gelu(arch, h, y, qtx::gelu_approximation::tanh);    // GPT-2 / OPT form
///   qtx::ops::quantize(arch, x, x_u8, x_params);                  // quantize_one semantics, bit-exact
///   qtx::ops::quantize_dynamic(arch, x, x_u8, scales, zero_points, activation_scaling::dynamic_token);
///   qtx::ops::dequantize(arch, x_u8, x, x_params);
///   qtx::ops::requantize(arch, acc_s32, y_u8, s_in / s_out, y_zero_point);
///
/// Output and input must have the same shape; an output may be the same view as an input of the
/// same element type (GELU in place); other overlaps are errors. Strided views are accepted.
#include <cmath>
#include <cstdint>
#include <span>
#include <type_traits>

#include "../core/arch.hpp"
#include "../core/error.hpp"
#include "../core/view.hpp"
#include "../cpu/rows/common.hpp"
#include "../cpu/rows/elementwise.hpp"
#include "../quant/dynamic.hpp"
#include "../quant/params.hpp"
#include "../ref/elementwise.hpp"
#include "../config.hpp"

namespace qtx::QTX_ABI::ops {

namespace detail {
template <class In, class Out>
void check_map(const char* fn, const matrix_view<In>& x, const char* x_name, const matrix_view<Out>& y,
               const char* y_name) {
  check_view(fn, x_name, x);
  check_view(fn, y_name, y);
  check_same_shape(fn, x_name, x, y_name, y);
  cpu::rows::check_alias(fn, y_name, y, x_name, x);
}
template <class T>
constexpr bool is_8bit = std::is_same_v<T, uint8_t> || std::is_same_v<T, int8_t>;
}  // namespace detail

/// y = GELU(x), erf form (BERT) or tanh form (GPT-2/OPT), element-wise; y may be x (in place).
/// @throws qtx::error ("gelu: ...") for invalid views, unequal shapes, partial overlap or an unknown form.
template <class Arch, class XV>
void gelu(Arch arch, matrix_view<XV> x_view, matrix_view<float> y,
          gelu_approximation form = gelu_approximation::none) {
  static_assert(std::is_same_v<std::remove_const_t<XV>, float>, "ops::gelu: x must be float");
  const matrix_view<const float> x = x_view;
  detail::check_map("gelu", x, "x", y, "y");
  check(form == gelu_approximation::none || form == gelu_approximation::tanh, "gelu: unknown approximation (",
        int(form), ")");
  if (!x.empty()) cpu::rows::gelu(arch, x, y, form);
}

/// q = quantize_one(x) with p, bit-exact with the scalar definition on every backend.
/// @throws qtx::error ("quantize: ...") for invalid views, unequal shapes or invalid params.
template <class Arch, class XV, class T>
void quantize(Arch arch, matrix_view<XV> x_view, matrix_view<T> q, quant_params p) {
  static_assert(std::is_same_v<std::remove_const_t<XV>, float>, "ops::quantize: x must be float");
  static_assert(detail::is_8bit<T>, "ops::quantize: q must be (non-const) uint8 or int8");
  const matrix_view<const float> x = x_view;
  detail::check_map("quantize", x, "x", q, "q");
  check_quant_params<T>("quantize", "params", p);
  if (!x.empty()) cpu::rows::quantize(arch, x, q, p);
}

/// q = x quantized to uint8 with parameters computed from x itself (quant/dynamic.hpp's range
/// rule): one (scale, zero point) per row for dynamic_token, the same for every row for
/// dynamic_tensor; row r's parameters go to scales[r] and zero_points[r]. Bit-exact with the
/// scalar reference on every backend. The result feeds a GEMM as quantized_rows{q, scales, zero_points}.
/// @throws qtx::error ("quantize_dynamic: ...") for invalid or unequal views, partial overlap,
///         scales / zero_points not holding one element per row, or static_tensor scaling (whose
///         parameters are calibrated: ops::quantize).
template <class Arch, class XV>
void quantize_dynamic(Arch arch, matrix_view<XV> x_view, matrix_view<uint8_t> q, std::span<float> scales,
                      std::span<int32_t> zero_points, activation_scaling scaling) {
  static_assert(std::is_same_v<std::remove_const_t<XV>, float>, "ops::quantize_dynamic: x must be float");
  const char* fn = "quantize_dynamic";
  const matrix_view<const float> x = x_view;
  detail::check_map(fn, x, "x", q, "q");
  check(is_dynamic(scaling), fn, ": scaling (", to_string(scaling),
        ") must be dynamic-tensor or dynamic-token (static parameters are calibrated: use quantize)");
  check(index_t(scales.size()) == x.rows && index_t(zero_points.size()) == x.rows, fn, ": scales has ",
        scales.size(), " and zero_points ", zero_points.size(), " elements, expected one per row of x (", x.rows, ")");
  if (x.rows > 0) cpu::rows::quantize_dynamic(arch, x, q, scales, zero_points, scaling);
}

/// x = p.scale · (q − p.zero_point): back to real units for the float parts of a W8A8 model.
/// @throws qtx::error ("dequantize: ...") for invalid views, unequal shapes or invalid params.
template <class Arch, class QV>
void dequantize(Arch arch, matrix_view<QV> q_view, matrix_view<float> x, quant_params p) {
  using T = std::remove_const_t<QV>;
  static_assert(detail::is_8bit<T>, "ops::dequantize: q must be uint8 or int8");
  const matrix_view<const T> q = q_view;
  detail::check_map("dequantize", q, "q", x, "x");
  check_quant_params<T>("dequantize", "params", p);
  if (!q.empty()) cpu::rows::dequantize(arch, q, x, p);
}

/// q = requantize_one(acc, multiplier, zero_point): int32 accumulators to 8 bits when the GEMM's
/// epilogue could not do it (e.g. accumulators kept for inspection).
/// @throws qtx::error ("requantize: ...") for invalid views, a non-positive multiplier or a zero point outside T.
template <class Arch, class AV, class T>
void requantize(Arch arch, matrix_view<AV> acc_view, matrix_view<T> q, float multiplier, int32_t zero_point) {
  static_assert(std::is_same_v<std::remove_const_t<AV>, int32_t>, "ops::requantize: acc must be int32");
  static_assert(detail::is_8bit<T>, "ops::requantize: q must be (non-const) uint8 or int8");
  const matrix_view<const int32_t> acc = acc_view;
  detail::check_map("requantize", acc, "acc", q, "q");
  check_scale("requantize", "multiplier", multiplier);
  check_zero_point<T>("requantize", "zero_point", zero_point);
  if (!acc.empty()) cpu::rows::requantize(arch, acc, q, multiplier, zero_point);
}

/// The integer-only form (multiplier from to_fixed_point), as hardware without float units computes it.
/// @throws qtx::error ("requantize: ...") for invalid views, a non-normalised multiplier or a zero point outside T.
template <class Arch, class AV, class T>
void requantize(Arch arch, matrix_view<AV> acc_view, matrix_view<T> q, fixed_point_multiplier multiplier,
                int32_t zero_point) {
  static_assert(std::is_same_v<std::remove_const_t<AV>, int32_t>, "ops::requantize: acc must be int32");
  static_assert(detail::is_8bit<T>, "ops::requantize: q must be (non-const) uint8 or int8");
  const matrix_view<const int32_t> acc = acc_view;
  detail::check_map("requantize", acc, "acc", q, "q");
  check_fixed_point("requantize", "fixed-point multiplier", multiplier);
  check_zero_point<T>("requantize", "zero_point", zero_point);
  if (!acc.empty()) cpu::rows::requantize(arch, acc, q, multiplier, zero_point);
}

}  // namespace qtx::ops

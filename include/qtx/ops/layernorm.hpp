#pragma once
/// @file
/// Public layer norm, alone or fused with the residual add and the output quantization.
///
///   qtx::ops::layer_norm(arch, x, weight, bias, y);                        // y = LN(x)
///   qtx::ops::add_layer_norm(arch, x, residual, stream, weight, bias, y_u8, eps, y_u8_params);
///       // stream = x + residual (pre-LN residual stream), y_u8 = quantize(LN(stream)): one pass
///
/// y = (s − μ)/√(σ² + eps)·weight + bias with population variance (PyTorch), s = x (+ residual);
/// see ref/layernorm.hpp. x, residual, sum_out: float (R × C); weight, bias: C floats; y: float or
/// uint8/int8 quantized with y_params. Outputs may be the same view as a float input (in place);
/// any other overlap is an error. Views with col_stride ≠ 1 are accepted (reference path).
#include <cmath>
#include <cstdint>
#include <span>
#include <type_traits>

#include "../core/arch.hpp"
#include "../core/error.hpp"
#include "../core/view.hpp"
#include "../cpu/rows/common.hpp"
#include "../cpu/rows/layernorm.hpp"
#include "../quant/params.hpp"
#include "../ref/layernorm.hpp"
#include "rules.hpp"
#include "../config.hpp"

namespace qtx::QTX_ABI::ops {

namespace detail {
template <class Arch, class Out>
void checked_layer_norm(const char* fn, Arch arch, matrix_view<const float> x, matrix_view<const float> residual,
                        matrix_view<float> sum_out, std::span<const float> weight, std::span<const float> bias,
                        matrix_view<Out> y, float eps, quant_params y_params) {
  static_assert(std::is_same_v<Out, float> || std::is_same_v<Out, uint8_t> || std::is_same_v<Out, int8_t>,
                "ops::layer_norm: y must be (non-const) float, uint8 or int8");
  check_view(fn, "x", x);
  check_view(fn, "y", y);
  check_same_shape(fn, "x", x, "y", y);
  check(weight.size() == std::size_t(x.cols), fn, ": weight has ", weight.size(), " elements but x has ", x.cols,
        " columns");
  check(bias.size() == std::size_t(x.cols), fn, ": bias has ", bias.size(), " elements but x has ", x.cols,
        " columns");
  check_layer_norm_eps(fn, eps);
  if constexpr (!std::is_same_v<Out, float>) check_quant_params<Out>(fn, "y_params", y_params);
  const auto weight_view = matrix_view<const float>(weight.data(), 1, index_t(weight.size()), 0);
  const auto bias_view = matrix_view<const float>(bias.data(), 1, index_t(bias.size()), 0);
  cpu::rows::check_alias(fn, "y", y, "x", x);
  cpu::rows::check_alias(fn, "y", y, "weight", weight_view);
  cpu::rows::check_alias(fn, "y", y, "bias", bias_view);
  if (residual.data) {
    cpu::rows::check_alias(fn, "y", y, "residual", residual);
  }
  if (sum_out.data) {
    cpu::rows::check_alias(fn, "sum_out", sum_out, "x", x);
    cpu::rows::check_alias(fn, "sum_out", sum_out, "residual", residual);
    cpu::rows::check_disjoint(fn, "sum_out", sum_out, "y", y);
    cpu::rows::check_alias(fn, "sum_out", sum_out, "weight", weight_view);
    cpu::rows::check_alias(fn, "sum_out", sum_out, "bias", bias_view);
  }
  if (x.empty()) return;
  cpu::rows::layer_norm(arch, x, residual, sum_out, weight, bias, y, eps, y_params);
}
}  // namespace detail

/// y = LN(x) row by row, optionally quantized with y_params in the same pass (the next GEMM's input).
/// @param eps added to the variance (PyTorch's default 1e-5; BERT checkpoints use 1e-12).
/// @throws qtx::error ("layer_norm: ...") for invalid views, unequal shapes, weight/bias not of x.cols
/// elements, a non-positive eps, invalid y_params or overlapping outputs.
template <class Arch, class XV, class Out>
void layer_norm(Arch arch, matrix_view<XV> x, std::span<const float> weight, std::span<const float> bias,
                matrix_view<Out> y, float eps = layer_norm_default_eps, quant_params y_params = {}) {
  static_assert(std::is_same_v<std::remove_const_t<XV>, float>, "ops::layer_norm: x must be float");
  detail::checked_layer_norm("layer_norm", arch, matrix_view<const float>(x), {}, {}, weight, bias, y, eps, y_params);
}

/// s = x + residual (written to sum_out unless it is an empty view), y = LN(s).
template <class Arch, class XV, class RV, class Out>
void add_layer_norm(Arch arch, matrix_view<XV> x, matrix_view<RV> residual, matrix_view<float> sum_out,
                    std::span<const float> weight, std::span<const float> bias, matrix_view<Out> y,
                    float eps = layer_norm_default_eps, quant_params y_params = {}) {
  static_assert(std::is_same_v<std::remove_const_t<XV>, float> && std::is_same_v<std::remove_const_t<RV>, float>,
                "ops::add_layer_norm: x and residual must be float");
  constexpr const char* fn = "add_layer_norm";
  const matrix_view<const float> r = residual;
  check_view(fn, "residual", r);
  check(r.data != nullptr || r.empty(), fn, ": residual is empty");
  check_same_shape(fn, "x", matrix_view<const float>(x), "residual", r);
  if (sum_out.data != nullptr || sum_out.rows != 0 || sum_out.cols != 0) {
    check_view(fn, "sum_out", sum_out);
    check_same_shape(fn, "x", matrix_view<const float>(x), "sum_out", sum_out);
  }
  detail::checked_layer_norm(fn, arch, matrix_view<const float>(x), r, sum_out.data ? sum_out : matrix_view<float>{},
                             weight, bias, y, eps, y_params);
}

}  // namespace qtx::ops

#pragma once
/// @file
/// One validation rule per parameter of the row kernels, shared by the CPU ops, the nn modules and
/// the CUDA front, so the same value is accepted or refused everywhere with the same message (the
/// quantization parameters' rules are in quant/params.hpp). Each throws qtx::error whose message
/// starts with `fn`, the public function the user called.
#include <cmath>

#include "../config.hpp"
#include "../core/error.hpp"

namespace qtx::QTX_ABI {

/// Clipped softmax's stretch: γ finite and ≤ 0, ζ finite and ≥ 1, and ζ − γ finite (the factor the
/// probabilities are scaled by).
inline void check_clip(const char* fn, float gamma, float zeta) {
  check(std::isfinite(gamma) && gamma <= 0.0f, fn, ": gamma (", gamma, ") must be finite and <= 0");
  check(std::isfinite(zeta) && zeta >= 1.0f, fn, ": zeta (", zeta, ") must be finite and >= 1");
  check(std::isfinite(zeta - gamma), fn, ": zeta - gamma (", zeta, " - ", gamma, ") overflows");
}

/// Layer norm's eps, added to the variance: finite and positive.
inline void check_layer_norm_eps(const char* fn, float eps) {
  check(std::isfinite(eps) && eps > 0.0f, fn, ": eps (", eps, ") must be finite and positive");
}

}  // namespace qtx::QTX_ABI

#pragma once
// Float tensors kept on a uint8 grid, the way a W8A8 model stores its activations between ops:
// the residual stream rounded in place, and a LayerNorm's uint8 output with its float value.
#include "../core/error.hpp"
#include "../core/view.hpp"
#include "../ops/elementwise.hpp"
#include "../quant/params.hpp"
#include "layer_norm.hpp"
#include "../config.hpp"

namespace qtx::QTX_ABI::nn {

/// x ← dequantize(quantize(x, p)): x as an int8 deployment stores it (its outliers cost resolution).
/// @param grid (x.rows, x.cols) scratch that receives the uint8 values.
/// @throws qtx::error for views of different shapes or invalid p.
template <class Arch>
void round_to_grid(Arch arch, matrix_view<float> x, quant_params p, matrix_view<uint8_t> grid) {
  ops::quantize(arch, matrix_view<const float>(x), grid, p);
  ops::dequantize(arch, matrix_view<const uint8_t>(grid), x, p);
}

/// out_q = LN(in) quantized with p (the next GEMM's input) and, when out is not empty, out = its
/// dequantized value (for the float consumers of the same tensor: the gate, a post-LN residual).
/// @throws qtx::error for views of the wrong shape or invalid p.
template <class Arch>
void layer_norm_to_grid(const layer_norm<Arch>& ln, matrix_view<const float> in, matrix_view<uint8_t> out_q,
                        matrix_view<float> out, quant_params p) {
  ln.forward(in, out_q, p);
  if (out.data) ops::dequantize(Arch{}, matrix_view<const uint8_t>(out_q), out, p);
}

}  // namespace qtx::nn

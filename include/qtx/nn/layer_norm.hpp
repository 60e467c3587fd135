#pragma once
/// @file
/// Layer norm module: y = (s − mean(s)) / sqrt(var(s) + eps) · γ + β with s = x [+ residual],
/// output float or uint8 (quantized in the same pass). Holds γ, β and eps; the row kernels do the work.
#include <span>
#include <vector>

#include "../core/error.hpp"
#include "../core/view.hpp"
#include "../ops/layernorm.hpp"
#include "../ops/rules.hpp"
#include "../config.hpp"

namespace qtx::QTX_ABI::nn {

/// Layer norm module: owns γ, β and eps so a model holds one object per norm; optionally fused with
/// the residual add and the quantization of its output (the next W8A8 GEMM's input).
template <class Arch = cpu::native>
class layer_norm {
 public:
  layer_norm() = default;
  /// Copies γ and β (one per feature). @throws qtx::error ("layer_norm: ...") for unequal or empty
  /// γ/β or a non-positive eps.
  layer_norm(std::span<const float> gamma, std::span<const float> beta, float eps)
      : gamma_(gamma.begin(), gamma.end()), beta_(beta.begin(), beta.end()), eps_(eps) {
    check(gamma.size() == beta.size() && !gamma.empty(), "layer_norm: gamma has ", gamma.size(),
          " values and beta ", beta.size(), "; they must match and be non-empty");
    check_layer_norm_eps("layer_norm", eps);
  }
  /// Number of features (columns) it normalises.
  index_t features() const { return index_t(gamma_.size()); }

  /// y = LN(x [+ residual]) in float. @throws qtx::error as ops::layer_norm / ops::add_layer_norm.
  void forward(matrix_view<const float> x, matrix_view<float> y, matrix_view<const float> residual = {}) const {
    run(x, y, residual, {});
  }
  /// y = quantize(LN(x [+ residual]), out) in one pass. @throws qtx::error as ops::layer_norm.
  void forward(matrix_view<const float> x, matrix_view<uint8_t> y, quant_params out,
               matrix_view<const float> residual = {}) const {
    run(x, y, residual, out);
  }

 private:
  template <class TY>
  void run(matrix_view<const float> x, matrix_view<TY> y, matrix_view<const float> residual, quant_params out) const {
    if (residual.data)
      ops::add_layer_norm(Arch{}, x, residual, {}, gamma_, beta_, y, eps_, out);
    else
      ops::layer_norm(Arch{}, x, gamma_, beta_, y, eps_, out);
  }
  std::vector<float> gamma_, beta_;
  float eps_ = 1e-5f;
};

}  // namespace qtx::nn

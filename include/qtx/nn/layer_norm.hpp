#pragma once
// Layer norm module: y = (s − mean(s)) / sqrt(var(s) + eps) · γ + β with s = x [+ residual],
// output float or uint8 (quantized in the same pass). Holds γ, β and eps; the row kernels do the work.
#include <cmath>
#include <span>
#include <vector>

#include "../core/error.hpp"
#include "../core/parallel.hpp"
#include "../core/view.hpp"
#include "../quant/quantize.hpp"

namespace qtx::nn {

template <class Arch = cpu::native>
class layer_norm {
 public:
  layer_norm() = default;
  layer_norm(std::span<const float> gamma, std::span<const float> beta, float eps)
      : gamma_(gamma.begin(), gamma.end()), beta_(beta.begin(), beta.end()), eps_(eps) {
    check(gamma.size() == beta.size() && !gamma.empty(), "layer_norm: gamma has ", gamma.size(),
          " values and beta ", beta.size(), "; they must match and be non-empty");
    check(eps > 0.0f, "layer_norm: eps (", eps, ") must be positive");
  }
  index_t features() const { return index_t(gamma_.size()); }

  void forward(matrix_view<const float> x, matrix_view<float> y, matrix_view<const float> residual = {}) const {
    run("layer_norm::forward", x, y, residual, [&](index_t r, index_t c, float v) { y(r, c) = v; });
  }
  void forward(matrix_view<const float> x, matrix_view<uint8_t> y, quant_params out,
               matrix_view<const float> residual = {}) const {
    check_quant_params<uint8_t>("layer_norm::forward", "out", out);
    const float inv = out.inv_scale();
    run("layer_norm::forward", x, y, residual,
        [&](index_t r, index_t c, float v) { y(r, c) = quantize_one<uint8_t>(v, inv, out.zero_point); });
  }

 private:
  template <class TY, class Store>
  void run(const char* fn, matrix_view<const float> x, matrix_view<TY> y, matrix_view<const float> residual,
           Store store) const {
    check(x.cols == features(), fn, ": x has ", x.cols, " columns, layer norm has ", features(), " features");
    check_same_shape(fn, "x", x, "y", y);
    if (residual.data) check_same_shape(fn, "x", x, "residual", residual);
    parallel_for(0, x.rows, [&](index_t r) {
      const index_t n = x.cols;
      auto s = [&](index_t c) { return x(r, c) + (residual.data ? residual(r, c) : 0.0f); };
      double mean = 0.0;
      for (index_t c = 0; c < n; ++c) mean += s(c);
      mean /= double(n);
      double var = 0.0;
      for (index_t c = 0; c < n; ++c) var += (s(c) - mean) * (s(c) - mean);
      const float rstd = float(1.0 / std::sqrt(var / double(n) + eps_));
      for (index_t c = 0; c < n; ++c) store(r, c, (s(c) - float(mean)) * rstd * gamma_[c] + beta_[c]);
    });
  }
  std::vector<float> gamma_, beta_;
  float eps_ = 1e-5f;
};

}  // namespace qtx::nn

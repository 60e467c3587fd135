#pragma once
/// @file
/// Linear layers: y = act(x · Wᵀ + b) [+ residual], W stored (out, in) as in PyTorch / Hugging Face.
///
/// linear<Arch>  : float weights, packed once.
/// qlinear<Arch> : W8A8. Weights symmetric int8 (per output channel, or per tensor as in the paper).
///                 Input activations uint8, either
///                 static (calibrated quant params): the bias is stored as int32 in accumulator units
///                   (b / (s_x·s_w[n]), rounded), so the epilogue is
///                   acc + b_q → float(·)·s_x·s_w[n] → [GELU] → [+ residual] → [quantize to uint8];
///                 or dynamic (quantized_rows: a scale and zero point per row, computed per call):
///                   acc − zp[m]·Σ_k W_q(k, n) → float(·)·s_x[m]·s_w[n] + b → [GELU] → [+ residual] → [quantize].
#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>
#include <span>
#include <vector>

#include "../core/error.hpp"
#include "../epilogue/pipeline.hpp"
#include "../ops/gemm.hpp"
#include "../quant/dynamic.hpp"
#include "../quant/params.hpp"
#include "../quant/quantize.hpp"
#include "../config.hpp"

namespace qtx::QTX_ABI::nn {

/// The activation a linear layer fuses into its GEMM epilogue (chosen at run time, e.g. from a config).
enum class activation { none, relu, gelu_erf, gelu_tanh };

namespace detail {
// Runs `body(pipeline)` with the activation stage appended to `stages` chosen at run time, then
// the optional residual add and the tail stage: one switch, every combination instantiated once.
template <class Body, class Tail, class... Stages>
void with_epilogue(activation act, matrix_view<const float> residual, Tail tail, Body&& body,
                   Stages... stages) {
  namespace ep = qtx::epilogue;
  auto finish = [&](auto... s) {
    if (residual.data)
      tail(body, s..., ep::residual_add{residual});
    else
      tail(body, s...);
  };
  switch (act) {
    case activation::none: finish(stages...); break;
    case activation::relu: finish(stages..., ep::relu{}); break;
    case activation::gelu_erf: finish(stages..., ep::gelu_erf{}); break;
    case activation::gelu_tanh: finish(stages..., ep::gelu_tanh{}); break;
  }
}

inline void check_linear_args(const char* fn, index_t in, index_t out, index_t x_rows, index_t x_cols,
                              index_t y_rows, index_t y_cols, matrix_view<const float> residual) {
  check(x_cols == in, fn, ": x has ", x_cols, " columns, layer expects in_features ", in);
  check(y_rows == x_rows && y_cols == out, fn, ": y is ", y_rows, "x", y_cols, ", expected ", x_rows,
        "x", out);
  check(!residual.data || (residual.rows == x_rows && residual.cols == out), fn, ": residual is ",
        residual.rows, "x", residual.cols, ", expected ", x_rows, "x", out);
}
}  // namespace detail

/// Float linear layer y = act(x Wᵀ + b) [+ residual]: W packed once at construction, activation and
/// residual fused into the GEMM epilogue.
template <class Arch = cpu::native>
class linear {
 public:
  linear() = default;
  /// weight (out, in); bias (out) or empty.
  linear(matrix_view<const float> weight, std::span<const float> bias)
      : in_(weight.cols), out_(weight.rows),
        packed_(ops::pack_b<Arch>(weight.transposed())),
        bias_(bias.begin(), bias.end()) {
    if (bias_.empty()) bias_.assign(static_cast<std::size_t>(out_), 0.0f);
    check(index_t(bias_.size()) == out_, "linear: bias has ", bias.size(), " values, expected ", out_);
  }

  /// Columns of x.
  index_t in_features() const { return in_; }
  /// Columns of y.
  index_t out_features() const { return out_; }

  /// y (M, out) = act(x (M, in) · Wᵀ + b) [+ residual (M, out)]
  void forward(matrix_view<const float> x, matrix_view<float> y, activation act = activation::none,
               matrix_view<const float> residual = {}) const {
    detail::check_linear_args("linear::forward", in_, out_, x.rows, x.cols, y.rows, y.cols, residual);
    auto run = [&](auto... stages) {
      ops::detail::gemm_packed("linear::forward", Arch{}, x, packed_, y, epilogue::make_pipeline(stages...), 0);
    };
    auto tail = [](auto& body, auto... s) { body(s...); };
    detail::with_epilogue(act, residual, tail, run, epilogue::bias<float>{bias_});
  }

 private:
  index_t in_ = 0, out_ = 0;
  ops::packed_b<Arch, float> packed_;
  std::vector<float> bias_;
};

/// W8A8 linear layer: int8 weights quantized at construction; uint8 input with calibrated
/// parameters (bias folded into int32 accumulator units) or quantized per call (quantized_rows);
/// output float or requantized uint8. A static input may also come in equal groups of features with
/// parameters of their own (attention heads: per-head context scales), see the grouped constructor.
template <class Arch = cpu::native>
class qlinear {
 public:
  qlinear() = default;
  /// weight (out, in) float; bias (out) or empty; input: calibrated quant params of x (uint8), or
  /// std::nullopt for a layer that only takes dynamically quantized input (quantized_rows).
  /// weight_bits: symmetric levels ±(2^(bits−1) − 1); 7 is ONNX Runtime's "reduce_range", whose
  /// weights the AVX2 backend multiplies with vpmaddubsw at twice the rate of 8-bit ones, exactly.
  qlinear(matrix_view<const float> weight, std::span<const float> bias, std::optional<quant_params> input,
          bool per_channel = true, int weight_bits = 8)
      : in_(weight.cols), out_(weight.rows), has_static_input_(input.has_value()), input_(input.value_or(quant_params{})) {
    if (input) check_quant_params<uint8_t>("qlinear", "input", *input);
    pack_whole(quantize_weights(weight, bias, per_channel, weight_bits), bias);
  }

  /// Grouped static input: x's features in input_groups.size() equal groups of consecutive columns,
  /// group g quantized with input_groups[g] (e.g. the attention context, one group per head). The
  /// weights are quantized as by the other constructor (per output channel over all groups); the
  /// GEMM runs once per group and sums the dequantized groups in float:
  ///   y = act(Σ_g s_g·s_w[n]·Σ_{k∈g} (x_q(m,k) − z_g)·W_q(k,n) + b) [+ residual]   (float output only).
  /// One group is exactly the ungrouped layer.
  /// @throws qtx::error for no groups, a group count that does not divide in_features, or invalid
  ///         parameters.
  qlinear(matrix_view<const float> weight, std::span<const quant_params> input_groups, std::span<const float> bias,
          bool per_channel = true, int weight_bits = 8)
      : in_(weight.cols), out_(weight.rows), has_static_input_(true) {
    const index_t groups = index_t(input_groups.size());
    check(groups > 0 && in_ % groups == 0, "qlinear: ", groups, " input groups do not divide in_features (", in_,
          ")");
    for (const quant_params& p : input_groups) check_quant_params<uint8_t>("qlinear", "input_groups", p);
    input_ = input_groups[0];
    const std::vector<int8_t> w_q = quantize_weights(weight, bias, per_channel, weight_bits);
    if (groups == 1) {
      pack_whole(w_q, bias);
      return;
    }
    const index_t width = in_ / groups;
    for (index_t g = 0; g < groups; ++g) {
      const quant_params& p = input_groups[std::size_t(g)];
      input_group group{p, ops::pack_b<Arch>(make_view(w_q.data() + g * width * out_, width, out_)), {}};
      for (float s_w : weight_scale_) group.acc_scale.push_back(p.scale * s_w);
      groups_.push_back(std::move(group));
    }
  }

  /// Columns of x.
  index_t in_features() const { return in_; }
  /// Columns of y.
  index_t out_features() const { return out_; }
  /// Whether the layer was made with calibrated input parameters (the uint8-matrix forward()).
  bool has_static_input() const { return has_static_input_; }
  /// The calibrated input parameters: what the caller must quantize x with (grouped input: group 0's).
  const quant_params& input_params() const { return input_; }

  /// y (M, out) float = act(dequant(x_q · W_qᵀ + b_q)) [+ residual]
  /// @throws qtx::error for views of the wrong shape, or a layer made without input parameters.
  void forward(matrix_view<const uint8_t> x, matrix_view<float> y, activation act = activation::none,
               matrix_view<const float> residual = {}) const {
    check_static(x, y, residual);
    if (!groups_.empty()) return run_groups(x, y, act, residual);
    run(x, y, act, residual, [](auto& body, auto... s) { body(s...); });
  }

  /// y_q (M, out) uint8 = quantize(act(dequant(x_q · W_qᵀ + b_q)) [+ residual], output)
  /// @throws qtx::error as the float form, or for invalid output parameters.
  void forward(matrix_view<const uint8_t> x, matrix_view<uint8_t> y, quant_params output,
               activation act = activation::none, matrix_view<const float> residual = {}) const {
    check_static(x, y, residual);
    check(groups_.empty(), "qlinear::forward: a layer with grouped input parameters writes float outputs only");
    run(x, y, act, residual, quantize_tail(output));
  }

  /// Dynamic input: y (M, out) float = act(Σ_k s_x[m](x(m,k) − zp[m])·s_w[n]·W_q(k,n) + b) [+ residual],
  /// x quantized per row (or per call) by ops::quantize_dynamic.
  /// @throws qtx::error for views of the wrong shape or scales / zero points not one per row.
  void forward(const quantized_rows& x, matrix_view<float> y, activation act = activation::none,
               matrix_view<const float> residual = {}) const {
    check_rows(x, y, residual);
    run_rows(x, y, act, residual, [](auto& body, auto... s) { body(s...); });
  }

  /// Dynamic input, output quantized with `output` (e.g. attention's Q, K, V).
  /// @throws qtx::error as the float form, or for invalid output parameters.
  void forward(const quantized_rows& x, matrix_view<uint8_t> y, quant_params output,
               activation act = activation::none, matrix_view<const float> residual = {}) const {
    check_rows(x, y, residual);
    run_rows(x, y, act, residual, quantize_tail(output));
  }

 private:
  template <class TC>
  void check_static(matrix_view<const uint8_t> x, matrix_view<TC> y, matrix_view<const float> residual) const {
    detail::check_linear_args("qlinear::forward", in_, out_, x.rows, x.cols, y.rows, y.cols, residual);
    check(has_static_input_, "qlinear::forward: the layer was made without calibrated input parameters; "
                             "pass its input as quantized_rows (ops::quantize_dynamic)");
  }
  template <class TC>
  void check_rows(const quantized_rows& x, matrix_view<TC> y, matrix_view<const float> residual) const {
    detail::check_linear_args("qlinear::forward", in_, out_, x.values.rows, x.values.cols, y.rows, y.cols, residual);
    check(groups_.empty(), "qlinear::forward: a layer with grouped input parameters takes uint8 levels on its groups' "
                           "grids, not quantized_rows");
  }
  static auto quantize_tail(quant_params output) {
    check_quant_params<uint8_t>("qlinear::forward", "output", output);
    const epilogue::quantize q{output.inv_scale(), output.zero_point};
    return [q](auto& body, auto... s) { body(s..., q); };
  }

  template <class TC, class Tail>
  void run(matrix_view<const uint8_t> x, matrix_view<TC> y, activation act,
           matrix_view<const float> residual, Tail tail) const {
    auto body = [&](auto... stages) {
      ops::detail::gemm_packed("qlinear::forward", Arch{}, x, packed_, y, epilogue::make_pipeline(stages...),
                              input_.zero_point);
    };
    detail::with_epilogue(act, residual, tail, body, epilogue::bias<int32_t>{bias_q_},
                          epilogue::dequantize<epilogue::per_n>{acc_scale_});
  }

  // The GEMM runs with zero point 0; each row's zero point and scale are applied in the epilogue.
  template <class TC, class Tail>
  void run_rows(const quantized_rows& x, matrix_view<TC> y, activation act, matrix_view<const float> residual,
                Tail tail) const {
    auto body = [&](auto... stages) {
      ops::detail::gemm_packed("qlinear::forward", Arch{}, x.values, packed_, y, epilogue::make_pipeline(stages...), 0);
    };
    detail::with_epilogue(act, residual, tail, body,
                          epilogue::subtract_row_zero_point{x.zero_points, column_sums_},
                          epilogue::dequantize_rows<epilogue::per_n>{x.scales, weight_scale_},
                          epilogue::bias<float>{bias_});
  }

  // One packed W_q for the whole input: the static path's bias in accumulator units and scales, the
  // dynamic path's column sums (the zero point correction needs Σ_k W_q(k, n); its bias stays float).
  void pack_whole(const std::vector<int8_t>& w_q, std::span<const float> bias) {
    packed_ = ops::pack_b<Arch>(make_view(w_q.data(), in_, out_));
    acc_scale_.resize(weight_scale_.size());
    bias_q_.resize(weight_scale_.size());
    for (index_t n = 0; n < out_; ++n) {
      acc_scale_[n] = input_.scale * weight_scale_[n];
      bias_q_[n] = bias.empty() ? 0 : round_half_even(bias[n] / acc_scale_[n]);
    }
    column_sums_.assign(static_cast<std::size_t>(out_), 0);
    for (index_t k = 0; k < in_; ++k)
      for (index_t n = 0; n < out_; ++n) column_sums_[n] += w_q[k * out_ + n];
  }

  // Quantizes W to int8 (in, out) = W_qᵀ, sets weight_scale_ and the float bias_, checks both.
  std::vector<int8_t> quantize_weights(matrix_view<const float> weight, std::span<const float> bias, bool per_channel,
                                       int weight_bits) {
    check(weight_bits >= 2 && weight_bits <= 8, "qlinear: weight_bits (", weight_bits, ") must be 2..8");
    check(bias.empty() || index_t(bias.size()) == out_, "qlinear: bias has ", bias.size(), " values, expected ", out_);
    const float levels = float((1 << (weight_bits - 1)) - 1);
    // Per-channel: one absmax per output row of W (= output column n of the GEMM).
    std::vector<float> w_scale(static_cast<std::size_t>(out_));
    float tensor_absmax = 0.0f;
    for (index_t n = 0; n < out_; ++n) {
      float absmax = 0.0f;
      for (index_t k = 0; k < in_; ++k) absmax = std::max(absmax, std::abs(weight(n, k)));
      w_scale[n] = absmax;
      tensor_absmax = std::max(tensor_absmax, absmax);
    }
    // symmetric_params<int8_t> with `levels` in place of 127 (the same float operations at 8 bits).
    for (auto& s : w_scale) {
      const float absmax = per_channel ? s : tensor_absmax;
      s = absmax == 0.0f ? 1.0f : std::max(absmax / levels, std::numeric_limits<float>::min());
    }
    std::vector<int8_t> w_q(static_cast<std::size_t>(in_ * out_));
    for (index_t n = 0; n < out_; ++n)
      for (index_t k = 0; k < in_; ++k)
        w_q[k * out_ + n] = quantize_one<int8_t>(weight(n, k), 1.0f / w_scale[n], 0);
    weight_scale_ = std::move(w_scale);
    bias_.assign(bias.begin(), bias.end());
    if (bias_.empty()) bias_.assign(static_cast<std::size_t>(out_), 0.0f);
    return w_q;
  }

  // Grouped input: group 0 writes s_0·s_w·acc_0 + b; each later group adds its own to y (y is its
  // own residual: the epilogue reads each element before it writes it); the last one adds the
  // activation and the residual.
  void run_groups(matrix_view<const uint8_t> x, matrix_view<float> y, activation act,
                  matrix_view<const float> residual) const {
    namespace ep = epilogue;
    const index_t groups = index_t(groups_.size()), width = in_ / groups;
    const auto no_tail = [](auto& body, auto... s) { body(s...); };
    for (index_t g = 0; g < groups; ++g) {
      const input_group& group = groups_[std::size_t(g)];
      auto body = [&](auto... stages) {
        ops::detail::gemm_packed("qlinear::forward", Arch{}, x.block(0, g * width, x.rows, width), group.packed, y,
                                 ep::make_pipeline(stages...), group.params.zero_point);
      };
      const ep::dequantize<ep::per_n> dequantize{group.acc_scale};
      const ep::residual_add partial_sum{matrix_view<const float>(y)};
      const bool last = g == groups - 1;
      if (g == 0 && last)
        detail::with_epilogue(act, residual, no_tail, body, dequantize, ep::bias<float>{bias_});
      else if (g == 0)
        body(dequantize, ep::bias<float>{bias_});
      else if (last)
        detail::with_epilogue(act, residual, no_tail, body, dequantize, partial_sum);
      else
        body(dequantize, partial_sum);
    }
  }

  // One group of a grouped input: its parameters, its rows of W_q packed, s_g·s_w[n].
  struct input_group {
    quant_params params;
    ops::packed_b<Arch, int8_t> packed;
    std::vector<float> acc_scale;
  };

  index_t in_ = 0, out_ = 0;
  bool has_static_input_ = false;
  quant_params input_;
  std::vector<input_group> groups_;  // empty unless the input has two or more groups
  ops::packed_b<Arch, int8_t> packed_;
  std::vector<float> acc_scale_;
  std::vector<int32_t> bias_q_;
  std::vector<float> weight_scale_, bias_;
  std::vector<int32_t> column_sums_;
};

}  // namespace qtx::nn

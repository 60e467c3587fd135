#pragma once
// The transformer's feed-forward block, float and W8A8:
//
//   y = act(x W₁ᵀ + b₁) W₂ᵀ + b₂ [+ residual]        act: ReLU, GELU (erf or tanh form), or none
//
// W8A8: uint8 x, int8 weights; the hidden activation (the input of FC₂, a quantization point of
// the paper) is uint8 with calibrated parameters, requantized in FC₁'s epilogue, or quantized per
// call from FC₁'s float output (quant/dynamic.hpp); y is float.
#include <span>

#include "../core/error.hpp"
#include "../core/view.hpp"
#include "linear.hpp"
#include "quantized_input.hpp"
#include "../config.hpp"

namespace qtx::QTX_ABI::nn {

/// FC₁ (ffn_dim, d_model) and FC₂ (d_model, ffn_dim) in Hugging Face layout (out, in), with biases.
struct ffn_weights {
  matrix_view<const float> fc1;  ///< W₁ (ffn_dim, d_model)
  std::span<const float> b1;     ///< b₁ (ffn_dim) or empty
  matrix_view<const float> fc2;  ///< W₂ (d_model, ffn_dim)
  std::span<const float> b2;     ///< b₂ (d_model) or empty
};

namespace detail {
inline void check_ffn_chain(const char* fn, index_t fc1_out, index_t fc1_in, index_t fc2_out, index_t fc2_in) {
  check(fc2_in == fc1_out && fc2_out == fc1_in, fn, ": fc1 is ", fc1_out, "x", fc1_in, " and fc2 ", fc2_out, "x",
        fc2_in, "; fc2 must be ", fc1_in, "x", fc1_out, " (d_model x ffn_dim)");
}
}  // namespace detail

/// Float feed-forward block.
template <class Arch = cpu::native>
class feed_forward {
 public:
  /// An empty block.
  feed_forward() = default;
  /// Packs both layers; act is applied after FC₁.
  /// @throws qtx::error for weights that do not chain (d_model → ffn_dim → d_model) or bad biases.
  feed_forward(const ffn_weights& w, activation act) : fc1_(w.fc1, w.b1), fc2_(w.fc2, w.b2), act_(act) {
    detail::check_ffn_chain("feed_forward", fc1_.out_features(), fc1_.in_features(), fc2_.out_features(),
                            fc2_.in_features());
  }
  /// d_model: the width of x and y.
  index_t d_model() const { return fc1_.in_features(); }
  /// ffn_dim: the width of the hidden activation.
  index_t ffn_dim() const { return fc1_.out_features(); }
  /// The activation after FC₁.
  activation act() const { return act_; }

  /// y (T, d_model) = act(x W₁ᵀ + b₁) W₂ᵀ + b₂ [+ residual]; hidden (T, ffn_dim) receives act(…).
  /// @throws qtx::error for views of the wrong shape.
  void forward(matrix_view<const float> x, matrix_view<float> hidden, matrix_view<float> y,
               matrix_view<const float> residual = {}) const {
    fc1_.forward(x, hidden, act_);
    fc2_.forward(hidden, y, activation::none, residual);
  }

 private:
  linear<Arch> fc1_, fc2_;
  activation act_ = activation::none;
};

/// W8A8 feed-forward block.
template <class Arch = cpu::native>
class quantized_feed_forward {
 public:
  /// An empty block.
  quantized_feed_forward() = default;
  /// Quantizes both layers: input = how x is quantized (uint8 params, or dynamic), hidden = how
  /// act(FC₁(x)) is.
  /// @throws qtx::error for weights that do not chain, bad biases or invalid quant params.
  quantized_feed_forward(const ffn_weights& w, activation act, point_quantization input, point_quantization hidden,
                         bool per_channel = true, int weight_bits = 8)
      : fc1_(w.fc1, w.b1, static_params(input), per_channel, weight_bits),
        fc2_(w.fc2, w.b2, static_params(hidden), per_channel, weight_bits), hidden_(hidden), act_(act) {
    detail::check_ffn_chain("quantized_feed_forward", fc1_.out_features(), fc1_.in_features(),
                            fc2_.out_features(), fc2_.in_features());
  }
  /// d_model: the width of x and y.
  index_t d_model() const { return fc1_.in_features(); }
  /// ffn_dim: the width of the hidden activation.
  index_t ffn_dim() const { return fc1_.out_features(); }

  /// y (T, d_model) float = FC₂(quantize(act(FC₁(x_q)))) [+ residual]; hidden_q (T, ffn_dim)
  /// receives the uint8 hidden activation.
  /// @throws qtx::error for views of the wrong shape.
  /// @throws qtx::error for views of the wrong shape, or a block whose points are dynamic (they
  ///         take the input_buffer form).
  void forward(matrix_view<const uint8_t> x_q, matrix_view<uint8_t> hidden_q, matrix_view<float> y,
               matrix_view<const float> residual = {}) const {
    check(!hidden_.dynamic(), "quantized_feed_forward::forward: the hidden activation is quantized per call; pass "
                              "an input_buffer for it");
    fc1_.forward(x_q, hidden_q, hidden_.params, act_);
    fc2_.forward(hidden_q, y, activation::none, residual);
  }

  /// y (T, d_model) float = FC₂(quantize(act(FC₁(x_q)))) [+ residual] for x_q in either form; the
  /// hidden activation lives in `hidden` (T rows of ffn_dim).
  /// @throws qtx::error for views of the wrong shape or a buffer too small.
  void forward(const linear_input& x_q, input_buffer& hidden, matrix_view<float> y,
               matrix_view<const float> residual = {}) const {
    const char* fn = "quantized_feed_forward::forward";
    const index_t T = x_q.values.rows;
    if (hidden_.dynamic()) {
      const auto h = hidden.staging(T, fn);
      x_q.forward(fc1_, h, act_);
      hidden.quantize(Arch{}, h, hidden_, fn).forward(fc2_, y, activation::none, residual);
    } else {
      x_q.forward(fc1_, hidden.levels(T, fn), hidden_.params, act_);
      fc2_.forward(hidden.levels(T, fn), y, activation::none, residual);
    }
  }

 private:
  qlinear<Arch> fc1_, fc2_;
  point_quantization hidden_;
  activation act_ = activation::none;
};

}  // namespace qtx::nn

#pragma once
/// @file
/// The activation memory of an encoder layer (encoder_layer.hpp), made once for a maximum token
/// count and reused by every forward call.
#include <type_traits>

#include "../core/error.hpp"
#include "../core/view.hpp"
#include "attention.hpp"
#include "quantized_input.hpp"
#include "workspace.hpp"
#include "../config.hpp"

namespace qtx::QTX_ABI::nn {

/// Activation memory of an encoder layer for up to max_tokens tokens. T is the layer's activation
/// type: float for encoder_layer, uint8_t for quantized_encoder_layer.
template <class T>
class encoder_workspace {
 public:
  /// An empty workspace (for no tokens).
  encoder_workspace() = default;
  /// Memory for max_tokens tokens of a layer with these widths.
  /// @throws qtx::error for a negative size.
  encoder_workspace(index_t max_tokens, index_t d_model, index_t ffn_dim, index_t n_heads)
      : attention(max_tokens, d_model, n_heads), sum_(max_tokens, d_model), normed_(max_tokens, d_model),
        hidden_(quantized ? 0 : max_tokens, ffn_dim), inputs_(quantized ? max_tokens : 0, d_model),
        hidden_input_(quantized ? max_tokens : 0, ffn_dim), grid_(quantized ? max_tokens : 0, d_model),
        ffn_dim_(ffn_dim) {}

  attention_workspace<T> attention;  ///< the attention module's part

  /// The most tokens a forward call may take.
  index_t max_tokens() const { return sum_.max_rows(); }
  /// (tokens, d_model) float: the residual sum before its LN.
  matrix_view<float> sum(index_t tokens, const char* fn) { return sum_.rows(tokens, fn, "sum"); }
  /// (tokens, d_model) float: a pre-LN layer's LN output (W8A8: its dequantized form, the gate's input).
  matrix_view<float> normed(index_t tokens, const char* fn) { return normed_.rows(tokens, fn, "normed"); }
  /// (tokens, ffn_dim) float (float layer only): the FFN's hidden activation.
  matrix_view<T> hidden(index_t tokens, const char* fn) { return hidden_.rows(tokens, fn, "hidden"); }
  /// W8A8 only: the uint8 input of Q/K/V or FC₁ that the layer quantizes itself (a pre-LN layer's
  /// LN outputs; a post-LN layer's LN₁ output and float input), static or per call.
  input_buffer& inputs() { return inputs_; }
  /// W8A8 only: the FFN's hidden activation, the input of FC₂.
  input_buffer& hidden_input() { return hidden_input_; }
  /// (tokens, d_model) uint8 (W8A8 only): scratch of the residual rounding.
  matrix_view<uint8_t> grid(index_t tokens, const char* fn) { return grid_.rows(tokens, fn, "grid"); }

  /// Checks that the workspace was made for a layer of these widths.
  /// @throws qtx::error naming fn when it was not.
  void check_shape(const char* fn, index_t d_model, index_t ffn_dim, index_t n_heads) const {
    attention.check_shape(fn, d_model, n_heads);
    check(ffn_dim_ == ffn_dim, fn, ": workspace is for ffn_dim ", ffn_dim_, ", the layer has ", ffn_dim);
  }

 private:
  static constexpr bool quantized = !std::is_same_v<T, float>;
  row_buffer<float> sum_, normed_;
  row_buffer<T> hidden_;
  input_buffer inputs_, hidden_input_;
  row_buffer<uint8_t> grid_;
  index_t ffn_dim_ = 0;
};

}  // namespace qtx::nn

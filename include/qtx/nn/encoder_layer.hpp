#pragma once
// A transformer encoder layer (attention + feed-forward, each with a residual and a LayerNorm),
// float and W8A8, in either norm placement:
//
//   post-LN (BERT):       x ← LN₁(x + attention(x))        x ← LN₂(x + ffn(x))
//   pre-LN  (OPT, ViT):   x ← x + attention(LN₁(x))        x ← x + ffn(LN₂(x))
//
// W8A8 quantization points (uint8 asymmetric activations with calibrated parameters, int8
// symmetric weights per output channel): every Linear input (the LN outputs, the attention context,
// the FFN hidden activation), Q, K and V, the softmax probabilities (scale 1/255, inside
// ops::attention) and both residual sums, rounded to their uint8 grid (quantize → dequantize; on by
// default, set_residual_rounding(false) keeps them float to measure what their outliers cost).
// Post-LN: the LN outputs are the uint8 inputs of the next GEMM and, dequantized, the float residual
// stream. Pre-LN: the residual stream is float on the grid of its last rounding. Q·Kᵀ stays int32
// into the softmax; biases are int32; LN statistics, softmax and activation internals and the gate
// are float, as in the paper.
//
// Beyond the paper (quantized_layer_options): each GEMM input (the attention input, the context,
// the FFN input, the FFN hidden activation) may instead be quantized per call, per tensor or per
// token (quant/dynamic.hpp), and round_residuals = false keeps the whole residual stream float
// (both sums and, post-LN, the LN outputs that carry it; the GEMMs still read uint8).
//
// Both layers run in an encoder_workspace made once for a maximum token count (make_workspace) and
// reused by every call: a warm forward pass allocates nothing in these modules.
#include <initializer_list>
#include <optional>
#include <span>
#include <vector>

#include "../core/error.hpp"
#include "../core/view.hpp"
#include "../ops/elementwise.hpp"
#include "../quant/smoothing.hpp"
#include "attention.hpp"
#include "calibration.hpp"
#include "encoder_workspace.hpp"
#include "ffn.hpp"
#include "grid.hpp"
#include "layer_norm.hpp"
#include "quantized_input.hpp"
#include "sequences.hpp"
#include "workspace.hpp"
#include "../config.hpp"

namespace qtx::QTX_ABI::nn {

/// Where the LayerNorms sit relative to the residual adds.
enum class norm_placement {
  post_ln,  ///< BERT: LN after each residual add
  pre_ln,   ///< OPT, ViT: LN before each sub-block, the residual stream itself is never normalised
};

/// γ and β of one LayerNorm.
struct layer_norm_weights {
  std::span<const float> gamma;  ///< (d_model)
  std::span<const float> beta;   ///< (d_model)
};

/// The float weights of one layer, as views. They must outlive the encoder_layer when it is to be
/// quantized (quantized_encoder_layer reads them).
struct encoder_layer_weights {
  attention_weights attention;                ///< Q, K, V, O projections (d_model, d_model)
  /// LN₁ (around attention) and LN₂ (around the FFN).
  ///@{
  layer_norm_weights attention_ln, ffn_ln;
  ///@}
  ffn_weights ffn;                            ///< FC₁ (ffn_dim, d_model), FC₂ (d_model, ffn_dim)
};

/// Everything about a layer that is not a weight.
struct encoder_layer_options {
  norm_placement norm = norm_placement::pre_ln;     ///< post-LN (BERT) or pre-LN (OPT, ViT)
  attention_options attention;                      ///< heads, clipped softmax, causality, gate
  activation ffn_activation = activation::gelu_erf; ///< after FC₁
  float ln_eps = 1e-5f;                             ///< ε of both LayerNorms
};

namespace detail {
inline void check_layer_input(const char* fn, matrix_view<const float> x, index_t d_model, index_t max_tokens) {
  check_view(fn, "x", x);
  check(x.cols == d_model, fn, ": x has ", x.cols, " columns, the layer's d_model is ", d_model);
  check(x.rows <= max_tokens, fn, ": x has ", x.rows, " tokens, the workspace holds ", max_tokens,
        " (make the workspace for more tokens)");
}
inline void observe(layer_observer* obs, layer_point p, matrix_view<const float> t) {
  if (obs) obs->observe(p, t);
}
}  // namespace detail

/// The float encoder layer.
template <class Arch = cpu::native>
class encoder_layer {
 public:
  /// An empty layer (d_model() == 0).
  encoder_layer() = default;
  /// Packs the layer's weights.
  /// @throws qtx::error when the weights' shapes do not agree (every width must be d_model, FC₁ and
  ///         FC₂ must chain), for bad LN weights or ε, or invalid gate weights.
  encoder_layer(const encoder_layer_weights& w, encoder_layer_options options)
      : weights_(w), options_(std::move(options)), attention_(w.attention, options_.attention),
        attention_ln_(w.attention_ln.gamma, w.attention_ln.beta, options_.ln_eps),
        ffn_ln_(w.ffn_ln.gamma, w.ffn_ln.beta, options_.ln_eps), ffn_(w.ffn, options_.ffn_activation) {
    const index_t D = attention_.d_model();
    check(ffn_.d_model() == D, "encoder_layer: FC1 takes ", ffn_.d_model(), " features, attention has d_model ", D);
    check(attention_ln_.features() == D && ffn_ln_.features() == D, "encoder_layer: LayerNorms have ",
          attention_ln_.features(), " and ", ffn_ln_.features(), " features, d_model is ", D);
  }

  /// Width of the hidden states.
  index_t d_model() const { return attention_.d_model(); }
  /// Width of the FFN's hidden activation.
  index_t ffn_dim() const { return ffn_.ffn_dim(); }
  /// Number of attention heads.
  index_t n_heads() const { return options_.attention.n_heads; }
  /// Norm placement, attention variant, activation, ε.
  const encoder_layer_options& options() const { return options_; }
  /// The float weights the layer was made from (views).
  const encoder_layer_weights& weights() const { return weights_; }
  /// LN₁ and LN₂ (the W8A8 layer runs the same float LayerNorms).
  const layer_norm<Arch>& attention_ln() const { return attention_ln_; }
  const layer_norm<Arch>& ffn_ln() const { return ffn_ln_; }  ///< see attention_ln()

  /// A workspace for up to max_tokens tokens per call.
  encoder_workspace<float> make_workspace(index_t max_tokens) const {
    return {max_tokens, d_model(), ffn_dim(), options_.attention.n_heads};
  }

  /// x (T, d_model) ← the layer's output, in place. `obs` (a layer_calibrator, say) sees every
  /// quantization point; key_mask (1, T_keys) is added to the scores; with a cache, x holds the new
  /// tokens only; `sequences`: x packs several sequences along its rows (sequences.hpp).
  /// @throws qtx::error for a workspace too small or made for another layer, x of the wrong width, or
  ///         sequence lengths that do not sum to x's rows.
  void forward(matrix_view<float> x, encoder_workspace<float>& ws, layer_observer* obs = nullptr,
               matrix_view<const float> key_mask = {}, kv_cache<float>* cache = nullptr,
               const packed_sequences& sequences = {}) const {
    const char* fn = "encoder_layer::forward";
    detail::check_layer_input(fn, x, d_model(), ws.max_tokens());
    detail::check_sequences(fn, sequences, x.rows, cache, key_mask);
    ws.check_shape(fn, d_model(), ffn_dim(), options_.attention.n_heads);
    const index_t T = x.rows;
    const auto s = ws.sum(T, fn);
    const auto h = ws.hidden(T, fn);
    if (options_.norm == norm_placement::post_ln) {
      detail::observe(obs, layer_point::input, x);
      attention_.forward(x, s, ws.attention, key_mask, x, cache, obs, sequences);
      detail::observe(obs, layer_point::attention_residual, s);
      attention_ln_.forward(s, x);
      detail::observe(obs, layer_point::attention_ln, x);
      ffn_.forward(x, h, s, x);
      detail::observe(obs, layer_point::ffn_hidden, h);
      detail::observe(obs, layer_point::ffn_residual, s);
      ffn_ln_.forward(s, x);
      detail::observe(obs, layer_point::ffn_ln, x);
    } else {
      const auto n = ws.normed(T, fn);
      attention_ln_.forward(x, n);
      detail::observe(obs, layer_point::attention_ln, n);
      attention_.forward(n, s, ws.attention, key_mask, x, cache, obs, sequences);
      detail::observe(obs, layer_point::attention_residual, s);
      ffn_ln_.forward(s, n);
      detail::observe(obs, layer_point::ffn_ln, n);
      ffn_.forward(n, h, x, s);
      detail::observe(obs, layer_point::ffn_hidden, h);
      detail::observe(obs, layer_point::ffn_residual, x);
    }
  }

  /// forward() over a batch of sequences packed along the rows of x (sequences.hpp): one pass for
  /// all of them, each sequence attending to its own rows only.
  void forward(matrix_view<float> x, const packed_sequences& sequences, encoder_workspace<float>& ws,
               layer_observer* obs = nullptr) const {
    forward(x, ws, obs, {}, nullptr, sequences);
  }

 private:
  encoder_layer_weights weights_;
  encoder_layer_options options_;
  multi_head_attention<Arch> attention_;
  layer_norm<Arch> attention_ln_, ffn_ln_;
  feed_forward<Arch> ffn_;
};

/// Options of the W8A8 layer.
struct quantized_layer_options {
  bool per_channel = true;      ///< int8 weight scales per output channel (false: per tensor)
  /// Round both residual sums to their uint8 grid (the paper's W8A8); false keeps the residual
  /// stream float (the sums and, post-LN, the LN outputs that carry it).
  bool round_residuals = true;
  /// Weight levels ±(2^(bits−1) − 1), 2..8; 7 (ONNX Runtime's reduce_range) lets the AVX2 backend
  /// use its exact vpmaddubsw kernel (cpu/gemm/microkernel.hpp), about twice as fast there.
  int weight_bits = 8;
  /// How each GEMM input is quantized: with its calibrated range (static_tensor, the paper's) or per
  /// call (dynamic_tensor, dynamic_token). Q, K, V and the probabilities stay static (the int8
  /// attention core takes one scale each).
  ///@{
  activation_scaling attention_input = activation_scaling::static_tensor;  ///< Q/K/V's input
  activation_scaling context = activation_scaling::static_tensor;          ///< W_O's input
  activation_scaling ffn_input = activation_scaling::static_tensor;        ///< FC₁'s input
  activation_scaling ffn_hidden = activation_scaling::static_tensor;       ///< FC₂'s input
  ///@}
  /// SmoothQuant-style migration strength α in [0, 1] (quant/smoothing.hpp) for the two LN-output
  /// GEMM inputs (Q/K/V's and FC₁'s): those inputs are divided per channel by s and the weights
  /// multiplied, from the calibration's per-channel ranges. Needs round_residuals = false (the
  /// smoothed tensor is a GEMM input only, never the residual stream). None: no smoothing.
  std::optional<float> smoothing_alpha = std::nullopt;
  /// Quantize the attention context (W_O's input, static) per head, each head on its own calibrated
  /// grid (layer_calibration::group_params), instead of one grid for all heads: a head whose gate
  /// scales it down keeps its uint8 levels. W_O then runs once per head (qlinear's grouped input).
  bool per_head_context = false;
  /// Sets the scaling of all four GEMM inputs.
  quantized_layer_options& set_activations(activation_scaling s) {
    attention_input = context = ffn_input = ffn_hidden = s;
    return *this;
  }
};

/// The W8A8 encoder layer, made from a float layer and its calibration.
template <class Arch = cpu::native>
class quantized_encoder_layer {
 public:
  /// An empty, uncalibrated layer: forward() refuses it.
  quantized_encoder_layer() = default;
  /// Quantizes `fp32` with the ranges of `cal` (layer_calibrator::result() after FP32 calibration
  /// batches). A static layer needs every point it quantizes with a calibrated range: q, k, v, and
  /// the GEMM inputs and residual sums that are static and rounded (a post-LN layer's `input`, a
  /// pre-LN layer never reads `input`).
  /// @throws qtx::error naming the first point `cal` lacks, or for invalid parameters.
  quantized_encoder_layer(const encoder_layer<Arch>& fp32, const layer_calibration& cal,
                          quantized_layer_options options = {})
      : norm_(fp32.options().norm), options_(options), attention_ln_(fp32.attention_ln()), ffn_ln_(fp32.ffn_ln()) {
    const char* fn = "quantized_encoder_layer";
    const bool post = norm_ == norm_placement::post_ln;
    const auto at = [&](layer_point p) { return cal.at(p, fn); };
    // A point's range is read only where the layer uses it: static GEMM inputs, rounded residuals.
    const auto point = [&](layer_point p, activation_scaling s) {
      return is_dynamic(s) ? point_quantization{s} : point_quantization{at(p)};
    };
    // Optional ranges: the residual sums' (needed to round them) and, post-LN, LN₂'s output (x_q).
    const auto optional = [&](layer_point p) { return options.round_residuals ? at(p) : cal.points[std::size_t(p)]; };
    const layer_point attention_point = post ? layer_point::input : layer_point::attention_ln;
    const layer_point ffn_point = post ? layer_point::attention_ln : layer_point::ffn_ln;
    attention_in_ = point(attention_point, options.attention_input);
    ffn_in_ = point(ffn_point, options.ffn_input);
    output_ = cal.points[std::size_t(layer_point::ffn_ln)];
    attention_residual_ = optional(layer_point::attention_residual);
    ffn_residual_ = optional(layer_point::ffn_residual);
    const auto context = point(layer_point::context, options.context);
    attention_weights aw = fp32.weights().attention;
    ffn_weights fw = fp32.weights().ffn;
    std::vector<float> wq, wk, wv, w1;  // the smoothed weights, alive until packed below
    if (options.smoothing_alpha) {
      check(!options.round_residuals, fn, ": smoothing needs round_residuals = false (a smoothed LN output "
                                          "is a GEMM input only, never the residual stream)");
      const float alpha = *options.smoothing_alpha;
      const auto smooth = [&](layer_point p, point_quantization& in, std::initializer_list<matrix_view<const float>> ws) {
        const channel_range& x = cal.channels_at(p, fn);
        std::vector<float> x_absmax(std::size_t(x.channels()));
        for (index_t j = 0; j < x.channels(); ++j) x_absmax[std::size_t(j)] = x.absmax(j);
        auto s = smoothing_factors(x_absmax, input_channel_absmax(ws), alpha, fn);
        if (!in.dynamic()) in.params = smoothed_params(x, s);
        return s;
      };
      const auto s_a = smooth(attention_point, attention_in_, {aw.wq, aw.wk, aw.wv});
      const auto s_f = smooth(ffn_point, ffn_in_, {fw.fc1});
      wq = scale_input_channels(aw.wq, s_a), wk = scale_input_channels(aw.wk, s_a);
      wv = scale_input_channels(aw.wv, s_a), w1 = scale_input_channels(fw.fc1, s_f);
      aw.wq = make_view(wq.data(), aw.wq.rows, aw.wq.cols), aw.wk = make_view(wk.data(), aw.wk.rows, aw.wk.cols);
      aw.wv = make_view(wv.data(), aw.wv.rows, aw.wv.cols), fw.fc1 = make_view(w1.data(), fw.fc1.rows, fw.fc1.cols);
      for (float f : s_a) attention_in_factors_.push_back(1.0f / f);
      for (float f : s_f) ffn_in_factors_.push_back(1.0f / f);
    }
    attention_calibration attention_cal{attention_in_.params, at(layer_point::q), at(layer_point::k),
                                        at(layer_point::v), context.params, attention_in_.scaling, context.scaling};
    if (options.per_head_context) {
      check(!context.dynamic(), fn, ": per_head_context needs a static context (options.context is dynamic)");
      attention_cal.context_per_head = cal.group_params(layer_point::context, fp32.options().attention.n_heads, fn);
    }
    attention_ = {aw, fp32.options().attention, attention_cal, options.per_channel, options.weight_bits};
    ffn_ = {fw, fp32.options().ffn_activation, ffn_in_, point(layer_point::ffn_hidden, options.ffn_hidden),
            options.per_channel, options.weight_bits};
    n_heads_ = fp32.options().attention.n_heads;
    gated_ = fp32.options().attention.gate.has_value();
    calibrated_ = true;
  }

  /// Width of the hidden states.
  index_t d_model() const { return attention_.d_model(); }
  /// Width of the FFN's hidden activation.
  index_t ffn_dim() const { return ffn_.ffn_dim(); }
  /// Number of attention heads.
  index_t n_heads() const { return n_heads_; }
  /// Post-LN or pre-LN.
  norm_placement norm() const { return norm_; }
  /// The options the layer was made with (residual rounding as set_residual_rounding left it).
  const quantized_layer_options& options() const { return options_; }
  /// Post-LN: the uint8 parameters of the layer's input x_q (the previous LN's output).
  quant_params input_params() const { return attention_in_.params; }
  /// Post-LN: the uint8 parameters of the layer's output x_q (LN₂'s output; scale 1 when uncalibrated).
  quant_params output_params() const { return output_.value_or(quant_params{}); }
  /// Whether forward() rounds the residual sums to their uint8 grid.
  bool residual_rounding() const { return options_.round_residuals; }
  /// Rounds the residual sums to their uint8 grid (true, the paper's W8A8) or keeps the residual
  /// stream float.
  /// @throws qtx::error when turning it on for a smoothed layer (smoothing_alpha), or one calibrated
  ///         without the residual sums' ranges.
  void set_residual_rounding(bool on) {
    const char* fn = "quantized_encoder_layer::set_residual_rounding";
    check(!on || !options_.smoothing_alpha, fn, ": the layer is smoothed (smoothing_alpha), which needs the float "
                                                "residual stream");
    check(!on || (attention_residual_ && ffn_residual_), fn,
          ": the calibration had no ranges for the residual sums, so they cannot be rounded");
    options_.round_residuals = on;
  }

  /// A workspace for up to max_tokens tokens per call.
  encoder_workspace<uint8_t> make_workspace(index_t max_tokens) const {
    return {max_tokens, d_model(), ffn_dim(), n_heads_};
  }

  /// x (T, d_model), the float residual stream, ← the layer's output, in place. A post-LN layer
  /// quantizes x itself (as its attention input point says); a pre-LN layer's LNs make its uint8 inputs.
  /// @throws qtx::error before calibration, for a workspace too small or made for another layer,
  ///         or x of the wrong width.
  void forward(matrix_view<float> x, encoder_workspace<uint8_t>& ws, matrix_view<const float> key_mask = {},
               kv_cache<uint8_t>* cache = nullptr, const packed_sequences& sequences = {}) const {
    const char* fn = "quantized_encoder_layer::forward";
    check_ready(fn, x, ws);
    detail::check_sequences(fn, sequences, x.rows, cache, key_mask);
    if (norm_ == norm_placement::post_ln) {
      const linear_input in = ws.inputs().quantize(Arch{}, x, attention_in_, fn, attention_in_factors_);
      post_ln(x, in, ws, key_mask, cache, sequences, {});
      return;
    }
    const index_t T = x.rows;
    const auto s = ws.sum(T, fn), n = ws.normed(T, fn);
    // The LN output's float form only feeds the gate: without one it is never made.
    const matrix_view<float> gate_input = gated_ ? n : matrix_view<float>{};
    const linear_input attention_in =
        normalize(attention_ln_, x, attention_in_, gate_input, ws.inputs(), fn, attention_in_factors_);
    attention_.forward(attention_in, gate_input, s, ws.attention, key_mask, x, cache, sequences);
    round_residual(s, attention_residual_, ws.grid(T, fn));
    const linear_input ffn_in = normalize(ffn_ln_, s, ffn_in_, {}, ws.inputs(), fn, ffn_in_factors_);
    ffn_.forward(ffn_in, ws.hidden_input(), x, s);
    round_residual(x, ffn_residual_, ws.grid(T, fn));
  }

  /// Post-LN: x (T, d_model) float and x_q = quantize(x, input_params()) ← the layer's output
  /// (x_q with output_params(), x its dequantized value, or LN₂'s float output when the residual
  /// stream is float), in place: consecutive static layers pass the uint8 stream along.
  /// @throws qtx::error before calibration, for a pre-LN layer, a layer whose attention input is
  ///         dynamic (it takes x only), x_q of another shape than x, a workspace too small or made
  ///         for another layer, or x of the wrong width.
  void forward(matrix_view<float> x, matrix_view<uint8_t> x_q, encoder_workspace<uint8_t>& ws,
               matrix_view<const float> key_mask = {}, kv_cache<uint8_t>* cache = nullptr,
               const packed_sequences& sequences = {}) const {
    const char* fn = "quantized_encoder_layer::forward";
    check_ready(fn, x, ws);
    detail::check_sequences(fn, sequences, x.rows, cache, key_mask);
    check(norm_ == norm_placement::post_ln, fn, ": a pre-LN layer takes no x_q (its input is float)");
    check(!attention_in_.dynamic(), fn, ": the layer quantizes its input per call (",
          to_string(attention_in_.scaling), "); call forward(x, ...) without x_q");
    check(output_.has_value(), fn, ": the calibration had no range for 'ffn_ln', the parameters of the output x_q");
    check(x_q.rows == x.rows && x_q.cols == x.cols, fn, ": x_q is ", x_q.rows, "x", x_q.cols, ", x is ", x.rows,
          "x", x.cols);
    post_ln(x, linear_input{x_q, std::nullopt}, ws, key_mask, cache, sequences, x_q);
  }

  /// forward() over a batch of sequences packed along the rows of x (sequences.hpp).
  void forward(matrix_view<float> x, const packed_sequences& sequences, encoder_workspace<uint8_t>& ws) const {
    forward(x, ws, {}, nullptr, sequences);
  }
  /// Post-LN forward() over a batch of sequences packed along the rows of x and x_q (sequences.hpp).
  void forward(matrix_view<float> x, matrix_view<uint8_t> x_q, const packed_sequences& sequences,
               encoder_workspace<uint8_t>& ws) const {
    forward(x, x_q, ws, {}, nullptr, sequences);
  }

 private:
  void check_ready(const char* fn, matrix_view<const float> x, const encoder_workspace<uint8_t>& ws) const {
    check(calibrated_, fn, ": the layer was not calibrated (make it from an encoder_layer and a layer_calibration)");
    detail::check_layer_input(fn, x, d_model(), ws.max_tokens());
    ws.check_shape(fn, d_model(), ffn_dim(), n_heads_);
  }

  // x ← LN₂(s + FFN(LN₁(x + attention(in)))); x_q, when given, ← LN₂'s output on output_params().
  void post_ln(matrix_view<float> x, const linear_input& in, encoder_workspace<uint8_t>& ws,
               matrix_view<const float> key_mask, kv_cache<uint8_t>* cache, const packed_sequences& sequences,
               matrix_view<uint8_t> x_q) const {
    const char* fn = "quantized_encoder_layer::forward";
    const index_t T = x.rows;
    const auto s = ws.sum(T, fn);
    attention_.forward(in, x, s, ws.attention, key_mask, x, cache, sequences);
    round_residual(s, attention_residual_, ws.grid(T, fn));
    const linear_input ffn_in = normalize(attention_ln_, s, ffn_in_, x, ws.inputs(), fn, ffn_in_factors_);
    ffn_.forward(ffn_in, ws.hidden_input(), s, x);
    round_residual(s, ffn_residual_, ws.grid(T, fn));
    if (!x_q.data) {
      ffn_ln_.forward(s, x);
    } else if (options_.round_residuals) {
      layer_norm_to_grid(ffn_ln_, s, x_q, x, *output_);
    } else {
      ffn_ln_.forward(s, x);
      ops::quantize(Arch{}, matrix_view<const float>(x), x_q, *output_);
    }
  }

  // LN(in) as the GEMM input `point` (into buf) and, when `out` is given, its float form for the
  // float consumers (the gate, a post-LN residual stream). The paper's static W8A8 with rounded
  // residuals keeps that float form on the uint8 grid (the LN quantizes in its own pass); otherwise
  // it is LN's float output, quantized for the GEMM (times the smoothing's s⁻¹ when there is one).
  linear_input normalize(const layer_norm<Arch>& ln, matrix_view<const float> in, const point_quantization& point,
                         matrix_view<float> out, input_buffer& buf, const char* fn,
                         std::span<const float> smoothing) const {
    const index_t T = in.rows;
    if (!point.dynamic() && options_.round_residuals) {
      layer_norm_to_grid(ln, in, buf.levels(T, fn), out, point.params);
      return buf.static_input(T, fn);
    }
    const matrix_view<float> f = out.data ? out : buf.staging(T, fn);
    ln.forward(in, f);
    return buf.quantize(Arch{}, f, point, fn, smoothing);
  }
  void round_residual(matrix_view<float> x, const std::optional<quant_params>& p, matrix_view<uint8_t> grid) const {
    if (options_.round_residuals) round_to_grid(Arch{}, x, *p, grid);
  }

  norm_placement norm_ = norm_placement::pre_ln;
  quantized_layer_options options_;
  bool calibrated_ = false, gated_ = false;
  index_t n_heads_ = 1;
  quantized_multi_head_attention<Arch> attention_;
  quantized_feed_forward<Arch> ffn_;
  layer_norm<Arch> attention_ln_, ffn_ln_;
  point_quantization attention_in_, ffn_in_;
  std::vector<float> attention_in_factors_, ffn_in_factors_;  // s⁻¹ of the smoothing, or empty
  std::optional<quant_params> output_, attention_residual_, ffn_residual_;
};

}  // namespace qtx::nn

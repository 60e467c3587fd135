#pragma once
/// @file
/// Multi-head self-attention modules (float and W8A8) with optional gate, clipped softmax and a KV
/// cache for incremental decoding:
///
///   Q, K, V = x W_Qᵀ + b_Q, …      O = attention(Q, K, V) (⊙ π gate per head)      y = O W_Oᵀ + b_O [+ residual]
///
/// The gate reads the block's input hidden state x (float, also in W8A8, as in the paper).
#include <cmath>
#include <functional>
#include <optional>
#include <span>

#include "../core/buffer.hpp"
#include "../ops/attention.hpp"
#include "../ops/gate.hpp"
#include "linear.hpp"

namespace qtx::nn {

/// The attention variant: heads, the paper's clipped softmax (γ, ζ) and gate, causal masking.
struct attention_options {
  /// Number of heads; must divide d_model.
  index_t n_heads = 1;
  float gamma = 0.0f;  ///< clipped softmax; γ = 0, ζ = 1 is plain softmax
  /// Clipped softmax's stretch ζ ≥ 1 (1 = no clipping from above).
  float zeta = 1.0f;
  /// Decoder-style masking: token t attends to tokens ≤ t only.
  bool causal = false;
  /// The paper's gated attention (π per head and token), or none for plain attention.
  std::optional<gate_weights> gate;
};

/// Keys and values of the tokens seen so far, for decoding one token at a time (OPT-style).
template <class T>
class kv_cache {
 public:
  /// Room for `capacity` tokens of width d_model, allocated once so decoding never reallocates.
  /// @throws qtx::error ("kv_cache: ...") unless both are positive.
  kv_cache(index_t capacity, index_t d_model)
      : capacity_(capacity), d_model_(d_model), k_(capacity * d_model), v_(capacity * d_model) {
    check(capacity > 0 && d_model > 0, "kv_cache: capacity (", capacity, ") and d_model (", d_model,
          ") must be positive");
  }
  /// Tokens cached so far.
  index_t length() const { return length_; }
  /// Tokens the cache can hold.
  index_t capacity() const { return capacity_; }
  /// Starts a new sequence (keeps the allocation).
  void clear() { length_ = 0; }

  /// Space for the next `tokens` rows; commit() makes them visible.
  matrix_view<T> next_keys(index_t tokens) { return reserve(k_, tokens); }
  /// Space for the next `tokens` value rows, as next_keys. @throws qtx::error past the capacity.
  matrix_view<T> next_values(index_t tokens) { return reserve(v_, tokens); }
  /// Makes the rows written through next_keys/next_values part of keys()/values().
  void commit(index_t tokens) { length_ += tokens; }
  /// The committed keys (length() × d_model).
  matrix_view<const T> keys() const { return make_view(k_.data(), length_, d_model_); }
  /// The committed values (length() × d_model).
  matrix_view<const T> values() const { return make_view(v_.data(), length_, d_model_); }

 private:
  matrix_view<T> reserve(aligned_buffer<T>& b, index_t tokens) {
    check(length_ + tokens <= capacity_, "kv_cache: ", length_, " cached + ", tokens,
          " new tokens exceed the capacity ", capacity_);
    return make_view(b.data() + length_ * d_model_, tokens, d_model_);
  }
  index_t capacity_, d_model_, length_ = 0;
  aligned_buffer<T> k_, v_;
};

namespace detail {
inline ops::attention_params attention_params_for(const attention_options& o, index_t d_model,
                                                  index_t causal_offset) {
  check(o.n_heads > 0 && d_model % o.n_heads == 0, "attention: d_model (", d_model,
        ") is not a multiple of n_heads (", o.n_heads, ")");
  return {o.n_heads, 1.0f / std::sqrt(float(d_model / o.n_heads)), o.gamma, o.zeta, o.causal, causal_offset};
}

// Where the new tokens' keys and values are written (the cache, or buffers of this call), and
// the full keys and values attention then reads.
template <class T>
struct kv_destination {
  kv_cache<T>* cache;
  index_t past;
  aligned_buffer<T> k_own, v_own;
  matrix_view<T> k_new, v_new;

  kv_destination(kv_cache<T>* c, index_t tokens, index_t d_model) : cache(c), past(c ? c->length() : 0) {
    if (cache) {
      k_new = cache->next_keys(tokens);
      v_new = cache->next_values(tokens);
      return;
    }
    k_own.reset(tokens * d_model);
    v_own.reset(tokens * d_model);
    k_new = make_view(k_own.data(), tokens, d_model);
    v_new = make_view(v_own.data(), tokens, d_model);
  }
  // Call once k_new and v_new hold the projections.
  std::pair<matrix_view<const T>, matrix_view<const T>> commit() {
    if (!cache) return {k_new, v_new};
    cache->commit(k_new.rows);
    return {cache->keys(), cache->values()};
  }
};

// π (T, n_heads) for hidden states x, or an empty view when the module has no gate.
inline matrix_view<const float> gate_probabilities(const std::optional<gate_weights>& g,
                                                   matrix_view<const float> x, aligned_buffer<float>& pi) {
  if (!g) return {};
  pi.reset(x.rows * g->n_heads);
  const auto view = make_view(pi.data(), x.rows, g->n_heads);
  ops::attention_gate(cpu::native{}, *g, x, view);
  return view;
}
}  // namespace detail

/// The four projections' weights in Hugging Face layout (out, in) with biases.
struct attention_weights {
  /// Projection weights, each (out, in) = (d_model, d_model).
  ///@{
  matrix_view<const float> wq, wk, wv, wo;
  ///@}
  /// Projection biases (d_model each), or empty for none.
  ///@{
  std::span<const float> bq, bk, bv, bo;
  ///@}
};

/// Float multi-head self-attention (optionally gated, clipped, causal, cached): the FP32 baseline
/// that the W8A8 module is compared against and calibrated from (taps).
template <class Arch = cpu::native>
class multi_head_attention {
 public:
  multi_head_attention() = default;
  /// Packs the four projections once. @throws qtx::error for mismatched projection shapes or gate weights.
  multi_head_attention(const attention_weights& w, attention_options options)
      : q_(w.wq, w.bq), k_(w.wk, w.bk), v_(w.wv, w.bv), o_(w.wo, w.bo), options_(std::move(options)) {
    check(q_.out_features() == o_.in_features(), "multi_head_attention: W_Q has ", q_.out_features(),
          " outputs but W_O takes ", o_.in_features());
    if (options_.gate) check_gate_weights("multi_head_attention", *options_.gate);
  }
  /// The model width (columns of x and y).
  index_t d_model() const { return q_.out_features(); }
  /// The options given at construction.
  const attention_options& options() const { return options_; }

  /// Observes the tensors that W8A8 quantizes (Q, K, V, context), when given a callback.
  struct taps {
    /// Called with a name ("q", "k", "v", "context") and the tensor, e.g. to feed range observers.
    std::function<void(const char*, matrix_view<const float>)> observe;
  };

  /// y (T, D) = attention(x) W_Oᵀ + b_O [+ residual]. With a cache, x holds the new tokens only.
  void forward(matrix_view<const float> x, matrix_view<float> y, matrix_view<const float> key_mask = {},
               matrix_view<const float> residual = {}, kv_cache<float>* cache = nullptr,
               const taps* tap = nullptr) const {
    const index_t T = x.rows, D = d_model();
    aligned_buffer<float> q(T * D), ctx(T * D), pi;
    detail::kv_destination<float> kv(cache, T, D);
    const auto qv = make_view(q.data(), T, D);
    q_.forward(x, qv);
    k_.forward(x, kv.k_new);
    v_.forward(x, kv.v_new);
    const index_t past = kv.past;
    const auto [keys, values] = kv.commit();
    const auto pi_view = detail::gate_probabilities(options_.gate, x, pi);
    const auto ctx_view = make_view(ctx.data(), T, D);
    ops::attention(Arch{}, matrix_view<const float>(qv), keys, values, ctx_view,
                   detail::attention_params_for(options_, D, past), key_mask, pi_view);
    if (tap && tap->observe) {
      tap->observe("q", qv);
      tap->observe("k", kv.k_new);
      tap->observe("v", kv.v_new);
      tap->observe("context", ctx_view);
    }
    o_.forward(ctx_view, y, activation::none, residual);
  }

  /// The Q projection, for inspection and tests.
  const linear<Arch>& q_proj() const { return q_; }

 private:
  linear<Arch> q_, k_, v_, o_;
  attention_options options_;
};

/// W8A8 attention: int8 projections, int8 Q·Kᵀ and P·V, uint8 Q/K/V/context with calibrated params.
struct attention_calibration {
  /// Calibrated uint8 parameters of the block input, Q, K, V and the context (the W_O input).
  ///@{
  quant_params input, q, k, v, context;
  ///@}
};

/// W8A8 multi-head self-attention: int8 weights, uint8 activations with calibrated parameters, both
/// attention products in int8; the gate stays float (as in the paper).
template <class Arch = cpu::native>
class quantized_multi_head_attention {
 public:
  quantized_multi_head_attention() = default;
  /// Quantizes and packs the four projections once.
  /// @param cal calibrated activation parameters (e.g. from multi_head_attention's taps and observers).
  /// @param per_channel int8 weight scales per output channel (true) or per tensor (the paper's setting).
  /// @throws qtx::error for invalid calibration parameters, mismatched shapes or gate weights.
  quantized_multi_head_attention(const attention_weights& w, attention_options options,
                                 const attention_calibration& cal, bool per_channel = true)
      : q_(w.wq, w.bq, cal.input, per_channel), k_(w.wk, w.bk, cal.input, per_channel),
        v_(w.wv, w.bv, cal.input, per_channel), o_(w.wo, w.bo, cal.context, per_channel),
        options_(std::move(options)), cal_(cal) {
    if (options_.gate) check_gate_weights("quantized_multi_head_attention", *options_.gate);
  }
  /// The model width (columns of x and y).
  index_t d_model() const { return q_.out_features(); }

  /// y (T, D) float = attention(x_q) W_Oᵀ + b_O [+ residual]; x is the float form of x_q (gate input).
  void forward(matrix_view<const uint8_t> x_q, matrix_view<const float> x, matrix_view<float> y,
               matrix_view<const float> key_mask = {}, matrix_view<const float> residual = {},
               kv_cache<uint8_t>* cache = nullptr) const {
    const index_t T = x_q.rows, D = d_model();
    check(x.rows == T && x.cols == D, "quantized_multi_head_attention: x is ", x.rows, "x", x.cols,
          ", expected ", T, "x", D);
    aligned_buffer<uint8_t> q(T * D), ctx(T * D);
    aligned_buffer<float> pi;
    detail::kv_destination<uint8_t> kv(cache, T, D);
    const auto qv = make_view(q.data(), T, D);
    q_.forward(x_q, qv, cal_.q);
    k_.forward(x_q, kv.k_new, cal_.k);
    v_.forward(x_q, kv.v_new, cal_.v);
    const index_t past = kv.past;
    const auto [keys, values] = kv.commit();
    const auto pi_view = detail::gate_probabilities(options_.gate, x, pi);
    const auto ctx_view = make_view(ctx.data(), T, D);
    ops::attention(Arch{}, matrix_view<const uint8_t>(qv), keys, values, ctx_view,
                   detail::attention_params_for(options_, D, past),
                   ops::attention_quant{cal_.q, cal_.k, cal_.v, cal_.context}, key_mask, pi_view);
    o_.forward(ctx_view, y, activation::none, residual);
  }

 private:
  qlinear<Arch> q_, k_, v_, o_;
  attention_options options_;
  attention_calibration cal_;
};

}  // namespace qtx::nn

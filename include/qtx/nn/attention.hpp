#pragma once
/// @file
/// Multi-head self-attention modules (float and W8A8) with optional gate, clipped softmax and a KV
/// cache for incremental decoding:
///
///   Q, K, V = x W_Qᵀ + b_Q, …      O = attention(Q, K, V) (⊙ π gate per head)      y = O W_Oᵀ + b_O [+ residual]
///
/// The gate reads the block's input hidden state x (float, also in W8A8, as in the paper).
/// Every forward pass runs in an attention_workspace (made once for a maximum token count and reused:
/// no allocation per call); the overloads without one make a workspace for that call.
#include <cmath>
#include <optional>
#include <span>
#include <type_traits>
#include <vector>

#include "../core/buffer.hpp"
#include "../ops/attention.hpp"
#include "../ops/gate.hpp"
#include "../ops/rules.hpp"
#include "calibration.hpp"
#include "linear.hpp"
#include "quantized_input.hpp"
#include "sequences.hpp"
#include "workspace.hpp"
#include "../config.hpp"

namespace qtx::QTX_ABI::nn {

/// Heads, clipped softmax, causality and gate of an attention module.
struct attention_options {
  index_t n_heads = 1;                  ///< number of heads; must divide d_model
  float gamma = 0.0f;                   ///< clipped softmax γ ≤ 0; γ = 0, ζ = 1 is plain softmax
  float zeta = 1.0f;                    ///< clipped softmax stretch ζ ≥ 1
  bool causal = false;                  ///< token t attends to tokens ≤ t only (decoders)
  std::optional<gate_weights> gate;     ///< the paper's per-head gate, or none
};

/// Keys and values of the tokens seen so far, for decoding one token at a time (OPT-style).
template <class T>
class kv_cache {
 public:
  /// Room for `capacity` tokens of width d_model. @throws qtx::error unless both are positive.
  kv_cache(index_t capacity, index_t d_model)
      : capacity_(capacity), d_model_(d_model), k_(capacity * d_model), v_(capacity * d_model) {
    check(capacity > 0 && d_model > 0, "kv_cache: capacity (", capacity, ") and d_model (", d_model,
          ") must be positive");
  }
  index_t length() const { return length_; }      ///< tokens cached so far
  index_t capacity() const { return capacity_; }  ///< most tokens the cache holds
  void clear() { length_ = 0; }                   ///< forgets every token (a new sequence)

  /// Space for the next `tokens` key rows; commit() makes them visible.
  matrix_view<T> next_keys(index_t tokens) { return reserve(k_, tokens); }
  /// Space for the next `tokens` value rows; commit() makes them visible.
  matrix_view<T> next_values(index_t tokens) { return reserve(v_, tokens); }
  void commit(index_t tokens) { length_ += tokens; }  ///< appends the rows written since the last commit
  /// The cached keys, (length, d_model).
  matrix_view<const T> keys() const { return make_view(k_.data(), length_, d_model_); }
  /// The cached values, (length, d_model).
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
// The options' rules, checked when a module is made (not first at its forward pass): heads that
// divide d_model, the clipped softmax's γ and ζ, and a gate for the same heads.
inline void check_attention_options(const char* fn, const attention_options& o, index_t d_model) {
  check(o.n_heads > 0 && d_model % o.n_heads == 0, fn, ": d_model (", d_model, ") is not a multiple of n_heads (",
        o.n_heads, ")");
  check_clip(fn, o.gamma, o.zeta);
  if (!o.gate) return;
  check_gate_weights(fn, *o.gate);
  check(o.gate->n_heads == o.n_heads && o.gate->d_model() == d_model, fn, ": the gate is for ", o.gate->n_heads,
        " heads of width ", o.gate->d_head, ", the attention has ", o.n_heads, " heads of width ",
        d_model / o.n_heads);
}

// The options were checked when the module was made (check_attention_options).
inline ops::attention_params attention_params_for(const attention_options& o, index_t d_model,
                                                  index_t causal_offset) {
  return {o.n_heads, 1.0f / std::sqrt(float(d_model / o.n_heads)), o.gamma, o.zeta, o.causal, causal_offset};
}

// Where the new tokens' keys and values are written (the cache, or the workspace), and the full
// keys and values attention then reads.
template <class T, class Workspace>
struct kv_destination {
  kv_cache<T>* cache;
  index_t past;
  matrix_view<T> k_new, v_new;

  kv_destination(kv_cache<T>* c, index_t tokens, Workspace& ws, const char* fn)
      : cache(c), past(c ? c->length() : 0) {
    if (cache) {
      k_new = cache->next_keys(tokens);
      v_new = cache->next_values(tokens);
    } else {
      k_new = ws.k(tokens, fn);
      v_new = ws.v(tokens, fn);
    }
  }
  // Call once k_new and v_new hold the projections.
  std::pair<matrix_view<const T>, matrix_view<const T>> commit() {
    if (!cache) return {k_new, v_new};
    cache->commit(k_new.rows);
    return {cache->keys(), cache->values()};
  }
};

// Runs run(q, keys, values, out, pi) once for a single sequence (keys and values may then start
// before q, in a KV cache), else once per packed sequence on its own rows of all five (pi is empty
// without a gate).
template <class TQ, class TO, class Run>
void attend_per_sequence(const packed_sequences& sequences, matrix_view<const TQ> q, matrix_view<const TQ> keys,
                         matrix_view<const TQ> values, matrix_view<TO> out, matrix_view<const float> pi, Run&& run) {
  if (sequences.single()) return run(q, keys, values, out, pi);
  const auto rows = [](auto v, index_t first, index_t count) { return v.data ? v.block(first, 0, count, v.cols) : v; };
  sequences.for_each(q.rows, [&](index_t first, index_t count) {
    run(rows(q, first, count), rows(keys, first, count), rows(values, first, count), rows(out, first, count),
        rows(pi, first, count));
  });
}

// Checked before anything is written (a KV cache among it): the sequences, and the key mask's
// shape, one value per key, the cached ones included (ops::attention would find a wrong one only
// after the cache has taken the new tokens).
template <class Cache>
void check_sequences(const char* fn, const packed_sequences& sequences, index_t tokens, const Cache* cache,
                     matrix_view<const float> key_mask) {
  sequences.check(fn, tokens);
  check(sequences.single() || (!cache && !key_mask.data), fn,
        ": packed sequences take no KV cache and no key mask (each sequence attends to its own rows only)");
  const index_t keys = tokens + (cache ? cache->length() : 0);
  check(!key_mask.data || (key_mask.rows == 1 && key_mask.cols == keys), fn, ": key_mask is ", key_mask.rows, "x",
        key_mask.cols, ", expected 1x", keys, " (one value per key", cache ? ", the cached ones included)" : ")");
}

// π (T, n_heads) for hidden states x into `pi`, or an empty view when the module has no gate.
inline matrix_view<const float> gate_probabilities(const std::optional<gate_weights>& g,
                                                   matrix_view<const float> x, matrix_view<float> pi) {
  if (!g) return {};
  ops::attention_gate(cpu::native{}, *g, x, pi);
  return pi;
}
}  // namespace detail

/// Activation memory of one attention forward pass for up to max_tokens new tokens: Q, K, V and the
/// context in T (float, or uint8 for W8A8), the gate probabilities in float. K and V are only used
/// without a KV cache (with one they are written into the cache).
template <class T>
class attention_workspace {
 public:
  /// An empty workspace (for no tokens).
  attention_workspace() = default;
  /// Memory for up to max_tokens tokens of width d_model and n_heads gate columns.
  /// @throws qtx::error for a negative size.
  attention_workspace(index_t max_tokens, index_t d_model, index_t n_heads)
      : q_(max_tokens, d_model), k_(max_tokens, d_model), v_(max_tokens, d_model),
        context_(quantized ? 0 : max_tokens, d_model), context_input_(quantized ? max_tokens : 0, d_model),
        gate_(max_tokens, n_heads) {}
  /// The most new tokens a forward call may take.
  index_t max_tokens() const { return q_.max_rows(); }
  /// The (tokens, d_model) views of Q, K, V and the context; fn names the caller in errors.
  matrix_view<T> q(index_t tokens, const char* fn) { return q_.rows(tokens, fn, "q"); }
  matrix_view<T> k(index_t tokens, const char* fn) { return k_.rows(tokens, fn, "k"); }  ///< see q()
  matrix_view<T> v(index_t tokens, const char* fn) { return v_.rows(tokens, fn, "v"); }  ///< see q()
  matrix_view<T> context(index_t tokens, const char* fn) { return context_.rows(tokens, fn, "context"); }  ///< see q() (float only)
  /// W8A8: the context, the input of W_O, static or quantized per call.
  input_buffer& context_input() { return context_input_; }
  /// The (tokens, n_heads) gate probabilities.
  matrix_view<float> gate(index_t tokens, const char* fn) { return gate_.rows(tokens, fn, "gate"); }

  /// Checks that the workspace was made for this width and head count.
  /// @throws qtx::error naming fn when it was not.
  void check_shape(const char* fn, index_t d_model, index_t n_heads) const {
    check(q_.cols() == d_model && gate_.cols() == n_heads, fn, ": workspace is for d_model ", q_.cols(), " and ",
          gate_.cols(), " heads, the module has d_model ", d_model, " and ", n_heads, " heads");
  }

 private:
  static constexpr bool quantized = !std::is_same_v<T, float>;
  row_buffer<T> q_, k_, v_, context_;
  input_buffer context_input_;
  row_buffer<float> gate_;
};

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

/// Float multi-head self-attention: y = attention(x W_Qᵀ + b_Q, …) W_Oᵀ + b_O [+ residual].
template <class Arch = cpu::native>
class multi_head_attention {
 public:
  /// An empty module (d_model() == 0).
  multi_head_attention() = default;
  /// Packs the four projections.
  /// @throws qtx::error for weights whose shapes do not chain or invalid gate weights.
  multi_head_attention(const attention_weights& w, attention_options options)
      : q_(w.wq, w.bq), k_(w.wk, w.bk), v_(w.wv, w.bv), o_(w.wo, w.bo), options_(std::move(options)) {
    check(q_.out_features() == o_.in_features(), "multi_head_attention: W_Q has ", q_.out_features(),
          " outputs but W_O takes ", o_.in_features());
    detail::check_attention_options("multi_head_attention", options_, d_model());
  }
  /// Width of the hidden states.
  index_t d_model() const { return q_.out_features(); }
  /// Heads, clipped softmax, causality, gate.
  const attention_options& options() const { return options_; }
  /// A workspace for up to max_tokens new tokens per call.
  attention_workspace<float> make_workspace(index_t max_tokens) const {
    return {max_tokens, d_model(), options_.n_heads};
  }

  /// y (T, D) = attention(x) W_Oᵀ + b_O [+ residual], in `ws`. With a cache, x holds the new tokens
  /// only. `obs` sees Q, K and V of the new tokens and the context (the points W8A8 quantizes).
  /// `sequences`: x packs several sequences along its rows (sequences.hpp; no cache or key mask then).
  /// @throws qtx::error when ws is too small or made for another shape, or for mismatched views or
  ///         sequence lengths.
  void forward(matrix_view<const float> x, matrix_view<float> y, attention_workspace<float>& ws,
               matrix_view<const float> key_mask = {}, matrix_view<const float> residual = {},
               kv_cache<float>* cache = nullptr, layer_observer* obs = nullptr,
               const packed_sequences& sequences = {}) const {
    const char* fn = "multi_head_attention::forward";
    const index_t T = x.rows, D = d_model();
    ws.check_shape(fn, D, options_.n_heads);
    detail::check_sequences(fn, sequences, T, cache, key_mask);
    const auto qv = ws.q(T, fn);
    detail::kv_destination<float, attention_workspace<float>> kv(cache, T, ws, fn);
    q_.forward(x, qv);
    k_.forward(x, kv.k_new);
    v_.forward(x, kv.v_new);
    const index_t past = kv.past;
    const auto [keys, values] = kv.commit();
    const auto pi_view = detail::gate_probabilities(options_.gate, x, ws.gate(T, fn));
    const auto ctx_view = ws.context(T, fn);
    const auto params = detail::attention_params_for(options_, D, past);
    detail::attend_per_sequence(sequences, matrix_view<const float>(qv), keys, values, ctx_view, pi_view,
                                [&](auto q, auto k, auto v, auto out, auto pi) {
                                  ops::attention(Arch{}, q, k, v, out, params, key_mask, pi);
                                });
    if (obs) {
      obs->observe(layer_point::q, qv);
      obs->observe(layer_point::k, kv.k_new);
      obs->observe(layer_point::v, kv.v_new);
      obs->observe(layer_point::context, ctx_view);
    }
    o_.forward(ctx_view, y, activation::none, residual);
  }

  /// forward() in a workspace made for this call.
  void forward(matrix_view<const float> x, matrix_view<float> y, matrix_view<const float> key_mask = {},
               matrix_view<const float> residual = {}, kv_cache<float>* cache = nullptr,
               layer_observer* obs = nullptr) const {
    auto ws = make_workspace(x.rows);
    forward(x, y, ws, key_mask, residual, cache, obs);
  }

  /// The Q projection.
  const linear<Arch>& q_proj() const { return q_; }

 private:
  linear<Arch> q_, k_, v_, o_;
  attention_options options_;
};

/// Calibrated uint8 parameters of the W8A8 attention's input, Q, K, V and context, and how the
/// two GEMM inputs among them (the block input, the context) are quantized.
struct attention_calibration {
  /// Parameters of the block input, Q, K, V and the context (P·V); input and context are only
  /// read when their scaling is static_tensor.
  ///@{
  quant_params input, q, k, v, context;
  ///@}
  /// The block input's scaling (the forward() taking quantized_rows / linear_input follows it).
  activation_scaling input_scaling = activation_scaling::static_tensor;
  /// The context's scaling: static (P·V requantized to uint8 in its epilogue) or dynamic (P·V in
  /// float, then quantized per call for W_O).
  activation_scaling context_scaling = activation_scaling::static_tensor;
  /// A static context quantized per head: one parameter set per head (context is then unused; the
  /// attention writes each head on its grid, W_O sums the heads in float, qlinear's grouped input).
  /// Empty: one grid for the whole context.
  std::vector<quant_params> context_per_head = {};
};

/// W8A8 attention: int8 projections, int8 Q·Kᵀ and P·V, uint8 Q/K/V/context with calibrated params.
template <class Arch = cpu::native>
class quantized_multi_head_attention {
 public:
  /// An empty module (d_model() == 0).
  quantized_multi_head_attention() = default;
  /// Quantizes the four projections (int8 weights, per output channel unless per_channel is false,
  /// on weight_bits bits: see qlinear).
  /// @throws qtx::error for invalid quant params, weight shapes or gate weights.
  quantized_multi_head_attention(const attention_weights& w, attention_options options,
                                 const attention_calibration& cal, bool per_channel = true, int weight_bits = 8)
      : q_(w.wq, w.bq, static_params({cal.input_scaling, cal.input}), per_channel, weight_bits),
        k_(w.wk, w.bk, static_params({cal.input_scaling, cal.input}), per_channel, weight_bits),
        v_(w.wv, w.bv, static_params({cal.input_scaling, cal.input}), per_channel, weight_bits),
        o_(output_projection(w, cal, options.n_heads, per_channel, weight_bits)),
        options_(std::move(options)),
        cal_(cal) {
    const char* fn = "quantized_multi_head_attention";
    check(q_.out_features() == o_.in_features(), fn, ": W_Q has ", q_.out_features(), " outputs but W_O takes ",
          o_.in_features());
    detail::check_attention_options(fn, options_, d_model());
  }
  /// Width of the hidden states.
  index_t d_model() const { return q_.out_features(); }
  /// A workspace for up to max_tokens new tokens per call.
  attention_workspace<uint8_t> make_workspace(index_t max_tokens) const {
    return {max_tokens, d_model(), options_.n_heads};
  }

  /// y (T, D) float = attention(x_q) W_Oᵀ + b_O [+ residual], in `ws`; x is the float form of x_q
  /// (the gate's input; an empty view when the module has no gate). `sequences`: x_q packs several
  /// sequences along its rows (sequences.hpp; no cache or key mask then).
  /// @throws qtx::error when ws is too small or made for another shape, or for mismatched views or
  ///         sequence lengths.
  void forward(matrix_view<const uint8_t> x_q, matrix_view<const float> x, matrix_view<float> y,
               attention_workspace<uint8_t>& ws, matrix_view<const float> key_mask = {},
               matrix_view<const float> residual = {}, kv_cache<uint8_t>* cache = nullptr,
               const packed_sequences& sequences = {}) const {
    forward(linear_input{x_q, std::nullopt}, x, y, ws, key_mask, residual, cache, sequences);
  }

  /// forward() of an input quantized per call (ops::quantize_dynamic), for a module whose
  /// calibration says input_scaling is dynamic.
  void forward(const quantized_rows& x_q, matrix_view<const float> x, matrix_view<float> y,
               attention_workspace<uint8_t>& ws, matrix_view<const float> key_mask = {},
               matrix_view<const float> residual = {}, kv_cache<uint8_t>* cache = nullptr,
               const packed_sequences& sequences = {}) const {
    forward(linear_input{x_q.values, x_q}, x, y, ws, key_mask, residual, cache, sequences);
  }

  /// forward() of either form (what the encoder layers pass).
  void forward(const linear_input& x_q, matrix_view<const float> x, matrix_view<float> y,
               attention_workspace<uint8_t>& ws, matrix_view<const float> key_mask = {},
               matrix_view<const float> residual = {}, kv_cache<uint8_t>* cache = nullptr,
               const packed_sequences& sequences = {}) const {
    const char* fn = "quantized_multi_head_attention::forward";
    const index_t T = x_q.values.rows, D = d_model();
    detail::check_sequences(fn, sequences, T, cache, key_mask);
    check((!x.data && !options_.gate) || (x.rows == T && x.cols == D), fn, ": x is ", x.rows, "x", x.cols,
          ", expected ", T, "x", D, " (the gate's input; it may be empty only without a gate)");
    ws.check_shape(fn, D, options_.n_heads);
    const auto qv = ws.q(T, fn);
    detail::kv_destination<uint8_t, attention_workspace<uint8_t>> kv(cache, T, ws, fn);
    x_q.forward(q_, qv, cal_.q);
    x_q.forward(k_, kv.k_new, cal_.k);
    x_q.forward(v_, kv.v_new, cal_.v);
    const index_t past = kv.past;
    // Named references, not a structured binding: Clang 14 cannot capture bindings in a lambda.
    const auto committed = kv.commit();
    const auto& keys = committed.first;
    const auto& values = committed.second;
    const auto pi_view = detail::gate_probabilities(options_.gate, x, ws.gate(T, fn));
    const auto params = detail::attention_params_for(options_, D, past);
    const ops::attention_quant quant{cal_.q, cal_.k, cal_.v, cal_.context, cal_.context_per_head};
    auto attend = [&](auto ctx_view) {
      detail::attend_per_sequence(sequences, matrix_view<const uint8_t>(qv), keys, values, ctx_view, pi_view,
                                  [&](auto q, auto k, auto v, auto out, auto pi) {
                                    ops::attention(Arch{}, q, k, v, out, params, quant, key_mask, pi);
                                  });
    };
    input_buffer& context = ws.context_input();
    if (is_dynamic(cal_.context_scaling)) {
      const auto staging = context.staging(T, fn);
      attend(staging);
      context.quantize(Arch{}, staging, {cal_.context_scaling, {}}, fn).forward(o_, y, activation::none, residual);
    } else {
      attend(context.levels(T, fn));
      o_.forward(context.levels(T, fn), y, activation::none, residual);
    }
  }

  /// forward() in a workspace made for this call.
  void forward(matrix_view<const uint8_t> x_q, matrix_view<const float> x, matrix_view<float> y,
               matrix_view<const float> key_mask = {}, matrix_view<const float> residual = {},
               kv_cache<uint8_t>* cache = nullptr) const {
    auto ws = make_workspace(x_q.rows);
    forward(x_q, x, y, ws, key_mask, residual, cache);
  }

 private:
  // W_O takes the context on one grid, per head (its input groups), or quantized per call.
  static qlinear<Arch> output_projection(const attention_weights& w, const attention_calibration& cal,
                                         index_t n_heads, bool per_channel, int weight_bits) {
    if (cal.context_per_head.empty())
      return {w.wo, w.bo, static_params({cal.context_scaling, cal.context}), per_channel, weight_bits};
    const char* fn = "quantized_multi_head_attention";
    check(!is_dynamic(cal.context_scaling), fn, ": a context quantized per call has no per-head parameters "
                                                "(context_per_head must be empty)");
    check(index_t(cal.context_per_head.size()) == n_heads, fn, ": context_per_head has ", cal.context_per_head.size(),
          " parameter sets for ", n_heads, " heads");
    return {w.wo, cal.context_per_head, w.bo, per_channel, weight_bits};
  }

  qlinear<Arch> q_, k_, v_, o_;
  attention_options options_;
  attention_calibration cal_;
};

}  // namespace qtx::nn

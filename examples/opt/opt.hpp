#pragma once
// An OPT decoder (pre-LN, causal, learned positions with OPT's offset of 2, ReLU FFN, LM head tied
// to the token embeddings; Hugging Face names) built from qtx::nn modules, FP32 and W8A8, with a
// KV cache for incremental decoding and greedy generation.
//
// W8A8 quantization points (uint8 asymmetric activations, int8 symmetric per-channel weights): the
// embedded tokens, the LN outputs (inputs of Q/K/V and FC1), Q, K, V, the attention context, the ReLU
// output (input of FC2) and both residual sums: in a pre-LN model the residual stream is where the
// outliers live, so it is rounded to its uint8 grid after every add (its dequantized value is the
// stream). LN statistics, softmax internals, the gate, the final LN and the LM head stay float, as in
// the paper.
#include "../bert/bert.hpp"
#include "../common/attention_variant.hpp"
#include "../common/config.hpp"
#include "../common/w8a8.hpp"
#include "../common/weights.hpp"

#include <qtx/nn/attention.hpp>
#include <qtx/nn/layer_norm.hpp>
#include <qtx/nn/linear.hpp>

#include <array>
#include <cmath>
#include <memory>
#include <vector>

namespace opt {

using qtx::index_t;
using qtx::matrix_view;

struct config : demo::attention_variant {
  index_t vocab = 0, hidden = 0, layers = 0, heads = 0, ffn = 0, max_positions = 0;
};

inline config parse_config(const demo::config_reader& r) {
  config c;
  c.vocab = r.extent("vocab_size");
  c.hidden = r.extent("hidden_size");
  c.layers = r.extent("num_hidden_layers", 0);
  c.heads = demo::read_heads(r, c.hidden);
  c.ffn = r.extent("ffn_dim");
  c.max_positions = r.extent("max_position_embeddings");
  demo::read_attention_variant(r, c);
  return c;
}

inline config read_config(const std::filesystem::path& path) {
  return parse_config(demo::config_reader::from_file("opt", path));
}

// Per-layer quantization points, in forward order.
enum point : int { attention_ln, q, k, v, context, attention_residual, ffn_ln, ffn_hidden, ffn_residual, points };
inline constexpr index_t position_offset = 2;  // OPT's learned positions start at row 2

struct calibration {
  qtx::quant_params embeddings;
  std::vector<std::array<qtx::quant_params, points>> layers;
};

template <class Arch = qtx::cpu::native>
class model {
 public:
  // Called with (layer, point, tensor) at every quantization point of the FP32 forward; layer −1,
  // point 0 is the embedded tokens.
  using observer = std::function<void(index_t, int, matrix_view<const float>)>;

  explicit model(const std::filesystem::path& dir)
      : cfg_(read_config(dir / "config.json")), w_("opt", dir / "model.safetensors") {
    tokens_ = w_.matrix("model.decoder.embed_tokens.weight", {cfg_.vocab, "vocab_size"}, H());
    positions_ = w_.matrix("model.decoder.embed_positions.weight",
                           {cfg_.max_positions + position_offset, "max_position_embeddings + 2"}, H());
    final_ln_ = norm("model.decoder.final_layer_norm");
    lm_head_ = {tokens_, {}};
    for (index_t i = 0; i < cfg_.layers; ++i) {
      fp32_layer l{{attention_weights(i), attention_options(i)}, norm(prefix(i) + "self_attn_layer_norm"),
                   norm(prefix(i) + "final_layer_norm"), {fc1_weight(i), fc1_bias(i)}, {fc2_weight(i), fc2_bias(i)}};
      fp32_.push_back(std::move(l));
    }
  }
  const config& cfg() const { return cfg_; }

  // Per-layer KV caches for one sequence being decoded, and its length so far (kept apart from the
  // caches so that positions advance in a model without layers too).
  template <class T>
  struct state {
    std::vector<std::unique_ptr<qtx::nn::kv_cache<T>>> caches;
    index_t tokens = 0;
    index_t length() const { return tokens; }
  };
  template <class T>
  state<T> new_state(index_t capacity) const {
    state<T> s;
    for (index_t i = 0; i < cfg_.layers; ++i) s.caches.push_back(std::make_unique<qtx::nn::kv_cache<T>>(capacity, cfg_.hidden));
    return s;
  }

  // Logits (T, vocab) for the new tokens `ids`, appended to the sequence held in `st`.
  void forward(std::span<const qtx::io::token_id> ids, state<float>& st, qtx::aligned_buffer<float>& logits,
               const observer* obs = nullptr) const {
    check_state(st);
    const index_t T = index_t(ids.size()), H = cfg_.hidden;
    qtx::aligned_buffer<float> xb, nb(T * H), hb(T * cfg_.ffn), yb(T * H);
    embed(ids, st.length(), xb);
    auto x = qtx::make_view(xb.data(), T, H), n = qtx::make_view(nb.data(), T, H), y = qtx::make_view(yb.data(), T, H);
    auto h = qtx::make_view(hb.data(), T, cfg_.ffn);
    if (obs) (*obs)(-1, 0, x);
    for (index_t i = 0; i < cfg_.layers; ++i) {
      const fp32_layer& l = fp32_[i];
      typename qtx::nn::multi_head_attention<Arch>::taps taps;
      if (obs)
        taps.observe = [&](const char* name, matrix_view<const float> t) {
          const std::string nm = name;
          (*obs)(i, nm == "q" ? q : nm == "k" ? k : nm == "v" ? v : context, t);
        };
      l.attention_ln.forward(x, n);
      if (obs) (*obs)(i, attention_ln, n);
      l.attention.forward(n, y, {}, x, st.caches[i].get(), obs ? &taps : nullptr);
      if (obs) (*obs)(i, attention_residual, y);
      l.ffn_ln.forward(y, n);
      if (obs) (*obs)(i, ffn_ln, n);
      l.fc1.forward(n, h, qtx::nn::activation::relu);
      if (obs) (*obs)(i, ffn_hidden, h);
      l.fc2.forward(h, x, qtx::nn::activation::none, y);
      if (obs) (*obs)(i, ffn_residual, x);
    }
    st.tokens += T;
    head(x, n, logits);
  }

  void quantize(const calibration& cal, bool per_channel = true) {
    qtx::check(index_t(cal.layers.size()) == cfg_.layers, "opt: quantize: calibration has ", cal.layers.size(),
               " layers, the model ", cfg_.layers);
    std::vector<w8a8_layer> layers;
    for (index_t i = 0; i < cfg_.layers; ++i) {
      const auto& c = cal.layers[i];
      w8a8_layer l{{attention_weights(i), attention_options(i),
                    qtx::nn::attention_calibration{c[attention_ln], c[q], c[k], c[v], c[context]}, per_channel},
                   {fc1_weight(i), fc1_bias(i), c[ffn_ln], per_channel},
                   {fc2_weight(i), fc2_bias(i), c[ffn_hidden], per_channel}};
      layers.push_back(std::move(l));
    }
    w8a8_ = std::move(layers);
    cal_ = cal;
    quantized_ = true;
  }

  void forward_w8a8(std::span<const qtx::io::token_id> ids, state<uint8_t>& st, qtx::aligned_buffer<float>& logits) const {
    qtx::check(quantized_, "opt: forward_w8a8 before quantize()");
    check_state(st);
    const index_t T = index_t(ids.size()), H = cfg_.hidden;
    qtx::aligned_buffer<float> xb, nb(T * H), yb(T * H);
    qtx::aligned_buffer<uint8_t> nq(T * H), hq(T * cfg_.ffn), scratch;
    embed(ids, st.length(), xb);
    auto x = qtx::make_view(xb.data(), T, H), n = qtx::make_view(nb.data(), T, H), y = qtx::make_view(yb.data(), T, H);
    auto n8 = qtx::make_view(nq.data(), T, H);
    auto h8 = qtx::make_view(hq.data(), T, cfg_.ffn);
    demo::round_to_grid(Arch{}, x, cal_.embeddings, scratch);
    for (index_t i = 0; i < cfg_.layers; ++i) {
      const auto& c = cal_.layers[i];
      demo::layer_norm_u8(fp32_[i].attention_ln, x, n8, n, c[attention_ln]);
      w8a8_[i].attention.forward(n8, n, y, {}, x, st.caches[i].get());
      demo::round_to_grid(Arch{}, y, c[attention_residual], scratch);
      demo::layer_norm_u8(fp32_[i].ffn_ln, y, n8, n, c[ffn_ln]);
      w8a8_[i].fc1.forward(n8, h8, c[ffn_hidden], qtx::nn::activation::relu);
      w8a8_[i].fc2.forward(h8, x, qtx::nn::activation::none, y);
      demo::round_to_grid(Arch{}, x, c[ffn_residual], scratch);
    }
    st.tokens += T;
    head(x, n, logits);
  }

 private:
  struct fp32_layer {
    qtx::nn::multi_head_attention<Arch> attention;
    qtx::nn::layer_norm<Arch> attention_ln, ffn_ln;
    qtx::nn::linear<Arch> fc1, fc2;
  };
  struct w8a8_layer {
    qtx::nn::quantized_multi_head_attention<Arch> attention;
    qtx::nn::qlinear<Arch> fc1, fc2;
  };
  static std::string prefix(index_t i) { return "model.decoder.layers." + std::to_string(i) + "."; }
  demo::dim H() const { return {cfg_.hidden, "hidden_size"}; }
  demo::dim F() const { return {cfg_.ffn, "ffn_dim"}; }
  qtx::nn::layer_norm<Arch> norm(const std::string& n) {
    return {w_.vector(n + ".weight", H()), w_.vector(n + ".bias", H()), 1e-5f};
  }
  matrix_view<const float> fc1_weight(index_t i) { return w_.matrix(prefix(i) + "fc1.weight", F(), H()); }
  std::span<const float> fc1_bias(index_t i) { return w_.vector(prefix(i) + "fc1.bias", F()); }
  matrix_view<const float> fc2_weight(index_t i) { return w_.matrix(prefix(i) + "fc2.weight", H(), F()); }
  std::span<const float> fc2_bias(index_t i) { return w_.vector(prefix(i) + "fc2.bias", H()); }
  qtx::nn::attention_weights attention_weights(index_t i) {
    return demo::load_attention_weights(w_, prefix(i) + "self_attn.", {"q_proj", "k_proj", "v_proj", "out_proj"}, H());
  }
  qtx::nn::attention_options attention_options(index_t i) {
    return demo::attention_options_for(cfg_, cfg_.heads, cfg_.hidden, true, w_, prefix(i) + "self_attn.gate.");
  }
  // A state from new_state() of this model (one cache per layer, of width hidden_size).
  template <class T>
  void check_state(const state<T>& st) const {
    qtx::check(index_t(st.caches.size()) == cfg_.layers, "opt: state has ", st.caches.size(),
               " layer caches, the model ", cfg_.layers, " layers");
  }
  void embed(std::span<const qtx::io::token_id> ids, index_t past, qtx::aligned_buffer<float>& out) const {
    const index_t T = index_t(ids.size()), H = cfg_.hidden;
    qtx::check(T > 0 && past + T <= cfg_.max_positions, "opt: ", past, " cached + ", T,
               " new tokens exceed max_position_embeddings ", cfg_.max_positions);
    out.reset(T * H);
    for (index_t t = 0; t < T; ++t) {
      qtx::check(ids[t] >= 0 && ids[t] < cfg_.vocab, "opt: token id ", ids[t], " outside the vocabulary of ", cfg_.vocab);
      for (index_t c = 0; c < H; ++c) out[t * H + c] = tokens_(ids[t], c) + positions_(past + t + position_offset, c);
    }
  }
  // Final LN and the tied LM head (float): logits = LN(x) · E_tokensᵀ.
  void head(matrix_view<const float> x, matrix_view<float> n, qtx::aligned_buffer<float>& logits) const {
    final_ln_.forward(x, n);
    logits.reset(x.rows * cfg_.vocab);
    lm_head_.forward(n, qtx::make_view(logits.data(), x.rows, cfg_.vocab));
  }

  config cfg_;
  demo::weight_store w_;
  matrix_view<const float> tokens_, positions_;
  qtx::nn::layer_norm<Arch> final_ln_;
  qtx::nn::linear<Arch> lm_head_;
  std::vector<fp32_layer> fp32_;
  std::vector<w8a8_layer> w8a8_;
  calibration cal_;
  bool quantized_ = false;
};

// Greedy generation: feed the prompt once, then one token at a time through the KV cache.
template <class Model>
std::vector<qtx::io::token_id> generate_greedy(const Model& m, std::vector<qtx::io::token_id> prompt, index_t new_tokens) {
  auto st = m.template new_state<float>(index_t(prompt.size()) + new_tokens);
  qtx::aligned_buffer<float> logits;
  std::vector<qtx::io::token_id> feed = prompt;
  for (index_t step = 0; step < new_tokens; ++step) {
    m.forward(feed, st, logits);
    const float* last = logits.data() + (index_t(feed.size()) - 1) * m.cfg().vocab;
    const auto best = qtx::io::token_id(std::max_element(last, last + m.cfg().vocab) - last);
    prompt.push_back(best);
    feed = {best};
  }
  return prompt;
}

}  // namespace opt

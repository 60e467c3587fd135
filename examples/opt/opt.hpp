#pragma once
// An OPT decoder (pre-LN, causal, learned positions with OPT's offset of 2, ReLU FFN, LM head tied
// to the token embeddings; Hugging Face names): the config, the weight names, the embeddings and the
// LM head around qtx::nn::encoder_layer (FP32) and qtx::nn::quantized_encoder_layer (W8A8), with a
// KV cache per layer for incremental decoding and greedy generation.
//
// W8A8: the layers' quantization points (their header states them), and the embedded tokens,
// rounded to their uint8 grid: in a pre-LN model the residual stream is where the outliers live.
// The final LN and the LM head stay float, as in the paper.
#include "../bert/bert.hpp"
#include "../common/attention_variant.hpp"
#include "../common/config.hpp"
#include "../common/layers.hpp"
#include "../common/w8a8.hpp"
#include "../common/weights.hpp"

#include <qtx/nn/encoder_layer.hpp>
#include <qtx/nn/grid.hpp>
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

// The model's point number of each qtx::nn::layer_point (a pre-LN layer has no uint8 input).
inline const demo::point_map layer_points = {-1,      attention_ln, q,      k,          v,           context,
                                              attention_residual, ffn_ln, ffn_hidden, ffn_residual};

struct calibration {
  qtx::quant_params embeddings;
  std::vector<std::array<qtx::quant_params, points>> layers;
  std::vector<qtx::channel_range> contexts = {};  // per layer, the context's channel ranges (per-head grids)
};

template <class Arch = qtx::cpu::native>
class model {
 public:
  // Called with (layer, point, tensor) at every quantization point of the FP32 forward; layer −1,
  // point 0 is the embedded tokens.
  using observer = demo::model_observer;

  explicit model(const std::filesystem::path& dir)
      : cfg_(read_config(dir / "config.json")), w_("opt", dir / "model.safetensors") {
    tokens_ = w_.matrix("model.decoder.embed_tokens.weight", {cfg_.vocab, "vocab_size"}, H());
    positions_ = w_.matrix("model.decoder.embed_positions.weight",
                           {cfg_.max_positions + position_offset, "max_position_embeddings + 2"}, H());
    final_ln_ = norm("model.decoder.final_layer_norm");
    lm_head_ = {tokens_, {}};
    for (index_t i = 0; i < cfg_.layers; ++i) fp32_.emplace_back(layer_weights(i), layer_options(i));
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
    qtx::aligned_buffer<float> xb;
    embed(ids, st.length(), xb);
    const auto x = qtx::make_view(xb.data(), T, H);
    if (obs) (*obs)(-1, 0, x);
    fp32_ws_.use([&] { return qtx::nn::encoder_workspace<float>(cfg_.max_positions, H, cfg_.ffn, cfg_.heads); },
                 [&](auto& ws) {
                   for (index_t i = 0; i < cfg_.layers; ++i) {
                     auto report = demo::point_reporter::make(obs, i, layer_points);
                     fp32_[i].forward(x, ws, report ? &*report : nullptr, {}, st.caches[i].get());
                   }
                   st.tokens += T;
                   head(x, ws.normed(T, "opt::forward"), logits);
                 });
  }

  void quantize(const calibration& cal, const qtx::nn::quantized_layer_options& options = {}) {
    qtx::check(index_t(cal.layers.size()) == cfg_.layers, "opt: quantize: calibration has ", cal.layers.size(),
               " layers, the model ", cfg_.layers);
    std::vector<qtx::nn::quantized_encoder_layer<Arch>> layers;
    for (index_t i = 0; i < cfg_.layers; ++i) {
      auto c = demo::layer_calibration_from(cal.layers[i], layer_points);
      if (!cal.contexts.empty()) c.channels[std::size_t(qtx::nn::layer_point::context)] = cal.contexts[std::size_t(i)];
      layers.emplace_back(fp32_[i], c, options);
    }
    w8a8_ = std::move(layers);
    cal_ = cal;
    quantized_ = true;
  }

  void forward_w8a8(std::span<const qtx::io::token_id> ids, state<uint8_t>& st, qtx::aligned_buffer<float>& logits) const {
    qtx::check(quantized_, "opt: forward_w8a8 before quantize()");
    check_state(st);
    const index_t T = index_t(ids.size()), H = cfg_.hidden;
    qtx::aligned_buffer<float> xb;
    embed(ids, st.length(), xb);
    const auto x = qtx::make_view(xb.data(), T, H);
    w8a8_ws_.use([&] { return qtx::nn::encoder_workspace<uint8_t>(cfg_.max_positions, H, cfg_.ffn, cfg_.heads); },
                 [&](auto& ws) {
                   qtx::nn::round_to_grid(Arch{}, x, cal_.embeddings, ws.grid(T, "opt::forward_w8a8"));
                   for (index_t i = 0; i < cfg_.layers; ++i) w8a8_[i].forward(x, ws, {}, st.caches[i].get());
                   st.tokens += T;
                   head(x, ws.normed(T, "opt::forward_w8a8"), logits);
                 });
  }

 private:
  static std::string prefix(index_t i) { return "model.decoder.layers." + std::to_string(i) + "."; }
  demo::dim H() const { return {cfg_.hidden, "hidden_size"}; }
  demo::dim F() const { return {cfg_.ffn, "ffn_dim"}; }
  qtx::nn::layer_norm<Arch> norm(const std::string& n) {
    return {w_.vector(n + ".weight", H()), w_.vector(n + ".bias", H()), ln_eps};
  }
  qtx::nn::layer_norm_weights norm_weights(const std::string& n) {
    return {w_.vector(n + ".weight", H()), w_.vector(n + ".bias", H())};
  }
  qtx::nn::encoder_layer_weights layer_weights(index_t i) {
    const std::string p = prefix(i);
    return {demo::load_attention_weights(w_, p + "self_attn.", {"q_proj", "k_proj", "v_proj", "out_proj"}, H()),
            norm_weights(p + "self_attn_layer_norm"),
            norm_weights(p + "final_layer_norm"),
            {w_.matrix(p + "fc1.weight", F(), H()), w_.vector(p + "fc1.bias", F()), w_.matrix(p + "fc2.weight", H(), F()),
             w_.vector(p + "fc2.bias", H())}};
  }
  qtx::nn::encoder_layer_options layer_options(index_t i) {
    return {qtx::nn::norm_placement::pre_ln,
            demo::attention_options_for(cfg_, cfg_.heads, cfg_.hidden, true, w_, prefix(i) + "self_attn.gate."),
            qtx::nn::activation::relu, ln_eps};
  }
  static constexpr float ln_eps = 1e-5f;
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
  std::vector<qtx::nn::encoder_layer<Arch>> fp32_;
  std::vector<qtx::nn::quantized_encoder_layer<Arch>> w8a8_;
  qtx::nn::shared_workspace<qtx::nn::encoder_workspace<float>> fp32_ws_;
  qtx::nn::shared_workspace<qtx::nn::encoder_workspace<uint8_t>> w8a8_ws_;
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

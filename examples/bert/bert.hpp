#pragma once
// A BERT encoder (post-LN, Hugging Face names) built from qtx::nn modules, in FP32 and W8A8.
//
// W8A8 quantization points (uint8 asymmetric activations, int8 symmetric per-channel weights):
// every Linear input (the LN outputs, the attention context, the GELU output), Q, K and V, the
// softmax probabilities (scale 1/255), both residual sums (the LN inputs, rounded to their uint8
// grid: where BERT's outliers live) and the LN outputs, which also become the float residual stream
// (dequantized). Q·Kᵀ stays int32 into the softmax; biases are int32; LN statistics, softmax and
// GELU internals, the gate and the embeddings are float, as in the paper.
#include "../common/attention_variant.hpp"
#include "../common/config.hpp"
#include "../common/w8a8.hpp"
#include "../common/weights.hpp"

#include <qtx/io/safetensors.hpp>
#include <qtx/io/wordpiece.hpp>
#include <qtx/nn/attention.hpp>
#include <qtx/nn/layer_norm.hpp>
#include <qtx/nn/linear.hpp>

#include <nlohmann/json.hpp>

#include <array>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <string>

namespace bert {

using qtx::index_t;
using qtx::matrix_view;

struct config : demo::attention_variant {
  index_t vocab = 0, hidden = 0, layers = 0, heads = 0, intermediate = 0, max_positions = 0, type_vocab = 2;
  float ln_eps = 1e-12f;
};

inline config parse_config(const demo::config_reader& r) {
  config c;
  c.vocab = r.extent("vocab_size");
  c.hidden = r.extent("hidden_size");
  c.layers = r.extent("num_hidden_layers", 0);
  c.heads = demo::read_heads(r, c.hidden);
  c.intermediate = r.extent("intermediate_size");
  c.max_positions = r.extent("max_position_embeddings");
  c.type_vocab = r.extent_or("type_vocab_size", c.type_vocab);
  c.ln_eps = r.real_or("layer_norm_eps", c.ln_eps);
  r.check(c.ln_eps > 0.0f, "layer_norm_eps (", c.ln_eps, ") must be positive as float");
  demo::read_attention_variant(r, c);
  return c;
}

inline config read_config(const std::filesystem::path& path) {
  return parse_config(demo::config_reader::from_file("bert", path));
}

// The tensors W8A8 quantizes in each layer, in forward order.
enum point : int { q, k, v, context, attention_residual, attention_ln, ffn_hidden, ffn_residual, ffn_ln, points };
inline const char* point_name(int p) {
  static const char* names[] = {"q",          "k", "v", "context", "attention_residual", "attention_ln", "ffn_hidden",
                                "ffn_residual", "ffn_ln"};
  return names[p];
}

struct calibration {
  qtx::quant_params embeddings_ln;
  std::vector<std::array<qtx::quant_params, points>> layers;
};

template <class Arch = qtx::cpu::native>
class model {
 public:
  // Called with (layer, point, tensor) at every quantization point of the FP32 forward.
  using observer = std::function<void(index_t, int, matrix_view<const float>)>;

  explicit model(const std::filesystem::path& dir)
      : cfg_(read_config(dir / "config.json")), w_("bert", dir / "model.safetensors") {
    word_ = w_.matrix("embeddings.word_embeddings.weight", {cfg_.vocab, "vocab_size"}, H());
    position_ = w_.matrix("embeddings.position_embeddings.weight", {cfg_.max_positions, "max_position_embeddings"}, H());
    token_type_ = w_.matrix("embeddings.token_type_embeddings.weight", {cfg_.type_vocab, "type_vocab_size"}, H());
    embeddings_ln_ = layer_norm("embeddings.LayerNorm");
    for (index_t i = 0; i < cfg_.layers; ++i) {
      fp32_layer l;
      l.attention = {attention_weights(i), attention_options(i)};
      l.attention_ln = layer_norm(prefix(i) + "attention.output.LayerNorm");
      l.ffn_in = {ffn_in_weight(i), ffn_in_bias(i)};
      l.ffn_out = {ffn_out_weight(i), ffn_out_bias(i)};
      l.ffn_ln = layer_norm(prefix(i) + "output.LayerNorm");
      fp32_.push_back(std::move(l));
    }
    if (w_.contains(mlm_prefix + "bias")) load_mlm_head();
  }

  const config& cfg() const { return cfg_; }

  // Masked-LM head of BertForMaskedLM checkpoints (cls.predictions.*), kept in float in W8A8 like
  // the paper's LM heads: logits (T, vocab) = LN(gelu(h W_tᵀ + b_t)) · E_wordᵀ + b.
  bool has_mlm_head() const { return mlm_.has_value(); }
  void mlm_logits(matrix_view<const float> hidden, qtx::aligned_buffer<float>& logits) const {
    qtx::check(mlm_.has_value(), "bert: mlm_logits on a checkpoint without cls.predictions.* tensors");
    qtx::check(hidden.cols == cfg_.hidden, "bert: mlm_logits on hidden states of width ", hidden.cols,
               ", expected ", cfg_.hidden);
    qtx::aligned_buffer<float> t(hidden.rows * cfg_.hidden);
    const auto tv = qtx::make_view(t.data(), hidden.rows, cfg_.hidden);
    mlm_->transform.forward(hidden, tv, qtx::nn::activation::gelu_erf);
    mlm_->transform_ln.forward(tv, tv);
    logits.reset(hidden.rows * cfg_.vocab);
    mlm_->decoder.forward(tv, qtx::make_view(logits.data(), hidden.rows, cfg_.vocab));
  }

  // Hidden states (T, hidden) of the last layer for one sequence of token ids.
  void forward(std::span<const qtx::io::token_id> ids, qtx::aligned_buffer<float>& out,
               const observer* obs = nullptr) const {
    const index_t T = index_t(ids.size()), H = cfg_.hidden;
    qtx::aligned_buffer<float> a(T * H), h(T * cfg_.intermediate);
    embed(ids, out);
    auto x = qtx::make_view(out.data(), T, H);
    auto av = qtx::make_view(a.data(), T, H);
    auto hv = qtx::make_view(h.data(), T, cfg_.intermediate);
    embeddings_ln_.forward(x, x);
    if (obs) (*obs)(-1, attention_ln, x);
    for (index_t i = 0; i < cfg_.layers; ++i) {
      const fp32_layer& l = fp32_[i];
      typename qtx::nn::multi_head_attention<Arch>::taps taps;
      if (obs)
        taps.observe = [&](const char* name, matrix_view<const float> t) {
          const std::string n = name;
          (*obs)(i, n == "q" ? q : n == "k" ? k : n == "v" ? v : context, t);
        };
      l.attention.forward(x, av, {}, x, nullptr, obs ? &taps : nullptr);
      if (obs) (*obs)(i, attention_residual, av);
      l.attention_ln.forward(av, x);
      if (obs) (*obs)(i, attention_ln, x);
      l.ffn_in.forward(x, hv, qtx::nn::activation::gelu_erf);
      if (obs) (*obs)(i, ffn_hidden, hv);
      l.ffn_out.forward(hv, av, qtx::nn::activation::none, x);
      if (obs) (*obs)(i, ffn_residual, av);
      l.ffn_ln.forward(av, x);
      if (obs) (*obs)(i, ffn_ln, x);
    }
  }

  // Builds the W8A8 layers from calibrated activation ranges.
  void quantize(const calibration& cal, bool per_channel = true) {
    qtx::check(index_t(cal.layers.size()) == cfg_.layers, "bert: quantize: calibration has ", cal.layers.size(),
               " layers, the model ", cfg_.layers);
    std::vector<w8a8_layer> layers;
    for (index_t i = 0; i < cfg_.layers; ++i) {
      const auto& c = cal.layers[i];
      const qtx::quant_params input = i == 0 ? cal.embeddings_ln : cal.layers[i - 1][ffn_ln];
      w8a8_layer l;
      l.attention = {attention_weights(i), attention_options(i),
                     qtx::nn::attention_calibration{input, c[q], c[k], c[v], c[context]}, per_channel};
      l.ffn_in = {ffn_in_weight(i), ffn_in_bias(i), c[attention_ln], per_channel};
      l.ffn_out = {ffn_out_weight(i), ffn_out_bias(i), c[ffn_hidden], per_channel};
      layers.push_back(std::move(l));
    }
    w8a8_ = std::move(layers);
    cal_ = cal;
    quantized_ = true;
  }

  // The paper's W8A8 rounds both residual sums to uint8 (on by default). Off keeps them float, to
  // measure what the outliers of the residual stream cost.
  void set_residual_rounding(bool on) { round_residuals_ = on; }

  void forward_w8a8(std::span<const qtx::io::token_id> ids, qtx::aligned_buffer<float>& out) const {
    qtx::check(quantized_, "bert: forward_w8a8 before quantize()");
    const index_t T = index_t(ids.size()), H = cfg_.hidden;
    qtx::aligned_buffer<float> a(T * H);
    qtx::aligned_buffer<uint8_t> x_q(T * H), h_q(T * cfg_.intermediate), scratch;
    embed(ids, out);
    auto x = qtx::make_view(out.data(), T, H);
    auto av = qtx::make_view(a.data(), T, H);
    auto xq = qtx::make_view(x_q.data(), T, H);
    auto hq = qtx::make_view(h_q.data(), T, cfg_.intermediate);
    // Post-LN: the LN output → uint8 is the residual stream; its dequantized value feeds the next add.
    auto normalize = [&](const qtx::nn::layer_norm<Arch>& ln, matrix_view<const float> in, qtx::quant_params p) {
      demo::layer_norm_u8(ln, in, xq, x, p);
    };
    normalize(embeddings_ln_, x, cal_.embeddings_ln);
    for (index_t i = 0; i < cfg_.layers; ++i) {
      const w8a8_layer& l = w8a8_[i];
      const auto& c = cal_.layers[i];
      l.attention.forward(xq, x, av, {}, x);
      if (round_residuals_) demo::round_to_grid(Arch{}, av, c[attention_residual], scratch);
      normalize(fp32_[i].attention_ln, av, c[attention_ln]);
      l.ffn_in.forward(xq, hq, c[ffn_hidden], qtx::nn::activation::gelu_erf);
      l.ffn_out.forward(hq, av, qtx::nn::activation::none, x);
      if (round_residuals_) demo::round_to_grid(Arch{}, av, c[ffn_residual], scratch);
      normalize(fp32_[i].ffn_ln, av, c[ffn_ln]);
    }
  }

 private:
  struct fp32_layer {
    qtx::nn::multi_head_attention<Arch> attention;
    qtx::nn::layer_norm<Arch> attention_ln, ffn_ln;
    qtx::nn::linear<Arch> ffn_in, ffn_out;
  };
  struct w8a8_layer {
    qtx::nn::quantized_multi_head_attention<Arch> attention;
    qtx::nn::qlinear<Arch> ffn_in, ffn_out;
  };

  struct mlm_head {
    qtx::nn::linear<Arch> transform;
    qtx::nn::layer_norm<Arch> transform_ln;
    qtx::nn::linear<Arch> decoder;  // tied to the word embeddings
  };
  static inline const std::string mlm_prefix = "cls.predictions.";

  void load_mlm_head() {
    const std::string t = mlm_prefix + "transform.";
    mlm_ = mlm_head{{w_.matrix(t + "dense.weight", H(), H()), w_.vector(t + "dense.bias", H())},
                    layer_norm(t + "LayerNorm"),
                    {word_, w_.vector(mlm_prefix + "bias", {cfg_.vocab, "vocab_size"})}};
  }

  static std::string prefix(index_t i) { return "encoder.layer." + std::to_string(i) + "."; }
  demo::dim H() const { return {cfg_.hidden, "hidden_size"}; }
  demo::dim I() const { return {cfg_.intermediate, "intermediate_size"}; }
  matrix_view<const float> ffn_in_weight(index_t i) { return w_.matrix(prefix(i) + "intermediate.dense.weight", I(), H()); }
  std::span<const float> ffn_in_bias(index_t i) { return w_.vector(prefix(i) + "intermediate.dense.bias", I()); }
  matrix_view<const float> ffn_out_weight(index_t i) { return w_.matrix(prefix(i) + "output.dense.weight", H(), I()); }
  std::span<const float> ffn_out_bias(index_t i) { return w_.vector(prefix(i) + "output.dense.bias", H()); }

  qtx::nn::layer_norm<Arch> layer_norm(const std::string& name) {
    return {w_.vector(name + ".weight", H()), w_.vector(name + ".bias", H()), cfg_.ln_eps};
  }

  qtx::nn::attention_weights attention_weights(index_t i) {
    return demo::load_attention_weights(w_, prefix(i) + "attention.",
                                        {"self.query", "self.key", "self.value", "output.dense"}, H());
  }

  qtx::nn::attention_options attention_options(index_t i) {
    return demo::attention_options_for(cfg_, cfg_.heads, cfg_.hidden, false, w_, prefix(i) + "attention.self.gate.");
  }

  void embed(std::span<const qtx::io::token_id> ids, qtx::aligned_buffer<float>& out) const {
    const index_t T = index_t(ids.size()), H = cfg_.hidden;
    qtx::check(T > 0 && T <= cfg_.max_positions, "bert: sequence of ", T, " tokens, the model takes 1..",
               cfg_.max_positions);
    out.reserve(T * H);
    for (index_t t = 0; t < T; ++t) {
      qtx::check(ids[t] >= 0 && ids[t] < cfg_.vocab, "bert: token id ", ids[t], " outside the vocabulary of ",
                 cfg_.vocab);
      for (index_t c = 0; c < H; ++c)
        out[t * H + c] = word_(ids[t], c) + position_(t, c) + token_type_(0, c);
    }
  }

  config cfg_;
  demo::weight_store w_;
  matrix_view<const float> word_, position_, token_type_;
  qtx::nn::layer_norm<Arch> embeddings_ln_;
  std::vector<fp32_layer> fp32_;
  std::vector<w8a8_layer> w8a8_;
  calibration cal_;
  bool quantized_ = false;
  bool round_residuals_ = true;
  std::optional<mlm_head> mlm_;
};

// Sentence embedding as sentence-transformers computes it: mean over tokens, then L2-normalised.
inline std::vector<float> mean_pool_normalize(const float* hidden, index_t T, index_t H) {
  std::vector<double> sum(std::size_t(H), 0.0);
  for (index_t t = 0; t < T; ++t)
    for (index_t c = 0; c < H; ++c) sum[c] += hidden[t * H + c];
  double norm = 0.0;
  for (auto& s : sum) norm += (s / double(T)) * (s / double(T));
  norm = std::sqrt(norm);
  std::vector<float> e(static_cast<std::size_t>(H));
  for (index_t c = 0; c < H; ++c) e[c] = float(sum[c] / double(T) / (norm > 0 ? norm : 1.0));
  return e;
}

}  // namespace bert

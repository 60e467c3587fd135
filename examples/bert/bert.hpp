#pragma once
// A BERT encoder (post-LN, Hugging Face names): the config, the weight names, the embeddings and
// the MLM head around qtx::nn::encoder_layer (FP32) and qtx::nn::quantized_encoder_layer (W8A8),
// whose header states the quantization points. The embeddings LN output is the first layer's
// uint8 input; the embeddings themselves are float, as in the paper.
#include "../common/attention_variant.hpp"
#include "../common/config.hpp"
#include "../common/layers.hpp"
#include "../common/w8a8.hpp"
#include "../common/weights.hpp"

#include <qtx/io/safetensors.hpp>
#include <qtx/io/wordpiece.hpp>
#include <qtx/nn/encoder_layer.hpp>
#include <qtx/nn/grid.hpp>
#include <qtx/nn/layer_norm.hpp>
#include <qtx/nn/linear.hpp>
#include <qtx/quant/observers.hpp>
#include <qtx/quant/smoothing.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <numeric>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace bert {

using qtx::index_t;
using qtx::matrix_view;

// One sequence of token ids, as the model's forward passes take them.
using ids_view = std::span<const qtx::io::token_id>;

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
  // Per-channel ranges (what smoothing needs), when recorded: the embeddings LN's, each layer's points'.
  std::optional<qtx::channel_range> embeddings_channels = {};
  std::vector<std::array<std::optional<qtx::channel_range>, points>> channels = {};
};

// Records a calibration from FP32 forward passes (pass it, or call it from the model observer):
// the paper's running min-max at every point and each point's per-channel ranges.
class calibration_recorder {
 public:
  explicit calibration_recorder(index_t layers) : ranges_(std::size_t(layers)), channels_(std::size_t(layers)) {}
  // A point's tensor of one forward pass (layer −1: the embeddings LN's output).
  void operator()(index_t layer, int point, qtx::matrix_view<const float> t) {
    if (layer < 0) {
      embeddings_.observe(t);
      embeddings_channels_.observe(t);
      return;
    }
    ranges_[std::size_t(layer)][std::size_t(point)].observe(t);
    channels_[std::size_t(layer)][std::size_t(point)].observe(t);
  }
  calibration result() const {
    calibration cal;
    cal.embeddings_ln = embeddings_.params<uint8_t>();
    cal.embeddings_channels = embeddings_channels_.range();
    for (std::size_t i = 0; i < ranges_.size(); ++i) {
      cal.layers.emplace_back();
      cal.channels.emplace_back();
      for (std::size_t p = 0; p < points; ++p) {
        cal.layers[i][p] = ranges_[i][p].params<uint8_t>();
        if (!channels_[i][p].empty()) cal.channels[i][p] = channels_[i][p].range();
      }
    }
    return cal;
  }

 private:
  std::vector<std::array<qtx::running_minmax_observer, points>> ranges_;
  std::vector<std::array<qtx::channel_minmax_observer, points>> channels_;
  qtx::running_minmax_observer embeddings_;
  qtx::channel_minmax_observer embeddings_channels_;
};

// The model's point number of each qtx::nn::layer_point; the layer input is the previous LN output.
inline const demo::point_map layer_points = {-1,      attention_ln,       q,      k,          v,           context,
                                              attention_residual, ffn_ln, ffn_hidden, ffn_residual};

template <class Arch = qtx::cpu::native>
class model {
 public:
  // Called with (layer, point, tensor) at every quantization point of the FP32 forward; layer −1,
  // point attention_ln is the embeddings LN output.
  using observer = demo::model_observer;

  explicit model(const std::filesystem::path& dir)
      : cfg_(read_config(dir / "config.json")), w_("bert", dir / "model.safetensors") {
    word_ = w_.matrix("embeddings.word_embeddings.weight", {cfg_.vocab, "vocab_size"}, H());
    position_ = w_.matrix("embeddings.position_embeddings.weight", {cfg_.max_positions, "max_position_embeddings"}, H());
    token_type_ = w_.matrix("embeddings.token_type_embeddings.weight", {cfg_.type_vocab, "type_vocab_size"}, H());
    embeddings_ln_ = layer_norm("embeddings.LayerNorm");
    for (index_t i = 0; i < cfg_.layers; ++i) fp32_.emplace_back(layer_weights(i), layer_options(i));
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

  using ids_view = bert::ids_view;

  // Hidden states (T, hidden) of the last layer for one sequence of token ids.
  void forward(ids_view ids, qtx::aligned_buffer<float>& out, const observer* obs = nullptr) const {
    forward_packed(std::span(&ids, 1), out, obs);
  }
  // A batch of sequences in one pass (qtx::nn::packed_sequences: no padding, each sequence attends
  // to itself only): their hidden states packed along the rows, (ΣTᵢ, hidden), in batch order.
  void forward(std::span<const ids_view> batch, qtx::aligned_buffer<float>& out, const observer* obs = nullptr) const {
    forward_packed(batch, out, obs);
  }

  // Builds the W8A8 layers from calibrated activation ranges. The options (qtx::nn::
  // quantized_layer_options) choose weight bits (7: the AVX2 backend's exact vpmaddubsw kernel),
  // how each GEMM input is quantized (static or per call) and whether the residual stream is rounded.
  void quantize(const calibration& cal, qtx::nn::quantized_layer_options options = {}) {
    qtx::check(index_t(cal.layers.size()) == cfg_.layers, "bert: quantize: calibration has ", cal.layers.size(),
               " layers, the model ", cfg_.layers);
    std::vector<qtx::nn::quantized_encoder_layer<Arch>> layers;
    for (index_t i = 0; i < cfg_.layers; ++i) {
      auto c = demo::layer_calibration_from(cal.layers[i], layer_points);
      c.set(qtx::nn::layer_point::input, i == 0 ? cal.embeddings_ln : cal.layers[i - 1][ffn_ln]);
      if (!cal.channels.empty()) {
        for (int p = 0; p < qtx::nn::layer_points; ++p)
          if (const int point = layer_points[std::size_t(p)]; point >= 0)
            c.channels[std::size_t(p)] = cal.channels[std::size_t(i)][std::size_t(point)];
        c.channels[std::size_t(qtx::nn::layer_point::input)] =
            i == 0 ? cal.embeddings_channels : cal.channels[std::size_t(i - 1)][ffn_ln];
      }
      layers.emplace_back(fp32_[i], c, options);
    }
    options_ = options;
    w8a8_ = std::move(layers);
    cal_ = cal;
    quantized_ = true;
  }

  // The options the W8A8 layers were made with.
  const qtx::nn::quantized_layer_options& w8a8_options() const { return options_; }

  void forward_w8a8(ids_view ids, qtx::aligned_buffer<float>& out) const { forward_w8a8_packed(std::span(&ids, 1), out); }
  // forward() of a batch, W8A8.
  void forward_w8a8(std::span<const ids_view> batch, qtx::aligned_buffer<float>& out) const {
    forward_w8a8_packed(batch, out);
  }

 private:
  // The W8A8 layers' workspace and the uint8 residual stream between them.
  struct w8a8_workspace {
    qtx::nn::encoder_workspace<uint8_t> layers;
    qtx::nn::row_buffer<uint8_t> x_q;
    w8a8_workspace(const config& c, index_t tokens)
        : layers(tokens, c.hidden, c.intermediate, c.heads), x_q(tokens, c.hidden) {}
    index_t max_tokens() const { return layers.max_tokens(); }
  };
  // Workspaces hold one sequence of max_positions tokens, or a whole batch.
  index_t workspace_tokens(index_t tokens) const { return std::max(tokens, cfg_.max_positions); }

  // The lengths of a batch's sequences (empty for a single sequence: qtx::nn::packed_sequences'
  // default) and their total.
  struct batch_shape {
    std::vector<index_t> lengths;
    index_t tokens = 0;
  };
  // The embeddings of every sequence of the batch, packed along the rows of out.
  batch_shape embed_batch(std::span<const ids_view> batch, qtx::aligned_buffer<float>& out) const {
    qtx::check(!batch.empty(), "bert: forward of an empty batch");
    std::vector<index_t> lengths;
    index_t total = 0;
    for (const auto& ids : batch) total += index_t(ids.size());
    out.reserve(total * cfg_.hidden);
    index_t first = 0;
    for (const auto& ids : batch) {
      embed(ids, out.data() + first * cfg_.hidden);
      first += index_t(ids.size());
      if (batch.size() > 1) lengths.push_back(index_t(ids.size()));
    }
    return {std::move(lengths), total};
  }

  void forward_packed(std::span<const ids_view> batch, qtx::aligned_buffer<float>& out, const observer* obs) const {
    const batch_shape shape = embed_batch(batch, out);
    const index_t T = shape.tokens;
    const qtx::nn::packed_sequences sequences{shape.lengths};
    const auto x = qtx::make_view(out.data(), T, cfg_.hidden);
    embeddings_ln_.forward(x, x);
    if (obs) (*obs)(-1, attention_ln, x);
    fp32_ws_.use(
        T,
        [&](index_t tokens) {
          return qtx::nn::encoder_workspace<float>(workspace_tokens(tokens), cfg_.hidden, cfg_.intermediate, cfg_.heads);
        },
        [&](auto& ws) {
          for (index_t i = 0; i < cfg_.layers; ++i) {
            auto report = demo::point_reporter::make(obs, i, layer_points);
            fp32_[i].forward(x, sequences, ws, report ? &*report : nullptr);
          }
        });
  }

  void forward_w8a8_packed(std::span<const ids_view> batch, qtx::aligned_buffer<float>& out) const {
    qtx::check(quantized_, "bert: forward_w8a8 before quantize()");
    const batch_shape shape = embed_batch(batch, out);
    const index_t T = shape.tokens;
    const qtx::nn::packed_sequences sequences{shape.lengths};
    const auto x = qtx::make_view(out.data(), T, cfg_.hidden);
    w8a8_ws_.use(
        T, [&](index_t tokens) { return w8a8_workspace(cfg_, workspace_tokens(tokens)); },
        [&](w8a8_workspace& ws) {
          // The paper's W8A8: the LN output → uint8 is the residual stream (its dequantized value feeds
          // the next add), passed from layer to layer. Otherwise the stream stays float and each layer
          // quantizes its input as its options say.
          if (options_.round_residuals && !qtx::is_dynamic(options_.attention_input)) {
            const auto xq = ws.x_q.rows(T, "bert::forward_w8a8", "x_q");
            qtx::nn::layer_norm_to_grid(embeddings_ln_, x, xq, x, cal_.embeddings_ln);
            for (const auto& l : w8a8_) l.forward(x, xq, sequences, ws.layers);
          } else {
            embeddings_ln_.forward(x, x);
            for (const auto& l : w8a8_) l.forward(x, sequences, ws.layers);
          }
        });
  }

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

  qtx::nn::layer_norm<Arch> layer_norm(const std::string& name) {
    return {w_.vector(name + ".weight", H()), w_.vector(name + ".bias", H()), cfg_.ln_eps};
  }

  qtx::nn::layer_norm_weights norm_weights(const std::string& name) {
    return {w_.vector(name + ".weight", H()), w_.vector(name + ".bias", H())};
  }

  qtx::nn::encoder_layer_weights layer_weights(index_t i) {
    const std::string p = prefix(i);
    return {demo::load_attention_weights(w_, p + "attention.", {"self.query", "self.key", "self.value", "output.dense"},
                                         H()),
            norm_weights(p + "attention.output.LayerNorm"),
            norm_weights(p + "output.LayerNorm"),
            {w_.matrix(p + "intermediate.dense.weight", I(), H()), w_.vector(p + "intermediate.dense.bias", I()),
             w_.matrix(p + "output.dense.weight", H(), I()), w_.vector(p + "output.dense.bias", H())}};
  }

  qtx::nn::encoder_layer_options layer_options(index_t i) {
    return {qtx::nn::norm_placement::post_ln,
            demo::attention_options_for(cfg_, cfg_.heads, cfg_.hidden, false, w_, prefix(i) + "attention.self.gate."),
            qtx::nn::activation::gelu_erf, cfg_.ln_eps};
  }

  // Word + position + token-type embeddings of one sequence into dst (T × hidden).
  void embed(ids_view ids, float* dst) const {
    const index_t T = index_t(ids.size()), H = cfg_.hidden;
    qtx::check(T > 0 && T <= cfg_.max_positions, "bert: sequence of ", T, " tokens, the model takes 1..",
               cfg_.max_positions);
    for (index_t t = 0; t < T; ++t) {
      qtx::check(ids[t] >= 0 && ids[t] < cfg_.vocab, "bert: token id ", ids[t], " outside the vocabulary of ",
                 cfg_.vocab);
      for (index_t c = 0; c < H; ++c)
        dst[t * H + c] = word_(ids[t], c) + position_(t, c) + token_type_(0, c);
    }
  }

  config cfg_;
  demo::weight_store w_;
  matrix_view<const float> word_, position_, token_type_;
  qtx::nn::layer_norm<Arch> embeddings_ln_;
  std::vector<qtx::nn::encoder_layer<Arch>> fp32_;
  std::vector<qtx::nn::quantized_encoder_layer<Arch>> w8a8_;
  qtx::nn::shared_workspace<qtx::nn::encoder_workspace<float>> fp32_ws_;
  qtx::nn::shared_workspace<w8a8_workspace> w8a8_ws_;
  calibration cal_;
  bool quantized_ = false;
  qtx::nn::quantized_layer_options options_;
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


// A batch for the batched forward passes: the sequences' views and their indices in the list.
struct sequence_batch {
  std::vector<std::size_t> index;
  std::vector<ids_view> ids;
};

// `sequences` in batches of `size`, sorted by length when size > 1 (similar lengths together, as
// a serving system buckets them), each batch in ascending length.
inline std::vector<sequence_batch> length_sorted_batches(const std::vector<std::vector<qtx::io::token_id>>& sequences,
                                                         std::size_t size) {
  std::vector<std::size_t> order(sequences.size());
  std::iota(order.begin(), order.end(), std::size_t(0));
  if (size > 1)
    std::stable_sort(order.begin(), order.end(),
                     [&](std::size_t a, std::size_t b) { return sequences[a].size() < sequences[b].size(); });
  std::vector<sequence_batch> batches;
  for (std::size_t first = 0; first < order.size(); first += size) {
    sequence_batch& b = batches.emplace_back();
    for (std::size_t i = first; i < std::min(first + size, order.size()); ++i) {
      b.index.push_back(order[i]);
      b.ids.emplace_back(sequences[order[i]]);
    }
  }
  return batches;
}

// The sentence embedding of every sequence of a batch from its packed hidden states (ΣTᵢ, H).
inline std::vector<std::vector<float>> mean_pool_normalize(const float* hidden, std::span<const ids_view> batch,
                                                           index_t H) {
  std::vector<std::vector<float>> embeddings;
  index_t row = 0;
  for (const auto& ids : batch) {
    embeddings.push_back(mean_pool_normalize(hidden + row * H, index_t(ids.size()), H));
    row += index_t(ids.size());
  }
  return embeddings;
}

}  // namespace bert

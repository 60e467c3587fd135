#pragma once
// A Vision Transformer classifier (pre-LN encoder, Hugging Face ViTForImageClassification names)
// built from qtx::nn modules, in FP32 and W8A8:
//
//   x₀ = [CLS; patches(img) W_pᵀ + b_p] + E_pos        patches: non-overlapping p×p, flattened (c, y, x)
//   y  = x + attention(LN₁(x))        x' = y + FC₂(gelu(FC₁(LN₂(y))))        logits = LN_f(x_L)[CLS] W_cᵀ + b_c
//
// The patch embedding is the convolution with stride = kernel = p written as a GEMM over flattened
// patches. An optional LayerNorm after it (qtx_patch_embedding_ln) is left out for vanilla models,
// as in the paper. Clipped softmax (qtx_softmax_gamma/zeta) and the gate (qtx_gate) come from the config.
//
// W8A8 quantization points (uint8 asymmetric activations, int8 symmetric per-channel weights): the
// patch pixels (input of the patch GEMM), the embedded tokens, the LN outputs (inputs of Q/K/V and
// FC₁), Q, K, V, the softmax output, the attention context, the GELU output (input of FC₂) and both
// residual sums, which are rounded to their uint8 grid (their dequantized value is the stream). The
// gate, LN statistics, softmax/GELU internals, the final LN and the classifier stay float, as in the paper.
#include "../bert/bert.hpp"  // weight_store
#include "../common/w8a8.hpp"

#include <qtx/nn/attention.hpp>
#include <qtx/nn/layer_norm.hpp>
#include <qtx/nn/linear.hpp>
#include <qtx/quant/quantize.hpp>

#include <array>
#include <vector>

namespace vit {

using qtx::index_t;
using qtx::matrix_view;

struct config : demo::attention_variant {
  index_t hidden = 0, layers = 0, heads = 0, intermediate = 0, image_size = 0, patch_size = 0, channels = 1;
  float ln_eps = 1e-12f;
  bool patch_embedding_ln = false;
  std::vector<float> image_mean, image_std;  // per channel, applied to pixel/255

  index_t patches_per_side() const { return image_size / patch_size; }
  index_t patches() const { return patches_per_side() * patches_per_side(); }
  index_t tokens() const { return patches() + 1; }
  index_t patch_features() const { return channels * patch_size * patch_size; }
};

inline config read_config(const std::filesystem::path& path) {
  std::ifstream in(path);
  qtx::check(in.good(), "vit: cannot open config '", path.string(), "'");
  const auto j = nlohmann::json::parse(in);
  config c;
  c.hidden = j.at("hidden_size");
  c.layers = j.at("num_hidden_layers");
  c.heads = j.at("num_attention_heads");
  c.intermediate = j.at("intermediate_size");
  c.image_size = j.at("image_size");
  c.patch_size = j.at("patch_size");
  c.channels = j.value("num_channels", index_t(1));
  c.ln_eps = j.value("layer_norm_eps", 1e-12f);
  demo::read_attention_variant(j, c);
  c.patch_embedding_ln = j.value("qtx_patch_embedding_ln", false);
  c.image_mean = j.value("qtx_image_mean", std::vector<float>(std::size_t(c.channels), 0.0f));
  c.image_std = j.value("qtx_image_std", std::vector<float>(std::size_t(c.channels), 1.0f));
  qtx::check(c.hidden > 0 && c.heads > 0 && c.hidden % c.heads == 0, "vit: hidden_size (", c.hidden,
             ") must be a positive multiple of num_attention_heads (", c.heads, ")");
  qtx::check(c.patch_size > 0 && c.image_size > 0 && c.image_size % c.patch_size == 0, "vit: image_size (",
             c.image_size, ") must be a positive multiple of patch_size (", c.patch_size, ")");
  qtx::check(c.channels > 0 && index_t(c.image_mean.size()) == c.channels && index_t(c.image_std.size()) == c.channels,
             "vit: qtx_image_mean / qtx_image_std need one value per channel (", c.channels, ")");
  for (float s : c.image_std) qtx::check(s > 0.0f, "vit: qtx_image_std values must be positive, got ", s);
  return c;
}

// Per-layer quantization points, in forward order.
enum point : int { attention_ln, q, k, v, context, attention_residual, ffn_ln, ffn_hidden, ffn_residual, points };
inline const char* point_name(int p) {
  static const char* names[] = {"attention_ln", "q", "k", "v", "context", "attention_residual",
                                "ffn_ln", "ffn_hidden", "ffn_residual"};
  return names[p];
}

struct calibration {
  qtx::quant_params pixels, embeddings;
  std::vector<std::array<qtx::quant_params, points>> layers;
};

// One image: channels × image_size × image_size bytes, row-major per channel.
using image = std::span<const uint8_t>;

template <class Arch = qtx::cpu::native>
class model {
 public:
  // Called with (layer, point, tensor) at every quantization point of the FP32 forward; layer −1
  // with point 0 = pixels (the patch matrix), 1 = embedded tokens.
  using observer = std::function<void(index_t, int, matrix_view<const float>)>;
  static constexpr int pixels_point = 0, embeddings_point = 1;

  explicit model(const std::filesystem::path& dir) : cfg_(read_config(dir / "config.json")), w_(dir / "model.safetensors") {
    const index_t H = cfg_.hidden;
    patch_weight_ = tensor("vit.embeddings.patch_embeddings.projection.weight", H * cfg_.patch_features());
    patch_ = {qtx::make_view(patch_weight_.data(), H, cfg_.patch_features()),
              w_.vector("vit.embeddings.patch_embeddings.projection.bias")};
    cls_ = tensor("vit.embeddings.cls_token", H);
    positions_ = tensor("vit.embeddings.position_embeddings", cfg_.tokens() * H);
    if (cfg_.patch_embedding_ln) patch_ln_ = norm("vit.embeddings.patch_layernorm");
    for (index_t i = 0; i < cfg_.layers; ++i)
      fp32_.push_back({{attention_weights(i), attention_options(i)}, norm(prefix(i) + "layernorm_before"),
                       norm(prefix(i) + "layernorm_after"), linear(i, "intermediate.dense"), linear(i, "output.dense")});
    final_ln_ = norm("vit.layernorm");
    classifier_ = {w_.matrix("classifier.weight"), w_.vector("classifier.bias")};
    qtx::check(classifier_.in_features() == H, "vit: classifier takes ", classifier_.in_features(),
               " features, expected hidden_size ", H);
  }

  const config& cfg() const { return cfg_; }
  index_t classes() const { return classifier_.out_features(); }

  // Class logits of one image.
  std::vector<float> forward(image img, const observer* obs = nullptr) const {
    const index_t T = cfg_.tokens(), H = cfg_.hidden;
    qtx::aligned_buffer<float> pb, xb(T * H), nb(T * H), yb(T * H), hb(T * cfg_.intermediate);
    const auto patches = patch_matrix(img, pb);
    if (obs) (*obs)(-1, pixels_point, patches);
    auto x = qtx::make_view(xb.data(), T, H), n = qtx::make_view(nb.data(), T, H), y = qtx::make_view(yb.data(), T, H);
    auto h = qtx::make_view(hb.data(), T, cfg_.intermediate);
    patch_.forward(patches, x.block(1, 0, T - 1, H));
    finish_embedding(x);
    if (obs) (*obs)(-1, embeddings_point, x);
    for (index_t i = 0; i < cfg_.layers; ++i) {
      const fp32_layer& l = fp32_[i];
      typename qtx::nn::multi_head_attention<Arch>::taps taps;
      if (obs)
        taps.observe = [&](const char* name, matrix_view<const float> t) {
          const std::string nm = name;
          (*obs)(i, nm == "q" ? q : nm == "k" ? k : nm == "v" ? v : context, t);
        };
      l.ln_before.forward(x, n);
      if (obs) (*obs)(i, attention_ln, n);
      l.attention.forward(n, y, {}, x, nullptr, obs ? &taps : nullptr);
      if (obs) (*obs)(i, attention_residual, y);
      l.ln_after.forward(y, n);
      if (obs) (*obs)(i, ffn_ln, n);
      l.fc1.forward(n, h, qtx::nn::activation::gelu_erf);
      if (obs) (*obs)(i, ffn_hidden, h);
      l.fc2.forward(h, x, qtx::nn::activation::none, y);
      if (obs) (*obs)(i, ffn_residual, x);
    }
    return head(x, n);
  }

  void quantize(const calibration& cal, bool per_channel = true) {
    cal_ = cal;
    w8a8_.clear();
    patch_q_ = {qtx::make_view(patch_weight_.data(), cfg_.hidden, cfg_.patch_features()),
                w_.vector("vit.embeddings.patch_embeddings.projection.bias"), cal.pixels, per_channel};
    for (index_t i = 0; i < cfg_.layers; ++i) {
      const auto& c = cal.layers[i];
      w8a8_.push_back({{attention_weights(i), attention_options(i),
                        qtx::nn::attention_calibration{c[attention_ln], c[q], c[k], c[v], c[context]}, per_channel},
                       {w_.matrix(prefix(i) + "intermediate.dense.weight"), w_.vector(prefix(i) + "intermediate.dense.bias"),
                        c[ffn_ln], per_channel},
                       {w_.matrix(prefix(i) + "output.dense.weight"), w_.vector(prefix(i) + "output.dense.bias"),
                        c[ffn_hidden], per_channel}});
    }
  }

  std::vector<float> forward_w8a8(image img) const {
    qtx::check(!w8a8_.empty() || cfg_.layers == 0, "vit: forward_w8a8 before quantize()");
    const index_t T = cfg_.tokens(), H = cfg_.hidden;
    qtx::aligned_buffer<float> pb, xb(T * H), nb(T * H), yb(T * H);
    qtx::aligned_buffer<uint8_t> pq, nq(T * H), hq(T * cfg_.intermediate), scratch;
    const auto patches = patch_matrix(img, pb);
    pq.reset(patches.rows * patches.cols);
    const auto p8 = qtx::make_view(pq.data(), patches.rows, patches.cols);
    qtx::ops::quantize(Arch{}, matrix_view<const float>(patches), p8, cal_.pixels);
    auto x = qtx::make_view(xb.data(), T, H), n = qtx::make_view(nb.data(), T, H), y = qtx::make_view(yb.data(), T, H);
    auto n8 = qtx::make_view(nq.data(), T, H);
    auto h8 = qtx::make_view(hq.data(), T, cfg_.intermediate);
    patch_q_.forward(p8, x.block(1, 0, T - 1, H));
    finish_embedding(x);
    demo::round_to_grid(Arch{}, x, cal_.embeddings, scratch);
    for (index_t i = 0; i < cfg_.layers; ++i) {
      const auto& c = cal_.layers[i];
      demo::layer_norm_u8(fp32_[i].ln_before, x, n8, n, c[attention_ln]);
      w8a8_[i].attention.forward(n8, n, y, {}, x);
      demo::round_to_grid(Arch{}, y, c[attention_residual], scratch);
      demo::layer_norm_u8(fp32_[i].ln_after, y, n8, n, c[ffn_ln]);
      w8a8_[i].fc1.forward(n8, h8, c[ffn_hidden], qtx::nn::activation::gelu_erf);
      w8a8_[i].fc2.forward(h8, x, qtx::nn::activation::none, y);
      demo::round_to_grid(Arch{}, x, c[ffn_residual], scratch);
    }
    return head(x, n);
  }

 private:
  struct fp32_layer {
    qtx::nn::multi_head_attention<Arch> attention;
    qtx::nn::layer_norm<Arch> ln_before, ln_after;
    qtx::nn::linear<Arch> fc1, fc2;
  };
  struct w8a8_layer {
    qtx::nn::quantized_multi_head_attention<Arch> attention;
    qtx::nn::qlinear<Arch> fc1, fc2;
  };
  static std::string prefix(index_t i) { return "vit.encoder.layer." + std::to_string(i) + "."; }

  // A whole tensor as float, checked to hold `count` values (cls token, positions, conv kernel).
  qtx::aligned_buffer<float> tensor(const std::string& name, index_t count) {
    const auto s = w_.vector(name);
    qtx::check(index_t(s.size()) == count, "vit: tensor '", name, "' has ", s.size(), " values, expected ", count);
    qtx::aligned_buffer<float> b(count);
    std::copy(s.begin(), s.end(), b.data());
    return b;
  }
  qtx::nn::layer_norm<Arch> norm(const std::string& n) {
    return {w_.vector(n + ".weight"), w_.vector(n + ".bias"), cfg_.ln_eps};
  }
  qtx::nn::linear<Arch> linear(index_t i, const std::string& n) {
    return {w_.matrix(prefix(i) + n + ".weight"), w_.vector(prefix(i) + n + ".bias")};
  }
  qtx::nn::attention_weights attention_weights(index_t i) {
    const std::string p = prefix(i) + "attention.";
    return {w_.matrix(p + "attention.query.weight"), w_.matrix(p + "attention.key.weight"),
            w_.matrix(p + "attention.value.weight"), w_.matrix(p + "output.dense.weight"),
            w_.vector(p + "attention.query.bias"), w_.vector(p + "attention.key.bias"),
            w_.vector(p + "attention.value.bias"), w_.vector(p + "output.dense.bias")};
  }
  qtx::nn::attention_options attention_options(index_t i) {
    const std::string p = prefix(i) + "attention.attention.gate.";
    return demo::attention_options_for(cfg_, cfg_.heads, cfg_.hidden, false, "vit",
                                       [&](const std::string& n) { return w_.vector(p + n); });
  }

  // (patches, C·p·p): row = patch in raster order, columns (c, y, x) like the conv kernel's layout.
  matrix_view<const float> patch_matrix(image img, qtx::aligned_buffer<float>& buf) const {
    const index_t S = cfg_.image_size, P = cfg_.patch_size, G = cfg_.patches_per_side(), C = cfg_.channels;
    qtx::check(index_t(img.size()) == C * S * S, "vit: image has ", img.size(), " bytes, expected ", C * S * S);
    constexpr float max_pixel = 255.0f;
    buf.reset(cfg_.patches() * cfg_.patch_features());
    const auto m = qtx::make_view(buf.data(), cfg_.patches(), cfg_.patch_features());
    for (index_t gy = 0; gy < G; ++gy)
      for (index_t gx = 0; gx < G; ++gx)
        for (index_t c = 0; c < C; ++c)
          for (index_t y = 0; y < P; ++y)
            for (index_t x = 0; x < P; ++x) {
              const float pixel = img[(c * S + gy * P + y) * S + gx * P + x] / max_pixel;
              m(gy * G + gx, (c * P + y) * P + x) = (pixel - cfg_.image_mean[c]) / cfg_.image_std[c];
            }
    return m;
  }

  // Optional patch LN, then [CLS] in row 0 and the position embeddings.
  void finish_embedding(matrix_view<float> x) const {
    const index_t T = x.rows, H = x.cols;
    if (patch_ln_) patch_ln_->forward(x.block(1, 0, T - 1, H), x.block(1, 0, T - 1, H));
    for (index_t c = 0; c < H; ++c) x(0, c) = cls_[c];
    for (index_t t = 0; t < T; ++t)
      for (index_t c = 0; c < H; ++c) x(t, c) += positions_[t * H + c];
  }

  // Final LN (float) and the classifier on the [CLS] token.
  std::vector<float> head(matrix_view<const float> x, matrix_view<float> n) const {
    final_ln_.forward(x.block(0, 0, 1, x.cols), n.block(0, 0, 1, x.cols));
    std::vector<float> logits(static_cast<std::size_t>(classes()));
    classifier_.forward(n.block(0, 0, 1, x.cols), qtx::make_view(logits.data(), 1, classes()));
    return logits;
  }

  config cfg_;
  bert::weight_store w_;
  qtx::aligned_buffer<float> patch_weight_, cls_, positions_;
  qtx::nn::linear<Arch> patch_;
  qtx::nn::qlinear<Arch> patch_q_;
  std::optional<qtx::nn::layer_norm<Arch>> patch_ln_;
  std::vector<fp32_layer> fp32_;
  std::vector<w8a8_layer> w8a8_;
  qtx::nn::layer_norm<Arch> final_ln_;
  qtx::nn::linear<Arch> classifier_;
  calibration cal_;
};

inline index_t argmax(const std::vector<float>& v) {
  return index_t(std::max_element(v.begin(), v.end()) - v.begin());
}

}  // namespace vit

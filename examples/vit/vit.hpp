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
#include "../common/attention_variant.hpp"
#include "../common/config.hpp"
#include "../common/w8a8.hpp"
#include "../common/weights.hpp"

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
  index_t labels = 0;  // num_labels; 0 when the config does not state it (the classifier's rows count)
  float ln_eps = 1e-12f;
  bool patch_embedding_ln = false;
  std::vector<float> image_mean, image_std;  // per channel, applied to pixel/255

  index_t patches_per_side() const { return image_size / patch_size; }
  index_t patches() const { return patches_per_side() * patches_per_side(); }
  index_t tokens() const { return patches() + 1; }
  index_t patch_features() const { return channels * patch_size * patch_size; }
};

inline config parse_config(const demo::config_reader& r) {
  config c;
  c.hidden = r.extent("hidden_size");
  c.layers = r.extent("num_hidden_layers", 0);
  c.heads = demo::read_heads(r, c.hidden);
  c.intermediate = r.extent("intermediate_size");
  c.image_size = r.extent("image_size");
  c.patch_size = r.extent("patch_size");
  r.check(c.image_size % c.patch_size == 0, "image_size (", c.image_size, ") is not a multiple of patch_size (",
          c.patch_size, ")");
  c.channels = r.extent_or("num_channels", c.channels);
  c.labels = r.extent_or("num_labels", 0);
  c.ln_eps = r.real_or("layer_norm_eps", c.ln_eps);
  r.check(c.ln_eps > 0.0f, "layer_norm_eps (", c.ln_eps, ") must be positive as float");
  demo::read_attention_variant(r, c);
  c.patch_embedding_ln = r.flag_or("qtx_patch_embedding_ln", false);
  c.image_mean = r.reals_or("qtx_image_mean", std::vector<float>(std::size_t(c.channels), 0.0f));
  c.image_std = r.reals_or("qtx_image_std", std::vector<float>(std::size_t(c.channels), 1.0f));
  r.check(index_t(c.image_mean.size()) == c.channels && index_t(c.image_std.size()) == c.channels,
          "qtx_image_mean and qtx_image_std have ", c.image_mean.size(), " and ", c.image_std.size(),
          " values, num_channels is ", c.channels);
  for (float s : c.image_std) r.check(s > 0.0f, "qtx_image_std values must be positive, found ", s);
  return c;
}

inline config read_config(const std::filesystem::path& path) {
  return parse_config(demo::config_reader::from_file("vit", path));
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

  explicit model(const std::filesystem::path& dir)
      : cfg_(read_config(dir / "config.json")), w_("vit", dir / "model.safetensors") {
    const demo::dim C{cfg_.channels, "num_channels"}, P{cfg_.patch_size, "patch_size"},
        T{cfg_.tokens(), "(image_size / patch_size)^2 + 1"}, one{1, "1"};
    const auto kernel = w_.tensor("vit.embeddings.patch_embeddings.projection.weight", {H(), C, P, P});
    patch_weight_ = copy(kernel);
    patch_ = {qtx::make_view(patch_weight_.data(), cfg_.hidden, cfg_.patch_features()), patch_bias()};
    cls_ = copy(w_.tensor("vit.embeddings.cls_token", {one, one, H()}));
    positions_ = copy(w_.tensor("vit.embeddings.position_embeddings", {one, T, H()}));
    if (cfg_.patch_embedding_ln) patch_ln_ = norm("vit.embeddings.patch_layernorm");
    for (index_t i = 0; i < cfg_.layers; ++i)
      fp32_.push_back({{attention_weights(i), attention_options(i)}, norm(prefix(i) + "layernorm_before"),
                       norm(prefix(i) + "layernorm_after"), linear(i, "intermediate.dense", I(), H()),
                       linear(i, "output.dense", H(), I())});
    final_ln_ = norm("vit.layernorm");
    const index_t classes = cfg_.labels > 0 ? cfg_.labels : w_.extent("classifier.weight", 0);
    const demo::dim K{classes, cfg_.labels > 0 ? "num_labels" : "classes"};
    qtx::check(classes > 0, "vit: classifier.weight has no rows (classes)");
    classifier_ = {w_.matrix("classifier.weight", K, H()), w_.vector("classifier.bias", K)};
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
    qtx::check(index_t(cal.layers.size()) == cfg_.layers, "vit: quantize: calibration has ", cal.layers.size(),
               " layers, the model ", cfg_.layers);
    qtx::nn::qlinear<Arch> patch{qtx::make_view(patch_weight_.data(), cfg_.hidden, cfg_.patch_features()),
                                 patch_bias(), cal.pixels, per_channel};
    std::vector<w8a8_layer> layers;
    for (index_t i = 0; i < cfg_.layers; ++i) {
      const auto& c = cal.layers[i];
      layers.push_back({{attention_weights(i), attention_options(i),
                        qtx::nn::attention_calibration{c[attention_ln], c[q], c[k], c[v], c[context]}, per_channel},
                       {w_.matrix(prefix(i) + "intermediate.dense.weight", I(), H()),
                        w_.vector(prefix(i) + "intermediate.dense.bias", I()), c[ffn_ln], per_channel},
                       {w_.matrix(prefix(i) + "output.dense.weight", H(), I()),
                        w_.vector(prefix(i) + "output.dense.bias", H()), c[ffn_hidden], per_channel}});
    }
    patch_q_ = std::move(patch);
    w8a8_ = std::move(layers);
    cal_ = cal;
    quantized_ = true;
  }

  std::vector<float> forward_w8a8(image img) const {
    qtx::check(quantized_, "vit: forward_w8a8 before quantize()");
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

  demo::dim H() const { return {cfg_.hidden, "hidden_size"}; }
  demo::dim I() const { return {cfg_.intermediate, "intermediate_size"}; }
  static qtx::aligned_buffer<float> copy(std::span<const float> s) {
    qtx::aligned_buffer<float> b(index_t(s.size()));
    std::copy(s.begin(), s.end(), b.data());
    return b;
  }
  std::span<const float> patch_bias() { return w_.vector("vit.embeddings.patch_embeddings.projection.bias", H()); }
  qtx::nn::layer_norm<Arch> norm(const std::string& n) {
    return {w_.vector(n + ".weight", H()), w_.vector(n + ".bias", H()), cfg_.ln_eps};
  }
  qtx::nn::linear<Arch> linear(index_t i, const std::string& n, demo::dim out, demo::dim in) {
    return {w_.matrix(prefix(i) + n + ".weight", out, in), w_.vector(prefix(i) + n + ".bias", out)};
  }
  qtx::nn::attention_weights attention_weights(index_t i) {
    return demo::load_attention_weights(w_, prefix(i) + "attention.",
                                        {"attention.query", "attention.key", "attention.value", "output.dense"}, H());
  }
  qtx::nn::attention_options attention_options(index_t i) {
    return demo::attention_options_for(cfg_, cfg_.heads, cfg_.hidden, false, w_,
                                       prefix(i) + "attention.attention.gate.");
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
  demo::weight_store w_;
  qtx::aligned_buffer<float> patch_weight_, cls_, positions_;
  qtx::nn::linear<Arch> patch_;
  qtx::nn::qlinear<Arch> patch_q_;
  std::optional<qtx::nn::layer_norm<Arch>> patch_ln_;
  std::vector<fp32_layer> fp32_;
  std::vector<w8a8_layer> w8a8_;
  qtx::nn::layer_norm<Arch> final_ln_;
  qtx::nn::linear<Arch> classifier_;
  calibration cal_;
  bool quantized_ = false;
};

inline index_t argmax(const std::vector<float>& v) {
  return index_t(std::max_element(v.begin(), v.end()) - v.begin());
}

}  // namespace vit

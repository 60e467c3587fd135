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
// W8A8: the layers' quantization points (qtx/nn/encoder_layer.hpp states them), the patch pixels
// (input of the patch GEMM) and the embedded tokens, rounded to their uint8 grid. The final LN and
// the classifier stay float, as in the paper.
#include "../common/attention_variant.hpp"
#include "../common/config.hpp"
#include "../common/layers.hpp"
#include "../common/w8a8.hpp"
#include "../common/weights.hpp"

#include <qtx/nn/encoder_layer.hpp>
#include <qtx/nn/grid.hpp>
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

// The model's point number of each qtx::nn::layer_point (a pre-LN layer has no uint8 input).
inline const demo::point_map layer_points = {-1,      attention_ln, q,      k,          v,           context,
                                              attention_residual, ffn_ln, ffn_hidden, ffn_residual};

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
  using observer = demo::model_observer;
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
    for (index_t i = 0; i < cfg_.layers; ++i) fp32_.emplace_back(layer_weights(i), layer_options(i));
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
    std::vector<float> logits;
    fp32_ws_.use([&] { return fp32_workspace(cfg_); }, [&](fp32_workspace& ws) {
      const auto patches = patch_matrix(img, ws.patches);
      if (obs) (*obs)(-1, pixels_point, patches);
      const auto x = ws.x.rows(T, "vit::forward", "x");
      patch_.forward(patches, x.block(1, 0, T - 1, H));
      finish_embedding(x);
      if (obs) (*obs)(-1, embeddings_point, x);
      for (index_t i = 0; i < cfg_.layers; ++i) {
        auto report = demo::point_reporter::make(obs, i, layer_points);
        fp32_[i].forward(x, ws.layers, report ? &*report : nullptr);
      }
      logits = head(x, ws.layers.normed(T, "vit::forward"));
    });
    return logits;
  }

  void quantize(const calibration& cal, bool per_channel = true) {
    qtx::check(index_t(cal.layers.size()) == cfg_.layers, "vit: quantize: calibration has ", cal.layers.size(),
               " layers, the model ", cfg_.layers);
    qtx::nn::qlinear<Arch> patch{qtx::make_view(patch_weight_.data(), cfg_.hidden, cfg_.patch_features()),
                                 patch_bias(), cal.pixels, per_channel};
    std::vector<qtx::nn::quantized_encoder_layer<Arch>> layers;
    for (index_t i = 0; i < cfg_.layers; ++i)
      layers.emplace_back(fp32_[i], demo::layer_calibration_from(cal.layers[i], layer_points),
                          qtx::nn::quantized_layer_options{per_channel, true});
    patch_q_ = std::move(patch);
    w8a8_ = std::move(layers);
    cal_ = cal;
    quantized_ = true;
  }

  std::vector<float> forward_w8a8(image img) const {
    qtx::check(quantized_, "vit: forward_w8a8 before quantize()");
    const index_t T = cfg_.tokens(), H = cfg_.hidden;
    std::vector<float> logits;
    w8a8_ws_.use([&] { return w8a8_workspace(cfg_); }, [&](w8a8_workspace& ws) {
      const auto patches = patch_matrix(img, ws.patches);
      const auto p8 = ws.patches_q.rows(patches.rows, "vit::forward_w8a8", "patches_q");
      qtx::ops::quantize(Arch{}, matrix_view<const float>(patches), p8, cal_.pixels);
      const auto x = ws.x.rows(T, "vit::forward_w8a8", "x");
      patch_q_.forward(p8, x.block(1, 0, T - 1, H));
      finish_embedding(x);
      qtx::nn::round_to_grid(Arch{}, x, cal_.embeddings, ws.layers.grid(T, "vit::forward_w8a8"));
      for (const auto& l : w8a8_) l.forward(x, ws.layers);
      logits = head(x, ws.layers.normed(T, "vit::forward_w8a8"));
    });
    return logits;
  }

 private:
  // One image's activations: its patch matrix, the token stream and the layers' workspace.
  template <class T>
  struct workspace {
    qtx::nn::row_buffer<float> patches;
    qtx::nn::row_buffer<uint8_t> patches_q;
    qtx::nn::row_buffer<float> x;
    qtx::nn::encoder_workspace<T> layers;
    explicit workspace(const config& c)
        : patches(c.patches(), c.patch_features()), patches_q(std::is_same_v<T, float> ? 0 : c.patches(), c.patch_features()),
          x(c.tokens(), c.hidden), layers(c.tokens(), c.hidden, c.intermediate, c.heads) {}
  };
  using fp32_workspace = workspace<float>;
  using w8a8_workspace = workspace<uint8_t>;

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
  qtx::nn::layer_norm_weights norm_weights(const std::string& n) {
    return {w_.vector(n + ".weight", H()), w_.vector(n + ".bias", H())};
  }
  qtx::nn::encoder_layer_weights layer_weights(index_t i) {
    const std::string p = prefix(i);
    return {demo::load_attention_weights(w_, p + "attention.",
                                         {"attention.query", "attention.key", "attention.value", "output.dense"}, H()),
            norm_weights(p + "layernorm_before"),
            norm_weights(p + "layernorm_after"),
            {w_.matrix(p + "intermediate.dense.weight", I(), H()), w_.vector(p + "intermediate.dense.bias", I()),
             w_.matrix(p + "output.dense.weight", H(), I()), w_.vector(p + "output.dense.bias", H())}};
  }
  qtx::nn::encoder_layer_options layer_options(index_t i) {
    return {qtx::nn::norm_placement::pre_ln,
            demo::attention_options_for(cfg_, cfg_.heads, cfg_.hidden, false, w_, prefix(i) + "attention.attention.gate."),
            qtx::nn::activation::gelu_erf, cfg_.ln_eps};
  }

  // (patches, C·p·p): row = patch in raster order, columns (c, y, x) like the conv kernel's layout.
  matrix_view<const float> patch_matrix(image img, qtx::nn::row_buffer<float>& buf) const {
    const index_t S = cfg_.image_size, P = cfg_.patch_size, G = cfg_.patches_per_side(), C = cfg_.channels;
    qtx::check(index_t(img.size()) == C * S * S, "vit: image has ", img.size(), " bytes, expected ", C * S * S);
    constexpr float max_pixel = 255.0f;
    const auto m = buf.rows(cfg_.patches(), "vit: patch_matrix", "patches");
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
  std::vector<qtx::nn::encoder_layer<Arch>> fp32_;
  std::vector<qtx::nn::quantized_encoder_layer<Arch>> w8a8_;
  qtx::nn::shared_workspace<fp32_workspace> fp32_ws_;
  qtx::nn::shared_workspace<w8a8_workspace> w8a8_ws_;
  qtx::nn::layer_norm<Arch> final_ln_;
  qtx::nn::linear<Arch> classifier_;
  calibration cal_;
  bool quantized_ = false;
};

inline index_t argmax(const std::vector<float>& v) {
  return index_t(std::max_element(v.begin(), v.end()) - v.begin());
}

}  // namespace vit

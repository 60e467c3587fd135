// The ViT classifier of examples/vit on random weights: FP32 forward against a plain double
// reference written here (patch GEMM, [CLS], positions, pre-LN encoder with clipped softmax and
// gate, final LN, classifier), W8A8 against FP32, and argument checking.
#include <catch2/catch.hpp>

#include "random_weights.hpp"
#include "reference_encoder.hpp"
#include "vit/vit.hpp"

#include <qtx/io/safetensors.hpp>
#include <qtx/quant/observers.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>

namespace {
using qtx::index_t;

struct tiny_vit {
  index_t S = 8, P = 4, C = 2, H = 16, layers = 2, heads = 2, inter = 32, classes = 3;
  float gamma = 0.0f;
  bool gated = false, patch_ln = false;
  std::vector<float> mean{0.3f, 0.5f}, stdev{0.25f, 0.4f};
  test_models::random_weights weights{11};
  std::filesystem::path dir;

  index_t G() const { return S / P; }
  index_t T() const { return G() * G() + 1; }

  tiny_vit(const std::string& name, float gamma_, bool gated_, bool patch_ln_)
      : gamma(gamma_), gated(gated_), patch_ln(patch_ln_) {
    auto add = [&](const std::string& n, std::vector<index_t> shape, float stddev, float mean = 0.0f) {
      weights.add(n, std::move(shape), stddev, mean);
    };
    add("vit.embeddings.patch_embeddings.projection.weight", {H, C, P, P}, 0.2f);
    add("vit.embeddings.patch_embeddings.projection.bias", {H}, 0.1f);
    add("vit.embeddings.cls_token", {1, 1, H}, 0.5f);
    add("vit.embeddings.position_embeddings", {1, T(), H}, 0.3f);
    if (patch_ln) {
      add("vit.embeddings.patch_layernorm.weight", {H}, 0.1f, 1.0f);
      add("vit.embeddings.patch_layernorm.bias", {H}, 0.1f);
    }
    for (index_t i = 0; i < layers; ++i) {
      const std::string p = "vit.encoder.layer." + std::to_string(i) + ".";
      for (const char* m : {"attention.attention.query", "attention.attention.key", "attention.attention.value",
                            "attention.output.dense"}) {
        add(p + m + ".weight", {H, H}, 0.3f);
        add(p + m + ".bias", {H}, 0.1f);
      }
      add(p + "intermediate.dense.weight", {inter, H}, 0.25f);
      add(p + "intermediate.dense.bias", {inter}, 0.1f);
      add(p + "output.dense.weight", {H, inter}, 0.2f);
      add(p + "output.dense.bias", {H}, 0.1f);
      for (const char* ln : {"layernorm_before", "layernorm_after"}) {
        add(p + ln + ".weight", {H}, 0.1f, 1.0f);
        add(p + ln + ".bias", {H}, 0.1f);
      }
      if (gated) {
        add(p + "attention.attention.gate.weight", {heads, H / heads}, 0.3f);
        add(p + "attention.attention.gate.bias", {heads}, 0.0f, qtx::logit(0.5f));
      }
    }
    add("vit.layernorm.weight", {H}, 0.1f, 1.0f);
    add("vit.layernorm.bias", {H}, 0.1f);
    add("classifier.weight", {classes, H}, 0.3f);
    add("classifier.bias", {classes}, 0.1f);
    dir = std::filesystem::temp_directory_path() / ("qtx_tiny_vit_" + name);
    weights.write(dir);
    write_config("");
  }

  void write_config(const std::string& extra) const {
    std::ofstream(dir / "config.json") << "{\"hidden_size\": " << H << ", \"num_hidden_layers\": " << layers
                                       << ", \"num_attention_heads\": " << heads << ", \"intermediate_size\": " << inter
                                       << ", \"image_size\": " << S << ", \"patch_size\": " << P
                                       << ", \"num_channels\": " << C << ", \"layer_norm_eps\": 1e-6"
                                       << ", \"qtx_softmax_gamma\": " << gamma << ", \"qtx_gate\": \""
                                       << (gated ? "linear_per_head" : "none") << "\", \"qtx_patch_embedding_ln\": "
                                       << (patch_ln ? "true" : "false") << ", \"qtx_image_mean\": [" << mean[0] << ", "
                                       << mean[1] << "], \"qtx_image_std\": [" << stdev[0] << ", " << stdev[1] << "]"
                                       << extra << "}";
  }

  // Class logits in double, straight from the definitions (conv with stride = kernel = P).
  std::vector<double> reference(const std::vector<uint8_t>& img) const {
    const index_t N = T();
    auto W = [&](const std::string& n) -> const std::vector<float>& { return weights.w.at(n); };
    std::vector<double> x(N * H);
    const auto& kernel = W("vit.embeddings.patch_embeddings.projection.weight");
    for (index_t gy = 0; gy < G(); ++gy)
      for (index_t gx = 0; gx < G(); ++gx)
        for (index_t o = 0; o < H; ++o) {
          double s = W("vit.embeddings.patch_embeddings.projection.bias")[o];
          for (index_t c = 0; c < C; ++c)
            for (index_t y = 0; y < P; ++y)
              for (index_t xx = 0; xx < P; ++xx) {
                const double pixel = (img[(c * S + gy * P + y) * S + gx * P + xx] / 255.0 - mean[c]) / stdev[c];
                s += kernel[((o * C + c) * P + y) * P + xx] * pixel;
              }
          x[(1 + gy * G() + gx) * H + o] = s;
        }
    auto layer_norm = [&](std::vector<double>& v, index_t row0, index_t rows, const std::string& n) {
      for (index_t t = row0; t < row0 + rows; ++t) {
        double mu = 0, var = 0;
        for (index_t c = 0; c < H; ++c) mu += v[t * H + c] / double(H);
        for (index_t c = 0; c < H; ++c) var += (v[t * H + c] - mu) * (v[t * H + c] - mu) / double(H);
        for (index_t c = 0; c < H; ++c)
          v[t * H + c] = (v[t * H + c] - mu) / std::sqrt(var + 1e-6) * W(n + ".weight")[c] + W(n + ".bias")[c];
      }
    };
    if (patch_ln) layer_norm(x, 1, N - 1, "vit.embeddings.patch_layernorm");
    for (index_t c = 0; c < H; ++c) x[c] = W("vit.embeddings.cls_token")[c];
    for (index_t e = 0; e < N * H; ++e) x[e] += W("vit.embeddings.position_embeddings")[e];
    for (index_t i = 0; i < layers; ++i) {
      const std::string p = "vit.encoder.layer." + std::to_string(i) + ".";
      auto l = ::reference::from_named(weights.w,
                                     {p + "attention.attention.query.", p + "attention.attention.key.",
                                      p + "attention.attention.value.", p + "attention.output.dense.",
                                      p + "layernorm_before.", p + "layernorm_after.", p + "intermediate.dense.",
                                      p + "output.dense.", p + "attention.attention.gate."},
                                     H, inter, heads);
      l.gamma = gamma, l.eps = 1e-6f;
      x = ::reference::forward(l, x, N);
    }
    layer_norm(x, 0, 1, "vit.layernorm");
    std::vector<double> logits(classes);
    for (index_t o = 0; o < classes; ++o) {
      double s = W("classifier.bias")[o];
      for (index_t c = 0; c < H; ++c) s += x[c] * W("classifier.weight")[o * H + c];
      logits[o] = s;
    }
    return logits;
  }
};

std::vector<std::vector<uint8_t>> test_images(index_t count, index_t pixels) {
  std::mt19937 rng(5);
  std::uniform_int_distribution<int> byte(0, 255);
  std::vector<std::vector<uint8_t>> images(count, std::vector<uint8_t>(pixels));
  for (auto& img : images)
    for (auto& p : img) p = uint8_t(byte(rng));
  for (auto& p : images[0]) p = 0;  // an all-background image
  return images;
}

// Min-max over all quantization points of the given images (nothing clips: the error is rounding).
vit::calibration calibrate(const vit::model<>& m, const std::vector<std::vector<uint8_t>>& images) {
  std::array<qtx::minmax_observer, 2> model_obs;
  std::vector<std::array<qtx::minmax_observer, vit::points>> obs(m.cfg().layers);
  const vit::model<>::observer record = [&](index_t layer, int point, qtx::matrix_view<const float> t) {
    if (layer < 0) return model_obs[point].observe(t);
    obs[layer][point].observe(t);
  };
  for (const auto& img : images) m.forward(img, &record);
  vit::calibration cal;
  cal.pixels = model_obs[0].params<uint8_t>();
  cal.embeddings = model_obs[1].params<uint8_t>();
  for (auto& layer : obs) {
    cal.layers.emplace_back();
    for (int p = 0; p < vit::points; ++p) cal.layers.back()[p] = layer[p].params<uint8_t>();
  }
  return cal;
}

}  // namespace

TEST_CASE("tiny ViT: FP32 forward equals a double reference; W8A8 tracks FP32", "[models][vit]") {
  struct variant {
    const char* name;
    float gamma;
    bool gated, patch_ln;
  };
  const variant variant_list[] = {{"vanilla", 0.0f, false, false},
                                  {"clipped", -0.05f, false, false},
                                  {"gated", 0.0f, true, false},
                                  {"clipped_gated_patch_ln", -0.05f, true, true}};
  for (const auto& var : variant_list) {
    DYNAMIC_SECTION(var.name) {
      const tiny_vit t(var.name, var.gamma, var.gated, var.patch_ln);
      vit::model<> m(t.dir);
      REQUIRE(m.classes() == t.classes);
      REQUIRE(m.cfg().tokens() == t.T());
      const auto images = test_images(12, t.C * t.S * t.S);
      for (const auto& img : images) {
        const auto got = m.forward(img);
        const auto want = t.reference(img);
        REQUIRE(got.size() == want.size());
        for (std::size_t o = 0; o < want.size(); ++o) {
          INFO("class " << o);
          // float accumulation over ≤ 32-term dot products through 2 layers: a few 1e-5 relative.
          CHECK(got[o] == Approx(want[o]).margin(2e-4).epsilon(2e-4));
        }
      }
      m.quantize(calibrate(m, images));
      double max_err = 0, max_logit = 0;
      for (const auto& img : images) {
        const auto a = m.forward(img), b = m.forward_w8a8(img);
        for (std::size_t o = 0; o < a.size(); ++o) {
          max_err = std::max(max_err, double(std::abs(a[o] - b[o])));
          max_logit = std::max(max_logit, double(std::abs(a[o])));
        }
      }
      INFO("max |FP32 − W8A8| " << max_err << " for logits up to " << max_logit);
      // 8-bit activations at ~10 points per layer on random (outlier-free) weights: the logits move
      // by a few percent of their range, never more than 10 %.
      CHECK(max_err <= 0.1 * max_logit);
    }
  }
}

TEST_CASE("ViT model rejects bad inputs", "[models][vit]") {
  tiny_vit t("bad", 0.0f, false, false);
  vit::model<> m(t.dir);
  const std::vector<uint8_t> short_image(std::size_t(t.C * t.S * t.S - 1), 0);
  CHECK_THROWS_AS(m.forward(short_image), qtx::error);
  const std::vector<uint8_t> ok(std::size_t(t.C * t.S * t.S), 0);
  CHECK_THROWS_AS(m.forward_w8a8(ok), qtx::error);  // not quantized yet

  t.write_config(", \"patch_size\": 3");  // duplicate key: the later value (8 % 3 ≠ 0) wins
  CHECK_THROWS_AS(vit::model<>(t.dir), std::exception);
  t.write_config(", \"num_attention_heads\": 3");  // 16 % 3 ≠ 0
  CHECK_THROWS_AS(vit::model<>(t.dir), std::exception);
  t.write_config(", \"qtx_gate\": \"mlp_per_head\"");
  CHECK_THROWS_AS(vit::model<>(t.dir), std::exception);
  t.write_config(", \"num_channels\": 3");  // mean/std have 2 values, kernel has 2 channels
  CHECK_THROWS_AS(vit::model<>(t.dir), std::exception);
  t.write_config(", \"hidden_size\": 8");  // tensors do not match
  CHECK_THROWS_AS(vit::model<>(t.dir), std::exception);
}

// The encoder layers of qtx/nn (post-LN and pre-LN, every attention variant and activation) against
// the double-precision reference layer (reference_encoder.hpp); their W8A8 forms, calibrated through
// layer_calibrator, against the float layers; and their refusals of bad input.
#include <catch2/catch.hpp>

#include "random_weights.hpp"
#include "reference_encoder.hpp"

#include <qtx/nn/encoder_layer.hpp>
#include <qtx/quant/quantize.hpp>

#include <algorithm>
#include <cmath>
#include <optional>
#include <random>
#include <vector>

using qtx::index_t;
namespace nn = qtx::nn;
using test_models::normal_values;

namespace {

// Random weights of one layer (Xavier-like scales, so activations stay O(1)).
reference::layer random_layer(index_t D, index_t F, index_t H, unsigned seed) {
  std::mt19937 rng(seed);
  reference::layer l;
  l.d_model = D, l.ffn_dim = F, l.heads = H;
  const float s = 1.0f / std::sqrt(float(D));
  for (auto* w : {&l.wq, &l.wk, &l.wv, &l.wo}) *w = normal_values(D * D, s, rng);
  for (auto* b : {&l.bq, &l.bk, &l.bv, &l.bo}) *b = normal_values(D, 0.1f, rng);
  l.ln1_gamma = normal_values(D, 0.1f, rng, 1.0f), l.ln1_beta = normal_values(D, 0.1f, rng);
  l.ln2_gamma = normal_values(D, 0.1f, rng, 1.0f), l.ln2_beta = normal_values(D, 0.1f, rng);
  l.w1 = normal_values(F * D, s, rng), l.b1 = normal_values(F, 0.1f, rng);
  l.w2 = normal_values(D * F, 1.0f / std::sqrt(float(F)), rng), l.b2 = normal_values(D, 0.1f, rng);
  return l;
}

std::optional<qtx::gate_weights> random_gate(int kind, index_t H, index_t dh, unsigned seed) {
  if (kind < 0) return std::nullopt;
  std::mt19937 rng(seed);
  qtx::gate_weights g;
  g.kind = qtx::gate_kind(kind);
  g.n_heads = H, g.d_head = dh;
  switch (g.kind) {
    case qtx::gate_kind::linear_per_head: g.w1 = normal_values(H * dh, 0.5f, rng), g.b1 = normal_values(H, 0.5f, rng); break;
    case qtx::gate_kind::mlp_per_head:
      g.hidden = 3;
      g.w1 = normal_values(H * 3 * dh, 0.5f, rng), g.b1 = normal_values(H * 3, 0.5f, rng);
      g.w2 = normal_values(H * 3, 0.5f, rng), g.b2 = normal_values(H, 0.5f, rng);
      break;
    case qtx::gate_kind::all_heads_linear:
      g.w1 = normal_values(H * H * dh, 0.3f, rng), g.b1 = normal_values(H, 0.5f, rng);
      break;
    case qtx::gate_kind::unconditional: g.b1 = normal_values(H, 1.0f, rng); break;
  }
  return g;
}

nn::activation to_nn(reference::act a) {
  switch (a) {
    case reference::act::gelu_erf: return nn::activation::gelu_erf;
    case reference::act::gelu_tanh: return nn::activation::gelu_tanh;
    case reference::act::relu: return nn::activation::relu;
  }
  return nn::activation::none;
}

qtx::matrix_view<const float> view(const std::vector<float>& v, index_t rows, index_t cols) {
  return qtx::make_view(v.data(), rows, cols);
}

// The library layer over the reference layer's weights (views into `l`, which must outlive it).
nn::encoder_layer<> make_layer(const reference::layer& l) {
  const index_t D = l.d_model, F = l.ffn_dim;
  nn::encoder_layer_weights w{{view(l.wq, D, D), view(l.wk, D, D), view(l.wv, D, D), view(l.wo, D, D), l.bq, l.bk,
                               l.bv, l.bo},
                              {l.ln1_gamma, l.ln1_beta},
                              {l.ln2_gamma, l.ln2_beta},
                              {view(l.w1, F, D), l.b1, view(l.w2, D, F), l.b2}};
  nn::encoder_layer_options o{l.post_ln ? nn::norm_placement::post_ln : nn::norm_placement::pre_ln,
                              nn::attention_options{l.heads, l.gamma, l.zeta, l.causal, l.gate}, to_nn(l.activation),
                              l.eps};
  return {w, o};
}

struct variant {
  bool post_ln;
  int gate;  // −1: none, else a qtx::gate_kind
  float gamma;
  reference::act activation;
  bool causal;
};

std::vector<variant> all_variants() {
  std::vector<variant> v;
  for (bool post : {true, false})
    for (int gate = -1; gate < 4; ++gate)
      v.push_back({post, gate, gate == 1 ? -0.03f : 0.0f, reference::act(std::size_t(gate + 1) % 3), !post && gate == 0});
  v.push_back({true, -1, -0.05f, reference::act::gelu_tanh, false});
  v.push_back({false, 2, -0.02f, reference::act::relu, true});
  return v;
}

reference::layer layer_for(const variant& v, index_t D, index_t F, index_t H, unsigned seed) {
  auto l = random_layer(D, F, H, seed);
  l.post_ln = v.post_ln, l.gamma = v.gamma, l.zeta = v.gamma < 0 ? 1.02f : 1.0f, l.causal = v.causal;
  l.activation = v.activation;
  l.gate = random_gate(v.gate, H, D / H, seed + 1);
  return l;
}

double relative_rms(const std::vector<float>& a, const std::vector<float>& b) {
  double err = 0, norm = 0;
  for (std::size_t i = 0; i < a.size(); ++i) err += (a[i] - b[i]) * double(a[i] - b[i]), norm += double(b[i]) * b[i];
  return std::sqrt(err / norm);
}

}  // namespace

TEST_CASE("encoder_layer equals the double reference: post-LN and pre-LN, every attention variant",
          "[nn][encoder_layer]") {
  const index_t H = 3, D = 24, F = 40;
  unsigned seed = 100;
  for (const variant& v : all_variants()) {
    const auto ref = layer_for(v, D, F, H, ++seed);
    const auto layer = make_layer(ref);
    auto ws = layer.make_workspace(33);
    for (index_t T : {1, 2, 5, 17, 33}) {
      CAPTURE(v.post_ln, v.gate, v.gamma, int(v.activation), v.causal, T);
      std::mt19937 rng(seed * 7 + unsigned(T));
      auto x = normal_values(T * D, 1.0f, rng);
      const auto expected = reference::forward(ref, reference::matrix(x.begin(), x.end()), T);
      layer.forward(qtx::make_view(x.data(), T, D), ws);
      double worst = 0, scale = 0;
      for (std::size_t i = 0; i < x.size(); ++i)
        worst = std::max(worst, std::abs(x[i] - expected[i])), scale = std::max(scale, std::abs(expected[i]));
      CHECK(worst <= 2e-5 * std::max(scale, 1.0));  // float GEMMs of K ≤ 40 and LN: a few ulps of O(1) values
    }
  }
}

TEST_CASE("quantized_encoder_layer from layer_calibrator tracks the float layer", "[nn][encoder_layer][w8a8]") {
  const index_t H = 4, D = 32, F = 64, T = 19;
  unsigned seed = 300;
  for (const variant& v : all_variants()) {
    const auto ref = layer_for(v, D, F, H, ++seed);
    const auto layer = make_layer(ref);
    auto ws = layer.make_workspace(T);
    std::mt19937 rng(seed);
    // Post-LN inputs are LN outputs; pre-LN inputs a residual stream: O(1) either way.
    std::vector<std::vector<float>> batches;
    for (int b = 0; b < 6; ++b) batches.push_back(normal_values(T * D, 1.0f, rng));
    nn::layer_calibrator calibrator;
    for (auto x : batches) layer.forward(qtx::make_view(x.data(), T, D), ws, &calibrator);
    const auto cal = calibrator.result();
    for (bool round : {true, false}) {
      CAPTURE(v.post_ln, v.gate, v.gamma, int(v.activation), v.causal, round);
      nn::quantized_encoder_layer<> q(layer, cal, {true, round});
      auto qws = q.make_workspace(T);
      auto fx = batches[0], qx = batches[0];
      layer.forward(qtx::make_view(fx.data(), T, D), ws);
      if (v.post_ln) {
        std::vector<uint8_t> x_q(qx.size());
        qtx::quantize<uint8_t>(qx, x_q, q.input_params());
        qtx::dequantize<uint8_t>(x_q, qx, q.input_params());
        q.forward(qtx::make_view(qx.data(), T, D), qtx::make_view(x_q.data(), T, D), qws);
        // The output's uint8 form is the next layer's input: it matches its float form.
        std::vector<float> back(qx.size());
        qtx::dequantize<uint8_t>(x_q, back, q.output_params());
        CHECK(back == qx);
      } else {
        q.forward(qtx::make_view(qx.data(), T, D), qws);
      }
      CHECK(relative_rms(qx, fx) < 0.05);  // W8A8 error of one layer on calibrated data
      CHECK(relative_rms(qx, fx) > 0.0);
    }
  }
}

TEST_CASE("encoder layers refuse bad input with a qtx::error naming it", "[nn][encoder_layer][errors]") {
  const index_t H = 2, D = 8, F = 12;
  for (bool post : {true, false}) {
    variant v{post, 0, 0.0f, reference::act::gelu_erf, false};
    auto ref = layer_for(v, D, F, H, 7);
    const auto layer = make_layer(ref);
    std::vector<float> x(5 * D, 0.5f);
    auto ws = layer.make_workspace(4);
    CHECK_THROWS_WITH(layer.forward(qtx::make_view(x.data(), 5, D), ws), Catch::Contains("x has 5 tokens") &&
                                                                           Catch::Contains("encoder_layer::forward"));
    CHECK_THROWS_WITH(layer.forward(qtx::make_view(x.data(), 4, D - 1), ws), Catch::Contains("x has 7 columns"));
    auto other = nn::encoder_workspace<float>(4, D, F + 1, H);
    CHECK_THROWS_WITH(layer.forward(qtx::make_view(x.data(), 4, D), other), Catch::Contains("workspace is for ffn_dim"));

    // Weights whose shapes disagree.
    auto bad = ref;
    bad.ln2_gamma.pop_back(), bad.ln2_beta.pop_back();
    CHECK_THROWS_WITH(make_layer(bad), Catch::Contains("LayerNorms have"));
    bad = ref;
    bad.b1.pop_back();
    CHECK_THROWS_WITH(make_layer(bad), Catch::Contains("bias"));
    {
      nn::encoder_layer_weights w{{view(ref.wq, D, D), view(ref.wk, D, D), view(ref.wv, D, D), view(ref.wo, D, D),
                                   ref.bq, ref.bk, ref.bv, ref.bo},
                                  {ref.ln1_gamma, ref.ln1_beta},
                                  {ref.ln2_gamma, ref.ln2_beta},
                                  {view(ref.w1, F, D), ref.b1, view(ref.w2, D - 2, F), std::span(ref.b2).first(D - 2)}};
      CHECK_THROWS_WITH((nn::encoder_layer<>(w, {})), Catch::Contains("feed_forward: fc1 is"));
    }

    // W8A8 before calibration, with a calibration that lacks a point, and with the wrong entry.
    nn::quantized_encoder_layer<> empty;
    nn::encoder_workspace<uint8_t> qws(4, D, F, H);
    CHECK_THROWS_WITH(empty.forward(qtx::make_view(x.data(), 4, D), qws), Catch::Contains("not calibrated"));
    CHECK_THROWS_WITH((nn::quantized_encoder_layer<>(layer, nn::layer_calibration{})),
                      Catch::Contains(post ? "point 'input'" : "point 'attention_ln'"));
    nn::layer_calibrator calibrator;
    layer.forward(qtx::make_view(x.data(), 4, D), ws, &calibrator);
    const nn::quantized_encoder_layer<> q(layer, calibrator.result());
    std::vector<uint8_t> x_q(4 * D);
    if (post) {
      CHECK_THROWS_WITH(q.forward(qtx::make_view(x.data(), 4, D), qws), Catch::Contains("takes x_q"));
      CHECK_THROWS_WITH(q.forward(qtx::make_view(x.data(), 4, D), qtx::make_view(x_q.data(), 3, D), qws),
                        Catch::Contains("x_q is 3x8"));
      auto small = q.make_workspace(2);
      CHECK_THROWS_WITH(q.forward(qtx::make_view(x.data(), 4, D), qtx::make_view(x_q.data(), 4, D), small),
                        Catch::Contains("the workspace holds 2"));
    } else {
      CHECK_THROWS_WITH(q.forward(qtx::make_view(x.data(), 4, D), qtx::make_view(x_q.data(), 4, D), qws),
                        Catch::Contains("takes no x_q"));
      auto small = q.make_workspace(2);
      CHECK_THROWS_WITH(q.forward(qtx::make_view(x.data(), 4, D), small), Catch::Contains("the workspace holds 2"));
    }
  }
}

TEST_CASE("packed sequences: one batched forward equals the sequences one at a time, bit for bit",
          "[nn][encoder_layer][sequences]") {
  const index_t H = 4, D = 32, F = 48;
  const std::vector<index_t> lengths = {5, 1, 17, 3, 9, 2};
  index_t total = 0;
  for (index_t n : lengths) total += n;
  const nn::packed_sequences packed{lengths};
  unsigned seed = 500;
  for (const variant& v : all_variants()) {
    CAPTURE(v.post_ln, v.gate, v.gamma, int(v.activation), v.causal);
    const auto ref = layer_for(v, D, F, H, ++seed);
    const auto layer = make_layer(ref);
    std::mt19937 rng(seed);
    const auto input = normal_values(total * D, 1.0f, rng);

    // FP32, and the calibration of the W8A8 layer on the same rows.
    auto ws = layer.make_workspace(total);
    nn::layer_calibrator calibrator;
    auto batched = input;
    layer.forward(qtx::make_view(batched.data(), total, D), packed, ws, &calibrator);
    auto one_by_one = input;
    for (index_t first = 0; const index_t n : lengths) {
      layer.forward(qtx::make_view(one_by_one.data() + first * D, n, D), ws);
      first += n;
    }
    CHECK(batched == one_by_one);

    // W8A8: the uint8 residual stream (post-LN) and the float one both match exactly.
    const nn::quantized_encoder_layer<> q(layer, calibrator.result());
    auto qws = q.make_workspace(total);
    auto qx = input, qx_single = input;
    std::vector<uint8_t> x_q(input.size()), x_q_single(input.size());
    if (v.post_ln) {
      qtx::quantize<uint8_t>(qx, x_q, q.input_params());
      qtx::dequantize<uint8_t>(x_q, qx, q.input_params());
      qx_single = qx, x_q_single = x_q;
      q.forward(qtx::make_view(qx.data(), total, D), qtx::make_view(x_q.data(), total, D), packed, qws);
    } else {
      q.forward(qtx::make_view(qx.data(), total, D), packed, qws);
    }
    for (index_t first = 0; const index_t n : lengths) {
      const auto x_rows = qtx::make_view(qx_single.data() + first * D, n, D);
      if (v.post_ln)
        q.forward(x_rows, qtx::make_view(x_q_single.data() + first * D, n, D), qws);
      else
        q.forward(x_rows, qws);
      first += n;
    }
    CHECK(qx == qx_single);
    CHECK(x_q == x_q_single);
  }
}

TEST_CASE("packed sequences: bad lengths, a KV cache or a key mask are refused naming the call",
          "[nn][encoder_layer][sequences][errors]") {
  const index_t H = 2, D = 8, F = 12;
  for (bool post : {true, false}) {
    const auto ref = layer_for({post, -1, 0.0f, reference::act::relu, false}, D, F, H, 11);
    const auto layer = make_layer(ref);
    auto ws = layer.make_workspace(8);
    std::vector<float> x(6 * D, 0.25f);
    const auto xv = qtx::make_view(x.data(), 6, D);
    const std::vector<index_t> zero = {3, 0, 3}, short_sum = {2, 3}, long_sum = {4, 4};
    CHECK_THROWS_WITH(layer.forward(xv, nn::packed_sequences{zero}, ws),
                      Catch::Contains("encoder_layer::forward") && Catch::Contains("sequence length [1] (0)"));
    CHECK_THROWS_WITH(layer.forward(xv, nn::packed_sequences{short_sum}, ws),
                      Catch::Contains("sum to 5, x has 6 rows"));
    CHECK_THROWS_WITH(layer.forward(xv, nn::packed_sequences{long_sum}, ws), Catch::Contains("sum to more than"));
    const std::vector<index_t> two = {3, 3};
    const std::vector<float> mask(6, 0.0f);
    CHECK_THROWS_WITH(layer.forward(xv, ws, nullptr, qtx::make_view(mask.data(), 1, 6), nullptr,
                                    nn::packed_sequences{two}),
                      Catch::Contains("no KV cache and no key mask"));
    nn::kv_cache<float> cache(8, D);
    CHECK_THROWS_WITH(layer.forward(xv, ws, nullptr, {}, &cache, nn::packed_sequences{two}),
                      Catch::Contains("no KV cache"));
    CHECK(cache.length() == 0);  // refused before anything was written
    CHECK(std::all_of(x.begin(), x.end(), [](float e) { return e == 0.25f; }));

    nn::layer_calibrator calibrator;
    layer.forward(xv, ws, &calibrator);
    const nn::quantized_encoder_layer<> q(layer, calibrator.result());
    auto qws = q.make_workspace(8);
    std::vector<uint8_t> x_q(x.size());
    const auto call = [&](const std::vector<index_t>& lengths) {
      if (post)
        q.forward(xv, qtx::make_view(x_q.data(), 6, D), nn::packed_sequences{lengths}, qws);
      else
        q.forward(xv, nn::packed_sequences{lengths}, qws);
    };
    CHECK_THROWS_WITH(call(zero), Catch::Contains("quantized_encoder_layer::forward") &&
                                      Catch::Contains("sequence length [1] (0) must be positive"));
    CHECK_THROWS_WITH(call(short_sum), Catch::Contains("sum to 5, x has 6 rows"));
  }
}

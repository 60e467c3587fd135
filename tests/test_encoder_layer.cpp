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
        // The output's uint8 form is the next layer's input: it matches its float form (which is
        // on that grid when the residual stream is rounded, and within half a level when float).
        std::vector<float> back(qx.size());
        qtx::dequantize<uint8_t>(x_q, back, q.output_params());
        const auto out = q.output_params();
        const float lo = out.scale * float(0 - out.zero_point), hi = out.scale * float(255 - out.zero_point);
        if (round) CHECK(back == qx);
        for (std::size_t i = 0; i < qx.size(); ++i)
          if (qx[i] >= lo && qx[i] <= hi) REQUIRE(std::abs(back[i] - qx[i]) <= 0.5f * out.scale * 1.0001f);
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
      // A post-LN layer also takes x alone (it quantizes x itself); with a dynamic input, only that.
      CHECK_NOTHROW(q.forward(qtx::make_view(x.data(), 4, D), qws));
      nn::quantized_layer_options dynamic_input;
      dynamic_input.attention_input = qtx::activation_scaling::dynamic_token;
      const nn::quantized_encoder_layer<> qd(layer, calibrator.result(), dynamic_input);
      CHECK_THROWS_WITH(qd.forward(qtx::make_view(x.data(), 4, D), qtx::make_view(x_q.data(), 4, D), qws),
                        Catch::Contains("quantizes its input per call (dynamic-token)"));
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

    // Per-token parameters depend on the token alone (Q, K, V stay static): batching changes nothing.
    nn::quantized_layer_options per_token;
    per_token.round_residuals = false;
    per_token.set_activations(qtx::activation_scaling::dynamic_token);
    const nn::quantized_encoder_layer<> qd(layer, calibrator.result(), per_token);
    auto dx = input, dx_single = input;
    qd.forward(qtx::make_view(dx.data(), total, D), packed, qws);
    for (index_t first = 0; const index_t n : lengths) {
      qd.forward(qtx::make_view(dx_single.data() + first * D, n, D), qws);
      first += n;
    }
    CHECK(dx == dx_single);
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

// Every mode tracks the float layer on data like its calibration. On a pre-LN layer whose residual
// stream carries a token 40x the calibration data (OPT's first-token outliers), the paper's static
// grid for the residual sums clips that token; a float residual stream keeps it, and the GEMM inputs
// (LN outputs, context, hidden activation: normalised, so not outliers) lose nothing either way.
TEST_CASE("quantized_encoder_layer activation modes track the float layer; a float residual stream keeps an outlier token",
          "[nn][encoder_layer][w8a8][dynamic]") {
  const index_t H = 4, D = 32, F = 64, T = 12;
  using qtx::activation_scaling;
  struct mode {
    const char* name;
    activation_scaling scaling;
    bool round;
  };
  const mode modes[] = {{"static, rounded residuals", activation_scaling::static_tensor, true},
                        {"static, float residuals", activation_scaling::static_tensor, false},
                        {"dynamic-tensor", activation_scaling::dynamic_tensor, false},
                        {"dynamic-token", activation_scaling::dynamic_token, false}};
  unsigned seed = 700;
  for (const variant& v : all_variants()) {
    const auto ref = layer_for(v, D, F, H, ++seed);
    const auto layer = make_layer(ref);
    auto ws = layer.make_workspace(T);
    std::mt19937 rng(seed);
    nn::layer_calibrator calibrator;
    for (int b = 0; b < 8; ++b) {
      auto x = normal_values(T * D, 1.0f, rng);
      layer.forward(qtx::make_view(x.data(), T, D), ws, &calibrator);
    }
    const auto typical = normal_values(T * D, 1.0f, rng);
    auto outlier = typical;
    for (index_t c = 0; c < D; ++c) outlier[std::size_t(3 * D + c)] *= 40.0f;
    // Relative RMS error of token `t` alone (t ≥ 0) or of all tokens.
    const auto error_of = [&](const std::vector<float>& got, const std::vector<float>& want, index_t t) {
      const auto rows = [&](const std::vector<float>& m) {
        return t < 0 ? m : std::vector<float>(m.begin() + t * D, m.begin() + (t + 1) * D);
      };
      return relative_rms(rows(got), rows(want));
    };
    for (const bool with_outlier : {false, true}) {
      if (with_outlier && v.post_ln) continue;  // post-LN inputs are LN outputs
      const auto& input = with_outlier ? outlier : typical;
      auto expected = input;
      layer.forward(qtx::make_view(expected.data(), T, D), ws);
      double all[4] = {}, outlier_token[4] = {};
      for (int i = 0; i < 4; ++i) {
        nn::quantized_layer_options o;
        o.round_residuals = modes[i].round;
        o.set_activations(modes[i].scaling);
        const nn::quantized_encoder_layer<> q(layer, calibrator.result(), o);
        auto qws = q.make_workspace(T);
        auto x = input;
        q.forward(qtx::make_view(x.data(), T, D), qws);
        all[i] = error_of(x, expected, -1);
        outlier_token[i] = error_of(x, expected, 3);
      }
      CAPTURE(v.post_ln, v.gate, v.gamma, int(v.activation), v.causal, with_outlier);
      CAPTURE(all[0], all[1], all[2], all[3], outlier_token[0], outlier_token[3]);
      if (!with_outlier) {
        for (double e : all) CHECK(e < 0.1);
      } else {
        CHECK(outlier_token[3] < 0.1);
        CHECK(outlier_token[0] > 5 * outlier_token[3]);
      }
    }
  }
}

TEST_CASE("layer_calibrator: a range estimator per point, each equal to its observer run alone",
          "[nn][calibration]") {
  const index_t H = 2, D = 16, F = 24, T = 10;
  const auto ref = layer_for({false, -1, 0.0f, reference::act::gelu_erf, false}, D, F, H, 31);
  const auto layer = make_layer(ref);
  auto ws = layer.make_workspace(T);
  std::mt19937 rng(5);
  std::vector<std::vector<float>> batches;
  for (int b = 0; b < 3; ++b) batches.push_back(normal_values(T * D, 1.0f, rng));

  nn::layer_calibrator calibrator;
  calibrator.use(nn::layer_point::ffn_hidden, nn::range_estimator::percentile);
  calibrator.use(nn::layer_point::attention_ln, nn::range_estimator::mse);
  calibrator.use(nn::layer_point::q, nn::range_estimator::minmax);
  // The same points seen by the observers themselves, through a recording observer.
  struct recorder final : nn::layer_observer {
    qtx::percentile_observer hidden;
    qtx::mse_observer<uint8_t> ln;
    qtx::minmax_observer q;
    qtx::running_minmax_observer k;
    void observe(nn::layer_point p, qtx::matrix_view<const float> t) override {
      if (p == nn::layer_point::ffn_hidden) hidden.observe(t);
      if (p == nn::layer_point::attention_ln) ln.observe(t);
      if (p == nn::layer_point::q) q.observe(t);
      if (p == nn::layer_point::k) k.observe(t);
    }
  } direct;
  for (auto x : batches) {
    auto y = x;
    layer.forward(qtx::make_view(x.data(), T, D), ws, &calibrator);
    layer.forward(qtx::make_view(y.data(), T, D), ws, &direct);
  }
  const auto cal = calibrator.result();
  const auto same = [](qtx::quant_params a, qtx::quant_params b) { return a.scale == b.scale && a.zero_point == b.zero_point; };
  CHECK(same(cal.at(nn::layer_point::ffn_hidden, "test"), direct.hidden.params<uint8_t>()));
  CHECK(same(cal.at(nn::layer_point::attention_ln, "test"), direct.ln.params<uint8_t>()));
  CHECK(same(cal.at(nn::layer_point::q, "test"), direct.q.params<uint8_t>()));
  CHECK(same(cal.at(nn::layer_point::k, "test"), direct.k.params<uint8_t>()));  // the default
  CHECK_THROWS_WITH(calibrator.use(nn::layer_point::v, nn::range_estimator::mse),
                    Catch::Contains("layer_calibrator::use: point 'v' has been observed already"));
}

// LN outputs with two channels 20x the others (large γ, as in pretrained BERTs): one static scale
// per tensor wastes the levels of every other channel; migrating half the spread into the weights
// (α = 0.5) recovers them. The float layer is the reference; smoothing changes no float math.
TEST_CASE("smoothing (SmoothQuant) of the LN-output GEMM inputs: outlier channels cost less",
          "[nn][encoder_layer][w8a8][smoothing]") {
  const index_t H = 4, D = 32, F = 64, T = 16;
  unsigned seed = 1100;
  std::vector<double> ratios;  // smoothed / plain static error, per variant
  for (const variant& v : all_variants()) {
    auto ref = layer_for(v, D, F, H, ++seed);
    for (int c : {0, 1}) ref.ln1_gamma[std::size_t(c)] *= 20.0f, ref.ln2_gamma[std::size_t(c)] *= 20.0f;
    const auto layer = make_layer(ref);
    auto ws = layer.make_workspace(T);
    std::mt19937 rng(seed);
    const auto make_input = [&] {
      auto x = normal_values(T * D, 1.0f, rng);
      if (v.post_ln)  // a post-LN layer's input is the previous LN's output: the same outlier channels
        for (index_t t = 0; t < T; ++t) x[std::size_t(t * D)] *= 20.0f, x[std::size_t(t * D + 1)] *= 20.0f;
      return x;
    };
    nn::layer_calibrator calibrator;
    for (int b = 0; b < 6; ++b) {
      auto x = make_input();
      layer.forward(qtx::make_view(x.data(), T, D), ws, &calibrator);
    }
    const auto cal = calibrator.result();
    const auto input = make_input();
    auto expected = input;
    layer.forward(qtx::make_view(expected.data(), T, D), ws);
    const auto error = [&](qtx::activation_scaling scaling, std::optional<float> alpha) {
      nn::quantized_layer_options o;
      o.round_residuals = false;
      o.set_activations(scaling);
      o.smoothing_alpha = alpha;
      const nn::quantized_encoder_layer<> q(layer, cal, o);
      auto qws = q.make_workspace(T);
      auto x = input;
      q.forward(qtx::make_view(x.data(), T, D), qws);
      return relative_rms(x, expected);
    };
    const double plain = error(qtx::activation_scaling::static_tensor, std::nullopt);
    const double smoothed = error(qtx::activation_scaling::static_tensor, 0.5f);
    const double token_smoothed = error(qtx::activation_scaling::dynamic_token, 0.5f);
    CAPTURE(v.post_ln, v.gate, v.gamma, int(v.activation), v.causal, plain, smoothed, token_smoothed);
    CHECK(smoothed < plain);
    CHECK(token_smoothed < plain);
    ratios.push_back(smoothed / plain);

    // Smoothing needs the float residual stream, per-channel ranges, and α in [0, 1].
    nn::quantized_layer_options bad;
    bad.smoothing_alpha = 0.5f;
    CHECK_THROWS_WITH(nn::quantized_encoder_layer<>(layer, cal, bad), Catch::Contains("smoothing needs round_residuals = false"));
    bad.round_residuals = false;
    bad.smoothing_alpha = 1.5f;
    CHECK_THROWS_WITH(nn::quantized_encoder_layer<>(layer, cal, bad), Catch::Contains("quantized_encoder_layer: smoothing alpha (1.5)"));
    bad.smoothing_alpha = 0.5f;
    nn::quantized_encoder_layer<> smoothed_layer(layer, cal, bad);
    CHECK_THROWS_WITH(smoothed_layer.set_residual_rounding(true), Catch::Contains("the layer is smoothed"));
    auto no_channels = cal;
    no_channels.channels = {};
    CHECK_THROWS_WITH(nn::quantized_encoder_layer<>(layer, no_channels, bad), Catch::Contains("no per-channel ranges for point"));
  }
  double mean = 0;
  for (double r : ratios) mean += r / double(ratios.size());
  CHECK(mean < 0.7);
}

// A gated layer whose gates switch three of four heads nearly off (π ≈ 0.05): on one context grid
// for all heads those three keep a few uint8 levels; per head, each keeps its own. Pre-LN, float
// residual stream, so the attention's context is the main W8A8 error being compared.
TEST_CASE("per-head context scales: each head on its own grid; a gated layer's quiet heads cost less",
          "[nn][encoder_layer][w8a8][per_head]") {
  const index_t H = 4, D = 32, F = 64, T = 16, dh = D / H;
  auto ref = layer_for({false, 0, 0.0f, reference::act::gelu_erf, false}, D, F, H, 77);
  for (auto& w : ref.gate->w1) w *= 0.1f;
  ref.gate->b1 = {4.0f, -3.0f, -3.0f, -3.0f};
  const auto layer = make_layer(ref);
  auto ws = layer.make_workspace(T);
  std::mt19937 rng(78);
  nn::layer_calibrator calibrator;
  for (int b = 0; b < 8; ++b) {
    auto x = normal_values(T * D, 1.0f, rng);
    layer.forward(qtx::make_view(x.data(), T, D), ws, &calibrator);
  }
  const auto cal = calibrator.result();

  // group_params by hand: each head's channel min/max, clipped to what the tensor's grid represents.
  const auto heads = cal.group_params(nn::layer_point::context, H, "test");
  const auto tensor = cal.at(nn::layer_point::context, "test");
  const auto& ch = cal.channels_at(nn::layer_point::context, "test");
  REQUIRE(heads.size() == std::size_t(H));
  for (index_t h = 0; h < H; ++h) {
    float lo = 0, hi = 0;
    for (index_t j = h * dh; j < (h + 1) * dh; ++j) lo = std::min(lo, ch.lo[j]), hi = std::max(hi, ch.hi[j]);
    lo = std::max(lo, tensor.scale * float(-tensor.zero_point));
    hi = std::min(hi, tensor.scale * float(255 - tensor.zero_point));
    const auto want = qtx::asymmetric_params<uint8_t>(lo, hi);
    CHECK(heads[h].scale == want.scale);
    CHECK(heads[h].zero_point == want.zero_point);
    CHECK(heads[h].scale <= tensor.scale * 1.0001f);
  }
  CHECK(heads[1].scale < 0.2f * heads[0].scale);  // the quiet heads get much finer grids

  double error[2] = {};
  for (int per_head = 0; per_head < 2; ++per_head) {
    nn::quantized_layer_options o;
    o.round_residuals = false;
    o.per_head_context = per_head == 1;
    const nn::quantized_encoder_layer<> q(layer, cal, o);
    auto qws = q.make_workspace(T);
    double sum = 0;
    for (int b = 0; b < 4; ++b) {
      const auto input = normal_values(T * D, 1.0f, rng);
      auto expected = input, got = input;
      layer.forward(qtx::make_view(expected.data(), T, D), ws);
      q.forward(qtx::make_view(got.data(), T, D), qws);
      // The layer's change to its input: the residual stream itself would hide the error.
      std::vector<float> d_got(input.size()), d_want(input.size());
      for (std::size_t i = 0; i < input.size(); ++i) d_got[i] = got[i] - input[i], d_want[i] = expected[i] - input[i];
      sum += relative_rms(d_got, d_want);
    }
    error[per_head] = sum / 4;
  }
  CAPTURE(error[0], error[1]);
  CHECK(error[1] < 0.05);
  CHECK(error[1] < error[0]);

  nn::quantized_layer_options dynamic_context;
  dynamic_context.round_residuals = false;
  dynamic_context.context = qtx::activation_scaling::dynamic_token;
  dynamic_context.per_head_context = true;
  CHECK_THROWS_WITH((nn::quantized_encoder_layer<>(layer, cal, dynamic_context)),
                    Catch::StartsWith("quantized_encoder_layer: per_head_context needs a static context"));
  CHECK_THROWS_WITH(cal.group_params(nn::layer_point::context, 3, "test"),
                    Catch::StartsWith("test: 3 groups do not divide the 32 channels of point 'context'"));
}

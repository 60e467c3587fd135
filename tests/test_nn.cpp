#include <catch2/catch.hpp>

#include <qtx/nn/attention.hpp>
#include <qtx/nn/layer_norm.hpp>
#include <qtx/nn/linear.hpp>
#include <qtx/ref/attention.hpp>
#include <qtx/ops/gate.hpp>
#include <qtx/ref/gemm.hpp>

#include <cmath>
#include <random>
#include <span>
#include <string>
#include <vector>

using qtx::index_t;
namespace nn = qtx::nn;

namespace {
std::vector<float> random_vector(std::size_t n, float stddev, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, stddev);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

// y = act(x Wᵀ + b) + r in double, the oracle for both linear layers.
std::vector<double> linear_oracle(const std::vector<float>& x, const std::vector<float>& w,
                                  const std::vector<float>& b, index_t M, index_t K, index_t N,
                                  nn::activation act, const std::vector<float>* residual) {
  std::vector<double> y(static_cast<std::size_t>(M * N));
  for (index_t m = 0; m < M; ++m)
    for (index_t n = 0; n < N; ++n) {
      double s = b[n];
      for (index_t k = 0; k < K; ++k) s += double(x[m * K + k]) * w[n * K + k];
      if (act == nn::activation::gelu_erf) s = 0.5 * s * (1 + std::erf(s / std::sqrt(2.0)));
      if (act == nn::activation::relu) s = s > 0 ? s : 0;
      if (residual) s += (*residual)[m * N + n];
      y[m * N + n] = s;
    }
  return y;
}
}  // namespace

TEST_CASE("linear: float layer matches the double oracle", "[nn][linear]") {
  const index_t M = GENERATE(1, 7, 33), K = GENERATE(16, 65), N = GENERATE(3, 48);
  const auto x = random_vector(M * K, 1.0f, 1), w = random_vector(N * K, 0.1f, 2), b = random_vector(N, 0.5f, 3);
  const auto r = random_vector(M * N, 1.0f, 4);
  nn::linear<> layer(qtx::make_view(w.data(), N, K), b);
  for (auto act : {nn::activation::none, nn::activation::gelu_erf, nn::activation::relu}) {
    for (bool with_residual : {false, true}) {
      std::vector<float> y(M * N);
      layer.forward(qtx::make_view(x.data(), M, K), qtx::make_view(y.data(), M, N), act,
                    with_residual ? qtx::make_view(r.data(), M, N) : qtx::matrix_view<const float>{});
      const auto ref = linear_oracle(x, w, b, M, K, N, act, with_residual ? &r : nullptr);
      for (std::size_t i = 0; i < y.size(); ++i) REQUIRE(y[i] == Approx(ref[i]).margin(1e-4));
    }
  }
}

TEST_CASE("qlinear: W8A8 layer is within quantization error of the float layer", "[nn][linear]") {
  const index_t M = 17, K = 96, N = 40;
  const auto x = random_vector(M * K, 1.0f, 5), w = random_vector(N * K, 0.1f, 6), b = random_vector(N, 0.5f, 7);
  float lo = 0, hi = 0;
  for (float v : x) lo = std::min(lo, v), hi = std::max(hi, v);
  const auto qx = qtx::asymmetric_params<uint8_t>(lo, hi);
  std::vector<uint8_t> x_q(x.size());
  qtx::quantize<uint8_t>(x, x_q, qx);
  for (bool per_channel : {true, false}) {
    nn::qlinear<> layer(qtx::make_view(w.data(), N, K), b, qx, per_channel);
    std::vector<float> y(M * N);
    layer.forward(qtx::make_view(x_q.data(), M, K), qtx::make_view(y.data(), M, N));
    const auto ref = linear_oracle(x, w, b, M, K, N, nn::activation::none, nullptr);
    // Error model: each product carries ≤ s_x/2·|w| + s_w/2·|x|; bound it by K·(s_x·|w|max + s_w·|x|max)/2.
    double max_err = 0;
    for (std::size_t i = 0; i < y.size(); ++i) max_err = std::max(max_err, std::abs(y[i] - ref[i]));
    CHECK(max_err < 0.25);
    CHECK(max_err > 0.0);  // it really ran in int8
    // Output quantized to uint8 equals quantizing the float output of the same layer.
    const auto qy = qtx::asymmetric_params<uint8_t>(-8.0f, 8.0f);
    std::vector<uint8_t> y_q(M * N);
    layer.forward(qtx::make_view(x_q.data(), M, K), qtx::make_view(y_q.data(), M, N), qy);
    for (std::size_t i = 0; i < y.size(); ++i)
      REQUIRE(y_q[i] == qtx::quantize_one<uint8_t>(y[i], qy.inv_scale(), qy.zero_point));
  }
}

TEST_CASE("qlinear with 7-bit weights (reduce_range): every backend equals the scalar one, error within 2x of 8 bits",
          "[nn][linear]") {
  const index_t M = 9, K = 130, N = 37;
  const auto x = random_vector(M * K, 1.0f, 15), w = random_vector(N * K, 0.1f, 16), b = random_vector(N, 0.5f, 17);
  const auto qx = qtx::asymmetric_params<uint8_t>(-4.0f, 4.0f);
  std::vector<uint8_t> x_q(x.size());
  qtx::quantize<uint8_t>(x, x_q, qx);
  const auto ref = linear_oracle(x, w, b, M, K, N, nn::activation::none, nullptr);
  auto max_error = [&](int bits, auto arch) {
    nn::qlinear<decltype(arch)> layer(qtx::make_view(w.data(), N, K), b, qx, true, bits);
    std::vector<float> y(M * N);
    layer.forward(qtx::make_view(x_q.data(), M, K), qtx::make_view(y.data(), M, N));
    double e = 0;
    for (std::size_t i = 0; i < y.size(); ++i) e = std::max(e, double(std::abs(y[i] - ref[i])));
    return std::pair{e, y};
  };
  const auto [e8, y8] = max_error(8, qtx::cpu::native{});
  const auto [e7, y7] = max_error(7, qtx::cpu::native{});
  const auto [e7_scalar, y7_scalar] = max_error(7, qtx::cpu::scalar{});
  CHECK(y7 == y7_scalar);  // the native backend (AVX2: vpmaddubsw on these weights) is exact
  CHECK(y7 != y8);
  CHECK(e7 < 2.5 * e8 + 1e-3);
  CHECK(e7 < 0.5);
  const auto default_bits = max_error(8, qtx::cpu::scalar{}).second;
  CHECK(default_bits == y8);
  for (int bad : {1, 9})
    CHECK_THROWS_WITH((nn::qlinear<>(qtx::make_view(w.data(), N, K), b, qx, true, bad)),
                      Catch::Contains("qlinear: weight_bits (" + std::to_string(bad) + ") must be 2..8"));
}

TEST_CASE("qlinear with grouped input parameters: each group on its own grid, summed in float", "[nn][linear]") {
  // Four groups of 8 features (e.g. four heads of the attention context), one head 30× smaller
  // than the others: on a per-tensor grid it would keep a few levels, on its own grid all of them.
  const index_t M = GENERATE(1, 5, 33), G = 4, width = 8, K = G * width, N = GENERATE(3, 40);
  auto x = random_vector(M * K, 1.0f, 41);
  for (index_t m = 0; m < M; ++m)
    for (index_t k = 2 * width; k < 3 * width; ++k) x[m * K + k] /= 30.0f;
  const auto w = random_vector(N * K, 0.1f, 42), b = random_vector(N, 0.5f, 43), r = random_vector(M * N, 1.0f, 44);
  std::vector<qtx::quant_params> groups;
  std::vector<uint8_t> x_q(x.size());
  for (index_t g = 0; g < G; ++g) {
    float lo = 0, hi = 0;
    for (index_t m = 0; m < M; ++m)
      for (index_t k = g * width; k < (g + 1) * width; ++k)
        lo = std::min(lo, x[m * K + k]), hi = std::max(hi, x[m * K + k]);
    groups.push_back(qtx::asymmetric_params<uint8_t>(lo, hi));
    for (index_t m = 0; m < M; ++m)
      for (index_t k = g * width; k < (g + 1) * width; ++k)
        x_q[m * K + k] = qtx::quantize_one<uint8_t>(x[m * K + k], groups[g].inv_scale(), groups[g].zero_point);
  }
  // The definition in double: per-channel symmetric int8 weights, exact integer sums per group.
  std::vector<double> s_w(N);
  std::vector<int> w_q(N * K);
  for (index_t n = 0; n < N; ++n) {
    float absmax = 0;
    for (index_t k = 0; k < K; ++k) absmax = std::max(absmax, std::abs(w[n * K + k]));
    const float scale = absmax / 127.0f;
    s_w[n] = scale;
    for (index_t k = 0; k < K; ++k) w_q[n * K + k] = int(std::nearbyint(w[n * K + k] * (1.0f / scale)));
  }
  nn::qlinear<> layer(qtx::make_view(w.data(), N, K), groups, b);
  for (auto act : {nn::activation::none, nn::activation::relu}) {
    for (bool with_residual : {false, true}) {
      std::vector<float> y(M * N);
      layer.forward(qtx::make_view(x_q.data(), M, K), qtx::make_view(y.data(), M, N), act,
                    with_residual ? qtx::make_view(r.data(), M, N) : qtx::matrix_view<const float>{});
      for (index_t m = 0; m < M; ++m)
        for (index_t n = 0; n < N; ++n) {
          double v = b[n];
          for (index_t g = 0; g < G; ++g) {
            long sum = 0;
            for (index_t k = g * width; k < (g + 1) * width; ++k)
              sum += long(int(x_q[m * K + k]) - groups[g].zero_point) * w_q[n * K + k];
            v += double(groups[g].scale) * s_w[n] * double(sum);
          }
          if (act == nn::activation::relu) v = std::max(v, 0.0);
          if (with_residual) v += r[m * N + n];
          REQUIRE(y[m * N + n] == Approx(v).epsilon(1e-5).margin(1e-5));
        }
    }
  }
  // Against the float layer, the small group's own grid beats one grid for all (the point of it).
  const auto ref = linear_oracle(x, w, b, M, K, N, nn::activation::none, nullptr);
  float lo = 0, hi = 0;
  for (float v : x) lo = std::min(lo, v), hi = std::max(hi, v);
  const auto per_tensor = qtx::asymmetric_params<uint8_t>(lo, hi);
  std::vector<uint8_t> x_t(x.size());
  qtx::quantize<uint8_t>(x, x_t, per_tensor);
  const std::vector<qtx::quant_params> one_group = {per_tensor};
  nn::qlinear<> grouped_once(qtx::make_view(w.data(), N, K), one_group, b);
  nn::qlinear<> plain(qtx::make_view(w.data(), N, K), b, per_tensor);
  std::vector<float> y_g(M * N), y_t(M * N), y_1(M * N), y_p(M * N);
  layer.forward(qtx::make_view(x_q.data(), M, K), qtx::make_view(y_g.data(), M, N));
  plain.forward(qtx::make_view(x_t.data(), M, K), qtx::make_view(y_p.data(), M, N));
  grouped_once.forward(qtx::make_view(x_t.data(), M, K), qtx::make_view(y_1.data(), M, N));
  CHECK(y_1 == y_p);  // one group is the ungrouped layer, bit for bit
  double err_grouped = 0, err_tensor = 0;
  for (std::size_t i = 0; i < y_g.size(); ++i)
    err_grouped += std::pow(y_g[i] - ref[i], 2), err_tensor += std::pow(y_p[i] - ref[i], 2);
  CHECK(err_grouped < err_tensor);
  // What a grouped layer refuses.
  const std::vector<qtx::quant_params> three(3, per_tensor), bad = {per_tensor, per_tensor, {0.0f, 0}, per_tensor};
  CHECK_THROWS_WITH((nn::qlinear<>(qtx::make_view(w.data(), N, K), three, b)),
                    Catch::StartsWith("qlinear: 3 input groups do not divide in_features (32)"));
  CHECK_THROWS_WITH((nn::qlinear<>(qtx::make_view(w.data(), N, K), std::span<const qtx::quant_params>{}, b)),
                    Catch::StartsWith("qlinear: 0 input groups"));
  CHECK_THROWS_WITH((nn::qlinear<>(qtx::make_view(w.data(), N, K), bad, b)),
                    Catch::StartsWith("qlinear: input_groups.scale (0)"));
  std::vector<uint8_t> y8(M * N);
  CHECK_THROWS_WITH(layer.forward(qtx::make_view(x_q.data(), M, K), qtx::make_view(y8.data(), M, N), per_tensor),
                    Catch::Contains("grouped input parameters writes float outputs only"));
}

TEST_CASE("linear layers reject mismatched shapes", "[nn][linear]") {
  const auto w = random_vector(12, 1.0f, 8);
  nn::linear<> layer(qtx::make_view(w.data(), 3, 4), {});
  std::vector<float> x(8), y(6);
  CHECK_THROWS_WITH(layer.forward(qtx::make_view(x.data(), 2, 4), qtx::make_view(y.data(), 3, 2)),
                    Catch::Contains("y is 3x2"));
  CHECK_THROWS_AS(layer.forward(qtx::make_view(x.data(), 4, 2), qtx::make_view(y.data(), 2, 3)), qtx::error);
  const std::vector<float> bad_bias(2);
  CHECK_THROWS_WITH(nn::linear<>(qtx::make_view(w.data(), 3, 4), bad_bias), Catch::Contains("bias has 2"));
  CHECK_THROWS_AS(nn::qlinear<>(qtx::make_view(w.data(), 3, 4), {}, qtx::quant_params{0.0f, 0}), qtx::error);
}

TEST_CASE("attention gates: every variant against hand-computed values", "[nn][gate]") {
  using qtx::gate_kind;
  // 2 heads of d_head 2; one token x = (1, 2, 3, 4).
  const std::vector<float> x = {1, 2, 3, 4};
  std::vector<float> pi(2);
  auto run = [&](const qtx::gate_weights& g) {
    qtx::ops::attention_gate(qtx::cpu::native{}, g, qtx::make_view(x.data(), 1, 4), qtx::make_view(pi.data(), 1, 2));
  };
  auto sig = [](double z) { return 1.0 / (1.0 + std::exp(-z)); };
  qtx::gate_weights lin{gate_kind::linear_per_head, 2, 2, 0, {0.5f, -1.0f, 0.25f, 0.0f}, {0.1f, -0.2f}, {}, {}};
  run(lin);
  CHECK(pi[0] == Approx(sig(0.5 - 2 + 0.1)));
  CHECK(pi[1] == Approx(sig(0.75 - 0.2)));
  // MLP, hidden 1: head 0: relu(1·1 + 1·2 − 4) = 0 → z = b2; head 1: relu(3 − 4 + 2) = 1 → z = 2·1 + b2
  qtx::gate_weights mlp{gate_kind::mlp_per_head, 2, 2, 1, {1, 1, 1, -1}, {-4, 2}, {3, 2}, {0.5f, -1}};
  run(mlp);
  CHECK(pi[0] == Approx(sig(0.5)));
  CHECK(pi[1] == Approx(sig(2 - 1)));
  qtx::gate_weights all{gate_kind::all_heads_linear, 2, 2, 0, {1, 0, 0, 0, 0, 0, 0, 1}, {0, -4}, {}, {}};
  run(all);
  CHECK(pi[0] == Approx(sig(1)));
  CHECK(pi[1] == Approx(sig(0)));
  qtx::gate_weights uncond{gate_kind::unconditional, 2, 2, 0, {}, {qtx::logit(0.25f), qtx::logit(0.5f)}, {}, {}};
  run(uncond);
  CHECK(pi[0] == Approx(0.25));
  CHECK(pi[1] == Approx(0.5));
  // Argument checks.
  qtx::gate_weights broken = lin;
  broken.b1.pop_back();
  CHECK_THROWS_WITH(run(broken), Catch::Contains("b1 has 1 values, expected 2"));
  CHECK_THROWS_AS(qtx::logit(1.0f), qtx::error);
  std::vector<float> wide(6);
  CHECK_THROWS_AS(qtx::ops::attention_gate(qtx::cpu::native{}, lin, qtx::make_view(wide.data(), 1, 6),
                                           qtx::make_view(pi.data(), 1, 2)),
                  qtx::error);
}

namespace {
struct attention_fixture {
  index_t D = 32, H = 4;
  std::vector<float> wq = random_vector(D * D, 0.2f, 20), wk = random_vector(D * D, 0.2f, 21),
                     wv = random_vector(D * D, 0.2f, 22), wo = random_vector(D * D, 0.2f, 23);
  std::vector<float> bq = random_vector(D, 0.1f, 24), bk = random_vector(D, 0.1f, 25),
                     bv = random_vector(D, 0.1f, 26), bo = random_vector(D, 0.1f, 27);
  qtx::nn::attention_weights weights() const {
    return {qtx::make_view(wq.data(), D, D), qtx::make_view(wk.data(), D, D), qtx::make_view(wv.data(), D, D),
            qtx::make_view(wo.data(), D, D), bq, bk, bv, bo};
  }
  qtx::gate_weights gate() const {
    return {qtx::gate_kind::linear_per_head, H, D / H, 0, random_vector(D, 0.5f, 28),
            std::vector<float>(H, qtx::logit(0.25f)), {}, {}};
  }
};

// Projections in double + the reference attention: an oracle independent of the module's plumbing.
std::vector<float> attention_module_oracle(const attention_fixture& f, const std::vector<float>& x, index_t T,
                                           const nn::attention_options& o) {
  const index_t D = f.D;
  auto project = [&](const std::vector<float>& w, const std::vector<float>& b, const std::vector<float>& in) {
    const auto y = linear_oracle(in, w, b, T, D, D, nn::activation::none, nullptr);
    return std::vector<float>(y.begin(), y.end());
  };
  const auto q = project(f.wq, f.bq, x), k = project(f.wk, f.bk, x), v = project(f.wv, f.bv, x);
  std::vector<float> pi(T * f.H, 1.0f), ctx(T * D);
  if (o.gate) {
    const auto& g = *o.gate;
    for (index_t t = 0; t < T; ++t)
      for (index_t h = 0; h < f.H; ++h) {
        double z = g.b1[h];
        for (index_t c = 0; c < g.d_head; ++c) z += double(g.w1[h * g.d_head + c]) * x[t * D + h * g.d_head + c];
        pi[t * f.H + h] = float(1.0 / (1.0 + std::exp(-z)));
      }
  }
  qtx::ref::attention(qtx::make_view(q.data(), T, D), qtx::make_view(k.data(), T, D), qtx::make_view(v.data(), T, D),
                      qtx::make_view(ctx.data(), T, D),
                      {o.n_heads, 1.0f / std::sqrt(float(D / o.n_heads)), o.gamma, o.zeta, o.causal, 0}, {},
                      o.gate ? qtx::make_view(pi.data(), T, f.H) : qtx::matrix_view<const float>{});
  return project(f.wo, f.bo, ctx);
}
}  // namespace

TEST_CASE("multi_head_attention module: float, gated, clipped, cached decoding", "[nn][attention]") {
  attention_fixture f;
  const index_t T = 19;
  const auto x = random_vector(T * f.D, 1.0f, 30);
  for (bool gated : {false, true}) {
    nn::attention_options o{f.H, gated ? 0.0f : -0.02f, 1.0f, true, {}};
    if (gated) o.gate = f.gate();
    nn::multi_head_attention<> mha(f.weights(), o);
    std::vector<float> y(T * f.D);
    mha.forward(qtx::make_view(x.data(), T, f.D), qtx::make_view(y.data(), T, f.D));
    const auto ref = attention_module_oracle(f, x, T, o);
    for (std::size_t i = 0; i < y.size(); ++i) REQUIRE(y[i] == Approx(ref[i]).margin(1e-4));
    // Token-by-token decoding through a KV cache reproduces the full causal pass.
    nn::kv_cache<float> cache(T, f.D);
    for (index_t t = 0; t < T; ++t) {
      std::vector<float> step(f.D);
      mha.forward(qtx::make_view(x.data() + t * f.D, 1, f.D), qtx::make_view(step.data(), 1, f.D), {}, {}, &cache);
      for (index_t c = 0; c < f.D; ++c) REQUIRE(step[c] == Approx(y[t * f.D + c]).margin(1e-5));
    }
    CHECK(cache.length() == T);
    std::vector<float> one(f.D);
    // A key mask of the wrong length is refused before the cache takes the new token.
    nn::kv_cache<float> partial(T, f.D);
    mha.forward(qtx::make_view(x.data(), 2, f.D), qtx::make_view(y.data(), 2, f.D), {}, {}, &partial);
    const std::vector<float> mask(3, 0.0f);
    CHECK_THROWS_WITH(mha.forward(qtx::make_view(x.data(), 1, f.D), qtx::make_view(one.data(), 1, f.D),
                                  qtx::make_view(mask.data(), 1, 2), {}, &partial),
                      Catch::StartsWith("multi_head_attention::forward: key_mask is 1x2, expected 1x3"));
    CHECK(partial.length() == 2);
    CHECK_NOTHROW(mha.forward(qtx::make_view(x.data(), 1, f.D), qtx::make_view(one.data(), 1, f.D),
                              qtx::make_view(mask.data(), 1, 3), {}, &partial));
    CHECK(partial.length() == 3);
    CHECK_THROWS_WITH(mha.forward(qtx::make_view(x.data(), 1, f.D), qtx::make_view(one.data(), 1, f.D), {}, {}, &cache),
                      Catch::Contains("exceed the capacity"));
  }
}

TEST_CASE("attention modules check their options when made, not at the first forward", "[nn][attention]") {
  attention_fixture f;
  const auto refused = [&](nn::attention_options o, const std::string& message) {
    CHECK_THROWS_WITH(nn::multi_head_attention<>(f.weights(), o),
                      Catch::Equals("multi_head_attention: " + message));
  };
  refused({3, 0.0f, 1.0f, false, {}}, "d_model (32) is not a multiple of n_heads (3)");
  refused({0, 0.0f, 1.0f, false, {}}, "d_model (32) is not a multiple of n_heads (0)");
  refused({4, 0.1f, 1.0f, false, {}}, "gamma (0.1) must be finite and <= 0");
  refused({4, 0.0f, 0.5f, false, {}}, "zeta (0.5) must be finite and >= 1");
  nn::attention_options other_heads{2, 0.0f, 1.0f, false, f.gate()};
  refused(other_heads, "the gate is for 4 heads of width 8, the attention has 2 heads of width 16");
}

TEST_CASE("quantized_multi_head_attention tracks the float module", "[nn][attention]") {
  attention_fixture f;
  const index_t T = 23;
  const auto x = random_vector(T * f.D, 1.0f, 31);
  nn::attention_options o{f.H, -0.01f, 1.0f, false, f.gate()};
  nn::multi_head_attention<> mha(f.weights(), o);
  // Calibrate on the same input: min-max of every quantized tensor.
  auto range = [](qtx::matrix_view<const float> v) {
    float lo = 0, hi = 0;
    for (index_t r = 0; r < v.rows; ++r)
      for (index_t c = 0; c < v.cols; ++c) lo = std::min(lo, v(r, c)), hi = std::max(hi, v(r, c));
    return qtx::asymmetric_params<uint8_t>(lo, hi);
  };
  nn::attention_calibration cal;
  cal.input = range(qtx::make_view(x.data(), T, f.D));
  nn::layer_calibrator observed;  // one batch: its running min-max is the min-max
  std::vector<float> y(T * f.D), yq(T * f.D);
  mha.forward(qtx::make_view(x.data(), T, f.D), qtx::make_view(y.data(), T, f.D), {}, {}, nullptr, &observed);
  const auto ranges = observed.result();
  cal.q = ranges.at(nn::layer_point::q, "test");
  cal.k = ranges.at(nn::layer_point::k, "test");
  cal.v = ranges.at(nn::layer_point::v, "test");
  cal.context = ranges.at(nn::layer_point::context, "test");
  nn::quantized_multi_head_attention<> qmha(f.weights(), o, cal);
  std::vector<uint8_t> x_q(x.size());
  qtx::quantize<uint8_t>(x, x_q, cal.input);
  qmha.forward(qtx::make_view(x_q.data(), T, f.D), qtx::make_view(x.data(), T, f.D), qtx::make_view(yq.data(), T, f.D));
  double err = 0, norm = 0;
  for (std::size_t i = 0; i < y.size(); ++i) err += (y[i] - yq[i]) * (y[i] - yq[i]), norm += y[i] * y[i];
  CHECK(std::sqrt(err / norm) < 0.05);  // W8A8 relative RMS error of one attention block
  CHECK(err > 0.0);
}

TEST_CASE("layer_norm module: float and uint8 outputs, optional residual", "[nn][layernorm]") {
  const index_t M = 9, N = 37;
  auto x = random_vector(M * N, 3.0f, 40);
  for (auto& v : x) v += 1e4f;  // a large mean must not destroy the variance
  const auto r = random_vector(M * N, 1.0f, 41), g = random_vector(N, 0.2f, 42), b = random_vector(N, 0.2f, 43);
  nn::layer_norm<> ln(g, b, 1e-5f);
  for (bool with_residual : {false, true}) {
    std::vector<float> y(M * N);
    const auto res = with_residual ? qtx::make_view(r.data(), M, N) : qtx::matrix_view<const float>{};
    ln.forward(qtx::make_view(x.data(), M, N), qtx::make_view(y.data(), M, N), res);
    for (index_t m = 0; m < M; ++m) {
      double mean = 0, var = 0;
      auto s = [&](index_t c) { return double(x[m * N + c]) + (with_residual ? r[m * N + c] : 0.0); };
      for (index_t c = 0; c < N; ++c) mean += s(c) / N;
      for (index_t c = 0; c < N; ++c) var += (s(c) - mean) * (s(c) - mean) / N;
      for (index_t c = 0; c < N; ++c) {
        const double ref = (s(c) - mean) / std::sqrt(var + 1e-5) * g[c] + b[c];
        // Inputs near 1e4 carry float rounding of 1e4·2^-24 ≈ 6e-4 relative to σ ≈ 3.
        REQUIRE(y[m * N + c] == Approx(ref).margin(2e-3));
      }
    }
    const auto q = qtx::asymmetric_params<uint8_t>(-3.0f, 3.0f);
    std::vector<uint8_t> yq(M * N);
    ln.forward(qtx::make_view(x.data(), M, N), qtx::make_view(yq.data(), M, N), q, res);
    for (std::size_t i = 0; i < y.size(); ++i)
      REQUIRE(std::abs(int(yq[i]) - int(qtx::quantize_one<uint8_t>(y[i], q.inv_scale(), q.zero_point))) <= 1);
  }
  std::vector<float> y(M * N);
  CHECK_THROWS_WITH(ln.forward(qtx::make_view(x.data(), M, N - 1, N), qtx::make_view(y.data(), M, N - 1, N)),
                    Catch::Contains("36 columns"));
  CHECK_THROWS_AS(nn::layer_norm<>(g, std::vector<float>(3), 1e-5f), qtx::error);
  CHECK_THROWS_AS(nn::layer_norm<>(g, b, 0.0f), qtx::error);
}

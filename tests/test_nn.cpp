#include <catch2/catch.hpp>

#include <qtx/nn/linear.hpp>
#include <qtx/ops/gate.hpp>
#include <qtx/ref/gemm.hpp>

#include <cmath>
#include <random>
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

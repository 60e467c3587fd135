// Dynamic activation quantization (quant/dynamic.hpp): ops::quantize_dynamic against an oracle
// written here from the rule (finite range widened to 0 → asymmetric_params → quantize_one), the
// GEMM stages that consume per-row parameters against int64 / double sums, qlinear's dynamic form
// against a double-precision layer, and the encoder layer's modes: a token outlier costs the
// other tokens' precision under one static scale, not under per-token scales.
//
// Exact: quantize_dynamic (levels and parameters, every backend), the int32 GEMM with per-row zero
// points. Float: dequantize_rows reproduces its own formula's operation order exactly; qlinear
// within 2e-6 relative of double (float sums of K = 96 products).
#include <catch2/catch.hpp>

#include "backends.hpp"

#include "random_weights.hpp"

#include <qtx/nn/encoder_layer.hpp>
#include <qtx/ops/elementwise.hpp>
#include <qtx/ops/gemm.hpp>
#include <qtx/quant/dynamic.hpp>
#include <qtx/quant/smoothing.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <tuple>
#include <vector>

using qtx::index_t;
using backends = test_backends::compiled<std::tuple<qtx::cpu::scalar, qtx::cpu::avx2, qtx::cpu::avx_vnni, qtx::cpu::avx512_vnni>>;
namespace nn = qtx::nn;
using test_models::normal_values;

namespace {
using test_backends::skip_unsupported;

// The rule, spelled out independently of qtx::finite_range: min and max of the finite values and 0.
qtx::quant_params params_of(const float* begin, const float* end) {
  float lo = 0.0f, hi = 0.0f;
  for (const float* p = begin; p != end; ++p)
    if (std::isfinite(*p)) lo = std::min(lo, *p), hi = std::max(hi, *p);
  return qtx::asymmetric_params<uint8_t>(lo, hi);
}

// Rows of N(0, 1) with one outlier row (×scale) and special values sprinkled in.
std::vector<float> activations(index_t rows, index_t cols, unsigned seed, float outlier_scale = 50.0f) {
  std::mt19937 rng(seed);
  auto x = normal_values(rows * cols, 1.0f, rng);
  if (rows > 1)
    for (index_t c = 0; c < cols; ++c) x[std::size_t(cols + c)] *= outlier_scale;
  return x;
}
}  // namespace

TEMPLATE_LIST_TEST_CASE("quantize_dynamic: per-token and per-tensor parameters and levels follow the rule exactly",
                        "[quant][dynamic]", backends) {
  if (skip_unsupported<TestType>()) return;
  const float inf = std::numeric_limits<float>::infinity(), nan = std::nanf("");
  for (index_t rows : {1, 3, 33})
    for (index_t cols : {1, 7, 8, 17, 64, 100, 385}) {
      CAPTURE(rows, cols);
      auto x = activations(rows, cols, unsigned(rows * 1000 + cols));
      // Specials: NaN and ±inf leave the range alone; a row of zeros; a row of NaN only.
      x[0] = nan;
      if (cols > 2) x[2] = inf, x[1] = -inf;
      if (rows > 2) std::fill_n(x.begin() + 2 * cols, cols, 0.0f);
      if (rows > 3) std::fill_n(x.begin() + 3 * cols, cols, nan);
      const auto xv = qtx::make_view(std::as_const(x).data(), rows, cols);
      for (auto scaling : {qtx::activation_scaling::dynamic_token, qtx::activation_scaling::dynamic_tensor}) {
        CAPTURE(qtx::to_string(scaling));
        std::vector<uint8_t> q(x.size());
        std::vector<float> scales(std::size_t(rows), -1.0f);
        std::vector<int32_t> zero_points(std::size_t(rows), -1);
        qtx::ops::quantize_dynamic(TestType{}, xv, qtx::make_view(q.data(), rows, cols), std::span(scales),
                                   std::span(zero_points), scaling);
        const auto tensor = params_of(x.data(), x.data() + x.size());
        for (index_t r = 0; r < rows; ++r) {
          const float* row = x.data() + r * cols;
          const auto p = scaling == qtx::activation_scaling::dynamic_token ? params_of(row, row + cols) : tensor;
          REQUIRE(scales[std::size_t(r)] == p.scale);
          REQUIRE(zero_points[std::size_t(r)] == p.zero_point);
          for (index_t c = 0; c < cols; ++c)
            REQUIRE(q[std::size_t(r * cols + c)] == qtx::quantize_one<uint8_t>(row[c], p.inv_scale(), p.zero_point));
        }
      }
    }
}

TEST_CASE("quantize_dynamic: per-token levels keep every token's precision", "[quant][dynamic]") {
  const index_t rows = 8, cols = 384;
  const auto x = activations(rows, cols, 5, 100.0f);  // row 1 is 100x the others
  const auto xv = qtx::make_view(x.data(), rows, cols);
  std::vector<uint8_t> q(x.size());
  std::vector<float> scales(rows), back(x.size());
  std::vector<int32_t> zps(rows);
  qtx::ops::quantize_dynamic(qtx::cpu::native{}, xv, qtx::make_view(q.data(), rows, cols), std::span(scales),
                             std::span(zps), qtx::activation_scaling::dynamic_token);
  for (index_t r = 0; r < rows; ++r)
    for (index_t c = 0; c < cols; ++c) {
      const std::size_t i = std::size_t(r * cols + c);
      // Within half a level of the row's own scale (no value of a row lies outside its range).
      REQUIRE(std::abs(qtx::dequantize_one(q[i], scales[r], zps[r]) - x[i]) <= 0.5f * scales[r] * (1 + 1e-5f));
    }
  CHECK(scales[1] > 50 * scales[0]);
}

TEST_CASE("quantize_dynamic refuses bad arguments naming itself", "[quant][dynamic][errors]") {
  std::vector<float> x(12, 1.0f), scales(3);
  std::vector<uint8_t> q(12);
  std::vector<int32_t> zps(3);
  const auto xv = qtx::make_view(x.data(), 3, 4);
  const auto qv = qtx::make_view(q.data(), 3, 4);
  const qtx::cpu::native arch{};
  CHECK_THROWS_WITH(qtx::ops::quantize_dynamic(arch, xv, qv, std::span(scales), std::span(zps),
                                               qtx::activation_scaling::static_tensor),
                    Catch::Contains("quantize_dynamic: scaling (static)"));
  CHECK_THROWS_WITH(qtx::ops::quantize_dynamic(arch, xv, qv, std::span(scales).first(2), std::span(zps),
                                               qtx::activation_scaling::dynamic_token),
                    Catch::Contains("scales has 2") && Catch::Contains("one per row of x (3)"));
  CHECK_THROWS_WITH(qtx::ops::quantize_dynamic(arch, xv, qtx::make_view(q.data(), 2, 4), std::span(scales),
                                               std::span(zps), qtx::activation_scaling::dynamic_token),
                    Catch::Contains("quantize_dynamic"));
}

TEMPLATE_LIST_TEST_CASE("GEMM with per-row zero points and scales (quantized_rows) is exact",
                        "[gemm][dynamic]", backends) {
  if (skip_unsupported<TestType>()) return;
  namespace ep = qtx::epilogue;
  for (index_t M : {1, 5, 24}) {
    for (index_t K : {1, 13, 96})
      for (index_t N : {1, 17, 48}) {
        CAPTURE(M, K, N);
        std::mt19937 rng(unsigned(M * 10000 + K * 100 + N));
        std::uniform_int_distribution<int> u8(0, 255), s8(-127, 127);
        std::vector<uint8_t> a(std::size_t(M * K));
        std::vector<int8_t> b(std::size_t(K * N));
        for (auto& v : a) v = uint8_t(u8(rng));
        for (auto& v : b) v = int8_t(s8(rng));
        std::vector<int32_t> zps(static_cast<std::size_t>(M)), sums(static_cast<std::size_t>(N), 0);
        std::vector<float> row_scales(static_cast<std::size_t>(M)), scales(static_cast<std::size_t>(N));
        for (auto& z : zps) z = u8(rng);
        zps[0] = 255;
        for (auto& s : row_scales) s = std::ldexp(1.0f + float(u8(rng)) / 256, -7);
        for (auto& s : scales) s = std::ldexp(1.0f + float(u8(rng)) / 256, -6);
        for (index_t k = 0; k < K; ++k)
          for (index_t n = 0; n < N; ++n) sums[std::size_t(n)] += b[std::size_t(k * N + n)];
        const auto packed = qtx::ops::pack_b<TestType>(qtx::make_view(std::as_const(b).data(), K, N));
        const auto av = qtx::make_view(std::as_const(a).data(), M, K);
        std::vector<int32_t> acc(std::size_t(M * N));
        std::vector<float> y(std::size_t(M * N));
        const ep::subtract_row_zero_point zero{zps, sums};
        qtx::ops::gemm(TestType{}, av, packed, qtx::make_view(acc.data(), M, N), ep::make_pipeline(zero));
        qtx::ops::gemm(TestType{}, av, packed, qtx::make_view(y.data(), M, N),
                       ep::make_pipeline(zero, ep::dequantize_rows<ep::per_n>{row_scales, scales}));
        for (index_t m = 0; m < M; ++m)
          for (index_t n = 0; n < N; ++n) {
            int64_t exact = 0;
            for (index_t k = 0; k < K; ++k)
              exact += int64_t(a[std::size_t(m * K + k)] - zps[std::size_t(m)]) * b[std::size_t(k * N + n)];
            const std::size_t i = std::size_t(m * N + n);
            REQUIRE(acc[i] == exact);
            REQUIRE(y[i] == float(exact) * row_scales[std::size_t(m)] * scales[std::size_t(n)]);
          }
      }
  }
}

TEST_CASE("per-row epilogue stages validate their lengths and values", "[epilogue][dynamic][errors]") {
  namespace ep = qtx::epilogue;
  std::vector<uint8_t> a(4 * 3, 1);
  std::vector<int8_t> b(3 * 2, 1);
  std::vector<float> y(4 * 2);
  const auto packed = qtx::ops::pack_b<qtx::cpu::native>(qtx::make_view(std::as_const(b).data(), 3, 2));
  const auto av = qtx::make_view(std::as_const(a).data(), 4, 3);
  const auto yv = qtx::make_view(y.data(), 4, 2);
  std::vector<int32_t> zps(4, 3), sums(2, 3), bad_zps = {1, 2, 300, 4};
  std::vector<float> rows(4, 0.5f), cols(2, 0.25f), bad_rows = {1, 1, 0, 1};
  auto run = [&](auto... stages) { qtx::ops::gemm(qtx::cpu::native{}, av, packed, yv, ep::make_pipeline(stages...)); };
  CHECK_NOTHROW(run(ep::subtract_row_zero_point{zps, sums}, ep::dequantize_rows<ep::per_n>{rows, cols}));
  CHECK_THROWS_WITH(run(ep::subtract_row_zero_point{std::span(zps).first(3), sums}),
                    Catch::Contains("gemm: subtract_row_zero_point zero_points has 3 elements, expected 4"));
  CHECK_THROWS_WITH(run(ep::subtract_row_zero_point{bad_zps, sums}),
                    Catch::Contains("zero_points[2] (300) is outside the range of u8"));
  CHECK_THROWS_WITH(run(ep::subtract_row_zero_point{zps, std::span(sums).first(1)}),
                    Catch::Contains("column_sums has 1 elements, expected 2"));
  CHECK_THROWS_WITH(run(ep::subtract_row_zero_point{zps, sums}, ep::dequantize_rows<ep::per_n>{bad_rows, cols}),
                    Catch::Contains("dequantize_rows row_scales[2] (0) must be finite and positive"));
  CHECK_THROWS_WITH(run(ep::subtract_row_zero_point{zps, sums}, ep::dequantize_rows<ep::per_tensor>{rows, cols}),
                    Catch::Contains("dequantize_rows scales has 2 elements, expected 1"));
}

TEMPLATE_LIST_TEST_CASE("qlinear with dynamic input equals a double-precision layer", "[nn][linear][dynamic]",
                        backends) {
  if (skip_unsupported<TestType>()) return;
  const index_t M = 9, K = 96, N = 40;
  std::mt19937 rng(17);
  // Integer weights whose every output row reaches ±127: per-channel scales are exactly 1, so the
  // int8 weights equal the float ones and the reference needs no weight rounding.
  std::uniform_int_distribution<int> s8(-127, 127);
  std::vector<float> w(std::size_t(N * K));
  for (auto& v : w) v = float(s8(rng));
  for (index_t n = 0; n < N; ++n) w[std::size_t(n * K + n % K)] = n % 2 ? 127.0f : -127.0f;
  const auto bias = normal_values(N, 3.0f, rng);
  const nn::qlinear<TestType> layer(qtx::make_view(std::as_const(w).data(), N, K), bias, std::nullopt);
  CHECK_FALSE(layer.has_static_input());

  const auto x = activations(M, K, 23);
  std::vector<uint8_t> q(std::size_t(M * K));
  std::vector<float> scales(M), y(std::size_t(M * N)), residual = normal_values(M * N, 1.0f, rng);
  std::vector<int32_t> zps(M);
  for (auto scaling : {qtx::activation_scaling::dynamic_token, qtx::activation_scaling::dynamic_tensor}) {
    qtx::ops::quantize_dynamic(TestType{}, qtx::make_view(x.data(), M, K), qtx::make_view(q.data(), M, K),
                               std::span(scales), std::span(zps), scaling);
    const qtx::quantized_rows rows{qtx::make_view(std::as_const(q).data(), M, K), scales, zps};
    layer.forward(rows, qtx::make_view(y.data(), M, N), nn::activation::relu,
                  qtx::make_view(std::as_const(residual).data(), M, N));
    for (index_t m = 0; m < M; ++m)
      for (index_t n = 0; n < N; ++n) {
        double sum = 0;
        for (index_t k = 0; k < K; ++k)
          sum += double(scales[m]) * (int(q[std::size_t(m * K + k)]) - zps[m]) * w[std::size_t(n * K + k)];
        const double expected = std::max(sum + bias[std::size_t(n)], 0.0) + residual[std::size_t(m * N + n)];
        REQUIRE(std::abs(y[std::size_t(m * N + n)] - expected) <= 2e-6 * (std::abs(sum) + std::abs(expected) + 1));
      }
  }
  // The static form needs calibrated parameters this layer was not given.
  CHECK_THROWS_WITH(layer.forward(qtx::make_view(std::as_const(q).data(), M, K), qtx::make_view(y.data(), M, N)),
                    Catch::Contains("qlinear::forward: the layer was made without calibrated input parameters"));
}

TEST_CASE("smoothing: factors follow s = a^alpha / w^(1-alpha); the migrated product is unchanged",
          "[quant][smoothing]") {
  const std::vector<float> a = {8.0f, 0.5f, 0.0f, 2.0f}, w = {0.5f, 2.0f, 1.0f, 0.0f};
  const auto s = qtx::smoothing_factors(a, w, 0.5f);
  REQUIRE(s.size() == 4);
  CHECK(s[0] == Approx(std::sqrt(8.0 / 0.5)).epsilon(1e-6));
  CHECK(s[1] == Approx(std::sqrt(0.5 / 2.0)).epsilon(1e-6));
  CHECK(s[2] == 1.0f);  // an all-zero activation channel: nothing to migrate
  CHECK(s[3] == 1.0f);  // an all-zero weight channel
  CHECK(qtx::smoothing_factors(a, w, 1.0f)[0] == 8.0f);
  CHECK(qtx::smoothing_factors(a, w, 0.0f)[0] == 2.0f);
  CHECK_THROWS_WITH(qtx::smoothing_factors(a, w, 1.5f), Catch::Contains("smoothing alpha (1.5) must be in [0, 1]"));
  CHECK_THROWS_WITH(qtx::smoothing_factors(a, std::vector<float>{1, 2}, 0.5f), Catch::Contains("4 activation channels but 2"));
  CHECK_THROWS_WITH(qtx::smoothing_factors(std::vector<float>{NAN}, std::vector<float>{1}, 0.5f),
                    Catch::Contains("activation absmax[0] (nan) must be finite"));

  // x·Wᵀ = (x ⊙ s⁻¹)·(W·diag(s))ᵀ, W (out, in) as the layers store it.
  const index_t M = 5, K = 12, N = 7;
  std::mt19937 rng(3);
  auto x = normal_values(M * K, 1.0f, rng);
  for (index_t m = 0; m < M; ++m) x[std::size_t(m * K + 2)] *= 30.0f;  // an outlier channel
  const auto wt = normal_values(N * K, 0.2f, rng);
  const auto wv = qtx::make_view(wt.data(), N, K);
  const auto xv = qtx::make_view(x.data(), M, K);
  qtx::channel_minmax_observer observer;
  observer.observe(xv);
  std::vector<float> x_absmax(K);
  for (index_t j = 0; j < K; ++j) x_absmax[std::size_t(j)] = observer.range().absmax(j);
  const auto factors = qtx::smoothing_factors(x_absmax, qtx::input_channel_absmax({wv}), 0.5f);
  const auto scaled_w = qtx::scale_input_channels(wv, factors);
  float smoothed_absmax = 0;
  for (index_t m = 0; m < M; ++m)
    for (index_t n = 0; n < N; ++n) {
      double plain = 0, migrated = 0;
      for (index_t k = 0; k < K; ++k) {
        const std::size_t i = std::size_t(m * K + k);
        plain += double(x[i]) * wt[std::size_t(n * K + k)];
        migrated += double(x[i] / factors[std::size_t(k)]) * scaled_w[std::size_t(n * K + k)];
        smoothed_absmax = std::max(smoothed_absmax, std::abs(x[i] / factors[std::size_t(k)]));
      }
      REQUIRE(migrated == Approx(plain).margin(1e-5));
    }
  // The outlier channel no longer dominates the input's range.
  CHECK(smoothed_absmax < 0.5f * observer.range().absmax(2));
  // smoothed_params covers every channel's range divided by its factor.
  const auto p = qtx::smoothed_params(observer.range(), factors);
  for (index_t m = 0; m < M; ++m)
    for (index_t k = 0; k < K; ++k) {
      const float v = x[std::size_t(m * K + k)] / factors[std::size_t(k)];
      CHECK(v >= p.scale * float(0 - p.zero_point) - p.scale);
      CHECK(v <= p.scale * float(255 - p.zero_point) + p.scale);
    }
  CHECK_THROWS_WITH(observer.observe(qtx::make_view(x.data(), 2, 5)), Catch::Contains("x has 5 columns"));
}

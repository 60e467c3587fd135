// qtx quickstart: the W8A8 recipe on one layer.
//
// 1. Make an activation tensor that looks like a transformer's: Gaussian, plus a few outlier
//    channels that are ~50× larger (what the paper finds in BERT's residual stream).
// 2. Quantize it to uint8 with min-max ranges, weights to int8, run the integer GEMM with a
//    fused requantizing epilogue, and compare with the float GEMM.
// 3. Show what the outliers cost: the same layer without them quantizes far more accurately.
// 4. Clipped softmax, the paper's fix: a head that wants to "do nothing" gets exact zeros.
#include <qtx/qtx.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

namespace {

constexpr qtx::index_t tokens = 128, d_model = 768, d_out = 768;

struct layer_error {
  float relative_rms;  // ‖y_int8 − y_fp32‖ / ‖y_fp32‖
  float act_scale;
};

layer_error run_layer(const std::vector<float>& x, const std::vector<float>& w) {
  using arch = qtx::cpu::native;
  namespace ep = qtx::epilogue;
  // Float reference: y = x · W.
  std::vector<float> y_ref(tokens * d_out);
  auto w_f32 = qtx::ops::pack_b<arch>(qtx::make_view(w.data(), d_model, d_out));
  qtx::ops::gemm(arch{}, qtx::make_view(x.data(), tokens, d_model), w_f32,
                 qtx::make_view(y_ref.data(), tokens, d_out));

  // W8A8: min-max activation range (uint8, asymmetric), absmax weights (int8, symmetric).
  const auto [lo, hi] = std::minmax_element(x.begin(), x.end());
  const qtx::quant_params qx = qtx::asymmetric_params<uint8_t>(*lo, *hi);
  float w_absmax = 0;
  for (float v : w) w_absmax = std::max(w_absmax, std::abs(v));
  const qtx::quant_params qw = qtx::symmetric_params<int8_t>(w_absmax);
  std::vector<uint8_t> x_q(x.size());
  std::vector<int8_t> w_q(w.size());
  qtx::quantize<uint8_t>(x, x_q, qx);
  qtx::quantize<int8_t>(w, w_q, qw);

  // Integer GEMM; the epilogue dequantizes the int32 accumulators to float in registers.
  auto w_s8 = qtx::ops::pack_b<arch>(qtx::make_view(w_q.data(), d_model, d_out));
  const float acc_scale[] = {qx.scale * qw.scale};
  std::vector<float> y_q(tokens * d_out);
  qtx::ops::gemm(arch{}, qtx::make_view(x_q.data(), tokens, d_model), w_s8,
                 qtx::make_view(y_q.data(), tokens, d_out),
                 ep::make_pipeline(ep::dequantize<ep::per_tensor>{acc_scale}), qx.zero_point);
  double err = 0, ref = 0;
  for (std::size_t i = 0; i < y_ref.size(); ++i) {
    err += double(y_q[i] - y_ref[i]) * (y_q[i] - y_ref[i]);
    ref += double(y_ref[i]) * y_ref[i];
  }
  return {float(std::sqrt(err / ref)), qx.scale};
}

}  // namespace

int main() {
  std::mt19937 rng(42);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(tokens * d_model), w(d_model * d_out);
  for (float& v : x) v = normal(rng);
  for (float& v : w) v = normal(rng) * 0.03f;

  std::printf("qtx %d.%d.%d quickstart, backend %s, %d thread(s)\n", QTX_VERSION_MAJOR,
              QTX_VERSION_MINOR, QTX_VERSION_PATCH, qtx::cpu::native::name(), qtx::max_threads());
  const layer_error clean = run_layer(x, w);
  // Outlier channels as in the paper (BERT's residual dims 308 and 381 reach |x| ≈ 50..700).
  for (qtx::index_t t = 0; t < tokens; ++t)
    for (qtx::index_t channel : {308, 381}) x[t * d_model + channel] *= 60.0f;
  const layer_error outliers = run_layer(x, w);

  std::printf("W8A8 linear %ldx%ldx%ld (u8 x s8 -> s32, fused dequantize):\n", long(tokens),
              long(d_model), long(d_out));
  std::printf("  without outliers: activation scale %.4f, relative RMS error %.4f\n", clean.act_scale,
              clean.relative_rms);
  std::printf("  with 2 outlier channels: activation scale %.4f, relative RMS error %.4f (%.1fx worse)\n",
              outliers.act_scale, outliers.relative_rms, outliers.relative_rms / clean.relative_rms);

  // A head whose scores are nearly uniform (it has nothing to attend to): plain softmax spreads
  // 1/T over every key, so the head still mixes values; clipped softmax (γ = −α/T) outputs exact
  // zeros, which the head can only approach with plain softmax by pushing its logits to extremes.
  constexpr qtx::index_t keys = 128;
  std::vector<float> scores(keys), plain(keys), clipped(keys);
  for (float& v : scores) v = 0.05f * normal(rng);
  std::vector<uint8_t> clipped_u8(keys);
  const auto s = qtx::make_view(scores.data(), 1, keys);
  qtx::ops::softmax(qtx::cpu::native{}, s, qtx::make_view(plain.data(), 1, keys));
  const qtx::softmax_params clip{1.0f, qtx::gamma_for(3.2f, keys), 1.0f};
  qtx::ops::softmax(qtx::cpu::native{}, s, qtx::make_view(clipped.data(), 1, keys), clip);
  qtx::ops::softmax(qtx::cpu::native{}, s, qtx::make_view(clipped_u8.data(), 1, keys), clip, {},
                    qtx::quant_params{1.0f / 255.0f, 0});
  auto sum = [](const std::vector<float>& v) { float t = 0; for (float x : v) t += x; return t; };
  std::printf("softmax over %ld near-uniform scores: plain sums to %.4f (max %.5f); clipped (gamma %.4f) "
              "sums to %.4f, %ld of %ld exact zeros, uint8 max level %d\n",
              long(keys), sum(plain), *std::max_element(plain.begin(), plain.end()), clip.gamma, sum(clipped),
              long(std::count(clipped.begin(), clipped.end(), 0.0f)), long(keys),
              int(*std::max_element(clipped_u8.begin(), clipped_u8.end())));
  return 0;
}

// CUDA row kernels vs plain double-precision references written here:
//   softmax / clipped softmax (causal, offsets, masks, fully hidden rows): float |Δ| ≤ 1e-5 + 1e-4·|y|,
//     uint8 output within 1 level;  layer norm: |Δ| ≤ 1e-4·(1 + |y|), 8-bit within 1 level;
//   gelu: |Δ| ≤ 1e-5·(1 + |y|);  quantize / dequantize: bit-identical to qtx::quantize_one / dequantize_one.
#include "cuda/support.cuh"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include <qtx/cuda/elementwise.cuh>
#include <qtx/cuda/layer_norm.cuh>
#include <qtx/cuda/softmax.cuh>
#include <qtx/epilogue/stages.hpp>
#include <qtx/quant/quantize.hpp>

namespace {

using namespace qtx;
using qtx_test::to_device;

std::vector<double> reference_softmax(const std::vector<float>& x, index_t rows, index_t cols,
                                      const cuda::softmax_config& cfg, const std::vector<float>& mask,
                                      index_t mask_rows) {
  std::vector<double> y(x.size(), 0.0);
  const index_t query_rows = cfg.query_rows == 0 ? rows : cfg.query_rows;
  for (index_t r = 0; r < rows; ++r) {
    std::vector<double> v(std::size_t(cols), -std::numeric_limits<double>::infinity());
    double max = -std::numeric_limits<double>::infinity();
    for (index_t j = 0; j < cols; ++j) {
      if (cfg.causal && j > r % query_rows + cfg.causal_offset) continue;
      const double m = mask.empty() ? 0.0 : mask[std::size_t((r / (rows / mask_rows)) * cols + j)];
      v[std::size_t(j)] = double(cfg.scale) * x[std::size_t(r * cols + j)] + m;
      max = std::max(max, v[std::size_t(j)]);
    }
    if (std::isinf(max)) continue;  // fully hidden row: zeros
    double sum = 0.0;
    for (double& e : v) sum += (e = std::exp(e - max));
    for (index_t j = 0; j < cols; ++j) {
      const double p = v[std::size_t(j)] / sum;
      y[std::size_t(r * cols + j)] = std::clamp((double(cfg.zeta) - cfg.gamma) * p + cfg.gamma, 0.0, 1.0);
    }
  }
  return y;
}

void check_softmax(index_t rows, index_t cols, const cuda::softmax_config& cfg, index_t mask_rows, unsigned seed) {
  auto x = qtx_test::random_floats(std::size_t(rows * cols), -8.0f, 8.0f, seed);
  std::vector<float> mask;
  if (mask_rows > 0) {
    mask = qtx_test::random_floats(std::size_t(mask_rows * cols), -2.0f, 0.0f, seed + 1);
    for (index_t r = 0; r < mask_rows; ++r)  // padding: the last r columns of mask row r are hidden
      for (index_t j = std::max<index_t>(0, cols - r); j < cols; ++j)
        mask[std::size_t(r * cols + j)] = -std::numeric_limits<float>::infinity();
  }
  const auto expected = reference_softmax(x, rows, cols, cfg, mask, mask_rows);
  const auto x_dev = to_device(x);
  const auto mask_dev = to_device(mask);
  const matrix_view<const float> mask_view =
      mask_rows > 0 ? matrix_view<const float>{mask_dev.data(), mask_rows, cols, cols, 1} : matrix_view<const float>{};
  INFO("rows " << rows << " cols " << cols << " gamma " << cfg.gamma << " causal " << cfg.causal << " offset "
               << cfg.causal_offset << " mask rows " << mask_rows);

  cuda::device_buffer<float> y(rows * cols);
  cuda::softmax(cuda::sm80{}, make_view(x_dev.data(), rows, cols), make_view(y.data(), rows, cols), cfg, mask_view);
  const quant_params out_q{1.0f / 255.0f, 0};
  cuda::device_buffer<uint8_t> yq(rows * cols);
  cuda::softmax(cuda::sm90{}, make_view(x_dev.data(), rows, cols), make_view(yq.data(), rows, cols), cfg, mask_view,
                out_q);
  qtx_test::sync();
  const auto got = y.download();
  const auto got_q = yq.download();
  index_t bad = 0, bad_q = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    bad += !(std::fabs(got[i] - expected[i]) <= 1e-5 + 1e-4 * std::fabs(expected[i]));
    const int ref_q = quantize_one<uint8_t>(float(expected[i]), out_q.inv_scale(), 0);
    bad_q += std::abs(int(got_q[i]) - ref_q) > 1;
  }
  CHECK(bad == 0);
  CHECK(bad_q == 0);
}

}  // namespace

TEST_CASE("cuda softmax: plain and clipped, masks, causal offsets", "[cuda][softmax]") {
  unsigned seed = 1;
  for (index_t cols : {1, 3, 17, 64, 128, 197, 512, 1000, 2053}) {
    for (index_t rows : {1, 8, 24}) {
      cuda::softmax_config cfg;
      check_softmax(rows, cols, cfg, 0, seed++);
      cfg.gamma = -0.025f;  // BERT's clipped softmax
      check_softmax(rows, cols, cfg, 0, seed++);
      cfg.zeta = 1.003f;
      cfg.scale = 0.125f;
      check_softmax(rows, cols, cfg, rows, seed++);  // one mask row per row: row 0 unmasked, row r hides r columns
      check_softmax(rows, cols, cfg, 1, seed++);
      if (rows % 8 == 0) {
        cuda::softmax_config causal;
        causal.causal = true;
        causal.query_rows = 8;
        for (index_t offset : {-3, 0, 2}) {  // offset −3: the first queries see nothing → zero rows
          causal.causal_offset = offset;
          check_softmax(rows, cols, causal, rows / 8, seed++);
          causal.gamma = -0.05f;
          check_softmax(rows, cols, causal, 0, seed++);
          causal.gamma = 0.0f;
        }
      }
    }
  }
}

TEST_CASE("cuda softmax: a uniform row at T = 128 with gamma = -0.025 clips to exact zeros", "[cuda][softmax]") {
  const std::vector<float> x(128, 0.5f);
  const auto x_dev = to_device(x);
  cuda::device_buffer<float> y(128);
  cuda::softmax_config cfg;
  cfg.gamma = -0.025f;
  cuda::softmax(cuda::sm80{}, make_view(x_dev.data(), 1, 128), make_view(y.data(), 1, 128), cfg);
  qtx_test::sync();
  for (float v : y.download()) CHECK(v == 0.0f);
}

TEST_CASE("cuda layer norm: residual add and quantized output", "[cuda][layer_norm]") {
  unsigned seed = 50;
  for (index_t cols : {1, 7, 64, 384, 768, 1000}) {
    const index_t rows = 13;
    const auto x = qtx_test::random_floats(std::size_t(rows * cols), -3.0f, 5.0f, seed++);
    const auto res = qtx_test::random_floats(std::size_t(rows * cols), -1.0f, 1.0f, seed++);
    const auto gamma = qtx_test::random_floats(std::size_t(cols), 0.5f, 1.5f, seed++);
    const auto beta = qtx_test::random_floats(std::size_t(cols), -0.5f, 0.5f, seed++);
    std::vector<double> expected(x.size());
    for (index_t r = 0; r < rows; ++r) {
      double mean = 0.0, var = 0.0;
      for (index_t j = 0; j < cols; ++j) mean += double(x[std::size_t(r * cols + j)]) + res[std::size_t(r * cols + j)];
      mean /= double(cols);
      for (index_t j = 0; j < cols; ++j) {
        const double d = double(x[std::size_t(r * cols + j)]) + res[std::size_t(r * cols + j)] - mean;
        var += d * d;
      }
      var /= double(cols);
      for (index_t j = 0; j < cols; ++j) {
        const std::size_t i = std::size_t(r * cols + j);
        expected[i] = (double(x[i]) + res[i] - mean) / std::sqrt(var + 1e-5) * gamma[std::size_t(j)] + beta[std::size_t(j)];
      }
    }
    const auto x_dev = to_device(x), res_dev = to_device(res), gamma_dev = to_device(gamma), beta_dev = to_device(beta);
    cuda::device_buffer<float> y(rows * cols);
    cuda::device_buffer<int8_t> yq(rows * cols);
    const quant_params out_q{0.03f, 3};
    const matrix_view<const float> xv{x_dev.data(), rows, cols, cols, 1}, rv{res_dev.data(), rows, cols, cols, 1};
    cuda::layer_norm(cuda::sm80{}, xv, rv, gamma_dev.data(), beta_dev.data(), 1e-5f, make_view(y.data(), rows, cols));
    cuda::layer_norm(cuda::sm80{}, xv, rv, gamma_dev.data(), beta_dev.data(), 1e-5f, make_view(yq.data(), rows, cols),
                     out_q);
    qtx_test::sync();
    const auto got = y.download();
    const auto got_q = yq.download();
    INFO("cols " << cols);
    index_t bad = 0, bad_q = 0;
    for (std::size_t i = 0; i < got.size(); ++i) {
      bad += !(std::fabs(got[i] - expected[i]) <= 1e-4 * (1.0 + std::fabs(expected[i])));
      bad_q += std::abs(int(got_q[i]) - int(quantize_one<int8_t>(float(expected[i]), out_q.inv_scale(), 3))) > 1;
    }
    CHECK(bad == 0);
    CHECK(bad_q == 0);
  }
}

TEST_CASE("cuda gelu, quantize, dequantize on strided views", "[cuda][elementwise]") {
  const index_t rows = 37, cols = 301, stride = 320;
  auto x = qtx_test::random_floats(std::size_t(rows * stride), -6.0f, 6.0f, 77);
  x[5] = std::numeric_limits<float>::quiet_NaN();  // quantize: NaN → zero point
  x[6] = 1e30f;
  x[7] = -1e30f;
  const auto x_dev = to_device(x);
  const matrix_view<const float> xv{x_dev.data(), rows, cols, stride, 1};
  const quant_params q{0.05f, 128};

  cuda::device_buffer<float> g(rows * cols), back(rows * cols);
  cuda::device_buffer<uint8_t> xq(rows * cols);
  cuda::gelu(cuda::sm80{}, xv, make_view(g.data(), rows, cols), cuda::gelu_approximation::tanh);
  cuda::quantize(cuda::sm80{}, xv, make_view(xq.data(), rows, cols), q);
  cuda::dequantize(cuda::sm80{}, make_view(xq.data(), rows, cols), make_view(back.data(), rows, cols), q);
  qtx_test::sync();
  const auto got_g = g.download();
  const auto got_q = xq.download();
  const auto got_back = back.download();
  index_t bad_g = 0, bad_q = 0, bad_back = 0;
  for (index_t r = 0; r < rows; ++r)
    for (index_t c = 0; c < cols; ++c) {
      const float v = x[std::size_t(r * stride + c)];
      const std::size_t i = std::size_t(r * cols + c);
      if (!std::isnan(v) && std::fabs(v) < 100.0f) {
        const double ref = 0.5 * v * (1.0 + std::tanh(0.7978845608028654 * (v + 0.044715 * double(v) * v * v)));
        bad_g += !(std::fabs(got_g[i] - ref) <= 1e-5 * (1.0 + std::fabs(ref)));
      }
      bad_q += got_q[i] != quantize_one<uint8_t>(v, q.inv_scale(), q.zero_point);
      bad_back += got_back[i] != dequantize_one(got_q[i], q.scale, q.zero_point);
    }
  CHECK(bad_g == 0);
  CHECK(bad_q == 0);
  CHECK(bad_back == 0);
}

TEST_CASE("cuda row kernels reject bad arguments", "[cuda][softmax]") {
  cuda::device_buffer<float> x(64), y(64);
  cuda::softmax_config cfg;
  cfg.gamma = 0.1f;
  CHECK_THROWS_AS(cuda::softmax(cuda::sm80{}, make_view(x.data(), 8, 8), make_view(y.data(), 8, 8), cfg), qtx::error);
  CHECK_THROWS_AS(cuda::softmax(cuda::sm80{}, make_view(x.data(), 8, 8), make_view(y.data(), 4, 8)), qtx::error);
  CHECK_THROWS_AS(cuda::layer_norm(cuda::sm80{}, make_view(x.data(), 8, 8), {}, nullptr, nullptr, 1e-5f,
                                   make_view(y.data(), 8, 8)),
                  qtx::error);
  CHECK_THROWS_AS(cuda::quantize(cuda::sm80{}, make_view(x.data(), 8, 8), make_view(reinterpret_cast<uint8_t*>(y.data()), 8, 8),
                                 quant_params{0.0f, 0}),
                  qtx::error);
}

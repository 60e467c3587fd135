// CUDA GEMM vs the scalar oracle qtx::ref::gemm. u8·s8: the int32 accumulator and every integer
// epilogue (bias, requantize, dequantize alone) are bit-identical. Pipelines with float
// transcendental stages (GELU) differ by the device/host libm (erff, tanhf: a few ulp) and by FMA
// contraction, so there: float |Δ| ≤ 1e-5·(1 + |c|), 8-bit outputs within 1 level.
// fp16/bf16 → fp32: |Δ| ≤ 1e-4 · Σ_k |a·b| + 1e-6 (products are exact; fp32 tensor-core sums).
#include "cuda/support.cuh"

#include <catch2/catch.hpp>
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cmath>
#include <cstdlib>
#include <tuple>
#include <vector>

#include <qtx/cuda/gemm.cuh>
#include <qtx/epilogue/pipeline.hpp>
#include <qtx/ref/gemm.hpp>

namespace {

using namespace qtx;
using qtx_test::to_device;

struct shape {
  index_t m, n, k;
};

std::vector<shape> tail_sweep() {
  std::vector<shape> shapes;
  for (index_t m : {1, 7, 16, 17, 65, 130})
    for (index_t n : {1, 8, 17, 64, 129})
      for (index_t k : {1, 16, 31, 32, 33, 100, 257}) shapes.push_back({m, n, k});
  return shapes;
}

// Runs the int8 GEMM on the device and the oracle on the host with the pipeline made by
// make_pipeline(pointer table) — the same stages, pointing at device or host copies of the data.
enum class match { exact, libm };

template <class TC, class MakePipeline>
void check_int8(shape s, int32_t a_zp, int32_t b_zp, MakePipeline make_pipeline, unsigned seed,
                index_t a_row_pad = 0, index_t a_offset = 0, match how = match::exact) {
  const index_t lda = s.k + a_row_pad;
  const auto a_host = qtx_test::random_ints<uint8_t>(std::size_t(a_offset + s.m * lda), 0, 255, seed);
  const auto b_host = qtx_test::random_ints<int8_t>(std::size_t(s.k * s.n), -128, 127, seed + 1);
  const auto a_dev = to_device(a_host);
  const auto a_view = make_view(a_host.data(), s.m, s.k, lda, a_offset);
  const auto b_view = make_view(b_host.data(), s.k, s.n);

  const auto packed = cuda::pack_b<cuda::sm80>(b_view, b_zp);
  std::vector<TC> expected(std::size_t(s.m * s.n)), got(expected.size());
  ref::gemm(a_view, b_view, make_view(expected.data(), s.m, s.n), make_pipeline(false), a_zp, b_zp);

  cuda::device_buffer<TC> c_dev(s.m * s.n);
  const matrix_view<const uint8_t> a_dev_view{a_dev.data() + a_offset, s.m, s.k, lda, 1};
  cuda::gemm(cuda::sm90{}, a_dev_view, packed, make_view(c_dev.data(), s.m, s.n), make_pipeline(true), a_zp);
  qtx_test::sync();
  got = c_dev.download();
  INFO("M " << s.m << " N " << s.n << " K " << s.k << " a_zp " << a_zp << " b_zp " << b_zp);
  index_t mismatches = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    if (how == match::exact) {
      mismatches += got[i] != expected[i];
    } else if constexpr (std::is_same_v<TC, float>) {
      mismatches += !(std::fabs(got[i] - expected[i]) <= 1e-5f * (1.0f + std::fabs(expected[i])));
    } else {
      mismatches += std::abs(int32_t(got[i]) - int32_t(expected[i])) > 1;
    }
  }
  CHECK(mismatches == 0);
}

// Per-channel data of the epilogues, on host and device.
struct epilogue_data {
  std::vector<int32_t> bias;
  std::vector<float> multipliers, scales, residual;
  cuda::device_buffer<int32_t> bias_dev;
  cuda::device_buffer<float> multipliers_dev, scales_dev, residual_dev;
  index_t m, n;

  epilogue_data(index_t m_, index_t n_, unsigned seed) : m(m_), n(n_) {
    bias = qtx_test::random_ints<int32_t>(std::size_t(n), -5000, 5000, seed);
    multipliers = qtx_test::random_floats(std::size_t(n), 1e-5f, 4e-4f, seed + 1);
    scales = qtx_test::random_floats(std::size_t(n), 1e-4f, 1e-3f, seed + 2);
    residual = qtx_test::random_floats(std::size_t(m * n), -2.0f, 2.0f, seed + 3);
    bias_dev = to_device(bias);
    multipliers_dev = to_device(multipliers);
    scales_dev = to_device(scales);
    residual_dev = to_device(residual);
  }
  const int32_t* bias_ptr(bool dev) const { return dev ? bias_dev.data() : bias.data(); }
  const float* multipliers_ptr(bool dev) const { return dev ? multipliers_dev.data() : multipliers.data(); }
  const float* scales_ptr(bool dev) const { return dev ? scales_dev.data() : scales.data(); }
  matrix_view<const float> residual_view(bool dev) const {
    return {dev ? residual_dev.data() : residual.data(), m, n, n, 1};
  }
};

}  // namespace

TEST_CASE("cuda int8 gemm: int32 output with zero points, tail sweep", "[cuda][gemm]") {
  unsigned seed = 1;
  for (const shape s : tail_sweep()) {
    check_int8<int32_t>(s, 0, 0, [](bool) { return epilogue::make_pipeline(); }, seed++);
    check_int8<int32_t>(s, 131, 0, [](bool) { return epilogue::make_pipeline(); }, seed++);
    check_int8<int32_t>(s, 7, -3, [](bool) { return epilogue::make_pipeline(); }, seed++);
  }
}

TEST_CASE("cuda int8 gemm: W8A8 epilogues are bit-identical to the oracle", "[cuda][gemm]") {
  using epilogue::bias, epilogue::per_n, epilogue::per_tensor, epilogue::gelu_erf, epilogue::gelu_tanh,
      epilogue::residual_add, epilogue::make_pipeline;
  using requantize_n = epilogue::requantize<per_n>;
  using requantize_t = epilogue::requantize<per_tensor>;
  using dequantize_n = epilogue::dequantize<per_n>;
  using dequantize_t = epilogue::dequantize<per_tensor>;
  unsigned seed = 100;
  for (const shape s : {shape{17, 33, 31}, shape{64, 64, 64}, shape{130, 129, 257}, shape{5, 768, 768}}) {
    const epilogue_data d(s.m, s.n, seed++);
    const int32_t zp = 117;
    check_int8<uint8_t>(s, zp, 0,
                        [&](bool dev) {
                          return make_pipeline(bias<int32_t>{{d.bias_ptr(dev), d.n}},
                                               requantize_n{{d.multipliers_ptr(dev), d.n}, 3});
                        },
                        seed++);
    check_int8<int8_t>(s, zp, 0,
                       [&](bool dev) { return make_pipeline(requantize_t{{d.multipliers_ptr(dev), 1}, -5}); },
                       seed++);
    check_int8<float>(s, zp, 0,
                      [&](bool dev) {
                        return make_pipeline(bias<int32_t>{{d.bias_ptr(dev), d.n}}, dequantize_n{{d.scales_ptr(dev), d.n}},
                                             gelu_erf{}, residual_add{d.residual_view(dev)});
                      },
                      seed++, 0, 0, match::libm);
    check_int8<float>(s, zp, 0,
                      [&](bool dev) { return make_pipeline(bias<int32_t>{{d.bias_ptr(dev), d.n}}, dequantize_n{{d.scales_ptr(dev), d.n}}); },
                      seed++);
    check_int8<uint8_t>(s, zp, 0,
                        [&](bool dev) {
                          return make_pipeline(dequantize_t{{d.scales_ptr(dev), 1}}, gelu_tanh{},
                                               epilogue::quantize{40.0f, 20});
                        },
                        seed++, 0, 0, match::libm);
  }
}

TEST_CASE("cuda int8 gemm: misaligned A is staged, large tiles, extreme operands", "[cuda][gemm]") {
  const auto plain = [](bool) { return epilogue::make_pipeline(); };
  check_int8<int32_t>({33, 40, 45}, 9, 0, plain, 7, /*a_row_pad=*/3, /*a_offset=*/1);
  check_int8<int32_t>({1, 16, 45}, 9, 2, plain, 8, 0, 5);
  check_int8<int32_t>({33, 40, 45}, 9, 0, plain, 11, 3, 0);  // aligned rows, K tail inside a 16-byte copy
  check_int8<int32_t>({2048, 1152, 96}, 200, 0, plain, 9);  // 128×128 tiles on ≤ 144 SMs
  check_int8<int32_t>({1024, 1152, 80}, 3, 1, plain, 10);   // 64×128 tiles

  // K at the int32-safe bound with the largest |(a − za)(b − zb)|.
  const index_t k = ops::int8_gemm_max_k, m = 3, n = 5;
  const std::vector<uint8_t> a(std::size_t(m * k), 255);
  const std::vector<int8_t> b(std::size_t(k * n), -128);
  const auto packed = cuda::pack_b<cuda::sm80>(make_view(b.data(), k, n), 127);
  std::vector<int32_t> expected(std::size_t(m * n));
  ref::gemm(make_view(a.data(), m, k), make_view(b.data(), k, n), make_view(expected.data(), m, n),
            epilogue::make_pipeline(), 0, 127);
  const auto a_dev = to_device(a);
  cuda::device_buffer<int32_t> c(m * n);
  cuda::gemm(cuda::sm80{}, make_view(a_dev.data(), m, k), packed, make_view(c.data(), m, n),
             epilogue::make_pipeline(), 0);
  qtx_test::sync();
  CHECK(c.download() == expected);
}

TEMPLATE_TEST_CASE("cuda 16-bit gemm → fp32 matches the oracle", "[cuda][gemm]", __half, __nv_bfloat16) {
  using T = TestType;
  const auto to_t = [](float x) {
    if constexpr (std::is_same_v<T, __half>) return __float2half_rn(x);
    else return __float2bfloat16_rn(x);
  };
  const auto to_f = [](T x) {
    if constexpr (std::is_same_v<T, __half>) return __half2float(x);
    else return __bfloat162float(x);
  };
  unsigned seed = 500;
  for (const shape s : tail_sweep()) {
    const auto a_f = qtx_test::random_floats(std::size_t(s.m * s.k), -1.0f, 1.0f, seed++);
    const auto b_f = qtx_test::random_floats(std::size_t(s.k * s.n), -1.0f, 1.0f, seed++);
    const auto bias_f = qtx_test::random_floats(std::size_t(s.n), -1.0f, 1.0f, seed++);
    std::vector<T> a(a_f.size()), b(b_f.size());
    std::vector<float> a_r(a_f.size()), b_r(b_f.size());  // the rounded inputs, as floats
    for (std::size_t i = 0; i < a.size(); ++i) a_r[i] = to_f(a[i] = to_t(a_f[i]));
    for (std::size_t i = 0; i < b.size(); ++i) b_r[i] = to_f(b[i] = to_t(b_f[i]));
    const auto bias_dev = to_device(bias_f);

    std::vector<float> expected(std::size_t(s.m * s.n)), magnitude(expected.size());
    ref::gemm(matrix_view<const float>(make_view(a_r.data(), s.m, s.k)),
              matrix_view<const float>(make_view(b_r.data(), s.k, s.n)),
              make_view(expected.data(), s.m, s.n), epilogue::make_pipeline(epilogue::bias<float>{bias_f}));
    for (index_t i = 0; i < s.m; ++i)
      for (index_t j = 0; j < s.n; ++j)
        for (index_t p = 0; p < s.k; ++p)
          magnitude[std::size_t(i * s.n + j)] += std::fabs(a_r[std::size_t(i * s.k + p)] * b_r[std::size_t(p * s.n + j)]);

    const auto packed = cuda::pack_b<cuda::sm80>(make_view(b.data(), s.k, s.n));
    const auto a_dev = to_device(a);
    cuda::device_buffer<float> c(s.m * s.n);
    cuda::gemm(cuda::sm80{}, make_view(a_dev.data(), s.m, s.k), packed, make_view(c.data(), s.m, s.n),
               epilogue::make_pipeline(epilogue::bias<float>{bias_dev}));
    qtx_test::sync();
    const auto got = c.download();
    INFO("M " << s.m << " N " << s.n << " K " << s.k);
    index_t bad = 0;
    for (std::size_t i = 0; i < got.size(); ++i)
      bad += !(std::fabs(got[i] - expected[i]) <= 1e-4f * magnitude[i] + 1e-6f);
    CHECK(bad == 0);
  }
}

TEST_CASE("cuda gemm rejects bad arguments with qtx::error", "[cuda][gemm]") {
  std::vector<int8_t> b(4 * 8, 1);
  const auto packed = cuda::pack_b<cuda::sm80>(make_view(b.data(), 4, 8));
  cuda::device_buffer<uint8_t> a(16 * 4);
  cuda::device_buffer<int32_t> c(16 * 8);
  const auto a_view = make_view(a.data(), 16, 4);
  CHECK_THROWS_AS(cuda::gemm(cuda::sm80{}, make_view(a.data(), 16, 3), packed, make_view(c.data(), 16, 8)),
                  qtx::error);
  CHECK_THROWS_AS(cuda::gemm(cuda::sm80{}, a_view, packed, make_view(c.data(), 15, 8)), qtx::error);
  CHECK_THROWS_AS(cuda::gemm(cuda::sm80{}, a_view, packed, make_view(c.data(), 16, 8), epilogue::make_pipeline(), 256),
                  qtx::error);
  CHECK_THROWS_AS(cuda::pack_b<cuda::sm80>(make_view(b.data(), 4, 8), 200), qtx::error);
  CHECK_NOTHROW(cuda::gemm(cuda::sm80{}, make_view(a.data(), 0, 4), packed, make_view(c.data(), 0, 8)));
}

#include <catch2/catch.hpp>

#include <qtx/epilogue/pipeline.hpp>
#include <qtx/ref/gemm.hpp>

#include <cmath>
#include <vector>

namespace ep = qtx::epilogue;

TEST_CASE("each epilogue stage follows its formula", "[epilogue]") {
  const int32_t bias_values[] = {10, -20, 30};
  const float scales[] = {0.5f, 0.25f, 2.0f};
  CHECK(ep::bias<int32_t>{bias_values}(5, 0, 1) == -15);
  CHECK(ep::dequantize<ep::per_n>{scales}(8, 3, 2) == 16.0f);
  CHECK(ep::dequantize<ep::per_tensor>{scales}(8, 3, 2) == 4.0f);
  // requantize: round half to even, then + zero point, saturation left to the store.
  const float half[] = {0.5f};
  CHECK(ep::requantize<ep::per_tensor>{half, 3}(5, 0, 0) == 2 + 3);   // 2.5 → 2
  CHECK(ep::requantize<ep::per_tensor>{half, 3}(7, 0, 0) == 4 + 3);   // 3.5 → 4
  CHECK(ep::requantize<ep::per_tensor>{half, 3}(-5, 0, 0) == -2 + 3); // −2.5 → −2
  CHECK(ep::quantize{4.0f, 128}(0.375f, 0, 0) == 128 + 2);            // 1.5 → 2
  CHECK(ep::quantize{4.0f, 128}(std::nanf(""), 0, 0) == 128);
  CHECK(ep::relu{}(-3, 0, 0) == 0);
  CHECK(ep::relu{}(2.5f, 0, 0) == 2.5f);
  CHECK(ep::gelu_erf{}(0.0f, 0, 0) == 0.0f);
  CHECK(ep::gelu_erf{}(1.0f, 0, 0) == Approx(0.8413447460685429).epsilon(1e-6));
  CHECK(ep::gelu_tanh{}(1.0f, 0, 0) == Approx(0.8411919906082768).epsilon(1e-6));
  CHECK(ep::gelu_erf{}(-10.0f, 0, 0) == Approx(0.0).margin(1e-12));
  const float res[] = {1, 2, 3, 4};
  CHECK(ep::residual_add{qtx::make_view(res, 2, 2)}(0.5f, 1, 0) == 3.5f);
  CHECK(ep::scale{0.125f}(8.0f, 0, 0) == 1.0f);
}

TEST_CASE("fixed-point requantize stage matches the float product where it is exact", "[epilogue]") {
  const qtx::fixed_point_multiplier m[] = {qtx::to_fixed_point(0.25)};
  const ep::requantize_fixed<ep::per_tensor> stage{m, -1};
  CHECK(stage(10, 0, 0) == 2 - 1);   // 2.5 → 2 (ties to even)
  CHECK(stage(14, 0, 0) == 4 - 1);   // 3.5 → 4
  CHECK(stage(-10, 0, 0) == -2 - 1);
}

TEST_CASE("a pipeline applies its stages left to right, then stores with saturation", "[epilogue]") {
  const int32_t b[] = {100};
  const float m[] = {2.0f};
  auto p = ep::make_pipeline(ep::bias<int32_t>{b}, ep::requantize<ep::per_tensor>{m, 10});
  static_assert(decltype(p)::size == 2);
  CHECK(ep::evaluate<int32_t>(p, 5, 0, 0) == 220);
  CHECK(ep::evaluate<uint8_t>(p, 5, 0, 0) == 220);
  CHECK(ep::evaluate<uint8_t>(p, 100, 0, 0) == 255);
  CHECK(ep::evaluate<int8_t>(p, 5, 0, 0) == 127);
  CHECK(ep::evaluate<int8_t>(p, -200, 0, 0) == -128);
  auto to_float = ep::make_pipeline(ep::dequantize<ep::per_tensor>{m}, ep::gelu_erf{});
  CHECK(ep::evaluate<float>(to_float, 0, 0, 0) == 0.0f);
  CHECK(ep::evaluate<float>(ep::make_pipeline(), 7, 0, 0) == 7.0f);  // int32 → float store
}

TEST_CASE("reference GEMM with zero points equals the hand expansion", "[epilogue][ref]") {
  // A (2,3) u8 with za = 3, B (3,2) s8 with zb = −1.
  const uint8_t a[] = {1, 2, 3, 4, 5, 6};
  const int8_t b[] = {1, -1, 0, 2, -3, 1};
  int32_t c[4];
  qtx::ref::gemm(qtx::make_view(a, 2, 3), qtx::make_view(b, 3, 2), qtx::make_view(c, 2, 2),
                 ep::make_pipeline(), 3, -1);
  // row 0: (1−3,2−3,3−3) = (−2,−1,0); B−zb columns: (2,1,−2) and (0,3,2)
  CHECK(c[0] == -2 * 2 + -1 * 1 + 0);
  CHECK(c[1] == -2 * 0 + -1 * 3 + 0);
  // row 1: (1,2,3)
  CHECK(c[2] == 1 * 2 + 2 * 1 + 3 * -2);
  CHECK(c[3] == 1 * 0 + 2 * 3 + 3 * 2);
  const float af[] = {1.5f, -2.0f};
  const float bf[] = {4.0f, 0.25f};
  float cf[1];
  qtx::ref::gemm(qtx::make_view(af, 1, 2), qtx::make_view(bf, 2, 1), qtx::make_view(cf, 1, 1));
  CHECK(cf[0] == 5.5f);
}

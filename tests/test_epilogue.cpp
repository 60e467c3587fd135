#include <catch2/catch.hpp>

#include <qtx/epilogue/pipeline.hpp>
#include <qtx/ref/gemm.hpp>

#include <array>
#include <cmath>
#include <limits>
#include <span>
#include <type_traits>
#include <vector>

namespace ep = qtx::epilogue;

TEST_CASE("each epilogue stage follows its formula", "[epilogue]") {
  const int32_t bias_values[] = {10, -20, 30};
  const float scales[] = {0.5f, 0.25f, 2.0f};
  CHECK(ep::bias<int32_t>{bias_values}(5, 0, 1) == -15);
  const int32_t int32_max[] = {std::numeric_limits<int32_t>::max()};  // wraps, as the SIMD adds do
  CHECK(ep::bias<int32_t>{int32_max}(1, 0, 0) == std::numeric_limits<int32_t>::min());
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

namespace {
struct no_hook {  // a stage without validate(): not an epilogue::stage
  float operator()(float v, qtx::index_t, qtx::index_t) const { return v; }
};
}  // namespace

TEST_CASE("stages are trivially copyable, validatable, and built from containers or pointer + count", "[epilogue]") {
  static_assert(ep::stage<ep::bias<int32_t>> && ep::stage<ep::bias<float>>);
  static_assert(ep::stage<ep::dequantize<ep::per_n>> && ep::stage<ep::requantize<ep::per_tensor>>);
  static_assert(ep::stage<ep::requantize_fixed<ep::per_n>> && ep::stage<ep::quantize> && ep::stage<ep::relu>);
  static_assert(ep::stage<ep::gelu_erf> && ep::stage<ep::gelu_tanh> && ep::stage<ep::residual_add>);
  static_assert(ep::stage<ep::row_scale> && ep::stage<ep::scale>);
  static_assert(ep::stage<decltype(ep::make_pipeline(ep::relu{}, ep::scale{2.0f}))>);  // pipelines nest
  static_assert(!ep::stage<no_hook>);  // make_pipeline(no_hook{}) fails its static_assert
  static_assert(std::is_trivially_copyable_v<ep::span<const float>>);

  std::vector<float> v = {1, 2, 3};
  const std::array<float, 2> arr = {4, 5};
  const float c_array[] = {6};
  const ep::span<const float> from_vector = v, from_array = arr, from_c_array = c_array;
  const ep::span<const float> from_std_span = std::span<const float>(v).first(2), from_pointer{v.data() + 1, 2};
  CHECK((from_vector.data() == v.data() && from_vector.size() == 3));
  CHECK((from_array.data() == arr.data() && from_array.size() == 2));
  CHECK((from_c_array.data() == c_array && from_c_array.size() == 1));
  CHECK((from_std_span.data() == v.data() && from_std_span.size() == 2));
  CHECK((from_pointer[0] == 2.0f && from_pointer.size() == 2));
  const ep::span<float> mutable_span = v;
  const ep::span<const float> as_const = mutable_span;
  CHECK(as_const.size() == 3);
  CHECK(ep::span<const float>().empty());
  CHECK(ep::bias<float>{v}(1.0f, 0, 2) == 4.0f);
}

TEST_CASE("validate checks lengths against the call; device data is checked for length only", "[epilogue]") {
  const float nan_f = std::nanf("");
  const std::vector<float> bad = {1.0f, nan_f, 1.0f};
  const auto host = ep::gemm_call::of<uint8_t>("op", 2, 3);
  auto device = host;
  device.host_data = false;
  const ep::requantize<ep::per_n> stage{bad, 0};
  CHECK_THROWS_WITH(stage.validate(host), Catch::Contains("op: requantize multipliers[1] (nan) must be finite and positive"));
  CHECK_NOTHROW(stage.validate(device));  // a device pointer is never dereferenced on the host
  const ep::requantize<ep::per_n> short_stage{std::span(bad).first(2), 0};
  CHECK_THROWS_WITH(short_stage.validate(device), Catch::Contains("op: requantize multipliers has 2 elements, expected 3"));
  // The zero point is checked against C's element type; int32 and float C take any.
  CHECK_THROWS_AS((ep::quantize{1.0f, -1}.validate(host)), qtx::error);
  CHECK_NOTHROW((ep::quantize{1.0f, -1}.validate(ep::gemm_call::of<float>("op", 2, 3))));
  CHECK_NOTHROW((ep::quantize{1.0f, -1}.validate(ep::gemm_call::of<int8_t>("op", 2, 3))));
  // A batched call names its batch.
  auto batched = host;
  batched.batch = 4;
  CHECK_THROWS_WITH(short_stage.validate(batched), Catch::StartsWith("op (batch 4): "));
  // A pipeline validates every stage.
  const std::vector<int32_t> b(3, 0);
  CHECK_THROWS_AS(ep::make_pipeline(ep::bias<int32_t>{b}, stage).validate(host), qtx::error);
  CHECK_NOTHROW(ep::make_pipeline(ep::bias<int32_t>{b}, ep::relu{}).validate(host));
}

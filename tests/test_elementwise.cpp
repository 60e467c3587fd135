// Vector math (exp, erf, sigmoid) against std:: over dense sweeps, and the element-wise ops (GELU,
// quantize, dequantize, requantize) of every backend against ref/elementwise.hpp.
//
// Bounds asserted (measured with an exhaustive sweep of every float during development):
//   exp: ≤ 1 ulp from std::exp on [−104, 88.72] (subnormal results included); exp_nonpositive the
//   same on [−104, 0] where the result is normal, exactly 0 where it would be subnormal
//   erf: ≤ 2 ulp for |x| < 1, ≤ 2.5e−7 absolute for |x| ≥ 1
//   GELU: |y − y_ref| ≤ 8·ε·|y_ref| + 0.5·|x|·3e−7 (the erf bound, or the ref's own cancellation
//   error in 1 + tanh(u) for the tanh form, which the kernel avoids by using x·sigmoid(2u))
//   quantize / dequantize / requantize (float multiplier): bit-exact.
#include <catch2/catch.hpp>

#include "backends.hpp"

#include <qtx/cpu/rows/math.hpp>
#include <qtx/ops/elementwise.hpp>
#include <qtx/ref/elementwise.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <tuple>
#include <vector>

using qtx::index_t;
using backends = test_backends::compiled<std::tuple<qtx::cpu::scalar, qtx::cpu::avx2, qtx::cpu::avx512_vnni>>;
using vector_backends = test_backends::compiled<std::tuple<qtx::cpu::avx2, qtx::cpu::avx512_vnni>>;

namespace {
constexpr float eps = std::numeric_limits<float>::epsilon();

using test_backends::skip_unsupported;

// The vector math tests (exp, erf, sigmoid of cpu/rows/math.hpp) exist where a vector ISA is compiled in.
#if QTX_HAS_AVX2 || QTX_HAS_AVX512_VNNI
// Distance in representable floats (both finite or both the same infinity).
int64_t ulp_distance(float a, float b) {
  const auto ordinal = [](float f) {
    int32_t i;
    std::memcpy(&i, &f, sizeof i);
    return i < 0 ? -int64_t(i & 0x7fffffff) : int64_t(i);
  };
  return std::llabs(ordinal(a) - ordinal(b));
}

// Applies a vector function to every element of xs.
template <class A, class F>
std::vector<float> apply(const std::vector<float>& xs, F f) {
  constexpr std::size_t W = qtx::cpu::rows::lanes<A>;
  std::vector<float> ys(xs.size());
  for (std::size_t i = 0; i + W <= xs.size(); i += W)
    f(qtx::cpu::rows::vfloat<A>::load_unaligned(xs.data() + i)).store_unaligned(ys.data() + i);
  return ys;
}

// A dense grid of n points over [lo, hi] (n a multiple of 16).
std::vector<float> grid(float lo, float hi, std::size_t n) {
  std::vector<float> xs(n);
  for (std::size_t i = 0; i < n; ++i) xs[i] = float(lo + (double(hi) - lo) * double(i) / double(n - 1));
  return xs;
}

constexpr std::size_t sweep_points = std::size_t(1) << 22;
#endif
}  // namespace

#if QTX_HAS_AVX2 || QTX_HAS_AVX512_VNNI
TEMPLATE_LIST_TEST_CASE("vector exp is within 1 ulp of std::exp over a dense sweep", "[elementwise][math]",
                        vector_backends) {
  if constexpr (qtx::cpu::rows::has_simd<TestType>) {
    if (skip_unsupported<TestType>()) return;
    using A = qtx::cpu::rows::simd_arch_t<TestType>;
    auto xs = grid(-104.0f, 88.72f, sweep_points);
    const auto near_zero = grid(-1.0f / 64, 1.0f / 64, sweep_points / 4);  // where exp ≈ 1 + x
    xs.insert(xs.end(), near_zero.begin(), near_zero.end());
    const auto full = apply<A>(xs, [](auto v) { return qtx::cpu::rows::exp(v); });
    const auto nonpositive = apply<A>(xs, [](auto v) { return qtx::cpu::rows::exp_nonpositive(v); });
    int64_t worst = 0, worst_nonpositive = 0, flushed_wrong = 0;
    for (std::size_t i = 0; i < xs.size(); ++i) {
      worst = std::max(worst, ulp_distance(full[i], std::exp(xs[i])));
      if (xs[i] > 0.0f) continue;
      if (std::exp(xs[i]) >= std::numeric_limits<float>::min())
        worst_nonpositive = std::max(worst_nonpositive, ulp_distance(nonpositive[i], std::exp(xs[i])));
      else
        flushed_wrong += nonpositive[i] != 0.0f;  // subnormal results are flushed to exactly 0
    }
    CHECK(worst <= 1);
    CHECK(worst_nonpositive <= 1);
    CHECK(flushed_wrong == 0);

    const float inf = std::numeric_limits<float>::infinity();
    std::vector<float> special = {-inf, -1000.0f, -103.5f, -0.0f, 0.0f, 88.73f, 1000.0f, inf, std::nanf("")};
    special.resize(32, 0.0f);
    const auto e = apply<A>(special, [](auto v) { return qtx::cpu::rows::exp(v); });
    CHECK(e[0] == 0.0f);
    CHECK(e[1] == 0.0f);
    CHECK(e[2] == std::exp(-103.5f));  // subnormal, correctly rounded
    CHECK(e[3] == 1.0f);
    CHECK(e[4] == 1.0f);
    CHECK(e[5] == inf);
    CHECK(e[6] == inf);
    CHECK(e[7] == inf);
    CHECK(std::isnan(e[8]));
    const auto en = apply<A>(special, [](auto v) { return qtx::cpu::rows::exp_nonpositive(v); });
    CHECK(en[0] == 0.0f);
    CHECK(en[1] == 0.0f);
    CHECK(en[2] == 0.0f);  // subnormal: flushed
    CHECK(en[3] == 1.0f);
    CHECK(std::isnan(en[8]));
    // The flush boundary: the smallest argument with a normal result keeps it.
    std::vector<float> edge = {qtx::cpu::rows::exp_constants::normal_min_arg,
                               std::nextafter(qtx::cpu::rows::exp_constants::normal_min_arg, -100.0f)};
    edge.resize(32, 0.0f);
    const auto ee = apply<A>(edge, [](auto v) { return qtx::cpu::rows::exp_nonpositive(v); });
    CHECK(ulp_distance(ee[0], std::exp(edge[0])) <= 1);
    CHECK(ee[1] == 0.0f);
  } else {
    WARN(TestType::name() << " not compiled in: skipped");
  }
}

TEMPLATE_LIST_TEST_CASE("vector erf and sigmoid error bounds over a dense sweep", "[elementwise][math]", vector_backends) {
  if constexpr (qtx::cpu::rows::has_simd<TestType>) {
    if (skip_unsupported<TestType>()) return;
    using A = qtx::cpu::rows::simd_arch_t<TestType>;
    const auto xs = grid(-6.0f, 6.0f, sweep_points);
    const auto erf = apply<A>(xs, [](auto v) { return qtx::cpu::rows::erf(v); });
    const auto sig = apply<A>(xs, [](auto v) { return qtx::cpu::rows::sigmoid(v); });
    int64_t worst_series_ulp = 0, worst_sigmoid_ulp = 0;
    double worst_tail = 0;
    for (std::size_t i = 0; i < xs.size(); ++i) {
      if (std::fabs(xs[i]) < 1.0f)
        worst_series_ulp = std::max(worst_series_ulp, ulp_distance(erf[i], std::erf(xs[i])));
      else
        worst_tail = std::max(worst_tail, std::fabs(double(erf[i]) - std::erf(double(xs[i]))));
      const float want = float(1.0 / (1.0 + std::exp(-double(xs[i]))));
      worst_sigmoid_ulp = std::max(worst_sigmoid_ulp, ulp_distance(sig[i], want));
    }
    CHECK(worst_series_ulp <= 2);
    CHECK(worst_tail <= 2.5e-7);
    CHECK(worst_sigmoid_ulp <= 3);
  } else {
    WARN(TestType::name() << " not compiled in: skipped");
  }
}
#endif

TEMPLATE_LIST_TEST_CASE("GELU (erf and tanh forms) matches the epilogue stages", "[elementwise]", backends) {
  if (skip_unsupported<TestType>()) return;
  for (index_t cols : {1, 2, 3, 7, 8, 15, 16, 17, 33, 64, 65, 130, 197, 768, 3072}) {
    const index_t rows = 3;
    std::mt19937 rng{unsigned(cols)};
    std::normal_distribution<float> d(0.0f, 3.0f);
    std::vector<float> x(rows * cols), y(x.size()), ref(x.size());
    for (auto& v : x) v = d(rng);
    for (auto form : {qtx::gelu_approximation::none, qtx::gelu_approximation::tanh}) {
      qtx::ops::gelu(TestType{}, qtx::make_view(x.data(), rows, cols), qtx::make_view(y.data(), rows, cols), form);
      qtx::ref::gelu(qtx::make_view(x.data(), rows, cols), qtx::make_view(ref.data(), rows, cols), form);
      for (std::size_t k = 0; k < x.size(); ++k) {
        INFO("x " << x[k] << " y " << y[k] << " ref " << ref[k] << " form " << int(form));
        REQUIRE(std::fabs(y[k] - ref[k]) <= 8 * eps * std::fabs(ref[k]) + 0.5f * std::fabs(x[k]) * 3e-7f);
      }
    }
  }
  std::vector<float> special = {0.0f, -0.0f, std::numeric_limits<float>::infinity(), -1e30f, std::nanf("")}, y(5);
  qtx::ops::gelu(TestType{}, qtx::make_view(special.data(), 1, 5), qtx::make_view(y.data(), 1, 5));
  CHECK(y[0] == 0.0f);
  CHECK(y[2] == std::numeric_limits<float>::infinity());
  CHECK(y[3] == 0.0f);
  CHECK(std::isnan(y[4]));
}

TEMPLATE_LIST_TEST_CASE("quantize, dequantize and requantize are bit-exact", "[elementwise]", backends) {
  if (skip_unsupported<TestType>()) return;
  const float inf = std::numeric_limits<float>::infinity();
  for (index_t cols : {1, 5, 8, 16, 17, 31, 64, 100, 768}) {
    const index_t rows = 3, n = rows * cols;
    std::mt19937 rng(unsigned(cols) + 1);
    std::normal_distribution<float> d(0.0f, 2.0f);
    std::vector<float> x(n);
    for (auto& v : x) v = d(rng);
    // Rounding ties, saturation, NaN and infinities must follow quantize_one exactly.
    const float specials[] = {0.5f / 32, 1.5f / 32, 2.5f / 32, -0.5f / 32, 1e30f, -1e30f, inf, -inf, std::nanf("")};
    for (std::size_t k = 0; k < std::size(specials) && k < std::size_t(n); ++k) x[k * 7 % n] = specials[k];
    std::vector<int32_t> acc(n);
    std::uniform_int_distribution<int32_t> di(-2000000, 2000000);
    for (auto& v : acc) v = di(rng);
    acc[0] = std::numeric_limits<int32_t>::max();
    acc[n - 1] = std::numeric_limits<int32_t>::min();
    const auto xv = qtx::make_view(x.data(), rows, cols);
    const auto av = qtx::make_view(acc.data(), rows, cols);

    const auto run = [&](auto tag) {
      using T = decltype(tag);
      const qtx::quant_params p{1.0f / 32, std::is_same_v<T, uint8_t> ? 100 : -3};
      std::vector<T> q(n), q_ref(n);
      qtx::ops::quantize(TestType{}, xv, qtx::make_view(q.data(), rows, cols), p);
      qtx::ref::quantize(xv, qtx::make_view(q_ref.data(), rows, cols), p);
      REQUIRE(q == q_ref);
      std::vector<float> back(n), back_ref(n);
      qtx::ops::dequantize(TestType{}, qtx::make_view(q.data(), rows, cols), qtx::make_view(back.data(), rows, cols), p);
      qtx::ref::dequantize(qtx::make_view(q.data(), rows, cols), qtx::make_view(back_ref.data(), rows, cols), p);
      REQUIRE(back == back_ref);
      qtx::ops::requantize(TestType{}, av, qtx::make_view(q.data(), rows, cols), 3.1e-5f, p.zero_point);
      qtx::ref::requantize(av, qtx::make_view(q_ref.data(), rows, cols), 3.1e-5f, p.zero_point);
      REQUIRE(q == q_ref);
      const auto fixed = qtx::to_fixed_point(3.1e-5);
      qtx::ops::requantize(TestType{}, av, qtx::make_view(q.data(), rows, cols), fixed, p.zero_point);
      qtx::ref::requantize(av, qtx::make_view(q_ref.data(), rows, cols), fixed, p.zero_point);
      REQUIRE(q == q_ref);
    };
    run(uint8_t{});
    run(int8_t{});
  }
}

TEST_CASE("element-wise ops reject bad arguments", "[elementwise]") {
  const qtx::cpu::native arch{};
  std::vector<float> x(12), y(12);
  std::vector<uint8_t> q(12);
  std::vector<int32_t> acc(12);
  const auto xv = qtx::make_view(x.data(), 3, 4);
  const auto qv = qtx::make_view(q.data(), 3, 4);
  CHECK_THROWS_AS(qtx::ops::gelu(arch, xv, qtx::make_view(y.data(), 4, 3)), qtx::error);
  CHECK_THROWS_AS(qtx::ops::gelu(arch, xv, qtx::make_view(x.data() + 1, 2, 4)), qtx::error);
  CHECK_NOTHROW(qtx::ops::gelu(arch, xv, xv));
  CHECK_THROWS_AS(qtx::ops::quantize(arch, xv, qv, {0.0f, 0}), qtx::error);
  CHECK_THROWS_AS(qtx::ops::quantize(arch, xv, qv, {1.0f, 300}), qtx::error);
  CHECK_THROWS_AS(qtx::ops::quantize(arch, xv, qtx::make_view(q.data(), 2, 4), {1.0f, 0}), qtx::error);
  CHECK_THROWS_AS(qtx::ops::dequantize(arch, qv, xv, {NAN, 0}), qtx::error);
  CHECK_THROWS_AS(qtx::ops::requantize(arch, qtx::make_view(acc.data(), 3, 4), qv, -1.0f, 0), qtx::error);
  CHECK_THROWS_AS(qtx::ops::requantize(arch, qtx::make_view(acc.data(), 3, 4), qv, 1.0f, 256), qtx::error);
  CHECK_THROWS_AS(qtx::ops::requantize(arch, qtx::make_view(acc.data(), 3, 4), qv, qtx::fixed_point_multiplier{5, 0}, 0),
                  qtx::error);
}

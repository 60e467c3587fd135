// Tests of quant/: parameters, the scalar quantize / dequantize / requantize semantics (against
// independent oracles: an explicit floor-based round-half-even and exact long-double products),
// range observers (against hand-computed streams, a sorted-array percentile oracle and a
// brute-force MSE scan) and the paper's outlier metrics (hand-computed cases and known
// distributions).
#include <algorithm>
#include <catch2/catch.hpp>
#include <cfenv>
#include <cmath>
#include <cstdint>
#include <limits>
#include <qtx/quant/observers.hpp>
#include <qtx/quant/outlier_stats.hpp>
#include <qtx/quant/params.hpp>
#include <qtx/quant/quantize.hpp>
#include <random>
#include <span>
#include <vector>

using qtx::index_t;

namespace {

constexpr float nan_f = std::numeric_limits<float>::quiet_NaN();
constexpr float inf_f = std::numeric_limits<float>::infinity();
constexpr float max_f = std::numeric_limits<float>::max();

// Round half to even written differently from the library (floor + explicit tie test, in double).
int64_t oracle_round_half_even(double x) {
  const double lower = std::floor(x);
  const double fraction = x - lower;
  int64_t q = static_cast<int64_t>(lower);
  if (fraction > 0.5 || (fraction == 0.5 && (q % 2 != 0))) ++q;
  return q;
}

template <class T>
int32_t oracle_clamp(int64_t v) {
  return static_cast<int32_t>(
      std::clamp<int64_t>(v, qtx::element_traits<T>::min, qtx::element_traits<T>::max));
}

// quantize: x·inv_scale is the float product (that is the definition), the rest exactly.
template <class T>
int32_t oracle_quantize(float x, float inv_scale, int32_t zp) {
  if (std::isnan(x)) return zp;
  const float product = x * inv_scale;
  if (std::isinf(product))
    return product > 0 ? qtx::element_traits<T>::max : qtx::element_traits<T>::min;
  const double clamped = std::clamp(static_cast<double>(product), -1e12, 1e12);
  return oracle_clamp<T>(oracle_round_half_even(clamped) + zp);
}

static_assert(std::numeric_limits<long double>::digits >= 64,
              "the fixed-point oracle needs a 64-bit long double mantissa (|acc · m0| < 2^63)");

// acc · m0 · 2^(shift − 31) rounded half to even, exactly: the product has at most 63 significant
// bits, so it and its power-of-two scaling are exact in long double; nearbyintl rounds to even.
int64_t oracle_fixed_point(int32_t acc, qtx::fixed_point_multiplier f) {
  const long double exact = std::ldexp(static_cast<long double>(acc) * f.m0, f.shift - 31);
  const long double rounded = std::nearbyint(exact);
  return static_cast<int64_t>(std::clamp<long double>(rounded, INT32_MIN, INT32_MAX));
}

std::vector<float> normal_sample(std::size_t n, unsigned seed, float mean = 0.0f,
                                 float stddev = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(mean, stddev);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

std::vector<float> uniform_sample(std::size_t n, unsigned seed, float lo, float hi) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

// numpy.percentile(a, q) with the default 'linear' method, on a sorted copy.
double oracle_percentile(std::vector<float> a, double q) {
  std::sort(a.begin(), a.end());
  const double h = (a.size() - 1) * q / 100.0;
  const std::size_t i = static_cast<std::size_t>(std::floor(h));
  if (i + 1 >= a.size()) return a.back();
  return a[i] + (h - i) * (static_cast<double>(a[i + 1]) - a[i]);
}

bool within_one_ulp(float a, float b) { return a == b || std::nextafter(a, b) == b; }

bool same_params(qtx::quant_params a, qtx::quant_params b) {
  return a.scale == b.scale && a.zero_point == b.zero_point;
}

}  // namespace

// ---------------------------------------------------------------- params.hpp

TEST_CASE("asymmetric_params: the range includes 0 and 0 is exact", "[quant][params]") {
  const auto p = qtx::asymmetric_params<uint8_t>(-1.0f, 3.0f);
  CHECK(p.scale == 4.0f / 255.0f);
  CHECK(p.zero_point == 64);  // round(1 / (4/255)) = round(63.75)
  CHECK(qtx::quantize_one<uint8_t>(0.0f, p.inv_scale(), p.zero_point) == p.zero_point);
  CHECK(qtx::dequantize_one<uint8_t>(uint8_t(p.zero_point), p.scale, p.zero_point) == 0.0f);

  // Entirely positive / negative ranges are widened to include 0.
  const auto pos = qtx::asymmetric_params<uint8_t>(2.0f, 5.0f);
  CHECK(pos.scale == 5.0f / 255.0f);
  CHECK(pos.zero_point == 0);
  const auto neg = qtx::asymmetric_params<uint8_t>(-5.0f, -2.0f);
  CHECK(neg.scale == 5.0f / 255.0f);
  CHECK(neg.zero_point == 255);

  // Zero-point ties round half to even: scale 1 exactly, −lo/scale = 2.5 and 3.5.
  CHECK(qtx::asymmetric_params<uint8_t>(-2.5f, 252.5f).zero_point == 2);
  CHECK(qtx::asymmetric_params<uint8_t>(-3.5f, 251.5f).zero_point == 4);

  // int8 asymmetric: zero point offset by qmin.
  const auto s8 = qtx::asymmetric_params<int8_t>(0.0f, 255.0f);
  CHECK(s8.scale == 1.0f);
  CHECK(s8.zero_point == -128);

  // 0 is exact for many random ranges.
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> d(-50.0f, 50.0f);
  for (int i = 0; i < 1000; ++i) {
    float lo = d(rng), hi = d(rng);
    if (lo > hi) std::swap(lo, hi);
    const auto q = qtx::asymmetric_params<uint8_t>(lo, hi);
    const uint8_t z = qtx::quantize_one<uint8_t>(0.0f, q.inv_scale(), q.zero_point);
    REQUIRE(qtx::dequantize_one(z, q.scale, q.zero_point) == 0.0f);
    REQUIRE(q.zero_point >= 0);
    REQUIRE(q.zero_point <= 255);
  }
}

TEST_CASE("asymmetric_params: degenerate ranges get scale 1, bad ranges throw", "[quant][params]") {
  CHECK(same_params(qtx::asymmetric_params<uint8_t>(0.0f, 0.0f), {1.0f, 0}));
  const auto s8 = qtx::asymmetric_params<int8_t>(0.0f, 0.0f);  // any zero point keeps 0 exact
  CHECK(s8.scale == 1.0f);
  CHECK(qtx::dequantize_one(qtx::quantize_one<int8_t>(0.0f, 1.0f, s8.zero_point), 1.0f,
                            s8.zero_point) == 0.0f);
  const auto single = qtx::asymmetric_params<uint8_t>(3.0f, 3.0f);  // [0, 3] after widening
  CHECK(single.scale == 3.0f / 255.0f);
  CHECK(single.zero_point == 0);
  CHECK_THROWS_AS(qtx::asymmetric_params<uint8_t>(nan_f, 1.0f), qtx::error);
  CHECK_THROWS_AS(qtx::asymmetric_params<uint8_t>(0.0f, nan_f), qtx::error);
  CHECK_THROWS_WITH(qtx::asymmetric_params<uint8_t>(2.0f, 1.0f),
                    Catch::Contains("lo (2) > hi (1)"));
}

TEST_CASE("symmetric_params: scale = absmax / 127, zero point 0", "[quant][params]") {
  CHECK(same_params(qtx::symmetric_params<int8_t>(127.0f), {1.0f, 0}));
  CHECK(same_params(qtx::symmetric_params<int8_t>(2.54f), {2.54f / 127.0f, 0}));
  CHECK(same_params(qtx::symmetric_params<int8_t>(0.0f), {1.0f, 0}));
  CHECK_THROWS_AS(qtx::symmetric_params<int8_t>(-1.0f), qtx::error);
  CHECK_THROWS_WITH(qtx::symmetric_params<int8_t>(nan_f), Catch::Contains("symmetric_params"));
  // absmax maps to ±127; −128 is reachable only below −absmax.
  const auto p = qtx::symmetric_params<int8_t>(10.0f);
  CHECK(qtx::quantize_one<int8_t>(10.0f, p.inv_scale(), 0) == 127);
  CHECK(qtx::quantize_one<int8_t>(-10.0f, p.inv_scale(), 0) == -127);
}

TEST_CASE("check_quant_params rejects bad scales and zero points by name", "[quant][params]") {
  CHECK_NOTHROW(qtx::check_quant_params<uint8_t>("f", "p", {0.5f, 255}));
  CHECK_NOTHROW(qtx::check_quant_params<int8_t>("f", "p", {0.5f, -128}));
  CHECK_THROWS_WITH(qtx::check_quant_params<uint8_t>("f", "p", {0.0f, 0}),
                    Catch::Contains("f: p.scale (0)"));
  CHECK_THROWS_AS(qtx::check_quant_params<uint8_t>("f", "p", {-1.0f, 0}), qtx::error);
  CHECK_THROWS_AS(qtx::check_quant_params<uint8_t>("f", "p", {nan_f, 0}), qtx::error);
  CHECK_THROWS_AS(qtx::check_quant_params<uint8_t>("f", "p", {inf_f, 0}), qtx::error);
  CHECK_THROWS_WITH(qtx::check_quant_params<uint8_t>("f", "p", {1.0f, 256}),
                    Catch::Contains("p.zero_point (256)"));
  CHECK_THROWS_AS(qtx::check_quant_params<uint8_t>("f", "p", {1.0f, -1}), qtx::error);
  CHECK_THROWS_AS(qtx::check_quant_params<int8_t>("f", "p", {1.0f, 128}), qtx::error);
  CHECK_THROWS_AS(qtx::check_quant_params<int8_t>("f", "p", {1.0f, -129}), qtx::error);
}

TEST_CASE("channel_quant_params indexes per-channel scales and optional zero points",
          "[quant][params]") {
  qtx::channel_quant_params sym{{0.5f, 0.25f}, {}, 1};
  CHECK(sym.channels() == 2);
  CHECK(same_params(sym[1], {0.25f, 0}));
  qtx::channel_quant_params asym{{0.5f, 0.25f}, {3, 7}, 0};
  CHECK(same_params(asym[1], {0.25f, 7}));
}

// Ranges whose width overflows float, and ranges so narrow that 1/scale would overflow, must
// still give parameters that quantize the range.
TEST_CASE("asymmetric_params: extreme but finite ranges", "[quant][params]") {
  // hi − lo overflows to inf in float: today scale 1 is returned for a valid, finite range.
  const auto wide = qtx::asymmetric_params<uint8_t>(-max_f, max_f);
  CHECK(std::isfinite(wide.scale));
  CHECK(wide.scale > 1e36f);
  // scale = 1e-40 / 255 is a subnormal whose reciprocal is inf: everything in (0, 1e-40]
  // quantizes to 255 instead of spreading over [0, 255].
  const auto narrow = qtx::asymmetric_params<uint8_t>(0.0f, 1e-40f);
  CHECK(std::isfinite(narrow.inv_scale()));
  CHECK(qtx::quantize_one<uint8_t>(0.5e-40f, narrow.inv_scale(), narrow.zero_point) < 255);
  const auto narrow_sym = qtx::symmetric_params<int8_t>(1e-40f);
  CHECK(std::isfinite(narrow_sym.inv_scale()));
}

// ---------------------------------------------------------------- quantize.hpp

TEST_CASE("quantize_one rounds half to even", "[quant][quantize]") {
  CHECK(qtx::quantize_one<int8_t>(0.5f, 1.0f, 0) == 0);
  CHECK(qtx::quantize_one<int8_t>(1.5f, 1.0f, 0) == 2);
  CHECK(qtx::quantize_one<int8_t>(2.5f, 1.0f, 0) == 2);
  CHECK(qtx::quantize_one<int8_t>(3.5f, 1.0f, 0) == 4);
  CHECK(qtx::quantize_one<int8_t>(-0.5f, 1.0f, 0) == 0);
  CHECK(qtx::quantize_one<int8_t>(-1.5f, 1.0f, 0) == -2);
  CHECK(qtx::quantize_one<int8_t>(-2.5f, 1.0f, 0) == -2);
  CHECK(qtx::quantize_one<int8_t>(0.25f, 2.0f, 0) == 0);    // 0.5 after scaling
  CHECK(qtx::quantize_one<int8_t>(0.75f, 2.0f, 0) == 2);    // 1.5
  CHECK(qtx::quantize_one<uint8_t>(0.5f, 1.0f, 10) == 10);  // the tie is decided before + zp
  CHECK(qtx::quantize_one<uint8_t>(1.5f, 1.0f, 10) == 12);
  CHECK(qtx::quantize_one<uint8_t>(2.5f, 1.0f, 11) == 13);
  CHECK(qtx::quantize_one<int8_t>(0.49999997f, 1.0f, 0) == 0);
  CHECK(qtx::quantize_one<int8_t>(0.50000006f, 1.0f, 0) == 1);
}

TEST_CASE("quantize_one saturates, maps NaN to the zero point and ±inf to the limits",
          "[quant][quantize]") {
  CHECK(qtx::quantize_one<int8_t>(200.0f, 1.0f, 0) == 127);
  CHECK(qtx::quantize_one<int8_t>(-200.0f, 1.0f, 0) == -128);
  CHECK(qtx::quantize_one<int8_t>(127.4f, 1.0f, 0) == 127);
  CHECK(qtx::quantize_one<int8_t>(-128.4f, 1.0f, 0) == -128);
  CHECK(qtx::quantize_one<uint8_t>(-1.0f, 1.0f, 0) == 0);
  CHECK(qtx::quantize_one<uint8_t>(300.0f, 1.0f, 0) == 255);
  CHECK(qtx::quantize_one<uint8_t>(250.0f, 1.0f, 10) == 255);
  CHECK(qtx::quantize_one<uint8_t>(-5.0f, 1.0f, 3) == 0);
  // Products beyond int32 (and their sum with the zero point) must not wrap.
  CHECK(qtx::quantize_one<uint8_t>(3e9f, 1.0f, 255) == 255);
  CHECK(qtx::quantize_one<uint8_t>(-3e9f, 1.0f, 255) == 0);
  CHECK(qtx::quantize_one<int8_t>(max_f, 2.0f, 127) == 127);
  CHECK(qtx::quantize_one<int8_t>(-max_f, 2.0f, -128) == -128);
  CHECK(qtx::quantize_one<int32_t>(3e9f, 1.0f, 0) == INT32_MAX);
  CHECK(qtx::quantize_one<int32_t>(-3e9f, 1.0f, 0) == INT32_MIN);
  for (int32_t zp : {0, 17, 255}) {
    CHECK(qtx::quantize_one<uint8_t>(nan_f, 0.1f, zp) == zp);
    CHECK(qtx::quantize_one<uint8_t>(inf_f, 0.1f, zp) == 255);
    CHECK(qtx::quantize_one<uint8_t>(-inf_f, 0.1f, zp) == 0);
  }
  CHECK(qtx::quantize_one<int8_t>(nan_f, 3.0f, -7) == -7);
  CHECK(qtx::quantize_one<int8_t>(inf_f, 3.0f, -7) == 127);
  CHECK(qtx::quantize_one<int8_t>(-inf_f, 3.0f, -7) == -128);
}

TEMPLATE_TEST_CASE("quantize_one matches the oracle on random and edge inputs", "[quant][quantize]",
                   int8_t, uint8_t) {
  using T = TestType;
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> log_scale(-12.0f, 12.0f);
  std::uniform_int_distribution<int32_t> zp_dist(qtx::element_traits<T>::min,
                                                 qtx::element_traits<T>::max);
  std::uniform_real_distribution<float> level(-300.0f, 300.0f);
  const float edges[] = {0.0f,    -0.0f,  0.5f,          -0.5f,          1.5f,   127.5f,
                         -128.5f, 255.5f, 1e-30f,        max_f,          -max_f, inf_f,
                         -inf_f,  nan_f,  2147483520.0f, -2147483648.0f, 3e9f};
  for (int i = 0; i < 20000; ++i) {
    const float scale = std::exp2(log_scale(rng));
    const float inv = 1.0f / scale;
    const int32_t zp = zp_dist(rng);
    // Half the inputs sit exactly on a tie (k + 0.5 levels) when the scale allows it.
    float x = level(rng) * scale;
    if (i % 2 == 0) x = (std::round(level(rng)) + 0.5f) * scale;
    if (i % 50 == 0) x = edges[(i / 50) % std::size(edges)];
    REQUIRE(int32_t(qtx::quantize_one<T>(x, inv, zp)) == oracle_quantize<T>(x, inv, zp));
  }
}

TEST_CASE("quantize → dequantize of in-range values errs by at most scale / 2",
          "[quant][quantize]") {
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> bound(-20.0f, 20.0f);
  for (int trial = 0; trial < 200; ++trial) {
    float lo = bound(rng), hi = bound(rng);
    if (lo > hi) std::swap(lo, hi);
    const auto p = qtx::asymmetric_params<uint8_t>(lo, hi);
    const auto s = qtx::symmetric_params<int8_t>(std::max(std::abs(lo), std::abs(hi)));
    // Float products: allow a relative 1e-5 above the real-number bound.
    const float tol_p = 0.5f * p.scale * (1.0f + 1e-5f), tol_s = 0.5f * s.scale * (1.0f + 1e-5f);
    std::uniform_real_distribution<float> inside(lo, hi);
    for (int i = 0; i < 200; ++i) {
      const float x = i == 0 ? lo : i == 1 ? hi : inside(rng);
      const uint8_t q = qtx::quantize_one<uint8_t>(x, p.inv_scale(), p.zero_point);
      REQUIRE(std::abs(qtx::dequantize_one(q, p.scale, p.zero_point) - x) <= tol_p);
      const int8_t qs = qtx::quantize_one<int8_t>(x, s.inv_scale(), 0);
      REQUIRE(std::abs(qtx::dequantize_one(qs, s.scale, 0) - x) <= tol_s);
    }
  }
}

TEST_CASE("dequantize and the buffer forms follow the scalar definitions", "[quant][quantize]") {
  CHECK(qtx::dequantize_one<uint8_t>(200, 0.5f, 100) == 50.0f);
  CHECK(qtx::dequantize_one<int8_t>(-128, 0.25f, 0) == -32.0f);
  const std::vector<float> x = {-1.0f, 0.0f, 0.3f, 2.5f, nan_f, inf_f, -inf_f, 100.0f};
  const qtx::quant_params p{0.02f, 50};
  std::vector<uint8_t> q(x.size());
  qtx::quantize<uint8_t>(x, q, p);
  for (std::size_t i = 0; i < x.size(); ++i)
    CHECK(q[i] == qtx::quantize_one<uint8_t>(x[i], p.inv_scale(), 50));
  std::vector<float> back(x.size());
  qtx::dequantize<uint8_t>(q, back, p);
  for (std::size_t i = 0; i < x.size(); ++i)
    CHECK(back[i] == qtx::dequantize_one(q[i], p.scale, 50));

  std::vector<uint8_t> short_q(3);
  CHECK_THROWS_WITH(qtx::quantize<uint8_t>(x, short_q, p), Catch::Contains("quantize: x has 8"));
  CHECK_THROWS_AS(qtx::dequantize<uint8_t>(q, std::span<float>(back).first(2), p), qtx::error);
  CHECK_THROWS_WITH(qtx::quantize<uint8_t>(x, q, {0.0f, 0}),
                    Catch::Contains("quantize: params.scale"));
  CHECK_THROWS_AS(qtx::quantize<uint8_t>(x, q, {1.0f, 300}), qtx::error);
  CHECK_THROWS_AS(qtx::dequantize<uint8_t>(q, back, {nan_f, 0}), qtx::error);
  std::vector<int8_t> s(x.size());
  CHECK_THROWS_AS(qtx::quantize<int8_t>(x, s, {1.0f, 128}), qtx::error);
  CHECK_NOTHROW(qtx::quantize<int8_t>(std::span<const float>(), std::span<int8_t>(), {1.0f, 0}));
}

TEST_CASE("float requantize: clamp(round_half_even(float(acc) · m) + zp)", "[quant][requantize]") {
  CHECK(qtx::requantize_one<int8_t>(5, 0.5f, 0) == 2);  // 2.5 → 2
  CHECK(qtx::requantize_one<int8_t>(7, 0.5f, 0) == 4);  // 3.5 → 4
  CHECK(qtx::requantize_one<int8_t>(-5, 0.5f, 0) == -2);
  CHECK(qtx::requantize_one<uint8_t>(5, 0.5f, 128) == 130);
  CHECK(qtx::requantize_one<uint8_t>(INT32_MAX, 1.0f, 0) == 255);
  CHECK(qtx::requantize_one<uint8_t>(INT32_MIN, 1.0f, 255) == 0);
  CHECK(qtx::requantize_one<int8_t>(INT32_MIN, 1e-9f, 0) == -2);  // −2.147… → −2
  std::mt19937 rng(5);
  std::uniform_int_distribution<int32_t> acc_dist(INT32_MIN, INT32_MAX);
  std::uniform_real_distribution<float> log_m(-30.0f, 0.0f);
  std::vector<int32_t> acc(4096);
  for (auto& a : acc) a = acc_dist(rng) >> (rng() % 31);
  const float m = std::exp2(log_m(rng));
  std::vector<uint8_t> out(acc.size());
  qtx::requantize<uint8_t>(acc, out, m, 77);
  for (std::size_t i = 0; i < acc.size(); ++i)
    REQUIRE(int32_t(out[i]) == oracle_quantize<uint8_t>(float(acc[i]), m, 77));

  CHECK_THROWS_WITH(qtx::requantize<uint8_t>(acc, std::span<uint8_t>(out).first(5), m, 0),
                    Catch::Contains("requantize: acc has 4096"));
  CHECK_THROWS_AS(qtx::requantize<uint8_t>(acc, out, 0.0f, 0), qtx::error);
  CHECK_THROWS_AS(qtx::requantize<uint8_t>(acc, out, -1.0f, 0), qtx::error);
  CHECK_THROWS_AS(qtx::requantize<uint8_t>(acc, out, nan_f, 0), qtx::error);
  CHECK_THROWS_AS(qtx::requantize<uint8_t>(acc, out, inf_f, 0), qtx::error);
  CHECK_THROWS_WITH(qtx::requantize<uint8_t>(acc, out, 1.0f, 256),
                    Catch::Contains("zero_point (256)"));
}

TEST_CASE("to_fixed_point normalises m0 to [2^30, 2^31) within half a Q31 ulp",
          "[quant][requantize]") {
  const auto check_representation = [](double m) {
    const auto f = qtx::to_fixed_point(m);
    INFO("m = " << m << ", m0 = " << f.m0 << ", shift = " << f.shift);
    REQUIRE(f.m0 >= (int32_t(1) << 30));
    REQUIRE(f.shift >= -31);
    REQUIRE(f.shift <= 31);
    const long double value = std::ldexp(static_cast<long double>(f.m0), f.shift - 31);
    REQUIRE(std::abs(value - static_cast<long double>(m)) <= std::ldexp(1.0L, f.shift - 32));
  };
  for (double m :
       {1.0, 0.5, 0.25, 0.75, 1.0 - 0x1p-40, 1.0 + 0x1p-40, 1.0 - 0x1p-31, 0x1p-31, 0x1.fffffffp-32,
        0x1p-32, 0x1.0000001p-32, 0.1, 1e-3, 3.0, 12345.678, 0x1p30, 0x1.ffffffcp30})
    check_representation(m);
  CHECK(qtx::to_fixed_point(1.0).m0 == (int32_t(1) << 30));
  CHECK(qtx::to_fixed_point(1.0).shift == 1);
  // Just below 1, the mantissa rounds up to 2^31 and is renormalised to the representation of 1.
  CHECK(qtx::to_fixed_point(1.0 - 0x1p-40).m0 == (int32_t(1) << 30));
  CHECK(qtx::to_fixed_point(1.0 - 0x1p-40).shift == 1);
  std::mt19937_64 rng(13);
  std::uniform_real_distribution<double> log_m(-31.9, 30.9);
  for (int i = 0; i < 20000; ++i) check_representation(std::exp2(log_m(rng)));

  CHECK_THROWS_WITH(qtx::to_fixed_point(0.0), Catch::Contains("to_fixed_point: multiplier (0)"));
  CHECK_THROWS_AS(qtx::to_fixed_point(-0.5), qtx::error);
  CHECK_THROWS_AS(qtx::to_fixed_point(std::nan("")), qtx::error);
  CHECK_THROWS_AS(qtx::to_fixed_point(std::numeric_limits<double>::infinity()), qtx::error);
  CHECK_THROWS_AS(qtx::to_fixed_point(0x1p31), qtx::error);
  CHECK_THROWS_AS(qtx::to_fixed_point(0x1p-33), qtx::error);
  CHECK_THROWS_AS(qtx::to_fixed_point(0x1.fffffffffp30), qtx::error);  // rounds up to 2^31
}

TEST_CASE("fixed-point requantize is the exact product rounded half to even",
          "[quant][requantize]") {
  REQUIRE(std::fegetround() == FE_TONEAREST);
  std::mt19937_64 rng(17);
  std::uniform_int_distribution<int32_t> acc_dist(INT32_MIN, INT32_MAX);
  std::uniform_int_distribution<int32_t> m0_dist(int32_t(1) << 30, INT32_MAX);
  std::uniform_int_distribution<int> shift_dist(-31, 31);
  const int32_t edge_accs[] = {INT32_MIN, INT32_MIN + 1, -65536,        -3,       -1, 0, 1, 2,
                               3,         65535,         INT32_MAX - 1, INT32_MAX};
  std::vector<qtx::fixed_point_multiplier> multipliers = {
      {int32_t(1) << 30, -31},  // 2^-32, the smallest
      {INT32_MAX, -31},         // just below 2^-31
      {int32_t(1) << 30, -30},  // 2^-31
      {INT32_MAX, 0},           // just below 1
      {int32_t(1) << 30, 1},    // 1
      {(int32_t(1) << 30) + 1, 1},
      {int32_t(1) << 30, 0},   // 0.5: every odd acc is a tie
      {int32_t(1) << 30, 31},  // 2^30: right shift 0, saturates
      {INT32_MAX, 31}};
  for (double m : {0x1p-32, 0x1p-31, 1.0 - 0x1p-31, 1.0 - 1e-7, 1.0, 0.3, 1e-5})
    multipliers.push_back(qtx::to_fixed_point(m));
  for (int i = 0; i < 200; ++i) multipliers.push_back({m0_dist(rng), shift_dist(rng)});

  for (const auto& f : multipliers) {
    INFO("m0 = " << f.m0 << ", shift = " << f.shift);
    for (int32_t acc : edge_accs)
      REQUIRE(qtx::fixed_point_scale(acc, f) == oracle_fixed_point(acc, f));
    for (int i = 0; i < 500; ++i) {
      const int32_t acc = acc_dist(rng) >> (rng() % 32);  // spread over all magnitudes
      const int64_t expected = oracle_fixed_point(acc, f);
      REQUIRE(qtx::fixed_point_scale(acc, f) == expected);
      REQUIRE(int32_t(qtx::requantize_one<int8_t>(acc, f, -3)) ==
              oracle_clamp<int8_t>(expected - 3));
      REQUIRE(int32_t(qtx::requantize_one<uint8_t>(acc, f, 200)) ==
              oracle_clamp<uint8_t>(expected + 200));
    }
  }
  // Ties at m = 0.5: 2.5 → 2, 3.5 → 4, −2.5 → −2.
  const auto half = qtx::to_fixed_point(0.5);
  CHECK(qtx::fixed_point_scale(5, half) == 2);
  CHECK(qtx::fixed_point_scale(7, half) == 4);
  CHECK(qtx::fixed_point_scale(-5, half) == -2);
  CHECK(qtx::requantize_one<uint8_t>(INT32_MAX, qtx::fixed_point_multiplier{INT32_MAX, 31}, 0) ==
        255);
}

TEST_CASE("fixed-point requantize buffer form checks its arguments", "[quant][requantize]") {
  std::vector<int32_t> acc = {INT32_MIN, -7, 0, 7, INT32_MAX};
  std::vector<int8_t> out(acc.size());
  const auto f = qtx::to_fixed_point(0.01);
  qtx::requantize<int8_t>(acc, out, f, 5);
  for (std::size_t i = 0; i < acc.size(); ++i)
    CHECK(out[i] == qtx::requantize_one<int8_t>(acc[i], f, 5));
  CHECK_THROWS_WITH(qtx::requantize<int8_t>(acc, out, qtx::fixed_point_multiplier{5, 0}, 0),
                    Catch::Contains("not normalised"));
  CHECK_THROWS_AS(qtx::requantize<int8_t>(acc, out, qtx::fixed_point_multiplier{1 << 30, 32}, 0),
                  qtx::error);
  CHECK_THROWS_AS(qtx::requantize<int8_t>(acc, out, qtx::fixed_point_multiplier{1 << 30, -32}, 0),
                  qtx::error);
  CHECK_THROWS_AS(qtx::requantize<int8_t>(acc, out, f, 128), qtx::error);
  CHECK_THROWS_AS(qtx::requantize<int8_t>(acc, std::span<int8_t>(out).first(1), f, 0), qtx::error);
}

// ---------------------------------------------------------------- observers.hpp

TEST_CASE("minmax_observer: min and max over every batch, non-finite values ignored",
          "[quant][observers]") {
  qtx::minmax_observer obs;
  CHECK(obs.empty());
  CHECK_THROWS_WITH(obs.range(), Catch::Contains("minmax_observer::range: nothing observed"));
  CHECK_THROWS_AS(obs.params<uint8_t>(), qtx::error);
  obs.observe(std::vector<float>{});  // an empty batch is a no-op
  obs.observe(std::vector<float>{nan_f, inf_f, -inf_f});
  CHECK(obs.empty());
  obs.observe(std::vector<float>{1.0f, -2.0f, 3.0f});
  obs.observe(std::vector<float>{0.5f, 7.0f, nan_f});
  CHECK(obs.range().lo == -2.0f);
  CHECK(obs.range().hi == 7.0f);
  CHECK(same_params(obs.params<uint8_t>(), qtx::asymmetric_params<uint8_t>(-2.0f, 7.0f)));
  CHECK(same_params(obs.params(), qtx::asymmetric_params<uint8_t>(-2.0f, 7.0f)));
  CHECK(same_params(obs.params<int8_t>(), qtx::symmetric_params<int8_t>(7.0f)));
  obs.reset();
  CHECK(obs.empty());
  obs.observe(std::vector<float>{-4.0f, -3.0f});
  CHECK(obs.range().lo == -4.0f);
  CHECK(obs.range().hi == -3.0f);
  CHECK(same_params(obs.params<int8_t>(), qtx::symmetric_params<int8_t>(4.0f)));

  // Every length around the lane count (including the tails), values at every position.
  std::mt19937 rng(1);
  for (std::size_t n = 1; n < 70; ++n) {
    for (int trial = 0; trial < 5; ++trial) {
      auto x = uniform_sample(n, rng(), -10.0f, 10.0f);
      if (trial == 4) x[rng() % n] = nan_f;
      qtx::minmax_observer o;
      o.observe(x);
      std::vector<float> finite;
      std::copy_if(x.begin(), x.end(), std::back_inserter(finite),
                   [](float v) { return !std::isnan(v); });
      if (finite.empty()) continue;
      const auto [lo, hi] = std::minmax_element(finite.begin(), finite.end());
      REQUIRE(o.range().lo == *lo);
      REQUIRE(o.range().hi == *hi);
    }
  }
}

TEST_CASE("observers take strided matrix views like the same values in a span",
          "[quant][observers]") {
  auto data = uniform_sample(7 * 9, 21, -3.0f, 5.0f);
  data[4 * 9 + 2] = 11.0f;
  data[1 * 9 + 8] = -9.0f;  // outside the block below
  const auto full = qtx::make_view(data.data(), 7, 9);
  const auto block = full.block(1, 1, 5, 7);  // skips column 8 and the first/last row
  std::vector<float> block_values;
  for (index_t r = 0; r < block.rows; ++r)
    for (index_t c = 0; c < block.cols; ++c) block_values.push_back(block(r, c));

  for (const auto& view :
       {qtx::matrix_view<const float>(block), qtx::matrix_view<const float>(block.transposed())}) {
    qtx::minmax_observer a, b;
    a.observe(view);
    b.observe(block_values);
    CHECK(a.range().hi == 11.0f);
    CHECK(a.range().lo == b.range().lo);
    qtx::percentile_observer pa(90.0), pb(90.0);
    pa.observe(view);
    pb.observe(block_values);
    CHECK(pa.range().lo == pb.range().lo);
    CHECK(pa.range().hi == pb.range().hi);
    qtx::mse_observer<uint8_t> ma, mb;
    ma.observe(view);
    mb.observe(block_values);
    CHECK(same_params(ma.params(), mb.params()));
  }
  qtx::minmax_observer o;
  CHECK_THROWS_WITH(o.observe(qtx::matrix_view<const float>(nullptr, 2, 2, 2)),
                    Catch::Contains("null data"));
  CHECK_THROWS_AS(o.observe(qtx::matrix_view<const float>(data.data(), -1, 2, 2)), qtx::error);
  o.observe(qtx::matrix_view<const float>(nullptr, 0, 4, 4));  // empty view: no-op
  CHECK(o.empty());
}

TEST_CASE("running_minmax_observer: EMA with momentum 0.9 after the first batch",
          "[quant][observers]") {
  qtx::running_minmax_observer obs;
  CHECK(obs.momentum() == 0.9);
  CHECK_THROWS_AS(obs.range(), qtx::error);
  obs.observe(std::vector<float>{0.0f, 10.0f, 5.0f});
  CHECK(obs.range().lo == 0.0f);
  CHECK(obs.range().hi == 10.0f);
  obs.observe(std::vector<float>{-10.0f, 20.0f});
  CHECK(obs.range().lo == Approx(-1.0).epsilon(1e-6));  // 0.9·0 + 0.1·(−10)
  CHECK(obs.range().hi == Approx(11.0).epsilon(1e-6));  // 0.9·10 + 0.1·20
  obs.observe(std::vector<float>{});                    // empty and all-NaN batches do not move it
  obs.observe(std::vector<float>{nan_f});
  CHECK(obs.batches() == 2);
  obs.observe(std::vector<float>{1.0f, 2.0f});
  CHECK(obs.batches() == 3);
  CHECK(obs.range().lo == Approx(-0.8).epsilon(1e-6));  // 0.9·(−1) + 0.1·1
  CHECK(obs.range().hi == Approx(10.1).epsilon(1e-6));  // 0.9·11 + 0.1·2
  CHECK(same_params(obs.params<uint8_t>(),
                    qtx::asymmetric_params<uint8_t>(obs.range().lo, obs.range().hi)));

  // A matrix view is one batch, whatever its number of rows.
  qtx::running_minmax_observer half(0.5);
  const float rows[] = {0.0f, 1.0f, 5.0f, 6.0f};
  half.observe(qtx::make_view(rows, 2, 2));
  CHECK(half.range().lo == 0.0f);
  CHECK(half.range().hi == 6.0f);
  const float next[] = {-2.0f, 2.0f, 3.0f, 10.0f};
  half.observe(qtx::make_view(next, 2, 2));
  CHECK(half.batches() == 2);
  CHECK(half.range().lo == -1.0f);
  CHECK(half.range().hi == 8.0f);
  half.reset();
  CHECK(half.empty());

  CHECK_THROWS_WITH(qtx::running_minmax_observer(-0.1), Catch::Contains("momentum (-0.1)"));
  CHECK_THROWS_AS(qtx::running_minmax_observer(1.5), qtx::error);
  CHECK_THROWS_AS(qtx::running_minmax_observer(std::nan("")), qtx::error);
}

TEST_CASE("percentile_observer matches numpy's linear percentile on a sorted copy",
          "[quant][observers]") {
  qtx::percentile_observer five(90.0);
  five.observe(std::vector<float>{3.0f, 1.0f, 5.0f});
  five.observe(std::vector<float>{nan_f, 2.0f, 4.0f, inf_f});
  CHECK(five.count() == 5);
  CHECK(five.range().lo == Approx(1.4).epsilon(1e-7));  // numpy.percentile([1..5], 10)
  CHECK(five.range().hi == Approx(4.6).epsilon(1e-7));  // numpy.percentile([1..5], 90)

  qtx::percentile_observer single;
  CHECK(single.percentile() == 99.999);
  CHECK_THROWS_WITH(single.range(), Catch::Contains("percentile_observer::range"));
  single.observe(std::vector<float>{-2.5f});
  CHECK(single.range().lo == -2.5f);
  CHECK(single.range().hi == -2.5f);

  std::mt19937 rng(9);
  for (std::size_t n : {2u, 3u, 10u, 1001u, 100000u}) {
    const auto x = normal_sample(n, rng());
    for (double p : {50.0, 90.0, 99.0, 99.9, 99.999, 100.0}) {
      qtx::percentile_observer obs(p);
      obs.observe(std::span<const float>(x).first(n / 2));  // two batches = their concatenation
      obs.observe(std::span<const float>(x).subspan(n / 2));
      INFO("n = " << n << ", p = " << p);
      const auto r = obs.range();
      // Both interpolate in double; FMA contraction (build-dependent) may move the float by 1 ulp.
      REQUIRE(within_one_ulp(r.lo, static_cast<float>(oracle_percentile(x, 100.0 - p))));
      REQUIRE(within_one_ulp(r.hi, static_cast<float>(oracle_percentile(x, p))));
      REQUIRE(same_params(obs.params<int8_t>(), qtx::range_params<int8_t>(r)));
    }
  }
  // 99.999 of 100001 values is the second largest: one huge outlier is excluded.
  auto x = normal_sample(100000, 4);
  x.push_back(1e6f);
  qtx::percentile_observer obs;
  obs.observe(x);
  CHECK(obs.range().hi < 10.0f);
  obs.reset();
  CHECK(obs.empty());

  CHECK_THROWS_AS(qtx::percentile_observer(49.0), qtx::error);
  CHECK_THROWS_WITH(qtx::percentile_observer(100.5), Catch::Contains("percentile (100.5)"));
  CHECK_THROWS_AS(qtx::percentile_observer(std::nan("")), qtx::error);
}

TEMPLATE_TEST_CASE("mse_observer picks the best of its candidates", "[quant][observers]", uint8_t,
                   int8_t) {
  using T = TestType;
  constexpr bool is_signed = qtx::element_traits<T>::min < 0;
  // Uniform data in [−1, 1] plus one outlier at 100: a full-range grid step (100/127 or 101/255)
  // rounds most of the bulk away, so clipping the outlier to roughly half wins (estimated optimum
  // ≈ 60 for int8: (100 − h)²/n of clipping against (h/qmax)²/12 of rounding noise).
  const float outlier = 100.0f;
  auto x = uniform_sample(200000, 31, -1.0f, 1.0f);
  x.push_back(outlier);
  qtx::mse_observer<T> obs;
  CHECK(obs.candidates() == 100);
  obs.observe(x);
  const auto chosen = obs.range();
  CHECK(chosen.hi < 0.8f * outlier);
  CHECK(chosen.hi > 0.2f * outlier);
  // The choice is the argmin over the candidate rule, ties to the wider range (brute force).
  const float lo0 = is_signed ? -outlier : std::min(0.0f, *std::min_element(x.begin(), x.end()));
  double best = std::numeric_limits<double>::infinity();
  qtx::value_range expected{};
  for (int i = 100; i >= 1; --i) {
    const qtx::value_range r{static_cast<float>(lo0 * (i / 100.0)),
                             static_cast<float>(outlier * (i / 100.0))};
    const double e = obs.mean_squared_error(r);
    if (e < best) best = e, expected = r;
  }
  CHECK(chosen.lo == expected.lo);
  CHECK(chosen.hi == expected.hi);
  CHECK(obs.mean_squared_error(chosen) < 0.8 * obs.mean_squared_error({lo0, outlier}));
  CHECK(same_params(obs.params(), qtx::range_params<T>(chosen)));

  // Data the full range quantizes exactly keeps the full range.
  qtx::mse_observer<T> exact;
  exact.observe(std::vector<float>{-1.0f, 0.0f, 1.0f});
  if constexpr (is_signed) {
    CHECK(exact.range().lo == -1.0f);
    CHECK(exact.range().hi == 1.0f);
    CHECK(exact.mean_squared_error(exact.range()) == 0.0);
  } else {
    CHECK(exact.range().lo == -1.0f);
    CHECK(exact.range().hi == 1.0f);
  }

  // A later batch invalidates the cached choice; all-zero data gives the degenerate range.
  qtx::mse_observer<T> zeros(10);
  zeros.observe(std::vector<float>{0.0f, 0.0f, nan_f});
  CHECK(zeros.count() == 2);
  CHECK(zeros.range().lo == 0.0f);
  CHECK(zeros.range().hi == 0.0f);
  CHECK(zeros.params().scale == 1.0f);
  zeros.observe(std::vector<float>{2.0f});
  CHECK(zeros.range().hi == 2.0f);
  zeros.reset();
  CHECK_THROWS_WITH(zeros.range(), Catch::Contains("mse_observer::range"));
  CHECK_THROWS_AS(zeros.params(), qtx::error);
  CHECK_THROWS_AS(qtx::mse_observer<T>(0), qtx::error);
}

TEST_CASE("mse_observer keeps nearly the full range of outlier-free uniform data",
          "[quant][observers]") {
  qtx::mse_observer<uint8_t> obs;
  obs.observe(uniform_sample(10000, 8, 0.0f, 1.0f));
  CHECK(obs.range().lo == 0.0f);
  CHECK(obs.range().hi > 0.95f);
}

// ---------------------------------------------------------------- outlier_stats.hpp

TEST_CASE("inf_norm and kurtosis of hand-computed sequences", "[quant][outliers]") {
  const std::vector<float> neg = {1.0f, -5.0f, 3.0f};
  CHECK(qtx::inf_norm(neg) == 5.0f);  // the largest magnitude is negative
  CHECK(qtx::inf_norm(std::vector<float>{-0.0f}) == 0.0f);

  // {1, −1}: μ = 0, σ² = 2 (unbiased), mean d⁴ = 1.
  CHECK(qtx::kurtosis(std::vector<float>{1.0f, -1.0f}) ==
        Approx(1.0 / (4.0 + 1e-6)).epsilon(1e-12));
  // {0, 0, 0, 0, 1}: μ = 0.2, σ² = 0.8 / 4 = 0.2, mean d⁴ = (4·0.0016 + 0.4096) / 5 = 0.0832.
  const float five[] = {0.0f, 0.0f, 0.0f, 0.0f, 1.0f};
  CHECK(qtx::kurtosis(qtx::make_view(five, 1, 5)) == Approx(0.0832 / (0.04 + 1e-6)).epsilon(1e-6));
  CHECK(qtx::kurtosis(qtx::make_view(five, 5, 1)) == Approx(0.0832 / (0.04 + 1e-6)).epsilon(1e-6));
  // A constant sequence: 0 thanks to the epsilon, not 0/0.
  CHECK(qtx::kurtosis(std::vector<float>(10, 3.0f)) == 0.0);
  // Shift and scale invariant (up to the epsilon).
  auto g = normal_sample(1000, 2);
  auto shifted = g;
  for (float& v : shifted) v = 4.0f * v + 100.0f;
  CHECK(qtx::kurtosis(shifted) == Approx(qtx::kurtosis(g)).epsilon(1e-4));
}

TEST_CASE("kurtosis of known distributions: Gaussian ≈ 3, uniform ≈ 1.8, outliers ≫ 3",
          "[quant][outliers]") {
  const auto gauss = normal_sample(200000, 42, 0.5f, 2.0f);
  CHECK(qtx::kurtosis(gauss) == Approx(3.0).margin(0.1));
  const auto uni = uniform_sample(200000, 43, -3.0f, 1.0f);
  CHECK(qtx::kurtosis(uni) == Approx(1.8).margin(0.05));
  auto spiky = normal_sample(10000, 44);
  spiky[1234] = 100.0f;
  CHECK(qtx::kurtosis(spiky) > 1000.0);
  CHECK(qtx::inf_norm(spiky) == 100.0f);
}

TEST_CASE("outlier metrics work on strided views and check their arguments", "[quant][outliers]") {
  const auto data = normal_sample(6 * 10, 5);
  const auto full = qtx::make_view(data.data(), 6, 10);
  const auto block = full.block(1, 2, 4, 5);
  std::vector<float> flat;
  for (index_t r = 0; r < block.rows; ++r)
    for (index_t c = 0; c < block.cols; ++c) flat.push_back(block(r, c));
  CHECK(qtx::inf_norm(block) == qtx::inf_norm(flat));
  CHECK(qtx::inf_norm(block.transposed()) == qtx::inf_norm(flat));
  CHECK(qtx::kurtosis(block) == Approx(qtx::kurtosis(flat)).epsilon(1e-12));
  CHECK(qtx::kurtosis(block.transposed()) == Approx(qtx::kurtosis(flat)).epsilon(1e-12));

  CHECK_THROWS_WITH(qtx::inf_norm(std::vector<float>{}), Catch::Contains("inf_norm: x is 1x0"));
  CHECK_THROWS_WITH(qtx::kurtosis(std::vector<float>{1.0f}),
                    Catch::Contains("at least 2 elements"));
  CHECK_THROWS_AS(qtx::kurtosis(qtx::matrix_view<const float>(nullptr, 2, 2, 2)), qtx::error);
  CHECK_THROWS_AS(qtx::inf_norm(qtx::matrix_view<const float>(data.data(), 2, -2, 2)), qtx::error);
}

TEST_CASE("outlier metrics propagate NaN and inf instead of hiding them", "[quant][outliers]") {
  CHECK(std::isnan(qtx::inf_norm(std::vector<float>{1.0f, nan_f, 100.0f})));
  CHECK(std::isnan(qtx::inf_norm(std::vector<float>{100.0f, nan_f})));
  CHECK(std::isnan(qtx::kurtosis(std::vector<float>{1.0f, nan_f, 2.0f})));
  CHECK(qtx::inf_norm(std::vector<float>{1.0f, -inf_f}) == inf_f);
  CHECK(std::isnan(qtx::kurtosis(std::vector<float>{1.0f, inf_f, 2.0f})));
  qtx::outlier_stats stats;
  stats.add_sequence(std::vector<float>{1.0f, 2.0f});
  stats.add_sequence(std::vector<float>{nan_f, 2.0f});
  stats.add_sequence(std::vector<float>{1.0f, 3.0f});
  CHECK(std::isnan(stats.max_inf_norm()));
  CHECK(std::isnan(stats.mean_inf_norm()));
  CHECK(std::isnan(stats.mean_kurtosis()));
}

TEST_CASE("outlier_stats averages over sequences and keeps the largest inf-norm",
          "[quant][outliers]") {
  qtx::outlier_stats stats;
  CHECK(stats.count() == 0);
  CHECK_THROWS_WITH(stats.mean_inf_norm(), Catch::Contains("outlier_stats::mean_inf_norm"));
  CHECK_THROWS_AS(stats.mean_kurtosis(), qtx::error);
  CHECK_THROWS_AS(stats.max_inf_norm(), qtx::error);

  const float a[] = {1.0f, -2.0f, 0.5f, 0.0f};  // T = 2, d = 2
  const float b[] = {-6.0f, 1.0f, 3.0f, 2.0f};
  stats.add_sequence(qtx::make_view(a, 2, 2));
  stats.add_sequence(qtx::make_view(b, 2, 2));
  CHECK(stats.count() == 2);
  CHECK(stats.mean_inf_norm() == 4.0);
  CHECK(stats.max_inf_norm() == 6.0f);
  const double ka = qtx::kurtosis(qtx::make_view(a, 2, 2)),
               kb = qtx::kurtosis(qtx::make_view(b, 2, 2));
  CHECK(stats.mean_kurtosis() == Approx((ka + kb) / 2).epsilon(1e-15));

  // A rejected sequence leaves the accumulator unchanged.
  CHECK_THROWS_AS(stats.add_sequence(std::vector<float>{5.0f}), qtx::error);
  CHECK(stats.count() == 2);
  CHECK(stats.max_inf_norm() == 6.0f);

  qtx::outlier_stats other;
  other.add_sequence(std::vector<float>{10.0f, -1.0f});
  qtx::outlier_stats merged = stats;
  merged.merge(other);
  merged.merge(qtx::outlier_stats{});
  CHECK(merged.count() == 3);
  CHECK(merged.max_inf_norm() == 10.0f);
  CHECK(merged.mean_inf_norm() == Approx(18.0 / 3));
  qtx::outlier_stats from_empty;
  from_empty.merge(other);
  CHECK(from_empty.max_inf_norm() == 10.0f);

  // Many sequences: the mean of per-sequence values, accumulated in double.
  qtx::outlier_stats many;
  double sum_norm = 0.0, sum_kurt = 0.0;
  float max_norm = 0.0f;
  for (unsigned s = 0; s < 50; ++s) {
    const auto seq = normal_sample(128 * 4, 100 + s, 0.0f, 1.0f + s);
    many.add_sequence(qtx::make_view(seq.data(), 128, 4));
    sum_norm += qtx::inf_norm(seq);
    sum_kurt += qtx::kurtosis(seq);
    max_norm = std::max(max_norm, qtx::inf_norm(seq));
  }
  CHECK(many.mean_inf_norm() == Approx(sum_norm / 50).epsilon(1e-12));
  CHECK(many.mean_kurtosis() == Approx(sum_kurt / 50).epsilon(1e-12));
  CHECK(many.max_inf_norm() == max_norm);
  many.reset();
  CHECK(many.count() == 0);
}

// ---------------------------------------------------------------- params.hpp: the shared rules

TEST_CASE("parameter rules: one function per parameter, used by ops and GEMM epilogues alike", "[quant][rules]") {
  for (float bad : {0.0f, -0.0f, -2.0f, nan_f, inf_f, -inf_f})
    CHECK_THROWS_WITH(qtx::check_scale("f", "s", bad), Catch::StartsWith("f: s (") &&
                                                           Catch::EndsWith(") must be finite and positive"));
  CHECK_NOTHROW(qtx::check_scale("f", "s", std::numeric_limits<float>::denorm_min()));
  CHECK_THROWS_WITH(qtx::check_scale("f", qtx::param_name("m").at(7), 0.0f), Catch::StartsWith("f: m[7] (0)"));
  CHECK_THROWS_WITH(qtx::check_zero_point<uint8_t>("f", "zp", 256), Catch::Contains("f: zp (256) is outside the range of u8 [0, 255]"));
  CHECK_THROWS_AS(qtx::check_zero_point<uint8_t>("f", "zp", -1), qtx::error);
  CHECK_THROWS_AS(qtx::check_zero_point<int8_t>("f", "zp", 128), qtx::error);
  CHECK_THROWS_AS(qtx::check_zero_point<int8_t>("f", "zp", -129), qtx::error);
  CHECK_NOTHROW(qtx::check_zero_point<int8_t>("f", "zp", -128));
  CHECK_THROWS_WITH(qtx::check_fixed_point("f", "fx", {(1 << 30) - 1, 0}), Catch::Contains("f: fx (m0 1073741823, shift 0) is not normalised"));
  CHECK_THROWS_AS(qtx::check_fixed_point("f", "fx", {1 << 30, -32}), qtx::error);
  CHECK_NOTHROW(qtx::check_fixed_point("f", "fx", qtx::to_fixed_point(3.0)));
  CHECK_THROWS_WITH(qtx::check_quant_params<uint8_t>("f", "p", {inf_f, 0}), Catch::Contains("f: p.scale (inf)"));
  CHECK_THROWS_WITH(qtx::check_quant_params<uint8_t>("f", "p", {1.0f, 300}), Catch::Contains("f: p.zero_point (300)"));
  // The ops use them: the same words as the epilogue stages (tests/test_gemm.cpp).
  std::vector<int32_t> acc(2);
  std::vector<uint8_t> out(2);
  CHECK_THROWS_WITH(qtx::requantize<uint8_t>(acc, out, -1.0f, 0), "requantize: multiplier (-1) must be finite and positive");
  CHECK_THROWS_WITH(qtx::requantize<uint8_t>(acc, out, 1.0f, 256), "requantize: zero_point (256) is outside the range of u8 [0, 255]");
  CHECK_THROWS_WITH(qtx::to_fixed_point(-1.0), Catch::StartsWith("to_fixed_point: multiplier (-1) must be finite and positive"));
}

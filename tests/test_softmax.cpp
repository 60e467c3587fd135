// Softmax / clipped softmax: every backend against ref::softmax (float, std::exp), the reference
// against a float64 evaluation, fused 8-bit outputs against quantizing float outputs.
//
// Against the float64 oracle (tests/oracle_rows.hpp; every backend and ref/ itself, float output):
//   |y − y64| ≤ ε·(ζ − γ)·p64·(16 + 2·(|z_j| + max_k |z_k|) + √n) + 2ε·|y64| + 2^−124
// with z = input_scale·x + mask: float z carries |z|·ε/2 of rounding, which exp turns into a relative
// error of p (the inherent error of a float softmax), the sum of n terms in float lanes adds ~√n·ε,
// and the clip's fma rounds once more (the last term covers results that underflow).
//
// Tolerances (float output): |y − y_ref| ≤ 16·ε·(|y_ref| + |γ|) + 2^−126 — the vector exp is ≤ 1 ulp
// from std::exp, the rest is summation order (lane-wise vs sequential) and, for clipped softmax, the
// cancellation of (ζ−γ)·p against γ, which is why |γ| enters the bound. 8-bit output: bit-exact vs
// quantizing the backend's own float output; vs quantizing the reference output, ±1 only where
// the reference level sits within the float tolerance of a rounding tie (counted, must be rare).
#include <catch2/catch.hpp>

#include "backends.hpp"
#include "messages.hpp"

#include <qtx/ops/softmax.hpp>
#include <qtx/ref/softmax.hpp>

#include "oracle_rows.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <tuple>
#include <vector>

using qtx::index_t;
using qtx::matrix_view;
using backends = test_backends::compiled<std::tuple<qtx::cpu::scalar, qtx::cpu::avx2, qtx::cpu::avx512_vnni>>;

namespace {
constexpr float eps = std::numeric_limits<float>::epsilon();
constexpr float neg_inf = -std::numeric_limits<float>::infinity();
constexpr float float_tolerance_eps = 16.0f;

using test_backends::skip_unsupported;

std::vector<float> normal_values(std::size_t n, float stddev, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, stddev);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

// Additive key mask: 0 for kept keys, −inf or −1e4 (both used in practice) for padding.
std::vector<float> padding_mask(index_t rows, index_t cols, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> kind(0, 5);
  std::vector<float> m(std::size_t(rows * cols));
  for (auto& v : m) {
    const int k = kind(rng);
    v = k == 0 ? neg_inf : k == 1 ? -1e4f : 0.0f;
  }
  return m;
}

index_t row_lengths_sample(int i) {
  static const index_t big[] = {197, 512, 768, 1024, 4096};
  return i < 130 ? i + 1 : big[i - 130];
}
constexpr int row_length_count = 135;

float allowed_error(float ref, float gamma) { return float_tolerance_eps * eps * (std::fabs(ref) + std::fabs(gamma)) + std::numeric_limits<float>::min(); }

template <class Arch, class In>
void compare_float(const std::vector<In>& x, index_t rows, index_t cols, const qtx::softmax_params& p,
                   matrix_view<const float> mask) {
  std::vector<float> y(x.size(), -7.0f), ref(x.size(), -9.0f);
  qtx::ops::softmax(Arch{}, qtx::make_view(x.data(), rows, cols), qtx::make_view(y.data(), rows, cols), p, mask);
  qtx::ref::softmax(qtx::make_view(x.data(), rows, cols), qtx::make_view(ref.data(), rows, cols), p, mask);
  for (std::size_t k = 0; k < y.size(); ++k) {
    INFO("cols " << cols << " element " << k << " gamma " << p.gamma << " causal " << p.causal);
    REQUIRE(std::fabs(y[k] - ref[k]) <= allowed_error(ref[k], p.gamma));
  }
}
}  // namespace

TEMPLATE_LIST_TEST_CASE("float softmax and clipped softmax match the reference over row lengths", "[softmax]", backends) {
  if (skip_unsupported<TestType>()) return;
  for (int li = 0; li < row_length_count; ++li) {
    const index_t cols = row_lengths_sample(li), rows = cols >= 512 ? 2 : 3;
    const auto x = normal_values(std::size_t(rows * cols), 3.0f, unsigned(cols));
    const auto mask = padding_mask(rows, cols, unsigned(cols) + 1);
    for (float gamma : {0.0f, -0.025f}) {
      const qtx::softmax_params p{0.5f, gamma, gamma == 0.0f ? 1.0f : 1.01f, false, 0};
      compare_float<TestType>(x, rows, cols, p, {});
      compare_float<TestType>(x, rows, cols, p, qtx::make_view(mask.data(), 1, cols));
      compare_float<TestType>(x, rows, cols, p, qtx::make_view(mask.data(), rows, cols));
      qtx::softmax_params causal = p;
      causal.causal = true;
      for (index_t offset : {index_t(0), index_t(-2), cols / 2}) {
        causal.causal_offset = offset;
        compare_float<TestType>(x, rows, cols, causal, qtx::make_view(mask.data(), 1, cols));
      }
    }
  }
}

namespace {
template <class Impl, class In>
void softmax_with(qtx::matrix_view<const In> x, qtx::matrix_view<float> y, const qtx::softmax_params& p,
                  matrix_view<const float> mask) {
  if constexpr (std::is_same_v<Impl, oracle::reference>)
    qtx::ref::softmax(x, y, p, mask);
  else
    qtx::ops::softmax(Impl{}, x, y, p, mask);
}

template <class Impl, class In>
void compare_float64(const std::vector<In>& x, index_t rows, index_t cols, const qtx::softmax_params& p,
                     const std::vector<float>* mask, bool mask_per_row) {
  const auto mask_view = !mask ? matrix_view<const float>{}
                               : qtx::make_view(mask->data(), mask_per_row ? rows : 1, cols);
  std::vector<float> y(x.size(), -7.0f);
  softmax_with<Impl>(qtx::make_view(x.data(), rows, cols), qtx::make_view(y.data(), rows, cols), p, mask_view);
  for (index_t i = 0; i < rows; ++i) {
    const float* m = mask ? mask->data() + (mask_per_row ? i * cols : 0) : nullptr;
    const oracle::softmax_row want = oracle::softmax(x.data() + i * cols, cols, i, p, m);
    double z_abs_max = 0.0;
    for (double z : want.z)
      if (std::isfinite(z)) z_abs_max = std::max(z_abs_max, std::fabs(z));
    const double n = double(qtx::softmax_visible_columns(p, i, cols));
    for (index_t j = 0; j < cols; ++j) {
      const double w = want.y[j], got = y[i * cols + j];
      const double prob = (w - double(p.gamma)) / (double(p.zeta) - double(p.gamma));  // before the clip
      const double inherent = std::isfinite(want.z[j]) ? 2.0 * (std::fabs(want.z[j]) + z_abs_max) : 0.0;
      const double allowed = double(eps) * (double(p.zeta) - double(p.gamma)) * std::max(prob, w) *
                                 (16.0 + inherent + std::sqrt(n)) +
                             2.0 * double(eps) * w + std::ldexp(1.0, -124);
      INFO(Impl::name() << " cols " << cols << " row " << i << " col " << j << " gamma " << p.gamma << " causal "
                        << p.causal << " y " << got << " want " << w);
      REQUIRE(std::fabs(got - w) <= allowed);
    }
  }
}
}  // namespace

TEMPLATE_LIST_TEST_CASE("softmax and clipped softmax of every backend and of ref/ agree with float64",
                        "[softmax][oracle]", oracle::implementations) {
  if (!oracle::runs_here<TestType>()) return;
  for (int li = 0; li < row_length_count; ++li) {
    const index_t cols = row_lengths_sample(li), rows = cols >= 512 ? 2 : 3;
    const auto x = normal_values(std::size_t(rows * cols), 3.0f, unsigned(cols) + 100);
    const auto mask = padding_mask(rows, cols, unsigned(cols) + 101);
    for (float gamma : {0.0f, -0.025f}) {
      const qtx::softmax_params p{0.5f, gamma, gamma == 0.0f ? 1.0f : 1.01f, false, 0};
      compare_float64<TestType>(x, rows, cols, p, nullptr, false);
      compare_float64<TestType>(x, rows, cols, p, &mask, false);
      compare_float64<TestType>(x, rows, cols, p, &mask, true);
      const qtx::softmax_params causal{p.input_scale, p.gamma, p.zeta, true, cols / 3 - 1};
      compare_float64<TestType>(x, rows, cols, causal, &mask, false);
    }
  }
  std::mt19937 rng(17);
  std::uniform_int_distribution<int32_t> d(-400000, 400000);  // int8 QKᵀ over d = 64
  for (index_t cols : {1, 7, 17, 64, 197, 512}) {
    std::vector<int32_t> s(std::size_t(4 * cols));
    for (auto& v : s) v = d(rng);
    const auto mask = padding_mask(4, cols, 5);
    const qtx::softmax_params p{1.0f / 8.0f * 0.02f * 0.02f, qtx::gamma_for(12.0f, 512), 1.0f, true, 1};
    compare_float64<TestType>(s, 4, cols, p, &mask, false);
  }
}

TEMPLATE_LIST_TEST_CASE("int32 scores with a dequantization scale match the reference", "[softmax]", backends) {
  if (skip_unsupported<TestType>()) return;
  std::mt19937 rng(5);
  for (index_t cols : {1, 7, 16, 17, 64, 127, 128, 197, 512}) {
    const index_t rows = 4;
    std::vector<int32_t> x(std::size_t(rows * cols));
    std::uniform_int_distribution<int32_t> d(-400000, 400000);  // int8 QKᵀ over d = 64
    for (auto& v : x) v = d(rng);
    const auto mask = padding_mask(rows, cols, 3);
    const qtx::softmax_params p{1.0f / 8.0f * 0.02f * 0.02f, qtx::gamma_for(12.0f, 512), 1.0f, true, 1};
    compare_float<TestType>(x, rows, cols, p, qtx::make_view(mask.data(), 1, cols));
  }
}

TEMPLATE_LIST_TEST_CASE("fused uint8 output equals quantizing the float output", "[softmax]", backends) {
  if (skip_unsupported<TestType>()) return;
  long compared = 0, tie_differences = 0;
  for (index_t cols : {1, 3, 15, 16, 17, 33, 64, 128, 130, 197, 512, 768}) {
    const index_t rows = 5;
    const auto x = normal_values(std::size_t(rows * cols), 2.0f, unsigned(cols) + 11);
    const auto mask = padding_mask(rows, cols, 9);
    for (float gamma : {0.0f, -0.025f}) {
      const qtx::softmax_params p{1.0f, gamma, 1.0f, cols % 2 == 1, 0};
      const qtx::quant_params qp{1.0f / 255.0f, 0};  // the paper's softmax output grid [0, 1]
      std::vector<float> y(x.size()), ref(x.size());
      std::vector<uint8_t> q(x.size());
      const auto xv = qtx::make_view(x.data(), rows, cols);
      const auto mv = qtx::make_view(mask.data(), 1, cols);
      qtx::ops::softmax(TestType{}, xv, qtx::make_view(y.data(), rows, cols), p, mv);
      qtx::ops::softmax(TestType{}, xv, qtx::make_view(q.data(), rows, cols), p, mv, qp);
      qtx::ref::softmax(xv, qtx::make_view(ref.data(), rows, cols), p, mv);
      for (std::size_t k = 0; k < q.size(); ++k) {
        REQUIRE(int(q[k]) == int(qtx::quantize_one<uint8_t>(y[k], qp.inv_scale(), qp.zero_point)));
        const int from_ref = qtx::quantize_one<uint8_t>(ref[k], qp.inv_scale(), qp.zero_point);
        ++compared;
        if (int(q[k]) != from_ref) {
          const float level = ref[k] * qp.inv_scale();
          const float distance_to_tie = std::fabs(level - std::floor(level) - 0.5f);
          REQUIRE(std::abs(int(q[k]) - from_ref) == 1);
          REQUIRE(distance_to_tie <= allowed_error(ref[k], gamma) * qp.inv_scale());
          ++tie_differences;
        }
      }
    }
  }
  INFO(tie_differences << " of " << compared << " levels differ by 1 at a rounding tie");
  CHECK(tie_differences * 1000 <= compared);  // rare: < 0.1 %
}

TEMPLATE_LIST_TEST_CASE("softmax hand-computed cases", "[softmax]", backends) {
  if (skip_unsupported<TestType>()) return;
  const TestType arch{};
  SECTION("uniform row of 128 under γ = −0.025 is exactly zero; plain softmax gives exactly 1/128") {
    std::vector<float> x(2 * 128, 0.75f), y(x.size(), 5.0f);
    qtx::ops::softmax(arch, qtx::make_view(x.data(), 2, 128), qtx::make_view(y.data(), 2, 128), {1.0f, -0.025f, 1.0f});
    for (float v : y) REQUIRE(v == 0.0f);
    qtx::ops::softmax(arch, qtx::make_view(x.data(), 2, 128), qtx::make_view(y.data(), 2, 128));
    for (float v : y) REQUIRE(v == 1.0f / 128.0f);
  }
  SECTION("rows with no visible or only −inf entries are zeros, −inf entries get 0") {
    std::vector<float> x = {neg_inf, neg_inf, neg_inf, 1.0f, neg_inf, 1.0f}, y(6, 5.0f);
    qtx::ops::softmax(arch, qtx::make_view(x.data(), 2, 3), qtx::make_view(y.data(), 2, 3));
    CHECK(y == std::vector<float>{0, 0, 0, 0.5f, 0, 0.5f});
    std::vector<uint8_t> q(6, 7);
    qtx::ops::softmax(arch, qtx::make_view(x.data(), 2, 3), qtx::make_view(q.data(), 2, 3), {}, {}, {1.0f / 256, 3});
    CHECK(q == std::vector<uint8_t>{3, 3, 3, 131, 3, 131});  // 0.5 · 256 + 3
    qtx::ops::softmax(arch, qtx::make_view(x.data(), 2, 3), qtx::make_view(y.data(), 2, 3), {1, 0, 1, true, -1});
    CHECK(y == std::vector<float>{0, 0, 0, 1, 0, 0});  // row 0 sees nothing, row 1 only column 0
  }
  SECTION("NaN in a row makes its visible outputs NaN (uint8: the zero point); other rows unaffected") {
    std::vector<float> x = {1.0f, std::nanf(""), 2.0f, 1.0f, 2.0f, 3.0f}, y(6);
    qtx::ops::softmax(arch, qtx::make_view(x.data(), 2, 3), qtx::make_view(y.data(), 2, 3));
    for (int j = 0; j < 3; ++j) CHECK(std::isnan(y[j]));
    for (int j = 3; j < 6; ++j) CHECK(std::isfinite(y[j]));
    std::vector<uint8_t> q(6);
    qtx::ops::softmax(arch, qtx::make_view(x.data(), 2, 3), qtx::make_view(q.data(), 2, 3), {}, {}, {1.0f / 255, 9});
    for (int j = 0; j < 3; ++j) CHECK(q[j] == 9);
  }
  SECTION("ζ = 1, γ = 0 is plain softmax bit for bit; in place equals out of place") {
    const index_t cols = 77;
    auto x = normal_values(3 * cols, 2.0f, 4);
    std::vector<float> y(x.size()), plain(x.size());
    const auto xv = qtx::make_view(x.data(), 3, cols);
    qtx::ops::softmax(arch, xv, qtx::make_view(y.data(), 3, cols), {1.0f, 0.0f, 1.0f});
    // The reference with ζ = 1, γ = 0 against a textbook softmax with the same operations.
    qtx::ref::softmax(xv, qtx::make_view(plain.data(), 3, cols), {});
    for (index_t i = 0; i < 3; ++i) {
      float m = neg_inf;
      double s = 0.0;
      for (index_t j = 0; j < cols; ++j) m = std::max(m, x[i * cols + j]);
      for (index_t j = 0; j < cols; ++j) s += std::exp(x[i * cols + j] - m);
      for (index_t j = 0; j < cols; ++j) REQUIRE(plain[i * cols + j] == std::exp(x[i * cols + j] - m) * (1.0f / float(s)));
    }
    qtx::ops::softmax(arch, qtx::make_view(x.data(), 3, cols), qtx::make_view(x.data(), 3, cols));
    CHECK(x == y);
  }
  SECTION("strided (transposed) views take the reference path and agree") {
    const index_t rows = 5, cols = 40;
    const auto x = normal_values(rows * cols, 1.0f, 8);
    std::vector<float> yt(rows * cols), ref(rows * cols);
    const auto xt = qtx::make_view(x.data(), cols, rows).transposed();  // rows × cols, col_stride = rows
    qtx::ops::softmax(arch, xt, qtx::make_view(yt.data(), cols, rows).transposed());
    qtx::ref::softmax(xt, qtx::make_view(ref.data(), cols, rows).transposed(), {});
    CHECK(yt == ref);
  }
}

TEST_CASE("the reference softmax agrees with a float64 evaluation", "[softmax]") {
  for (index_t cols : {5, 128, 768, 4096}) {
    const auto x = normal_values(std::size_t(cols), 4.0f, unsigned(cols) * 3);
    std::vector<float> y(x.size());
    for (float gamma : {0.0f, -0.025f}) {
      qtx::ref::softmax(qtx::make_view(x.data(), 1, cols), qtx::make_view(y.data(), 1, cols), {1.0f, gamma, 1.0f});
      double m = -1e300, s = 0.0;
      for (float v : x) m = std::max(m, double(v));
      for (float v : x) s += std::exp(double(v) - m);
      for (index_t j = 0; j < cols; ++j) {
        const double p = std::exp(double(x[j]) - m) / s;
        const double want = std::clamp((1.0 - gamma) * p + gamma, 0.0, 1.0);
        INFO("cols " << cols << " j " << j << " y " << y[j] << " want " << want);
        // Float rounding of z − max alone costs |z − max|·ε/2 relative: the inherent error of float softmax.
        const double inherent = std::fabs(double(x[j]) - m) * eps * (std::fabs(want) + std::fabs(gamma));
        REQUIRE(std::fabs(y[j] - want) <= allowed_error(float(want), gamma) + inherent);
      }
    }
  }
}

TEST_CASE("softmax rejects bad arguments", "[softmax]") {
  const qtx::cpu::native arch{};
  std::vector<float> x(12), y(12), m(12);
  std::vector<uint8_t> q(12);
  const auto xv = qtx::make_view(x.data(), 3, 4);
  const auto yv = qtx::make_view(y.data(), 3, 4);
  // Each message names the function the user called, the argument and its value.
  const auto says = [](const char* text) { return test_messages::names("softmax", text); };
  CHECK_THROWS_WITH(qtx::ops::softmax(arch, xv, qtx::make_view(y.data(), 4, 3)), says("y"));
  CHECK_THROWS_WITH(qtx::ops::softmax(arch, xv, yv, {1.0f, 0.1f, 1.0f}), says("gamma (0.1) must be finite and <= 0"));
  CHECK_THROWS_WITH(qtx::ops::softmax(arch, xv, yv, {1.0f, -0.1f, 0.9f}), says("zeta (0.9) must be finite and >= 1"));
  CHECK_THROWS_WITH(qtx::ops::softmax(arch, xv, yv, {1.0f, -INFINITY, 1.0f}), says("gamma (-inf)"));
  CHECK_THROWS_WITH(qtx::ops::softmax(arch, xv, yv, {1.0f, -3e38f, 3e38f}), says("zeta - gamma"));
  CHECK_THROWS_WITH(qtx::ops::softmax(arch, xv, yv, {0.0f, 0.0f, 1.0f}), says("input_scale (0) must be finite and positive"));
  CHECK_THROWS_WITH(qtx::ops::softmax(arch, xv, yv, {NAN, 0.0f, 1.0f}), says("input_scale (nan)"));
  CHECK_THROWS_WITH(qtx::ops::softmax(arch, xv, yv, {}, qtx::make_view(m.data(), 2, 4)), says("mask has 2 rows"));
  CHECK_THROWS_WITH(qtx::ops::softmax(arch, xv, yv, {}, qtx::make_view(m.data(), 1, 3)), says("mask has 3 columns"));
  CHECK_THROWS_WITH(qtx::ops::softmax(arch, xv, qtx::make_view(q.data(), 3, 4), {}, {}, {0.0f, 0}),
                    says("y_params.scale (0)"));
  CHECK_THROWS_WITH(qtx::ops::softmax(arch, xv, qtx::make_view(q.data(), 3, 4), {}, {}, {1.0f, 256}),
                    says("y_params.zero_point (256)"));
  CHECK_THROWS_WITH(qtx::ops::softmax(arch, xv, qtx::make_view(x.data() + 1, 3, 4)), says("y overlaps x"));  // partial overlap
  CHECK_THROWS_WITH(qtx::ops::softmax(arch, xv, matrix_view<float>{nullptr, 3, 4, 4, 1}), says("y is 3x4"));
  CHECK_NOTHROW(qtx::ops::softmax(arch, xv, qtx::make_view(x.data(), 3, 4)));  // in place
  CHECK_NOTHROW(qtx::ops::softmax(arch, qtx::make_view(x.data(), 0, 4), qtx::make_view(y.data(), 0, 4)));
}

// Layer norm (+ residual, + quantize): every backend against ref::layer_norm, the reference against a
// float64 evaluation, fused 8-bit outputs against quantizing float outputs.
//
// Tolerance (float output): |y − y_ref| ≤ 32·ε·(|ŷ·w| + |w| + |b|), ŷ = (s − μ)/σ: the statistics
// are float lane sums in the kernels (double in the reference), so μ and 1/σ differ by a few ε
// relative to σ, which reaches y scaled by |w|. Rows around 1e4 ± 1 (mean ≫ spread) are checked
// against float64 with the same bound: the shifted two-pass statistics lose nothing to the mean.
// Against the float64 oracle (tests/oracle_rows.hpp; every backend and ref/ itself):
//   |y − y64| ≤ ε·(32 + √n)·(|ŷ·w| + |w|) + 32·ε·|b|,  ŷ = (s − μ)/σ in float64
// (√n: the float lane sums of the statistics over n elements).
#include <catch2/catch.hpp>

#include "backends.hpp"
#include "messages.hpp"

#include <qtx/nn/layer_norm.hpp>
#include <qtx/ops/layernorm.hpp>
#include <qtx/ref/layernorm.hpp>

#include "oracle_rows.hpp"

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <tuple>
#include <vector>

using qtx::index_t;
using backends = test_backends::compiled<std::tuple<qtx::cpu::scalar, qtx::cpu::avx2, qtx::cpu::avx512_vnni>>;

namespace {
constexpr float eps = std::numeric_limits<float>::epsilon();
constexpr float tolerance_eps = 32.0f;

using test_backends::skip_unsupported;

std::vector<float> normal_values(std::size_t n, float mean, float stddev, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(mean, stddev);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

index_t row_length(int i) {
  static const index_t big[] = {197, 512, 768, 1024, 4096};
  return i < 130 ? i + 1 : big[i - 130];
}
constexpr int row_length_count = 135;

struct problem {
  index_t rows, cols;
  std::vector<float> x, r, w, b;
  problem(index_t rows_, index_t cols_, float mean, float stddev, unsigned seed)
      : rows(rows_), cols(cols_), x(normal_values(rows * cols, mean, stddev, seed)),
        r(normal_values(rows * cols, 0.0f, 1.0f, seed + 1)), w(normal_values(cols, 1.0f, 0.3f, seed + 2)),
        b(normal_values(cols, 0.0f, 0.2f, seed + 3)) {}
  auto xv() const { return qtx::make_view(x.data(), rows, cols); }
  auto rv() const { return qtx::make_view(r.data(), rows, cols); }
  // Allowed |y − y_ref| at element (i, j) given the reference output.
  float allowed(index_t /*i*/, index_t j, float y_ref) const {
    const float w_abs = std::fabs(w[j]), b_abs = std::fabs(b[j]);
    return tolerance_eps * eps * (std::fabs(y_ref - b[j]) + w_abs + b_abs);
  }
};

template <class Arch>
void compare(const problem& pr, bool residual, bool write_sum) {
  const index_t n = pr.rows * pr.cols;
  std::vector<float> y(n, -3.0f), y_ref(n, -4.0f), s(n, -5.0f), s_ref(n, -6.0f);
  const auto yv = qtx::make_view(y.data(), pr.rows, pr.cols);
  const auto sv = write_sum ? qtx::make_view(s.data(), pr.rows, pr.cols) : qtx::matrix_view<float>{};
  if (residual)
    qtx::ops::add_layer_norm(Arch{}, pr.xv(), pr.rv(), sv, pr.w, pr.b, yv);
  else
    qtx::ops::layer_norm(Arch{}, pr.xv(), pr.w, pr.b, yv);
  qtx::ref::layer_norm<float>(pr.xv(), residual ? pr.rv() : qtx::matrix_view<const float>{},
                              qtx::make_view(s_ref.data(), pr.rows, pr.cols), pr.w, pr.b,
                              qtx::make_view(y_ref.data(), pr.rows, pr.cols));
  for (index_t i = 0; i < pr.rows; ++i)
    for (index_t j = 0; j < pr.cols; ++j) {
      const index_t k = i * pr.cols + j;
      INFO("cols " << pr.cols << " row " << i << " col " << j << " residual " << residual);
      REQUIRE(std::fabs(y[k] - y_ref[k]) <= pr.allowed(i, j, y_ref[k]));
      if (write_sum) REQUIRE(s[k] == s_ref[k]);  // x + r: exact
    }
}
}  // namespace

TEMPLATE_LIST_TEST_CASE("layer norm matches the reference over row lengths", "[layernorm]", backends) {
  if (skip_unsupported<TestType>()) return;
  for (int li = 0; li < row_length_count; ++li) {
    const index_t cols = row_length(li);
    const problem pr(cols >= 512 ? 2 : 3, cols, 0.5f, 2.0f, unsigned(cols));
    compare<TestType>(pr, false, false);
    compare<TestType>(pr, true, false);
    compare<TestType>(pr, true, true);
  }
}

namespace {
template <class Impl>
void layer_norm_with(const problem& pr, bool residual, qtx::matrix_view<float> y, float eps_ln) {
  const auto r = residual ? pr.rv() : qtx::matrix_view<const float>{};
  if constexpr (std::is_same_v<Impl, oracle::reference>)
    qtx::ref::layer_norm<float>(pr.xv(), r, {}, pr.w, pr.b, y, eps_ln);
  else if (residual)
    qtx::ops::add_layer_norm(Impl{}, pr.xv(), r, qtx::matrix_view<float>{}, pr.w, pr.b, y, eps_ln);
  else
    qtx::ops::layer_norm(Impl{}, pr.xv(), pr.w, pr.b, y, eps_ln);
}

template <class Impl>
void compare_float64(const problem& pr, bool residual, float eps_ln) {
  std::vector<float> y(pr.x.size(), -3.0f);
  layer_norm_with<Impl>(pr, residual, qtx::make_view(y.data(), pr.rows, pr.cols), eps_ln);
  std::vector<double> hat;
  for (index_t i = 0; i < pr.rows; ++i) {
    const index_t row = i * pr.cols;
    const auto want = oracle::layer_norm(pr.x.data() + row, residual ? pr.r.data() + row : nullptr, pr.w.data(),
                                         pr.b.data(), pr.cols, eps_ln, &hat);
    for (index_t j = 0; j < pr.cols; ++j) {
      const double w_abs = std::fabs(pr.w[j]);
      const double allowed = double(eps) * ((32.0 + std::sqrt(double(pr.cols))) * (std::fabs(hat[j]) * w_abs + w_abs) +
                                            32.0 * std::fabs(pr.b[j]));
      INFO(Impl::name() << " cols " << pr.cols << " row " << i << " col " << j << " residual " << residual << " y "
                        << y[row + j] << " want " << want[j]);
      REQUIRE(std::fabs(double(y[row + j]) - want[j]) <= allowed);
    }
  }
}
}  // namespace

TEMPLATE_LIST_TEST_CASE("layer norm of every backend and of ref/ agrees with float64", "[layernorm][oracle]",
                        oracle::implementations) {
  if (!oracle::runs_here<TestType>()) return;
  for (int li = 0; li < row_length_count; ++li) {
    const index_t cols = row_length(li);
    const problem pr(cols >= 512 ? 2 : 3, cols, 0.5f, 2.0f, unsigned(cols) + 40);
    compare_float64<TestType>(pr, false, qtx::layer_norm_default_eps);
    compare_float64<TestType>(pr, true, 1e-12f);
  }
  for (index_t cols : {7, 64, 768, 4096}) {  // mean ≫ spread: 1e4 ± 1
    const problem pr(2, cols, 1e4f, 1.0f, unsigned(cols) + 41);
    compare_float64<TestType>(pr, false, 1e-12f);
  }
}

TEMPLATE_LIST_TEST_CASE("layer norm of rows around 1e4 ± 1 agrees with float64", "[layernorm]", backends) {
  if (skip_unsupported<TestType>()) return;
  for (index_t cols : {7, 64, 768, 4096}) {
    const problem pr(2, cols, 1e4f, 1.0f, unsigned(cols) + 5);
    std::vector<float> y(pr.x.size());
    qtx::ops::layer_norm(TestType{}, pr.xv(), pr.w, pr.b, qtx::make_view(y.data(), 2, cols), 1e-12f);
    for (index_t i = 0; i < 2; ++i) {
      double mean = 0, var = 0;
      for (index_t j = 0; j < cols; ++j) mean += pr.x[i * cols + j];
      mean /= double(cols);
      for (index_t j = 0; j < cols; ++j) var += (pr.x[i * cols + j] - mean) * (pr.x[i * cols + j] - mean);
      var /= double(cols);
      for (index_t j = 0; j < cols; ++j) {
        const double want = (pr.x[i * cols + j] - mean) / std::sqrt(var + 1e-12) * pr.w[j] + pr.b[j];
        INFO("cols " << cols << " j " << j << " y " << y[i * cols + j] << " want " << want);
        REQUIRE(std::fabs(y[i * cols + j] - want) <= pr.allowed(i, j, float(want)));
      }
    }
  }
}

TEMPLATE_LIST_TEST_CASE("fused residual + layer norm + uint8 equals quantizing the float output", "[layernorm]", backends) {
  if (skip_unsupported<TestType>()) return;
  long compared = 0, tie_differences = 0;
  const qtx::quant_params qp = qtx::asymmetric_params<uint8_t>(-4.0f, 5.0f);
  for (index_t cols : {1, 5, 16, 31, 64, 100, 197, 768, 1024}) {
    const problem pr(4, cols, 0.0f, 1.5f, unsigned(cols) * 7);
    const index_t n = pr.rows * pr.cols;
    std::vector<float> y(n), y_ref(n), s(n), s8(n);
    std::vector<uint8_t> q(n);
    qtx::ops::add_layer_norm(TestType{}, pr.xv(), pr.rv(), qtx::make_view(s.data(), pr.rows, cols), pr.w, pr.b,
                             qtx::make_view(y.data(), pr.rows, cols));
    qtx::ops::add_layer_norm(TestType{}, pr.xv(), pr.rv(), qtx::make_view(s8.data(), pr.rows, cols), pr.w, pr.b,
                             qtx::make_view(q.data(), pr.rows, cols), qtx::layer_norm_default_eps, qp);
    qtx::ref::layer_norm<float>(pr.xv(), pr.rv(), {}, pr.w, pr.b, qtx::make_view(y_ref.data(), pr.rows, cols));
    CHECK(s == s8);
    for (index_t k = 0; k < n; ++k) {
      REQUIRE(int(q[k]) == int(qtx::quantize_one<uint8_t>(y[k], qp.inv_scale(), qp.zero_point)));
      const int from_ref = qtx::quantize_one<uint8_t>(y_ref[k], qp.inv_scale(), qp.zero_point);
      ++compared;
      if (int(q[k]) != from_ref) {
        const float level = y_ref[k] * qp.inv_scale();
        REQUIRE(std::abs(int(q[k]) - from_ref) == 1);
        REQUIRE(std::fabs(level - std::floor(level) - 0.5f) <= pr.allowed(k / cols, k % cols, y_ref[k]) * qp.inv_scale());
        ++tie_differences;
      }
    }
  }
  INFO(tie_differences << " of " << compared << " levels differ by 1 at a rounding tie");
  CHECK(tie_differences * 200 <= compared);  // rare: < 0.5 %
}

TEMPLATE_LIST_TEST_CASE("layer norm in place and hand-computed values", "[layernorm]", backends) {
  if (skip_unsupported<TestType>()) return;
  SECTION("x = [1, 2, 3, 4], weight 1, bias 0: (x − 2.5)/√(1.25 + eps)") {
    std::vector<float> x = {1, 2, 3, 4}, w(4, 1.0f), b(4, 0.0f), y(4);
    qtx::ops::layer_norm(TestType{}, qtx::make_view(x.data(), 1, 4), w, b, qtx::make_view(y.data(), 1, 4), 1e-5f);
    for (int j = 0; j < 4; ++j) CHECK(y[j] == Approx((x[j] - 2.5) / std::sqrt(1.25 + 1e-5)).epsilon(1e-6));
  }
  SECTION("a constant row normalizes to the bias") {
    std::vector<float> x(40, 3.25f), w(40, 2.0f), b(40, 0.5f), y(40);
    qtx::ops::layer_norm(TestType{}, qtx::make_view(x.data(), 1, 40), w, b, qtx::make_view(y.data(), 1, 40));
    for (float v : y) CHECK(v == 0.5f);
  }
  SECTION("y = x and sum_out = x in place equal out of place") {
    const problem pr(3, 45, 0.0f, 1.0f, 3);
    std::vector<float> y(pr.x.size()), s(pr.x.size());
    qtx::ops::add_layer_norm(TestType{}, pr.xv(), pr.rv(), qtx::make_view(s.data(), 3, 45), pr.w, pr.b,
                             qtx::make_view(y.data(), 3, 45));
    auto x1 = pr.x, x2 = pr.x;
    qtx::ops::add_layer_norm(TestType{}, qtx::make_view(x1.data(), 3, 45), pr.rv(), qtx::make_view(x1.data(), 3, 45),
                             pr.w, pr.b, qtx::make_view(y.data() + 0, 3, 45));
    CHECK(x1 == s);
    qtx::ops::add_layer_norm(TestType{}, qtx::make_view(x2.data(), 3, 45), pr.rv(), qtx::matrix_view<float>{}, pr.w,
                             pr.b, qtx::make_view(x2.data(), 3, 45));
    CHECK(x2 == y);
  }
}

TEST_CASE("layer norm rejects bad arguments", "[layernorm]") {
  const qtx::cpu::native arch{};
  std::vector<float> x(12), r(12), y(12), w(4, 1.0f), b(4, 0.0f);
  std::vector<uint8_t> q(12);
  const auto xv = qtx::make_view(x.data(), 3, 4);
  const auto yv = qtx::make_view(y.data(), 3, 4);
  // Each message names the function the user called, the argument and its value.
  const auto ln_says = [](const char* text) { return test_messages::names("layer_norm", text); };
  const auto add_says = [](const char* text) { return test_messages::names("add_layer_norm", text); };
  CHECK_THROWS_WITH(qtx::ops::layer_norm(arch, xv, w, b, qtx::make_view(y.data(), 4, 3)), ln_says("y"));
  CHECK_THROWS_WITH(qtx::ops::layer_norm(arch, xv, std::vector<float>(3), b, yv), ln_says("weight has 3 elements"));
  CHECK_THROWS_WITH(qtx::ops::layer_norm(arch, xv, w, std::vector<float>(5), yv), ln_says("bias has 5 elements"));
  CHECK_THROWS_WITH(qtx::ops::layer_norm(arch, xv, w, b, yv, 0.0f), ln_says("eps (0) must be finite and positive"));
  CHECK_THROWS_WITH(qtx::ops::layer_norm(arch, xv, w, b, yv, NAN), ln_says("eps (nan)"));
  CHECK_THROWS_WITH(qtx::ops::layer_norm(arch, xv, w, b, qtx::make_view(q.data(), 3, 4), 1e-5f, {-1.0f, 0}),
                    ln_says("y_params.scale (-1)"));
  CHECK_THROWS_WITH(qtx::ops::layer_norm(arch, xv, w, b, qtx::make_view(q.data(), 3, 4), 1e-5f, {1.0f, -1}),
                    ln_says("y_params.zero_point (-1)"));
  CHECK_THROWS_WITH(qtx::ops::layer_norm(arch, xv, w, b, qtx::make_view(x.data() + 2, 2, 4)), ln_says("y"));
  CHECK_THROWS_WITH(
      qtx::ops::add_layer_norm(arch, xv, qtx::make_view(r.data(), 2, 4), qtx::matrix_view<float>{}, w, b, yv),
      add_says("residual"));
  CHECK_THROWS_WITH(qtx::ops::add_layer_norm(arch, xv, qtx::make_view(r.data(), 3, 4), qtx::make_view(y.data(), 3, 4),
                                             w, b, yv),
                    add_says("sum_out"));  // sum_out and y are both outputs
  CHECK_THROWS_WITH(qtx::ops::add_layer_norm(arch, xv, qtx::make_view(r.data(), 3, 4), qtx::make_view(r.data(), 2, 4),
                                             w, b, yv),
                    add_says("sum_out"));
  CHECK_THROWS_WITH(qtx::nn::layer_norm<>(w, b, 0.0f), ln_says("eps (0)"));
  CHECK_NOTHROW(qtx::ops::add_layer_norm(arch, xv, qtx::make_view(r.data(), 3, 4), qtx::make_view(r.data(), 3, 4), w, b, yv));
  CHECK_NOTHROW(qtx::ops::layer_norm(arch, qtx::make_view(x.data(), 0, 4), w, b, qtx::make_view(y.data(), 0, 4)));
}

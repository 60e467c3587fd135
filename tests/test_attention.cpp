#include <catch2/catch.hpp>

#include "backends.hpp"
#include <qtx/ops/attention.hpp>
#include <qtx/ref/attention.hpp>

#include <cmath>
#include <random>
#include <span>
#include <tuple>
#include <vector>

using qtx::index_t;
using backends = test_backends::compiled<std::tuple<qtx::cpu::scalar, qtx::cpu::avx2, qtx::cpu::avx512_vnni>>;

namespace {
std::vector<float> random_vector(std::size_t n, float stddev, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, stddev);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

struct problem {
  index_t Tq, Tk, H, d;
  std::vector<float> q, k, v, mask, gate;
  problem(index_t tq, index_t tk, index_t h, index_t dh, unsigned seed)
      : Tq(tq), Tk(tk), H(h), d(dh), q(random_vector(tq * h * dh, 1.0f, seed)),
        k(random_vector(tk * h * dh, 1.0f, seed + 1)), v(random_vector(tk * h * dh, 1.0f, seed + 2)),
        mask(tk, 0.0f), gate(tq * h) {
    std::mt19937 rng(seed + 3);
    std::uniform_real_distribution<float> u(0.0f, 1.0f);
    for (auto& g : gate) g = u(rng);
    for (index_t j = tk - tk / 4; j < tk; ++j) mask[j] = -1e9f;  // padded keys
  }
  index_t D() const { return H * d; }
  auto qv() const { return qtx::make_view(q.data(), Tq, D()); }
  auto kv() const { return qtx::make_view(k.data(), Tk, D()); }
  auto vv() const { return qtx::make_view(v.data(), Tk, D()); }
};

// x quantized to uint8 over its min-max range; qp receives the parameters.
std::vector<uint8_t> quantize_all(const std::vector<float>& x, qtx::quant_params& qp) {
  float lo = 0, hi = 0;
  for (float v : x) lo = std::min(lo, v), hi = std::max(hi, v);
  qp = qtx::asymmetric_params<uint8_t>(lo, hi);
  std::vector<uint8_t> y(x.size());
  qtx::quantize<uint8_t>(x, y, qp);
  return y;
}

template <class Arch>
void check_float_attention(const problem& pr, const qtx::ops::attention_params& p, bool masked, bool gated) {
  std::vector<float> out(pr.Tq * pr.D()), ref(pr.Tq * pr.D());
  auto mask = masked ? qtx::make_view(pr.mask.data(), 1, pr.Tk) : qtx::matrix_view<const float>{};
  auto gate = gated ? qtx::make_view(pr.gate.data(), pr.Tq, pr.H) : qtx::matrix_view<const float>{};
  qtx::ops::attention(Arch{}, pr.qv(), pr.kv(), pr.vv(), qtx::make_view(out.data(), pr.Tq, pr.D()), p, mask, gate);
  qtx::ref::attention_config cfg{p.n_heads, p.scale, p.gamma, p.zeta, p.causal, p.causal_offset};
  qtx::ref::attention(pr.qv(), pr.kv(), pr.vv(), qtx::make_view(ref.data(), pr.Tq, pr.D()), cfg, mask, gate);
  for (std::size_t i = 0; i < out.size(); ++i) REQUIRE(out[i] == Approx(ref[i]).margin(2e-5).epsilon(1e-4));
}
}  // namespace

TEMPLATE_LIST_TEST_CASE("fused float attention equals the materialised reference", "[attention]", backends) {
  using arch = TestType;
  if (!qtx::cpu::supported<arch>()) {
    WARN("CPU lacks " << arch::name() << ": skipped");
    return;
  }
  const index_t Tq = GENERATE(1, 3, 7, 64, 65, 130);
  const index_t d = GENERATE(1, 5, 16, 32);
  problem pr(Tq, Tq, 3, d, unsigned(Tq * 7 + d));
  for (float gamma : {0.0f, -0.025f}) {
    qtx::ops::attention_params p{3, 1.0f / std::sqrt(float(d)), gamma, 1.0f, false, 0};
    check_float_attention<arch>(pr, p, false, false);
    check_float_attention<arch>(pr, p, true, true);
    p.causal = true;
    check_float_attention<arch>(pr, p, true, false);
  }
}

TEST_CASE("a head with uniform scores contributes exactly zero under clipped softmax", "[attention]") {
  // q = 0 makes every score equal: softmax is 1/T, and with γ = −0.025 at T = 128 the clip gives 0.
  const index_t T = 128, H = 2, d = 8;
  std::vector<float> q(T * H * d, 0.0f), k = random_vector(T * H * d, 1.0f, 3), v = random_vector(T * H * d, 1.0f, 4);
  for (index_t t = 0; t < T; ++t)
    for (index_t c = 0; c < d; ++c) q[t * H * d + d + c] = 1.0f;  // head 1 is not uniform
  std::vector<float> out(T * H * d, 99.0f);
  qtx::ops::attention(qtx::cpu::native{}, qtx::make_view(q.data(), T, H * d), qtx::make_view(k.data(), T, H * d),
                      qtx::make_view(v.data(), T, H * d), qtx::make_view(out.data(), T, H * d),
                      {H, 1.0f, -0.025f, 1.0f, false, 0});
  for (index_t t = 0; t < T; ++t)
    for (index_t c = 0; c < d; ++c) REQUIRE(out[t * H * d + c] == 0.0f);
  bool head1_nonzero = false;
  for (index_t t = 0; t < T; ++t) head1_nonzero |= out[t * H * d + d] != 0.0f;
  CHECK(head1_nonzero);
}

TEST_CASE("causal attention decoded token by token equals full recomputation", "[attention]") {
  const index_t T = 37, H = 2, d = 16, D = H * d;
  problem pr(T, T, H, d, 11);
  qtx::ops::attention_params p{H, 0.25f, -0.01f, 1.0f, true, 0};
  std::vector<float> full(T * D);
  qtx::ops::attention(qtx::cpu::native{}, pr.qv(), pr.kv(), pr.vv(), qtx::make_view(full.data(), T, D), p);
  for (index_t t = 0; t < T; ++t) {
    // The cache holds keys/values 0..t; the new query is row t and sees all of them.
    std::vector<float> step(D);
    qtx::ops::attention_params decode = p;
    decode.causal_offset = t;
    qtx::ops::attention(qtx::cpu::native{}, pr.qv().block(t, 0, 1, D), pr.kv().block(0, 0, t + 1, D),
                        pr.vv().block(0, 0, t + 1, D), qtx::make_view(step.data(), 1, D), decode);
    for (index_t c = 0; c < D; ++c) REQUIRE(step[c] == Approx(full[t * D + c]).margin(1e-6));
  }
}

TEST_CASE("W8A8 attention stays within quantization error of float attention", "[attention]") {
  const index_t T = GENERATE(5, 64, 97), H = 2, d = 32, D = H * d;
  problem pr(T, T, H, d, unsigned(T));
  qtx::ops::attention_quant quant;
  const auto q8 = quantize_all(pr.q, quant.q), k8 = quantize_all(pr.k, quant.k), v8 = quantize_all(pr.v, quant.v);
  quant.out = qtx::asymmetric_params<uint8_t>(-3.0f, 3.0f);
  for (bool gated : {false, true}) {
    qtx::ops::attention_params p{H, 1.0f / std::sqrt(float(d)), -0.01f, 1.0f, false, 0};
    auto gate = gated ? qtx::make_view(pr.gate.data(), T, H) : qtx::matrix_view<const float>{};
    std::vector<float> ref(T * D), out_f(T * D);
    std::vector<uint8_t> out_q(T * D);
    qtx::ref::attention(pr.qv(), pr.kv(), pr.vv(), qtx::make_view(ref.data(), T, D),
                        {H, p.scale, p.gamma, p.zeta, false, 0}, {}, gate);
    qtx::ops::attention(qtx::cpu::native{}, qtx::make_view(q8.data(), T, D), qtx::make_view(k8.data(), T, D),
                        qtx::make_view(v8.data(), T, D), qtx::make_view(out_f.data(), T, D), p, quant, {}, gate);
    qtx::ops::attention(qtx::cpu::native{}, qtx::make_view(q8.data(), T, D), qtx::make_view(k8.data(), T, D),
                        qtx::make_view(v8.data(), T, D), qtx::make_view(out_q.data(), T, D), p, quant, {}, gate);
    double max_err = 0;
    for (std::size_t i = 0; i < ref.size(); ++i) {
      max_err = std::max(max_err, double(std::abs(out_f[i] - ref[i])));
      // The uint8 output is the float output quantized (same epilogue up to the last stage).
      REQUIRE(std::abs(int(out_q[i]) - int(qtx::quantize_one<uint8_t>(out_f[i], quant.out.inv_scale(),
                                                                      quant.out.zero_point))) <= 1);
    }
    // Inputs carry ±s/2 error (s ≈ 8/255 here), probabilities ±1/510 each.
    CHECK(max_err < 0.15);
  }
}

namespace {
// The decode path (few queries, K and V read in place) against the packed GEMM path on one backend:
// W8A8 outputs bit-identical (same integer sums, same epilogue), float within rounding.
template <class Arch>
void check_decode_matches_packed(index_t Tq, index_t Tk, index_t d) {
  if (!qtx::cpu::supported<Arch>()) return;
  const index_t H = 3, D = H * d;
  problem pr(Tq, Tk, H, d, unsigned(Tq * 1000 + Tk * 10 + d));
  qtx::ops::attention_quant quant;
  const auto q8 = quantize_all(pr.q, quant.q), k8 = quantize_all(pr.k, quant.k), v8 = quantize_all(pr.v, quant.v);
  quant.out = qtx::asymmetric_params<uint8_t>(-2.0f, 2.5f);
  const auto q8v = qtx::make_view(q8.data(), Tq, D), k8v = qtx::make_view(k8.data(), Tk, D),
             v8v = qtx::make_view(v8.data(), Tk, D);
  for (int variant = 0; variant < 4; ++variant) {
    const bool masked = variant & 1, gated = variant & 2;
    auto mask = masked ? qtx::make_view(pr.mask.data(), 1, Tk) : qtx::matrix_view<const float>{};
    auto gate = gated ? qtx::make_view(pr.gate.data(), Tq, H) : qtx::matrix_view<const float>{};
    for (float gamma : {0.0f, -0.05f}) {
      for (bool causal : {false, true}) {
        const qtx::cpu::attention_params p{H, 1.0f / std::sqrt(float(d)), gamma, 1.0f, causal,
                                           causal ? std::max<index_t>(0, Tk - Tq) : 0};
        std::vector<float> fast(Tq * D), packed(Tq * D), fast_f(Tq * D), packed_f(Tq * D);
        std::vector<uint8_t> fast_q(Tq * D), packed_q(Tq * D);
        qtx::cpu::decode_attention(Arch{}, pr.qv(), pr.kv(), pr.vv(), qtx::make_view(fast.data(), Tq, D), p, mask,
                                   gate, {});
        qtx::cpu::fused_attention(Arch{}, pr.qv(), pr.kv(), pr.vv(), qtx::make_view(packed.data(), Tq, D), p, mask,
                                  gate, {});
        for (std::size_t i = 0; i < fast.size(); ++i) REQUIRE(fast[i] == Approx(packed[i]).margin(1e-5).epsilon(1e-5));
        qtx::cpu::decode_attention(Arch{}, q8v, k8v, v8v, qtx::make_view(fast_q.data(), Tq, D), p, mask, gate, quant);
        qtx::cpu::fused_attention(Arch{}, q8v, k8v, v8v, qtx::make_view(packed_q.data(), Tq, D), p, mask, gate, quant);
        REQUIRE(fast_q == packed_q);
        qtx::cpu::decode_attention(Arch{}, q8v, k8v, v8v, qtx::make_view(fast_f.data(), Tq, D), p, mask, gate, quant);
        qtx::cpu::fused_attention(Arch{}, q8v, k8v, v8v, qtx::make_view(packed_f.data(), Tq, D), p, mask, gate, quant);
        REQUIRE(fast_f == packed_f);
      }
    }
  }
}
}  // namespace

TEST_CASE("decode attention (K, V read in place) equals the packed path", "[attention]") {
  const index_t Tq = GENERATE(1, 2, 3, 4);
  const index_t Tk = GENERATE(1, 5, 64, 130);
  const index_t d = GENERATE(8, 24, 64);
  test_backends::for_each_compiled<backends>([&]<class Arch>() { check_decode_matches_packed<Arch>(Tq, Tk, d); });
}

TEST_CASE("attention rejects bad shapes, heads, masks and parameters", "[attention]") {
  problem pr(4, 4, 2, 4, 1);
  std::vector<float> out(4 * 8);
  auto o = qtx::make_view(out.data(), 4, 8);
  auto run = [&](qtx::ops::attention_params p, qtx::matrix_view<const float> mask = {},
                 qtx::matrix_view<const float> gate = {}) {
    qtx::ops::attention(qtx::cpu::native{}, pr.qv(), pr.kv(), pr.vv(), o, p, mask, gate);
  };
  CHECK_THROWS_WITH(run({3, 1.0f}), Catch::Contains("not a multiple of n_heads 3"));
  CHECK_THROWS_WITH(run({0, 1.0f}), Catch::Contains("n_heads (0)"));
  // The clip rule is softmax's (ops/rules.hpp), message and all.
  CHECK_THROWS_WITH(run({2, 1.0f, 0.1f, 1.0f}), Catch::StartsWith("attention: gamma (0.1) must be finite and <= 0"));
  CHECK_THROWS_WITH(run({2, 1.0f, 0.0f, 0.5f}), Catch::StartsWith("attention: zeta (0.5) must be finite and >= 1"));
  CHECK_THROWS_WITH(run({2, 1.0f, -INFINITY, 1.0f}), Catch::StartsWith("attention: gamma (-inf)"));
  CHECK_THROWS_WITH(run({2, 1.0f, -3e38f, 3e38f}), Catch::StartsWith("attention: zeta - gamma"));
  CHECK_THROWS_WITH(run({2, 1.0f}, qtx::make_view(pr.mask.data(), 1, 3)), Catch::Contains("key_mask is 1x3"));
  CHECK_THROWS_WITH(run({2, 1.0f}, {}, qtx::make_view(pr.gate.data(), 4, 1)), Catch::Contains("gate is 4x1"));
  CHECK_THROWS_AS(qtx::ops::attention(qtx::cpu::native{}, pr.qv(), pr.kv().block(0, 0, 3, 8), pr.vv(), o,
                                      qtx::ops::attention_params{2, 1.0f}),
                  qtx::error);
  // W8A8 with the output quantized per head: one valid parameter set per head, uint8 output only.
  const std::vector<uint8_t> levels(4 * 8, 128);
  const auto l = qtx::make_view(levels.data(), 4, 8);
  std::vector<uint8_t> out8(4 * 8);
  const std::vector<qtx::quant_params> one = {{0.1f, 128}}, two_bad = {{0.1f, 128}, {0.0f, 128}};
  auto run8 = [&](std::span<const qtx::quant_params> per_head, bool uint8_out = true) {
    qtx::ops::attention_quant quant{{0.1f, 128}, {0.1f, 128}, {0.1f, 128}, {0.1f, 128}, per_head};
    if (uint8_out)
      qtx::ops::attention(qtx::cpu::native{}, l, l, l, qtx::make_view(out8.data(), 4, 8), {2, 1.0f}, quant);
    else
      qtx::ops::attention(qtx::cpu::native{}, l, l, l, o, {2, 1.0f}, quant);
  };
  CHECK_THROWS_WITH(run8(one),
                    Catch::StartsWith("attention: quant.out_per_head has 1 entries, expected one per head (2)"));
  CHECK_THROWS_WITH(run8(two_bad), Catch::StartsWith("attention: quant.out_per_head.scale (0)"));
  CHECK_THROWS_WITH(run8(one, false), Catch::Contains("a float output is not quantized"));
}

// W8A8 attention, fused (Tq > decode_max_queries) and decode (Tq ≤ decode_max_queries) paths, on
// every backend the CPU runs, against the integer oracle ref::attention_int8.
//
// Two comparisons per case:
//  1. Bit-exact: the backend equals the oracle whose one float step, the softmax row → uint8 levels,
//     is the backend's own row kernel (ops::softmax with that tag). This checks every integer step
//     exactly: Σ(q − z_q)(k − z_k), the score scale, mask, causal window and KV-cache offset, P·V,
//     the dequantize · gate · requantize epilogue, for uint8 and float outputs.
//  2. Against the normative oracle (ref::softmax levels): the scalar backend is bit-exact. A vector
//     backend's levels may differ by exactly 1 where p·255 sits within a few ulp of a rounding tie
//     (vector exp ≤ 1 ulp, float lane sums; see ref/attention_int8.hpp); such levels must be rare
//     (< 0.1 %), and outputs may differ only in the (query, head) rows that hold one.
#include <catch2/catch.hpp>

#include "backends.hpp"

#include <qtx/ops/attention.hpp>
#include <qtx/ops/softmax.hpp>
#include <qtx/ref/attention_int8.hpp>

#include <cmath>
#include <cstdint>
#include <random>
#include <tuple>
#include <vector>

using qtx::index_t;
using backends = test_backends::compiled<std::tuple<qtx::cpu::scalar, qtx::cpu::avx2, qtx::cpu::avx_vnni, qtx::cpu::avx512_vnni>>;

namespace {

using test_backends::skip_unsupported;

// The backend's own softmax row kernel as the oracle's probability step.
template <class Arch>
struct backend_probabilities {
  void operator()(qtx::matrix_view<const int32_t> scores, qtx::matrix_view<uint8_t> levels,
                  const qtx::softmax_params& p, qtx::matrix_view<const float> key_mask) const {
    qtx::ops::softmax(Arch{}, scores, levels, p, key_mask, qtx::cpu::probability_params);
  }
};

std::vector<uint8_t> random_levels(std::size_t n, unsigned seed, int lo, int hi) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> d(lo, hi);
  std::vector<uint8_t> v(n);
  for (auto& x : v) x = uint8_t(d(rng));
  return v;
}

struct problem {
  index_t Tq, Tk, H, d;
  std::vector<uint8_t> q, k, v;
  std::vector<float> mask, gate;
  qtx::ref::attention_int8_quant quant;
  std::vector<qtx::quant_params> out_per_head;
  problem(index_t tq, index_t tk, index_t h, index_t dh, unsigned seed)
      : Tq(tq), Tk(tk), H(h), d(dh), q(random_levels(std::size_t(tq * h * dh), seed, 0, 255)),
        // Keys near their zero point spread the scores over a useful softmax range.
        k(random_levels(std::size_t(tk * h * dh), seed + 1, 60, 200)),
        v(random_levels(std::size_t(tk * h * dh), seed + 2, 0, 255)), mask(std::size_t(tk)), gate(std::size_t(tq * h)) {
    std::mt19937 rng(seed + 3);
    std::uniform_real_distribution<float> u(0.0f, 1.0f);
    for (auto& g : gate) g = u(rng);
    for (index_t j = 0; j < tk; ++j) mask[j] = j % 5 == 3 ? -1e4f : j % 7 == 6 ? -INFINITY : -u(rng);
    // Zero points mid-range and off-centre; s_q·s_k·scale puts the scores at a few units.
    quant.q = {0.05f, int32_t(100 + seed % 50)};
    quant.k = {0.04f, 130};
    quant.v = {0.02f, int32_t(120 + seed % 17)};
    quant.out = {0.012f, 125};
    // Per-head outputs (the gated layers' context): each head on its own scale and zero point.
    for (index_t head = 0; head < h; ++head)
      out_per_head.push_back({0.004f * float(head + 1), int32_t(125 - 9 * head)});
  }
  index_t D() const { return H * d; }
  auto qv() const { return qtx::make_view(q.data(), Tq, D()); }
  auto kv() const { return qtx::make_view(k.data(), Tk, D()); }
  auto vv() const { return qtx::make_view(v.data(), Tk, D()); }
};

struct tie_stats {
  long levels = 0, level_differences = 0, outputs = 0, output_differences = 0;
};

template <class Arch, class Out>
void check_case(const problem& pr, const qtx::ref::attention_config& cfg, bool masked, bool gated, tie_stats& stats,
                bool per_head_output = false) {
  const index_t Tq = pr.Tq, D = pr.D();
  const auto mask = masked ? qtx::make_view(pr.mask.data(), 1, pr.Tk) : qtx::matrix_view<const float>{};
  const auto gate = gated ? qtx::make_view(pr.gate.data(), Tq, pr.H) : qtx::matrix_view<const float>{};
  std::vector<Out> got(std::size_t(Tq * D)), exact(got.size()), normative(got.size());
  const qtx::ops::attention_params p{cfg.n_heads, cfg.scale, cfg.gamma, cfg.zeta, cfg.causal, cfg.causal_offset};
  qtx::ops::attention_quant quant{pr.quant.q, pr.quant.k, pr.quant.v, pr.quant.out};
  auto ref_quant = pr.quant;
  if (per_head_output) {
    quant.out_per_head = pr.out_per_head;
    ref_quant.out_per_head = pr.out_per_head;
  }
  qtx::ops::attention(Arch{}, pr.qv(), pr.kv(), pr.vv(), qtx::make_view(got.data(), Tq, D), p, quant, mask, gate);

  std::vector<uint8_t> p_backend, p_reference;
  qtx::ref::attention_int8(pr.qv(), pr.kv(), pr.vv(), qtx::make_view(exact.data(), Tq, D), cfg, ref_quant, mask, gate,
                           backend_probabilities<Arch>{}, &p_backend);
  qtx::ref::attention_int8(pr.qv(), pr.kv(), pr.vv(), qtx::make_view(normative.data(), Tq, D), cfg, ref_quant, mask,
                           gate, qtx::ref::reference_probabilities{}, &p_reference);
  INFO(Arch::name() << " Tq " << Tq << " Tk " << pr.Tk << " H " << pr.H << " d " << pr.d << " gamma " << cfg.gamma
                    << " zeta " << cfg.zeta << " causal " << cfg.causal << " offset " << cfg.causal_offset << " mask "
                    << masked << " gate " << gated << " per-head output " << per_head_output);
  REQUIRE(got == exact);

  // Rows (head, query) whose probability levels differ from the normative ones.
  std::vector<char> row_differs(std::size_t(pr.H * Tq), 0);
  for (std::size_t e = 0; e < p_reference.size(); ++e) {
    ++stats.levels;
    if (p_backend[e] == p_reference[e]) continue;
    REQUIRE(std::abs(int(p_backend[e]) - int(p_reference[e])) == 1);
    ++stats.level_differences;
    row_differs[e / std::size_t(pr.Tk)] = 1;  // e = (h·Tq + i)·Tk + j
  }
  for (index_t i = 0; i < Tq; ++i)
    for (index_t c = 0; c < D; ++c) {
      const std::size_t e = std::size_t(i * D + c);
      const index_t h = c / pr.d;
      ++stats.outputs;
      if (got[e] == normative[e]) continue;
      ++stats.output_differences;
      REQUIRE(row_differs[std::size_t(h * Tq + i)]);
    }
  if (std::is_same_v<Arch, qtx::cpu::scalar>) REQUIRE(got == normative);  // its softmax is ref::softmax
}

}  // namespace

TEMPLATE_LIST_TEST_CASE("W8A8 attention is bit-exact against the integer oracle", "[attention][int8]", backends) {
  if (skip_unsupported<TestType>()) return;
  tie_stats stats;
  int cases = 0;
  for (index_t Tq : {1, 2, 4, 5, 7, 64, 65}) {
    for (index_t Tk : {1, 2, 5, 33, 130}) {
      for (index_t H : {1, 3}) {
        for (index_t d : {1, 3, 16, 17, 64}) {
          if (Tq * Tk * H * d > 65 * 130 * 16) continue;  // keep the sweep to seconds
          const problem pr(Tq, Tk, H, d, unsigned(Tq * 7919 + Tk * 31 + H * 7 + d));
          for (int variant = 0; variant < 8; ++variant) {
            const bool masked = variant & 1, gated = variant & 2, causal = variant & 4;
            // Clipping alternates with the shape: plain, clipped (γ = −0.03), clipped with ζ = 1.02.
            const int clip = int((Tq + Tk + d + variant) % 3);
            const float gamma = clip == 0 ? 0.0f : -0.03f, zeta = clip == 2 ? 1.02f : 1.0f;
            // Causal: queries are the last Tq positions of Tk (the KV-cache layout), or offset 0.
            const index_t offset = causal && (variant & 1) ? std::max<index_t>(0, Tk - Tq) : 0;
            const qtx::ref::attention_config cfg{H, 1.0f / std::sqrt(float(d)), gamma, zeta, causal, offset};
            check_case<TestType, uint8_t>(pr, cfg, masked, gated, stats, (Tq + variant) % 2 == 1);
            check_case<TestType, float>(pr, cfg, masked, gated, stats);
            ++cases;
          }
        }
      }
    }
  }
  INFO(cases << " cases; " << stats.level_differences << " of " << stats.levels
             << " probability levels differ by 1 from ref::softmax's; " << stats.output_differences << " of "
             << stats.outputs << " outputs differ, all in rows holding such a level");
  CHECK(stats.level_differences * 1000 <= stats.levels);
  WARN(TestType::name() << ": " << stats.level_differences << " of " << stats.levels << " levels at a tie, "
                        << stats.output_differences << " of " << stats.outputs << " outputs affected");
}

TEST_CASE("the integer oracle by hand: uniform scores, zero points and the clip", "[attention][int8]") {
  // q = z_q makes every score 0: plain softmax gives p = 1/Tk on every visible key. Tk = 2 gives
  // p = 0.5 → level round_half_even(0.5 · (1/(1/255))) = 127: in float 1/(1/255) is 254.99998, so
  // 0.5 lands just below the tie 127.5 (and 1.0 still on 255). A = 127·Σ(v − z_v).
  const index_t Tk = 2, d = 2;
  const std::vector<uint8_t> q = {100, 100}, k = {7, 250, 0, 3}, v = {140, 120, 130, 110};
  qtx::ref::attention_int8_quant quant{{0.1f, 100}, {0.1f, 9}, {0.5f, 120}, {1.0f, 10}};
  std::vector<float> out(2);
  qtx::ref::attention_int8(qtx::make_view(q.data(), 1, d), qtx::make_view(k.data(), Tk, d),
                           qtx::make_view(v.data(), Tk, d), qtx::make_view(out.data(), 1, d), {1, 1.0f}, quant);
  const float s_pv = (1.0f / 255.0f) * 0.5f;
  CHECK(out[0] == float(127 * ((140 - 120) + (130 - 120))) * s_pv);
  CHECK(out[1] == float(127 * ((120 - 120) + (110 - 120))) * s_pv);
  // Clipped softmax with γ = −0.5 maps p = 0.5 to 1.5·0.5 − 0.5 = 0.25 → level 64 (63.749996 rounds up).
  std::vector<uint8_t> out8(2);
  qtx::ref::attention_int8(qtx::make_view(q.data(), 1, d), qtx::make_view(k.data(), Tk, d),
                           qtx::make_view(v.data(), Tk, d), qtx::make_view(out8.data(), 1, d), {1, 1.0f, -0.5f, 1.0f},
                           quant);
  CHECK(int(out8[0]) == 10 + int(std::nearbyint(float(64 * 30) * s_pv)));
  CHECK(int(out8[1]) == 10 + int(std::nearbyint(float(64 * -10) * s_pv)));
  // Causal with no visible key (offset 0, query 0 sees key 0 only) and the mask: key 0 at −inf leaves
  // nothing visible, so the output is exactly the output zero point.
  const std::vector<float> mask = {-INFINITY, 0.0f};
  qtx::ref::attention_int8(qtx::make_view(q.data(), 1, d), qtx::make_view(k.data(), Tk, d),
                           qtx::make_view(v.data(), Tk, d), qtx::make_view(out8.data(), 1, d),
                           {1, 1.0f, 0.0f, 1.0f, true, 0}, quant, qtx::make_view(mask.data(), 1, Tk));
  CHECK(out8 == std::vector<uint8_t>{10, 10});
}

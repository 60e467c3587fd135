// gate_weights::from_pi_init: zero weights and output bias logit(π_init), so every input gets π_init.
#include <catch2/catch.hpp>

#include <qtx/core/arch.hpp>
#include <qtx/ops/gate.hpp>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

using qtx::gate_kind;
using qtx::index_t;

TEST_CASE("gate_weights::from_pi_init gives pi_init for every input, for every kind", "[gate]") {
  const gate_kind kind = GENERATE(gate_kind::linear_per_head, gate_kind::mlp_per_head, gate_kind::all_heads_linear,
                                  gate_kind::unconditional);
  const float pi_init = GENERATE(0.25f, 0.5f, 1e-3f, 0.999f);
  const index_t H = 3, dh = 5, hidden = kind == gate_kind::mlp_per_head ? 2 : 0;
  INFO(qtx::to_string(kind) << " pi_init " << pi_init);
  const auto g = qtx::gate_weights::from_pi_init(kind, H, dh, pi_init, hidden);
  CHECK(g.kind == kind);
  CHECK(g.n_heads == H);
  CHECK(g.d_head == dh);
  CHECK_NOTHROW(qtx::check_gate_weights("test", g));
  // The output bias is logit(π_init), computed in double here.
  const double logit = std::log(double(pi_init) / (1.0 - double(pi_init)));
  const auto& out_bias = kind == gate_kind::mlp_per_head ? g.b2 : g.b1;
  REQUIRE(index_t(out_bias.size()) == H);
  for (float b : out_bias) CHECK(b == Approx(logit).epsilon(1e-6));

  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 3.0f);
  const index_t T = 4;
  std::vector<float> x(T * H * dh), pi(T * H, -1.0f);
  for (auto& v : x) v = normal(rng);
  qtx::ops::attention_gate(qtx::cpu::native{}, g, qtx::make_view(x.data(), T, H * dh), qtx::make_view(pi.data(), T, H));
  // sigmoid(logit(p)) in float: a few ulp of p.
  for (float p : pi) CHECK(std::abs(p - pi_init) <= 8 * std::numeric_limits<float>::epsilon() * std::max(pi_init, 0.5f));
}

TEST_CASE("gate_weights::from_pi_init rejects bad arguments with qtx::error", "[gate][errors]") {
  const auto make = [](gate_kind kind, index_t H, index_t dh, float p, index_t hidden = 0) {
    return qtx::gate_weights::from_pi_init(kind, H, dh, p, hidden);
  };
  const gate_kind lin = gate_kind::linear_per_head;
  // pi_init outside (0, 1): 6 bad values.
  for (float p : {0.0f, 1.0f, -0.5f, 1.5f, std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity()})
    CHECK_THROWS_WITH(make(lin, 2, 4, p), Catch::Contains("gate_weights::from_pi_init: pi_init (") &&
                                              Catch::Contains("must lie in (0, 1)"));
  // Sizes: n_heads 0, negative d_head, mlp without hidden, hidden given to a non-mlp kind.
  CHECK_THROWS_WITH(make(lin, 0, 4, 0.25f), Catch::Contains("n_heads (0)"));
  CHECK_THROWS_WITH(make(lin, 2, -1, 0.25f), Catch::Contains("d_head (-1)"));
  CHECK_THROWS_WITH(make(gate_kind::mlp_per_head, 2, 4, 0.25f, 0), Catch::Contains("hidden (0) must be positive"));
  CHECK_THROWS_WITH(make(gate_kind::unconditional, 2, 4, 0.25f, 3), Catch::Contains("hidden (3) must be 0"));
  // An enum value that names no kind.
  CHECK_THROWS_WITH(make(static_cast<gate_kind>(17), 2, 4, 0.25f), Catch::Contains("unknown gate kind (17)"));
  // logit shares the probability rule.
  CHECK_THROWS_WITH(qtx::logit(0.0f), Catch::Contains("logit: p (0) must lie in (0, 1)"));
}

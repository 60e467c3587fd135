#pragma once
/// @file
/// Attention-head gates (gated attention, Bondarenko et al. 2023, §4.2):
///
///   π(t, h) = sigmoid(G_h(x(t, h)))        o(t, h) = π(t, h) · (P_h V_h)(t)
///
/// x(t, h) is head h's d_head-slice of the attention block's *input* hidden state (split like Q/K/V).
/// Variants of the paper's code (G_h per head unless noted):
///   linear_per_head   G_h(x) = w_h · x + b_h                                  (default)
///   mlp_per_head      G_h(x) = w2_h · relu(W1_h x + b1_h) + b2_h               (hidden d_head/4 or d_head)
///   all_heads_linear  G(x)   = W x_full + b,  W: (n_heads, d_model)           (each head sees all of x)
///   unconditional     G_h    = b_h                                             (one learned scalar per head)
/// Biases start at logit(π_init) (OPT 0.25, ViT 0.5). The gate stays in float even in W8A8 models.
#include <cmath>
#include <cstdint>
#include <vector>

#include "../core/error.hpp"
#include "../core/parallel.hpp"
#include "../core/view.hpp"
#include "../config.hpp"

namespace qtx::QTX_ABI {

/// The gate variants of the paper's code (formulas in this file's description).
enum class gate_kind { linear_per_head, mlp_per_head, all_heads_linear, unconditional };

/// The kind's name, for error messages and logs.
inline const char* to_string(gate_kind k) {
  switch (k) {
    case gate_kind::linear_per_head: return "linear_per_head";
    case gate_kind::mlp_per_head: return "mlp_per_head";
    case gate_kind::all_heads_linear: return "all_heads_linear";
    case gate_kind::unconditional: return "unconditional";
  }
  return "?";
}

/// Weights of all heads' gates, stored head-major so that one pass over a token's hidden state
/// (a block-diagonal GEMV for the per-head kinds) produces every head's gate.
struct gate_weights {
  /// Which gate function the weights belong to.
  gate_kind kind = gate_kind::linear_per_head;
  /// Number of attention heads (one gate probability each).
  index_t n_heads = 0;
  /// Width of one head's slice of the hidden state.
  index_t d_head = 0;
  index_t hidden = 0;     ///< mlp_per_head only
  std::vector<float> w1;  ///< linear: (n_heads, d_head); mlp: (n_heads, hidden, d_head); all_heads: (n_heads, d_model)
  std::vector<float> b1;  ///< (n_heads), mlp: (n_heads, hidden)
  std::vector<float> w2;  ///< mlp: (n_heads, hidden)
  std::vector<float> b2;  ///< mlp: (n_heads)

  /// The hidden width the gate reads: n_heads · d_head.
  index_t d_model() const { return n_heads * d_head; }

  /// The gate at initialisation: every weight 0 and the output bias logit(pi_init), so that
  /// π = pi_init for every input (the paper's OPT 0.25, ViT 0.5). `hidden` is the mlp_per_head
  /// hidden size and must be 0 for the other kinds. Throws qtx::error unless pi_init lies in (0, 1)
  /// and the sizes are positive.
  static gate_weights from_pi_init(gate_kind kind, index_t n_heads, index_t d_head, float pi_init,
                                   index_t hidden = 0);
};

/// A probability strictly between 0 and 1 (where its logit is finite).
inline void check_open_probability(const char* fn, const char* name, float p) {
  check(p > 0.0f && p < 1.0f, fn, ": ", name, " (", p, ") must lie in (0, 1)");
}

/// log(p / (1 − p)): the bias that makes sigmoid give p (gate initialisation).
/// @throws qtx::error ("logit: ...") unless p lies in (0, 1).
inline float logit(float p) {
  check_open_probability("logit", "p", p);
  return std::log(p / (1.0f - p));
}

/// 1 / (1 + e^−z): the gate's squashing, so π stays in (0, 1).
inline float sigmoid(float z) { return 1.0f / (1.0f + std::exp(-z)); }

/// Throws qtx::error naming `fn` unless g's sizes are positive and every weight vector has the length
/// its kind needs (so a loaded checkpoint with the wrong shapes fails before any work).
inline void check_gate_weights(const char* fn, const gate_weights& g) {
  check(g.n_heads > 0 && g.d_head > 0, fn, ": gate has n_heads ", g.n_heads, " and d_head ", g.d_head,
        "; both must be positive");
  auto expect = [&](const std::vector<float>& v, index_t n, const char* name) {
    check(index_t(v.size()) == n, fn, ": gate (", to_string(g.kind), ") ", name, " has ", v.size(),
          " values, expected ", n);
  };
  const index_t H = g.n_heads;
  switch (g.kind) {
    case gate_kind::linear_per_head: expect(g.w1, H * g.d_head, "w1"); expect(g.b1, H, "b1"); break;
    case gate_kind::mlp_per_head:
      check(g.hidden > 0, fn, ": mlp gate hidden size (", g.hidden, ") must be positive");
      expect(g.w1, H * g.hidden * g.d_head, "w1");
      expect(g.b1, H * g.hidden, "b1");
      expect(g.w2, H * g.hidden, "w2");
      expect(g.b2, H, "b2");
      break;
    case gate_kind::all_heads_linear: expect(g.w1, H * g.d_model(), "w1"); expect(g.b1, H, "b1"); break;
    case gate_kind::unconditional: expect(g.b1, H, "b1"); break;
  }
}

inline gate_weights gate_weights::from_pi_init(gate_kind kind, index_t n_heads, index_t d_head, float pi_init,
                                               index_t hidden) {
  constexpr const char* fn = "gate_weights::from_pi_init";
  check_open_probability(fn, "pi_init", pi_init);
  check(n_heads > 0 && d_head > 0, fn, ": n_heads (", n_heads, ") and d_head (", d_head, ") must be positive");
  check(kind == gate_kind::mlp_per_head ? hidden > 0 : hidden == 0, fn, ": hidden (", hidden, ") must be ",
        kind == gate_kind::mlp_per_head ? "positive for mlp_per_head" : "0 (only mlp_per_head has a hidden layer)");
  const float bias = logit(pi_init);
  const auto zeros = [](index_t n) { return std::vector<float>(static_cast<std::size_t>(n), 0.0f); };
  const auto biases = [&] { return std::vector<float>(static_cast<std::size_t>(n_heads), bias); };
  gate_weights g{kind, n_heads, d_head, hidden, {}, {}, {}, {}};
  switch (kind) {
    case gate_kind::linear_per_head: g.w1 = zeros(n_heads * d_head); g.b1 = biases(); break;
    case gate_kind::mlp_per_head:
      g.w1 = zeros(n_heads * hidden * d_head);
      g.b1 = zeros(n_heads * hidden);
      g.w2 = zeros(n_heads * hidden);
      g.b2 = biases();
      break;
    case gate_kind::all_heads_linear: g.w1 = zeros(n_heads * n_heads * d_head); g.b1 = biases(); break;
    case gate_kind::unconditional: g.b1 = biases(); break;
    default: check(false, fn, ": unknown gate kind (", int(kind), ")");
  }
  return g;
}

namespace detail {
inline float dot(const float* a, const float* b, index_t n) {
  float s = 0.0f;
  for (index_t i = 0; i < n; ++i) s += a[i] * b[i];
  return s;
}

// The gate logit of head h for one token (x = that token's full hidden state).
inline float gate_logit(const gate_weights& g, const float* x, index_t h) {
  const index_t dh = g.d_head;
  switch (g.kind) {
    case gate_kind::linear_per_head: return dot(g.w1.data() + h * dh, x + h * dh, dh) + g.b1[h];
    case gate_kind::mlp_per_head: {
      float z = g.b2[h];
      for (index_t j = 0; j < g.hidden; ++j) {
        const index_t row = h * g.hidden + j;
        const float a = dot(g.w1.data() + row * dh, x + h * dh, dh) + g.b1[row];
        z += g.w2[row] * (a > 0.0f ? a : 0.0f);
      }
      return z;
    }
    case gate_kind::all_heads_linear:
      return dot(g.w1.data() + h * g.d_model(), x, g.d_model()) + g.b1[h];
    case gate_kind::unconditional: return g.b1[h];
  }
  return 0.0f;
}
}  // namespace detail

namespace ops {

/// pi (T, n_heads) = gate probabilities for hidden states x (T, n_heads·d_head). One pass over each
/// token's hidden state computes all heads; tokens are spread over threads.
template <class Arch>
void attention_gate(Arch, const gate_weights& g, matrix_view<const float> x, matrix_view<float> pi) {
  check_gate_weights("attention_gate", g);
  check_view("attention_gate", "x", x);
  check_view("attention_gate", "pi", pi);
  check(x.cols == g.d_model(), "attention_gate: x has ", x.cols, " columns, gate expects d_model ",
        g.d_model(), " (", g.n_heads, " heads x ", g.d_head, ")");
  check(x.row_contiguous(), "attention_gate: x rows must be contiguous (col_stride ", x.col_stride, ")");
  check(pi.rows == x.rows && pi.cols == g.n_heads, "attention_gate: pi is ", pi.rows, "x", pi.cols,
        ", expected ", x.rows, "x", g.n_heads);
  parallel_for(0, x.rows, [&](index_t t) {
    for (index_t h = 0; h < g.n_heads; ++h) pi(t, h) = sigmoid(qtx::detail::gate_logit(g, x.row(t), h));
  });
}

}  // namespace ops
}  // namespace qtx

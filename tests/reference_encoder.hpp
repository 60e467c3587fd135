#pragma once
// A transformer encoder layer in double, straight from the definitions, for the tests of the
// encoder layers (qtx/nn/encoder_layer.hpp) and the example models built on them. Written for
// clarity, not speed; independent of qtx's kernels (it shares only the gate's weight layout).
//
//   post-LN: a = LN₁(x + attn(x));      y = LN₂(a + ffn(a))
//   pre-LN:  a = x + attn(LN₁(x));      y = a + ffn(LN₂(a))
//   attn_h(u) = π_h(u) · clip((ζ−γ)·softmax(Q_h K_hᵀ/√d + causal mask) + γ, 0, 1) · V_h, then W_O
#include <qtx/ops/gate.hpp>

#include <algorithm>
#include <cmath>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace reference {

using qtx::index_t;

enum class act { gelu_erf, gelu_tanh, relu };

// Row-major float weights in Hugging Face layout (out, in).
struct layer {
  index_t d_model = 0, ffn_dim = 0, heads = 1;
  std::vector<float> wq, bq, wk, bk, wv, bv, wo, bo;  // (D, D), (D)
  std::vector<float> ln1_gamma, ln1_beta, ln2_gamma, ln2_beta;
  std::vector<float> w1, b1, w2, b2;  // (F, D), (F), (D, F), (D)
  std::optional<qtx::gate_weights> gate;
  bool post_ln = false, causal = false;
  float gamma = 0.0f, zeta = 1.0f, eps = 1e-5f;
  act activation = act::gelu_erf;
};

using matrix = std::vector<double>;  // (T, cols) row-major

inline matrix linear(const matrix& x, index_t T, index_t in, index_t out, const std::vector<float>& w,
                     const std::vector<float>& b) {
  matrix y(static_cast<std::size_t>(T * out));
  for (index_t t = 0; t < T; ++t)
    for (index_t o = 0; o < out; ++o) {
      double s = b.empty() ? 0.0 : b[o];
      for (index_t i = 0; i < in; ++i) s += x[t * in + i] * double(w[o * in + i]);
      y[t * out + o] = s;
    }
  return y;
}

inline matrix layer_norm(const matrix& x, index_t T, index_t D, const std::vector<float>& g,
                         const std::vector<float>& b, double eps) {
  matrix y(x.size());
  for (index_t t = 0; t < T; ++t) {
    double mean = 0, var = 0;
    for (index_t c = 0; c < D; ++c) mean += x[t * D + c] / double(D);
    for (index_t c = 0; c < D; ++c) var += (x[t * D + c] - mean) * (x[t * D + c] - mean) / double(D);
    for (index_t c = 0; c < D; ++c) y[t * D + c] = (x[t * D + c] - mean) / std::sqrt(var + eps) * g[c] + b[c];
  }
  return y;
}

inline double activate(act a, double v) {
  constexpr double pi = 3.14159265358979323846;
  switch (a) {
    case act::gelu_erf: return 0.5 * v * (1.0 + std::erf(v / std::sqrt(2.0)));
    case act::gelu_tanh: return 0.5 * v * (1.0 + std::tanh(std::sqrt(2.0 / pi) * (v + 0.044715 * v * v * v)));
    case act::relu: return v > 0 ? v : 0.0;
  }
  return v;
}

// π_h for one token u (its full hidden state).
inline double gate_probability(const qtx::gate_weights& g, const double* u, index_t h) {
  const index_t dh = g.d_head, D = g.n_heads * g.d_head;
  auto dot = [](const float* w, const double* x, index_t n) {
    double s = 0;
    for (index_t i = 0; i < n; ++i) s += double(w[i]) * x[i];
    return s;
  };
  double z = 0;
  switch (g.kind) {
    case qtx::gate_kind::linear_per_head: z = dot(g.w1.data() + h * dh, u + h * dh, dh) + g.b1[h]; break;
    case qtx::gate_kind::mlp_per_head:
      z = g.b2[h];
      for (index_t j = 0; j < g.hidden; ++j) {
        const index_t row = h * g.hidden + j;
        z += double(g.w2[row]) * std::max(0.0, dot(g.w1.data() + row * dh, u + h * dh, dh) + g.b1[row]);
      }
      break;
    case qtx::gate_kind::all_heads_linear: z = dot(g.w1.data() + h * D, u, D) + g.b1[h]; break;
    case qtx::gate_kind::unconditional: z = g.b1[h]; break;
  }
  return 1.0 / (1.0 + std::exp(-z));
}

// attn(u) W_Oᵀ + b_O for T tokens u (T, D).
inline matrix attention(const layer& l, const matrix& u, index_t T) {
  const index_t D = l.d_model, H = l.heads, dh = D / H;
  const matrix q = linear(u, T, D, D, l.wq, l.bq), k = linear(u, T, D, D, l.wk, l.bk), v = linear(u, T, D, D, l.wv, l.bv);
  matrix ctx(static_cast<std::size_t>(T * D), 0.0);
  for (index_t h = 0; h < H; ++h)
    for (index_t t = 0; t < T; ++t) {
      const index_t keys = l.causal ? t + 1 : T;
      std::vector<double> s(static_cast<std::size_t>(keys));
      double mx = -1e300, sum = 0;
      for (index_t j = 0; j < keys; ++j) {
        double dot = 0;
        for (index_t c = 0; c < dh; ++c) dot += q[t * D + h * dh + c] * k[j * D + h * dh + c];
        s[j] = dot / std::sqrt(double(dh));
        mx = std::max(mx, s[j]);
      }
      for (auto& e : s) sum += (e = std::exp(e - mx));
      const double pi = l.gate ? gate_probability(*l.gate, u.data() + t * D, h) : 1.0;
      for (index_t j = 0; j < keys; ++j) {
        const double p = std::clamp((double(l.zeta) - l.gamma) * s[j] / sum + l.gamma, 0.0, 1.0);
        for (index_t c = 0; c < dh; ++c) ctx[t * D + h * dh + c] += pi * p * v[j * D + h * dh + c];
      }
    }
  return linear(ctx, T, D, D, l.wo, l.bo);
}

inline matrix ffn(const layer& l, const matrix& u, index_t T) {
  matrix h = linear(u, T, l.d_model, l.ffn_dim, l.w1, l.b1);
  for (auto& e : h) e = activate(l.activation, e);
  return linear(h, T, l.ffn_dim, l.d_model, l.w2, l.b2);
}

// The layer's output for x (T, d_model).
inline matrix forward(const layer& l, matrix x, index_t T) {
  const index_t D = l.d_model;
  auto add = [](matrix a, const matrix& b) {
    for (std::size_t i = 0; i < a.size(); ++i) a[i] += b[i];
    return a;
  };
  if (l.post_ln) {
    const matrix a = layer_norm(add(x, attention(l, x, T)), T, D, l.ln1_gamma, l.ln1_beta, l.eps);
    return layer_norm(add(a, ffn(l, a, T)), T, D, l.ln2_gamma, l.ln2_beta, l.eps);
  }
  const matrix a = add(x, attention(l, layer_norm(x, T, D, l.ln1_gamma, l.ln1_beta, l.eps), T));
  return add(a, ffn(l, layer_norm(a, T, D, l.ln2_gamma, l.ln2_beta, l.eps), T));
}

}  // namespace reference

namespace reference {

// Where a checkpoint keeps one layer's tensors: each entry is a name prefix, completed with
// "weight" / "bias" (the gate's: "weight" / "bias", linear_per_head when present).
struct layer_names {
  std::string q, k, v, o, ln1, ln2, fc1, fc2, gate;
};

// The layer of a checkpoint's named tensors (Hugging Face layout).
inline layer from_named(const std::map<std::string, std::vector<float>>& w, const layer_names& n, index_t d_model,
                        index_t ffn_dim, index_t heads) {
  const auto at = [&](const std::string& name) { return w.at(name); };
  layer l;
  l.d_model = d_model, l.ffn_dim = ffn_dim, l.heads = heads;
  l.wq = at(n.q + "weight"), l.bq = at(n.q + "bias"), l.wk = at(n.k + "weight"), l.bk = at(n.k + "bias");
  l.wv = at(n.v + "weight"), l.bv = at(n.v + "bias"), l.wo = at(n.o + "weight"), l.bo = at(n.o + "bias");
  l.ln1_gamma = at(n.ln1 + "weight"), l.ln1_beta = at(n.ln1 + "bias");
  l.ln2_gamma = at(n.ln2 + "weight"), l.ln2_beta = at(n.ln2 + "bias");
  l.w1 = at(n.fc1 + "weight"), l.b1 = at(n.fc1 + "bias"), l.w2 = at(n.fc2 + "weight"), l.b2 = at(n.fc2 + "bias");
  if (w.count(n.gate + "weight")) {
    qtx::gate_weights g;
    g.kind = qtx::gate_kind::linear_per_head;
    g.n_heads = heads, g.d_head = d_model / heads;
    g.w1 = at(n.gate + "weight"), g.b1 = at(n.gate + "bias");
    l.gate = std::move(g);
  }
  return l;
}

}  // namespace reference

#pragma once
// The paper's attention variant of a checkpoint (the qtx keys of its config.json) and the attention
// options it gives the qtx::nn modules: one reading for the BERT, OPT and ViT examples, so every
// model family accepts every gate kind.
#include "config.hpp"
#include "weights.hpp"

#include <qtx/core/error.hpp>
#include <qtx/nn/attention.hpp>
#include <qtx/ops/gate.hpp>

#include <algorithm>
#include <cmath>
#include <span>
#include <string>
#include <vector>

namespace demo {

struct attention_variant {
  float gamma = 0.0f, zeta = 1.0f;  // clipped softmax (qtx_softmax_gamma / _zeta); 0 / 1 = vanilla
  std::string gate = "none";        // qtx_gate: none, linear_per_head, mlp_per_head, unconditional
  qtx::index_t gate_hidden = 0;     // qtx_gate_hidden (mlp_per_head): 0 = d_head / 4
};

// num_attention_heads, checked to divide hidden_size.
inline qtx::index_t read_heads(const config_reader& r, qtx::index_t hidden) {
  const qtx::index_t heads = r.extent("num_attention_heads");
  r.check(hidden % heads == 0, "hidden_size (", hidden, ") is not a multiple of num_attention_heads (", heads,
          ")");
  return heads;
}

inline void read_attention_variant(const config_reader& r, attention_variant& v) {
  v.gamma = r.real_or("qtx_softmax_gamma", 0.0f);
  v.zeta = r.real_or("qtx_softmax_zeta", 1.0f);
  r.check(v.gamma <= 0.0f, "qtx_softmax_gamma (", v.gamma, ") must be <= 0");
  r.check(v.zeta >= 1.0f, "qtx_softmax_zeta (", v.zeta, ") must be >= 1");
  r.check(std::isfinite(v.zeta - v.gamma), "qtx_softmax_zeta - qtx_softmax_gamma (", v.zeta, " - ", v.gamma,
          ") overflows float");
  v.gate = r.text_or("qtx_gate", "none");
  r.check(v.gate == "none" || v.gate == "linear_per_head" || v.gate == "mlp_per_head" || v.gate == "unconditional",
          "unsupported qtx_gate '", v.gate, "' (none, linear_per_head, mlp_per_head, unconditional)");
  v.gate_hidden = r.extent_or("qtx_gate_hidden", 0, 0);
}

// Options of one layer's attention; the gate tensors are "<gate_prefix>weight", "...bias",
// "...fc1.weight", ..., checked against the config's sizes.
inline qtx::nn::attention_options attention_options_for(const attention_variant& v, qtx::index_t heads,
                                                        qtx::index_t hidden, bool causal, weight_store& w,
                                                        const std::string& gate_prefix) {
  qtx::nn::attention_options o{heads, v.gamma, v.zeta, causal, {}};
  if (v.gate == "none") return o;
  qtx::gate_weights g;
  g.n_heads = heads;
  g.d_head = hidden / heads;
  const dim h{heads, "num_attention_heads"}, dh{g.d_head, "hidden_size / num_attention_heads"};
  const auto vec = [](std::span<const float> s) { return std::vector<float>(s.begin(), s.end()); };
  if (v.gate == "linear_per_head") {
    g.kind = qtx::gate_kind::linear_per_head;
    g.w1 = vec(w.tensor(gate_prefix + "weight", {h, dh}));
    g.b1 = vec(w.vector(gate_prefix + "bias", h));
  } else if (v.gate == "mlp_per_head") {  // per head: d_head → hidden (ReLU) → 1
    g.kind = qtx::gate_kind::mlp_per_head;
    g.hidden = v.gate_hidden > 0 ? v.gate_hidden : std::max<qtx::index_t>(1, g.d_head / 4);
    const dim gh{g.hidden, v.gate_hidden > 0 ? "qtx_gate_hidden" : "max(1, d_head / 4)"};
    g.w1 = vec(w.tensor(gate_prefix + "fc1.weight", {h, gh, dh}));
    g.b1 = vec(w.tensor(gate_prefix + "fc1.bias", {h, gh}));
    g.w2 = vec(w.tensor(gate_prefix + "fc2.weight", {h, gh}));
    g.b2 = vec(w.vector(gate_prefix + "fc2.bias", h));
  } else {  // unconditional (read_attention_variant admits no other kind)
    g.kind = qtx::gate_kind::unconditional;
    g.b1 = vec(w.vector(gate_prefix + "bias", h));
  }
  o.gate = std::move(g);
  return o;
}

}  // namespace demo

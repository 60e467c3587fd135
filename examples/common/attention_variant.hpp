#pragma once
// The paper's attention variant of a checkpoint (the qtx keys of its config.json) and the attention
// options it gives the qtx::nn modules: one reading for the BERT, OPT and ViT examples, so every
// model family accepts every gate kind.
#include <qtx/core/error.hpp>
#include <qtx/nn/attention.hpp>
#include <qtx/ops/gate.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <span>
#include <string>
#include <vector>

namespace demo {

struct attention_variant {
  float gamma = 0.0f, zeta = 1.0f;  // clipped softmax (qtx_softmax_gamma / _zeta); 0 / 1 = vanilla
  std::string gate = "none";        // qtx_gate: none, linear_per_head, mlp_per_head, unconditional
  qtx::index_t gate_hidden = 0;     // qtx_gate_hidden (mlp_per_head): 0 = d_head / 4
};

inline void read_attention_variant(const nlohmann::json& j, attention_variant& v) {
  v.gamma = j.value("qtx_softmax_gamma", 0.0f);
  v.zeta = j.value("qtx_softmax_zeta", 1.0f);
  v.gate = j.value("qtx_gate", std::string("none"));
  v.gate_hidden = j.value("qtx_gate_hidden", qtx::index_t(0));
}

// Options of one layer's attention. gate_tensor(name) gives a gate tensor by its name under the
// layer's gate prefix ("weight", "bias", "fc1.weight", ...); model names the caller in errors.
template <class GateTensor>
qtx::nn::attention_options attention_options_for(const attention_variant& v, qtx::index_t heads, qtx::index_t hidden,
                                                 bool causal, const char* model, GateTensor&& gate_tensor) {
  qtx::nn::attention_options o{heads, v.gamma, v.zeta, causal, {}};
  if (v.gate == "none") return o;
  qtx::gate_weights g;
  g.n_heads = heads;
  g.d_head = hidden / heads;
  auto vec = [&](const std::string& n) {
    const std::span<const float> s = gate_tensor(n);
    return std::vector<float>(s.begin(), s.end());
  };
  if (v.gate == "linear_per_head") {
    g.kind = qtx::gate_kind::linear_per_head;
    g.w1 = vec("weight");
    g.b1 = vec("bias");
  } else if (v.gate == "mlp_per_head") {  // per head: d_head → hidden (ReLU) → 1
    g.kind = qtx::gate_kind::mlp_per_head;
    g.hidden = v.gate_hidden > 0 ? v.gate_hidden : std::max<qtx::index_t>(1, g.d_head / 4);
    g.w1 = vec("fc1.weight");  // (heads, hidden, d_head)
    g.b1 = vec("fc1.bias");    // (heads, hidden)
    g.w2 = vec("fc2.weight");  // (heads, hidden)
    g.b2 = vec("fc2.bias");    // (heads)
  } else if (v.gate == "unconditional") {
    g.kind = qtx::gate_kind::unconditional;
    g.b1 = vec("bias");
  } else {
    qtx::check(false, model, ": unsupported qtx_gate '", v.gate, "'");
  }
  o.gate = std::move(g);
  return o;
}

}  // namespace demo

// Attention: the head gates (all four kinds of gated attention) and the fused multi-head
// attention, float and W8A8.
#include "intrinsics_first.hpp"

#include <pybind11/stl.h>

#include <qtx/ops/attention.hpp>
#include <qtx/ops/gate.hpp>

#include <cmath>
#include <optional>
#include <string>
#include <vector>

#include "common.hpp"

namespace qtx::python {
namespace {

using namespace pybind11::literals;

gate_kind gate_kind_of(const std::string& name) {
  for (gate_kind k : {gate_kind::linear_per_head, gate_kind::mlp_per_head, gate_kind::all_heads_linear,
                      gate_kind::unconditional})
    if (name == to_string(k)) return k;
  throw py::value_error("GateWeights: kind must be 'linear_per_head', 'mlp_per_head', 'all_heads_linear' or "
                        "'unconditional', got '" + name + "'");
}

// A float32 array of any shape, flattened (C order) into a vector the gate owns.
std::vector<float> gate_values(py::handle obj, const char* name) {
  if (obj.is_none()) return {};
  py::array a = to_array(obj, "GateWeights", name, false);
  check_dtype<float>(a, "GateWeights", name);
  const auto flat = py::array_t<float, py::array::c_style | py::array::forcecast>::ensure(a);
  return std::vector<float>(flat.data(), flat.data() + flat.size());
}

py::array_t<float> as_numpy(const std::vector<float>& v) { return py::array_t<float>(py::ssize_t(v.size()), v.data()); }

py::object attention_gate(const gate_weights& g, py::handle x_obj, py::handle out) {
  constexpr const char* fn = "attention_gate";
  const auto x = as_matrix<const float>(x_obj, fn, "x");
  auto pi = output_matrix<float>(out, x.view.rows, g.n_heads, false, fn, "out");
  run_kernel([&] { ops::attention_gate(arch{}, g, x.view, pi.view); });
  return pi.array;
}

py::object attention(py::handle q_obj, py::handle k_obj, py::handle v_obj, py::handle out, index_t n_heads,
                     std::optional<float> scale, float gamma, float zeta, bool causal, index_t causal_offset,
                     py::handle key_mask_obj, py::handle gate_obj, std::optional<quant_params> q_params,
                     std::optional<quant_params> k_params, std::optional<quant_params> v_params,
                     std::optional<quant_params> out_params, py::handle dtype) {
  constexpr const char* fn = "attention";
  check(n_heads > 0, fn, ": n_heads (", n_heads, ") must be positive");
  const py::array q_array = to_array(q_obj, fn, "q", false);
  matrix_arg<const float> key_mask, gate;
  if (!key_mask_obj.is_none()) key_mask = as_matrix<const float>(key_mask_obj, fn, "key_mask");
  if (!gate_obj.is_none()) gate = as_matrix<const float>(gate_obj, fn, "gate");
  const bool quantized = py::array_t<uint8_t>::check_(q_array);
  auto params = [&](index_t d_model) {
    cpu::attention_params p;
    p.n_heads = n_heads;
    p.scale = scale ? *scale : 1.0f / std::sqrt(float(d_model / n_heads));
    p.gamma = gamma;
    p.zeta = zeta;
    p.causal = causal;
    p.causal_offset = causal_offset;
    return p;
  };
  if (!quantized) {
    const auto q = as_matrix<const float>(q_array, fn, "q (float32, or uint8 for W8A8)");
    const auto k = as_matrix<const float>(k_obj, fn, "k");
    const auto v = as_matrix<const float>(v_obj, fn, "v");
    check(!q_params && !k_params && !v_params && !out_params, fn,
          ": quantization parameters are for uint8 q, k, v (W8A8); these are float32");
    check(output_element(out, dtype, element::f32, fn) == element::f32, fn, ": float attention writes float32");
    auto o = output_matrix<float>(out, q.view.rows, q.view.cols, false, fn);
    const auto p = params(q.view.cols);
    run_kernel([&] { ops::attention(arch{}, q.view, k.view, v.view, o.view, p, key_mask.view, gate.view); });
    return o.array;
  }
  const auto q = as_matrix<const uint8_t>(q_array, fn, "q");
  const auto k = as_matrix<const uint8_t>(k_obj, fn, "k");
  const auto v = as_matrix<const uint8_t>(v_obj, fn, "v");
  check(q_params && k_params && v_params, fn, ": uint8 q, k, v need q_params, k_params and v_params");
  const cpu::attention_quant quant{*q_params, *k_params, *v_params, out_params.value_or(quant_params{})};
  const auto p = params(q.view.cols);
  const element e = output_element(out, dtype, out_params ? element::u8 : element::f32, fn);
  if (e == element::u8) {
    check(out_params.has_value(), fn, ": a uint8 output needs out_params");
    auto o = output_matrix<uint8_t>(out, q.view.rows, q.view.cols, false, fn);
    run_kernel([&] { ops::attention(arch{}, q.view, k.view, v.view, o.view, p, quant, key_mask.view, gate.view); });
    return o.array;
  }
  if (e != element::f32)
    throw py::type_error(std::string(fn) + ": W8A8 attention writes uint8 or float32, got " + element_name(e));
  auto o = output_matrix<float>(out, q.view.rows, q.view.cols, false, fn);
  run_kernel([&] { ops::attention(arch{}, q.view, k.view, v.view, o.view, p, quant, key_mask.view, gate.view); });
  return o.array;
}

}  // namespace

void bind_attention(py::module_& m) {
  py::class_<gate_weights>(m, "GateWeights", R"doc(Weights of every head's attention gate (gated attention).

pi(t, h) = sigmoid(G_h(x(t, h))), the head output scaled by pi. Kinds and their arrays (float32):
  linear_per_head   w1 (n_heads, d_head), b1 (n_heads)
  mlp_per_head      w1 (n_heads, hidden, d_head), b1 (n_heads, hidden), w2 (n_heads, hidden), b2 (n_heads)
  all_heads_linear  w1 (n_heads, n_heads * d_head), b1 (n_heads)
  unconditional     b1 (n_heads)
The arrays are copied into the gate.)doc")
      .def(py::init([](const std::string& kind, index_t n_heads, index_t d_head, py::handle w1, py::handle b1,
                       py::handle w2, py::handle b2, index_t hidden) {
             gate_weights g{gate_kind_of(kind), n_heads, d_head, hidden, gate_values(w1, "w1"), gate_values(b1, "b1"),
                            gate_values(w2, "w2"), gate_values(b2, "b2")};
             check_gate_weights("GateWeights", g);
             return g;
           }),
           "kind"_a, "n_heads"_a, "d_head"_a, "w1"_a = py::none(), "b1"_a = py::none(), "w2"_a = py::none(),
           "b2"_a = py::none(), "hidden"_a = 0)
      .def_static("from_pi_init", [](const std::string& kind, index_t n_heads, index_t d_head, float pi_init,
                                     index_t hidden) {
                    return gate_weights::from_pi_init(gate_kind_of(kind), n_heads, d_head, pi_init, hidden);
                  },
                  "kind"_a, "n_heads"_a, "d_head"_a, "pi_init"_a, "hidden"_a = 0,
                  "The gate at initialisation: zero weights, output bias logit(pi_init), so pi = pi_init everywhere.")
      .def_property_readonly("kind", [](const gate_weights& g) { return to_string(g.kind); }, "The gate kind.")
      .def_readonly("n_heads", &gate_weights::n_heads, "Number of heads.")
      .def_readonly("d_head", &gate_weights::d_head, "Width of one head.")
      .def_readonly("hidden", &gate_weights::hidden, "Hidden size (mlp_per_head only, else 0).")
      .def_property_readonly("d_model", &gate_weights::d_model, "n_heads * d_head.")
      .def_property_readonly("w1", [](const gate_weights& g) { return as_numpy(g.w1); }, "w1, flattened (a copy).")
      .def_property_readonly("b1", [](const gate_weights& g) { return as_numpy(g.b1); }, "b1, flattened (a copy).")
      .def_property_readonly("w2", [](const gate_weights& g) { return as_numpy(g.w2); }, "w2, flattened (a copy).")
      .def_property_readonly("b2", [](const gate_weights& g) { return as_numpy(g.b2); }, "b2, flattened (a copy).")
      .def("__repr__", [](const gate_weights& g) {
        return "GateWeights(kind='" + std::string(to_string(g.kind)) + "', n_heads=" + std::to_string(g.n_heads) +
               ", d_head=" + std::to_string(g.d_head) + ")";
      });
  m.def("attention_gate", &attention_gate, "gate"_a, "x"_a, "out"_a = py::none(),
        "Gate probabilities pi (T, n_heads) of the float32 hidden states x (T, n_heads * d_head). Returns out.");
  m.def("attention", &attention, "q"_a, "k"_a, "v"_a, "out"_a = py::none(), py::kw_only(), "n_heads"_a,
        "scale"_a = py::none(), "gamma"_a = 0.0f, "zeta"_a = 1.0f, "causal"_a = false, "causal_offset"_a = 0,
        "key_mask"_a = py::none(), "gate"_a = py::none(), "q_params"_a = py::none(), "k_params"_a = py::none(),
        "v_params"_a = py::none(), "out_params"_a = py::none(), "dtype"_a = py::none(),
        R"doc(Fused multi-head attention: out_h = gate_h * (clip((zeta - gamma) * softmax(scale * Q_h K_h^T + mask) + gamma, 0, 1) V_h).

q (Tq, D), k and v (Tk, D) hold all heads side by side (head h = columns h*d .. (h+1)*d), rows
contiguous. scale defaults to 1/sqrt(D / n_heads). key_mask: float32 (Tk) or (1, Tk), added to the
scores. gate: float32 (Tq, n_heads) probabilities (attention_gate). causal: query i sees keys
j <= i + causal_offset. float32 q, k, v give float32; uint8 q, k, v (W8A8, with q_params, k_params,
v_params) run both products in int8 and give uint8 (out_params) or float32. Returns out.)doc");
}

}  // namespace qtx::python

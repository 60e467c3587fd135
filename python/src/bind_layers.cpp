// The library's encoder layers (qtx::nn): the float layer, its calibration and the W8A8 layer made
// from both. A Python layer owns its weight arrays (the float layer keeps views of them, which the
// W8A8 layer reads when it is made); forward calls run in a per-thread workspace (thread_workspace).
#include "intrinsics_first.hpp"

#include <pybind11/stl.h>

#include <qtx/nn/encoder_layer.hpp>

#include <algorithm>
#include <array>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common.hpp"

namespace qtx::python {
namespace {

using namespace pybind11::literals;

// The names a weights mapping may hold, in the order messages list them; the biases are optional.
struct weight_name {
  const char* name;
  bool optional;
};
constexpr weight_name weight_names[] = {
    {"wq", false},  {"bq", true},  {"wk", false},  {"bk", true},  {"wv", false},
    {"bv", true},   {"wo", false}, {"bo", true},   {"attention_ln_gamma", false},
    {"attention_ln_beta", false},  {"ffn_ln_gamma", false},       {"ffn_ln_beta", false},
    {"fc1", false}, {"b1", true},  {"fc2", false}, {"b2", true}};

// The weight arrays of one layer, checked (float32, C-contiguous, 2-D matrices and 1-D vectors) and
// kept alive for as long as the layer's views point into them.
struct layer_arrays {
  std::map<std::string, py::array> arrays;

  explicit layer_arrays(const py::dict& weights) {
    constexpr const char* fn = "EncoderLayer";
    for (const auto& [key, value] : weights) {
      const std::string name = py::str(key);
      if (std::none_of(std::begin(weight_names), std::end(weight_names),
                       [&](const weight_name& w) { return name == w.name; })) {
        std::string known;
        for (const auto& w : weight_names) known += std::string(known.empty() ? "" : ", ") + w.name;
        check(false, fn, ": unknown weight '", name, "' (", known, ")");
      }
      py::array a = to_array(value, fn, name.c_str(), false);
      check_dtype<float>(a, fn, name.c_str());
      check(a.flags() & py::array::c_style, fn, ": weight '", name, "' must be C-contiguous (numpy.ascontiguousarray)");
      arrays.emplace(name, std::move(a));
    }
    for (const auto& w : weight_names)
      check(w.optional || arrays.count(w.name) == 1, fn, ": weight '", w.name, "' is missing");
  }

  matrix_view<const float> matrix(const std::string& name) const {
    const py::array& a = arrays.at(name);
    check(a.ndim() == 2, "EncoderLayer: weight '", name, "' must be 2-D, got ", a.ndim(), "-D");
    return make_view(static_cast<const float*>(a.data()), index_t(a.shape(0)), index_t(a.shape(1)));
  }
  std::span<const float> vector(const std::string& name) const {
    const auto it = arrays.find(name);
    if (it == arrays.end()) return {};
    check(it->second.ndim() == 1, "EncoderLayer: weight '", name, "' must be 1-D, got ", it->second.ndim(), "-D");
    return {static_cast<const float*>(it->second.data()), std::size_t(it->second.shape(0))};
  }

  nn::encoder_layer_weights views() const {
    return {{matrix("wq"), matrix("wk"), matrix("wv"), matrix("wo"), vector("bq"), vector("bk"), vector("bv"),
             vector("bo")},
            {vector("attention_ln_gamma"), vector("attention_ln_beta")},
            {vector("ffn_ln_gamma"), vector("ffn_ln_beta")},
            {matrix("fc1"), vector("b1"), matrix("fc2"), vector("b2")}};
  }
};

template <class E>
E enum_of(const std::string& value, std::initializer_list<std::pair<const char*, E>> choices, const char* fn,
          const char* name) {
  std::string names;
  for (const auto& [text, e] : choices) {
    if (value == text) return e;
    names += names.empty() ? std::string("'") + text + "'" : std::string(", '") + text + "'";
  }
  throw py::value_error(std::string(fn) + ": " + name + " must be one of " + names + ", got '" + value + "'");
}

nn::layer_point point_of(const std::string& name, const char* fn) {
  for (int p = 0; p < nn::layer_points; ++p)
    if (name == nn::layer_point_name(nn::layer_point(p))) return nn::layer_point(p);
  std::string names;
  for (int p = 0; p < nn::layer_points; ++p)
    names += std::string(p ? ", " : "") + nn::layer_point_name(nn::layer_point(p));
  throw py::value_error(std::string(fn) + ": unknown point '" + name + "' (" + names + ")");
}

// The names are the library's (to_string): "static", "dynamic-tensor", "dynamic-token".
activation_scaling scaling_of(const std::string& s, const char* fn, const char* name) {
  using a = activation_scaling;
  return enum_of<a>(s,
                    {{to_string(a::static_tensor), a::static_tensor},
                     {to_string(a::dynamic_tensor), a::dynamic_tensor},
                     {to_string(a::dynamic_token), a::dynamic_token}},
                    fn, name);
}

// The lengths of the sequences packed along x's rows (None: x is one sequence).
std::vector<index_t> lengths_of(const std::optional<std::vector<index_t>>& lengths) {
  return lengths ? *lengths : std::vector<index_t>{};
}

// x as the layer's in-place input: float32, C-contiguous rows (T, d_model), checked here so that
// the messages name the Python method (the layers' own checks name the C++ one).
matrix_arg<float> layer_input(py::handle x, index_t d_model, const std::vector<index_t>& lengths, const char* fn) {
  auto a = as_matrix<float>(x, fn, "x");
  check(a.array.ndim() == 2, fn, ": x must be 2-D (tokens, d_model), got ", a.array.ndim(), "-D");
  check(a.view.cols == d_model, fn, ": x has ", a.view.cols, " columns, the layer's d_model is ", d_model);
  check(a.view.col_stride == 1 && a.view.row_stride == a.view.cols, fn,
        ": x must be C-contiguous (numpy.ascontiguousarray)");
  check(!lengths.empty() || a.view.rows > 0, fn, ": x has no rows");
  nn::packed_sequences{lengths}.check(fn, a.view.rows);
  return a;
}

struct py_encoder_layer {
  layer_arrays weights;
  nn::encoder_layer<arch> layer;
};

struct py_quantized_layer {
  nn::quantized_encoder_layer<arch> layer;
};

// The workspace of a forward call: one per calling thread and layer shape, shared by every layer
// of that shape (a model's layers then work in the same memory, which stays in cache from one layer
// to the next, as in a C++ model's single workspace), grown when a call needs more tokens. The
// thread's own: Python threads calling layers at once (the GIL is released) never share one.
template <class Layer>
auto& thread_workspace(const Layer& layer, index_t tokens) {
  using workspace = decltype(layer.make_workspace(0));
  thread_local std::map<std::array<index_t, 3>, workspace> workspaces;
  const std::array<index_t, 3> shape{layer.d_model(), layer.ffn_dim(), layer.n_heads()};
  auto it = workspaces.find(shape);
  if (it == workspaces.end() || it->second.max_tokens() < tokens)
    it = workspaces.insert_or_assign(shape, layer.make_workspace(tokens)).first;
  return it->second;
}

std::unique_ptr<py_encoder_layer> make_layer(const py::dict& weights, index_t n_heads, const std::string& norm,
                                             const std::string& activation_name, float ln_eps, float gamma, float zeta,
                                             bool causal, std::optional<gate_weights> gate) {
  constexpr const char* fn = "EncoderLayer";
  nn::encoder_layer_options o;
  o.norm = enum_of<nn::norm_placement>(
      norm, {{"post_ln", nn::norm_placement::post_ln}, {"pre_ln", nn::norm_placement::pre_ln}}, fn, "norm");
  o.ffn_activation = enum_of<nn::activation>(activation_name,
                                             {{"gelu_erf", nn::activation::gelu_erf},
                                              {"gelu_tanh", nn::activation::gelu_tanh},
                                              {"relu", nn::activation::relu},
                                              {"none", nn::activation::none}},
                                             fn, "activation");
  o.ln_eps = ln_eps;
  o.attention = {n_heads, gamma, zeta, causal, std::move(gate)};
  auto l = std::make_unique<py_encoder_layer>(py_encoder_layer{layer_arrays(weights), {}});
  l->layer = nn::encoder_layer<arch>(l->weights.views(), o);
  return l;
}

py::object forward_fp32(const py_encoder_layer& l, py::handle x_obj, const std::optional<std::vector<index_t>>& lengths,
                        nn::layer_calibrator* calibrator) {
  constexpr const char* fn = "EncoderLayer.forward";
  const std::vector<index_t> len = lengths_of(lengths);
  auto x = layer_input(x_obj, l.layer.d_model(), len, fn);
  run_kernel([&] {
    auto& ws = thread_workspace(l.layer, x.view.rows);
    l.layer.forward(x.view, nn::packed_sequences{len}, ws, calibrator);
  });
  return x.array;
}

py::object forward_w8a8(const py_quantized_layer& l, py::handle x_obj, py::handle x_q_obj,
                        const std::optional<std::vector<index_t>>& lengths) {
  constexpr const char* fn = "QuantizedEncoderLayer.forward";
  const std::vector<index_t> len = lengths_of(lengths);
  auto x = layer_input(x_obj, l.layer.d_model(), len, fn);
  matrix_arg<uint8_t> x_q;
  if (!x_q_obj.is_none()) x_q = as_matrix<uint8_t>(x_q_obj, fn, "x_q");
  run_kernel([&] {
    auto& ws = thread_workspace(l.layer, x.view.rows);
    if (x_q.view.data)
      l.layer.forward(x.view, x_q.view, nn::packed_sequences{len}, ws);
    else
      l.layer.forward(x.view, nn::packed_sequences{len}, ws);
  });
  return x.array;
}

std::unique_ptr<py_quantized_layer> make_quantized(const py_encoder_layer& fp32, const nn::layer_calibration& cal,
                                                   bool per_channel, bool round_residuals, int weight_bits,
                                                   const std::string& activations,
                                                   std::optional<float> smoothing_alpha, bool per_head_context) {
  constexpr const char* fn = "QuantizedEncoderLayer";
  nn::quantized_layer_options o;
  o.per_channel = per_channel;
  o.round_residuals = round_residuals;
  o.weight_bits = weight_bits;
  o.set_activations(scaling_of(activations, fn, "activations"));
  o.smoothing_alpha = smoothing_alpha;
  o.per_head_context = per_head_context;
  return std::make_unique<py_quantized_layer>(py_quantized_layer{nn::quantized_encoder_layer<arch>(fp32.layer, cal, o)});
}

struct py_qlinear {
  nn::qlinear<arch> layer;
};

std::unique_ptr<py_qlinear> make_qlinear(py::handle weight, py::handle bias, const quant_params& input,
                                         bool per_channel, int weight_bits) {
  constexpr const char* fn = "QLinear";
  const auto w = as_matrix<const float>(weight, fn, "weight");
  check(w.array.ndim() == 2, fn, ": weight must be 2-D (out_features, in_features), got ", w.array.ndim(), "-D");
  std::vector<float> b;
  if (!bias.is_none()) {
    const auto v = as_vector<float>(bias, fn, "bias");
    b.assign(v.data, v.data + v.size);
  }
  return std::make_unique<py_qlinear>(py_qlinear{nn::qlinear<arch>(w.view, b, input, per_channel, weight_bits)});
}

py::array qlinear_forward(const py_qlinear& l, py::handle x_q) {
  constexpr const char* fn = "QLinear.forward";
  const auto x = as_matrix<const uint8_t>(x_q, fn, "x_q");
  check(x.array.ndim() == 2, fn, ": x_q must be 2-D (rows, in_features), got ", x.array.ndim(), "-D");
  check(x.view.cols == l.layer.in_features(), fn, ": x_q has ", x.view.cols, " columns, the layer's in_features is ",
        l.layer.in_features());
  auto y = output_matrix<float>(py::none(), x.view.rows, l.layer.out_features(), false, fn);
  run_kernel([&] { l.layer.forward(x.view, y.view); });
  return y.array;
}

}  // namespace

void bind_layers(py::module_& m) {
  py::class_<py_qlinear>(m, "QLinear",
                         R"doc(A W8A8 linear layer: y = dequant(x_q · W_qᵀ + b_q), float output.

weight (out_features, in_features) float32 is quantized to int8 at construction (symmetric, per output
channel unless per_channel=False, on weight_bits bits); bias (out_features) float32 or None is folded
into int32 accumulator units; input: the uint8 parameters x_q is quantized with.)doc")
      .def(py::init(&make_qlinear), "weight"_a, "bias"_a, "input"_a, py::kw_only(), "per_channel"_a = true,
           "weight_bits"_a = 8)
      .def_property_readonly(
          "in_features", [](const py_qlinear& l) { return l.layer.in_features(); }, "Columns of x_q.")
      .def_property_readonly(
          "out_features", [](const py_qlinear& l) { return l.layer.out_features(); }, "Columns of the output.")
      .def_property_readonly(
          "input_params", [](const py_qlinear& l) { return l.layer.input_params(); }, "The input's uint8 parameters.")
      .def("forward", &qlinear_forward, "x_q"_a,
           "y (rows, out_features) float32 = dequant(x_q · W_qᵀ + b_q); x_q uint8 (rows, in_features).");

  py::class_<nn::layer_calibration>(
      m, "LayerCalibration", "uint8 parameters of an encoder layer's quantization points (LayerCalibrator.result()).")
      .def(py::init<>(), "An empty calibration (set each point's parameters with cal[point] = QuantParams(...)).")
      .def(
          "__getitem__",
          [](const nn::layer_calibration& c, const std::string& point) {
            return c.points[std::size_t(point_of(point, "LayerCalibration"))];
          },
          "point"_a, "The QuantParams of the point (a name of LayerCalibration.point_names()), or None.")
      .def(
          "__setitem__",
          [](nn::layer_calibration& c, const std::string& point, const quant_params& p) {
            c.set(point_of(point, "LayerCalibration"), p);
          },
          "point"_a, "params"_a, "Sets the point's parameters.")
      .def_static(
          "point_names",
          [] {
            std::vector<std::string> names;
            for (int p = 0; p < nn::layer_points; ++p) names.emplace_back(nn::layer_point_name(nn::layer_point(p)));
            return names;
          },
          "The layer's quantization points in forward order.");

  py::class_<nn::layer_calibrator>(
      m, "LayerCalibrator",
      R"doc(Records the range of every quantization point of an EncoderLayer's forward passes.

Pass it as EncoderLayer.forward(x, calibrator=cal) for each calibration batch, then
QuantizedEncoderLayer(layer, cal.result()). Each point uses the paper's running min-max unless
use() chose another estimator before the first batch. Not for concurrent use by several threads.)doc")
      .def(py::init<>())
      .def(
          "use",
          [](nn::layer_calibrator& c, const std::string& estimator, std::optional<std::string> point) {
            const auto e = enum_of<nn::range_estimator>(estimator,
                                                        {{"running_minmax", nn::range_estimator::running_minmax},
                                                         {"minmax", nn::range_estimator::minmax},
                                                         {"percentile", nn::range_estimator::percentile},
                                                         {"mse", nn::range_estimator::mse}},
                                                        "LayerCalibrator.use", "estimator");
            if (point)
              c.use(point_of(*point, "LayerCalibrator.use"), e);
            else
              c.use(e);
          },
          "estimator"_a, "point"_a = py::none(),
          "Range estimator ('running_minmax', 'minmax', 'percentile', 'mse') for one point, or every point.")
      .def("result", &nn::layer_calibrator::result, "The parameters of every point observed so far.");

  py::class_<py_encoder_layer>(
      m, "EncoderLayer",
      R"doc(A float transformer encoder layer: attention (optionally clipped softmax and gated) + FFN, post-LN (BERT) or pre-LN (OPT, ViT).

weights: a mapping of float32 C-contiguous arrays: wq, wk, wv, wo (d_model, d_model), bq, bk, bv,
bo (d_model), attention_ln_gamma/beta, ffn_ln_gamma/beta (d_model), fc1 (ffn_dim, d_model), b1
(ffn_dim), fc2 (d_model, ffn_dim), b2 (d_model); biases may be left out. The weights are packed
at construction; the arrays are kept (a QuantizedEncoderLayer made later reads them).
norm: 'post_ln' or 'pre_ln'; activation after FC1: 'gelu_erf', 'gelu_tanh', 'relu' or 'none';
gamma, zeta: the clipped softmax; gate: GateWeights (gated attention) or None.)doc")
      .def(py::init(&make_layer), "weights"_a, py::kw_only(), "n_heads"_a, "norm"_a = "post_ln",
           "activation"_a = "gelu_erf", "ln_eps"_a = 1e-12f, "gamma"_a = 0.0f, "zeta"_a = 1.0f, "causal"_a = false,
           "gate"_a = py::none())
      .def_property_readonly(
          "d_model", [](const py_encoder_layer& l) { return l.layer.d_model(); }, "Width of the hidden states.")
      .def_property_readonly(
          "ffn_dim", [](const py_encoder_layer& l) { return l.layer.ffn_dim(); },
          "Width of the FFN's hidden activation.")
      .def("forward", &forward_fp32, "x"_a, py::kw_only(), "lengths"_a = py::none(), "calibrator"_a = py::none(),
           R"doc(x (T, d_model) float32, C-contiguous <- the layer's output, in place. Returns x.

lengths: x packs several sequences along its rows (each attends to its own rows only).
calibrator: a LayerCalibrator that records every quantization point.)doc");

  py::class_<py_quantized_layer>(m, "QuantizedEncoderLayer",
                                 R"doc(The W8A8 form of an EncoderLayer (int8 GEMMs, uint8 activations, int8 attention).

Made from the float layer and its LayerCalibration. per_channel: int8 weight scales per output
channel. round_residuals: residual sums on their uint8 grid (the paper's W8A8); False keeps the
residual stream float. weight_bits: 2..8 (7 runs the AVX2 backend's faster exact kernel).
activations: how the GEMM inputs are quantized: 'static' (calibrated ranges), 'dynamic-tensor'
or 'dynamic-token' (per call). smoothing_alpha: SmoothQuant-style migration strength in [0, 1]
(needs round_residuals=False). per_head_context: a static context (W_O's input) quantized per head,
each head on its own calibrated grid (for gated models whose gates scale heads down).)doc")
      .def(py::init(&make_quantized), "layer"_a, "calibration"_a, py::kw_only(), "per_channel"_a = true,
           "round_residuals"_a = true, "weight_bits"_a = 8, "activations"_a = "static",
           "smoothing_alpha"_a = py::none(), "per_head_context"_a = false, py::keep_alive<1, 2>())
      .def_property_readonly(
          "d_model", [](const py_quantized_layer& l) { return l.layer.d_model(); }, "Width of the hidden states.")
      .def_property_readonly(
          "input_params", [](const py_quantized_layer& l) { return l.layer.input_params(); },
          "Post-LN: the uint8 parameters of x_q, the layer's input.")
      .def_property_readonly(
          "output_params", [](const py_quantized_layer& l) { return l.layer.output_params(); },
          "Post-LN: the uint8 parameters of x_q after forward (LN2's output).")
      .def_property(
          "round_residuals", [](const py_quantized_layer& l) { return l.layer.residual_rounding(); },
          [](py_quantized_layer& l, bool on) { l.layer.set_residual_rounding(on); },
          "Whether the residual sums are rounded to their uint8 grid.")
      .def("forward", &forward_w8a8, "x"_a, "x_q"_a = py::none(), py::kw_only(), "lengths"_a = py::none(),
           R"doc(x (T, d_model) float32, C-contiguous <- the layer's output, in place. Returns x.

x_q (post-LN, static input): x quantized with input_params, uint8 (T, d_model); replaced by the
output on output_params, so consecutive layers pass the uint8 stream along (x then holds its
dequantized value). lengths: x packs several sequences along its rows.)doc");
}

}  // namespace qtx::python

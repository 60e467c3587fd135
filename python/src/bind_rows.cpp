// Row operations: (clipped) softmax, layer norm (+ residual, + quantize), GELU, and quantize /
// dequantize / requantize, with the quantization parameters they take.
#include "intrinsics_first.hpp"

#include <pybind11/stl.h>

#include <qtx/cpu/attention/common.hpp>
#include <qtx/ops/elementwise.hpp>
#include <qtx/ops/layernorm.hpp>
#include <qtx/ops/softmax.hpp>
#include <qtx/quant/dynamic.hpp>
#include <qtx/quant/params.hpp>
#include <qtx/quant/quantize.hpp>

#include <optional>

#include "common.hpp"

namespace qtx::python {
namespace {

using namespace pybind11::literals;

template <class T>
struct tag {
  using type = T;
};

// Calls f(tag<T>{}) for the output element e, which must be float32, uint8 or int8.
template <class F>
void with_row_output(element e, const char* fn, F&& f) {
  switch (e) {
    case element::f32: return f(tag<float>{});
    case element::u8: return f(tag<uint8_t>{});
    case element::s8: return f(tag<int8_t>{});
    default: throw py::type_error(std::string(fn) + ": out must be float32, uint8 or int8, got int32");
  }
}

// The parameters of an 8-bit output: given, or for uint8 the probability grid (1/255, 0) where
// `probability_default` (softmax), else required.
template <class Out>
quant_params output_params(const std::optional<quant_params>& given, bool probability_default, const char* fn) {
  if (given) return *given;
  if constexpr (!std::is_same_v<Out, float>) {
    check(probability_default && std::is_same_v<Out, uint8_t>, fn, ": out_params is required for a ",
          dtype_name<Out>(), " output");
    return cpu::probability_params;
  }
  return {};
}

py::object softmax(py::handle x_obj, py::handle out, float input_scale, float gamma, float zeta, bool causal,
                   index_t causal_offset, py::handle mask_obj, std::optional<quant_params> out_params,
                   py::handle dtype) {
  constexpr const char* fn = "softmax";
  const py::array x_array = to_array(x_obj, fn, "x", false);
  const bool is_int = py::array_t<int32_t>::check_(x_array);
  const softmax_params p{input_scale, gamma, zeta, causal, causal_offset};
  matrix_arg<const float> mask;
  if (!mask_obj.is_none()) mask = as_matrix<const float>(mask_obj, fn, "mask");
  py::object result;
  auto run = [&](auto in_tag, auto out_tag) {
    using In = typename decltype(in_tag)::type;
    using Out = typename decltype(out_tag)::type;
    const auto x = as_matrix<const In>(x_array, fn, "x");
    auto y = output_matrix<Out>(out, x.view.rows, x.view.cols, x_array.ndim() == 1, fn);
    const quant_params yp = output_params<Out>(out_params, true, fn);
    run_kernel([&] { ops::softmax(arch{}, x.view, y.view, p, mask.view, yp); });
    result = y.array;
  };
  with_row_output(output_element(out, dtype, element::f32, fn), fn, [&](auto out_tag) {
    if (is_int)
      run(tag<int32_t>{}, out_tag);
    else
      run(tag<float>{}, out_tag);
  });
  return result;
}

py::object layer_norm(py::handle x_obj, py::handle weight_obj, py::handle bias_obj, py::handle out, float eps,
                      py::handle residual_obj, py::handle sum_out_obj, std::optional<quant_params> out_params,
                      py::handle dtype) {
  const bool fused = !residual_obj.is_none();
  const char* fn = fused ? "add_layer_norm" : "layer_norm";
  const auto x = as_matrix<const float>(x_obj, fn, "x");
  const auto weight = as_vector<float>(weight_obj, fn, "weight");
  const auto bias = as_vector<float>(bias_obj, fn, "bias");
  const std::span<const float> w(weight.data, std::size_t(weight.size)), b(bias.data, std::size_t(bias.size));
  matrix_arg<const float> residual;
  matrix_arg<float> sum_out;
  if (fused) residual = as_matrix<const float>(residual_obj, fn, "residual");
  if (!sum_out_obj.is_none()) {
    check(fused, fn, ": sum_out needs a residual (add_layer_norm)");
    sum_out = as_matrix<float>(sum_out_obj, fn, "sum_out");
  }
  py::object result;
  with_row_output(output_element(out, dtype, element::f32, fn), fn, [&](auto out_tag) {
    using Out = typename decltype(out_tag)::type;
    auto y = output_matrix<Out>(out, x.view.rows, x.view.cols, x.array.ndim() == 1, fn);
    const quant_params yp = output_params<Out>(out_params, false, fn);
    run_kernel([&] {
      if (fused)
        ops::add_layer_norm(arch{}, x.view, residual.view, sum_out.view, w, b, y.view, eps, yp);
      else
        ops::layer_norm(arch{}, x.view, w, b, y.view, eps, yp);
    });
    result = y.array;
  });
  return result;
}

gelu_approximation gelu_form(const std::string& approximate, const char* fn) {
  if (approximate == "none") return gelu_approximation::none;
  if (approximate == "tanh") return gelu_approximation::tanh;
  throw py::value_error(std::string(fn) + ": approximate must be 'none' or 'tanh', got '" + approximate + "'");
}

py::object gelu(py::handle x_obj, py::handle out, const std::string& approximate) {
  constexpr const char* fn = "gelu";
  const gelu_approximation form = gelu_form(approximate, fn);
  const auto x = as_matrix<const float>(x_obj, fn, "x");
  auto y = output_matrix<float>(out, x.view.rows, x.view.cols, x.array.ndim() == 1, fn);
  run_kernel([&] { ops::gelu(arch{}, x.view, y.view, form); });
  return y.array;
}

// Calls f(tag<T>{}) for an 8-bit element type.
template <class F>
void with_8bit(element e, const char* fn, const char* name, F&& f) {
  if (e == element::u8) return f(tag<uint8_t>{});
  if (e == element::s8) return f(tag<int8_t>{});
  throw py::type_error(std::string(fn) + ": " + name + " must be uint8 or int8, got " + element_name(e));
}

py::object quantize(py::handle x_obj, quant_params params, py::handle out, py::handle dtype) {
  constexpr const char* fn = "quantize";
  const auto x = as_matrix<const float>(x_obj, fn, "x");
  py::object result;
  with_8bit(output_element(out, dtype, element::u8, fn), fn, "out", [&](auto t) {
    using T = typename decltype(t)::type;
    auto q = output_matrix<T>(out, x.view.rows, x.view.cols, x.array.ndim() == 1, fn);
    run_kernel([&] { ops::quantize(arch{}, x.view, q.view, params); });
    result = q.array;
  });
  return result;
}

// Per-token ("token") or per-tensor ("tensor") parameters computed from x itself.
py::tuple quantize_dynamic(py::handle x_obj, const std::string& granularity) {
  constexpr const char* fn = "quantize_dynamic";
  if (granularity != "token" && granularity != "tensor")
    throw py::value_error(std::string(fn) + ": granularity must be 'token' or 'tensor', got '" + granularity + "'");
  const auto scaling = granularity == "token" ? activation_scaling::dynamic_token : activation_scaling::dynamic_tensor;
  const auto x = as_matrix<const float>(x_obj, fn, "x");
  auto q = output_matrix<uint8_t>(py::none(), x.view.rows, x.view.cols, x.array.ndim() == 1, fn);
  py::array_t<float> scales(x.view.rows);
  py::array_t<int32_t> zero_points(x.view.rows);
  const std::span<float> s(scales.mutable_data(), std::size_t(x.view.rows));
  const std::span<int32_t> z(zero_points.mutable_data(), std::size_t(x.view.rows));
  run_kernel([&] { ops::quantize_dynamic(arch{}, x.view, q.view, s, z, scaling); });
  return py::make_tuple(q.array, scales, zero_points);
}

py::object dequantize(py::handle q_obj, quant_params params, py::handle out) {
  constexpr const char* fn = "dequantize";
  const py::array q_array = to_array(q_obj, fn, "q", false);
  py::object result;
  with_8bit(element_of_dtype(q_array.dtype(), fn, "q"), fn, "q", [&](auto t) {
    using T = typename decltype(t)::type;
    const auto q = as_matrix<const T>(q_array, fn, "q");
    auto x = output_matrix<float>(out, q.view.rows, q.view.cols, q_array.ndim() == 1, fn);
    run_kernel([&] { ops::dequantize(arch{}, q.view, x.view, params); });
    result = x.array;
  });
  return result;
}

// multiplier: a float, or a FixedPointMultiplier for the integer-only form.
template <class Multiplier>
py::object requantize(py::handle acc_obj, Multiplier multiplier, int32_t zero_point, py::handle out,
                      py::handle dtype) {
  constexpr const char* fn = "requantize";
  const auto acc = as_matrix<const int32_t>(acc_obj, fn, "acc");
  py::object result;
  with_8bit(output_element(out, dtype, element::u8, fn), fn, "out", [&](auto t) {
    using T = typename decltype(t)::type;
    auto q = output_matrix<T>(out, acc.view.rows, acc.view.cols, acc.array.ndim() == 1, fn);
    run_kernel([&] { ops::requantize(arch{}, acc.view, q.view, multiplier, zero_point); });
    result = q.array;
  });
  return result;
}

// The quantization parameters of dtype over [lo, hi] (asymmetric for uint8, symmetric for int8).
quant_params range_params_for(float lo, float hi, py::handle dtype) {
  const element e = element_of_dtype(dtype, "range_params", "dtype");
  if (e == element::u8) return asymmetric_params<uint8_t>(lo, hi);
  if (e == element::s8) return symmetric_params<int8_t>(std::max(std::abs(lo), std::abs(hi)));
  throw py::type_error(std::string("range_params: dtype must be uint8 or int8, got ") + element_name(e));
}

}  // namespace

void bind_rows(py::module_& m) {
  py::class_<quant_params>(m, "QuantParams", "Quantization parameters: real = scale * (q - zero_point).")
      .def(py::init<float, int32_t>(), "scale"_a = 1.0f, "zero_point"_a = 0)
      .def_readwrite("scale", &quant_params::scale, "Step between quantization levels (finite, > 0).")
      .def_readwrite("zero_point", &quant_params::zero_point, "The level that represents 0.0.")
      .def("__repr__",
           [](const quant_params& p) {
             return "QuantParams(scale=" + std::string(py::repr(py::float_(p.scale))) +
                    ", zero_point=" + std::to_string(p.zero_point) + ")";
           })
      .def("__eq__", [](const quant_params& a, const quant_params& b) {
        return a.scale == b.scale && a.zero_point == b.zero_point;
      });
  py::class_<fixed_point_multiplier>(m, "FixedPointMultiplier",
                                     "A multiplier m0 * 2**(shift - 31) for integer-only requantization.")
      .def_readonly("m0", &fixed_point_multiplier::m0, "Mantissa in [2**30, 2**31).")
      .def_readonly("shift", &fixed_point_multiplier::shift, "Exponent in [-31, 31].")
      .def("__repr__", [](const fixed_point_multiplier& f) {
        return "FixedPointMultiplier(m0=" + std::to_string(f.m0) + ", shift=" + std::to_string(f.shift) + ")";
      });
  m.def("to_fixed_point", &to_fixed_point, "multiplier"_a,
        "The fixed-point form (m0, shift) of a positive real multiplier, for requantize.");
  m.def("asymmetric_params", &asymmetric_params<uint8_t>, "lo"_a, "hi"_a,
        "uint8 parameters over [lo, hi] widened to contain 0 (the paper's activations).");
  m.def("symmetric_params", &symmetric_params<int8_t>, "absmax"_a,
        "int8 parameters with scale absmax / 127 and zero point 0 (the paper's weights).");
  m.def("range_params", &range_params_for, "lo"_a, "hi"_a, "dtype"_a = py::str("uint8"),
        "Parameters of dtype over [lo, hi]: asymmetric uint8 or symmetric int8.");
  m.def("gamma_for", &gamma_for, "alpha"_a, "T"_a, "The clipped softmax's gamma = -alpha / T.");
  m.attr("probability_params") = cpu::probability_params;

  m.def("softmax", &softmax, "x"_a, "out"_a = py::none(), py::kw_only(), "input_scale"_a = 1.0f, "gamma"_a = 0.0f,
        "zeta"_a = 1.0f, "causal"_a = false, "causal_offset"_a = 0, "mask"_a = py::none(),
        "out_params"_a = py::none(), "dtype"_a = py::none(),
        R"doc((Clipped) softmax over the rows of x: clip((zeta - gamma) * softmax(input_scale * x + mask) + gamma, 0, 1).

x: float32 or int32 scores, 1-D or 2-D. mask: float32, 1 x C or R x C, added after scaling.
causal: row i sees columns j <= i + causal_offset. out: float32 (default), or uint8/int8
quantized with out_params (uint8 defaults to probability_params, scale 1/255). out may be x
itself (float32 in place). Returns out.)doc");
  m.def("layer_norm", [](py::handle x, py::handle w, py::handle b, py::handle out, float eps,
                         std::optional<quant_params> out_params, py::handle dtype) {
          return layer_norm(x, w, b, out, eps, py::none(), py::none(), out_params, dtype);
        },
        "x"_a, "weight"_a, "bias"_a, "out"_a = py::none(), py::kw_only(), "eps"_a = layer_norm_default_eps,
        "out_params"_a = py::none(), "dtype"_a = py::none(),
        R"doc(Layer norm over the rows of x (population variance, as PyTorch): (x - mean) / sqrt(var + eps) * weight + bias.

x: float32 (R x C or C); weight, bias: C float32. out: float32 (default) or uint8/int8 quantized
with out_params (required then). Returns out.)doc");
  m.def("add_layer_norm", [](py::handle x, py::handle residual, py::handle w, py::handle b, py::handle out,
                             py::handle sum_out, float eps, std::optional<quant_params> out_params,
                             py::handle dtype) { return layer_norm(x, w, b, out, eps, residual, sum_out, out_params, dtype); },
        "x"_a, "residual"_a, "weight"_a, "bias"_a, "out"_a = py::none(), py::kw_only(), "sum_out"_a = py::none(),
        "eps"_a = layer_norm_default_eps, "out_params"_a = py::none(), "dtype"_a = py::none(),
        R"doc(Fused residual add and layer norm: s = x + residual (written to sum_out when given), out = layer_norm(s).

Arguments as layer_norm; sum_out: float32 like x. Returns out.)doc");
  m.def("gelu", &gelu, "x"_a, "out"_a = py::none(), py::kw_only(), "approximate"_a = "none",
        "GELU of float32 x: 'none' (erf, BERT) or 'tanh' (GPT-2/OPT). out may be x (in place). Returns out.");
  m.def("quantize", &quantize, "x"_a, "params"_a, "out"_a = py::none(), py::kw_only(), "dtype"_a = py::none(),
        "clamp(round_half_even(x / scale) + zero_point) of float32 x as uint8 (default) or int8; NaN -> zero_point. "
        "Returns out.");
  m.def("quantize_dynamic", &quantize_dynamic, "x"_a, "granularity"_a = "token",
        R"doc(uint8 quantization of float32 x with parameters from x itself: one (scale, zero point) per row
('token') or one for all rows ('tensor'), each over its finite values widened to include 0. NaN -> the
zero point, +-inf saturate. Returns (q uint8 like x, scales float32 (rows,), zero_points int32 (rows,));
row r is real = scales[r] * (q[r] - zero_points[r]).)doc");
  m.def("dequantize", &dequantize, "q"_a, "params"_a, "out"_a = py::none(),
        "scale * (q - zero_point) of uint8 / int8 q as float32. Returns out.");
  m.def("requantize", &requantize<float>, "acc"_a, "multiplier"_a, "zero_point"_a = 0, "out"_a = py::none(),
        py::kw_only(), "dtype"_a = py::none(),
        "clamp(round_half_even(float(acc) * multiplier) + zero_point) of int32 acc as uint8 (default) or int8. "
        "Returns out.");
  m.def("requantize", &requantize<fixed_point_multiplier>, "acc"_a, "multiplier"_a, "zero_point"_a = 0,
        "out"_a = py::none(), py::kw_only(), "dtype"_a = py::none(),
        "Integer-only form: clamp(round_half_even(acc * m0 * 2**(shift - 31)) + zero_point), exactly.");
}

}  // namespace qtx::python

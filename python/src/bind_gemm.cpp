// GEMM: PackedB (weights packed once), the epilogue stages (qtx.epilogue) and qtx.gemm, which
// parses a Python list of stages into the grammar of gemm.hpp and runs the matching pipeline.
#include "intrinsics_first.hpp"

#include <pybind11/stl.h>

#include <string>

#include "gemm.hpp"

namespace qtx::python {
namespace {

using namespace pybind11::literals;
using kind = stage_spec::kind;

const char* stage_name(kind k) {
  switch (k) {
    case kind::bias: return "bias";
    case kind::dequantize: return "dequantize";
    case kind::requantize: return "requantize";
    case kind::quantize: return "quantize";
    case kind::relu: return "relu";
    case kind::gelu_erf: return "gelu";
    case kind::gelu_tanh: return "gelu(approximate='tanh')";
    case kind::residual_add: return "residual_add";
    case kind::scale: return "scale";
    case kind::subtract_row_zero_point: return "subtract_row_zero_point";
    case kind::dequantize_rows: return "dequantize_rows";
  }
  return "?";
}

// Stage data: arrays as they are (zero-copy, dtype checked when used); Python numbers and lists
// become a new array of `dtype` (they have no memory to share).
py::object stage_data(py::handle data, const char* dtype) {
  if (py::isinstance<py::array>(data) || py::hasattr(data, "__dlpack__") || py::hasattr(data, "__array__"))
    return py::reinterpret_borrow<py::object>(data);
  return py::module_::import("numpy").attr("atleast_1d")(py::module_::import("numpy").attr("asarray")(data, dtype));
}

packed_weights pack(py::handle b_obj, int32_t zero_point, const char* fn) {
  const py::array b = to_array(b_obj, fn, "b", false);
  check(b.ndim() == 2, fn, ": b must be 2-D (K, N), got ", b.ndim(), "-D");
  const element e = element_of_dtype(b.dtype(), fn, "b");
  auto packed_from = [&](auto tag_value) {
    using T = decltype(tag_value);
    const auto view = as_matrix<const T>(b, fn, "b");
    py::gil_scoped_release no_gil;
    return ops::pack_b<arch>(view.view, zero_point);
  };
  switch (e) {
    case element::s8: return {packed_from(int8_t{}), e};
    case element::u8: return {packed_from(uint8_t{}), e};
    case element::f32: return {packed_from(float{}), e};
    default: throw py::type_error(std::string(fn) + ": b must be int8, uint8 or float32, got int32");
  }
}

// 1 value (per tensor) or n values (per output column), as n values.
std::vector<float> per_column(const py::object& data, index_t n, const char* what) {
  const auto v = as_vector<float>(data, "gemm", what);
  check(v.size == 1 || v.size == n, "gemm: ", what, " has ", v.size, " elements, expected 1 (per tensor) or ", n,
        " (one per column n of c)");
  return v.size == 1 ? std::vector<float>(std::size_t(n), v.data[0]) : std::vector<float>(v.data, v.data + v.size);
}

// The stages in the grammar of gemm.hpp; anything else is a ValueError naming the stage.
parsed_epilogue parse(const std::vector<stage_spec>& stages, bool integer, index_t n) {
  parsed_epilogue e;
  std::size_t i = 0;
  auto at = [&](kind k) { return i < stages.size() && stages[i].what == k; };
  auto activation_at = [&] {
    if (at(kind::relu)) e.act = activation::relu;
    else if (at(kind::gelu_erf)) e.act = activation::gelu_erf;
    else if (at(kind::gelu_tanh)) e.act = activation::gelu_tanh;
    else return;
    ++i;
  };
  auto residual_at = [&] {
    if (!at(kind::residual_add)) return;
    e.residual = as_matrix<const float>(stages[i++].data, "gemm", "residual");
  };
  if (integer) {
    if (at(kind::subtract_row_zero_point)) {
      e.row_zero_points = as_vector<int32_t>(stages[i].data, "gemm", "subtract_row_zero_point zero_points");
      e.column_sums = as_vector<int32_t>(stages[i++].data2, "gemm", "subtract_row_zero_point column_sums");
    }
    if (at(kind::bias)) e.bias_int = as_vector<int32_t>(stages[i++].data, "gemm", "bias values (int32 for uint8 a)");
    if (at(kind::dequantize) || at(kind::dequantize_rows)) {
      const stage_spec& s = stages[i++];
      if (s.what == kind::dequantize_rows) {
        e.row_scales = as_vector<float>(s.data, "gemm", "dequantize_rows row_scales");
        e.dequant_scales = per_column(s.data2, n, "dequantize_rows scales");
      } else {
        e.dequant_scales = per_column(s.data, n, "dequantize scales");
      }
      if (at(kind::bias)) e.bias_float = as_vector<float>(stages[i++].data, "gemm", "bias values (float32 after dequantize)");
      check(!(e.per_row() && e.bias_int), "gemm: an int32 bias before dequantize and the per-row stages or a float32 "
                                          "bias do not combine; add the bias after dequantizing");
      if (!e.per_row()) {
        activation_at();
        residual_at();
        if (at(kind::quantize)) e.quantize = stages[i++].params;
      }
    } else if (!e.row_zero_points) {
      if (at(kind::relu)) e.relu_acc = (++i, true);
      if (at(kind::requantize)) {
        e.requant_multipliers = per_column(stages[i].data, n, "requantize multipliers");
        e.requant_zero_point = stages[i++].zero_point;
      }
    }
  } else {
    if (at(kind::bias)) e.bias_float = as_vector<float>(stages[i++].data, "gemm", "bias values (float32 for float32 a)");
    if (at(kind::scale)) e.scale = stages[i++].value;
    activation_at();
    residual_at();
  }
  check(i == stages.size(), "gemm: epilogue stage ", i, " (", i < stages.size() ? stage_name(stages[i].what) : "",
        ") is not supported at this position; ",
        integer ? "uint8 a takes [bias] [relu] [requantize], or [bias] dequantize [relu | gelu] [residual_add] [quantize], "
                  "or [subtract_row_zero_point] (dequantize | dequantize_rows) [bias]"
                : "float32 a takes [bias] [scale] [relu | gelu] [residual_add]");
  return e;
}

template <class T>
any_output typed_output(matrix_arg<T>& c) {
  return any_output(c.view);
}

py::object gemm(py::handle a_obj, py::handle b_obj, py::handle out, const std::vector<stage_spec>& stages,
                int32_t a_zero_point, int32_t b_zero_point, py::handle dtype) {
  constexpr const char* fn = "gemm";
  std::optional<packed_weights> packed_here;
  const packed_weights* b;
  if (py::isinstance<packed_weights>(b_obj)) {
    b = &b_obj.cast<const packed_weights&>();
    check(b_zero_point == 0, fn, ": b_zero_point (", b_zero_point, ") belongs to pack_b when b is a PackedB");
  } else {
    packed_here = pack(b_obj, b_zero_point, fn);
    b = &*packed_here;
  }
  const py::array a_array = to_array(a_obj, fn, "a", false);
  const bool integer = std::holds_alternative<packed_int8>(b->packed);
  const index_t n = integer ? std::get<packed_int8>(b->packed).n : std::get<packed_float>(b->packed).n;
  const parsed_epilogue e = parse(stages, integer, n);
  const element fallback = !integer || (e.dequantizes() && !e.quantize) ? element::f32
                           : e.requantizes() || e.quantize             ? element::u8
                                                                       : element::s32;
  const element c_type = output_element(out, dtype, fallback, fn);
  py::object result;
  auto with_output = [&](index_t rows, auto&& body) {
    auto make = [&](auto tag_value) {
      auto c = output_matrix<decltype(tag_value)>(out, rows, n, a_array.ndim() == 1, fn);
      body(typed_output(c));
      result = c.array;
    };
    switch (c_type) {
      case element::f32: return make(float{});
      case element::s32: return make(int32_t{});
      case element::u8: return make(uint8_t{});
      case element::s8: return make(int8_t{});
    }
  };
  if (integer) {
    const auto a = as_matrix<const uint8_t>(a_array, fn, "a (uint8 for an int8 / uint8 b)");
    with_output(a.view.rows, [&](any_output c) {
      gemm_uint8(a.view, std::get<packed_int8>(b->packed), c, e, a_zero_point);
    });
  } else {
    const auto a = as_matrix<const float>(a_array, fn, "a (float32 for a float32 b)");
    check(a_zero_point == 0, fn, ": a_zero_point (", a_zero_point, ") must be 0 for float32 a");
    with_output(a.view.rows, [&](any_output c) {
      check(std::holds_alternative<matrix_view<float>>(c), fn, ": a float32 GEMM stores float32");
      gemm_float(a.view, std::get<packed_float>(b->packed), std::get<matrix_view<float>>(c), e);
    });
  }
  return result;
}

stage_spec make_stage(kind k, py::object data = py::none(), py::object data2 = py::none()) {
  stage_spec s;
  s.what = k;
  s.data = std::move(data);
  s.data2 = std::move(data2);
  return s;
}

}  // namespace

void bind_gemm(py::module_& m) {
  py::class_<packed_weights>(m, "PackedB",
                             "B (K, N) packed once for this module's backend: int8 / uint8 (integer GEMM) or float32.")
      .def(py::init([](py::handle b, int32_t zero_point) { return pack(b, zero_point, "pack_b"); }), "b"_a,
           "zero_point"_a = 0, "Packs b (K, N): int8 (weights), uint8 (activations, e.g. K or V) or float32.")
      .def_property_readonly("k", [](const packed_weights& p) {
        return std::visit([](const auto& b) { return b.k; }, p.packed);
      }, "Rows of B (the inner dimension K).")
      .def_property_readonly("n", [](const packed_weights& p) {
        return std::visit([](const auto& b) { return b.n; }, p.packed);
      }, "Columns of B (the output dimension N).")
      .def_property_readonly("dtype", [](const packed_weights& p) {
        return py::module_::import("numpy").attr("dtype")(element_name(p.source));
      }, "The dtype B was packed from.")
      .def_property_readonly("shape", [](const packed_weights& p) {
        return std::visit([](const auto& b) { return py::make_tuple(b.k, b.n); }, p.packed);
      }, "(K, N).")
      .def("__repr__", [](const packed_weights& p) {
        return std::visit([&](const auto& b) {
          return "PackedB(k=" + std::to_string(b.k) + ", n=" + std::to_string(b.n) + ", dtype=" +
                 element_name(p.source) + ")";
        }, p.packed);
      });
  m.def("pack_b", [](py::handle b, int32_t zero_point) { return pack(b, zero_point, "pack_b"); }, "b"_a,
        "zero_point"_a = 0,
        "Packs B (K, N) once for gemm: int8 (weights, zero point in [-128, 127]), uint8 ([0, 255]) or float32 (0). "
        "Any strides (a (N, K) PyTorch weight w packs as pack_b(w.T)).");

  py::module_ epi = m.def_submodule("epilogue", "GEMM epilogue stages, applied left to right to each accumulator.");
  py::class_<stage_spec>(epi, "Stage", "One epilogue stage; build it with the functions of qtx.epilogue.")
      .def_property_readonly("name", [](const stage_spec& s) { return stage_name(s.what); })
      .def("__repr__", [](const stage_spec& s) { return std::string("epilogue.") + stage_name(s.what); });
  epi.def("bias", [](py::handle v) { return make_stage(kind::bias, py::reinterpret_borrow<py::object>(v)); }, "values"_a,
          "v = acc + bias[n]: N int32 values (uint8 a, accumulator units) or N float32 values (float32 a).");
  epi.def("dequantize", [](py::handle s) { return make_stage(kind::dequantize, stage_data(s, "float32")); }, "scales"_a,
          "v = float(acc) * scale: one scale (s_a * s_w) or N per-channel scales (float32).");
  epi.def("requantize", [](py::handle mult, int32_t zp) {
            stage_spec s = make_stage(kind::requantize, stage_data(mult, "float32"));
            s.zero_point = zp;
            return s;
          }, "multipliers"_a, "zero_point"_a = 0,
          "q = round_half_even(float(acc) * multiplier) + zero_point: one or N float32 multipliers (s_a * s_w / s_out).");
  epi.def("quantize", [](quant_params p) {
            stage_spec s = make_stage(kind::quantize);
            s.params = p;
            return s;
          }, "params"_a, "q = round_half_even(v / params.scale) + params.zero_point (NaN -> zero point); ends the chain.");
  epi.def("subtract_row_zero_point", [](py::handle zero_points, py::handle column_sums) {
            return make_stage(kind::subtract_row_zero_point, stage_data(zero_points, "int32"),
                              stage_data(column_sums, "int32"));
          }, "zero_points"_a, "column_sums"_a,
          "acc = acc - zero_points[m] * column_sums[n] (int32, wraps): a uint8 a quantized per row (quantize_dynamic) "
          "with one zero point per row; column_sums[n] = sum_k b[k, n] (int32). Use a_zero_point=0 with it.");
  epi.def("dequantize_rows", [](py::handle row_scales, py::handle scales) {
            return make_stage(kind::dequantize_rows, stage_data(row_scales, "float32"), stage_data(scales, "float32"));
          }, "row_scales"_a, "scales"_a,
          "v = float(acc) * row_scales[m] * scales[n]: M float32 scales of a's rows, 1 or N of b's columns.");
  epi.def("relu", [] { return make_stage(kind::relu); }, "v = max(v, 0).");
  epi.def("gelu", [](const std::string& approximate) {
            check(approximate == "none" || approximate == "tanh", "epilogue.gelu: approximate must be 'none' or 'tanh', got '",
                  approximate, "'");
            return make_stage(approximate == "none" ? kind::gelu_erf : kind::gelu_tanh);
          }, "approximate"_a = "none", "GELU: 'none' (erf, BERT) or 'tanh' (GPT-2 / OPT).");
  epi.def("residual_add", [](py::handle r) { return make_stage(kind::residual_add, py::reinterpret_borrow<py::object>(r)); },
          "residual"_a, "v = v + residual[m, n]: a float32 (M, N) array, any strides (the skip connection).");
  epi.def("scale", [](float alpha) {
            stage_spec s = make_stage(kind::scale);
            s.value = alpha;
            return s;
          }, "alpha"_a, "v = v * alpha (float32 GEMM only, e.g. 1/sqrt(d) on attention scores).");

  m.def("gemm", &gemm, "a"_a, "b"_a, "out"_a = py::none(), py::kw_only(), "epilogue"_a = std::vector<stage_spec>{},
        "a_zero_point"_a = 0, "b_zero_point"_a = 0, "dtype"_a = py::none(),
        R"doc(C = epilogue(A @ B).

a: (M, K) uint8 (zero point a_zero_point) with an int8 / uint8 b, or float32 with a float32 b.
b: a PackedB (pack_b, packed once), or a (K, N) array packed for this call (b_zero_point).
Integer accumulation is exact: acc = sum_k (a - a_zp)(b - b_zp) in int32.
epilogue: a list of qtx.epilogue stages in the order
  uint8 a:   [bias] [relu] [requantize]                                   -> int32, or uint8 / int8
             [bias] dequantize [relu | gelu] [residual_add] [quantize]    -> float32, or uint8 / int8
             [subtract_row_zero_point] (dequantize | dequantize_rows) [bias(float32)]  -> float32
  float32 a: [bias] [scale] [relu | gelu] [residual_add]                  -> float32
out: written in place when given (its dtype picks the store), else a new array of dtype (default:
int32, float32 after dequantize, uint8 after requantize / quantize). Returns out.)doc");
}

}  // namespace qtx::python

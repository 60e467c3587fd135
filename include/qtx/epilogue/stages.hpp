#pragma once
/// @file
/// Epilogue stages: what happens to a GEMM accumulator between the dot product and the store.
///
/// Each stage is a small trivially-copyable descriptor whose call operator is the normative scalar
/// semantics of that stage, on host and device. Vector backends implement the same formula on
/// whole register tiles and must agree with this (exactly on integer paths).
///
/// Values flow as int32 (the integer accumulator, or a requantized level before saturation) or
/// float (the dequantized domain). `Along` says how per-channel data is indexed: per_tensor reads
/// element 0, per_n reads element n (the output column = the output channel of a Linear layer).
///
/// Every stage also has `void validate(const gemm_call&) const`, which ops::gemm calls once per call
/// before any work: the lengths of its data against C's extents, and its parameters by the rules of
/// quant/params.hpp, the same functions ops::quantize / ops::requantize use. A stage without it is a
/// compile error (epilogue::stage, pipeline.hpp): the stage that forgets its checks is exactly the
/// out-of-bounds read this guards against, so a stage with nothing to check says so with an empty one.
#include <cmath>
#include <concepts>
#include <cstdint>
#include <ostream>
#include <type_traits>

#include "../core/error.hpp"
#include "../core/types.hpp"
#include "../core/view.hpp"
#include "../quant/params.hpp"
#include "../quant/quantize.hpp"
#include "span.hpp"
#include "../config.hpp"

namespace qtx::QTX_ABI::epilogue {

/// What a stage is validated against: the public function the user called and the GEMM's output.
struct gemm_call {
  const char* fn = "gemm";           ///< the public function, the first word of every message
  index_t batch = -1;                ///< the batch of a batched GEMM whose pipeline this is; < 0: none
  index_t m = 0;                     ///< rows of C
  index_t n = 0;                     ///< columns of C
  int32_t out_min = INT32_MIN;       ///< range of the stored integer levels: C's element type for
  int32_t out_max = INT32_MAX;       ///<   8-bit C, int32 for int32 and float C
  const char* out_type = "s32";      ///< name of that range's type (element_traits<>::name)
  bool host_data = true;             ///< false when stage data is device memory (cuda::gemm): then
                                     ///<   lengths are checked but no element is read

  /// The call of `fn` writing an (m, n) C of element type TC.
  template <class TC>
  static gemm_call of(const char* fn, index_t m, index_t n, bool host_data = true) {
    using levels = std::conditional_t<std::is_same_v<TC, float>, int32_t, std::remove_const_t<TC>>;
    return {fn, -1, m, n, element_traits<levels>::min, element_traits<levels>::max, element_traits<levels>::name,
            host_data};
  }
};

/// Streams the message prefix of a failed check: "gemm" or "gemm (batch 3)".
inline std::ostream& operator<<(std::ostream& os, const gemm_call& call) {
  os << call.fn;
  if (call.batch >= 0) os << " (batch " << call.batch << ")";
  return os;
}

/// A type ops::gemm accepts as an epilogue stage: trivially copyable (it is passed by value into
/// kernels) and validatable against a gemm_call.
template <class S>
concept stage = std::is_trivially_copyable_v<S> && requires(const S& s, const gemm_call& call) {
  { s.validate(call) } -> std::same_as<void>;
};

/// Checks that `data` holds exactly `expected` elements (`what`: whose, for the message) and is
/// non-null when it holds any. Throws qtx::error naming call.fn.
/// @param call the GEMM call; @param name the data, e.g. "bias values"; @param data the span;
/// @param expected the required length; @param what e.g. "one per column n of c".
template <class T>
void check_length(const gemm_call& call, const char* name, span<T> data, index_t expected, const char* what) {
  check(data.size() == expected, call, ": ", name, " has ", data.size(), " elements, expected ", expected, " (",
        what, ")");
  check(data.data() != nullptr || data.empty(), call, ": ", name, " is null");
}

/// Per-tensor data: one value for the whole output, element 0.
struct per_tensor {
  /// Every column reads element 0.
  QTX_HOST_DEVICE static constexpr index_t index(index_t /*n*/) { return 0; }
  /// The length per-tensor data must have: 1.
  static index_t extent(const gemm_call&) { return 1; }
  /// How the expected length reads in error messages.
  static constexpr const char* extent_name = "one for the whole tensor";
};
/// Per-channel data along n: one value per output column (= output channel of a Linear layer).
struct per_n {
  /// Column n reads element n.
  QTX_HOST_DEVICE static constexpr index_t index(index_t n) { return n; }
  /// The length per-channel data must have: N.
  static index_t extent(const gemm_call& call) { return call.n; }
  /// How the expected length reads in error messages.
  static constexpr const char* extent_name = "one per column n of c";
};

/// Checks that data indexed `Along` has Along::extent elements and applies `rule(fn, name[i], x)` to
/// each element when the data is host memory.
template <class Along, class T, class Rule>
void check_channels(const gemm_call& call, const char* name, span<T> data, Rule rule) {
  check_length(call, name, data, Along::extent(call), Along::extent_name);
  if (!call.host_data) return;
  for (index_t i = 0; i < data.size(); ++i) rule(param_name(name).at(i), data[i]);
}

/// v = acc + bias[n]   (int32 bias for integer GEMMs, float bias for float GEMMs).
/// @tparam T int32_t or float; must match the value type at this point of the pipeline.
template <class T>
struct bias {
  span<const T> values;  ///< N values, one per output column
  /// Applies the stage to the value of output element (m, n).
  template <class V>
  QTX_HOST_DEVICE V operator()(V v, index_t /*m*/, index_t n) const {
    static_assert(std::is_same_v<V, T>, "epilogue::bias: bias type must match the value type");
    // Integer accumulators wrap like the SIMD adds (vpaddd) do: the scalar path must not be UB
    // where a huge calibrated bias meets a large dot product, and must agree with the vector paths.
    if constexpr (std::is_integral_v<V>) {
      using unsigned_v = std::make_unsigned_t<V>;
      return static_cast<V>(static_cast<unsigned_v>(v) + static_cast<unsigned_v>(values[n]));
    } else {
      return v + values[n];
    }
  }
  /// Throws qtx::error unless `values` holds N elements (any values: the bias is data).
  void validate(const gemm_call& call) const {
    check_length(call, "bias values", values, call.n, per_n::extent_name);
  }
};

/// v = float(acc) · scale   (scale = s_a·s_w: back to real units).
template <class Along>
struct dequantize {
  span<const float> scales;  ///< 1 (per_tensor) or N (per_n) scales
  /// Applies the stage to the accumulator of output element (m, n).
  QTX_HOST_DEVICE float operator()(int32_t v, index_t /*m*/, index_t n) const {
    return float(v) * scales[Along::index(n)];
  }
  /// Throws qtx::error unless `scales` has Along's length and (host data) every scale is finite
  /// and positive (check_scale, as ops::dequantize).
  void validate(const gemm_call& call) const {
    check_channels<Along>(call, "dequantize scales", scales,
                          [&](const param_name& name, float s) { check_scale(call, name, s); });
  }
};

/// v = acc − zero_points[m] · column_sums[n]: the zero point of row m of a dynamically quantized A
/// (quantized_rows, quant/dynamic.hpp), for a GEMM run with a_zero_point 0; column_sums[n] = Σ_k B(k, n).
/// Wraps modulo 2^32 like the SIMD integer ops (it is exact whenever the true sum fits int32).
struct subtract_row_zero_point {
  span<const int32_t> zero_points;  ///< M zero points, one per row of A, in [0, 255]
  span<const int32_t> column_sums;  ///< N sums of B's columns
  /// Applies the stage to the accumulator of output element (m, n).
  QTX_HOST_DEVICE int32_t operator()(int32_t v, index_t m, index_t n) const {
    const uint32_t correction = static_cast<uint32_t>(zero_points[m]) * static_cast<uint32_t>(column_sums[n]);
    return static_cast<int32_t>(static_cast<uint32_t>(v) - correction);
  }
  /// Throws qtx::error unless zero_points holds M elements in [0, 255] (host data) and column_sums N.
  void validate(const gemm_call& call) const {
    check_length(call, "subtract_row_zero_point zero_points", zero_points, call.m, "one per row m of c");
    check_length(call, "subtract_row_zero_point column_sums", column_sums, call.n, per_n::extent_name);
    if (!call.host_data) return;
    for (index_t i = 0; i < zero_points.size(); ++i)
      check_zero_point<uint8_t>(call, param_name("subtract_row_zero_point zero_points").at(i), zero_points[i]);
  }
};

/// v = float(acc) · row_scales[m] · scales[n]   (A quantized per row, B per tensor or per channel).
template <class Along>
struct dequantize_rows {
  span<const float> row_scales;  ///< M scales, one per row of A
  span<const float> scales;      ///< 1 (per_tensor) or N (per_n) scales of B
  /// Applies the stage to the accumulator of output element (m, n).
  QTX_HOST_DEVICE float operator()(int32_t v, index_t m, index_t n) const {
    return float(v) * row_scales[m] * scales[Along::index(n)];
  }
  /// Throws qtx::error unless both spans have their lengths and (host data) every scale is finite
  /// and positive (check_scale).
  void validate(const gemm_call& call) const {
    check_length(call, "dequantize_rows row_scales", row_scales, call.m, "one per row m of c");
    if (call.host_data)
      for (index_t i = 0; i < row_scales.size(); ++i)
        check_scale(call, param_name("dequantize_rows row_scales").at(i), row_scales[i]);
    check_channels<Along>(call, "dequantize_rows scales", scales,
                          [&](const param_name& name, float s) { check_scale(call, name, s); });
  }
};

/// q = round_half_even(float(acc) · multiplier) + zp   (multiplier = s_a·s_w / s_out; saturated by the store).
template <class Along>
struct requantize {
  span<const float> multipliers;  ///< 1 (per_tensor) or N (per_n) multipliers
  int32_t zero_point;             ///< output zero point, in the range of C's element type
  /// Applies the stage to the accumulator of output element (m, n); the store saturates to C's type.
  QTX_HOST_DEVICE int32_t operator()(int32_t v, index_t /*m*/, index_t n) const {
    return sat_add(round_half_even(float(v) * multipliers[Along::index(n)]), zero_point);
  }
  /// a + b saturated to int32.
  QTX_HOST_DEVICE static int32_t sat_add(int32_t a, int32_t b) {
    const int64_t s = int64_t(a) + b;
    return s > INT32_MAX ? INT32_MAX : s < INT32_MIN ? INT32_MIN : int32_t(s);
  }
  /// Throws qtx::error unless `multipliers` has Along's length, (host data) every multiplier is
  /// finite and positive, and the zero point lies in C's range: the rules of ops::requantize.
  void validate(const gemm_call& call) const {
    check_channels<Along>(call, "requantize multipliers", multipliers,
                          [&](const param_name& name, float m) { check_scale(call, name, m); });
    check_zero_point(call, "requantize zero_point", zero_point, call.out_min, call.out_max, call.out_type);
  }
};

/// q = round_half_even(acc · m0 · 2^(shift−31)) + zp   (integer-only requantization).
template <class Along>
struct requantize_fixed {
  span<const fixed_point_multiplier> multipliers;  ///< 1 (per_tensor) or N (per_n), from to_fixed_point
  int32_t zero_point;                              ///< output zero point, in the range of C's element type
  /// Applies the stage to the accumulator of output element (m, n); the store saturates to C's type.
  QTX_HOST_DEVICE int32_t operator()(int32_t v, index_t /*m*/, index_t n) const {
    return requantize<Along>::sat_add(fixed_point_scale(v, multipliers[Along::index(n)]), zero_point);
  }
  /// Throws qtx::error unless `multipliers` has Along's length, (host data) every multiplier is
  /// normalised (check_fixed_point, as ops::requantize) and the zero point lies in C's range.
  void validate(const gemm_call& call) const {
    check_channels<Along>(call, "requantize_fixed multipliers", multipliers,
                          [&](const param_name& name, fixed_point_multiplier f) { check_fixed_point(call, name, f); });
    check_zero_point(call, "requantize_fixed zero_point", zero_point, call.out_min, call.out_max, call.out_type);
  }
};

/// q = round_half_even(v · (1/scale)) + zp   (float → quantized level; NaN → zp; saturated by the store).
struct quantize {
  float inv_scale;     ///< 1 / output scale (quant_params::inv_scale())
  int32_t zero_point;  ///< output zero point, in the range of C's element type
  /// Applies the stage to a float value; the store saturates to C's type.
  QTX_HOST_DEVICE int32_t operator()(float v, index_t /*m*/, index_t /*n*/) const {
    if (v != v) return zero_point;
    return requantize<per_tensor>::sat_add(round_half_even(v * inv_scale), zero_point);
  }
  /// Throws qtx::error unless inv_scale is finite and positive and the zero point lies in C's range.
  void validate(const gemm_call& call) const {
    check_scale(call, "quantize inv_scale", inv_scale);
    check_zero_point(call, "quantize zero_point", zero_point, call.out_min, call.out_max, call.out_type);
  }
};

/// v = max(v, 0).
struct relu {
  /// Applies the stage to any value type (int32 before dequantize, float after).
  template <class V>
  QTX_HOST_DEVICE V operator()(V v, index_t, index_t) const {
    return v > V(0) ? v : V(0);
  }
  /// Nothing to check.
  void validate(const gemm_call&) const {}
};

/// v = 0.5·v·(1 + erf(v/√2))   (BERT's exact GELU).
struct gelu_erf {
  /// Applies the stage to a float value.
  QTX_HOST_DEVICE float operator()(float v, index_t, index_t) const {
    return 0.5f * v * (1.0f + std::erf(v * 0.70710678118654752f));
  }
  /// Nothing to check.
  void validate(const gemm_call&) const {}
};

/// v = 0.5·v·(1 + tanh(√(2/π)·(v + 0.044715·v³)))   (GPT-2/OPT-style approximation).
struct gelu_tanh {
  /// Applies the stage to a float value.
  QTX_HOST_DEVICE float operator()(float v, index_t, index_t) const {
    const float inner = 0.79788456080286536f * (v + 0.044715f * v * v * v);
    return 0.5f * v * (1.0f + std::tanh(inner));
  }
  /// Nothing to check.
  void validate(const gemm_call&) const {}
};

/// v = v + residual(m, n)   (the transformer's skip connection, in real units).
struct residual_add {
  matrix_view<const float> residual;  ///< (M, N), any strides
  /// Adds the residual of output element (m, n).
  QTX_HOST_DEVICE float operator()(float v, index_t m, index_t n) const { return v + residual(m, n); }
  /// Throws qtx::error unless `residual` is a valid view (check_view) of C's shape.
  void validate(const gemm_call& call) const {
    check(residual.rows >= 0 && residual.cols >= 0 && residual.row_stride >= 0 && residual.col_stride >= 0, call,
          ": residual has negative extent or stride (", residual.rows, "x", residual.cols, ", strides ",
          residual.row_stride, ", ", residual.col_stride, ")");
    check(residual.rows == call.m && residual.cols == call.n, call, ": residual is ", residual.rows, "x",
          residual.cols, " but c is ", call.m, "x", call.n);
    check(residual.data != nullptr || residual.empty(), call, ": residual is null");
  }
};

/// v = v · factors[m]   (a per-output-row factor: the attention gate π of token m scales its head output).
struct row_scale {
  span<const float> factors;  ///< M factors, one per output row
  /// Scales the value of output row m.
  QTX_HOST_DEVICE float operator()(float v, index_t m, index_t) const { return v * factors[m]; }
  /// Throws qtx::error unless `factors` holds M elements (any values: the factors are data).
  void validate(const gemm_call& call) const {
    check_length(call, "row_scale factors", factors, call.m, "one per row m of c");
  }
};

/// v = v · alpha   (e.g. 1/√d on attention scores computed in float).
struct scale {
  float alpha;  ///< any finite factor
  /// Applies the stage to a float value.
  QTX_HOST_DEVICE float operator()(float v, index_t, index_t) const { return v * alpha; }
  /// Throws qtx::error unless alpha is finite (an infinite or NaN factor only produces NaN / inf).
  void validate(const gemm_call& call) const {
    check(std::isfinite(alpha), call, ": scale alpha (", alpha, ") must be finite");
  }
};

}  // namespace qtx::epilogue

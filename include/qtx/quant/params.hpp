#pragma once
/// @file
/// Quantization parameters: real = scale · (q − zero_point).
///
/// The paper's W8A8 scheme: weights symmetric int8 in [−128, 127] with scale = absmax / 127 and
/// zero_point 0; activations asymmetric uint8 in [0, 255] over a range forced to contain 0, with
/// zero_point = round(−min / scale) (ties to even).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <ostream>
#include <vector>

#include "../core/error.hpp"
#include "../core/types.hpp"
#include "../config.hpp"

namespace qtx::QTX_ABI {

/// One scale and zero point for a whole tensor. Trivially copyable: usable on device too.
struct quant_params {
  /// Real units per quantization level (> 0).
  float scale = 1.0f;
  /// The level that represents real 0 (exactly, so zero padding stays exact).
  int32_t zero_point = 0;

  /// Quantizers multiply by this reciprocal (every backend does the same, so they agree bit-for-bit).
  QTX_HOST_DEVICE float inv_scale() const { return 1.0f / scale; }
};

/// One scale (and zero point) per channel along `axis` of a matrix: axis 1 = per output column n
/// of a GEMM (per_n), axis 0 = per row.
struct channel_quant_params {
  /// One scale per channel.
  std::vector<float> scales;
  std::vector<int32_t> zero_points;  ///< empty = all zero (symmetric)
  /// 1: channels are columns (per output channel of a Linear, the GEMM's per_n); 0: rows.
  int axis = 1;

  /// Number of channels.
  index_t channels() const { return static_cast<index_t>(scales.size()); }
  /// Channel c's parameters, unchecked.
  quant_params operator[](index_t c) const {
    return {scales[c], zero_points.empty() ? 0 : zero_points[c]};
  }
};

/// A real multiplier m > 0 as m0 · 2^(shift − 31) with m0 in [2^30, 2^31): integer-only requantization
/// (built by to_fixed_point, quantize.hpp).
struct fixed_point_multiplier {
  /// Mantissa in Q31, in [2^30, 2^31).
  int32_t m0 = 0;
  /// Power of two applied after the Q31 multiply, in [−31, 31].
  int shift = 0;
};

// ---- the argument rules: one function per parameter, shared by ops/ and the GEMM epilogue stages ----

/// How a parameter is named in messages: "multiplier", "params.scale", "requantize multipliers[3]".
struct param_name {
  /// The argument's name, e.g. "requantize".
  const char* base;
  /// Appended member, e.g. ".scale".
  const char* member = "";
  index_t index = -1;  ///< < 0: not an element of an array
  /// A plain name: implicit, so check functions take string literals.
  param_name(const char* b) : base(b) {}  // NOLINT: implicit, so a plain name can be passed
  /// base + member (+ [i] when i ≥ 0).
  param_name(const char* b, const char* m, index_t i = -1) : base(b), member(m), index(i) {}
  /// The same name for element i of an array.
  param_name at(index_t i) const { return {base, member, i}; }
};
/// Writes base, member and [index] as error messages show them.
inline std::ostream& operator<<(std::ostream& os, const param_name& p) {
  os << p.base << p.member;
  if (p.index >= 0) os << '[' << p.index << ']';
  return os;
}

// Each rule throws qtx::error whose message starts with `fn` (the public function the user called;
// anything streamable, e.g. epilogue::gemm_call), names the parameter and shows its value.

/// A scale, a requantization multiplier or a reciprocal scale: finite and positive.
template <class Fn, class F>
void check_scale(const Fn& fn, const param_name& name, F value) {
  check(std::isfinite(value) && value > F(0), fn, ": ", name, " (", value, ") must be finite and positive");
}

/// A zero point of values stored as T (or any int32 range [lo, hi] named `type`).
template <class Fn>
void check_zero_point(const Fn& fn, const param_name& name, int32_t zero_point, int32_t lo, int32_t hi,
                      const char* type) {
  check(zero_point >= lo && zero_point <= hi, fn, ": ", name, " (", zero_point, ") is outside the range of ",
        type, " [", lo, ", ", hi, "]");
}
/// Throws qtx::error unless zero_point lies in T's range.
template <class T, class Fn>
void check_zero_point(const Fn& fn, const param_name& name, int32_t zero_point) {
  check_zero_point(fn, name, zero_point, element_traits<T>::min, element_traits<T>::max, element_traits<T>::name);
}

/// A fixed-point multiplier as to_fixed_point builds it: m0 in [2^30, 2^31), shift in [−31, 31].
template <class Fn>
void check_fixed_point(const Fn& fn, const param_name& name, fixed_point_multiplier f) {
  check(f.m0 >= (1 << 30) && f.shift >= -31 && f.shift <= 31, fn, ": ", name, " (m0 ", f.m0, ", shift ", f.shift,
        ") is not normalised; build it with to_fixed_point");
}

/// Throws qtx::error naming fn and name unless q has a finite positive scale and a zero point in T's range.
template <class T>
void check_quant_params(const char* fn, const char* name, const quant_params& q) {
  check_scale(fn, param_name(name, ".scale"), q.scale);
  check_zero_point<T>(fn, param_name(name, ".zero_point"), q.zero_point);
}

/// Asymmetric parameters for T over [lo, hi]; the range is widened to include 0 so that 0 is
/// exactly representable (zero padding, ReLU outputs). An empty or degenerate range gets scale 1.
template <class T = uint8_t>
quant_params asymmetric_params(float lo, float hi) {
  check(!std::isnan(lo) && !std::isnan(hi), "asymmetric_params: range [", lo, ", ", hi,
        "] contains NaN");
  check(lo <= hi, "asymmetric_params: lo (", lo, ") > hi (", hi, ")");
  lo = std::min(lo, 0.0f);
  hi = std::max(hi, 0.0f);
  check(std::isfinite(lo) && std::isfinite(hi), "asymmetric_params: range [", lo, ", ", hi,
        "] is not finite");
  constexpr float levels = float(element_traits<T>::max - element_traits<T>::min);
  float scale = (hi - lo) / levels;
  // hi − lo overflows float for ranges wider than FLT_MAX; the scale itself does not.
  if (std::isinf(scale)) scale = float((double(hi) - double(lo)) / levels);
  if (!(scale > 0.0f)) return {1.0f, saturate_cast<T>(0)};
  // At least the smallest normal float, so that the quantizers' 1/scale stays finite.
  scale = std::max(scale, std::numeric_limits<float>::min());
  const int32_t zp = element_traits<T>::min + round_half_even(-lo / scale);
  return {scale, saturate_cast<T>(zp)};
}

/// Symmetric signed parameters: scale = absmax / qmax, zero point 0 (the paper's weights).
template <class T = int8_t>
quant_params symmetric_params(float absmax) {
  check(!std::isnan(absmax) && absmax >= 0.0f, "symmetric_params: absmax (", absmax,
        ") must be a non-negative number");
  check(std::isfinite(absmax), "symmetric_params: absmax (", absmax, ") must be finite");
  if (absmax == 0.0f) return {1.0f, 0};
  return {std::max(absmax / float(element_traits<T>::max), std::numeric_limits<float>::min()), 0};
}

}  // namespace qtx

#pragma once
/// @file
/// Scalar quantize / dequantize / requantize: the semantics every backend reproduces.
///
///   quantize(x)   = clamp(round_half_even(x · (1/scale)) + zero_point, qmin, qmax); NaN → zero_point
///   dequantize(q) = scale · (q − zero_point)
///   requantize    int32 accumulator → 8 bit, with either
///     a float multiplier:      clamp(round_half_even(float(acc) · m) + zp)
///     a fixed-point multiplier (m0 in Q31, shift):  clamp(round_half_even(acc · m0 · 2^(shift−31)) + zp)
///       computed exactly in 64 bits (the integer-only form, as on hardware without float units).
#include <cmath>
#include <cstdint>
#include <span>
#include <type_traits>

#include "../core/error.hpp"
#include "../core/types.hpp"
#include "params.hpp"
#include "../config.hpp"

namespace qtx::QTX_ABI {

/// The normative quantizer: clamp(round_half_even(x · inv_scale) + zero_point) to T; NaN → zero_point.
/// Takes the reciprocal so that every backend multiplies (never divides) and they agree bit-for-bit.
template <class T>
QTX_HOST_DEVICE inline T quantize_one(float x, float inv_scale, int32_t zero_point) {
  if (x != x) return saturate_cast<T>(zero_point);
  const int32_t q = round_half_even(x * inv_scale);
  // Add in 64 bits: q may be INT32_MAX for huge inputs.
  const int64_t shifted = int64_t(q) + zero_point;
  return saturate_cast<T>(int32_t(shifted < element_traits<T>::min   ? element_traits<T>::min
                                  : shifted > element_traits<T>::max ? element_traits<T>::max
                                                                     : shifted));
}

/// A float result stored as Out: unchanged for float, quantize_one with `p` for 8-bit types.
template <class Out>
QTX_HOST_DEVICE inline Out store_float_as(float v, quant_params p) {
  if constexpr (std::is_same_v<Out, float>)
    return v;
  else
    return quantize_one<Out>(v, p.inv_scale(), p.zero_point);
}

/// The normative dequantizer: scale · (q − zero_point).
template <class T>
QTX_HOST_DEVICE inline float dequantize_one(T q, float scale, int32_t zero_point) {
  return scale * float(int32_t(q) - zero_point);
}

/// An int32 accumulator to T with a float multiplier (s_a·s_w / s_out): quantize_one(float(acc), multiplier, zp).
template <class T>
QTX_HOST_DEVICE inline T requantize_one(int32_t acc, float multiplier, int32_t zero_point) {
  return quantize_one<T>(float(acc), multiplier, zero_point);
}

/// A real multiplier as m0 · 2^(shift − 31) for integer-only requantization (gemmlowp's scheme).
/// @throws qtx::error ("to_fixed_point: ...") for a non-positive multiplier or one outside [2^−32, 2^31).
inline fixed_point_multiplier to_fixed_point(double multiplier) {
  check_scale("to_fixed_point", "multiplier", multiplier);
  int exponent = 0;
  const double mantissa = std::frexp(multiplier, &exponent);  // in [0.5, 1)
  int64_t m0 = std::llround(mantissa * double(int64_t(1) << 31));
  if (m0 == (int64_t(1) << 31)) {
    m0 /= 2;
    ++exponent;
  }
  check(exponent <= 31 && exponent >= -31, "to_fixed_point: multiplier (", multiplier,
        ") is outside [2^-32, 2^31)");
  return {int32_t(m0), exponent};
}

/// acc · m0 · 2^(shift−31), rounded half to even, exactly (64-bit integer arithmetic).
QTX_HOST_DEVICE inline int32_t fixed_point_scale(int32_t acc, fixed_point_multiplier f) {
  const int64_t product = int64_t(acc) * f.m0;  // |product| < 2^62
  const int right = 31 - f.shift;               // in [0, 62]
  if (right <= 0) {
    const int64_t v = product * (int64_t(1) << -right);
    return v > INT32_MAX ? INT32_MAX : v < INT32_MIN ? INT32_MIN : int32_t(v);
  }
  const int64_t floor_q = product >> right;  // arithmetic shift = floor division
  const int64_t rem = product - (floor_q << right);
  const int64_t half = int64_t(1) << (right - 1);
  int64_t q = floor_q;
  if (rem > half || (rem == half && (floor_q & 1))) ++q;
  return q > INT32_MAX ? INT32_MAX : q < INT32_MIN ? INT32_MIN : int32_t(q);
}

/// An int32 accumulator to T, integer-only: clamp(fixed_point_scale(acc, f) + zero_point).
template <class T>
QTX_HOST_DEVICE inline T requantize_one(int32_t acc, fixed_point_multiplier f, int32_t zero_point) {
  const int64_t v = int64_t(fixed_point_scale(acc, f)) + zero_point;
  return saturate_cast<T>(int32_t(v < element_traits<T>::min   ? element_traits<T>::min
                                  : v > element_traits<T>::max ? element_traits<T>::max
                                                               : v));
}

// ---- buffer forms (scalar; the vectorized row kernels live in cpu/) ----

/// Scalar buffer form of quantize_one (reference and small data; ops::quantize is the vector kernel).
/// @throws qtx::error ("quantize: ...") for unequal sizes or invalid params.
template <class T>
void quantize(std::span<const float> x, std::span<T> q, quant_params p) {
  check(x.size() == q.size(), "quantize: x has ", x.size(), " elements but q has ", q.size());
  check_quant_params<T>("quantize", "params", p);
  const float inv = p.inv_scale();
  for (std::size_t i = 0; i < x.size(); ++i) q[i] = quantize_one<T>(x[i], inv, p.zero_point);
}

/// Scalar buffer form of dequantize_one. @throws qtx::error ("dequantize: ...") for unequal sizes or invalid params.
template <class T>
void dequantize(std::span<const T> q, std::span<float> x, quant_params p) {
  check(x.size() == q.size(), "dequantize: q has ", q.size(), " elements but x has ", x.size());
  check_quant_params<T>("dequantize", "params", p);
  for (std::size_t i = 0; i < q.size(); ++i) x[i] = dequantize_one(q[i], p.scale, p.zero_point);
}

/// Scalar buffer form of requantize_one (float multiplier).
/// @throws qtx::error ("requantize: ...") for unequal sizes, a non-positive multiplier or a zero point outside T.
template <class T>
void requantize(std::span<const int32_t> acc, std::span<T> q, float multiplier, int32_t zero_point) {
  check(acc.size() == q.size(), "requantize: acc has ", acc.size(), " elements but q has ", q.size());
  check_scale("requantize", "multiplier", multiplier);
  check_zero_point<T>("requantize", "zero_point", zero_point);
  for (std::size_t i = 0; i < acc.size(); ++i) q[i] = requantize_one<T>(acc[i], multiplier, zero_point);
}

/// Scalar buffer form of requantize_one (fixed-point multiplier).
/// @throws qtx::error ("requantize: ...") for unequal sizes, a non-normalised multiplier or a zero point outside T.
template <class T>
void requantize(std::span<const int32_t> acc, std::span<T> q, fixed_point_multiplier f,
                int32_t zero_point) {
  check(acc.size() == q.size(), "requantize: acc has ", acc.size(), " elements but q has ", q.size());
  check_fixed_point("requantize", "fixed-point multiplier", f);
  check_zero_point<T>("requantize", "zero_point", zero_point);
  for (std::size_t i = 0; i < acc.size(); ++i) q[i] = requantize_one<T>(acc[i], f, zero_point);
}

}  // namespace qtx

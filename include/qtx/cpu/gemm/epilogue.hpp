#pragma once
// Vector epilogue: the stages of epilogue/stages.hpp applied to a register of accumulators while
// the microkernel's tile is still in registers, then the store into C.
//
// vector_stage<Stage>::apply<V>(stage, value, at) is the one place a stage's vector form lives,
// written once over the ISA vocabulary V (simd.hpp). A stage without a specialisation still works:
// the primary template runs its scalar operator() lane by lane (correct, just slower), so a new
// stage needs no kernel edits, only (optionally) one small specialisation here.
//
// Exactness: integer stages reproduce the scalar semantics bit for bit (float(acc)·m is one
// multiply, no FMA, then cvtps2dq with the scalar's out-of-range/NaN results; saturating adds;
// the fixed-point requantization in exact 64-bit arithmetic). GELU uses the row kernels' vector
// erf / sigmoid (cpu/rows/math.hpp: erf ≤ 2.5e−7 absolute, sigmoid ≤ 3 ulp), so float results
// differ from std::erf / std::tanh by a few ulp of the output (tests state the tolerance).
#include "../../config.hpp"
#include <cstdint>
#include <type_traits>
#include <utility>

#include "../../epilogue/pipeline.hpp"
#include "simd.hpp"

#if QTX_HAS_AVX2 || QTX_HAS_AVX512_VNNI
#include "../rows/math.hpp"
#endif

namespace qtx::QTX_ABI::cpu::gemm_detail {

// A vector of results at row m, columns [n, n + V::lanes) of C, of which the first `count` exist.
template <class V>
struct lane_block {
  index_t m, n, count;
  typename V::lanes_mask mask;
};

template <class V, class Vec>
using scalar_of = decltype(V::element_of(std::declval<Vec>()));
template <class V, class T>
using vector_of = decltype(V::vector_of(T{}));

// Per-channel parameters along n: a masked load (never past the last column) or one broadcast.
template <class V, class Along, class T>
QTX_ALWAYS_INLINE vector_of<V, T> load_along(const T* values, const lane_block<V>& at) {
  if constexpr (std::is_same_v<Along, epilogue::per_tensor>) {
    return V::set1(values[0]);
  } else {
    return V::load(values + at.n, at.mask);
  }
}

// Fallback: any stage, lane by lane through its scalar call operator.
template <class Stage>
struct vector_stage {
  template <class V, class Vec>
  static auto apply(const Stage& stage, Vec v, const lane_block<V>& at) {
    using in_t = scalar_of<V, Vec>;
    using out_t = decltype(stage(in_t{}, index_t{}, index_t{}));
    alignas(64) in_t in[V::lanes];
    alignas(64) out_t out[V::lanes] = {};
    V::store(in, v, V::first(V::lanes));
    for (index_t l = 0; l < at.count; ++l) out[l] = stage(in[l], at.m, at.n + l);
    return V::load(static_cast<const out_t*>(out), V::first(V::lanes));
  }
};

template <class T>
struct vector_stage<epilogue::bias<T>> {
  template <class V, class Vec>
  static Vec apply(const epilogue::bias<T>& s, Vec v, const lane_block<V>& at) {
    static_assert(std::is_same_v<scalar_of<V, Vec>, T>, "epilogue::bias: bias type must match the value type");
    return V::add(v, V::load(s.values.data() + at.n, at.mask));
  }
};

template <class Along>
struct vector_stage<epilogue::dequantize<Along>> {
  template <class V>
  static typename V::vfloat apply(const epilogue::dequantize<Along>& s, typename V::vint v, const lane_block<V>& at) {
    return V::mul(V::to_float(v), load_along<V, Along>(s.scales.data(), at));
  }
};

template <>
struct vector_stage<epilogue::subtract_row_zero_point> {
  template <class V>
  static typename V::vint apply(const epilogue::subtract_row_zero_point& s, typename V::vint v, const lane_block<V>& at) {
    // v + (−zp)·sum modulo 2^32 is the scalar's v − zp·sum.
    return V::add(v, V::mullo(V::set1(-s.zero_points[at.m]), V::load(s.column_sums.data() + at.n, at.mask)));
  }
};

template <class Along>
struct vector_stage<epilogue::dequantize_rows<Along>> {
  template <class V>
  static typename V::vfloat apply(const epilogue::dequantize_rows<Along>& s, typename V::vint v,
                                  const lane_block<V>& at) {
    return V::mul(V::mul(V::to_float(v), V::set1(s.row_scales[at.m])), load_along<V, Along>(s.scales.data(), at));
  }
};

template <class Along>
struct vector_stage<epilogue::requantize<Along>> {
  template <class V>
  static typename V::vint apply(const epilogue::requantize<Along>& s, typename V::vint v, const lane_block<V>& at) {
    const typename V::vfloat scaled = V::mul(V::to_float(v), load_along<V, Along>(s.multipliers.data(), at));
    return saturating_offset(s.zero_point).apply<V>(round_half_even<V>(scaled));
  }
};

// acc · m0 · 2^(shift−31) rounded half to even, exactly (quant/quantize.hpp fixed_point_scale).
// Per 64-bit lane, with r = 31 − shift ≥ 1:  q = (p + 2^(r−1) − 1 + ((p >> r) & 1)) >> r, which is
// floor(p / 2^r) plus one when the remainder exceeds half, or equals half and the floor is odd.
// r = 0 is turned into r = 1 on 2p (|p| < 2^62, so 2p cannot overflow).
template <class V>
QTX_ALWAYS_INLINE typename V::vint fixed_point_scale(typename V::vint acc, typename V::vint m0, typename V::vint right) {
  using vint = typename V::vint;
  const vint no_shift = V::select_i(V::greater(V::set1(1), right), V::set1(1), V::set1(0));
  right = V::add(right, no_shift);
  const vint one = V::set1_64(1);
  auto half_lanes = [&](vint a, vint m, vint r, vint pre) {
    const vint p = V::shift_left64(V::mul_even_s32(a, m), pre);
    const vint bias = V::add64(V::sub64(V::shift_left64(one, V::sub64(r, one)), one),
                               V::and_(V::shift_right_arith64(p, r), one));
    return V::clamp64(V::shift_right_arith64(V::add64(p, bias), r), INT32_MIN, INT32_MAX);
  };
  const vint even = half_lanes(acc, m0, V::low32_of_64(right), V::low32_of_64(no_shift));
  const vint odd = half_lanes(V::odd_to_even(acc), V::odd_to_even(m0), V::odd_to_even(right), V::odd_to_even(no_shift));
  return V::interleave_low32(even, odd);
}

template <class Along>
struct vector_stage<epilogue::requantize_fixed<Along>> {
  template <class V>
  static typename V::vint apply(const epilogue::requantize_fixed<Along>& s, typename V::vint v, const lane_block<V>& at) {
    // {m0, shift} pairs are gathered through the stack: this integer-only form is not a hot path.
    alignas(64) int32_t m0[V::lanes] = {}, right[V::lanes] = {};
    for (index_t l = 0; l < V::lanes; ++l) {
      const fixed_point_multiplier f = s.multipliers[Along::index(at.n + (l < at.count ? l : 0))];
      m0[l] = f.m0;
      right[l] = 31 - f.shift;
    }
    const auto all = V::first(V::lanes);
    return saturating_offset(s.zero_point).apply<V>(fixed_point_scale<V>(v, V::load(m0, all), V::load(right, all)));
  }
};

template <>
struct vector_stage<epilogue::quantize> {
  template <class V>
  static typename V::vint apply(const epilogue::quantize& s, typename V::vfloat v, const lane_block<V>&) {
    // NaN · inv_scale is NaN, which round_half_even maps to 0: the result is the zero point.
    return saturating_offset(s.zero_point).apply<V>(round_half_even<V>(V::mul(v, V::set1(s.inv_scale))));
  }
};

template <>
struct vector_stage<epilogue::relu> {
  template <class V, class Vec>
  static Vec apply(const epilogue::relu&, Vec v, const lane_block<V>&) {
    using T = scalar_of<V, Vec>;
    return V::max(v, V::set1(T(0)));  // float: max(NaN, 0) is 0, as the scalar v > 0 ? v : 0
  }
};

template <>
struct vector_stage<epilogue::scale> {
  template <class V>
  static typename V::vfloat apply(const epilogue::scale& s, typename V::vfloat v, const lane_block<V>&) {
    return V::mul(v, V::set1(s.alpha));
  }
};

template <>
struct vector_stage<epilogue::row_scale> {
  template <class V>
  static typename V::vfloat apply(const epilogue::row_scale& s, typename V::vfloat v, const lane_block<V>& at) {
    return V::mul(v, V::set1(s.factors[at.m]));
  }
};

template <>
struct vector_stage<epilogue::residual_add> {
  template <class V>
  static typename V::vfloat apply(const epilogue::residual_add& s, typename V::vfloat v, const lane_block<V>& at) {
    const matrix_view<const float>& r = s.residual;
    if (r.col_stride == 1) return V::add(v, V::load(r.row(at.m) + at.n, at.mask));
    alignas(64) float column[V::lanes] = {};
    for (index_t l = 0; l < at.count; ++l) column[l] = r(at.m, at.n + l);
    return V::add(v, V::load(static_cast<const float*>(column), V::first(V::lanes)));
  }
};

#if QTX_HAS_AVX2 || QTX_HAS_AVX512_VNNI
inline constexpr float inv_sqrt2 = 0.70710678118654752f;
inline constexpr float sqrt_2_over_pi = 0.79788456080286536f;
inline constexpr float gelu_tanh_cubic = 0.044715f;

template <>
struct vector_stage<epilogue::gelu_erf> {
  template <class V>
  static typename V::vfloat apply(const epilogue::gelu_erf&, typename V::vfloat v, const lane_block<V>&) {
    using batch = xsimd::batch<float, typename V::xsimd_arch>;
    const batch x(v);
    return (0.5f * x) * (1.0f + rows::erf(x * inv_sqrt2));
  }
};

// 0.5·(1 + tanh(u)) = sigmoid(2u): one exp instead of a tanh.
template <>
struct vector_stage<epilogue::gelu_tanh> {
  template <class V>
  static typename V::vfloat apply(const epilogue::gelu_tanh&, typename V::vfloat v, const lane_block<V>&) {
    using batch = xsimd::batch<float, typename V::xsimd_arch>;
    const batch x(v);
    const batch inner = sqrt_2_over_pi * (x + gelu_tanh_cubic * x * x * x);
    return x * rows::sigmoid(inner + inner);
  }
};
#endif

// The whole chain, left to right.
template <class V, class Vec>
QTX_ALWAYS_INLINE Vec apply_pipeline(const epilogue::pipeline<>&, Vec v, const lane_block<V>&) {
  return v;
}
template <class V, class Vec, class First, class... Rest>
QTX_ALWAYS_INLINE auto apply_pipeline(const epilogue::pipeline<First, Rest...>& p, Vec v, const lane_block<V>& at) {
  return apply_pipeline<V>(p.rest, vector_stage<First>::template apply<V>(p.first, v, at), at);
}

// The store implied by the destination type (epilogue::store_cast), into C(at.m, at.n...).
template <class V, class TC, class Vec>
QTX_ALWAYS_INLINE void store_lanes(const matrix_view<TC>& c, Vec v, const lane_block<V>& at) {
  using value_t = scalar_of<V, Vec>;
  static_assert(!std::is_same_v<value_t, float> || std::is_same_v<TC, float>,
                "epilogue: a float value cannot be stored to an integer destination; "
                "end the pipeline with epilogue::quantize");
  auto converted = [&] {
    if constexpr (std::is_same_v<TC, float> && std::is_same_v<value_t, int32_t>) return V::to_float(v);
    else return v;
  }();
  if (c.col_stride == 1) {
    V::store(c.row(at.m) + at.n, converted, at.mask);
    return;
  }
  alignas(64) scalar_of<V, decltype(converted)> lane[V::lanes];
  V::store(lane, converted, V::first(V::lanes));
  for (index_t l = 0; l < at.count; ++l) c(at.m, at.n + l) = epilogue::store_cast<TC>(lane[l]);
}

}  // namespace qtx::cpu::gemm_detail

#pragma once
// The row kernels' vector vocabulary. Kernels are one template body over an xsimd architecture A
// (xsimd::avx512bw for cpu::avx512_vnni, xsimd::fma3<xsimd::avx2> for cpu::avx2); this header maps
// backend tags to A and supplies what xsimd 8.1 lacks: loads of 8/32-bit integers as float, partial
// loads/stores of a row's tail, and the 8-bit quantizing store.
//
// The quantizing store reproduces quantize_one<T> (quant/quantize.hpp) exactly:
//   quantize_one(x) = clamp(round_half_even(x · inv_scale) + zp, qmin, qmax), NaN → zp.
// Clamping x · inv_scale to the integers [qmin − zp, qmax − zp] *before* rounding is equivalent
// (rounding is monotone and the bounds are integers) and keeps the conversion in range.
#include "../../config.hpp"
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "../../core/arch.hpp"
#include "../../core/types.hpp"
#include "../../quant/params.hpp"

#if QTX_HAS_AVX2 || QTX_HAS_AVX512_VNNI
#include <immintrin.h>

#include <xsimd/xsimd.hpp>

#include "../avx512.hpp"
#endif

namespace qtx::QTX_ABI::cpu::rows {

// The scalar backend has no vector architecture: its row operations are the ref/ oracles.
struct no_simd {};
inline no_simd simd_arch_for(scalar) { return {}; }
#if QTX_HAS_AVX2
inline xsimd::fma3<xsimd::avx2> simd_arch_for(avx2) { return {}; }
#endif
#if QTX_HAS_AVX512_VNNI
inline xsimd::avx512bw simd_arch_for(avx512_vnni) { return {}; }
#endif
// The vector architecture a backend tag runs (inheritance picks the best compiled one).
template <class Tag>
using simd_arch_t = decltype(simd_arch_for(Tag{}));

template <class Tag>
inline constexpr bool has_simd = !std::is_same_v<simd_arch_t<Tag>, no_simd>;

#if QTX_HAS_AVX2 || QTX_HAS_AVX512_VNNI

template <class A>
using vfloat = xsimd::batch<float, A>;
template <class A>
using vint = xsimd::batch<int32_t, A>;
template <class A>
inline constexpr index_t lanes = index_t(vfloat<A>::size);

// ---- 8-bit widening loads and narrowing stores (the per-ISA part) ----

#if QTX_HAS_AVX2
using avx2_arch = xsimd::fma3<xsimd::avx2>;
inline vint<avx2_arch> widen(const uint8_t* p, avx2_arch) {
  return _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
}
inline vint<avx2_arch> widen(const int8_t* p, avx2_arch) {
  return _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
}
// q holds values already inside T's range: keep the low byte of each lane.
// Round to the nearest integer, ties to even (cvtps2dq under the default MXCSR, as round_half_even).
inline vint<avx2_arch> round_to_int(vfloat<avx2_arch> v, avx2_arch) { return _mm256_cvtps_epi32(v); }
inline float reduce_max(vfloat<avx2_arch> v, avx2_arch) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  return _mm_cvtss_f32(_mm_max_ss(m, _mm_movehdup_ps(m)));
}
// out[i] = Σ lanes of rows[i], for the 8 vectors rows[0..8) (xsimd's haddp is correct for AVX).
inline vfloat<avx2_arch> sum_each(const vfloat<avx2_arch>* rows, avx2_arch) { return xsimd::haddp(rows); }
// p · 2^n for integral n (as float) in [−150, 128]: two normal powers of two, one final rounding.
inline vfloat<avx2_arch> scale_by_pow2(vfloat<avx2_arch> p, vfloat<avx2_arch> n, avx2_arch) {
  constexpr int bias = 127, mantissa_bits = 23;
  const __m256i e = _mm256_cvtps_epi32(n);
  const __m256i half = _mm256_srai_epi32(e, 1);
  const auto pow2 = [&](__m256i k) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(k, _mm256_set1_epi32(bias)), mantissa_bits));
  };
  return _mm256_mul_ps(_mm256_mul_ps(p, pow2(half)), pow2(_mm256_sub_epi32(e, half)));
}
template <class T>
void narrow_store(T* p, vint<avx2_arch> q, avx2_arch) {
  const __m256i words = _mm256_packs_epi32(q, q);  // [q0..q3 q0..q3 | q4..q7 q4..q7] as int16
  const __m256i bytes = std::is_signed_v<T> ? _mm256_packs_epi16(words, words) : _mm256_packus_epi16(words, words);
  const __m128i lo = _mm256_castsi256_si128(bytes), hi = _mm256_extracti128_si256(bytes, 1);
  _mm_storel_epi64(reinterpret_cast<__m128i*>(p), _mm_unpacklo_epi32(lo, hi));
}
inline vfloat<avx2_arch> vmax(vfloat<avx2_arch> a, vfloat<avx2_arch> b, avx2_arch) { return xsimd::max(a, b); }
inline vfloat<avx2_arch> vmin(vfloat<avx2_arch> a, vfloat<avx2_arch> b, avx2_arch) { return xsimd::min(a, b); }
inline vfloat<avx2_arch> vto_float(vint<avx2_arch> v, avx2_arch) { return xsimd::to_float(v); }
// 1/x to 2^−12 relative (vrcpps).
inline vfloat<avx2_arch> vreciprocal(vfloat<avx2_arch> v, avx2_arch) { return xsimd::reciprocal(v); }
// Tails of n ≤ 8 32-bit lanes: masked loads and stores (masked-off lanes are never accessed). A copy
// through the stack instead costs a failed store-to-load forward per row (measured with AVX-512's
// masked tails: 24-column softmax rows 96 → 65 µs per 4096 rows).
inline __m256i first_lanes_mask(index_t n, avx2_arch) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(int32_t(n)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
inline vfloat<avx2_arch> load_tail(const float* p, index_t n, avx2_arch a) {
  return _mm256_maskload_ps(p, first_lanes_mask(n, a));
}
inline vint<avx2_arch> load_tail(const int32_t* p, index_t n, avx2_arch a) {
  return _mm256_maskload_epi32(p, first_lanes_mask(n, a));
}
inline void store_tail(float* p, vfloat<avx2_arch> x, index_t n, avx2_arch a) {
  _mm256_maskstore_ps(p, first_lanes_mask(n, a), x);
}
#endif

#if QTX_HAS_AVX512_VNNI
using avx512_arch = xsimd::avx512bw;
inline vint<avx512_arch> widen(const uint8_t* p, avx512_arch) {
  return avx512::cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}
inline vint<avx512_arch> widen(const int8_t* p, avx512_arch) {
  return avx512::cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}
inline vint<avx512_arch> round_to_int(vfloat<avx512_arch> v, avx512_arch) { return avx512::cvtps_epi32(v); }
inline float reduce_max(vfloat<avx512_arch> v, avx512_arch) { return avx512::reduce_max_ps(v); }
// out[i] = Σ lanes of rows[i], for the 16 vectors rows[0..16): a transposing tree of 45 shuffles and
// adds. (xsimd 8.1's AVX-512 haddp returns rows 2–5 and 10–13 permuted, so it is not used.)
inline vfloat<avx512_arch> sum_each(const vfloat<avx512_arch>* rows, avx512_arch) {
  // Pairs of rows → per 128-bit lane [a, b, a, b] partial sums; pairs of those → [a, b, c, d].
  __m512 quads[4];
  for (int k = 0; k < 4; ++k) {
    __m512 pair[2];
    for (int h = 0; h < 2; ++h) {
      const __m512 a = rows[4 * k + 2 * h], b = rows[4 * k + 2 * h + 1];
      pair[h] = _mm512_add_ps(avx512::unpacklo_ps(a, b), avx512::unpackhi_ps(a, b));
    }
    const __m512d lo = avx512::unpacklo_pd(_mm512_castps_pd(pair[0]), _mm512_castps_pd(pair[1]));
    const __m512d hi = avx512::unpackhi_pd(_mm512_castps_pd(pair[0]), _mm512_castps_pd(pair[1]));
    quads[k] = _mm512_add_ps(_mm512_castpd_ps(lo), _mm512_castpd_ps(hi));
  }
  // quads[k] holds rows 4k..4k+3 in each of its four 128-bit lanes: add the lanes, lane k of the result.
  const __m512 w01 = _mm512_add_ps(avx512::shuffle_f32x4<_MM_SHUFFLE(1, 0, 1, 0)>(quads[0], quads[1]),
                                   avx512::shuffle_f32x4<_MM_SHUFFLE(3, 2, 3, 2)>(quads[0], quads[1]));
  const __m512 w23 = _mm512_add_ps(avx512::shuffle_f32x4<_MM_SHUFFLE(1, 0, 1, 0)>(quads[2], quads[3]),
                                   avx512::shuffle_f32x4<_MM_SHUFFLE(3, 2, 3, 2)>(quads[2], quads[3]));
  return _mm512_add_ps(avx512::shuffle_f32x4<_MM_SHUFFLE(2, 0, 2, 0)>(w01, w23),
                       avx512::shuffle_f32x4<_MM_SHUFFLE(3, 1, 3, 1)>(w01, w23));
}
// p · 2^n (vscalefps: exact scaling, subnormal results rounded once, overflow to inf).
inline vfloat<avx512_arch> scale_by_pow2(vfloat<avx512_arch> p, vfloat<avx512_arch> n, avx512_arch) {
  return avx512::scalef_ps(p, n);
}
template <class T>
void narrow_store(T* p, vint<avx512_arch> q, avx512_arch) {
  _mm_storeu_si128(reinterpret_cast<__m128i*>(p), avx512::cvtepi32_epi8(q));
}
inline vfloat<avx512_arch> vmax(vfloat<avx512_arch> a, vfloat<avx512_arch> b, avx512_arch) {
  return avx512::max_ps(a, b);
}
inline vfloat<avx512_arch> vmin(vfloat<avx512_arch> a, vfloat<avx512_arch> b, avx512_arch) {
  return avx512::min_ps(a, b);
}
inline vfloat<avx512_arch> vto_float(vint<avx512_arch> v, avx512_arch) { return avx512::cvtepi32_ps(v); }
// 1/x to 2^−14 relative (vrcp14ps).
inline vfloat<avx512_arch> vreciprocal(vfloat<avx512_arch> v, avx512_arch) { return avx512::rcp14_ps(v); }
// Tails of n ≤ 16 lanes: masked loads and stores (masked-off lanes are never accessed, so nothing
// past the row is read or written).
inline __mmask16 first_lanes_mask(index_t n, avx512_arch) {
  return n >= 16 ? __mmask16(0xFFFF) : n <= 0 ? __mmask16(0) : __mmask16((1u << n) - 1u);
}
inline xsimd::batch_bool<float, avx512_arch> first_lanes(index_t n, avx512_arch a) {
  return xsimd::batch_bool<float, avx512_arch>(first_lanes_mask(n, a));
}
inline vfloat<avx512_arch> load_tail(const float* p, index_t n, avx512_arch a) {
  return _mm512_maskz_loadu_ps(first_lanes_mask(n, a), p);
}
inline vint<avx512_arch> load_tail(const int32_t* p, index_t n, avx512_arch a) {
  return _mm512_maskz_loadu_epi32(first_lanes_mask(n, a), p);
}
template <class T>
  requires(sizeof(T) == 1)
vint<avx512_arch> load_tail(const T* p, index_t n, avx512_arch a) {
  const __m128i bytes = _mm_maskz_loadu_epi8(first_lanes_mask(n, a), p);
  return std::is_signed_v<T> ? avx512::cvtepi8_epi32(bytes) : avx512::cvtepu8_epi32(bytes);
}
inline void store_tail(float* p, vfloat<avx512_arch> x, index_t n, avx512_arch a) {
  _mm512_mask_storeu_ps(p, first_lanes_mask(n, a), x);
}
template <class T>
void narrow_store_tail(T* p, vint<avx512_arch> q, index_t n, avx512_arch a) {
  _mm512_mask_cvtepi32_storeu_epi8(p, first_lanes_mask(n, a), q);
}
#endif

// Which tails an architecture loads and stores with masks (the rest go through a stack copy).
template <class A, class T>
concept masked_load_tail = requires(const T* p, index_t n) { load_tail(p, n, A{}); };
template <class A, class T>
concept masked_store_tail = requires(T* p, vfloat<A> x, index_t n) { store_tail(p, x, n, A{}); };
template <class A, class T>
concept masked_narrow_tail = requires(T* p, vint<A> q, index_t n) { narrow_store_tail(p, q, n, A{}); };

// ---- lane-wise max and min (x86: the second operand where either is NaN), int32 → float ----
// On AVX-512 these avoid xsimd::max, xsimd::min and xsimd::to_float, whose GCC 12 intrinsics warn
// in every includer (cpu/avx512.hpp).

template <class A>
vfloat<A> vmax(vfloat<A> a, vfloat<A> b) {
  return vmax(a, b, A{});
}
template <class A>
vfloat<A> vmin(vfloat<A> a, vfloat<A> b) {
  return vmin(a, b, A{});
}
template <class A>
vfloat<A> vto_float(vint<A> v) {
  return vto_float(v, A{});
}
template <class A>
vfloat<A> vreciprocal(vfloat<A> v) {
  return vreciprocal(v, A{});
}

// ---- loads as float: float, int32 (exact below 2^24, else round to nearest even like float(int)),
//      8-bit integers (exact) ----

template <class A>
vfloat<A> load_float(const float* p) {
  return vfloat<A>::load_unaligned(p);
}
template <class A>
vfloat<A> load_float(const int32_t* p) {
  return vto_float<A>(vint<A>::load_unaligned(p));
}
template <class A>
vint<A> load_int(const int32_t* p) {
  return vint<A>::load_unaligned(p);
}
template <class A, class T>
  requires(sizeof(T) == 1)
vint<A> load_int(const T* p) {
  return widen(p, A{});
}

// The first n ≤ lanes elements of p, zero-filled (rows end anywhere; reading past them is not allowed).
template <class A, class T>
vfloat<A> load_float_tail(const T* p, index_t n) {
  if constexpr (masked_load_tail<A, T>) {
    if constexpr (std::is_same_v<T, float>)
      return load_tail(p, n, A{});
    else
      return vto_float<A>(load_tail(p, n, A{}));
  } else {
    alignas(64) T part[lanes<A>] = {};
    std::memcpy(part, p, std::size_t(n) * sizeof(T));
    return load_float<A>(static_cast<const T*>(part));
  }
}
template <class A, class T>
vint<A> load_int_tail(const T* p, index_t n) {
  if constexpr (masked_load_tail<A, T>) {
    return load_tail(p, n, A{});
  } else {
    alignas(64) T part[lanes<A>] = {};
    std::memcpy(part, p, std::size_t(n) * sizeof(T));
    return load_int<A>(static_cast<const T*>(part));
  }
}

// Lanes [0, n) true (any n: none when n ≤ 0, all when n ≥ lanes).
template <class A>
xsimd::batch_bool<float, A> first_lanes(index_t n) {
  if constexpr (requires { first_lanes(n, A{}); }) return first_lanes(n, A{});
  alignas(64) float index[lanes<A>];
  for (index_t i = 0; i < lanes<A>; ++i) index[i] = float(i);
  return vfloat<A>::load_aligned(index) < vfloat<A>(float(n));
}

// ---- stores: float as is, 8-bit types through quantize_one semantics ----

// Writes vectors of float results to a row of Out: plain stores for float, quantizing stores
// (x → quantize_one<Out>(x, inv_scale, zero_point) on every lane) for 8-bit types.
template <class A, class Out>
struct row_writer {
  static_assert(sizeof(Out) == 1 && element_traits<Out>::is_quantized, "row_writer: Out must be float or 8-bit");
  vfloat<A> inv_scale, lowest, highest;  // bounds of the level before the zero point is added
  vint<A> zero_point;

  explicit row_writer(quant_params p) : row_writer(p.inv_scale(), p.zero_point) {}
  // inv_scale = 1/scale for quantize, the multiplier for requantize (requantize_one semantics).
  row_writer(float inv, int32_t zp)
      : inv_scale(inv),
        lowest(float(element_traits<Out>::min - zp)),
        highest(float(element_traits<Out>::max - zp)),
        zero_point(zp) {}

  vint<A> levels(vfloat<A> x) const {
    vfloat<A> v = x * inv_scale;
    v = xsimd::select(v == v, v, vfloat<A>(0.0f));  // NaN → the zero point
    v = vmin(vmax(v, lowest), highest);
    return round_to_int(v, A{}) + zero_point;
  }
  void operator()(Out* p, vfloat<A> x) const { narrow_store(p, levels(x), A{}); }
  // The first n ≤ lanes elements only: nothing is written past the row.
  void tail(Out* p, vfloat<A> x, index_t n) const {
    if constexpr (masked_narrow_tail<A, Out>) {
      narrow_store_tail(p, levels(x), n, A{});
    } else {
      alignas(64) Out part[lanes<A>];
      (*this)(part, x);
      std::memcpy(p, part, std::size_t(n));
    }
  }
};

template <class A>
struct row_writer<A, float> {
  explicit row_writer(quant_params = {}) {}
  void operator()(float* p, vfloat<A> x) const { x.store_unaligned(p); }
  void tail(float* p, vfloat<A> x, index_t n) const {
    if constexpr (masked_store_tail<A, float>) {
      store_tail(p, x, n, A{});
    } else {
      alignas(64) float part[lanes<A>];
      x.store_aligned(part);
      std::memcpy(p, part, std::size_t(n) * sizeof(float));
    }
  }
};

// Horizontal reductions (once per row).
// Lanes holding NaN may or may not win the max; callers treat NaN rows through the sum instead.
template <class A>
float reduce_max(vfloat<A> v) {
  return reduce_max(v, A{});
}
template <class A>
vfloat<A> sum_each(const vfloat<A>* rows) {
  return sum_each(rows, A{});
}
template <class A>
float reduce_sum(vfloat<A> v) {
  return xsimd::hadd(v);
}

#endif  // QTX_HAS_AVX2 || QTX_HAS_AVX512_VNNI

}  // namespace qtx::cpu::rows

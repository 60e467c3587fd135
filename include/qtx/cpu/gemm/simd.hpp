#pragma once
// The GEMM kernels' vector vocabulary: one struct per ISA with the same static interface, so the
// packing, the microkernel and the epilogue are each written once as a template over it.
//
//   simd512  AVX-512 F/BW/VL/VNNI, 16 int32/float lanes; tails through k-masks (masked-out lanes
//            are neither read nor written, so a tail never touches memory past a row).
//   simd256  AVX2 + FMA, 8 lanes; tails through vmaskmov lane masks (same guarantee) and, for
//            8-bit stores, a stack copy.
//
// Conversions reproduce the scalar definitions of core/types.hpp exactly: float(int32) is
// cvtdq2ps (round to nearest even), round_half_even is cvtps2dq (default MXCSR) with the scalar's
// out-of-range and NaN results patched in, 8-bit stores saturate like saturate_cast.
#include "../../config.hpp"
#include <cstdint>
#include <cstring>

#include "../../core/arch.hpp"
#include "../../core/types.hpp"

#if QTX_HAS_AVX2 || QTX_HAS_AVX512_VNNI
#include <immintrin.h>

#include <xsimd/xsimd.hpp>

#include "../avx512.hpp"
#endif

namespace qtx::QTX_ABI::cpu::gemm_detail {

// Bounds of round_half_even (core/types.hpp): above the largest float below 2^31 → INT32_MAX.
inline constexpr float largest_float_below_2_31 = 2147483520.0f;

#if QTX_HAS_AVX512_VNNI
struct simd512 {
  using vint = __m512i;
  using vfloat = __m512;
  using lanes_mask = __mmask16;  // which lanes of a row segment exist
  using fmask = __mmask16;       // result of a float comparison
  using imask = __mmask16;       // result of an int32 comparison
  using xsimd_arch = xsimd::avx512bw;
  static constexpr int lanes = 16;
  static float element_of(vfloat);  // type maps only (vector types make poor template arguments)
  static int32_t element_of(vint);
  static vfloat vector_of(float);
  static vint vector_of(int32_t);

  static lanes_mask first(index_t n) { return n >= lanes ? lanes_mask(0xFFFF) : lanes_mask((1u << n) - 1u); }

  // ---- int32 ----
  static vint set1(int32_t v) { return _mm512_set1_epi32(v); }
  static vint load(const int32_t* p, lanes_mask m) { return _mm512_maskz_loadu_epi32(m, p); }
  static vint load_full(const int32_t* p) { return _mm512_loadu_si512(p); }
  static vfloat load_full(const float* p) { return _mm512_loadu_ps(p); }
  static void store_full(int32_t* p, vint v) { _mm512_storeu_si512(p, v); }
  static void store_full(float* p, vfloat v) { _mm512_storeu_ps(p, v); }
  static void store(int32_t* p, vint v, lanes_mask m) { _mm512_mask_storeu_epi32(p, m, v); }
  static vint add(vint a, vint b) { return _mm512_add_epi32(a, b); }
  static vint mullo(vint a, vint b) { return _mm512_mullo_epi32(a, b); }  // modulo 2^32
  static vint min(vint a, vint b) { return avx512::min_epi32(a, b); }
  static vint max(vint a, vint b) { return avx512::max_epi32(a, b); }
  static vint select(fmask m, vint if_true, vint if_false) { return _mm512_mask_blend_epi32(m, if_false, if_true); }
  static vint select_i(imask m, vint if_true, vint if_false) { return _mm512_mask_blend_epi32(m, if_false, if_true); }
  static imask greater(vint a, vint b) { return _mm512_cmpgt_epi32_mask(a, b); }
  // 8-bit stores of int32 lanes, saturating like saturate_cast<T>.
  static void store(int8_t* p, vint v, lanes_mask m) { _mm512_mask_cvtsepi32_storeu_epi8(p, m, v); }
  static void store(uint8_t* p, vint v, lanes_mask m) {
    _mm512_mask_cvtusepi32_storeu_epi8(p, m, avx512::max_epi32(v, _mm512_setzero_si512()));
  }

  // ---- float ----
  static vfloat set1(float v) { return _mm512_set1_ps(v); }
  static vfloat load(const float* p, lanes_mask m) { return _mm512_maskz_loadu_ps(m, p); }
  static void store(float* p, vfloat v, lanes_mask m) { _mm512_mask_storeu_ps(p, m, v); }
  static vfloat add(vfloat a, vfloat b) { return _mm512_add_ps(a, b); }
  static vfloat mul(vfloat a, vfloat b) { return _mm512_mul_ps(a, b); }
  static vfloat max(vfloat a, vfloat b) { return avx512::max_ps(a, b); }  // b when either is NaN
  static fmask greater(vfloat a, vfloat b) { return _mm512_cmp_ps_mask(a, b, _CMP_GT_OQ); }
  static fmask is_nan(vfloat a) { return _mm512_cmp_ps_mask(a, a, _CMP_UNORD_Q); }
  static vfloat to_float(vint v) { return avx512::cvtepi32_ps(v); }
  static vint to_int_nearest_even(vfloat v) { return avx512::cvtps_epi32(v); }

  // ---- 64-bit lanes (the exact fixed-point requantization) ----
  static vint mul_even_s32(vint a, vint b) { return avx512::mul_epi32(a, b); }  // even int32 lanes → int64
  static vint odd_to_even(vint a) { return avx512::srli_epi64<32>(a); }
  static vint add64(vint a, vint b) { return _mm512_add_epi64(a, b); }
  static vint sub64(vint a, vint b) { return _mm512_sub_epi64(a, b); }
  static vint and_(vint a, vint b) { return _mm512_and_si512(a, b); }
  static vint shift_left64(vint a, vint count) { return avx512::sllv_epi64(a, count); }
  static vint shift_right_arith64(vint a, vint count) { return avx512::srav_epi64(a, count); }
  static vint clamp64(vint a, int64_t lo, int64_t hi) {
    return avx512::min_epi64(avx512::max_epi64(a, _mm512_set1_epi64(lo)), _mm512_set1_epi64(hi));
  }
  static vint set1_64(int64_t v) { return _mm512_set1_epi64(v); }
  static vint low32_of_64(vint a) { return _mm512_and_si512(a, _mm512_set1_epi64(0xFFFFFFFF)); }
  // int32 lanes from the low halves of two int64 vectors: lane 2i ← even[i], lane 2i+1 ← odd[i].
  static vint interleave_low32(vint even, vint odd) {
    return _mm512_mask_blend_epi32(__mmask16(0xAAAA), even, avx512::slli_epi64<32>(odd));
  }
};
#endif

#if QTX_HAS_AVX2
struct simd256 {
  using vint = __m256i;
  using vfloat = __m256;
  using lanes_mask = __m256i;  // all-ones lanes exist
  using fmask = __m256;
  using imask = __m256i;
  using xsimd_arch = xsimd::fma3<xsimd::avx2>;
  static constexpr int lanes = 8;
  static float element_of(vfloat);
  static int32_t element_of(vint);
  static vfloat vector_of(float);
  static vint vector_of(int32_t);

  static lanes_mask first(index_t n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(int32_t(n)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }
  // Masked loads and stores (vpmaskmovd, vmaskmovps) are slow on AMD Zen 2/3, the stores
  // microcoded: a full mask, the common case, takes the plain load or store.
  static bool is_full(lanes_mask m) { return _mm256_movemask_ps(_mm256_castsi256_ps(m)) == 0xFF; }

  // ---- int32 ----
  static vint set1(int32_t v) { return _mm256_set1_epi32(v); }
  static vint load(const int32_t* p, lanes_mask m) { return is_full(m) ? load_full(p) : _mm256_maskload_epi32(p, m); }
  static vint load_full(const int32_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }
  static vfloat load_full(const float* p) { return _mm256_loadu_ps(p); }
  static void store_full(int32_t* p, vint v) { _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), v); }
  static void store_full(float* p, vfloat v) { _mm256_storeu_ps(p, v); }
  static void store(int32_t* p, vint v, lanes_mask m) {
    if (is_full(m))
      store_full(p, v);
    else
      _mm256_maskstore_epi32(p, m, v);
  }
  static vint add(vint a, vint b) { return _mm256_add_epi32(a, b); }
  static vint mullo(vint a, vint b) { return _mm256_mullo_epi32(a, b); }
  static vint min(vint a, vint b) { return _mm256_min_epi32(a, b); }
  static vint max(vint a, vint b) { return _mm256_max_epi32(a, b); }
  static vint select(fmask m, vint if_true, vint if_false) {
    return _mm256_blendv_epi8(if_false, if_true, _mm256_castps_si256(m));
  }
  static vint select_i(imask m, vint if_true, vint if_false) { return _mm256_blendv_epi8(if_false, if_true, m); }
  static imask greater(vint a, vint b) { return _mm256_cmpgt_epi32(a, b); }
  template <class T>
    requires(sizeof(T) == 1)
  static void store(T* p, vint v, lanes_mask m) {
    const __m256i words = _mm256_packs_epi32(v, v);  // saturating int32 → int16, lanes interleaved by 128
    const __m256i bytes = std::is_signed_v<T> ? _mm256_packs_epi16(words, words) : _mm256_packus_epi16(words, words);
    const __m128i eight = _mm_unpacklo_epi32(_mm256_castsi256_si128(bytes), _mm256_extracti128_si256(bytes, 1));
    const int count = __builtin_popcount(unsigned(_mm256_movemask_ps(_mm256_castsi256_ps(m))));
    if (count == lanes) {
      _mm_storel_epi64(reinterpret_cast<__m128i*>(p), eight);
    } else {
      alignas(16) T part[16];
      _mm_store_si128(reinterpret_cast<__m128i*>(part), eight);
      std::memcpy(p, part, std::size_t(count));
    }
  }

  // ---- float ----
  static vfloat set1(float v) { return _mm256_set1_ps(v); }
  static vfloat load(const float* p, lanes_mask m) { return is_full(m) ? load_full(p) : _mm256_maskload_ps(p, m); }
  static void store(float* p, vfloat v, lanes_mask m) {
    if (is_full(m))
      store_full(p, v);
    else
      _mm256_maskstore_ps(p, m, v);
  }
  static vfloat add(vfloat a, vfloat b) { return _mm256_add_ps(a, b); }
  static vfloat mul(vfloat a, vfloat b) { return _mm256_mul_ps(a, b); }
  static vfloat max(vfloat a, vfloat b) { return _mm256_max_ps(a, b); }
  static fmask greater(vfloat a, vfloat b) { return _mm256_cmp_ps(a, b, _CMP_GT_OQ); }
  static fmask is_nan(vfloat a) { return _mm256_cmp_ps(a, a, _CMP_UNORD_Q); }
  static vfloat to_float(vint v) { return _mm256_cvtepi32_ps(v); }
  static vint to_int_nearest_even(vfloat v) { return _mm256_cvtps_epi32(v); }

  // ---- 64-bit lanes; AVX2 lacks the arithmetic shift and min/max, composed here ----
  static vint mul_even_s32(vint a, vint b) { return _mm256_mul_epi32(a, b); }
  static vint odd_to_even(vint a) { return _mm256_srli_epi64(a, 32); }
  static vint add64(vint a, vint b) { return _mm256_add_epi64(a, b); }
  static vint sub64(vint a, vint b) { return _mm256_sub_epi64(a, b); }
  static vint and_(vint a, vint b) { return _mm256_and_si256(a, b); }
  static vint shift_left64(vint a, vint count) { return _mm256_sllv_epi64(a, count); }
  static vint shift_right_arith64(vint a, vint count) {
    const vint sign = _mm256_cmpgt_epi64(_mm256_setzero_si256(), a);  // all ones when negative
    return _mm256_xor_si256(_mm256_srlv_epi64(_mm256_xor_si256(a, sign), count), sign);
  }
  static vint clamp64(vint a, int64_t lo, int64_t hi) {
    const vint l = _mm256_set1_epi64x(lo), h = _mm256_set1_epi64x(hi);
    a = _mm256_blendv_epi8(a, l, _mm256_cmpgt_epi64(l, a));
    return _mm256_blendv_epi8(a, h, _mm256_cmpgt_epi64(a, h));
  }
  static vint set1_64(int64_t v) { return _mm256_set1_epi64x(v); }
  static vint low32_of_64(vint a) { return _mm256_and_si256(a, _mm256_set1_epi64x(0xFFFFFFFF)); }
  static vint interleave_low32(vint even, vint odd) {
    return _mm256_blend_epi32(even, _mm256_slli_epi64(odd, 32), 0xAA);
  }
};
#endif

// ---- exact conversions, written once over the ISA ----

// round_half_even (core/types.hpp) on every lane: cvtps2dq, except that values above the largest
// float below 2^31 give INT32_MAX and NaN gives 0, as the scalar definition says.
template <class V>
QTX_ALWAYS_INLINE typename V::vint round_half_even(typename V::vfloat x) {
  typename V::vint r = V::to_int_nearest_even(x);
  r = V::select(V::greater(x, V::set1(largest_float_below_2_31)), V::set1(INT32_MAX), r);
  return V::select(V::is_nan(x), V::set1(0), r);
}

// a + zp saturated to int32 for a scalar zp (requantize<>::sat_add): clamp a first so the sum
// cannot wrap.
struct saturating_offset {
  int32_t offset, lowest, highest;
  explicit saturating_offset(int32_t zp)
      : offset(zp), lowest(zp < 0 ? INT32_MIN - zp : INT32_MIN), highest(zp > 0 ? INT32_MAX - zp : INT32_MAX) {}
  template <class V>
  QTX_ALWAYS_INLINE typename V::vint apply(typename V::vint a) const {
    return V::add(V::min(V::max(a, V::set1(lowest)), V::set1(highest)), V::set1(offset));
  }
};

}  // namespace qtx::cpu::gemm_detail

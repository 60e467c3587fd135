#pragma once
// The AVX-512 intrinsics qtx's kernels call whose unmasked GCC 12 forms warn in a user's build.
//
// GCC 12.2's unmasked AVX-512 intrinsics (_mm512_max_ps, _mm512_cvtepi32_ps, ...) pass
// _mm512_undefined_*() as the merge source of an all-lanes mask, and that helper is written
// `__m512 __Y = __Y;`. Inlined into a kernel, every call reports -Wmaybe-uninitialized or
// -Wuninitialized at the intrinsic, in whatever program includes qtx (GCC bug 105593, fixed in
// 12.3 and 13). A pragma cannot hide it: the warning belongs to the caller's inlined code, not to
// the header. The zero-masking form with every lane selected has a defined (zero) merge source
// and compiles to the same single unmasked instruction (GCC and Clang), so qtx calls these
// instead: one wrapper per intrinsic, named after it without the _mm512_ prefix.
#include "../config.hpp"
#include "../core/arch.hpp"

#if QTX_HAS_AVX512_VNNI
#include <immintrin.h>

namespace qtx::QTX_ABI::cpu::avx512 {

inline constexpr __mmask16 all_32bit_lanes = 0xFFFF;
inline constexpr __mmask8 all_64bit_lanes = 0xFF;

// ---- float ----
inline __m512 max_ps(__m512 a, __m512 b) { return _mm512_maskz_max_ps(all_32bit_lanes, a, b); }
inline __m512 min_ps(__m512 a, __m512 b) { return _mm512_maskz_min_ps(all_32bit_lanes, a, b); }
inline __m512 scalef_ps(__m512 a, __m512 b) { return _mm512_maskz_scalef_ps(all_32bit_lanes, a, b); }
inline __m512 rcp14_ps(__m512 a) { return _mm512_maskz_rcp14_ps(all_32bit_lanes, a); }
inline __m512 unpacklo_ps(__m512 a, __m512 b) { return _mm512_maskz_unpacklo_ps(all_32bit_lanes, a, b); }
inline __m512 unpackhi_ps(__m512 a, __m512 b) { return _mm512_maskz_unpackhi_ps(all_32bit_lanes, a, b); }
inline __m512d unpacklo_pd(__m512d a, __m512d b) { return _mm512_maskz_unpacklo_pd(all_64bit_lanes, a, b); }
inline __m512d unpackhi_pd(__m512d a, __m512d b) { return _mm512_maskz_unpackhi_pd(all_64bit_lanes, a, b); }
template <int Imm>
__m512 shuffle_f32x4(__m512 a, __m512 b) {
  return _mm512_maskz_shuffle_f32x4(all_32bit_lanes, a, b, Imm);
}

// The two 256-bit halves (_mm512_castps512_ps256 and _mm512_extractf32x8_ps go through an
// undefined source in GCC 12, or need AVX-512 DQ).
template <int Half>
__m256 extract_half_ps(__m512 v) {
  return _mm256_castpd_ps(_mm512_maskz_extractf64x4_pd(all_64bit_lanes, _mm512_castps_pd(v), Half));
}
// The largest lane (_mm512_reduce_max_ps splits its argument through _mm512_extractf64x4_pd).
inline float reduce_max_ps(__m512 v) {
  const __m256 m8 = _mm256_max_ps(extract_half_ps<0>(v), extract_half_ps<1>(v));
  __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m8), _mm256_extractf128_ps(m8, 1));
  m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
  return _mm_cvtss_f32(_mm_max_ss(m4, _mm_movehdup_ps(m4)));
}

// ---- conversions ----
inline __m512 cvtepi32_ps(__m512i a) { return _mm512_maskz_cvtepi32_ps(all_32bit_lanes, a); }
inline __m512i cvtps_epi32(__m512 a) { return _mm512_maskz_cvtps_epi32(all_32bit_lanes, a); }
inline __m512i cvtepu8_epi32(__m128i a) { return _mm512_maskz_cvtepu8_epi32(all_32bit_lanes, a); }
inline __m512i cvtepi8_epi32(__m128i a) { return _mm512_maskz_cvtepi8_epi32(all_32bit_lanes, a); }
inline __m128i cvtepi32_epi8(__m512i a) { return _mm512_maskz_cvtepi32_epi8(all_32bit_lanes, a); }

// ---- 32-bit integer lanes ----
inline __m512i min_epi32(__m512i a, __m512i b) { return _mm512_maskz_min_epi32(all_32bit_lanes, a, b); }
inline __m512i max_epi32(__m512i a, __m512i b) { return _mm512_maskz_max_epi32(all_32bit_lanes, a, b); }

// ---- 64-bit integer lanes ----
inline __m512i mul_epi32(__m512i a, __m512i b) { return _mm512_maskz_mul_epi32(all_64bit_lanes, a, b); }
inline __m512i min_epi64(__m512i a, __m512i b) { return _mm512_maskz_min_epi64(all_64bit_lanes, a, b); }
inline __m512i max_epi64(__m512i a, __m512i b) { return _mm512_maskz_max_epi64(all_64bit_lanes, a, b); }
inline __m512i sllv_epi64(__m512i a, __m512i count) { return _mm512_maskz_sllv_epi64(all_64bit_lanes, a, count); }
inline __m512i srav_epi64(__m512i a, __m512i count) { return _mm512_maskz_srav_epi64(all_64bit_lanes, a, count); }
template <unsigned Count>
__m512i slli_epi64(__m512i a) {
  return _mm512_maskz_slli_epi64(all_64bit_lanes, a, Count);
}
template <unsigned Count>
__m512i srli_epi64(__m512i a) {
  return _mm512_maskz_srli_epi64(all_64bit_lanes, a, Count);
}

}  // namespace qtx::cpu::avx512
#endif  // QTX_HAS_AVX512_VNNI

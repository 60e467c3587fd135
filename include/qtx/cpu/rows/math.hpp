#pragma once
// Vector exp / erf / sigmoid for the row kernels, with measured error bounds (tests/test_elementwise.cpp
// sweeps every float of the stated ranges, or a dense grid, against std::exp / std::erf):
//
//   exp(x)          ≤ 1 ulp over [−104, 88.72] (subnormal results included), inf above, 0 below
//   exp_nonpositive for x ≤ 0 only (softmax arguments z − max): the same values where exp(x) ≥ 2^−126,
//                   exactly 0 below (a subnormal result costs a microcode assist per vector on
//                   Intel: measured 6× slower softmax rows with masked-out lanes)
//   erf(x)          |error| ≤ 2 ulp for |x| < 1 (series), ≤ 2.5e−7 absolute beyond (A&S 7.1.26)
//   sigmoid(x)      = 1 / (1 + exp(−x)), ≤ 3 ulp
// NaN propagates through all of them. No -ffast-math is assumed.
//
// exp: x = n·ln2 + r with n = round(x·log2 e) and |r| ≤ ln2/2 (Cody–Waite: ln2 split into a short
// high part, so n·ln2_hi is exact), exp(r) = a degree-7 polynomial, and 2^n applied with one final
// rounding (vscalefps on AVX-512, two normal powers of two on AVX2) so subnormal results are right.
#include "simd.hpp"
#include "../../config.hpp"

namespace qtx::QTX_ABI::cpu::rows {

#if QTX_HAS_AVX2 || QTX_HAS_AVX512_VNNI

namespace exp_constants {
inline constexpr float log2e = 1.44269504088896341f;
inline constexpr float ln2_hi = 0.693359375f;  // 9 significant bits: n · ln2_hi is exact for |n| < 2^15
inline constexpr float ln2_lo = -2.12194440e-4f;  // ln2 − ln2_hi
// Adding then subtracting 1.5·2^23 rounds a float of magnitude < 2^22 to an integer (ties to even).
inline constexpr float round_shifter = 12582912.0f;
// exp(r) ≈ 1 + r + r²·(c2 + c3 r + c4 r² + c5 r³ + c6 r⁴) on |r| ≤ ln2/2: a Lawson (minimax)
// fit of relative error 3.1e−9 (0.05 ulp); float rounding in the evaluation dominates.
inline constexpr float c2 = 0.49999993451472626f;
inline constexpr float c3 = 0.16666520687563107f;
inline constexpr float c4 = 0.041668387408546969f;
inline constexpr float c5 = 0.0083687100353082806f;
inline constexpr float c6 = 0.0013814611001066851f;
// exp(x) < 2^−150 (rounds to 0) below this, overflows above max_arg.
inline constexpr float min_arg = -104.0f;
// The smallest float x with exp(x) ≥ 2^−126 (the smallest normal float): ln 2^−126 = −87.336544750…
inline constexpr float normal_min_arg = -87.3365402f;
inline constexpr float max_arg = 89.0f;
}  // namespace exp_constants

// exp(x) for x already clamped to [min_arg, max_arg]: exp(r) · 2^n.
template <class A>
QTX_ALWAYS_INLINE vfloat<A> exp_clamped(vfloat<A> x) {
  using namespace exp_constants;
  const vfloat<A> shifter(round_shifter);
  const vfloat<A> n = xsimd::fma(x, vfloat<A>(log2e), shifter) - shifter;  // round(x·log2 e), ties to even
  vfloat<A> r = xsimd::fma(n, vfloat<A>(-ln2_hi), x);
  r = xsimd::fma(n, vfloat<A>(-ln2_lo), r);
  vfloat<A> p = xsimd::fma(vfloat<A>(c6), r, vfloat<A>(c5));
  p = xsimd::fma(p, r, vfloat<A>(c4));
  p = xsimd::fma(p, r, vfloat<A>(c3));
  p = xsimd::fma(p, r, vfloat<A>(c2));
  p = xsimd::fma(p, r, vfloat<A>(1.0f));
  p = xsimd::fma(p, r, vfloat<A>(1.0f));
  return scale_by_pow2(p, n, A{});
}

// Operand order matters for NaN: x86 max/min return their second operand when either is NaN, so
// max(bound, x) and min(bound, x) pass a NaN x through.
template <class A>
QTX_ALWAYS_INLINE vfloat<A> exp_nonpositive(vfloat<A> x) {
  const vfloat<A> bound(exp_constants::normal_min_arg);
  return xsimd::select(x < bound, vfloat<A>(0.0f), exp_clamped(vmax(bound, x)));  // NaN: not < bound, passes
}

template <class A>
QTX_ALWAYS_INLINE vfloat<A> exp(vfloat<A> x) {
  using namespace exp_constants;
  return exp_clamped(vmin(vfloat<A>(max_arg), vmax(vfloat<A>(min_arg), x)));
}

// 1 / (1 + exp(−x)); exact 0 and 1 far out, NaN propagates.
template <class A>
QTX_ALWAYS_INLINE vfloat<A> sigmoid(vfloat<A> x) {
  return vfloat<A>(1.0f) / (vfloat<A>(1.0f) + rows::exp(-x));
}

namespace erf_constants {
// |x| < series_limit: erf(x) = x·P(x²), P of degree 6 (Lawson fit, relative error 1.2e−9).
inline constexpr float series_limit = 1.0f;
inline constexpr float s0 = 1.1283791657354087f;
inline constexpr float s1 = -0.3761262584836077f;
inline constexpr float s2 = 0.11283585339294415f;
inline constexpr float s3 = -0.02685381840055386f;
inline constexpr float s4 = 0.0051883383581778235f;
inline constexpr float s5 = -0.00080102783065199562f;
inline constexpr float s6 = 7.8541200823804755e-5f;
// |x| ≥ series_limit: Abramowitz & Stegun 7.1.26, erf(x) = 1 − t·(a1 + t·(a2 + t·(a3 + t·(a4 +
// t·a5))))·exp(−x²) with t = 1 / (1 + p·x), |error| ≤ 1.5e−7 (its float evaluation cancels badly
// near 0, hence the series there).
inline constexpr float p = 0.3275911f;
inline constexpr float a1 = 0.254829592f;
inline constexpr float a2 = -0.284496736f;
inline constexpr float a3 = 1.421413741f;
inline constexpr float a4 = -1.453152027f;
inline constexpr float a5 = 1.061405429f;
}  // namespace erf_constants

template <class A>
QTX_ALWAYS_INLINE vfloat<A> erf(vfloat<A> x) {
  using namespace erf_constants;
  const vfloat<A> x2 = x * x;
  vfloat<A> series = xsimd::fma(vfloat<A>(s6), x2, vfloat<A>(s5));
  series = xsimd::fma(series, x2, vfloat<A>(s4));
  series = xsimd::fma(series, x2, vfloat<A>(s3));
  series = xsimd::fma(series, x2, vfloat<A>(s2));
  series = xsimd::fma(series, x2, vfloat<A>(s1));
  series = xsimd::fma(series, x2, vfloat<A>(s0));
  series = series * x;

  const vfloat<A> ax = xsimd::abs(x);
  // t = 1 / d, d in [1, 1 + 16p]: the approximate reciprocal (rel. error 2^−14 on AVX-512, 2^−12
  // on AVX2) and one Newton step (error squared), instead of a division: the divider's throughput
  // (one 512-bit division per ~10 cycles) bounded the GEMM's GELU epilogue.
  // |x| is capped (erf = 1 in float beyond 3.92) so that d stays finite for x = ±∞; NaN passes.
  const vfloat<A> d = xsimd::fma(vfloat<A>(p), vmin(vfloat<A>(16.0f), ax), vfloat<A>(1.0f));
  const vfloat<A> r0 = vreciprocal<A>(d);
  const vfloat<A> t = r0 * xsimd::fnma(d, r0, vfloat<A>(2.0f));
  vfloat<A> poly = xsimd::fma(vfloat<A>(a5), t, vfloat<A>(a4));
  poly = xsimd::fma(poly, t, vfloat<A>(a3));
  poly = xsimd::fma(poly, t, vfloat<A>(a2));
  poly = xsimd::fma(poly, t, vfloat<A>(a1));
  poly = poly * t;
  const vfloat<A> tail = xsimd::fnma(poly, exp_nonpositive(-x2), vfloat<A>(1.0f));  // 1 − poly·e^(−x²)
  return xsimd::select(ax < vfloat<A>(series_limit), series, xsimd::copysign(tail, x));
}

#endif  // QTX_HAS_AVX2 || QTX_HAS_AVX512_VNNI

}  // namespace qtx::cpu::rows

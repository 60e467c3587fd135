#pragma once
// Vectorized element-wise row operations, each the formula of ref/elementwise.hpp on whole vectors:
//   gelu (erf form)   y = 0.5·x·(1 + erf(x/√2))                 erf: cpu/rows/math.hpp
//   gelu (tanh form)  y = x·sigmoid(2u), u = √(2/π)(x + 0.044715x³)   (= 0.5·x·(1 + tanh u), without
//                     the cancellation of 1 + tanh u for negative x)
//   quantize          q = quantize_one(x)            bit-exact (rounding ties to even, NaN → zp)
//   dequantize        x = scale·(q − zp)             bit-exact
//   requantize        q = quantize_one(float(acc), multiplier, zp)   bit-exact (float multiplier;
//                     the fixed-point form runs the scalar reference on every backend)
//   quantize_dynamic  each row's (or the tensor's) finite range → asymmetric uint8 params →
//                     quantize_one; the row is still in L1 when it is quantized   bit-exact
#include <algorithm>
#include <array>
#include <limits>
#include <span>

#include "../../quant/dynamic.hpp"
#include "../../ref/elementwise.hpp"
#include "common.hpp"
#include "math.hpp"
#include "../../config.hpp"

namespace qtx::QTX_ABI::cpu::rows {

#if QTX_HAS_AVX2 || QTX_HAS_AVX512_VNNI

// Loads of a row's elements as the vector type the operation works on: float lanes for float,
// int32 lanes for every integer type.
template <class A>
vfloat<A> load_lanes(const float* p) {
  return vfloat<A>::load_unaligned(p);
}
template <class A, class T>
  requires std::is_integral_v<T>
vint<A> load_lanes(const T* p) {
  return load_int<A>(p);
}
template <class A, class T>
auto load_lanes_tail(const T* p, index_t n) {
  if constexpr (std::is_same_v<T, float>)
    return load_float_tail<A>(p, n);
  else
    return load_int_tail<A>(p, n);
}

// y[0, n) = write(f(x[0, n))): one row.
template <class A, class In, class Out, class F>
void map_row(const In* x, Out* y, index_t n, const row_writer<A, Out>& write, F&& f) {
  constexpr index_t W = lanes<A>;
  index_t j = 0;
  for (; j + W <= n; j += W) write(y + j, f(load_lanes<A>(x + j)));
  if (j < n) write.tail(y + j, f(load_lanes_tail<A>(x + j, n - j)), n - j);
}

// y(r, :) = write(f(x(r, :))) over all rows, threads over row blocks.
template <class A, class In, class Out, class F>
void map_rows(matrix_view<const In> x, matrix_view<Out> y, const row_writer<A, Out>& write, F&& f) {
  for_row_blocks(x.rows, row_block_count(x.rows, x.cols), [&](index_t, index_t first, index_t end) {
    for (index_t i = first; i < end; ++i) map_row<A>(x.row(i), y.row(i), x.cols, write, f);
  });
}

// The finite range of n floats (quant/dynamic.hpp's rule): non-finite lanes count as 0, which the
// range contains anyway, so min / max never see a NaN.
// Four independent min/max chains: with one, every vector waits for the previous min/max (latency
// 4 cycles against a throughput of two a cycle), which showed on MiniLM's 1536-column FFN rows.
template <class A>
finite_range row_range(const float* x, index_t n) {
  constexpr index_t W = lanes<A>, chains = 4;
  const vfloat<A> infinity(std::numeric_limits<float>::infinity()), zero(0.0f);
  vfloat<A> lo[chains] = {zero, zero, zero, zero}, hi[chains] = {zero, zero, zero, zero};
  auto widen = [&](index_t c, vfloat<A> v) {
    v = xsimd::select(xsimd::abs(v) < infinity, v, zero);
    lo[c] = vmin(lo[c], v);
    hi[c] = vmax(hi[c], v);
  };
  index_t j = 0;
  for (; j + chains * W <= n; j += chains * W)
    for (index_t c = 0; c < chains; ++c) widen(c, vfloat<A>::load_unaligned(x + j + c * W));
  for (; j + W <= n; j += W) widen(0, vfloat<A>::load_unaligned(x + j));
  if (j < n) widen(1, load_float_tail<A>(x + j, n - j));
  const vfloat<A> low = vmin(vmin(lo[0], lo[1]), vmin(lo[2], lo[3]));
  const vfloat<A> high = vmax(vmax(hi[0], hi[1]), vmax(hi[2], hi[3]));
  return {-reduce_max<A>(-low), reduce_max<A>(high)};
}

namespace gelu_constants {
inline constexpr float inv_sqrt2 = 0.70710678118654752f;
inline constexpr float sqrt_2_over_pi = 0.79788456080286536f;
inline constexpr float cubic = 0.044715f;
}  // namespace gelu_constants

template <class A>
QTX_ALWAYS_INLINE vfloat<A> gelu_erf(vfloat<A> v) {
  return (vfloat<A>(0.5f) * v) * (vfloat<A>(1.0f) + rows::erf(v * vfloat<A>(gelu_constants::inv_sqrt2)));
}
template <class A>
QTX_ALWAYS_INLINE vfloat<A> gelu_tanh(vfloat<A> v) {
  using namespace gelu_constants;
  const vfloat<A> inner = vfloat<A>(sqrt_2_over_pi) * xsimd::fma(vfloat<A>(cubic) * v, v * v, v);
  return v * rows::sigmoid(inner + inner);
}

#endif  // QTX_HAS_AVX2 || QTX_HAS_AVX512_VNNI

// Backend entries (arguments checked by ops/elementwise.hpp). Strided views: reference path.
template <class Arch>
void gelu(Arch, matrix_view<const float> x, matrix_view<float> y, gelu_approximation form) {
#if QTX_HAS_AVX2 || QTX_HAS_AVX512_VNNI  // the vector path only exists where it compiles
  if constexpr (has_simd<Arch>) {
    using A = simd_arch_t<Arch>;
    if (x.row_contiguous() && y.row_contiguous()) {
      if (form == gelu_approximation::none)
        map_rows<A>(x, y, row_writer<A, float>{}, [](vfloat<A> v) { return gelu_erf<A>(v); });
      else
        map_rows<A>(x, y, row_writer<A, float>{}, [](vfloat<A> v) { return gelu_tanh<A>(v); });
      return;
    }
  }
#endif
  ref::gelu(x, y, form);
}

template <class Arch, class T>
void quantize(Arch, matrix_view<const float> x, matrix_view<T> q, quant_params p) {
#if QTX_HAS_AVX2 || QTX_HAS_AVX512_VNNI  // the vector path only exists where it compiles
  if constexpr (has_simd<Arch>) {
    using A = simd_arch_t<Arch>;
    if (x.row_contiguous() && q.row_contiguous()) {
      map_rows<A>(x, q, row_writer<A, T>(p), [](vfloat<A> v) { return v; });
      return;
    }
  }
#endif
  ref::quantize(x, q, p);
}

// Arguments checked by ops::quantize_dynamic (scaling is one of the dynamic modes).
template <class Arch>
void quantize_dynamic(Arch, matrix_view<const float> x, matrix_view<uint8_t> q, std::span<float> scales,
                      std::span<int32_t> zero_points, activation_scaling scaling) {
#if QTX_HAS_AVX2 || QTX_HAS_AVX512_VNNI  // the vector path only exists where it compiles
  if constexpr (has_simd<Arch>) {
    using A = simd_arch_t<Arch>;
    if (x.row_contiguous() && q.row_contiguous()) {
      const index_t blocks = row_block_count(x.rows, x.cols);
      const auto store = [&](index_t r, quant_params p) {
        scales[r] = p.scale;
        zero_points[r] = p.zero_point;
        map_row<A>(x.row(r), q.row(r), x.cols, row_writer<A, uint8_t>(p), [](vfloat<A> v) { return v; });
      };
      if (scaling == activation_scaling::dynamic_token) {
        for_row_blocks(x.rows, blocks, [&](index_t, index_t first, index_t end) {
          for (index_t r = first; r < end; ++r) store(r, row_range<A>(x.row(r), x.cols).params());
        });
        return;
      }
      // One partial range per row block, on the stack (a forward pass allocates nothing).
      constexpr index_t max_blocks = 256;
      std::array<finite_range, max_blocks> partial{};
      for_row_blocks(x.rows, std::min(blocks, max_blocks), [&](index_t b, index_t first, index_t end) {
        for (index_t r = first; r < end; ++r) partial[b].add(row_range<A>(x.row(r), x.cols));
      });
      finite_range tensor;
      for (const auto& r : partial) tensor.add(r);
      const quant_params p = tensor.params();
      for_row_blocks(x.rows, blocks, [&](index_t, index_t first, index_t end) {
        for (index_t r = first; r < end; ++r) store(r, p);
      });
      return;
    }
  }
#endif
  ref::quantize_dynamic(x, q, scales, zero_points, scaling);
}

template <class Arch, class T>
void dequantize(Arch, matrix_view<const T> q, matrix_view<float> x, quant_params p) {
#if QTX_HAS_AVX2 || QTX_HAS_AVX512_VNNI  // the vector path only exists where it compiles
  if constexpr (has_simd<Arch>) {
    using A = simd_arch_t<Arch>;
    if (x.row_contiguous() && q.row_contiguous()) {
      const vint<A> zero_point(p.zero_point);
      const vfloat<A> scale(p.scale);
      map_rows<A>(q, x, row_writer<A, float>{}, [&](vint<A> v) { return scale * vto_float<A>(v - zero_point); });
      return;
    }
  }
#endif
  ref::dequantize(q, x, p);
}

template <class Arch, class T>
void requantize(Arch, matrix_view<const int32_t> acc, matrix_view<T> q, float multiplier, int32_t zero_point) {
#if QTX_HAS_AVX2 || QTX_HAS_AVX512_VNNI  // the vector path only exists where it compiles
  if constexpr (has_simd<Arch>) {
    using A = simd_arch_t<Arch>;
    if (acc.row_contiguous() && q.row_contiguous()) {
      map_rows<A>(acc, q, row_writer<A, T>(multiplier, zero_point), [](vint<A> v) { return vto_float<A>(v); });
      return;
    }
  }
#endif
  ref::requantize(acc, q, multiplier, zero_point);
}

template <class Arch, class T>
void requantize(Arch, matrix_view<const int32_t> acc, matrix_view<T> q, fixed_point_multiplier multiplier,
                int32_t zero_point) {
  ref::requantize(acc, q, multiplier, zero_point);
}

}  // namespace qtx::cpu::rows

#pragma once
// Vectorized (clipped) softmax over rows: y_j = clip(e_j · r + γ, 0, 1), e_j = exp(z_j − max),
// r = (ζ − γ) / Σ e, z_j = input_scale · x_j + mask_j — the formula and defined cases of
// ref/softmax.hpp, which the scalar backend runs as is.
//
// Three passes over a row that stays in L1/L2: (1) max of z, (2) e_j = exp(z_j − max) stored
// (into y itself for float output, else a per-thread scratch row) while summing, (3) scale, clip
// and store — quantizing to 8 bits in the same pass when Out is uint8/int8. The clip applies to
// the normalised probability, so the sum must be known before any output: the row is read twice
// and the exponentials are kept, not recomputed. Rows are split over threads in contiguous blocks.
#include <algorithm>
#include <limits>
#include <utility>

#include "../../core/buffer.hpp"
#include "../../ref/softmax.hpp"
#include "common.hpp"
#include "math.hpp"
#include "../../config.hpp"

namespace qtx::QTX_ABI::cpu::rows {

#if QTX_HAS_AVX2 || QTX_HAS_AVX512_VNNI

// Independent accumulators per pass: enough to cover the latency of add/max.
inline constexpr index_t softmax_unroll = 4;

// z_j = input_scale · x_j (+ mask_j) for one row, a vector at a time.
template <class A, class In, bool HasMask>
struct score_row {
  const In* x;
  const float* mask;
  vfloat<A> input_scale;

  QTX_ALWAYS_INLINE vfloat<A> combine(vfloat<A> xv, vfloat<A> mv) const {
    if constexpr (HasMask)
      return xsimd::fma(input_scale, xv, mv);
    else
      return input_scale * xv;  // = fma(input_scale, x, 0) of the reference
  }
  QTX_ALWAYS_INLINE vfloat<A> at(index_t j) const {
    return combine(load_float<A>(x + j), HasMask ? load_float<A>(mask + j) : vfloat<A>(0.0f));
  }
  QTX_ALWAYS_INLINE vfloat<A> tail(index_t j, index_t n) const {
    return combine(load_float_tail<A>(x + j, n), HasMask ? load_float_tail<A>(mask + j, n) : vfloat<A>(0.0f));
  }
};

template <class A, class In, bool HasMask>
float row_max(const score_row<A, In, HasMask>& z, index_t n) {
  constexpr index_t W = lanes<A>;
  const vfloat<A> neg_inf(-std::numeric_limits<float>::infinity());
  vfloat<A> m[softmax_unroll] = {neg_inf, neg_inf, neg_inf, neg_inf};
  index_t j = 0;
  for (; j + softmax_unroll * W <= n; j += softmax_unroll * W)
    for (index_t u = 0; u < softmax_unroll; ++u) m[u] = vmax(m[u], z.at(j + u * W));
  for (; j + W <= n; j += W) m[0] = vmax(m[0], z.at(j));
  if (j < n) m[1] = vmax(m[1], xsimd::select(first_lanes<A>(n - j), z.tail(j, n - j), neg_inf));
  return reduce_max<A>(vmax(vmax(m[0], m[1]), vmax(m[2], m[3])));
}

// e_j = exp(z_j − shift) into e[0, n); returns Σ e_j.
template <class A, class In, bool HasMask>
float exp_and_sum(const score_row<A, In, HasMask>& z, float shift_value, float* e, index_t n) {
  constexpr index_t W = lanes<A>;
  const vfloat<A> shift(shift_value);
  vfloat<A> s[softmax_unroll] = {vfloat<A>(0.0f), vfloat<A>(0.0f), vfloat<A>(0.0f), vfloat<A>(0.0f)};
  index_t j = 0;
  for (; j + softmax_unroll * W <= n; j += softmax_unroll * W)
    for (index_t u = 0; u < softmax_unroll; ++u) {
      const vfloat<A> v = exp_nonpositive(z.at(j + u * W) - shift);
      v.store_unaligned(e + j + u * W);
      s[u] += v;
    }
  for (; j + W <= n; j += W) {
    const vfloat<A> v = exp_nonpositive(z.at(j) - shift);
    v.store_unaligned(e + j);
    s[0] += v;
  }
  if (j < n) {
    const vfloat<A> v = xsimd::select(first_lanes<A>(n - j), exp_nonpositive(z.tail(j, n - j) - shift), vfloat<A>(0.0f));
    row_writer<A, float>{}.tail(e + j, v, n - j);
    s[1] += v;
  }
  return reduce_sum<A>((s[0] + s[1]) + (s[2] + s[3]));
}

// y_j = clip(e_j · r + γ, 0, 1) for j < visible, the value of a zero probability after.
template <class A, class Out>
void scale_clip_store(const float* e, index_t visible, Out* y, index_t cols, float r_value, float gamma_value,
                      const row_writer<A, Out>& write) {
  constexpr index_t W = lanes<A>;
  const vfloat<A> r(r_value), gamma(gamma_value), zero(0.0f), one(1.0f);
  // max(0, v) then min(1, ·): a NaN v passes through both (x86 returns the second operand).
  const auto clip = [&](vfloat<A> ev) { return vmin(one, vmax(zero, xsimd::fma(ev, r, gamma))); };
  index_t j = 0;
  for (; j + W <= visible; j += W) write(y + j, clip(vfloat<A>::load_unaligned(e + j)));
  if (j < visible) write.tail(y + j, clip(load_float_tail<A>(e + j, visible - j)), visible - j);
  for (j = visible; j + W <= cols; j += W) write(y + j, zero);
  if (j < cols) write.tail(y + j, zero, cols - j);
}

// Rows of at most short_row_vectors vectors (128 floats on AVX-512, 64 on AVX2; attention's score
// rows at T ≤ 128): one pass over memory instead of three, z computed once and held in registers
// through the max, the exponentials and the sum (the same float operations as the long-row path,
// tree-ordered sums). A row is a chain of dependent reductions (max → exp → sum → scale), so
// several rows run interleaved to keep the vector pipes busy. Measured against the three-pass kernel
// (bench_rows, 4096 × 128, AVX-512, Intel Xeon): float 222 → 187 µs, int32 → uint8 337 → 248 µs.
inline constexpr int short_row_vectors = 8;

// Rows interleaved for rows of V vectors: as many as half the vector registers hold (the other half
// is the exponential's constants and temporaries), at most 4.
template <class A, int V>
inline constexpr int short_rows_interleaved = std::clamp((lanes<A> == 16 ? 16 : 8) / V, 1, 4);

// op over v[Lo, Hi) as a balanced tree (log-depth latency instead of a serial chain).
template <int Lo, int Hi, class A, class Op>
QTX_ALWAYS_INLINE vfloat<A> tree_reduce(const vfloat<A>* v, Op op) {
  if constexpr (Hi - Lo == 1) {
    return v[Lo];
  } else {
    constexpr int mid = (Lo + Hi) / 2;
    return op(tree_reduce<Lo, mid, A>(v, op), tree_reduce<mid, Hi, A>(v, op));
  }
}

// R rows of V vectors each (V = ⌈cols / lanes⌉), branch-free: vector u of a row holds its columns
// [uW, uW + W) ∩ [0, visible) — lane counts, so masked loads and stores where the ISA has them.
template <int R, int V, class A, class In, bool HasMask, class Out>
QTX_ALWAYS_INLINE void softmax_short_rows_at(const score_row<A, In, HasMask>* z, const index_t* visible, Out* const* y,
                                             index_t cols, const softmax_params& p,
                                             const row_writer<A, Out>& write) {
  constexpr index_t W = lanes<A>;
  const vfloat<A> neg_inf(-std::numeric_limits<float>::infinity()), zero(0.0f), one(1.0f), gamma(p.gamma);
  const auto vmax_op = [](vfloat<A> a, vfloat<A> b) QTX_ALWAYS_INLINE_LAMBDA { return vmax(a, b); };
  const auto add_op = [](vfloat<A> a, vfloat<A> b) QTX_ALWAYS_INLINE_LAMBDA { return a + b; };
  vfloat<A> v[R][V], shift[R], scale[R];
  QTX_UNROLL
  for (int r = 0; r < R; ++r) {
    QTX_UNROLL
    for (int u = 0; u < V; ++u) {
      const index_t n = std::clamp<index_t>(visible[r] - u * W, 0, W);
      v[r][u] = xsimd::select(first_lanes<A>(n), z[r].tail(u * W, n), neg_inf);
    }
    const float m = reduce_max<A>(tree_reduce<0, V, A>(v[r], vmax_op));
    shift[r] = vfloat<A>(m == -std::numeric_limits<float>::infinity() ? 0.0f : m);
  }
  QTX_UNROLL
  for (int r = 0; r < R; ++r) {
    QTX_UNROLL
    for (int u = 0; u < V; ++u) v[r][u] = exp_nonpositive(v[r][u] - shift[r]);  // −∞ outside the row: 0
    const float total = reduce_sum<A>(tree_reduce<0, V, A>(v[r], add_op));
    scale[r] = vfloat<A>(total == 0.0f ? 0.0f : (p.zeta - p.gamma) * (1.0f / total));
  }
  QTX_UNROLL
  for (int r = 0; r < R; ++r) {
    QTX_UNROLL
    for (int u = 0; u < V; ++u) {
      const vfloat<A> clipped = vmin(one, vmax(zero, xsimd::fma(v[r][u], scale[r], gamma)));  // as scale_clip_store
      write.tail(y[r] + u * W, xsimd::select(first_lanes<A>(visible[r] - u * W), clipped, zero),
                 std::min<index_t>(cols - u * W, W));
    }
  }
}

template <class A, bool HasMask, int V, class In, class Out>
void softmax_short_rows(matrix_view<const In> x, matrix_view<Out> y, const softmax_params& p,
                        matrix_view<const float> mask, quant_params y_params) {
  constexpr int R = short_rows_interleaved<A, V>;
  const row_writer<A, Out> write(y_params);
  const vfloat<A> input_scale(p.input_scale);
  auto row = [&](index_t i) {
    return score_row<A, In, HasMask>{x.row(i), HasMask ? mask.row(mask.rows == 1 ? 0 : i) : nullptr, input_scale};
  };
  for_row_blocks(x.rows, row_block_count(x.rows, x.cols), [&](index_t, index_t first, index_t end) {
    index_t i = first;
    for (; i + R <= end; i += R) {
      score_row<A, In, HasMask> z[R];
      index_t visible[R];
      Out* out[R];
      for (int r = 0; r < R; ++r) {
        z[r] = row(i + r);
        visible[r] = softmax_visible_columns(p, i + r, x.cols);
        out[r] = y.row(i + r);
      }
      softmax_short_rows_at<R, V>(z, visible, out, x.cols, p, write);
    }
    for (; i < end; ++i) {
      const score_row<A, In, HasMask> z = row(i);
      const index_t visible = softmax_visible_columns(p, i, x.cols);
      Out* out = y.row(i);
      softmax_short_rows_at<1, V>(&z, &visible, &out, x.cols, p, write);
    }
  });
}

template <class A, bool HasMask, class In, class Out>
void softmax_rows(matrix_view<const In> x, matrix_view<Out> y, const softmax_params& p,
                  matrix_view<const float> mask, quant_params y_params) {
  constexpr index_t W = lanes<A>;
  if (x.cols <= short_row_vectors * W) {
    const index_t vectors = (x.cols + W - 1) / W;
    [&]<int... V>(std::integer_sequence<int, V...>) {
      ((vectors == V + 1 ? softmax_short_rows<A, HasMask, V + 1>(x, y, p, mask, y_params) : void()), ...);
    }(std::make_integer_sequence<int, short_row_vectors>{});
    return;
  }
  const index_t blocks = row_block_count(x.rows, x.cols);
  // Float output keeps the exponentials in y itself; 8-bit output needs a float row per block, in
  // memory the calling thread keeps for its next call (no allocation once warm).
  static thread_local aligned_buffer<float> scratch;
  if constexpr (!std::is_same_v<Out, float>) scratch.reserve(blocks * x.cols);
  const row_writer<A, Out> write(y_params);
  const float neg_inf = -std::numeric_limits<float>::infinity();
  for_row_blocks(x.rows, blocks, [&](index_t block, index_t first, index_t end) {
    for (index_t i = first; i < end; ++i) {
      const index_t visible = softmax_visible_columns(p, i, x.cols);
      const score_row<A, In, HasMask> z{x.row(i), HasMask ? mask.row(mask.rows == 1 ? 0 : i) : nullptr,
                                         vfloat<A>(p.input_scale)};
      float* e;
      if constexpr (std::is_same_v<Out, float>)
        e = y.row(i);
      else
        e = scratch.data() + block * x.cols;
      const float m = row_max(z, visible);
      const float sum = exp_and_sum(z, m == neg_inf ? 0.0f : m, e, visible);
      const float r = sum == 0.0f ? 0.0f : (p.zeta - p.gamma) * (1.0f / sum);
      scale_clip_store(e, visible, y.row(i), x.cols, r, p.gamma, write);
    }
  });
}

#endif  // QTX_HAS_AVX2 || QTX_HAS_AVX512_VNNI

// Backend entry (arguments checked by ops::softmax). Views with strided columns take the
// reference path on every backend.
template <class Arch, class In, class Out>
void softmax(Arch, matrix_view<const In> x, matrix_view<Out> y, const softmax_params& p,
             matrix_view<const float> mask, quant_params y_params) {
  if constexpr (has_simd<Arch>) {
    using A = simd_arch_t<Arch>;
    if (x.row_contiguous() && y.row_contiguous() && mask.row_contiguous()) {
      if (mask.data)
        softmax_rows<A, true>(x, y, p, mask, y_params);
      else
        softmax_rows<A, false>(x, y, p, mask, y_params);
      return;
    }
  }
  ref::softmax(x, y, p, mask, y_params);
}

}  // namespace qtx::cpu::rows

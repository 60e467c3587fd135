#pragma once
// Register-tile microkernel:  C[MR × NR] = epilogue(init + Σ_g A_g[MR × kg] · B_g[kg × NR]).
//
// A "k-group" is the kg consecutive k that one 32-bit lane holds: 4 × u8/s8 for vpdpbusd,
// 2 × int16 for vpmaddwd, 1 × float for FMA. Every step broadcasts one 32-bit group of A per row
// and multiplies it into NV vectors of B, so one template serves all three arithmetics:
//
//   dot_u8s8_vnni   vpdpbusd: u8·s8 products summed in fours straight into int32, on zmm
//                   (AVX-512 VNNI) or ymm (AVX-VNNI).
//   dot_u8s8_madd16 AVX2 has no VNNI, and vpmaddubsw saturates int16 (255·127·2 > 32767), so A
//                   and B are packed *widened to int16* and vpmaddwd sums pairs into int32: exact
//                   for every operand (|2·255·128| < 2^31), at half vpdpbusd's work per op.
//                   Exact vpmaddubsw schemes for every B need a second multiply per pair (a pair
//                   sum of two u8·s8 products needs 17 bits): splitting A into its low 7 bits and
//                   high bit peaks at 146 G ops/s on an Intel Xeon core against 186 for this one and
//                   240 for the saturating vpmaddubsw+vpmaddwd (bench_gemm's BM_peak_int8_* probes).
//   dot_u8s8_maddubs vpmaddubsw + vpmaddwd by ones + vpaddd on u8 A and s8 B as they are. A pair
//                   a₀b₀ + a₁b₁ with a ≤ 255 cannot leave int16 when |b₀| + |b₁| ≤ 128, so for a B
//                   whose every k pair satisfies that (7-bit weights, ONNX Runtime's "reduce_range",
//                   or any small-range B) it is exact; packing checks B and picks it (packing.hpp).
//   dot_f32_fma     vfmadd231ps.
//
// The accumulators start at the zero-point correction (int) or 0 (float), so the loop is pure
// multiply-add; the epilogue then runs on each finished vector of the tile and stores it (epilogue.hpp).
#include <cstdint>
#include <cstring>
#include <utility>

#include "epilogue.hpp"
#include "../../config.hpp"

namespace qtx::QTX_ABI::cpu::gemm_detail {

// vpdpbusd on the vector width V: AVX-512 VNNI on zmm, AVX-VNNI (VEX) on ymm.
#if QTX_HAS_AVX512_VNNI
inline __m512i dpbusd(__m512i c, __m512i a, __m512i b) { return _mm512_dpbusd_epi32(c, a, b); }
#endif
#if QTX_HAS_AVX_VNNI
inline __m256i dpbusd(__m256i c, __m256i a, __m256i b) { return _mm256_dpbusd_avx_epi32(c, a, b); }
#endif

template <class V>
struct dot_u8s8_vnni {
  using simd = V;
  using a_elem = uint8_t;
  using b_elem = int8_t;
  using acc = typename V::vint;
  using acc_elem = int32_t;
  static constexpr int k_group = 4;
  static acc broadcast(const a_elem* p) {
    int32_t group;
    std::memcpy(&group, p, sizeof group);
    return V::set1(group);
  }
  static acc load_b(const b_elem* p) { return V::load_full(reinterpret_cast<const int32_t*>(p)); }
  static acc madd(acc c, acc a, acc b) { return dpbusd(c, a, b); }
};

#if QTX_HAS_AVX512_VNNI
struct dot_f32_fma512 {
  using simd = simd512;
  using a_elem = float;
  using b_elem = float;
  using acc = __m512;
  using acc_elem = float;
  static constexpr int k_group = 1;
  static __m512 broadcast(const a_elem* p) { return _mm512_set1_ps(*p); }
  static __m512 load_b(const b_elem* p) { return _mm512_load_ps(p); }
  static acc madd(acc c, __m512 a, __m512 b) { return _mm512_fmadd_ps(a, b, c); }
};
#endif

#if QTX_HAS_AVX2
// The AVX2 integer arithmetics share all but the multiply: int32 accumulators in ymm, one 32-bit
// k-group of A broadcast per row, aligned loads of B.
template <class AElem, class BElem, int KGroup>
struct avx2_integer_dot {
  using simd = simd256;
  using a_elem = AElem;
  using b_elem = BElem;
  using acc = __m256i;
  using acc_elem = int32_t;
  static constexpr int k_group = KGroup;
  static __m256i broadcast(const a_elem* p) {
    int32_t group;
    std::memcpy(&group, p, sizeof group);
    return _mm256_set1_epi32(group);
  }
  static __m256i load_b(const b_elem* p) { return _mm256_load_si256(reinterpret_cast<const __m256i*>(p)); }
};

struct dot_u8s8_madd16 : avx2_integer_dot<int16_t, int16_t, 2> {
  static acc madd(acc c, __m256i a, __m256i b) { return _mm256_add_epi32(c, _mm256_madd_epi16(a, b)); }
};

struct dot_u8s8_maddubs : avx2_integer_dot<uint8_t, int8_t, 4> {
  static acc madd(acc c, __m256i a, __m256i b) {
    return _mm256_add_epi32(c, _mm256_madd_epi16(_mm256_maddubs_epi16(a, b), _mm256_set1_epi16(1)));
  }
};

struct dot_f32_fma256 {
  using simd = simd256;
  using a_elem = float;
  using b_elem = float;
  using acc = __m256;
  using acc_elem = float;
  static constexpr int k_group = 1;
  static __m256 broadcast(const a_elem* p) { return _mm256_set1_ps(*p); }
  static __m256 load_b(const b_elem* p) { return _mm256_load_ps(p); }
  static acc madd(acc c, __m256 a, __m256 b) { return _mm256_fmadd_ps(a, b, c); }
};
#endif

// Calls f(std::integral_constant<int, i>{}) for i = 0..N−1, fully unrolled: the accumulator tile
// is an array indexed only by constants, so it lives in registers.
// The lambdas are forced inline too: at -O2 GCC would otherwise call them and keep the tile in
// memory (measured: half the speed).
#if defined(__GNUC__) || defined(__clang__)
#define QTX_INLINE_LAMBDA __attribute__((always_inline))
#else
#define QTX_INLINE_LAMBDA
#endif
template <int N, class F>
QTX_ALWAYS_INLINE void unrolled(F&& f) {
  [&]<int... I>(std::integer_sequence<int, I...>) QTX_INLINE_LAMBDA { (f(std::integral_constant<int, I>{}), ...); }(
      std::make_integer_sequence<int, N>{});
}

// What a tile's sums start from and where they are left: integer accumulators start at
// row_offsets[i] + column_sums[j]·(−za) (NR readable column sums: B is padded), float ones at 0, or,
// for every K block after the first, at the sums the previous block left in `sums`.
template <class Acc>
struct tile_sums {
  const int32_t* row_offsets;
  const int32_t* column_sums;
  int32_t minus_a_zero_point;
  Acc* sums;    // MR × NR, vector (i, j) at (i·NV + j)·lanes; L1-resident
  bool resume;  // start from *sums instead of the zero-point correction
};

// Where a finished tile goes: n_count ≤ NR columns of C from (m0, n0), through the epilogue.
template <class TC, class Pipeline>
struct tile_store {
  matrix_view<TC> c;
  const Pipeline* ep;
  index_t m0, n0, n_count;
};

// The MR rows of A a tile reads: k-group g of row i is the kg elements at
// data + g·group_stride + i·row_stride (packed blocks: row_stride = kg, group_stride = MR·kg;
// A read in place: row_stride = lda, group_stride = kg).
template <class Elem>
struct a_rows {
  const Elem* data;
  index_t row_stride, group_stride;
};

// B: one panel, groups × NR × kg elements ([g][col][kk]). B is prefetched PrefetchGroups k-groups
// ahead (0 = off), into the next panel at the end (a hint: never faults).
//
// The K loop knows nothing of the epilogue: it always leaves its sums in out.sums and store_tile
// finishes them. One K loop per tile shape instead of one per (tile shape, epilogue) cut the object
// code of a model by ~6x and its compile time with it; the cost is MR·NV vector stores and loads
// per tile against groups·MR·NV multiply-adds (< 1 % at K = 768, within noise in bench_gemm).
template <class Dot, int MR, int NV, int PrefetchGroups>
void microkernel(a_rows<typename Dot::a_elem> a, const typename Dot::b_elem* QTX_RESTRICT b, index_t groups,
                 const tile_sums<typename Dot::acc_elem>& out) {
  using V = typename Dot::simd;
  constexpr int kg = Dot::k_group;
  constexpr int nr = NV * V::lanes;
  constexpr int cache_line = 64;
  constexpr int b_lines_per_group = int(nr * kg * sizeof(typename Dot::b_elem) + cache_line - 1) / cache_line;
  typename Dot::acc acc[MR][NV];

  unrolled<MR>([&](auto i) QTX_INLINE_LAMBDA {
    unrolled<NV>([&](auto j) QTX_INLINE_LAMBDA {
      if (out.resume) {
        acc[i][j] = V::load_full(out.sums + (i * NV + j) * V::lanes);
      } else if constexpr (!std::is_same_v<typename Dot::a_elem, float>) {
        acc[i][j] = V::add(V::mullo(V::load_full(out.column_sums + j * V::lanes), V::set1(out.minus_a_zero_point)),
                           V::set1(out.row_offsets[i]));
      } else {
        acc[i][j] = V::set1(0.0f);
      }
    });
  });

  for (index_t g = 0; g < groups; ++g) {
    typename Dot::acc bv[NV];
    if constexpr (PrefetchGroups > 0) {
      const char* ahead = reinterpret_cast<const char*>(b + (g + PrefetchGroups) * nr * kg);
      unrolled<b_lines_per_group>([&](auto line) QTX_INLINE_LAMBDA { __builtin_prefetch(ahead + line * cache_line, 0, 3); });
    }
    unrolled<NV>([&](auto j) QTX_INLINE_LAMBDA {
      bv[j] = Dot::load_b(b + (g * nr + j * V::lanes) * kg);
      // Pin B in a register: for MR ≤ 4 GCC would fold the load into every multiply-add's memory
      // operand, loading each B vector MR times (measured: 25 % slower, load-bound).
      asm("" : "+v"(bv[j]));
    });
    unrolled<MR>([&](auto i) QTX_INLINE_LAMBDA {
      const auto av = Dot::broadcast(a.data + g * a.group_stride + i * a.row_stride);
      unrolled<NV>([&](auto j) QTX_INLINE_LAMBDA { acc[i][j] = Dot::madd(acc[i][j], av, bv[j]); });
    });
  }

  unrolled<MR>([&](auto i) QTX_INLINE_LAMBDA {
    unrolled<NV>([&](auto j) QTX_INLINE_LAMBDA { V::store_full(out.sums + (i * NV + j) * V::lanes, acc[i][j]); });
  });
}

// The epilogue of a finished tile of `rows` × NV vectors, read back from L1: plain loops, so each
// epilogue is compiled once per GEMM configuration, not once per tile height.
template <class V, int NV, class TC, class Pipeline, class Acc>
void store_tile(const Acc* sums, int rows, const tile_store<TC, Pipeline>& out) {
  for (int i = 0; i < rows; ++i) {
    for (int j = 0; j < NV && j * V::lanes < out.n_count; ++j) {
      const index_t first = j * V::lanes;
      const index_t count = out.n_count - first < V::lanes ? out.n_count - first : V::lanes;
      const lane_block<V> at{out.m0 + i, out.n0 + first, count, V::first(count)};
      store_lanes<V>(out.c, apply_pipeline<V>(*out.ep, V::load_full(sums + (i * NV + j) * V::lanes), at), at);
    }
  }
}

}  // namespace qtx::cpu::gemm_detail

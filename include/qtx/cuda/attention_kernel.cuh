#pragma once
// Fused attention kernel (flash-style, fp16/bf16 in, fp32 accumulation), per (sequence, head):
//   S = scale · Q Kᵀ + mask   (−∞ where causal hides j > i + causal_offset, and past the last key)
//   P = clip((ζ − γ) · softmax_rows(S) + γ, 0, 1)      (rows with no visible key: P = 0)
//   O = π ⊙ (P V)             (π = per-(token, head) gate, 1 without a gate)
// A CTA owns 64 query rows (16 per warp) with Q in registers; K/V stream through double-buffered
// shared memory 64 keys at a time; S and P never leave registers.
//
// Plain softmax (ζ = 1, γ = 0) runs the one-pass online softmax: running row max m and sum l,
// O rescaled by exp(m_old − m_new) whenever m grows, divided by l at the end.
// Clipped softmax cannot be done in one pass: the clip applies to the *normalised* probability
// exp(s − m)/l, which needs the final m and l before the first P·V term. So it runs two passes
// over K: pass 1 computes m and l (S = QKᵀ only, V is not read), pass 2 recomputes S and
// accumulates clip((ζ − γ)·exp(s − m)/l + γ, 0, 1) · V. Cost: one extra QKᵀ (≈ 1.5× the FLOPs).
#if !defined(__CUDACC__)
#error "qtx/cuda/attention_kernel.cuh needs nvcc (compile this translation unit as CUDA)"
#endif
#include <cmath>
#include <cstdint>
#include <type_traits>

#include "../core/view.hpp"
#include "launch_params.hpp"
#include "mma.cuh"
#include "row_common.cuh"
#include "../config.hpp"

namespace qtx::QTX_ABI::cuda::detail {

template <class T, class TOut>
struct attention_params {
  batch_view<const T> q, k, v;
  batch_view<TOut> out;
  matrix_view<const float> key_mask;  // 1 or batch rows × Tk; data == nullptr: none
  batch_view<const float> gate;       // batch × Tq × heads; data == nullptr: none
  float scale = 1.0f, gamma = 0.0f, zeta = 1.0f;
  bool causal = false;
  index_t causal_offset = 0;
};

enum class attention_pass { online, statistics, clipped };

template <int HeadDim, bool Clipped, class T, class TOut>
__global__ void __launch_bounds__(attention_threads) attention_kernel(const attention_params<T, TOut> p) {
  constexpr int element_bytes = int(sizeof(T));
  constexpr int pitch = attention_smem_pitch_bytes(HeadDim, element_bytes);
  constexpr int row_bytes = HeadDim * element_bytes;
  constexpr int row_chunks = row_bytes / copy_bytes;
  constexpr int d_steps = row_bytes / mma_k_bytes;             // k-steps of S = Q Kᵀ over d
  constexpr int key_blocks = attention_block_kv / mma_n;        // n8 blocks of S per warp
  constexpr int key_steps = attention_block_kv * element_bytes / mma_k_bytes;  // k-steps of P V
  constexpr int d_blocks = HeadDim / mma_n;                     // n8 blocks of O per warp
  using traits = mma_traits<T>;
  const float neg_inf = -INFINITY;

  extern __shared__ __align__(16) uint8_t smem[];
  const uint32_t q_smem = smem_address(smem);
  const uint32_t k_smem = q_smem + attention_block_q * pitch;
  const uint32_t v_smem = k_smem + 2 * attention_block_kv * pitch;
  const int tid = threadIdx.x, lane = tid % warp_size, warp = tid / warp_size;
  const int group = lane >> 2, quad = lane & 3;
  const index_t batch = blockIdx.z, head = blockIdx.y, q0 = index_t(blockIdx.x) * attention_block_q;
  const index_t tq = p.q.rows, tk = p.k.rows, col0 = head * HeadDim;
  const index_t rows[2] = {q0 + warp * mma_m + group, q0 + warp * mma_m + group + 8};

  const auto slice = [&](const batch_view<const T>& x) {
    return reinterpret_cast<const uint8_t*>(x.data + batch * x.batch_stride + col0);
  };
  const uint8_t* q_base = slice(p.q);
  const uint8_t* k_base = slice(p.k);
  const uint8_t* v_base = slice(p.v);
  const int64_t q_stride = int64_t(p.q.row_stride) * element_bytes;
  const int64_t k_stride = int64_t(p.k.row_stride) * element_bytes;
  const int64_t v_stride = int64_t(p.v.row_stride) * element_bytes;
  const float* mask_row = p.key_mask.data ? p.key_mask.row(p.key_mask.rows == 1 ? 0 : batch) : nullptr;
  const index_t mask_step = p.key_mask.col_stride;

  copy_tile_async<attention_block_q, row_chunks, attention_threads, pitch>(q_smem, q_base, q_stride, int(q0),
                                                                           int(tq), 0, row_bytes, tid);
  cp_async_commit();
  cp_async_wait<0>();
  __syncthreads();
  uint32_t q_frag[d_steps][4];
#pragma unroll
  for (int kk = 0; kk < d_steps; ++kk)
    ldmatrix_x4(q_frag[kk], q_smem + (warp * mma_m + (lane & 15)) * pitch + kk * mma_k_bytes + (lane >> 4) * copy_bytes);

  const int kv_tiles =
      int(attention_kv_tiles(attention_visible_keys(q0, tq, tk, p.causal, p.causal_offset)));
  float row_max[2] = {neg_inf, neg_inf};
  float row_sum[2] = {0.0f, 0.0f};  // this thread's share until reduced over the quad
  float o[d_blocks][4] = {};

  const auto quad_reduce = [](float v, auto op) {
    v = op(v, __shfl_xor_sync(full_warp_mask, v, 1));
    return op(v, __shfl_xor_sync(full_warp_mask, v, 2));
  };

  // One sweep over the visible KV tiles; `pass` says what to do with each score tile.
  const auto sweep = [&](auto pass_constant) {
    constexpr attention_pass pass = decltype(pass_constant)::value;
    constexpr bool needs_v = pass != attention_pass::statistics;
    const auto load_tile = [&](int tile, int buffer) {
      const int key0 = tile * attention_block_kv;
      copy_tile_async<attention_block_kv, row_chunks, attention_threads, pitch>(
          k_smem + buffer * attention_block_kv * pitch, k_base, k_stride, key0, int(tk), 0, row_bytes, tid);
      if constexpr (needs_v)
        copy_tile_async<attention_block_kv, row_chunks, attention_threads, pitch>(
            v_smem + buffer * attention_block_kv * pitch, v_base, v_stride, key0, int(tk), 0, row_bytes, tid);
    };
    __syncthreads();  // the previous sweep is done with the buffers
    if (kv_tiles > 0) load_tile(0, 0);
    cp_async_commit();

    for (int tile = 0; tile < kv_tiles; ++tile) {
      const int buffer = tile & 1;
      cp_async_wait<0>();
      __syncthreads();
      if (tile + 1 < kv_tiles) load_tile(tile + 1, buffer ^ 1);
      cp_async_commit();

      // S = Q Kᵀ for this warp's 16 rows × 64 keys.
      float s[key_blocks][4] = {};
      const uint32_t k_tile = k_smem + buffer * attention_block_kv * pitch;
#pragma unroll
      for (int kk = 0; kk < d_steps; ++kk)
#pragma unroll
        for (int nb = 0; nb < key_blocks; nb += 2) {
          uint32_t r[4];
          ldmatrix_x4(r, k_tile + (nb * mma_n + (lane >> 4) * mma_n + (lane & 7)) * pitch + kk * mma_k_bytes +
                             ((lane >> 3) & 1) * copy_bytes);
          const uint32_t b0[2] = {r[0], r[1]}, b1[2] = {r[2], r[3]};
          traits::mma(s[nb], q_frag[kk], b0);
          traits::mma(s[nb + 1], q_frag[kk], b1);
        }

      // Scale, mask, and the row statistics of this tile.
      float tile_max[2] = {neg_inf, neg_inf};
#pragma unroll
      for (int nb = 0; nb < key_blocks; ++nb)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const index_t j = index_t(tile) * attention_block_kv + nb * mma_n + quad * 2 + (e & 1);
          const index_t i = rows[e >> 1];
          const bool visible = j < tk && (!p.causal || j <= i + p.causal_offset);
          s[nb][e] = visible ? s[nb][e] * p.scale + (mask_row ? mask_row[j * mask_step] : 0.0f) : neg_inf;
          tile_max[e >> 1] = fmaxf(tile_max[e >> 1], s[nb][e]);
        }

      float base[2], weight[2];
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        if constexpr (pass == attention_pass::clipped) {
          base[h] = row_max[h] == neg_inf ? 0.0f : row_max[h];
          weight[h] = row_sum[h] > 0.0f ? (p.zeta - p.gamma) / row_sum[h] : 0.0f;
        } else {
          const float new_max = fmaxf(row_max[h], quad_reduce(tile_max[h], max_op{}));
          base[h] = new_max == neg_inf ? 0.0f : new_max;
          const float correction = expf(row_max[h] - base[h]);  // 0 while the row had no visible key
          row_max[h] = new_max;
          row_sum[h] *= correction;
          if constexpr (pass == attention_pass::online) {
#pragma unroll
            for (int db = 0; db < d_blocks; ++db) {
              o[db][2 * h] *= correction;
              o[db][2 * h + 1] *= correction;
            }
          }
        }
      }

      // P (in place of S): exp(s − m) for the online/statistics sweeps, the clipped probability otherwise.
#pragma unroll
      for (int nb = 0; nb < key_blocks; ++nb)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int h = e >> 1;
          const float expo = expf(s[nb][e] - base[h]);
          if constexpr (pass == attention_pass::clipped) {
            s[nb][e] = row_sum[h] > 0.0f ? fminf(1.0f, fmaxf(0.0f, expo * weight[h] + p.gamma)) : 0.0f;
          } else {
            s[nb][e] = expo;
            row_sum[h] += expo;
          }
        }
      if constexpr (!needs_v) continue;

      // O += P V: P's accumulator layout is the A-fragment layout of m16n8k16 (two n8 blocks = one k16 step).
      const uint32_t v_tile = v_smem + buffer * attention_block_kv * pitch;
#pragma unroll
      for (int ks = 0; ks < key_steps; ++ks) {
        const uint32_t a[4] = {pack_pair<T>(s[2 * ks][0], s[2 * ks][1]), pack_pair<T>(s[2 * ks][2], s[2 * ks][3]),
                               pack_pair<T>(s[2 * ks + 1][0], s[2 * ks + 1][1]),
                               pack_pair<T>(s[2 * ks + 1][2], s[2 * ks + 1][3])};
#pragma unroll
        for (int db = 0; db < d_blocks; db += 2) {
          uint32_t r[4];
          ldmatrix_x4_trans(r, v_tile + (ks * 2 * mma_n + ((lane >> 3) & 1) * mma_n + (lane & 7)) * pitch +
                                   (db * mma_n + (lane >> 4) * mma_n) * element_bytes);
          const uint32_t b0[2] = {r[0], r[1]}, b1[2] = {r[2], r[3]};
          traits::mma(o[db], a, b0);
          traits::mma(o[db + 1], a, b1);
        }
      }
    }
  };

  if constexpr (Clipped) {
    sweep(std::integral_constant<attention_pass, attention_pass::statistics>{});
    for (int h = 0; h < 2; ++h) row_sum[h] = quad_reduce(row_sum[h], sum_op{});
    sweep(std::integral_constant<attention_pass, attention_pass::clipped>{});
  } else {
    sweep(std::integral_constant<attention_pass, attention_pass::online>{});
    for (int h = 0; h < 2; ++h) {
      const float l = quad_reduce(row_sum[h], sum_op{});
      const float inv = l > 0.0f ? 1.0f / l : 0.0f;
#pragma unroll
      for (int db = 0; db < d_blocks; ++db) {
        o[db][2 * h] *= inv;
        o[db][2 * h + 1] *= inv;
      }
    }
  }

#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const index_t i = rows[h];
    if (i >= tq) continue;
    const float pi = p.gate.data ? p.gate(batch, i, head) : 1.0f;
#pragma unroll
    for (int db = 0; db < d_blocks; ++db)
#pragma unroll
      for (int e = 0; e < 2; ++e)
        p.out(batch, i, col0 + db * mma_n + quad * 2 + e) = store_value<TOut>(pi * o[db][2 * h + e], {}, 1.0f);
  }
}

}  // namespace qtx::cuda::detail

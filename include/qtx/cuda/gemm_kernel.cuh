#pragma once
// The tensor-core GEMM kernel:
//   acc(m, n) = Σ_k A(m, k) · B(k, n)                         (exact int32 for u8·s8, fp32 for 16-bit)
//   acc      −= za·colsum(B)[n] + zb·rowsum(A)[m] − K·za·zb    (8-bit only: zero points, mod 2^32)
//   C(m, n)   = store(epilogue(acc, m, n))
// A is row-major M×K (16-byte aligned rows), B is packed N×K_padded (K contiguous). Each CTA
// streams K through a cp.async ring of `stages` shared-memory buffers, loads fragments with
// ldmatrix and issues mma.sync; the epilogue runs on the accumulator registers and stores C
// directly. Tails cost nothing extra: out-of-range rows and the K remainder are zero-filled by the
// copies (zeros add nothing to the dot products) and the store is predicated.
#if !defined(__CUDACC__)
#error "qtx/cuda/gemm_kernel.cuh needs nvcc (compile this translation unit as CUDA)"
#endif
#include <cstdint>
#include <type_traits>

#include "../epilogue/pipeline.hpp"
#include "launch_params.hpp"
#include "mma.cuh"
#include "packing.hpp"
#include "../config.hpp"

namespace qtx::QTX_ABI::cuda::detail {

template <class TC, class Pipeline>
struct gemm_params {
  const uint8_t* a = nullptr;  // M × K, rows a_stride_bytes apart
  int64_t a_stride_bytes = 0;
  int a_k_bytes = 0;           // K · sizeof(TA): bytes past it read as zero
  const uint8_t* b = nullptr;  // N × K_padded packed
  int64_t b_stride_bytes = 0;
  int m = 0, n = 0, k = 0;
  TC* c = nullptr;
  int64_t c_stride = 0;
  const int32_t* column_sums = nullptr;  // 8-bit: Σ_k B(k, n)
  const int32_t* row_sums = nullptr;     // 8-bit with b zero point ≠ 0: Σ_k A(m, k)
  int32_t a_zero_point = 0, b_zero_point = 0;
  Pipeline ep;
};

template <gemm_tile Tile, class TA, class TC, class Pipeline>
__global__ void __launch_bounds__(shape_of(Tile).threads()) gemm_kernel(const gemm_params<TC, Pipeline> p) {
  constexpr gemm_tile_shape s = shape_of(Tile);
  constexpr int tiles_m = s.mma_tiles_m(), tiles_n = s.mma_tiles_n();
  constexpr int pitch = s.smem_pitch_bytes();
  constexpr int chunks_per_row = s.block_k_bytes / copy_bytes;
  constexpr int warps_n = s.block_n / s.warp_n;
  using traits = mma_traits<TA>;
  using acc_t = typename traits::acc_type;

  extern __shared__ __align__(16) uint8_t smem[];
  const int tid = threadIdx.x, lane = tid % warp_size, warp = tid / warp_size;
  const int warp_row = (warp / warps_n) * s.warp_m, warp_col = (warp % warps_n) * s.warp_n;
  const int block_m0 = blockIdx.y * s.block_m, block_n0 = blockIdx.x * s.block_n;
  const uint32_t smem_base = smem_address(smem);

  const auto load_stage = [&](int stage, int k_tile) {
    const uint32_t a_dst = smem_base + stage * s.stage_bytes();
    const uint32_t b_dst = a_dst + s.block_m * pitch;
    const int k0 = k_tile * s.block_k_bytes;
    copy_tile_async<s.block_m, chunks_per_row, s.threads(), pitch>(a_dst, p.a, p.a_stride_bytes, block_m0,
                                                                   p.m, k0, p.a_k_bytes, tid);
    copy_tile_async<s.block_n, chunks_per_row, s.threads(), pitch>(b_dst, p.b, p.b_stride_bytes, block_n0,
                                                                   p.n, k0, int(p.b_stride_bytes), tid);
  };

  acc_t acc[tiles_m][tiles_n][4];
#pragma unroll
  for (int i = 0; i < tiles_m; ++i)
#pragma unroll
    for (int j = 0; j < tiles_n; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) acc[i][j][e] = acc_t(0);

  // The packed K of B (a multiple of 32 bytes) covers A's K; A's remainder reads as zeros.
  const int k_tiles = int((p.b_stride_bytes + s.block_k_bytes - 1) / s.block_k_bytes);
#pragma unroll
  for (int stage = 0; stage < s.stages - 1; ++stage) {
    if (stage < k_tiles) load_stage(stage, stage);
    cp_async_commit();  // empty groups keep the wait count uniform
  }

  for (int kt = 0; kt < k_tiles; ++kt) {
    cp_async_wait<s.stages - 2>();  // tile kt has landed (for this thread) ...
    __syncthreads();                // ... for every thread, and tile kt−1's buffer is free
    const int next = kt + s.stages - 1;
    if (next < k_tiles) load_stage(next % s.stages, next);
    cp_async_commit();

    const uint32_t a_stage = smem_base + (kt % s.stages) * s.stage_bytes();
    const uint32_t b_stage = a_stage + s.block_m * pitch;
#pragma unroll
    for (int ks = 0; ks < s.block_k_bytes / mma_k_bytes; ++ks) {
      uint32_t a_frag[tiles_m][4], b_frag[tiles_n][2];
#pragma unroll
      for (int i = 0; i < tiles_m; ++i) {
        const int row = warp_row + i * mma_m + (lane & 15);
        ldmatrix_x4(a_frag[i], a_stage + row * pitch + ks * mma_k_bytes + (lane >> 4) * copy_bytes);
      }
#pragma unroll
      for (int j = 0; j < tiles_n; j += 2) {
        uint32_t r[4];
        const int row = warp_col + j * mma_n + (lane >> 4) * mma_n + (lane & 7);
        ldmatrix_x4(r, b_stage + row * pitch + ks * mma_k_bytes + ((lane >> 3) & 1) * copy_bytes);
        b_frag[j][0] = r[0];
        b_frag[j][1] = r[1];
        b_frag[j + 1][0] = r[2];
        b_frag[j + 1][1] = r[3];
      }
#pragma unroll
      for (int i = 0; i < tiles_m; ++i)
#pragma unroll
        for (int j = 0; j < tiles_n; ++j) traits::mma(acc[i][j], a_frag[i], b_frag[j]);
    }
  }

  const int group = lane >> 2, quad = lane & 3;
#pragma unroll
  for (int i = 0; i < tiles_m; ++i)
#pragma unroll
    for (int j = 0; j < tiles_n; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int m = block_m0 + warp_row + i * mma_m + group + (e >> 1) * 8;
        const int n = block_n0 + warp_col + j * mma_n + quad * 2 + (e & 1);
        if (m >= p.m || n >= p.n) continue;
        acc_t v = acc[i][j][e];
        if constexpr (std::is_integral_v<acc_t>) {
          v = zero_point_correction(v, p.column_sums[n], p.row_sums ? p.row_sums[m] : 0, p.k, p.a_zero_point,
                                    p.b_zero_point);
        }
        p.c[int64_t(m) * p.c_stride + n] = epilogue::evaluate<TC>(p.ep, v, index_t(m), index_t(n));
      }
}

// Σ_k A(m, k) for the B zero-point term: one warp per row.
inline constexpr int row_sum_rows_per_block = 4;

__global__ void __launch_bounds__(row_sum_rows_per_block * warp_size)
    row_sums_kernel(const uint8_t* a, int64_t stride, int m, int k, int32_t* sums) {
  const int row = blockIdx.x * row_sum_rows_per_block + threadIdx.x / warp_size;
  const int lane = threadIdx.x % warp_size;
  if (row >= m) return;
  int32_t sum = 0;
  for (int col = lane; col < k; col += warp_size) sum += a[int64_t(row) * stride + col];
#pragma unroll
  for (int offset = warp_size / 2; offset > 0; offset /= 2) sum += __shfl_xor_sync(0xffffffffu, sum, offset);
  if (lane == 0) sums[row] = sum;
}

}  // namespace qtx::cuda::detail

#pragma once
// Warp-level tensor-core and async-copy primitives (sm_80+ PTX), and the operand traits that let
// one GEMM kernel run 8-bit and 16-bit inputs.
//
// Fragments (PTX ISA "Matrix Fragments for mma.m16n8k32" / "m16n8k16"; g = lane/4, t = lane%4),
// stated in bytes along K so both shapes read the same: each 32-bit register holds 4 bytes of K
//   A 16×32B: a0 row g, bytes 4t..4t+3 | a1 row g+8 | a2 row g, bytes 16+4t.. | a3 row g+8, 16+4t..
//   B 32B×8 ("col": stored n-major, K contiguous): b0 col g, bytes 4t.. | b1 col g, bytes 16+4t..
//   C 16×8: c0, c1 row g, cols 2t, 2t+1 | c2, c3 row g+8, cols 2t, 2t+1
// ldmatrix.x4 hands lane T register q = row T/4, bytes 4(T%4)..+3 of 8×16-byte matrix q, whose row
// addresses come from lanes 8q..8q+7: with matrix q = (rows +8·(q&1), bytes +16·(q>>1)) that is the
// A fragment; with (bytes +16·(q&1), rows +8·(q>>1)) it is the B fragments of two n8 blocks.
#if !defined(__CUDACC__)
#error "qtx/cuda/mma.cuh needs nvcc (compile this translation unit as CUDA)"
#endif
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>
#include <type_traits>

#include "launch_params.hpp"
#include "../config.hpp"

namespace qtx::QTX_ABI::cuda::detail {

__device__ inline uint32_t smem_address(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// 16-byte global → shared copy that bypasses L1; bytes past src_bytes (0..16) are zero-filled,
// which is how every tail (M, N, K) reads zeros without a branch around the copy.
__device__ inline void cp_async_16(uint32_t dst, const void* src, int src_bytes) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(src_bytes)
               : "memory");
}
__device__ inline void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
template <int Pending>
__device__ inline void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(Pending) : "memory");
}

// Copies rows [row0, row0 + Rows) × bytes [k0, k0 + 16·ChunksPerRow) of a byte matrix into shared
// memory (Pitch bytes per row); rows ≥ `rows` and bytes ≥ k_bytes read as zero. Each thread
// issues Rows·ChunksPerRow/Threads 16-byte copies.
template <int Rows, int ChunksPerRow, int Threads, int Pitch>
__device__ inline void copy_tile_async(uint32_t dst, const uint8_t* src, int64_t stride, int row0, int rows,
                                       int k0, int k_bytes, int tid) {
  static_assert((Rows * ChunksPerRow) % Threads == 0);
#pragma unroll
  for (int i = 0; i < Rows * ChunksPerRow / Threads; ++i) {
    const int chunk = tid + i * Threads;
    const int r = chunk / ChunksPerRow, c = chunk % ChunksPerRow;
    const int kb = k0 + c * copy_bytes;
    const int left = k_bytes - kb;
    const int bytes = (row0 + r >= rows || left <= 0) ? 0 : (left < copy_bytes ? left : copy_bytes);
    const uint8_t* from = bytes > 0 ? src + int64_t(row0 + r) * stride + kb : src;
    cp_async_16(dst + r * Pitch + c * copy_bytes, from, bytes);
  }
}

__device__ inline void ldmatrix_x4(uint32_t (&r)[4], uint32_t address) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(address));
}
// Transposing form: for a row-major (K×N) operand in shared memory, e.g. V in attention.
__device__ inline void ldmatrix_x4_trans(uint32_t (&r)[4], uint32_t address) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(address));
}

// One tensor-core step per operand type: D(16×8) += A(16×32 bytes) · B(32 bytes×8).
template <class TA>
struct mma_traits;

template <>
struct mma_traits<uint8_t> {  // u8 × s8 → s32, k = 32
  using a_type = uint8_t;
  using b_type = int8_t;
  using acc_type = int32_t;
  __device__ static void mma(acc_type (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
    asm volatile(
        "mma.sync.aligned.m16n8k32.row.col.s32.u8.s8.s32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
        "{%8, %9}, {%0, %1, %2, %3};\n"
        : "+r"(d[0]), "+r"(d[1]), "+r"(d[2]), "+r"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
  }
};

template <>
struct mma_traits<__half> {  // f16 × f16 → f32, k = 16
  using a_type = __half;
  using b_type = __half;
  using acc_type = float;
  __device__ static void mma(acc_type (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
        "{%8, %9}, {%0, %1, %2, %3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
  }
};

template <>
struct mma_traits<__nv_bfloat16> {  // bf16 × bf16 → f32, k = 16
  using a_type = __nv_bfloat16;
  using b_type = __nv_bfloat16;
  using acc_type = float;
  __device__ static void mma(acc_type (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
        "{%8, %9}, {%0, %1, %2, %3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
  }
};

// Two floats → one register of two 16-bit values (low half = first), for P in attention.
template <class T>
__device__ inline uint32_t pack_pair(float lo, float hi) {
  if constexpr (std::is_same_v<T, __half>) {
    const __half2 h = __floats2half2_rn(lo, hi);
    return *reinterpret_cast<const uint32_t*>(&h);
  } else {
    const __nv_bfloat162 h = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<const uint32_t*>(&h);
  }
}

}  // namespace qtx::cuda::detail

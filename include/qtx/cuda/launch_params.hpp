#pragma once
// Launch parameters of the CUDA kernels: tile shapes, tile choice, grids, shared-memory sizes and
// the alignment rules of the cp.async fast path. Plain C++ (no nvcc needed) so the CPU tests cover
// it; the kernels read the same constexpr shapes, so host and device cannot disagree.
#include <cstdint>

#include "../config.hpp"
#include "../core/types.hpp"

namespace qtx::QTX_ABI::cuda {

// ---------------------------------------------------------------- GEMM tiles
//
// A CTA computes a block_m × block_n tile of C with (block_m/warp_m)·(block_n/warp_n) warps, each
// owning a warp_m × warp_n sub-tile of 16×8 mma fragments. K advances block_k_bytes at a time
// through `stages` shared-memory buffers filled by cp.async. Tiles are measured in bytes along K
// so one kernel serves 8-bit (64 elements, two m16n8k32 steps) and 16-bit operands (32 elements,
// two m16n8k16 steps): both mma shapes consume 32 bytes of K per step with the same fragments.
inline constexpr int mma_m = 16;
inline constexpr int mma_n = 8;
inline constexpr int mma_k_bytes = 32;  // k = 32 for 8-bit, k = 16 for 16-bit operands
inline constexpr int copy_bytes = 16;   // one cp.async / one ldmatrix row
inline constexpr int warp_size = 32;

// Each shared-memory row is padded by one 16-byte unit: with an odd number of 16-byte units per
// row, the 8 rows one ldmatrix phase reads fall in 8 distinct bank groups (no conflicts).
inline constexpr int smem_row_padding_bytes = 16;

struct gemm_tile_shape {
  int block_m, block_n, warp_m, warp_n, stages, block_k_bytes;

  constexpr int warps() const { return (block_m / warp_m) * (block_n / warp_n); }
  constexpr int threads() const { return warps() * warp_size; }
  constexpr int smem_pitch_bytes() const { return block_k_bytes + smem_row_padding_bytes; }
  constexpr int stage_bytes() const { return (block_m + block_n) * smem_pitch_bytes(); }
  constexpr int smem_bytes() const { return stages * stage_bytes(); }
  constexpr int mma_tiles_m() const { return warp_m / mma_m; }
  constexpr int mma_tiles_n() const { return warp_n / mma_n; }
  // Every thread issues the same number of 16-byte copies per operand and stage.
  constexpr bool valid() const {
    return block_m % warp_m == 0 && block_n % warp_n == 0 && warp_m % mma_m == 0 &&
           warp_n % (2 * mma_n) == 0 && block_k_bytes % mma_k_bytes == 0 && stages >= 2 &&
           (block_m * (block_k_bytes / copy_bytes)) % threads() == 0 &&
           (block_n * (block_k_bytes / copy_bytes)) % threads() == 0 &&
           (smem_pitch_bytes() / copy_bytes) % 2 == 1;
  }
};

// The tiles the launcher can pick from, largest first.
enum class gemm_tile : int { t128x128 = 0, t64x128 = 1, t64x64 = 2 };
inline constexpr int gemm_tile_count = 3;

QTX_HOST_DEVICE constexpr gemm_tile_shape shape_of(gemm_tile t) {
  switch (t) {
    case gemm_tile::t128x128: return {128, 128, 64, 64, 4, 64};
    case gemm_tile::t64x128: return {64, 128, 32, 64, 4, 64};
    default: return {64, 64, 32, 32, 4, 64};
  }
}

static_assert(shape_of(gemm_tile::t128x128).valid() && shape_of(gemm_tile::t64x128).valid() &&
              shape_of(gemm_tile::t64x64).valid());
static_assert(shape_of(gemm_tile::t128x128).smem_bytes() <= 114 * 1024,
              "two 128x128 CTAs should fit one SM (H100/A100: 227/163 KiB)");

constexpr index_t ceil_div(index_t a, index_t b) { return (a + b - 1) / b; }
constexpr index_t round_up(index_t a, index_t b) { return ceil_div(a, b) * b; }

// Number of CTAs a tile launches for an M×N output.
constexpr index_t gemm_ctas(gemm_tile t, index_t m, index_t n) {
  const gemm_tile_shape s = shape_of(t);
  return ceil_div(m, s.block_m) * ceil_div(n, s.block_n);
}

// The largest tile that still puts at least one CTA on every SM; small problems get the smallest
// tile (more CTAs, less idle hardware). No split-K: for M·N too small to fill the GPU even with
// 64×64 tiles, the GEMM is latency-bound anyway.
constexpr gemm_tile select_gemm_tile(index_t m, index_t n, int sm_count) {
  for (int i = 0; i < gemm_tile_count; ++i) {
    const auto t = static_cast<gemm_tile>(i);
    if (gemm_ctas(t, m, n) >= sm_count) return t;
  }
  return static_cast<gemm_tile>(gemm_tile_count - 1);
}

struct grid_2d {
  index_t x = 1, y = 1;
};
inline constexpr index_t max_grid_y = 65535;

// grid.x walks N (consecutive CTAs share the same A rows in L2), grid.y walks M.
constexpr grid_2d gemm_grid(gemm_tile t, index_t m, index_t n) {
  const gemm_tile_shape s = shape_of(t);
  return {ceil_div(n, s.block_n), ceil_div(m, s.block_m)};
}

// Packed B rows (N×K_padded, K contiguous) are padded to one mma K step (32 bytes = 32 int8 or
// 16 fp16/bf16 values) so every packed row starts 16-byte aligned and the padding is zero.
constexpr index_t packed_k(index_t k, int element_bytes) {
  return round_up(k, mma_k_bytes / element_bytes);
}

// The cp.async fast path reads 16-byte chunks: the operand's rows must start 16-byte aligned.
// (A partial last chunk of a row is zero-filled by the copy itself: src-size < 16.)
inline bool cp_async_compatible(const void* data, index_t rows, index_t row_stride, index_t col_stride,
                                int element_bytes) {
  const auto address = reinterpret_cast<std::uintptr_t>(data);
  return address % copy_bytes == 0 && (col_stride == 1) &&
         (rows <= 1 || (row_stride * element_bytes) % copy_bytes == 0);
}

// ---------------------------------------------------------------- row kernels
//
// One CTA per row; a thread handles about `row_elements_per_thread` elements per pass.
inline constexpr int row_elements_per_thread = 4;
inline constexpr int row_max_threads = 256;

constexpr int row_kernel_threads(index_t cols) {
  const index_t wanted = round_up(ceil_div(cols, row_elements_per_thread), warp_size);
  return int(wanted < warp_size ? warp_size : wanted > row_max_threads ? row_max_threads : wanted);
}

// A mask with mask_rows rows serves x_rows rows in consecutive groups (1 row: broadcast; x_rows:
// one per row; batch rows: one per sequence of heads·queries rows). 0 when it does not divide.
constexpr index_t mask_row_group(index_t x_rows, index_t mask_rows) {
  if (mask_rows <= 0 || x_rows % mask_rows != 0) return 0;
  return x_rows / mask_rows;
}

// ---------------------------------------------------------------- fused attention
//
// A CTA owns attention_block_q query rows of one (sequence, head): 4 warps × 16 rows. Keys and
// values stream through shared memory attention_block_kv rows at a time, double-buffered.
inline constexpr int attention_block_q = 64;
inline constexpr int attention_block_kv = 64;
inline constexpr int attention_warps = attention_block_q / mma_m;
inline constexpr int attention_threads = attention_warps * warp_size;

constexpr bool attention_head_dim_supported(index_t d) { return d == 32 || d == 64 || d == 128; }

constexpr int attention_smem_pitch_bytes(int head_dim, int element_bytes) {
  return head_dim * element_bytes + smem_row_padding_bytes;
}
// Q tile + two K buffers + two V buffers.
constexpr int attention_smem_bytes(int head_dim, int element_bytes) {
  return (attention_block_q + 4 * attention_block_kv) * attention_smem_pitch_bytes(head_dim, element_bytes);
}

// Keys a query block [q0, q0 + attention_block_q) can see: all of them, or with a causal mask only
// j ≤ i + offset for its last row i. The kernel visits ceil(visible / block_kv) KV tiles.
QTX_HOST_DEVICE constexpr index_t attention_visible_keys(index_t q0, index_t tq, index_t tk, bool causal,
                                                         index_t causal_offset) {
  if (!causal) return tk;
  const index_t last_row = (q0 + attention_block_q < tq ? q0 + attention_block_q : tq) - 1;
  const index_t visible = last_row + causal_offset + 1;
  return visible < 0 ? 0 : visible > tk ? tk : visible;
}

QTX_HOST_DEVICE constexpr index_t attention_kv_tiles(index_t visible_keys) {
  return (visible_keys + attention_block_kv - 1) / attention_block_kv;
}

}  // namespace qtx::cuda

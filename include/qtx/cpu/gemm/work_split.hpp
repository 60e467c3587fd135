#pragma once
// How the vector GEMMs (vector.hpp, amx.hpp) share a call among threads, and when they do not.
#include <algorithm>
#include <utility>

#include "../../core/types.hpp"
#include "../../config.hpp"

namespace qtx::QTX_ABI::cpu::gemm_detail {

// How many row ranges × column ranges the threads take. Columns first: a thread then streams
// only its share of the packed weights (the large operand) through its own L2, and all threads
// share the small packed A.
struct work_split {
  index_t row_parts, col_parts;
};
inline work_split split_work(index_t row_blocks, index_t panels, index_t threads) {
  const index_t col_parts = std::max<index_t>(1, std::min(threads, panels));
  const index_t row_parts = std::max<index_t>(1, std::min(threads / col_parts, row_blocks));
  return {row_parts, col_parts};
}

// Rows first, for the AMX path: a thread then packs and reads only its own 32-row blocks of A
// (each reused across every panel) and streams all of B through its own L2. Measured on 2 threads
// (Intel Xeon): 512×768×768 185–195 µs against 223–271 µs columns first, 2048×1024×1024 −10–15 %.
inline work_split split_rows_first(index_t row_blocks, index_t panels, index_t threads) {
  const index_t row_parts = std::max<index_t>(1, std::min(threads, row_blocks));
  const index_t col_parts = std::max<index_t>(1, std::min(threads / row_parts, panels));
  return {row_parts, col_parts};
}

// [begin, end) of part `i` of `parts` near-equal parts of `count`.
inline std::pair<index_t, index_t> part_range(index_t count, index_t parts, index_t i) {
  return {count * i / parts, count * (i + 1) / parts};
}

// A smaller than this (elements) is packed by every part for itself, inside the parallel region:
// a copy packed by another core would reach this one line by line through cross-core cache
// misses the kernel waits on (measured: 1×768×768 on 2 threads took 6.7 µs instead of 4).
// Larger A is packed once, in parallel, and shared (the transfers amortise over its reuse).
inline constexpr index_t private_packing_limit = index_t(1) << 16;
// Below this many multiply-adds a fork/join (~1 µs) costs more than it saves.
inline constexpr index_t parallel_gemm_threshold = index_t(1) << 17;

}  // namespace qtx::cpu::gemm_detail

#pragma once
// The vector GEMM's per-thread scratch (packed A, row offsets, K-blocking partial sums) and the
// bound on the memory it keeps between calls.
//
// Every thread that calls ops::gemm (or an op built on it: attention, nn layers) owns one scratch
// per packed-A element type (float; uint8 for VNNI, int16 for AVX2's widened int8), sized on that thread before the parallel region and reused
// by its later calls, so a warm thread allocates nothing. Worker threads of qtx's own parallel
// region use the caller's scratch; a call made inside a user's parallel region runs serially on
// that thread's own scratch. What a thread keeps is bounded:
//   * a call needing at most gemm_scratch_retained_bytes keeps its buffers for the next call;
//   * a larger call allocates what it needs and frees all of it before returning, so a thread never
//     holds more than gemm_scratch_retained_bytes per element type between calls (16 MiB by
//     default; define QTX_GEMM_SCRATCH_RETAINED_BYTES to change it, 0 frees after every call);
//   * release_gemm_scratch() frees the calling thread's scratch now; a thread's scratch is freed
//     when the thread exits.
// So a pool of T user threads running one backend's int8 and float GEMMs holds at most
// T × 2 × gemm_scratch_retained_bytes of GEMM scratch.
// 16 MiB keeps BERT/OPT-sized calls warm (a 512 × 3072 float A is 6 MiB, a 2048 × 4096 uint8 A 8 MiB).
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "../../core/buffer.hpp"
#include "../../core/types.hpp"
#include "../../config.hpp"

#ifndef QTX_GEMM_SCRATCH_RETAINED_BYTES
#define QTX_GEMM_SCRATCH_RETAINED_BYTES (std::size_t(16) << 20)
#endif

namespace qtx::QTX_ABI::cpu {

inline constexpr std::size_t gemm_scratch_retained_bytes = QTX_GEMM_SCRATCH_RETAINED_BYTES;

namespace gemm_detail {

template <class Elem>
struct workspace {
  aligned_buffer<Elem> a;               // packed A, one copy per packing slot
  aligned_buffer<int32_t> row_offsets;  // −zb·rowsum(A) + K·za·zb, one set per packing slot
  aligned_buffer<int32_t> partial_int;  // tile sums (K-blocking partials, finished tiles), one set per part
  aligned_buffer<float> partial_float;

  template <class Acc>
  Acc* partials(index_t count) {
    if constexpr (std::is_same_v<Acc, float>) {
      partial_float.reserve(count);
      return partial_float.data();
    } else {
      partial_int.reserve(count);
      return partial_int.data();
    }
  }
  std::size_t bytes() const {
    return std::size_t(a.size()) * sizeof(Elem) +
           std::size_t(row_offsets.size() + partial_int.size()) * sizeof(int32_t) +
           std::size_t(partial_float.size()) * sizeof(float);
  }
  void release() {
    a = {};
    row_offsets = {};
    partial_int = {};
    partial_float = {};
  }
  static workspace& local() {
    static thread_local workspace w;
    return w;
  }
};

// Ends a call's use of a per-thread scratch (Scratch::local(), with bytes() and release(): the
// GEMM's workspace, fused attention's packed K/V): frees it when it outgrew the retained bound.
// An object, so that the bound also holds when the call leaves by an exception (bad_alloc).
template <class Scratch>
struct scratch_use {
  Scratch& ws = Scratch::local();
  scratch_use() = default;
  scratch_use(const scratch_use&) = delete;
  scratch_use& operator=(const scratch_use&) = delete;
  ~scratch_use() {
    if (ws.bytes() > gemm_scratch_retained_bytes) ws.release();
  }
};

}  // namespace gemm_detail

namespace gemm_detail {
template <class F>
void for_each_workspace(F&& f) {
  f(workspace<uint8_t>::local());
  f(workspace<int16_t>::local());
  f(workspace<float>::local());
}
}  // namespace gemm_detail

// Bytes of GEMM scratch the calling thread holds (all element types).
inline std::size_t gemm_scratch_bytes() {
  std::size_t total = 0;
  gemm_detail::for_each_workspace([&](const auto& ws) { total += ws.bytes(); });
  return total;
}

// Frees the calling thread's GEMM scratch now (its next call allocates again).
inline void release_gemm_scratch() {
  gemm_detail::for_each_workspace([](auto& ws) { ws.release(); });
}

}  // namespace qtx::cpu

#pragma once
// Shared plumbing of the row kernels (softmax, layer norm, element-wise): how rows are split over
// threads, and the aliasing rule of their outputs.
//
// Aliasing rule: an output may be the very same view as an input of the same element type (an
// in-place update: every kernel reads element j before it writes element j, or works on a private
// copy of the row); any other overlap between an output and another operand is rejected.
#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "../../core/error.hpp"
#include "../../core/parallel.hpp"
#include "../../core/view.hpp"
#include "../../config.hpp"

namespace qtx::QTX_ABI::cpu::rows {

// Below this many elements per thread, waking another thread costs more than it saves.
inline constexpr index_t min_elements_per_thread = index_t(1) << 14;

// Number of contiguous row blocks a (rows × cols) problem is split into: one per thread, fewer
// when the problem is small.
inline index_t row_block_count(index_t rows, index_t cols) {
  const index_t by_work = std::max<index_t>(1, rows * std::max<index_t>(cols, 1) / min_elements_per_thread);
  return std::max<index_t>(1, std::min({index_t(max_threads()), by_work, rows}));
}

// Calls body(block, first_row, end_row) for each of `blocks` contiguous row ranges, in parallel.
template <class Body>
void for_row_blocks(index_t rows, index_t blocks, Body&& body) {
  parallel_for(0, blocks, [&](index_t b) { body(b, rows * b / blocks, rows * (b + 1) / blocks); });
}

// Address range [first byte, one past the last byte) a view can touch; empty for an empty view.
template <class T>
std::pair<std::uintptr_t, std::uintptr_t> byte_range(const matrix_view<T>& v) {
  if (v.empty() || v.data == nullptr) return {0, 0};
  const auto first = reinterpret_cast<std::uintptr_t>(v.data);
  const index_t last_offset = (v.rows - 1) * v.row_stride + (v.cols - 1) * v.col_stride;
  return {first, first + std::uintptr_t(last_offset + 1) * sizeof(T)};
}

template <class T, class U>
bool views_overlap(const matrix_view<T>& a, const matrix_view<U>& b) {
  const auto [a0, a1] = byte_range(a);
  const auto [b0, b1] = byte_range(b);
  return a0 < a1 && b0 < b1 && a0 < b1 && b0 < a1;
}

template <class T, class U>
bool same_view(const matrix_view<T>& a, const matrix_view<U>& b) {
  return std::is_same_v<std::remove_cv_t<T>, std::remove_cv_t<U>> &&
         static_cast<const void*>(a.data) == static_cast<const void*>(b.data) && a.rows == b.rows &&
         a.cols == b.cols && a.row_stride == b.row_stride && a.col_stride == b.col_stride;
}

// Throws unless `out` and `in` are disjoint or the same view (in-place).
template <class T, class U>
void check_alias(const char* fn, const char* out_name, const matrix_view<T>& out, const char* in_name,
                 const matrix_view<U>& in) {
  check(!views_overlap(out, in) || same_view(out, in), fn, ": ", out_name, " overlaps ", in_name,
        " without being the same view of the same element type (only exact in-place use is supported)");
}

// Throws unless two outputs are disjoint.
template <class T, class U>
void check_disjoint(const char* fn, const char* name_a, const matrix_view<T>& a, const char* name_b,
                    const matrix_view<U>& b) {
  check(!views_overlap(a, b), fn, ": outputs ", name_a, " and ", name_b, " overlap");
}

}  // namespace qtx::cpu::rows

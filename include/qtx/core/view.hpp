#pragma once
/// @file
/// Non-owning strided views: a matrix (rows × cols) and a batch of matrices.
///
/// Element (r, c) lives at data[r * row_stride + c * col_stride]; strides are in elements.
/// Row-major contiguous data has col_stride == 1; a column-major matrix (an Eigen default) has
/// row_stride == 1, so the same view type carries both and kernels pick a path from the strides.
/// Views are trivially copyable and never own memory.
#include <cstdint>
#include <span>
#include <type_traits>

#include "error.hpp"
#include "types.hpp"

namespace qtx {

/// A strided, non-owning rows × cols matrix of T (const T for inputs): the one operand type of every
/// qtx kernel, so row-major, column-major and sub-matrices need no copies.
template <class T>
struct matrix_view {
  /// Element (0, 0); null only for an empty view.
  T* data = nullptr;
  /// Number of rows.
  index_t rows = 0;
  /// Number of columns.
  index_t cols = 0;
  /// Elements from one row to the next.
  index_t row_stride = 0;
  /// Elements from one column to the next (1 = rows are contiguous, the vector kernels' fast path).
  index_t col_stride = 1;

  /// The element type as viewed (const T for read-only views).
  using element_type = T;
  /// The element type without const, for temporaries.
  using value_type = std::remove_cv_t<T>;

  constexpr matrix_view() = default;
  /// Unchecked: use make_view for checked construction from raw memory.
  constexpr matrix_view(T* d, index_t r, index_t c, index_t rs, index_t cs = 1)
      : data(d), rows(r), cols(c), row_stride(rs), col_stride(cs) {}

  /// A view of non-const data converts to a view of const data.
  template <class U>
    requires(std::is_same_v<const U, T> && !std::is_same_v<U, T>)
  constexpr matrix_view(const matrix_view<U>& other)
      : matrix_view(other.data, other.rows, other.cols, other.row_stride, other.col_stride) {}

  /// Element (r, c), unchecked.
  constexpr T& operator()(index_t r, index_t c) const { return data[r * row_stride + c * col_stride]; }
  /// Start of row r (contiguous only when row_contiguous()).
  constexpr T* row(index_t r) const { return data + r * row_stride; }
  /// True when there is no element: ops return early without touching data.
  constexpr bool empty() const { return rows == 0 || cols == 0; }
  /// Number of elements (not the span of memory the strides cover).
  constexpr index_t size() const { return rows * cols; }
  /// Rows are contiguous runs of cols elements (what the vector kernels need).
  constexpr bool row_contiguous() const { return col_stride == 1 || cols <= 1; }

  /// Sub-matrix [r0, r0+nr) × [c0, c0+nc); the caller guarantees it lies inside.
  constexpr matrix_view block(index_t r0, index_t c0, index_t nr, index_t nc) const {
    return {data + r0 * row_stride + c0 * col_stride, nr, nc, row_stride, col_stride};
  }
  /// The same memory seen as cols × rows, by swapping the strides (no copy).
  constexpr matrix_view transposed() const { return {data, cols, rows, col_stride, row_stride}; }
};

/// A batch of matrices at a fixed batch stride: attention's (batch·heads) × T × d tensors.
template <class T>
struct batch_view {
  /// Element (0, 0, 0).
  T* data = nullptr;
  /// Number of matrices.
  index_t batch = 0;
  /// Rows of each matrix.
  index_t rows = 0;
  /// Columns of each matrix.
  index_t cols = 0;
  /// Elements from one matrix to the next.
  index_t batch_stride = 0;
  /// Elements from one row to the next.
  index_t row_stride = 0;
  /// Elements from one column to the next.
  index_t col_stride = 1;

  /// Matrix b of the batch, unchecked.
  constexpr matrix_view<T> operator[](index_t b) const {
    return {data + b * batch_stride, rows, cols, row_stride, col_stride};
  }
  /// Element (r, c) of matrix b, unchecked.
  constexpr T& operator()(index_t b, index_t r, index_t c) const {
    return data[b * batch_stride + r * row_stride + c * col_stride];
  }
};

/// Row-major view of raw memory, starting `offset` elements in. Checks what it can: sizes and
/// strides must be non-negative and a row stride must not make rows overlap.
template <class T>
matrix_view<T> make_view(T* data, index_t rows, index_t cols, index_t row_stride = -1,
                         index_t offset = 0) {
  if (row_stride < 0) row_stride = cols;
  check(rows >= 0 && cols >= 0, "make_view: rows (", rows, ") and cols (", cols,
        ") must be non-negative");
  check(offset >= 0, "make_view: offset (", offset, ") must be non-negative");
  check(rows <= 1 || row_stride >= cols, "make_view: row_stride (", row_stride,
        ") is smaller than cols (", cols, ")");
  check(data != nullptr || rows * cols == 0, "make_view: null data for a ", rows, "x", cols,
        " view");
  return {data ? data + offset : data, rows, cols, row_stride, 1};
}

/// Row-major view over a span; the span must hold every element the view can touch.
template <class T, std::size_t Extent>
matrix_view<T> make_view(std::span<T, Extent> s, index_t rows, index_t cols, index_t row_stride = -1,
                         index_t offset = 0) {
  if (row_stride < 0) row_stride = cols;
  const index_t needed = rows == 0 || cols == 0 ? 0 : offset + (rows - 1) * row_stride + cols;
  check(needed <= static_cast<index_t>(s.size()), "make_view: span of ", s.size(),
        " elements is too small for a ", rows, "x", cols, " view with row_stride ", row_stride,
        " and offset ", offset, " (needs ", needed, ")");
  return make_view(s.data(), rows, cols, row_stride, offset);
}

/// A batch of contiguous row-major matrices stored one after another.
/// @throws qtx::error ("make_batch_view: ...") for a negative extent or null data with elements.
template <class T>
batch_view<T> make_batch_view(T* data, index_t batch, index_t rows, index_t cols) {
  check(batch >= 0 && rows >= 0 && cols >= 0, "make_batch_view: negative extent (batch ", batch,
        ", rows ", rows, ", cols ", cols, ")");
  check(data != nullptr || batch * rows * cols == 0, "make_batch_view: null data");
  return {data, batch, rows, cols, rows * cols, cols, 1};
}

/// Shared argument checks of the ops/ front.
template <class A, class B>
void check_same_shape(const char* fn, const char* name_a, const matrix_view<A>& a, const char* name_b,
                      const matrix_view<B>& b) {
  check(a.rows == b.rows && a.cols == b.cols, fn, ": ", name_a, " is ", a.rows, "x", a.cols,
        " but ", name_b, " is ", b.rows, "x", b.cols);
}

/// Throws qtx::error naming `fn` and `name` unless v has non-negative extents and strides and data
/// wherever it has elements: the first check of every ops/ entry point.
template <class T>
void check_view(const char* fn, const char* name, const matrix_view<T>& v) {
  check(v.rows >= 0 && v.cols >= 0, fn, ": ", name, " has negative extent ", v.rows, "x", v.cols);
  check(v.data != nullptr || v.empty(), fn, ": ", name, " is ", v.rows, "x", v.cols,
        " with null data");
  check(v.row_stride >= 0 && v.col_stride >= 0, fn, ": ", name, " has negative stride (",
        v.row_stride, ", ", v.col_stride, ")");
}

}  // namespace qtx

#pragma once
// Activation memory of the nn modules, allocated once for a maximum token count and handed out as
// views for each call: a module's forward pass writes every element of the views it uses before
// reading them, so nothing is zeroed or allocated per call.
#include "../core/buffer.hpp"
#include "../core/error.hpp"
#include "../core/view.hpp"
#include "../config.hpp"

namespace qtx::QTX_ABI::nn {

/// Storage for up to `max_rows` rows of `cols` elements; rows(n) is the (n, cols) view of its start.
template <class T>
class row_buffer {
 public:
  /// An empty buffer (max_rows() == 0).
  row_buffer() = default;
  /// Storage for max_rows × cols elements.
  /// @throws qtx::error when max_rows or cols is negative.
  row_buffer(index_t max_rows, index_t cols) : max_rows_(max_rows), cols_(cols) {
    check(max_rows >= 0 && cols >= 0, "row_buffer: max_rows (", max_rows, ") and cols (", cols,
          ") must be non-negative");
    storage_.reset(max_rows * cols);
  }
  /// The largest row count rows() hands out.
  index_t max_rows() const { return max_rows_; }
  /// Columns of every view.
  index_t cols() const { return cols_; }

  /// The first n rows.
  /// @param fn, what the function and workspace part named by the error when n does not fit.
  /// @throws qtx::error when n is negative or exceeds max_rows().
  matrix_view<T> rows(index_t n, const char* fn, const char* what) {
    check(n >= 0 && n <= max_rows_, fn, ": workspace ", what, " holds ", max_rows_, " tokens, the call needs ", n,
          " (make the workspace for more tokens)");
    return make_view(storage_.data(), n, cols_);
  }

 private:
  index_t max_rows_ = 0, cols_ = 0;
  aligned_buffer<T> storage_;
};

}  // namespace qtx::nn

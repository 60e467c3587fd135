#pragma once
// Activation memory of the nn modules, allocated once for a maximum token count and handed out as
// views for each call: a module's forward pass writes every element of the views it uses before
// reading them, so nothing is zeroed or allocated per call.
#include <memory>
#include <mutex>
#include <optional>

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

/// One workspace that the forward calls of a model take turns on, made on first use. A call that
/// finds it busy (another thread is in a forward pass) runs in a workspace of its own, so a model
/// shared by threads stays correct and a single caller allocates only when it needs more tokens.
template <class Workspace>
class shared_workspace {
 public:
  /// body(workspace) on the shared workspace, made by make() when there is none yet.
  template <class Make, class Body>
  void use(Make&& make, Body&& body) const {
    run(make, body, [](const Workspace&) { return true; });
  }
  /// use() for a call of `tokens` tokens: the shared workspace is made again, by make(tokens), when
  /// it holds fewer (a larger batch than any before).
  template <class Make, class Body>
  void use(index_t tokens, Make&& make, Body&& body) const {
    run([&] { return make(tokens); }, body, [&](const Workspace& ws) { return ws.max_tokens() >= tokens; });
  }

 private:
  template <class Make, class Body, class Fits>
  void run(Make&& make, Body&& body, Fits&& fits) const {
    std::unique_lock lock(*mutex_, std::try_to_lock);
    if (!lock.owns_lock()) {
      Workspace own = make();
      body(own);
      return;
    }
    if (!ws_ || !fits(*ws_)) ws_.emplace(make());
    body(*ws_);
  }
  std::unique_ptr<std::mutex> mutex_ = std::make_unique<std::mutex>();
  mutable std::optional<Workspace> ws_;
};

}  // namespace qtx::nn

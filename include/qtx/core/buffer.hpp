#pragma once
/// @file
/// aligned_buffer<T>: owning, 64-byte aligned (one cache line, one AVX-512 register), move-only.
#include <cstdlib>
#include <cstring>
#include <new>
#include <type_traits>
#include <utility>

#include "error.hpp"
#include "types.hpp"

namespace qtx {

/// Owning, 64-byte aligned, zero-initialised storage for kernel operands and scratch: move-only so a
/// packed weight or a workspace is never copied by accident.
template <class T>
class aligned_buffer {
  static_assert(std::is_trivially_copyable_v<T>, "aligned_buffer holds trivially copyable elements");

 public:
  /// Bytes: one cache line and one AVX-512 register, so aligned vector loads never split lines.
  static constexpr std::size_t alignment = 64;

  aligned_buffer() = default;
  /// `count` zero-initialised elements. @throws qtx::error for a negative count.
  explicit aligned_buffer(index_t count) { reset(count); }
  /// `count` elements, each `fill`. @throws qtx::error for a negative count.
  aligned_buffer(index_t count, T fill) {
    reset(count);
    for (index_t i = 0; i < count; ++i) data_[i] = fill;
  }
  /// Takes o's allocation; o is left empty.
  aligned_buffer(aligned_buffer&& o) noexcept
      : data_(std::exchange(o.data_, nullptr)), size_(std::exchange(o.size_, 0)) {}
  /// Frees this buffer's allocation and takes o's; o is left empty.
  aligned_buffer& operator=(aligned_buffer&& o) noexcept {
    if (this != &o) {
      release();
      data_ = std::exchange(o.data_, nullptr);
      size_ = std::exchange(o.size_, 0);
    }
    return *this;
  }
  aligned_buffer(const aligned_buffer&) = delete;
  aligned_buffer& operator=(const aligned_buffer&) = delete;
  ~aligned_buffer() { release(); }

  /// Re-allocates for `count` zero-initialised elements (old contents are dropped).
  void reset(index_t count) {
    check(count >= 0, "aligned_buffer: count (", count, ") must be non-negative");
    release();
    if (count == 0) return;
    const std::size_t bytes = (static_cast<std::size_t>(count) * sizeof(T) + alignment - 1) /
                              alignment * alignment;
    data_ = static_cast<T*>(std::aligned_alloc(alignment, bytes));
    if (!data_) throw std::bad_alloc();
    std::memset(static_cast<void*>(data_), 0, bytes);
    size_ = count;
  }
  /// Grows to at least `count` elements; keeps the allocation when it is large enough.
  void reserve(index_t count) {
    if (count > size_) reset(count);
  }

  /// The first element (null when empty), 64-byte aligned.
  T* data() noexcept { return data_; }
  /// The first element (null when empty), 64-byte aligned.
  const T* data() const noexcept { return data_; }
  /// Number of elements (not bytes, not the padded capacity).
  index_t size() const noexcept { return size_; }
  /// Element i, unchecked (hot loops).
  T& operator[](index_t i) noexcept { return data_[i]; }
  /// Element i, unchecked (hot loops).
  const T& operator[](index_t i) const noexcept { return data_[i]; }
  /// Range access, so buffers work with range-for and std algorithms.
  T* begin() noexcept { return data_; }
  /// Range access, so buffers work with range-for and std algorithms.
  T* end() noexcept { return data_ + size_; }
  /// Range access, so buffers work with range-for and std algorithms.
  const T* begin() const noexcept { return data_; }
  /// Range access, so buffers work with range-for and std algorithms.
  const T* end() const noexcept { return data_ + size_; }

 private:
  void release() noexcept {
    std::free(data_);
    data_ = nullptr;
    size_ = 0;
  }
  T* data_ = nullptr;
  index_t size_ = 0;
};

}  // namespace qtx

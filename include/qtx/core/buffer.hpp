#pragma once
/// @file
/// aligned_buffer<T>: owning, 64-byte aligned (one cache line, one AVX-512 register), move-only.
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <new>
#include <type_traits>
#include <utility>

#include "error.hpp"
#include "types.hpp"
#include "../config.hpp"

namespace qtx::QTX_ABI {

/// Owning, zero-initialised, 64-byte aligned array of trivially copyable T (move-only).
template <class T>
class aligned_buffer {
  static_assert(std::is_trivially_copyable_v<T>, "aligned_buffer holds trivially copyable elements");

 public:
  /// One cache line, one AVX-512 register.
  static constexpr std::size_t alignment = 64;

  /// An empty buffer.
  aligned_buffer() = default;
  /// `count` zero elements. @throws qtx::error for a negative count.
  explicit aligned_buffer(index_t count) { reset(count); }
  /// `count` copies of `fill`. @throws qtx::error for a negative count.
  aligned_buffer(index_t count, T fill) {
    reset(count);
    for (index_t i = 0; i < count; ++i) data_[i] = fill;
  }
  /// Takes o's memory; o becomes empty.
  aligned_buffer(aligned_buffer&& o) noexcept
      : data_(std::exchange(o.data_, nullptr)), size_(std::exchange(o.size_, 0)) {}
  /// Frees this buffer's memory and takes o's.
  aligned_buffer& operator=(aligned_buffer&& o) noexcept {
    if (this != &o) {
      release();
      data_ = std::exchange(o.data_, nullptr);
      size_ = std::exchange(o.size_, 0);
    }
    return *this;
  }
  /// Not copyable: copies of activation buffers are always a mistake here.
  aligned_buffer(const aligned_buffer&) = delete;
  /// Not copyable.
  aligned_buffer& operator=(const aligned_buffer&) = delete;
  /// Frees the memory.
  ~aligned_buffer() { release(); }

  /// Re-allocates for `count` zero-initialised elements (old contents are dropped).
  void reset(index_t count) {
    check(count >= 0, "aligned_buffer: count (", count, ") must be non-negative");
    release();
    if (count == 0) return;
    const std::size_t bytes = (static_cast<std::size_t>(count) * sizeof(T) + alignment - 1) /
                              alignment * alignment;
    // Aligned operator new (not std::aligned_alloc): a program's replaced operator new sees it.
    data_ = static_cast<T*>(::operator new(bytes, std::align_val_t{alignment}));
    std::memset(static_cast<void*>(data_), 0, bytes);
    size_ = count;
  }
  /// Grows to at least `count` elements; keeps the allocation when it is large enough.
  void reserve(index_t count) {
    if (count > size_) reset(count);
  }

  /// First element (nullptr when empty).
  T* data() noexcept { return data_; }
  /// First element (nullptr when empty).
  const T* data() const noexcept { return data_; }
  /// Number of elements.
  index_t size() const noexcept { return size_; }
  /// Element i (unchecked).
  T& operator[](index_t i) noexcept { return data_[i]; }
  /// Element i (unchecked).
  const T& operator[](index_t i) const noexcept { return data_[i]; }
  /// Iterator to the first element.
  T* begin() noexcept { return data_; }
  /// Iterator past the last element.
  T* end() noexcept { return data_ + size_; }
  /// Iterator to the first element.
  const T* begin() const noexcept { return data_; }
  /// Iterator past the last element.
  const T* end() const noexcept { return data_ + size_; }

 private:
  void release() noexcept {
    if (data_) ::operator delete(static_cast<void*>(data_), std::align_val_t{alignment});
    data_ = nullptr;
    size_ = 0;
  }
  T* data_ = nullptr;
  index_t size_ = 0;
};

}  // namespace qtx

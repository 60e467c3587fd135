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

namespace qtx {

template <class T>
class aligned_buffer {
  static_assert(std::is_trivially_copyable_v<T>, "aligned_buffer holds trivially copyable elements");

 public:
  static constexpr std::size_t alignment = 64;

  aligned_buffer() = default;
  explicit aligned_buffer(index_t count) { reset(count); }
  aligned_buffer(index_t count, T fill) {
    reset(count);
    for (index_t i = 0; i < count; ++i) data_[i] = fill;
  }
  aligned_buffer(aligned_buffer&& o) noexcept
      : data_(std::exchange(o.data_, nullptr)), size_(std::exchange(o.size_, 0)) {}
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

  // Re-allocates for `count` zero-initialised elements (old contents are dropped).
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
  // Grows to at least `count` elements; keeps the allocation when it is large enough.
  void reserve(index_t count) {
    if (count > size_) reset(count);
  }

  T* data() noexcept { return data_; }
  const T* data() const noexcept { return data_; }
  index_t size() const noexcept { return size_; }
  T& operator[](index_t i) noexcept { return data_[i]; }
  const T& operator[](index_t i) const noexcept { return data_[i]; }
  T* begin() noexcept { return data_; }
  T* end() noexcept { return data_ + size_; }
  const T* begin() const noexcept { return data_; }
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

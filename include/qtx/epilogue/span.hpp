#pragma once
/// @file
/// epilogue::span<T>: the per-channel or per-row data of an epilogue stage, a pointer and its length.
///
/// A stage keeps its length next to its pointer so that ops::gemm can check it against C once per
/// call (a bias shorter than N would otherwise be read out of bounds). std::span would do on the host,
/// but stages are also copied into CUDA kernels, where std::span's accessors are not __device__ (and
/// assert on the host side in checked builds); this one is trivially copyable and host/device usable.
///
/// Built from anything contiguous the caller keeps alive (std::vector, std::array, a C array,
/// std::span), or from a pointer and a count:
///   epilogue::bias<int32_t>{bias_vector}            epilogue::bias<int32_t>{{device_ptr, n}}
#include <cstddef>
#include <iterator>
#include <span>
#include <type_traits>

#include "../core/types.hpp"
#include "../config.hpp"

namespace qtx::QTX_ABI::epilogue {

/// A non-owning view of `size()` contiguous elements, usable in host and device code.
/// Trivially copyable; it never owns or checks what it points at (ops::gemm checks the length).
template <class T>
class span {
 public:
  /// The element type (const T for read-only stage data).
  using element_type = T;

  /// An empty span (null data, length 0).
  constexpr span() = default;

  /// `count` elements starting at `data`; `data` may be a device pointer.
  QTX_HOST_DEVICE constexpr span(T* data, index_t count) : data_(data), size_(count) {}

  /// The elements of a contiguous container or array the caller keeps alive (lvalues only, so a
  /// temporary cannot leave the stage pointing at freed memory).
  template <class Range>
    requires(!std::is_same_v<std::remove_cv_t<Range>, span> &&
             requires(Range& r) {
               { std::data(r) } -> std::convertible_to<T*>;
               std::size(r);
             })
  constexpr span(Range& r) : data_(std::data(r)), size_(static_cast<index_t>(std::size(r))) {}

  /// The elements of a std::span (which does not own them either, so a temporary one is fine).
  template <class U, std::size_t Extent>
    requires std::is_convertible_v<U*, T*>
  constexpr span(std::span<U, Extent> s) : data_(s.data()), size_(static_cast<index_t>(s.size())) {}

  /// A span of non-const data converts to a span of const data.
  template <class U>
    requires(std::is_same_v<const U, T> && !std::is_same_v<U, T>)
  QTX_HOST_DEVICE constexpr span(const span<U>& other) : data_(other.data()), size_(other.size()) {}

  /// The first element; may be a device pointer.
  QTX_HOST_DEVICE constexpr T* data() const { return data_; }
  /// Number of elements, checked against the GEMM's M or N by the stage's validate().
  QTX_HOST_DEVICE constexpr index_t size() const { return size_; }
  /// True when the span holds no element.
  QTX_HOST_DEVICE constexpr bool empty() const { return size_ == 0; }
  /// Element i; the caller guarantees 0 ≤ i < size() (ops::gemm has checked the length).
  QTX_HOST_DEVICE constexpr T& operator[](index_t i) const { return data_[i]; }

 private:
  T* data_ = nullptr;
  index_t size_ = 0;
};

}  // namespace qtx::epilogue

#pragma once
/// @file
/// Element traits and the scalar conversions every backend must reproduce bit-for-bit.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <type_traits>

#include "../config.hpp"

namespace qtx {

/// Signed extents and strides everywhere: negative strides and differences never wrap.
using index_t = std::ptrdiff_t;

template <class T>
struct element_traits;

/// float: the real-valued path (activations before quantization, dequantized outputs).
template <>
struct element_traits<float> {
  /// Short type name used in error messages.
  static constexpr const char* name = "f32";
  /// Not an 8-bit quantized type.
  static constexpr bool is_quantized = false;
};
/// int32: GEMM accumulators and integer biases.
template <>
struct element_traits<int32_t> {
  /// Short type name used in error messages.
  static constexpr const char* name = "s32";
  /// Not an 8-bit quantized type (it holds accumulators).
  static constexpr bool is_quantized = false;
  /// Smallest value, for saturate_cast.
  static constexpr int32_t min = std::numeric_limits<int32_t>::min();
  /// Largest value, for saturate_cast.
  static constexpr int32_t max = std::numeric_limits<int32_t>::max();
};
/// int8: symmetric weights (zero point 0).
template <>
struct element_traits<int8_t> {
  /// Short type name used in error messages.
  static constexpr const char* name = "s8";
  /// An 8-bit quantized type.
  static constexpr bool is_quantized = true;
  /// Smallest level, the clamp of every quantizer.
  static constexpr int32_t min = -128;
  /// Largest level, the clamp of every quantizer.
  static constexpr int32_t max = 127;
};
/// uint8: asymmetric activations (the u8 operand of vpdpbusd).
template <>
struct element_traits<uint8_t> {
  /// Short type name used in error messages.
  static constexpr const char* name = "u8";
  /// An 8-bit quantized type.
  static constexpr bool is_quantized = true;
  /// Smallest level, the clamp of every quantizer.
  static constexpr int32_t min = 0;
  /// Largest level, the clamp of every quantizer.
  static constexpr int32_t max = 255;
};

template <class T>
concept quantized_element = element_traits<std::remove_cv_t<T>>::is_quantized;

}  // namespace qtx

// Functions with bodies are compiled with the including translation unit's ISA flags, so they
// live in the ISA-keyed namespace (config.hpp); the types above are shared by every ISA.
namespace qtx::QTX_ABI {

/// Round to nearest, ties to even: the rounding of every quantizer in qtx. It matches the
/// default MXCSR mode used by cvtps2dq on x86 and __float2int_rn on CUDA, so vector backends agree
/// with this scalar definition exactly. Values outside int32 are clamped first (the callers
/// clamp to 8 bits afterwards, so this only has to be monotone, not exact, out there).
QTX_HOST_DEVICE inline int32_t round_half_even(float x) {
  constexpr float lo = -2147483648.0f;
  constexpr float hi = 2147483520.0f;  // largest float below 2^31
  if (!(x > lo)) return x != x ? 0 : std::numeric_limits<int32_t>::min();
  if (x > hi) return std::numeric_limits<int32_t>::max();
  return static_cast<int32_t>(std::nearbyint(x));
}

/// Clamp an int32 into the range of T (int8/uint8/int32).
template <class T>
QTX_HOST_DEVICE constexpr T saturate_cast(int32_t v) {
  constexpr int32_t lo = element_traits<T>::min;
  constexpr int32_t hi = element_traits<T>::max;
  return static_cast<T>(v < lo ? lo : (v > hi ? hi : v));
}

}  // namespace qtx

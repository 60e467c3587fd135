#pragma once
/// @file
/// Element types of tensor files (the safetensors spellings) and the conversions of 16-bit floats
/// to float. IEEE binary16 (F16): 1 sign, 5 exponent (bias 15), 10 mantissa bits. bfloat16 (BF16):
/// the upper 16 bits of a binary32. Both widen to float exactly, so the conversions are bit exact.
#include <bit>
#include <cstdint>
#include <optional>
#include <string_view>
#include <type_traits>

#include "../core/types.hpp"
#include "../config.hpp"

namespace qtx::QTX_ABI::io {

/// The element types a safetensors file can declare (F8 formats excepted).
enum class dtype { boolean, u8, i8, u16, i16, u32, i32, u64, i64, f16, bf16, f32, f64 };

/// What the reader needs to know of a dtype: its header name and element size.
struct dtype_info {
  /// The dtype described.
  dtype type;
  std::string_view name;  ///< as written in a safetensors header
  index_t size;           ///< bytes per element
};

/// Every dtype's name and size: one table, so parsing and writing cannot disagree.
inline constexpr dtype_info dtype_table[] = {
    {dtype::boolean, "BOOL", 1}, {dtype::u8, "U8", 1},    {dtype::i8, "I8", 1},
    {dtype::u16, "U16", 2},      {dtype::i16, "I16", 2},  {dtype::u32, "U32", 4},
    {dtype::i32, "I32", 4},      {dtype::u64, "U64", 8},  {dtype::i64, "I64", 8},
    {dtype::f16, "F16", 2},      {dtype::bf16, "BF16", 2}, {dtype::f32, "F32", 4},
    {dtype::f64, "F64", 8},
};

/// t's table entry.
constexpr const dtype_info& info(dtype t) {
  for (const auto& entry : dtype_table)
    if (entry.type == t) return entry;
  return dtype_table[0];  // unreachable for a valid enumerator
}
/// t's name as written in a safetensors header ("F32").
constexpr std::string_view name(dtype t) { return info(t).name; }
/// Bytes per element of t.
constexpr index_t size_of(dtype t) { return info(t).size; }
/// True for the floating-point dtypes (F16, BF16, F32, F64).
constexpr bool is_floating(dtype t) {
  return t == dtype::f16 || t == dtype::bf16 || t == dtype::f32 || t == dtype::f64;
}

/// "F32" → dtype::f32; nullopt for a name qtx does not know (F8 formats included).
constexpr std::optional<dtype> parse_dtype(std::string_view text) {
  for (const auto& entry : dtype_table)
    if (entry.name == text) return entry.type;
  return std::nullopt;
}

/// The dtype whose elements a C++ type reads without conversion. bool is deliberately absent: a
/// BOOL byte other than 0 or 1 read as a C++ bool is undefined behaviour, so BOOL stays raw bytes.
template <class T>
constexpr std::optional<dtype> dtype_for() {
  using std::is_same_v;
  if constexpr (is_same_v<T, std::uint8_t>) return dtype::u8;
  else if constexpr (is_same_v<T, std::int8_t>) return dtype::i8;
  else if constexpr (is_same_v<T, std::uint16_t>) return dtype::u16;
  else if constexpr (is_same_v<T, std::int16_t>) return dtype::i16;
  else if constexpr (is_same_v<T, std::uint32_t>) return dtype::u32;
  else if constexpr (is_same_v<T, std::int32_t>) return dtype::i32;
  else if constexpr (is_same_v<T, std::uint64_t>) return dtype::u64;
  else if constexpr (is_same_v<T, std::int64_t>) return dtype::i64;
  else if constexpr (is_same_v<T, float>) return dtype::f32;
  else if constexpr (is_same_v<T, double>) return dtype::f64;
  else return std::nullopt;
}
/// True when T reads a safetensors dtype without conversion.
template <class T>
inline constexpr bool has_dtype = dtype_for<T>().has_value();
/// The dtype read as T without conversion (only for types with has_dtype).
template <class T>
  requires has_dtype<T>
inline constexpr dtype dtype_of = *dtype_for<T>();

/// binary16 bits → float, exact (subnormals normalised, infinities and NaN payloads kept).
constexpr float f16_to_float(std::uint16_t h) {
  constexpr int f16_mantissa_bits = 10, f32_mantissa_bits = 23;
  constexpr std::uint32_t f16_exponent_mask = 0x1F, f16_mantissa_mask = 0x3FF;
  constexpr int exponent_rebias = 127 - 15;
  constexpr std::uint32_t f32_inf_nan_exponent = 0xFF;

  const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
  const std::uint32_t exponent = (h >> f16_mantissa_bits) & f16_exponent_mask;
  std::uint32_t mantissa = h & f16_mantissa_mask;
  constexpr int mantissa_shift = f32_mantissa_bits - f16_mantissa_bits;
  std::uint32_t bits = sign;
  if (exponent == f16_exponent_mask) {
    bits |= f32_inf_nan_exponent << f32_mantissa_bits | mantissa << mantissa_shift;
  } else if (exponent != 0) {
    bits |= (exponent + exponent_rebias) << f32_mantissa_bits | mantissa << mantissa_shift;
  } else if (mantissa != 0) {  // subnormal: m·2^-24; shift the leading 1 into the implicit bit
    int shifts = 0;
    while (!(mantissa & (1u << f16_mantissa_bits))) {
      mantissa <<= 1;
      ++shifts;
    }
    mantissa &= f16_mantissa_mask;
    const std::uint32_t f32_exponent = static_cast<std::uint32_t>(exponent_rebias + 1 - shifts);
    bits |= f32_exponent << f32_mantissa_bits | mantissa << mantissa_shift;
  }
  return std::bit_cast<float>(bits);
}

/// bfloat16 bits → float: bfloat16 is the upper half of a binary32.
constexpr float bf16_to_float(std::uint16_t b) {
  return std::bit_cast<float>(static_cast<std::uint32_t>(b) << 16);
}

}  // namespace qtx::io

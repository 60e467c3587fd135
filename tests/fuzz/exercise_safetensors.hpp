#pragma once
// Loads bytes as a safetensors file and touches everything the reader exposes: every tensor's
// bytes, its typed views and its float conversion, and the metadata. Shared by the libFuzzer
// harness (fuzz_safetensors.cpp) and the corpus regression test (tests/test_io.cpp): malformed
// input must end in qtx::error and nothing else.
#include <cstddef>
#include <cstdint>
#include <span>

#include <qtx/io/safetensors.hpp>

namespace qtx::fuzz {

// Reads every element through values<T>() and matrix<T>(); alignment refusals are qtx::error too.
template <class T>
std::uint64_t touch_typed(const io::safetensors_file& file, const std::string& name,
                          const io::tensor_info& t) {
  std::uint64_t sum = 0;
  try {
    for (const T& v : file.values<T>(name)) sum += static_cast<std::uint64_t>(v != T{});
    if (t.rank() == 2) {
      const auto m = file.matrix<T>(name);
      for (index_t r = 0; r < m.rows; ++r)
        for (index_t c = 0; c < m.cols; ++c) sum += static_cast<std::uint64_t>(m(r, c) != T{});
    }
  } catch (const qtx::error&) {
  }
  return sum;
}

inline std::uint64_t touch_tensor(const io::safetensors_file& file, const std::string& name,
                                  const io::tensor_info& t) {
  std::uint64_t sum = static_cast<std::uint64_t>(t.numel());
  for (std::byte b : t.bytes) sum += static_cast<std::uint64_t>(b);
  if (io::is_floating(t.type))
    for (float v : file.to_float(name)) sum += static_cast<std::uint64_t>(v == v);
  switch (t.type) {
    case io::dtype::u8: return sum + touch_typed<std::uint8_t>(file, name, t);
    case io::dtype::i8: return sum + touch_typed<std::int8_t>(file, name, t);
    case io::dtype::i32: return sum + touch_typed<std::int32_t>(file, name, t);
    case io::dtype::i64: return sum + touch_typed<std::int64_t>(file, name, t);
    case io::dtype::f32: return sum + touch_typed<float>(file, name, t);
    case io::dtype::f64: return sum + touch_typed<double>(file, name, t);
    default: return sum;
  }
}

// Returns a checksum (so nothing is optimised away) and whether the file loaded.
struct exercise_result {
  bool loaded = false;
  std::uint64_t checksum = 0;
};

inline exercise_result exercise_safetensors(std::span<const std::byte> bytes) {
  exercise_result result;
  try {
    const auto file = io::safetensors_file::from_bytes(bytes);
    result.loaded = true;
    for (const auto& [key, value] : file.metadata()) result.checksum += key.size() + value.size();
    for (const auto& [name, t] : file.tensors()) result.checksum += touch_tensor(file, name, t);
  } catch (const qtx::error&) {
  }
  return result;
}

}  // namespace qtx::fuzz

// libFuzzer harness for qtx::io::safetensors_file: arbitrary bytes in, qtx::error or a loaded file
// out. Any other exception, a sanitizer report or a crash is a bug. Built and run by
// scripts/fuzz-safetensors.sh (clang++ -fsanitize=fuzzer,address,undefined).
#include <cstddef>
#include <cstdint>
#include <span>

#include "exercise_safetensors.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto bytes = std::as_bytes(std::span(data, size));
  volatile std::uint64_t sink = qtx::fuzz::exercise_safetensors(bytes).checksum;
  (void)sink;
  return 0;
}

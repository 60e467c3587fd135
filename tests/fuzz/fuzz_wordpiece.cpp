// libFuzzer harness for qtx::io::wordpiece_tokenizer: arbitrary bytes tokenized with a subset of the
// MiniLM vocabulary (or a vocabulary made of the input's lines), with the invariants of
// exercise_wordpiece.hpp checked on every input. Built and run by scripts/fuzz.sh wordpiece.
#include <cstddef>
#include <cstdint>
#include <span>

#include "exercise_wordpiece.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  volatile std::uint64_t sink = qtx::fuzz::exercise_wordpiece(std::span(data, size));
  (void)sink;
  return 0;
}

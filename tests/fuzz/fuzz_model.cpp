// libFuzzer harness for the example models' loaders (examples/{bert,opt,vit}): a checkpoint
// directory with an adversarial config.json and a safetensors file whose tensors the input edits
// (layout in exercise_model.hpp). Loading must end in qtx::error or a model whose FP32 and W8A8
// forward passes give finite outputs. Built and run by scripts/fuzz.sh model.
#include <cstddef>
#include <cstdint>
#include <span>

#include "exercise_model.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  volatile bool loaded = qtx::fuzz::exercise_model(std::span(data, size)).loaded;
  (void)loaded;
  return 0;
}

#pragma once
// CUDA backend tags. Inheritance is the fallback order, as for the CPU tags: an overload taking
// `cuda::sm80` also serves `cuda::sm90`. Both run the same mma.sync + cp.async kernels today; sm90
// is the place for wgmma/TMA specialisations (which need the sm_90a target).
//
// This header compiles without nvcc so host code (and the CPU tests) can name the tags.
#include "../config.hpp"

namespace qtx::QTX_ABI::cuda {

struct sm80 {
  static constexpr const char* name() noexcept { return "sm80"; }
  static constexpr int compute_capability = 80;
};
struct sm90 : sm80 {
  static constexpr const char* name() noexcept { return "sm90"; }
  static constexpr int compute_capability = 90;
};

}  // namespace qtx::cuda

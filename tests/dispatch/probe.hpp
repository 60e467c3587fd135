#pragma once
// What crosses between the baseline test program and the per-ISA variants of probe.cpp: plain
// types only (qtx's own types are ISA-keyed, except views, errors and element types).
#include <cstdint>

namespace dispatch_probe {

/// Inputs and outputs of one probe run, all caller-owned.
struct problem {
  int m, k, n;
  const std::uint8_t* a;  // m x k, zero point a_zero_point
  const std::int8_t* b;   // k x n
  std::int32_t a_zero_point;
  std::int32_t* c;  // m x n, exact int32 result
  int rows, cols;
  const float* x;          // rows x cols
  float* softmax;          // rows x cols
  const float* ln_weight;  // cols
  const float* ln_bias;    // cols
  float* layer_norm;       // rows x cols
};

/// Who ran: the variant's ISA key and qtx's backend tag there.
struct report {
  const char* abi;
  const char* backend;
};

using run_fn = report(const problem&);

}  // namespace dispatch_probe

#pragma once
// Epilogue stages: what happens to a GEMM accumulator between the dot product and the store.
//
// Each stage is a small trivially-copyable descriptor whose call operator is the normative scalar
// semantics of that stage, on host and device. Vector backends implement the same formula on
// whole register tiles and must agree with this (exactly on integer paths).
//
// Values flow as int32 (the integer accumulator, or a requantized level before saturation) or
// float (the dequantized domain). `Along` says how per-channel data is indexed: per_tensor reads
// element 0, per_n reads element n (the output column = the output channel of a Linear layer).
#include <cmath>
#include <cstdint>
#include <type_traits>

#include "../core/types.hpp"
#include "../core/view.hpp"
#include "../quant/quantize.hpp"

namespace qtx::epilogue {

struct per_tensor {
  QTX_HOST_DEVICE static constexpr index_t index(index_t /*n*/) { return 0; }
};
struct per_n {
  QTX_HOST_DEVICE static constexpr index_t index(index_t n) { return n; }
};

// v = acc + bias[n]          (int32 bias for integer GEMMs, float bias for float GEMMs)
template <class T>
struct bias {
  const T* values;
  template <class V>
  QTX_HOST_DEVICE V operator()(V v, index_t /*m*/, index_t n) const {
    static_assert(std::is_same_v<V, T>, "epilogue::bias: bias type must match the value type");
    return v + values[n];
  }
};

// v = float(acc) · scale     (scale = s_a·s_w: back to real units)
template <class Along>
struct dequantize {
  const float* scales;
  QTX_HOST_DEVICE float operator()(int32_t v, index_t /*m*/, index_t n) const {
    return float(v) * scales[Along::index(n)];
  }
};

// q = round_half_even(float(acc) · multiplier) + zp   (multiplier = s_a·s_w / s_out; saturated by the store)
template <class Along>
struct requantize {
  const float* multipliers;
  int32_t zero_point;
  QTX_HOST_DEVICE int32_t operator()(int32_t v, index_t /*m*/, index_t n) const {
    return sat_add(round_half_even(float(v) * multipliers[Along::index(n)]), zero_point);
  }
  QTX_HOST_DEVICE static int32_t sat_add(int32_t a, int32_t b) {
    const int64_t s = int64_t(a) + b;
    return s > INT32_MAX ? INT32_MAX : s < INT32_MIN ? INT32_MIN : int32_t(s);
  }
};

// q = round_half_even(acc · m0 · 2^(shift−31)) + zp   (integer-only requantization)
template <class Along>
struct requantize_fixed {
  const fixed_point_multiplier* multipliers;
  int32_t zero_point;
  QTX_HOST_DEVICE int32_t operator()(int32_t v, index_t /*m*/, index_t n) const {
    return requantize<Along>::sat_add(fixed_point_scale(v, multipliers[Along::index(n)]), zero_point);
  }
};

// q = round_half_even(v · (1/scale)) + zp   (float → quantized level; NaN → zp; saturated by the store)
struct quantize {
  float inv_scale;
  int32_t zero_point;
  QTX_HOST_DEVICE int32_t operator()(float v, index_t /*m*/, index_t /*n*/) const {
    if (v != v) return zero_point;
    return requantize<per_tensor>::sat_add(round_half_even(v * inv_scale), zero_point);
  }
};

// v = max(v, 0)
struct relu {
  template <class V>
  QTX_HOST_DEVICE V operator()(V v, index_t, index_t) const {
    return v > V(0) ? v : V(0);
  }
};

// v = 0.5·v·(1 + erf(v/√2))      (BERT's exact GELU)
struct gelu_erf {
  QTX_HOST_DEVICE float operator()(float v, index_t, index_t) const {
    return 0.5f * v * (1.0f + std::erf(v * 0.70710678118654752f));
  }
};

// v = 0.5·v·(1 + tanh(√(2/π)·(v + 0.044715·v³)))      (GPT-2/OPT-style approximation)
struct gelu_tanh {
  QTX_HOST_DEVICE float operator()(float v, index_t, index_t) const {
    const float inner = 0.79788456080286536f * (v + 0.044715f * v * v * v);
    return 0.5f * v * (1.0f + std::tanh(inner));
  }
};

// v = v + residual(m, n)      (the transformer's skip connection, in real units)
struct residual_add {
  matrix_view<const float> residual;
  QTX_HOST_DEVICE float operator()(float v, index_t m, index_t n) const { return v + residual(m, n); }
};

// v = v · factors[m]   (a per-output-row factor: the attention gate π of token m scales its head output)
struct row_scale {
  const float* factors;
  QTX_HOST_DEVICE float operator()(float v, index_t m, index_t) const { return v * factors[m]; }
};

// v = v · alpha   (e.g. 1/√d on attention scores computed in float)
struct scale {
  float alpha;
  QTX_HOST_DEVICE float operator()(float v, index_t, index_t) const { return v * alpha; }
};

}  // namespace qtx::epilogue

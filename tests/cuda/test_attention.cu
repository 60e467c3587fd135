// Fused CUDA attention vs qtx::ref::attention (double accumulation) on the same fp16/bf16-rounded
// inputs. P is rounded to the input type before P·V (as in every flash kernel), so the stated
// tolerance is |Δ| ≤ tol · max|v| with tol = 4e-3 (fp16) / 2e-2 (bf16).
#include "cuda/support.cuh"

#include <catch2/catch.hpp>
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cmath>
#include <limits>
#include <vector>

#include <qtx/cuda/attention.cuh>
#include <qtx/ref/attention.hpp>

namespace {

using namespace qtx;
using qtx_test::to_device;

template <class T>
T to_t(float x) {
  if constexpr (std::is_same_v<T, __half>) return __float2half_rn(x);
  else return __float2bfloat16_rn(x);
}
template <class T>
float to_f(T x) {
  if constexpr (std::is_same_v<T, __half>) return __half2float(x);
  else return __bfloat162float(x);
}

struct case_config {
  index_t batch, tq, tk, heads, head_dim;
  cuda::attention_config cfg;
  bool mask, gate;
};

template <class T, class TOut = float>
void check_attention(const case_config& c, unsigned seed) {
  const index_t width = c.heads * c.head_dim;
  const auto rounded = [](std::vector<float> v) {
    for (float& x : v) x = to_f(to_t<T>(x));
    return v;
  };
  const auto q = rounded(qtx_test::random_floats(std::size_t(c.batch * c.tq * width), -2.0f, 2.0f, seed));
  const auto k = rounded(qtx_test::random_floats(std::size_t(c.batch * c.tk * width), -2.0f, 2.0f, seed + 1));
  const auto v = rounded(qtx_test::random_floats(std::size_t(c.batch * c.tk * width), -1.0f, 1.0f, seed + 2));
  std::vector<float> mask, gate;
  if (c.mask) {  // sequence b hides its last 3·b keys (padding), plus a random additive bias
    mask = qtx_test::random_floats(std::size_t(c.batch * c.tk), -1.0f, 0.0f, seed + 3);
    for (index_t b = 0; b < c.batch; ++b)
      for (index_t j = std::max<index_t>(0, c.tk - 3 * b); j < c.tk; ++j)
        mask[std::size_t(b * c.tk + j)] = -std::numeric_limits<float>::infinity();
  }
  if (c.gate) gate = qtx_test::random_floats(std::size_t(c.batch * c.tq * c.heads), 0.0f, 1.0f, seed + 4);

  std::vector<float> expected(std::size_t(c.batch * c.tq * width));
  for (index_t b = 0; b < c.batch; ++b) {
    const auto at = [&](const std::vector<float>& x, index_t rows) {
      return matrix_view<const float>{x.data() + b * rows * width, rows, width, width, 1};
    };
    ref::attention(at(q, c.tq), at(k, c.tk), at(v, c.tk),
                   matrix_view<float>{expected.data() + b * c.tq * width, c.tq, width, width, 1}, c.cfg,
                   c.mask ? matrix_view<const float>{mask.data() + b * c.tk, 1, c.tk, c.tk, 1} : matrix_view<const float>{},
                   c.gate ? matrix_view<const float>{gate.data() + b * c.tq * c.heads, c.tq, c.heads, c.heads, 1}
                          : matrix_view<const float>{});
  }

  const auto to_device_t = [](const std::vector<float>& x) {
    std::vector<T> t(x.size());
    for (std::size_t i = 0; i < x.size(); ++i) t[i] = to_t<T>(x[i]);
    return to_device(t);
  };
  const auto q_dev = to_device_t(q), k_dev = to_device_t(k), v_dev = to_device_t(v);
  const auto mask_dev = to_device(mask), gate_dev = to_device(gate);
  cuda::device_buffer<TOut> out(c.batch * c.tq * width);
  const auto bv = [&](auto* data, index_t rows) {
    using E = std::remove_pointer_t<decltype(data)>;
    return batch_view<E>{data, c.batch, rows, width, rows * width, width, 1};
  };
  cuda::attention(cuda::sm80{}, bv(static_cast<const T*>(q_dev.data()), c.tq), bv(static_cast<const T*>(k_dev.data()), c.tk),
                  bv(static_cast<const T*>(v_dev.data()), c.tk), bv(out.data(), c.tq), c.cfg,
                  c.mask ? matrix_view<const float>{mask_dev.data(), c.batch, c.tk, c.tk, 1} : matrix_view<const float>{},
                  c.gate ? batch_view<const float>{gate_dev.data(), c.batch, c.tq, c.heads, c.tq * c.heads, c.heads, 1}
                         : batch_view<const float>{});
  qtx_test::sync();
  const auto got = out.download();
  const double tol = (std::is_same_v<T, __half> ? 4e-3 : 2e-2) * 1.0;  // max|v| = 1
  INFO("batch " << c.batch << " Tq " << c.tq << " Tk " << c.tk << " heads " << c.heads << " d " << c.head_dim
                << " gamma " << c.cfg.gamma << " causal " << c.cfg.causal << " offset " << c.cfg.causal_offset
                << " mask " << c.mask << " gate " << c.gate);
  index_t bad = 0;
  double worst = 0.0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    float value;
    if constexpr (std::is_same_v<TOut, float>) value = got[i];
    else value = to_f(got[i]);
    const double d = std::fabs(double(value) - expected[i]);
    worst = std::max(worst, d);
    bad += !(d <= tol);
  }
  INFO("worst |error| " << worst);
  CHECK(bad == 0);
}

}  // namespace

TEMPLATE_TEST_CASE("cuda attention matches the reference", "[cuda][attention]", __half, __nv_bfloat16) {
  unsigned seed = 1;
  for (index_t head_dim : {32, 64, 128})
    for (index_t tq : {1, 7, 64, 130})
      for (index_t tk : {1, 65, 200}) {
        case_config c{2, tq, tk, head_dim == 128 ? 1 : 3, head_dim, {}, false, false};
        c.cfg.n_heads = c.heads;
        c.cfg.scale = 1.0f / std::sqrt(float(head_dim));
        check_attention<TestType>(c, seed++);                      // vanilla
        c.cfg.gamma = -2.0f / float(tk);                            // clipped, γ = −α/T
        c.mask = c.gate = true;
        check_attention<TestType>(c, seed++);
        c.cfg.gamma = 0.0f;
        c.cfg.causal = true;                                        // causal decoding, KV cache offset
        c.cfg.causal_offset = tk - tq;
        check_attention<TestType>(c, seed++);
        c.cfg.causal_offset = -2;                                   // first queries see no key: zero rows
        c.cfg.gamma = -0.01f;
        c.cfg.zeta = 1.01f;
        check_attention<TestType>(c, seed++);
      }
}

TEST_CASE("cuda attention: fp16 output, BERT-base shape with gate", "[cuda][attention]") {
  case_config c{2, 128, 128, 12, 64, {}, true, true};
  c.cfg.n_heads = 12;
  c.cfg.scale = 0.125f;
  c.cfg.gamma = -0.025f;
  check_attention<__half, __half>(c, 900);
  c.cfg.gamma = 0.0f;
  check_attention<__half, __half>(c, 901);
}

TEST_CASE("cuda attention rejects bad arguments", "[cuda][attention]") {
  cuda::device_buffer<__half> x(4 * 64 * 96);
  const batch_view<const __half> ok{x.data(), 1, 64, 96, 64 * 96, 96, 1};
  cuda::device_buffer<float> out(64 * 96);
  const batch_view<float> out_view{out.data(), 1, 64, 96, 64 * 96, 96, 1};
  cuda::attention_config cfg;
  cfg.n_heads = 3;  // d = 32
  CHECK_NOTHROW(cuda::attention(cuda::sm80{}, ok, ok, ok, out_view, cfg));
  cfg.n_heads = 4;  // d = 24: unsupported
  CHECK_THROWS_AS(cuda::attention(cuda::sm80{}, ok, ok, ok, out_view, cfg), qtx::error);
  cfg.n_heads = 3;
  const batch_view<const __half> misaligned{x.data() + 1, 1, 64, 96, 64 * 96, 96, 1};
  CHECK_THROWS_AS(cuda::attention(cuda::sm80{}, misaligned, ok, ok, out_view, cfg), qtx::error);
  cfg.gamma = 0.5f;
  CHECK_THROWS_AS(cuda::attention(cuda::sm80{}, ok, ok, ok, out_view, cfg), qtx::error);
  qtx_test::sync();
}

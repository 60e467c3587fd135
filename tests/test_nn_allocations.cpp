// Steady-state allocations of the encoder layers: after warm-up calls, a forward pass of the FP32
// and W8A8 layers (post-LN and pre-LN, gated, both attention paths: few queries and fused blocks)
// allocates nothing. Every global operator new of this program is replaced here to count them.
#include <catch2/catch.hpp>

#include "random_weights.hpp"

#include <qtx/nn/encoder_layer.hpp>
#include <qtx/ops/gemm.hpp>
#include <qtx/quant/quantize.hpp>

#include <atomic>
#include <cstdlib>
#include <new>
#include <random>
#include <vector>

namespace {
std::atomic<bool> counting{false};
std::atomic<long> allocations{0};

void* counted(std::size_t bytes, std::size_t alignment) {
  if (counting.load(std::memory_order_relaxed)) allocations.fetch_add(1, std::memory_order_relaxed);
  const std::size_t a = alignment < sizeof(void*) ? sizeof(void*) : alignment;
  void* p = std::aligned_alloc(a, (bytes + a - 1) / a * a + (bytes == 0 ? a : 0));
  if (!p) throw std::bad_alloc();
  return p;
}
}  // namespace

void* operator new(std::size_t n) { return counted(n, alignof(std::max_align_t)); }
void* operator new[](std::size_t n) { return counted(n, alignof(std::max_align_t)); }
void* operator new(std::size_t n, std::align_val_t a) { return counted(n, std::size_t(a)); }
void* operator new[](std::size_t n, std::align_val_t a) { return counted(n, std::size_t(a)); }
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  try { return counted(n, alignof(std::max_align_t)); } catch (...) { return nullptr; }
}
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept {
  try { return counted(n, alignof(std::max_align_t)); } catch (...) { return nullptr; }
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }

using qtx::index_t;
namespace nn = qtx::nn;
using test_models::normal_values;

namespace {

// Heap allocations made by `body` (run with counting on).
template <class Body>
long allocations_of(Body&& body) {
  allocations = 0;
  counting = true;
  body();
  counting = false;
  return allocations.load();
}
}  // namespace

TEST_CASE("encoder layers allocate nothing per forward pass once warm", "[nn][encoder_layer][allocations]") {
  const index_t D = 32, F = 48, H = 4, T_max = 40;
  std::mt19937 rng(11);
  const float s = 1.0f / std::sqrt(float(D));
  std::vector<std::vector<float>> w;
  auto add = [&](index_t n, float stddev, float mean = 0.0f) -> const std::vector<float>& {
    w.push_back(normal_values(n, stddev, rng, mean));
    return w.back();
  };
  w.reserve(20);
  const auto& wq = add(D * D, s); const auto& wk = add(D * D, s); const auto& wv = add(D * D, s);
  const auto& wo = add(D * D, s); const auto& b = add(D, 0.1f);
  const auto& g = add(D, 0.1f, 1.0f); const auto& w1 = add(F * D, s); const auto& b1 = add(F, 0.1f);
  const auto& w2 = add(D * F, s);
  nn::encoder_layer_weights weights{{qtx::make_view(wq.data(), D, D), qtx::make_view(wk.data(), D, D),
                                     qtx::make_view(wv.data(), D, D), qtx::make_view(wo.data(), D, D), b, b, b, b},
                                    {g, b},
                                    {g, b},
                                    {qtx::make_view(w1.data(), F, D), b1, qtx::make_view(w2.data(), D, F), b}};
  for (auto norm : {nn::norm_placement::post_ln, nn::norm_placement::pre_ln}) {
    auto gate = qtx::gate_weights::from_pi_init(qtx::gate_kind::linear_per_head, H, D / H, 0.4f);
    const nn::encoder_layer<> layer(weights, {norm, {H, -0.02f, 1.0f, false, gate}, nn::activation::gelu_erf, 1e-5f});
    auto ws = layer.make_workspace(T_max);
    nn::layer_calibrator calibrator;
    auto x = normal_values(T_max * D, 1.0f, rng);
    auto input = x;
    layer.forward(qtx::make_view(x.data(), T_max, D), ws, &calibrator);
    const nn::quantized_encoder_layer<> q(layer, calibrator.result());
    // Every GEMM input quantized per call, per tensor and per token, with a float residual stream.
    nn::quantized_layer_options dynamic_options;
    dynamic_options.round_residuals = false;
    dynamic_options.set_activations(qtx::activation_scaling::dynamic_token);
    dynamic_options.context = qtx::activation_scaling::dynamic_tensor;
    const nn::quantized_encoder_layer<> dynamic(layer, calibrator.result(), dynamic_options);
    auto qws = q.make_workspace(T_max);
    std::vector<uint8_t> x_q(x.size());
    for (index_t T : {3, 29, 40}) {  // the few-query and the fused attention paths
      CAPTURE(int(norm), T);
      const auto xv = qtx::make_view(x.data(), T, D);
      const auto xq = qtx::make_view(x_q.data(), T, D);
      auto fp32 = [&] { layer.forward(xv, ws); };
      auto w8a8 = [&] {
        if (norm == nn::norm_placement::post_ln)
          q.forward(xv, xq, qws);
        else
          q.forward(xv, qws);
      };
      auto w8a8_dynamic = [&] { dynamic.forward(xv, qws); };
      for (int warm = 0; warm < 2; ++warm) {
        x = input;
        fp32();
        w8a8();
        w8a8_dynamic();
      }
      x = input;
      CHECK(allocations_of(fp32) == 0);
      CHECK(allocations_of(w8a8) == 0);
      CHECK(allocations_of(w8a8_dynamic) == 0);
    }
  }
}

TEST_CASE("re-packing B into the same packed_b allocates nothing once warm, whichever layout B takes",
          "[gemm][allocations]") {
  // On AVX2 a saturation-safe B (7-bit values) takes the vpmaddubsw layout, any other B the widened
  // one; attention re-packs K and V per call, and the layout may change from one call to the next.
  const index_t K = 64, N = 40;
  std::vector<int8_t> narrow(K * N), wide(K * N);
  for (std::size_t i = 0; i < narrow.size(); ++i) narrow[i] = int8_t(int(i % 129) - 64), wide[i] = int8_t(i * 7);
  qtx::ops::packed_b<qtx::cpu::native, int8_t> packed;
  qtx::ops::pack_b_into<qtx::cpu::native>(packed, qtx::make_view<const int8_t>(narrow.data(), K, N));
  CHECK(allocations_of([&] {
          for (int i = 0; i < 4; ++i)
            qtx::ops::pack_b_into<qtx::cpu::native>(packed,
                                                    qtx::make_view<const int8_t>((i % 2 ? narrow : wide).data(), K, N));
        }) == 0);
}

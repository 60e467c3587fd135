// Attention benchmarks: fused vs unfused, FP32 vs W8A8, vanilla vs clipped softmax vs gated.
//
// Shapes: BERT-base (12 heads, d_head 64, T = 128 and 512, batch 1 and 8) and OPT decode (one new
// token against a cache of 512). "core" = softmax(QKᵀ)V only; "block" = the whole attention block
// (Q/K/V/O projections + core + gate), which is what the gate's overhead is measured against.
// Unfused = the textbook pipeline: all heads' T×T scores materialised, softmax over them, then P·V,
// built from the same GEMM and softmax kernels, so the difference is the memory traffic of the
// T×T matrices and the lost cache locality.
#include <benchmark/benchmark.h>

#include <qtx/nn/attention.hpp>
#include <qtx/ops/attention.hpp>
#include <qtx/ops/softmax.hpp>

#include <cmath>
#include <random>
#include <vector>

namespace {
using qtx::index_t;
constexpr index_t heads = 12, d_head = 64, d_model = heads * d_head;
using arch = qtx::cpu::native;

std::vector<float> random_vector(std::size_t n, float stddev, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, stddev);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

std::vector<uint8_t> quantize_minmax(const std::vector<float>& x, qtx::quant_params& qp) {
  float lo = 0, hi = 0;
  for (float v : x) lo = std::min(lo, v), hi = std::max(hi, v);
  qp = qtx::asymmetric_params<uint8_t>(lo, hi);
  std::vector<uint8_t> y(x.size());
  qtx::quantize<uint8_t>(x, y, qp);
  return y;
}

enum variant { vanilla, clipped, gated };
const char* variant_name(int v) { return v == vanilla ? "vanilla" : v == clipped ? "clipped" : "gated"; }

qtx::ops::attention_params params_for(int v, index_t causal_offset = 0, bool causal = false) {
  return {heads, 1.0f / std::sqrt(float(d_head)), v == clipped ? -0.025f : 0.0f, 1.0f, causal, causal_offset};
}

// Attention core over `batch` sequences of T tokens, fused kernel. Args: T, batch, variant, int8.
void BM_core_fused(benchmark::State& state) {
  const index_t T = state.range(0), batch = state.range(1);
  const int v = int(state.range(2));
  const bool int8 = state.range(3) != 0;
  const auto q = random_vector(T * d_model, 1.0f, 1), k = random_vector(T * d_model, 1.0f, 2),
             val = random_vector(T * d_model, 1.0f, 3), gate = std::vector<float>(T * heads, 0.5f);
  const auto p = params_for(v);
  const auto gate_view = v == gated ? qtx::make_view(gate.data(), T, heads) : qtx::matrix_view<const float>{};
  qtx::ops::attention_quant quant;
  const auto q8 = quantize_minmax(q, quant.q), k8 = quantize_minmax(k, quant.k), v8 = quantize_minmax(val, quant.v);
  quant.out = qtx::asymmetric_params<uint8_t>(-3.0f, 3.0f);
  std::vector<float> out(T * d_model);
  std::vector<uint8_t> out8(T * d_model);
  for (auto _ : state) {
    for (index_t b = 0; b < batch; ++b) {
      if (int8)
        qtx::ops::attention(arch{}, qtx::make_view(q8.data(), T, d_model), qtx::make_view(k8.data(), T, d_model),
                            qtx::make_view(v8.data(), T, d_model), qtx::make_view(out8.data(), T, d_model), p,
                            quant, {}, gate_view);
      else
        qtx::ops::attention(arch{}, qtx::make_view(q.data(), T, d_model), qtx::make_view(k.data(), T, d_model),
                            qtx::make_view(val.data(), T, d_model), qtx::make_view(out.data(), T, d_model), p, {},
                            gate_view);
    }
    benchmark::ClobberMemory();
  }
  const double flops = 4.0 * double(T) * T * d_model * batch;
  state.counters["GFLOPS"] = benchmark::Counter(flops, benchmark::Counter::kIsIterationInvariantRate,
                                                benchmark::Counter::kIs1000);
  state.SetLabel(std::string(variant_name(v)) + (int8 ? " w8a8" : " fp32"));
}

// Unfused float pipeline: S = QKᵀ for every head (heads × T × T), softmax over S, then O = P·V.
void BM_core_unfused(benchmark::State& state) {
  const index_t T = state.range(0), batch = state.range(1);
  const int v = int(state.range(2));
  const auto q = random_vector(T * d_model, 1.0f, 1), k = random_vector(T * d_model, 1.0f, 2),
             val = random_vector(T * d_model, 1.0f, 3);
  const auto p = params_for(v);
  std::vector<float> scores(heads * T * T), out(T * d_model);
  for (auto _ : state) {
    for (index_t b = 0; b < batch; ++b) {
      const auto qv = qtx::make_view(q.data(), T, d_model);
      const auto kv = qtx::make_view(k.data(), T, d_model);
      const auto vv = qtx::make_view(val.data(), T, d_model);
      for (index_t h = 0; h < heads; ++h) {
        const auto s = qtx::make_view(scores.data() + h * T * T, T, T);
        const auto kt = qtx::ops::pack_b<arch>(kv.block(0, h * d_head, T, d_head).transposed());
        qtx::ops::gemm(arch{}, qv.block(0, h * d_head, T, d_head), kt, s);
      }
      for (index_t h = 0; h < heads; ++h) {
        const auto s = qtx::make_view(scores.data() + h * T * T, T, T);
        qtx::ops::softmax(arch{}, s, s, qtx::softmax_params{p.scale, p.gamma, p.zeta, false, 0});
      }
      for (index_t h = 0; h < heads; ++h) {
        const auto s = qtx::make_view(scores.data() + h * T * T, T, T);
        const auto vp = qtx::ops::pack_b<arch>(vv.block(0, h * d_head, T, d_head));
        qtx::ops::gemm(arch{}, qtx::matrix_view<const float>(s), vp,
                       qtx::make_view(out.data(), T, d_model).block(0, h * d_head, T, d_head));
      }
    }
    benchmark::ClobberMemory();
  }
  const double flops = 4.0 * double(T) * T * d_model * batch;
  state.counters["GFLOPS"] = benchmark::Counter(flops, benchmark::Counter::kIsIterationInvariantRate,
                                                benchmark::Counter::kIs1000);
  state.SetLabel(std::string(variant_name(v)) + " fp32 unfused");
}

struct block_weights {
  std::vector<float> w[4], b[4];
  block_weights() {
    for (int i = 0; i < 4; ++i) {
      w[i] = random_vector(d_model * d_model, 0.03f, 10 + i);
      b[i] = random_vector(d_model, 0.1f, 20 + i);
    }
  }
  qtx::nn::attention_weights view() const {
    auto m = [&](int i) { return qtx::make_view(w[i].data(), d_model, d_model); };
    return {m(0), m(1), m(2), m(3), b[0], b[1], b[2], b[3]};
  }
};

qtx::nn::attention_options options_for(int v) {
  qtx::nn::attention_options o{heads, v == clipped ? -0.025f : 0.0f, 1.0f, false, {}};
  if (v == gated)
    o.gate = qtx::gate_weights{qtx::gate_kind::linear_per_head, heads, d_head, 0,
                               random_vector(d_model, 0.1f, 40), std::vector<float>(heads, 0.0f), {}, {}};
  return o;
}

// The whole attention block (projections + core + gate + output projection). Args: T, variant, int8.
void BM_block(benchmark::State& state) {
  const index_t T = state.range(0);
  const int v = int(state.range(1));
  const bool int8 = state.range(2) != 0;
  const block_weights w;
  const auto x = random_vector(T * d_model, 1.0f, 5);
  std::vector<float> y(T * d_model);
  const auto xv = qtx::make_view(x.data(), T, d_model);
  const auto yv = qtx::make_view(y.data(), T, d_model);
  if (!int8) {
    const qtx::nn::multi_head_attention<arch> mha(w.view(), options_for(v));
    for (auto _ : state) {
      mha.forward(xv, yv);
      benchmark::ClobberMemory();
    }
  } else {
    qtx::nn::attention_calibration cal;
    std::vector<uint8_t> x8;
    x8 = quantize_minmax(x, cal.input);
    cal.q = cal.k = cal.v = qtx::asymmetric_params<uint8_t>(-4.0f, 4.0f);
    cal.context = qtx::asymmetric_params<uint8_t>(-2.0f, 2.0f);
    const qtx::nn::quantized_multi_head_attention<arch> mha(w.view(), options_for(v), cal);
    for (auto _ : state) {
      mha.forward(qtx::make_view(x8.data(), T, d_model), xv, yv);
      benchmark::ClobberMemory();
    }
  }
  const double flops = 4.0 * double(T) * T * d_model + 8.0 * double(T) * d_model * d_model;
  state.counters["GFLOPS"] = benchmark::Counter(flops, benchmark::Counter::kIsIterationInvariantRate,
                                                benchmark::Counter::kIs1000);
  state.SetLabel(std::string(variant_name(v)) + (int8 ? " w8a8" : " fp32"));
}

// OPT-style decode: one new token attends to a cache of 512 (core only). Args: variant, int8.
void BM_decode(benchmark::State& state) {
  const index_t cache = 512;
  const int v = int(state.range(0));
  const bool int8 = state.range(1) != 0;
  const auto q = random_vector(d_model, 1.0f, 1), k = random_vector(cache * d_model, 1.0f, 2),
             val = random_vector(cache * d_model, 1.0f, 3), gate = std::vector<float>(heads, 0.5f);
  const auto p = params_for(v, cache - 1, true);
  const auto gate_view = v == gated ? qtx::make_view(gate.data(), 1, heads) : qtx::matrix_view<const float>{};
  qtx::ops::attention_quant quant;
  const auto q8 = quantize_minmax(q, quant.q), k8 = quantize_minmax(k, quant.k), v8 = quantize_minmax(val, quant.v);
  quant.out = qtx::asymmetric_params<uint8_t>(-3.0f, 3.0f);
  std::vector<float> out(d_model);
  std::vector<uint8_t> out8(d_model);
  for (auto _ : state) {
    if (int8)
      qtx::ops::attention(arch{}, qtx::make_view(q8.data(), 1, d_model), qtx::make_view(k8.data(), cache, d_model),
                          qtx::make_view(v8.data(), cache, d_model), qtx::make_view(out8.data(), 1, d_model), p,
                          quant, {}, gate_view);
    else
      qtx::ops::attention(arch{}, qtx::make_view(q.data(), 1, d_model), qtx::make_view(k.data(), cache, d_model),
                          qtx::make_view(val.data(), cache, d_model), qtx::make_view(out.data(), 1, d_model), p, {},
                          gate_view);
    benchmark::ClobberMemory();
  }
  state.SetLabel(std::string(variant_name(v)) + (int8 ? " w8a8" : " fp32") + " decode@512");
}

}  // namespace

BENCHMARK(BM_core_fused)
    ->ArgNames({"T", "batch", "variant", "int8"})
    ->ArgsProduct({{128, 512}, {1, 8}, {vanilla, clipped, gated}, {0, 1}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(BM_core_unfused)
    ->ArgNames({"T", "batch", "variant"})
    ->ArgsProduct({{128, 512}, {1, 8}, {vanilla, clipped}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(BM_block)
    ->ArgNames({"T", "variant", "int8"})
    ->ArgsProduct({{128, 512}, {vanilla, clipped, gated}, {0, 1}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(BM_decode)
    ->ArgNames({"variant", "int8"})
    ->ArgsProduct({{vanilla, clipped, gated}, {0, 1}})
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();
BENCHMARK_MAIN();

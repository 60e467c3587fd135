// Row kernels: softmax / clipped softmax, layer norm, fused residual + layer norm + quantize, and
// quantization to uint8 with calibrated (static) or per-call (dynamic per tensor / per token) params.
//
// Shapes: 4096 rows of 128 / 512 / 768 / 3072 (BERT/ViT attention rows, d_model, FFN width), 1 and 2
// threads. Peers in the same run: oneDNN 2.6 softmax_forward and layer_normalization_forward
// (primitives created outside the timed loop), the scalar reference (qtx::cpu::scalar), and for the
// fused kernel the same three steps run separately (add, layer norm, quantize).
// Counter GB/s counts the bytes each variant must move once: float → float 8 B/element; int32 →
// uint8 softmax 5 B/element (+ the broadcast mask row, negligible); residual + LN + quantize with
// the residual stream written: x, r in (8 B) + s (4 B) + uint8 y (1 B) = 13 B/element, the same
// count for the fused and the separate runs so their ratio is the time ratio; quantize 5 B/element
// (dynamic: the same count, so the ratio to static is the price of computing the ranges).
#include <benchmark/benchmark.h>

#include <qtx/core/parallel.hpp>
#include <qtx/ops/elementwise.hpp>
#include <qtx/ops/layernorm.hpp>
#include <qtx/ops/softmax.hpp>

#include <cmath>
#include <random>
#include <span>
#include <vector>

#if defined(QTX_BENCH_WITH_DNNL)
#include <oneapi/dnnl/dnnl.hpp>
#endif

namespace {
using qtx::index_t;
using arch = qtx::cpu::native;
constexpr index_t rows = 4096;

std::vector<float> normal_values(std::size_t n, float stddev, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, stddev);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

void set_bytes(benchmark::State& state, double bytes_per_element, index_t cols) {
  state.counters["GB/s"] = benchmark::Counter(
      bytes_per_element * double(rows * cols) * double(state.iterations()) / 1e9, benchmark::Counter::kIsRate);
}

enum softmax_variant { plain_f32, clipped_f32, clipped_s32_to_u8 };

// Args: cols, threads, variant.
template <class Backend>
void BM_softmax(benchmark::State& state) {
  const index_t cols = state.range(0);
  qtx::set_num_threads(int(state.range(1)));
  const auto variant = softmax_variant(state.range(2));
  const auto x = normal_values(std::size_t(rows * cols), 2.0f, 1);
  std::vector<float> y(x.size());
  std::vector<int32_t> scores(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) scores[i] = int32_t(x[i] * 5000.0f);
  std::vector<uint8_t> q(x.size());
  const std::vector<float> mask(cols, 0.0f);
  const qtx::softmax_params clipped{1.0f, -0.025f, 1.0f};
  const qtx::softmax_params int_clipped{2e-4f, -0.025f, 1.0f};
  for (auto _ : state) {
    if (variant == clipped_s32_to_u8)
      qtx::ops::softmax(Backend{}, qtx::make_view(scores.data(), rows, cols), qtx::make_view(q.data(), rows, cols),
                        int_clipped, qtx::make_view(mask.data(), 1, cols), {1.0f / 255.0f, 0});
    else
      qtx::ops::softmax(Backend{}, qtx::make_view(x.data(), rows, cols), qtx::make_view(y.data(), rows, cols),
                        variant == clipped_f32 ? clipped : qtx::softmax_params{});
    benchmark::ClobberMemory();
  }
  set_bytes(state, variant == clipped_s32_to_u8 ? 5.0 : 8.0, cols);
}

// Args: cols, threads.
template <class Backend>
void BM_layer_norm(benchmark::State& state) {
  const index_t cols = state.range(0);
  qtx::set_num_threads(int(state.range(1)));
  const auto x = normal_values(std::size_t(rows * cols), 2.0f, 2), w = normal_values(cols, 1.0f, 3),
             b = normal_values(cols, 1.0f, 4);
  std::vector<float> y(x.size());
  for (auto _ : state) {
    qtx::ops::layer_norm(Backend{}, qtx::make_view(x.data(), rows, cols), w, b, qtx::make_view(y.data(), rows, cols));
    benchmark::ClobberMemory();
  }
  set_bytes(state, 8.0, cols);
}

// s = x + r (written), y = quantize(LN(s)). Args: cols, threads, fused (1) or three separate steps (0).
void BM_residual_layer_norm_quantize(benchmark::State& state) {
  const index_t cols = state.range(0);
  qtx::set_num_threads(int(state.range(1)));
  const bool fused = state.range(2) != 0;
  const auto x = normal_values(std::size_t(rows * cols), 2.0f, 5), r = normal_values(x.size(), 2.0f, 6),
             w = normal_values(cols, 1.0f, 7), b = normal_values(cols, 1.0f, 8);
  std::vector<float> s(x.size()), y(x.size());
  std::vector<uint8_t> q(x.size());
  const auto qp = qtx::asymmetric_params<uint8_t>(-6.0f, 6.0f);
  const auto sv = qtx::make_view(s.data(), rows, cols);
  for (auto _ : state) {
    if (fused) {
      qtx::ops::add_layer_norm(arch{}, qtx::make_view(x.data(), rows, cols), qtx::make_view(r.data(), rows, cols), sv, w,
                               b, qtx::make_view(q.data(), rows, cols), qtx::layer_norm_default_eps, qp);
    } else {
      qtx::parallel_for(0, rows, [&](index_t i) {
        for (index_t j = 0; j < cols; ++j) s[i * cols + j] = x[i * cols + j] + r[i * cols + j];
      });
      qtx::ops::layer_norm(arch{}, sv, w, b, qtx::make_view(y.data(), rows, cols));
      qtx::ops::quantize(arch{}, qtx::make_view(y.data(), rows, cols), qtx::make_view(q.data(), rows, cols), qp);
    }
    benchmark::ClobberMemory();
  }
  set_bytes(state, 13.0, cols);
}

// float → uint8. Args: cols, threads, scaling (0 static with calibrated params, 1 dynamic per
// tensor, 2 dynamic per token).
void BM_quantize(benchmark::State& state) {
  const index_t cols = state.range(0);
  qtx::set_num_threads(int(state.range(1)));
  const auto scaling = qtx::activation_scaling(state.range(2));
  const auto x = normal_values(std::size_t(rows * cols), 2.0f, 9);
  std::vector<uint8_t> q(x.size());
  std::vector<float> scales(rows);
  std::vector<int32_t> zero_points(rows);
  const auto xv = qtx::make_view(x.data(), rows, cols);
  const auto qv = qtx::make_view(q.data(), rows, cols);
  const auto qp = qtx::asymmetric_params<uint8_t>(-6.0f, 6.0f);
  for (auto _ : state) {
    if (scaling == qtx::activation_scaling::static_tensor)
      qtx::ops::quantize(arch{}, xv, qv, qp);
    else
      qtx::ops::quantize_dynamic(arch{}, xv, qv, std::span(scales), std::span(zero_points), scaling);
    benchmark::ClobberMemory();
  }
  set_bytes(state, 5.0, cols);
}

#if defined(QTX_BENCH_WITH_DNNL)
// Args: cols, threads.
void BM_softmax_onednn(benchmark::State& state) {
  const index_t cols = state.range(0);
  qtx::set_num_threads(int(state.range(1)));
  dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  dnnl::stream stream(engine);
  const dnnl::memory::desc md({rows, cols}, dnnl::memory::data_type::f32, dnnl::memory::format_tag::ab);
  auto x = normal_values(std::size_t(rows * cols), 2.0f, 1);
  std::vector<float> y(x.size());
  dnnl::memory src(md, engine, x.data()), dst(md, engine, y.data());
  const dnnl::softmax_forward::primitive_desc pd({dnnl::prop_kind::forward_inference, md, 1}, engine);
  dnnl::softmax_forward softmax(pd);
  for (auto _ : state) {
    softmax.execute(stream, {{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, dst}});
    stream.wait();
  }
  set_bytes(state, 8.0, cols);
}

void BM_layer_norm_onednn(benchmark::State& state) {
  const index_t cols = state.range(0);
  qtx::set_num_threads(int(state.range(1)));
  dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  dnnl::stream stream(engine);
  const dnnl::memory::desc md({rows, cols}, dnnl::memory::data_type::f32, dnnl::memory::format_tag::ab);
  const dnnl::memory::desc wd({cols}, dnnl::memory::data_type::f32, dnnl::memory::format_tag::a);
  auto x = normal_values(std::size_t(rows * cols), 2.0f, 2), w = normal_values(cols, 1.0f, 3),
       b = normal_values(cols, 1.0f, 4);
  std::vector<float> y(x.size());
  dnnl::memory src(md, engine, x.data()), dst(md, engine, y.data()), scale(wd, engine, w.data()),
      shift(wd, engine, b.data());
  const dnnl::layer_normalization_forward::primitive_desc pd(
      {dnnl::prop_kind::forward_inference, md, qtx::layer_norm_default_eps,
       dnnl::normalization_flags::use_scale | dnnl::normalization_flags::use_shift},
      engine);
  dnnl::layer_normalization_forward ln(pd);
  for (auto _ : state) {
    ln.execute(stream, {{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, dst}, {DNNL_ARG_SCALE, scale}, {DNNL_ARG_SHIFT, shift}});
    stream.wait();
  }
  set_bytes(state, 8.0, cols);
}
#endif

// Row lengths: BERT-base's attention rows (T = 128) and hidden sizes; softmax also at 24 columns,
// the attention rows of the MiniLM demo (sentences of ~24 tokens).
const std::vector<int64_t> hidden_columns = {128, 512, 768, 3072};
const std::vector<int64_t> softmax_columns = {24, 128, 512, 768, 3072};

void row_shapes(benchmark::internal::Benchmark* b, std::vector<int64_t> extra = {},
                const std::vector<int64_t>& columns = hidden_columns) {
  for (int64_t threads : {1, 2})
    for (int64_t cols : columns) {
      std::vector<int64_t> args = {cols, threads};
      args.insert(args.end(), extra.begin(), extra.end());
      b->Args(args);
    }
  b->ArgNames(extra.empty() ? std::vector<std::string>{"cols", "threads"}
                            : std::vector<std::string>{"cols", "threads", "variant"})
      ->Unit(benchmark::kMicrosecond)
      ->UseRealTime();
}
}  // namespace

BENCHMARK(BM_softmax<arch>)->Apply([](auto* b) {
  for (int64_t v : {plain_f32, clipped_f32, clipped_s32_to_u8}) row_shapes(b, {v}, softmax_columns);
});
BENCHMARK(BM_softmax<qtx::cpu::scalar>)->Apply([](auto* b) { row_shapes(b, {plain_f32}, softmax_columns); });
BENCHMARK(BM_layer_norm<arch>)->Apply([](auto* b) { row_shapes(b); });
BENCHMARK(BM_layer_norm<qtx::cpu::scalar>)->Apply([](auto* b) { row_shapes(b); });
BENCHMARK(BM_residual_layer_norm_quantize)->Apply([](auto* b) {
  row_shapes(b, {1});
  row_shapes(b, {0});
});
BENCHMARK(BM_quantize)->Apply([](auto* b) {
  for (int64_t scaling : {0, 1, 2}) row_shapes(b, {scaling});
});
#if defined(QTX_BENCH_WITH_DNNL)
BENCHMARK(BM_softmax_onednn)->Apply([](auto* b) { row_shapes(b, {}, softmax_columns); });
BENCHMARK(BM_layer_norm_onednn)->Apply([](auto* b) { row_shapes(b); });
#endif

BENCHMARK_MAIN();

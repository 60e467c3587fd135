// GEMM benchmarks: qtx int8 (raw s32, fused requantize → u8) and fp32 against oneDNN matmul
// (u8s8s32, f32) and Eigen sgemm, in one executable, 1 and 2 threads.
//
// On AVX2 without VNNI, oneDNN's u8s8 matmul saturates pairs of products in int16 (vpmaddubsw):
// with A = 255, B = 127, K = 64 Debian's oneDNN 2.6.3 (gemm:jit) returns 1,048,544 instead of
// 2,072,640 (AMD EPYC, Zen 3). qtx is exact: 8-bit B runs widened through vpmaddwd, 7-bit B
// (BM_qtx_int8_w7) through vpmaddubsw, where no pair can saturate.
//
// Shapes M×K×N: BERT-base (T = 128 / 512: 768×768, 768×3072, 3072×768), decode (1×768×768), a
// large 32×4096×4096 and 2048×1024×1024. Weights are packed outside the timed loop for every
// library: qtx pack_b; oneDNN gets format_tag::any for the weights (its best layout), reordered
// once, with the primitive and memories reused; Eigen has no pre-packing API (it packs inside
// each product; noted in its label).
//
// Counters: GOPS (2·M·N·K per call) and % of the *measured* peak of one core (peak.hpp: enough
// independent chains for every pipe × latency, one probe per ISA, all printed as BM_peak rows and
// the backend's in the context header with the CPU model); the percentages use that rate × threads. Threads: qtx::set_num_threads sets the OpenMP count,
// which oneDNN (Debian's build uses OpenMP) and Eigen (setNbThreads) follow too.
//
// Shared machines are noisy: times are the main thread's CPU time (a descheduled stretch does not
// count; with 2 threads the main thread also works and waits at the join, so it tracks the wall
// time of the parallel part). Run with --benchmark_repetitions=5 and read the "max" aggregate of
// the GOPS counters (the least disturbed repetition); "min" is reported for the time.
// qtx first: it includes <immintrin.h> under a pragma that silences GCC 12's false
// -Wmaybe-uninitialized in the intrinsics headers (for Eigen's kernels too).
#include <qtx/nn/linear.hpp>
#include <qtx/ops/gemm.hpp>

#include <benchmark/benchmark.h>

#include <Eigen/Core>

#include "peak.hpp"

#include <algorithm>
#include <array>
#include <cstdint>
#include <limits>
#include <string>
#include <type_traits>
#include <random>
#include <utility>
#include <vector>

#ifdef QTX_BENCH_WITH_DNNL
#include <oneapi/dnnl/dnnl.hpp>
#endif

namespace {
using qtx::index_t;
using arch = qtx::cpu::native;

// ---- measured peak (peak.hpp): the probe of the instruction mix this build's backend runs ----
// AVX2 int8 is measured against vpmaddubsw+vpmaddwd, the fastest AVX2 int8 mix (oneDNN's), so the
// percentage shows what an exact kernel leaves on the table.
// Where AMX is in use, int8 "% of peak" is of tdpbusd's rate: the best int8 mix the core has (the
// rows without AMX, qtx's and oneDNN's, then show what they leave on the table).
const qtx_bench::peak_probe& int8_probe() {
  if constexpr (std::is_same_v<arch, qtx::cpu::avx512_vnni>)
    return qtx::amx_enabled() ? qtx_bench::int8_tdpbusd : qtx_bench::int8_vpdpbusd512;
  if constexpr (std::is_same_v<arch, qtx::cpu::avx_vnni>) return qtx_bench::int8_vpdpbusd256;
  return qtx_bench::int8_maddubs256;
}
const qtx_bench::peak_probe& fp32_probe() {
  if constexpr (std::is_same_v<arch, qtx::cpu::avx512_vnni>) return qtx_bench::fp32_fma512;
  return qtx_bench::fp32_fma256;
}
double peak_int8_gops() { return int8_probe().gops(); }    // one core
double peak_fp32_gflops() { return fp32_probe().gops(); }  // one core

// One row per probe (all are in every build; 0 where the CPU lacks the ISA), registered in main.
void BM_peak(benchmark::State& state, const qtx_bench::peak_probe* probe) {
  for (auto _ : state) benchmark::DoNotOptimize(probe->gops());
  state.counters["GOPS"] = probe->gops();
  state.SetLabel(probe->name);
}

// ---- shared helpers ----
struct shape {
  index_t m, k, n;
  int threads;
};
shape shape_of(const benchmark::State& state) {
  return {state.range(0), state.range(1), state.range(2), int(state.range(3))};
}

void set_threads(int threads) {
  qtx::set_num_threads(threads);
  Eigen::setNbThreads(threads);
}

void report(benchmark::State& state, const shape& s, double peak_per_core) {
  const double ops = 2.0 * double(s.m) * double(s.n) * double(s.k);
  state.counters["GOPS"] = benchmark::Counter(ops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["%peak"] =
      benchmark::Counter(ops * 1e-9 * 100.0 / (peak_per_core * s.threads), benchmark::Counter::kIsIterationInvariantRate);
}

template <class T>
std::vector<T> random_values(index_t count, unsigned seed) {
  std::mt19937 rng(seed);
  std::vector<T> v(static_cast<std::size_t>(count));
  if constexpr (std::is_floating_point_v<T>) {
    std::normal_distribution<float> d(0.0f, 1.0f);
    for (auto& x : v) x = d(rng);
  } else {
    std::uniform_int_distribution<int> d(std::numeric_limits<T>::min(), std::numeric_limits<T>::max());
    for (auto& x : v) x = T(d(rng));
  }
  return v;
}

// ---- qtx ----
// Args: M, K, N, threads, fused (0 = raw int32 accumulators, 1 = bias + requantize per channel → u8).
// weight_bits 8: B uniform over int8; 7: over [−64, 63] (ONNX Runtime's reduce_range weights, which the
// AVX2 backend runs through its exact vpmaddubsw kernel; other backends run both alike).
void qtx_int8(benchmark::State& state, int weight_bits) {
  const shape s = shape_of(state);
  const bool fused = state.range(4) != 0;
  set_threads(s.threads);
  const auto a = random_values<uint8_t>(s.m * s.k, 1);
  auto b = random_values<int8_t>(s.k * s.n, 2);
  if (weight_bits == 7)
    for (auto& v : b) v = int8_t(v / 2);
  const auto packed = qtx::ops::pack_b<arch>(qtx::make_view(b.data(), s.k, s.n));
  std::vector<int32_t> c32(s.m * s.n), bias(s.n, 100);
  std::vector<uint8_t> c8(s.m * s.n);
  std::vector<float> multipliers(s.n, 1.0f / 4096.0f);
  const auto av = qtx::make_view(a.data(), s.m, s.k);
  const auto requant = qtx::epilogue::make_pipeline(qtx::epilogue::bias<int32_t>{bias},
                                                     qtx::epilogue::requantize<qtx::epilogue::per_n>{multipliers, 128});
  constexpr int32_t a_zero_point = 128;
  for (auto _ : state) {
    if (fused)
      qtx::ops::gemm(arch{}, av, packed, qtx::make_view(c8.data(), s.m, s.n), requant, a_zero_point);
    else
      qtx::ops::gemm(arch{}, av, packed, qtx::make_view(c32.data(), s.m, s.n), qtx::epilogue::make_pipeline(), 0);
    benchmark::ClobberMemory();
  }
  report(state, s, peak_int8_gops());
#if QTX_HAS_AMX_KERNEL
  const bool amx = qtx::amx_enabled() && s.m >= qtx::cpu::gemm_detail::amx_min_rows;
#else
  const bool amx = false;
#endif
  state.SetLabel(std::string(fused ? "u8s8 bias+requant->u8 (za=128)" : "u8s8->s32") +
                 (weight_bits == 7 ? ", 7-bit B" : "") + (amx ? ", AMX" : ""));
}
// The attention output projection W_O as the W8A8 layers run it (nn::qlinear, float output, bias):
// its input, the context, on one uint8 grid (groups 1) or one grid per head (groups = heads: one GEMM
// per head, the heads summed in float; quantized_layer_options::per_head_context). Args: M, K, N,
// threads, groups.
void BM_qlinear_context(benchmark::State& state) {
  const shape s = shape_of(state);
  const index_t groups = state.range(4);
  set_threads(s.threads);
  const auto a = random_values<uint8_t>(s.m * s.k, 3);
  const auto w = random_values<float>(s.n * s.k, 4), bias = random_values<float>(s.n, 5);
  const std::vector<qtx::quant_params> grids(static_cast<std::size_t>(groups), qtx::quant_params{0.02f, 128});
  const qtx::nn::qlinear<arch> layer(qtx::make_view(w.data(), s.n, s.k), grids, bias);
  std::vector<float> y(s.m * s.n);
  for (auto _ : state) {
    layer.forward(qtx::make_view(a.data(), s.m, s.k), qtx::make_view(y.data(), s.m, s.n));
    benchmark::ClobberMemory();
  }
  report(state, s, peak_int8_gops());
  state.SetLabel(groups == 1 ? "one context grid" : std::to_string(groups) + " grids (per head)");
}

void BM_qtx_int8(benchmark::State& state) { qtx_int8(state, 8); }
void BM_qtx_int8_w7(benchmark::State& state) { qtx_int8(state, 7); }
// The same GEMMs with AMX switched off (vpdpbusd zmm), on CPUs where BM_qtx_int8 runs AMX: both
// paths of the avx512_vnni backend in one run. Registered only where AMX is in use.
void BM_qtx_int8_no_amx(benchmark::State& state) {
  qtx::set_amx_enabled(false);
  qtx_int8(state, 8);
  qtx::set_amx_enabled(true);
}

void BM_qtx_fp32(benchmark::State& state) {
  const shape s = shape_of(state);
  set_threads(s.threads);
  const auto a = random_values<float>(s.m * s.k, 1);
  const auto b = random_values<float>(s.k * s.n, 2);
  const auto packed = qtx::ops::pack_b<arch>(qtx::make_view(b.data(), s.k, s.n));
  std::vector<float> c(s.m * s.n);
  for (auto _ : state) {
    qtx::ops::gemm(arch{}, qtx::make_view(a.data(), s.m, s.k), packed, qtx::make_view(c.data(), s.m, s.n));
    benchmark::ClobberMemory();
  }
  report(state, s, peak_fp32_gflops());
}

// ---- Eigen (packs B inside every product: it has no pre-packed-weights API) ----
void BM_eigen_fp32(benchmark::State& state) {
  const shape s = shape_of(state);
  set_threads(s.threads);
  using matrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  const matrix a = matrix::Random(s.m, s.k), b = matrix::Random(s.k, s.n);
  matrix c(s.m, s.n);
  for (auto _ : state) {
    c.noalias() = a * b;
    benchmark::ClobberMemory();
  }
  report(state, s, peak_fp32_gflops());
  state.SetLabel("packs B per call");
}

#ifdef QTX_BENCH_WITH_DNNL
// oneDNN matmul with weights in format_tag::any (reordered once into the primitive's layout).
template <class TA, class TB, class TC>
void dnnl_matmul(benchmark::State& state, dnnl::memory::data_type ta, dnnl::memory::data_type tb,
                 dnnl::memory::data_type tc, double peak) {
  using dnnl::memory;
  const shape s = shape_of(state);
  set_threads(s.threads);
  dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  dnnl::stream stream(engine);
  const memory::desc a_md({s.m, s.k}, ta, memory::format_tag::ab);
  const memory::desc b_plain({s.k, s.n}, tb, memory::format_tag::ab);
  const memory::desc b_any({s.k, s.n}, tb, memory::format_tag::any);
  const memory::desc c_md({s.m, s.n}, tc, memory::format_tag::ab);
  const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(a_md, b_any, c_md), engine);
  auto a = random_values<TA>(s.m * s.k, 1);
  auto b = random_values<TB>(s.k * s.n, 2);
  std::vector<TC> c(s.m * s.n);
  memory a_mem(a_md, engine, a.data()), b_user(b_plain, engine, b.data()), c_mem(c_md, engine, c.data());
  memory b_mem(pd.weights_desc(), engine);
  dnnl::reorder(b_user, b_mem).execute(stream, b_user, b_mem);
  const dnnl::matmul matmul(pd);
  for (auto _ : state) {
    matmul.execute(stream, {{DNNL_ARG_SRC, a_mem}, {DNNL_ARG_WEIGHTS, b_mem}, {DNNL_ARG_DST, c_mem}});
    stream.wait();
  }
  report(state, s, peak);
  state.SetLabel(pd.impl_info_str());
}
void BM_dnnl_int8(benchmark::State& state) {
  using dt = dnnl::memory::data_type;
  dnnl_matmul<uint8_t, int8_t, int32_t>(state, dt::u8, dt::s8, dt::s32, peak_int8_gops());
}
void BM_dnnl_fp32(benchmark::State& state) {
  using dt = dnnl::memory::data_type;
  dnnl_matmul<float, float, float>(state, dt::f32, dt::f32, dt::f32, peak_fp32_gflops());
}
#endif

// M, K, N
constexpr index_t shapes[][3] = {{128, 768, 768}, {128, 768, 3072}, {128, 3072, 768}, {512, 768, 768},
                                 {512, 768, 3072}, {1, 768, 768},   {32, 4096, 4096}, {2048, 1024, 1024}};

void all_shapes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"M", "K", "N", "threads"});
  for (int threads : {1, 2})
    for (const auto& s : shapes) b->Args({s[0], s[1], s[2], threads});
}
void all_shapes_fused(benchmark::internal::Benchmark* b) {
  b->ArgNames({"M", "K", "N", "threads", "fused"});
  for (int fused : {0, 1})
    for (int threads : {1, 2})
      for (const auto& s : shapes) b->Args({s[0], s[1], s[2], threads, fused});
}

void all_shapes_unfused(benchmark::internal::Benchmark* b) {
  b->ArgNames({"M", "K", "N", "threads", "fused"});
  for (int threads : {1, 2})
    for (const auto& s : shapes) b->Args({s[0], s[1], s[2], threads, 0});
}

// Short row counts (a sentence of a small model, a few decode streams): where AMX's 32-row blocks
// start to pay (amx_min_rows, cpu/gemm/amx.hpp).
void short_rows_shapes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"M", "K", "N", "threads", "fused"});
  for (index_t m : {4, 8, 16, 24, 32, 64}) b->Args({m, 768, 768, 1, 0});
}

// W_O of MiniLM (a 24-token sentence, 12 heads of 32) and of BERT-base (T = 128, 12 heads of 64).
void context_shapes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"M", "K", "N", "threads", "groups"});
  for (const auto& s : {std::array<index_t, 3>{24, 384, 384}, std::array<index_t, 3>{128, 768, 768}})
    for (index_t groups : {1, 12}) b->Args({s[0], s[1], s[2], 1, groups});
}

double best(const std::vector<double>& v) { return *std::max_element(v.begin(), v.end()); }
double least(const std::vector<double>& v) { return *std::min_element(v.begin(), v.end()); }

#define QTX_GEMM_BENCH(fn, shapes_fn)                                                                  \
  BENCHMARK(fn)->Apply(shapes_fn)->Unit(benchmark::kMicrosecond)->MinTime(0.2)          \
      ->ComputeStatistics("max", best)->ComputeStatistics("min", least)

QTX_GEMM_BENCH(BM_qtx_int8, all_shapes_fused);
QTX_GEMM_BENCH(BM_qtx_int8_w7, all_shapes_unfused);
QTX_GEMM_BENCH(BM_qtx_int8, short_rows_shapes);
QTX_GEMM_BENCH(BM_qlinear_context, context_shapes);
#ifdef QTX_BENCH_WITH_DNNL
QTX_GEMM_BENCH(BM_dnnl_int8, all_shapes);
#endif
QTX_GEMM_BENCH(BM_qtx_fp32, all_shapes);
#ifdef QTX_BENCH_WITH_DNNL
QTX_GEMM_BENCH(BM_dnnl_fp32, all_shapes);
#endif
QTX_GEMM_BENCH(BM_eigen_fp32, all_shapes);

}  // namespace

// BENCHMARK_MAIN, plus the CPU model, the backend and the measured peaks in the context header.
int main(int argc, char** argv) {
  for (const auto& probe : qtx_bench::all_probes)
    benchmark::RegisterBenchmark((std::string("BM_peak_") + probe.id).c_str(), BM_peak, &probe)->Iterations(1);
  if (std::is_same_v<arch, qtx::cpu::avx512_vnni> && qtx::amx_enabled())
    for (auto* shapes_fn : {&all_shapes_fused, &short_rows_shapes})
      benchmark::RegisterBenchmark("BM_qtx_int8_no_amx", BM_qtx_int8_no_amx)
          ->Apply(shapes_fn)
          ->Unit(benchmark::kMicrosecond)
          ->MinTime(0.2)
          ->ComputeStatistics("max", best)
          ->ComputeStatistics("min", least);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::AddCustomContext("cpu_model", qtx_bench::cpu_model());
  benchmark::AddCustomContext("qtx_backend", arch::name());
  benchmark::AddCustomContext("peak_int8_GOPS", std::string(int8_probe().name) + ": " + std::to_string(peak_int8_gops()));
  benchmark::AddCustomContext("peak_fp32_GFLOPS", std::string(fp32_probe().name) + ": " + std::to_string(peak_fp32_gflops()));
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

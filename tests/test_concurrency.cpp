// Concurrency: many user threads calling qtx at once, and qtx inside a user's own OpenMP region.
//
// Every op runs once serially first; then each of the threads runs a rotating mix of all of them
// into its own outputs (inputs and packed weights shared read-only) and compares its results with
// the serial ones bit for bit: the kernels have no hidden shared state, and a result does not
// depend on which thread computes it, on how many run at once, or on whether qtx's own parallel
// region can fork (inside a user's parallel region it runs serially). Built by the `tsan` preset
// under ThreadSanitizer (label `concurrency`), where the same runs check for data races.
//
// Sizes: 8 std::threads × 120 iterations over 12 ops, and a 4-thread OpenMP region × 60 iterations;
// a few seconds in Release, well under a minute under TSan on 2 cores.
#include <catch2/catch.hpp>

#include <qtx/cpu/gemm/scratch.hpp>
#include <qtx/ops/attention.hpp>
#include <qtx/ops/gemm.hpp>
#include <qtx/ops/layernorm.hpp>
#include <qtx/ops/softmax.hpp>
#include <qtx/quant/params.hpp>

#include <atomic>
#include <cmath>
#include <cstdint>
#include <functional>
#include <random>
#include <string_view>
#include <thread>
#include <vector>

#if defined(_OPENMP)
#include <omp.h>
#endif

using qtx::index_t;
using arch = qtx::cpu::native;

namespace {

template <class T>
std::vector<T> random_values(std::size_t n, unsigned seed, double lo, double hi) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> d(lo, hi);
  std::vector<T> v(n);
  for (auto& x : v) x = T(std::is_integral_v<T> ? std::round(d(rng)) : d(rng));
  return v;
}

// One op with fixed inputs: run(out) writes its result as bytes into out.
struct op {
  const char* name;
  std::function<void(std::vector<unsigned char>&)> run;
};

template <class T>
void store_bytes(const std::vector<T>& v, std::vector<unsigned char>& out) {
  const auto* bytes = reinterpret_cast<const unsigned char*>(v.data());
  out.assign(bytes, bytes + v.size() * sizeof(T));
}

// All inputs of the ops, shared read-only by the threads.
struct shared_inputs {
  // GEMM: one size under the fork threshold (serial inside qtx), one above it (qtx's own parallel
  // region, nested in the user's thread), and a decode row.
  static constexpr index_t K = 96, N = 136;
  std::vector<uint8_t> a8 = random_values<uint8_t>(80 * K, 1, 0, 255);
  std::vector<int8_t> b8 = random_values<int8_t>(K * N, 2, -128, 127);
  std::vector<float> af = random_values<float>(80 * K, 3, -1, 1), bf = random_values<float>(K * N, 4, -1, 1);
  qtx::ops::packed_b<arch, int8_t> packed8 = qtx::ops::pack_b<arch>(qtx::make_view(b8.data(), K, N), 3);
  qtx::ops::packed_b<arch, float> packedf = qtx::ops::pack_b<arch>(qtx::make_view(bf.data(), K, N));

  // Rows: softmax / clipped softmax / layer norm over 48 × 197.
  static constexpr index_t R = 48, C = 197;
  std::vector<float> x = random_values<float>(R * C, 5, -6, 6), r = random_values<float>(R * C, 6, -1, 1);
  std::vector<int32_t> scores = random_values<int32_t>(R * C, 7, -300000, 300000);
  std::vector<float> mask = random_values<float>(C, 8, -2, 0), w = random_values<float>(C, 9, 0.5, 1.5),
                     b = random_values<float>(C, 10, -0.2, 0.2);

  // Attention: 3 heads × 16, 37 queries (fused path) or 1 (decode path) over 45 keys.
  static constexpr index_t H = 3, D = 48, Tq = 37, Tk = 45;
  std::vector<float> q = random_values<float>(Tq * D, 11, -1, 1), k = random_values<float>(Tk * D, 12, -1, 1),
                     v = random_values<float>(Tk * D, 13, -1, 1), gate = random_values<float>(Tq * H, 14, 0, 1),
                     key_mask = random_values<float>(Tk, 15, -1, 0);
  std::vector<uint8_t> q8 = random_values<uint8_t>(Tq * D, 16, 0, 255), k8 = random_values<uint8_t>(Tk * D, 17, 0, 255),
                       v8 = random_values<uint8_t>(Tk * D, 18, 0, 255);
  qtx::ops::attention_quant quant{{0.02f, 131}, {0.015f, 120}, {0.03f, 127}, {0.01f, 128}};
};

std::vector<op> make_ops(const shared_inputs& in) {
  using S = shared_inputs;
  std::vector<op> ops;
  for (index_t M : {index_t(1), index_t(7), index_t(80)}) {
    ops.push_back({"int8 gemm", [&in, M](auto& out) {
                     std::vector<int32_t> c(M * S::N);
                     qtx::ops::gemm(arch{}, qtx::make_view(in.a8.data(), M, S::K), in.packed8,
                                    qtx::make_view(c.data(), M, S::N), qtx::epilogue::make_pipeline(), 129);
                     store_bytes(c, out);
                   }});
    ops.push_back({"fp32 gemm", [&in, M](auto& out) {
                     std::vector<float> c(M * S::N);
                     qtx::ops::gemm(arch{}, qtx::make_view(in.af.data(), M, S::K), in.packedf,
                                    qtx::make_view(c.data(), M, S::N));
                     store_bytes(c, out);
                   }});
  }
  ops.push_back({"clipped softmax, float", [&in](auto& out) {
                   std::vector<float> y(S::R * S::C);
                   qtx::ops::softmax(arch{}, qtx::make_view(in.x.data(), S::R, S::C), qtx::make_view(y.data(), S::R, S::C),
                                     {0.7f, -0.025f, 1.0f, true, 3}, qtx::make_view(in.mask.data(), 1, S::C));
                   store_bytes(y, out);
                 }});
  ops.push_back({"softmax, int32 to uint8", [&in](auto& out) {
                   std::vector<uint8_t> y(S::R * S::C);
                   qtx::ops::softmax(arch{}, qtx::make_view(in.scores.data(), S::R, S::C),
                                     qtx::make_view(y.data(), S::R, S::C), {2e-5f}, {}, qtx::quant_params{1.0f / 255, 0});
                   store_bytes(y, out);
                 }});
  ops.push_back({"add + layer norm to uint8", [&in](auto& out) {
                   std::vector<float> s(S::R * S::C);
                   std::vector<uint8_t> y(S::R * S::C);
                   qtx::ops::add_layer_norm(arch{}, qtx::make_view(in.x.data(), S::R, S::C),
                                            qtx::make_view(in.r.data(), S::R, S::C), qtx::make_view(s.data(), S::R, S::C),
                                            in.w, in.b, qtx::make_view(y.data(), S::R, S::C), 1e-5f,
                                            qtx::quant_params{0.02f, 128});
                   store_bytes(s, out);
                   out.insert(out.end(), y.begin(), y.end());
                 }});
  ops.push_back({"layer norm, float", [&in](auto& out) {
                   std::vector<float> y(S::R * S::C);
                   qtx::ops::layer_norm(arch{}, qtx::make_view(in.x.data(), S::R, S::C), in.w, in.b,
                                        qtx::make_view(y.data(), S::R, S::C));
                   store_bytes(y, out);
                 }});
  const qtx::ops::attention_params p{S::H, 0.25f, -0.02f, 1.0f, true, S::Tk - S::Tq};
  ops.push_back({"fused float attention (mask, gate, causal)", [&in, p](auto& out) {
                   std::vector<float> o(S::Tq * S::D);
                   qtx::ops::attention(arch{}, qtx::make_view(in.q.data(), S::Tq, S::D),
                                       qtx::make_view(in.k.data(), S::Tk, S::D), qtx::make_view(in.v.data(), S::Tk, S::D),
                                       qtx::make_view(o.data(), S::Tq, S::D), p,
                                       qtx::make_view(in.key_mask.data(), 1, S::Tk),
                                       qtx::make_view(in.gate.data(), S::Tq, S::H));
                   store_bytes(o, out);
                 }});
  ops.push_back({"fused W8A8 attention (gate, causal)", [&in, p](auto& out) {
                   std::vector<uint8_t> o(S::Tq * S::D);
                   qtx::ops::attention(arch{}, qtx::make_view(in.q8.data(), S::Tq, S::D),
                                       qtx::make_view(in.k8.data(), S::Tk, S::D),
                                       qtx::make_view(in.v8.data(), S::Tk, S::D), qtx::make_view(o.data(), S::Tq, S::D),
                                       p, in.quant, {}, qtx::make_view(in.gate.data(), S::Tq, S::H));
                   store_bytes(o, out);
                 }});
  ops.push_back({"decode W8A8 attention (one query, KV-cache offset)", [&in](auto& out) {
                   std::vector<uint8_t> o(S::D);
                   const qtx::ops::attention_params decode{S::H, 0.25f, -0.02f, 1.0f, true, S::Tk - 1};
                   qtx::ops::attention(arch{}, qtx::make_view(in.q8.data(), 1, S::D),
                                       qtx::make_view(in.k8.data(), S::Tk, S::D),
                                       qtx::make_view(in.v8.data(), S::Tk, S::D), qtx::make_view(o.data(), 1, S::D),
                                       decode, in.quant, qtx::make_view(in.key_mask.data(), 1, S::Tk));
                   store_bytes(o, out);
                 }});
  return ops;
}

// Runs iterations of the op mix on one thread; counts results that differ from the serial ones.
struct mix {
  const std::vector<op>& ops;
  const std::vector<std::vector<unsigned char>>& serial;
  std::atomic<long>& mismatches;
  std::atomic<long>& runs;
  void operator()(int thread, int iterations) const {
    std::vector<unsigned char> out;
    for (int it = 0; it < iterations; ++it) {
      const std::size_t i = std::size_t(thread * 5 + it) % ops.size();
      ops[i].run(out);
      if (out != serial[i]) mismatches.fetch_add(1, std::memory_order_relaxed);
      runs.fetch_add(1, std::memory_order_relaxed);
    }
  }
};

struct fixture {
  shared_inputs in;
  std::vector<op> ops = make_ops(in);
  std::vector<std::vector<unsigned char>> serial;
  fixture() {
    serial.resize(ops.size());
    for (std::size_t i = 0; i < ops.size(); ++i) ops[i].run(serial[i]);
  }
};

}  // namespace

TEST_CASE("user threads calling GEMM, softmax, layer norm and attention at once get the serial results",
          "[concurrency]") {
  const fixture f;
  constexpr int threads = 8, iterations = 120;
  std::atomic<long> mismatches{0}, runs{0};
  const mix body{f.ops, f.serial, mismatches, runs};
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) pool.emplace_back(body, t, iterations);
  for (auto& t : pool) t.join();
  CHECK(runs == long(threads) * iterations);
  REQUIRE(mismatches == 0);
}

TEST_CASE("qtx called inside a user's own OpenMP parallel region gets the serial results", "[concurrency]") {
  const fixture f;
  constexpr int threads = 4, iterations = 60;
  std::atomic<long> mismatches{0}, runs{0};
  const mix body{f.ops, f.serial, mismatches, runs};
#if defined(_OPENMP)
  // Each thread of the team calls qtx; qtx sees omp_in_parallel() and runs its loops serially.
#pragma omp parallel num_threads(threads)
  body(omp_get_thread_num(), iterations);
  CHECK(runs == long(threads) * iterations);
#else
  WARN("built without OpenMP: the region is one thread");
  body(0, iterations);
#endif
  REQUIRE(mismatches == 0);
}

TEST_CASE("GEMM scratch kept by a thread between calls is bounded", "[concurrency]") {
  // A (M, K) float A read through a transposed view is always packed into the scratch: M·K·4 bytes.
  constexpr std::size_t limit = qtx::cpu::gemm_scratch_retained_bytes;
  constexpr index_t K = 4100, N = 8;
  constexpr index_t big_m = index_t(limit / (K * sizeof(float))) + 16;  // packed A alone exceeds the bound
  // Small integers: every float sum is exact, so the result is checked exactly.
  auto small_integers = [](std::size_t n, unsigned seed) {
    const auto i = random_values<int32_t>(n, seed, -2, 2);
    return std::vector<float>(i.begin(), i.end());
  };
  const auto at = small_integers(std::size_t(big_m * K), 21), b = small_integers(std::size_t(K * N), 22);
  const auto packed = qtx::ops::pack_b<arch>(qtx::make_view(b.data(), K, N));
  const auto a = qtx::make_view(at.data(), K, big_m).transposed();  // (M, K) with col_stride M

  // Runs (M, K)·(K, N) on the calling thread and checks it exactly; returns the scratch kept after.
  auto run = [&](index_t M) {
    std::vector<float> c(std::size_t(M * N));
    qtx::ops::gemm(arch{}, a.block(0, 0, M, K), packed, qtx::make_view(c.data(), M, N));
    bool exact = true;
    for (index_t m = 0; m < M; m += 37)
      for (index_t n = 0; n < N; ++n) {
        double want = 0;
        for (index_t k = 0; k < K; ++k) want += double(a(m, k)) * double(b[std::size_t(k * N + n)]);
        exact = exact && double(c[std::size_t(m * N + n)]) == want;
      }
    return std::pair{exact, qtx::cpu::gemm_scratch_bytes()};
  };

  SECTION("a small call keeps its scratch (warm), a call above the bound frees it on return") {
    qtx::cpu::release_gemm_scratch();
    CHECK(qtx::cpu::gemm_scratch_bytes() == 0);
    const auto [small_exact, small_kept] = run(64);
    CHECK(small_exact);
    if (arch::name() != std::string_view("scalar")) {  // the scalar backend needs no scratch
      CHECK(small_kept >= std::size_t(64 * K) * sizeof(float));
      CHECK(small_kept <= limit);
    }
    CHECK(run(64).second == small_kept);  // reused, not grown
    const auto [big_exact, big_kept] = run(big_m);
    CHECK(big_exact);
    CHECK(big_kept <= limit);
    qtx::cpu::release_gemm_scratch();
    CHECK(qtx::cpu::gemm_scratch_bytes() == 0);
  }

  SECTION("many threads each calling above the bound each keep at most the bound") {
    constexpr int threads = 6;
    std::vector<std::size_t> kept(threads);
    std::vector<char> exact(threads);
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t)
      pool.emplace_back([&, t] {
        const bool e1 = run(big_m).first;
        const auto [e2, bytes] = run(65 + t);
        exact[t] = e1 && e2;
        kept[t] = bytes;
      });
    for (auto& t : pool) t.join();
    for (int t = 0; t < threads; ++t) {
      CHECK(exact[t]);
      CHECK(kept[t] <= limit);
    }
  }
}

TEST_CASE("packed K/V kept by a thread between attention calls is bounded", "[concurrency]") {
  constexpr std::size_t limit = qtx::cpu::gemm_scratch_retained_bytes;
  // Five queries take the fused path (more than decode's four); K and V are packed per call.
  auto run = [](index_t keys, index_t width) {
    std::vector<float> q(5 * width, 0.5f), kv(keys * width, 0.25f), out(5 * width);
    qtx::ops::attention(arch{}, qtx::make_view(q.data(), 5, width), qtx::make_view(kv.data(), keys, width),
                        qtx::make_view(kv.data(), keys, width), qtx::make_view(out.data(), 5, width),
                        qtx::ops::attention_params{4, 0.125f});
    return out[0];  // every value of v is 0.25, so is every output
  };
  CHECK(run(64, 64) == 0.25f);
  const std::size_t warm = qtx::cpu::attention_scratch_bytes<arch, float>();
  CHECK(warm >= 2 * 64 * 64 * sizeof(float));  // a small call keeps its packed K and V
  CHECK(warm <= limit);
  // K and V of 4096 x 1024 floats pack to 32 MiB: freed on return.
  CHECK(run(4096, 1024) == 0.25f);
  CHECK(qtx::cpu::attention_scratch_bytes<arch, float>() == 0);
  CHECK(run(64, 64) == 0.25f);
  CHECK(qtx::cpu::attention_scratch_bytes<arch, float>() == warm);
}

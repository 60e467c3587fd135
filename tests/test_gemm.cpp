// GEMM: every backend the CPU supports against the reference oracle qtx::ref::gemm.
//
// Integer outputs must be bit-exact (raw int32, requantize float / fixed-point, per tensor and per
// channel, saturating 8-bit stores), including extreme operands up to K = int8_gemm_max_k.
// Float outputs: |c − ref| ≤ 8·eps·√K·Σ_k|a·b| + 4·eps·|ref| + 1e−6 (the reference sums in
// double; the vector erf/sigmoid of GELU add < 1e−6 absolute). Paths that quantize a float
// (GELU → quantize) may land one level away when the float is within that tolerance of a
// rounding boundary: ±1, and ≥ 99 % exact.
#include <catch2/catch.hpp>

#include <qtx/ops/gemm.hpp>
#include <qtx/ref/gemm.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

namespace {
using namespace qtx;
namespace ep = qtx::epilogue;

template <class T>
std::vector<T> random_values(index_t count, unsigned seed, float stddev = 1.0f) {
  std::mt19937 rng(seed);
  std::vector<T> v(static_cast<std::size_t>(count));
  if constexpr (std::is_floating_point_v<T>) {
    std::normal_distribution<float> d(0.0f, stddev);
    for (auto& x : v) x = d(rng);
  } else {
    std::uniform_int_distribution<int> d(std::numeric_limits<T>::min(), std::numeric_limits<T>::max());
    for (auto& x : v) x = T(d(rng));
  }
  return v;
}

template <class Arch>
bool skip_unsupported() {
  if (cpu::supported<Arch>()) return false;
  WARN("CPU lacks " << Arch::name() << ": skipped");
  return true;
}

// Runs backend Arch and the oracle on the same (possibly strided) views; returns both outputs.
template <class Arch, class TA, class TB, class TC, class Pipeline>
std::pair<std::vector<TC>, std::vector<TC>> run_both(matrix_view<const TA> a, matrix_view<const TB> b,
                                                     const Pipeline& p, int32_t za = 0, int32_t zb = 0) {
  std::vector<TC> got(a.rows * b.cols), want(a.rows * b.cols);
  const auto packed = ops::pack_b<Arch>(b, zb);
  ops::gemm(Arch{}, a, packed, make_view(got.data(), a.rows, b.cols), p, za);
  ref::gemm(a, b, make_view(want.data(), a.rows, b.cols), p, za, zb);
  return {got, want};
}

// Σ_k |a(m,k)·b(k,n)|: the scale of the float rounding error of one output.
template <class T>
std::vector<double> abs_products(matrix_view<const T> a, matrix_view<const T> b) {
  std::vector<double> s(a.rows * b.cols, 0.0);
  for (index_t m = 0; m < a.rows; ++m)
    for (index_t n = 0; n < b.cols; ++n)
      for (index_t k = 0; k < a.cols; ++k) s[m * b.cols + n] += std::abs(double(a(m, k)) * double(b(k, n)));
  return s;
}

void check_float_close(const std::vector<float>& got, const std::vector<float>& want,
                       const std::vector<double>& scale, index_t k) {
  const double eps = std::numeric_limits<float>::epsilon();
  index_t bad = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    const double tol = 8 * eps * std::sqrt(double(k)) * scale[i] + 4 * eps * std::abs(want[i]) + 1e-6;
    if (!(std::abs(double(got[i]) - double(want[i])) <= tol)) {
      if (bad++ < 5) FAIL_CHECK("element " << i << ": " << got[i] << " vs " << want[i] << " (tol " << tol << ")");
    }
  }
  CHECK(bad == 0);
}

template <class T>
void check_levels_close(const std::vector<T>& got, const std::vector<T>& want) {
  index_t off_by_one = 0, worse = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    const int d = std::abs(int(got[i]) - int(want[i]));
    off_by_one += d == 1;
    worse += d > 1;
  }
  CHECK(worse == 0);
  CHECK(off_by_one * 100 <= index_t(got.size()));
}

constexpr index_t sweep_sizes[] = {1, 2, 3, 7, 15, 16, 17, 31, 33, 63, 64, 65};
constexpr int sweep_count = int(std::size(sweep_sizes));

}  // namespace

#define QTX_GEMM_BACKENDS cpu::scalar, cpu::avx2, cpu::avx512_vnni

TEMPLATE_TEST_CASE("int8 GEMM is bit-exact over a shape sweep with zero points", "[gemm]", QTX_GEMM_BACKENDS) {
  using Arch = TestType;
  if (skip_unsupported<Arch>()) return;
  // Every (M, N) pair of the sweep; K walks the sweep too, so each K meets 12 (M, N) pairs.
  const int mi = GENERATE(range(0, sweep_count));
  const int ni = GENERATE(range(0, sweep_count));
  const index_t M = sweep_sizes[mi], N = sweep_sizes[ni], K = sweep_sizes[(mi + 2 * ni) % sweep_count];
  const int32_t za = (mi * 37) % 256, zb = (ni * 29) % 256 - 128;
  const auto a = random_values<uint8_t>(M * K, unsigned(mi * 100 + ni));
  const auto b = random_values<int8_t>(K * N, unsigned(mi * 100 + ni + 7));
  const auto [got, want] = run_both<Arch, uint8_t, int8_t, int32_t>(make_view(a.data(), M, K),
                                                                    make_view(b.data(), K, N), ep::make_pipeline(), za, zb);
  INFO(Arch::name() << " " << M << "x" << N << "x" << K << " za " << za << " zb " << zb);
  CHECK(got == want);
}

TEMPLATE_TEST_CASE("float GEMM matches the reference within tolerance over a shape sweep", "[gemm]", QTX_GEMM_BACKENDS) {
  using Arch = TestType;
  if (skip_unsupported<Arch>()) return;
  const int mi = GENERATE(range(0, sweep_count));
  const int ki = GENERATE(range(0, sweep_count));
  const index_t M = sweep_sizes[mi], K = sweep_sizes[ki], N = sweep_sizes[(ki + 5 * mi) % sweep_count];
  const auto a = random_values<float>(M * K, unsigned(mi * 100 + ki));
  const auto b = random_values<float>(K * N, unsigned(mi * 100 + ki + 3));
  const auto av = make_view(a.data(), M, K);
  const auto bv = make_view(b.data(), K, N);
  const auto [got, want] = run_both<Arch, float, float, float>(av, bv, ep::make_pipeline());
  INFO(Arch::name() << " " << M << "x" << N << "x" << K);
  check_float_close(got, want, abs_products(av, bv), K);
}

TEMPLATE_TEST_CASE("int8 epilogues used by the models are bit-exact", "[gemm][epilogue]", QTX_GEMM_BACKENDS) {
  using Arch = TestType;
  if (skip_unsupported<Arch>()) return;
  const index_t M = GENERATE(1, 7, 17), N = GENERATE(1, 33, 70), K = GENERATE(5, 64);
  INFO(Arch::name() << " " << M << "x" << N << "x" << K);
  const auto a = random_values<uint8_t>(M * K, 1);
  const auto b = random_values<int8_t>(K * N, 2);
  const auto av = make_view(a.data(), M, K);
  const auto bv = make_view(b.data(), K, N);
  const int32_t za = 131;
  std::vector<int32_t> bias(N);
  std::vector<float> multipliers(N), scales(N);
  std::mt19937 rng(3);
  for (index_t n = 0; n < N; ++n) {
    bias[n] = int32_t(rng() % 20001) - 10000;
    multipliers[n] = float(rng() % 1000 + 1) * 1e-5f;  // saturates some outputs, rounds others
    scales[n] = float(rng() % 1000 + 1) * 1e-4f;
  }
  const ep::bias<int32_t> add_bias{bias.data()};

  SECTION("bias + requantize per channel → u8, per tensor → s8, fixed point → u8") {
    const auto [u8, u8_want] = run_both<Arch, uint8_t, int8_t, uint8_t>(
        av, bv, ep::make_pipeline(add_bias, ep::requantize<ep::per_n>{multipliers.data(), 100}), za);
    CHECK(u8 == u8_want);
    const auto [s8, s8_want] = run_both<Arch, uint8_t, int8_t, int8_t>(
        av, bv, ep::make_pipeline(add_bias, ep::requantize<ep::per_tensor>{multipliers.data(), -5}), za);
    CHECK(s8 == s8_want);
    std::vector<fixed_point_multiplier> fixed(N);
    for (index_t n = 0; n < N; ++n) fixed[n] = to_fixed_point(multipliers[n] * (n % 3 == 0 ? 1e4 : 1.0));
    const auto [fx, fx_want] = run_both<Arch, uint8_t, int8_t, uint8_t>(
        av, bv, ep::make_pipeline(add_bias, ep::requantize_fixed<ep::per_n>{fixed.data(), 7}), za);
    CHECK(fx == fx_want);
    const auto [f32, f32_want] = run_both<Arch, uint8_t, int8_t, int32_t>(
        av, bv, ep::make_pipeline(ep::requantize_fixed<ep::per_tensor>{fixed.data(), -3}, ep::relu{}), za);
    CHECK(f32 == f32_want);
  }
  SECTION("bias + dequantize → f32, + residual, + relu; raw int32 stored as float") {
    const auto residual = random_values<float>(M * N, 4);
    const auto rv = make_view(residual.data(), M, N);
    const auto [f, f_want] = run_both<Arch, uint8_t, int8_t, float>(
        av, bv, ep::make_pipeline(add_bias, ep::dequantize<ep::per_n>{scales.data()}), za);
    CHECK(f == f_want);  // one int32 → float conversion and one multiply: exact
    const auto [r, r_want] = run_both<Arch, uint8_t, int8_t, float>(
        av, bv, ep::make_pipeline(add_bias, ep::dequantize<ep::per_tensor>{scales.data()}, ep::residual_add{rv}, ep::relu{}), za);
    // Either side may contract acc·s + r into one FMA: the error scale is |acc·s| + |r|.
    std::vector<double> terms(r.size());
    for (std::size_t i = 0; i < r.size(); ++i) terms[i] = std::abs(double(f_want[i]) / scales[i % N] * scales[0]) + std::abs(residual[i]);
    check_float_close(r, r_want, terms, 1);
    const auto [raw, raw_want] = run_both<Arch, uint8_t, int8_t, float>(av, bv, ep::make_pipeline(), za);
    CHECK(raw == raw_want);
  }
  SECTION("bias + dequantize + GELU + quantize → u8 (BERT FFN1)") {
    const auto pipeline = ep::make_pipeline(add_bias, ep::dequantize<ep::per_n>{scales.data()}, ep::gelu_erf{},
                                            ep::quantize{20.0f, 3});
    const auto [q, q_want] = run_both<Arch, uint8_t, int8_t, uint8_t>(av, bv, pipeline, za);
    check_levels_close(q, q_want);
    const auto tanh_pipeline = ep::make_pipeline(add_bias, ep::dequantize<ep::per_n>{scales.data()}, ep::gelu_tanh{},
                                                 ep::quantize{20.0f, 3});
    const auto [t, t_want] = run_both<Arch, uint8_t, int8_t, uint8_t>(av, bv, tanh_pipeline, za);
    check_levels_close(t, t_want);
  }
}

TEMPLATE_TEST_CASE("float epilogues: bias + GELU, bias + residual, scales", "[gemm][epilogue]", QTX_GEMM_BACKENDS) {
  using Arch = TestType;
  if (skip_unsupported<Arch>()) return;
  const index_t M = GENERATE(2, 9), N = GENERATE(15, 67), K = 40;
  INFO(Arch::name() << " " << M << "x" << N << "x" << K);
  const auto a = random_values<float>(M * K, 5, 0.3f);
  const auto b = random_values<float>(K * N, 6, 0.3f);
  const auto bias = random_values<float>(N, 7);
  const auto residual = random_values<float>(M * N, 8);
  const auto factors = random_values<float>(M, 9);
  const auto av = make_view(a.data(), M, K);
  const auto bv = make_view(b.data(), K, N);
  const auto scale = abs_products(av, bv);
  const ep::bias<float> add_bias{bias.data()};
  auto check_pipeline = [&](const auto& pipeline) {
    const auto [got, want] = run_both<Arch, float, float, float>(av, bv, pipeline);
    check_float_close(got, want, scale, K);
  };
  check_pipeline(ep::make_pipeline(add_bias, ep::gelu_erf{}));
  check_pipeline(ep::make_pipeline(add_bias, ep::gelu_tanh{}));
  check_pipeline(ep::make_pipeline(add_bias, ep::residual_add{make_view(residual.data(), M, N)}));
  check_pipeline(ep::make_pipeline(ep::scale{0.125f}, ep::row_scale{factors.data()}, ep::relu{}));
}

TEMPLATE_TEST_CASE("extreme operands are exact up to the int32-safe K", "[gemm][extreme]", QTX_GEMM_BACKENDS) {
  using Arch = TestType;
  if (skip_unsupported<Arch>()) return;
  // |(a − za)(b − zb)| = 255·255 on every product: the accumulator reaches ±(2^31 − 32,767 − ...).
  const index_t K = GENERATE(index_t(1000), ops::int8_gemm_max_k);
  const int8_t b_value = GENERATE(int8_t(-128), int8_t(127));
  const int32_t za = GENERATE(0, 255);
  const int32_t zb = b_value == -128 ? 127 : -128;
  const uint8_t a_value = za == 0 ? 255 : 0;
  const index_t M = 3, N = 5;
  INFO(Arch::name() << " K " << K << " a " << int(a_value) << " b " << int(b_value) << " za " << za << " zb " << zb);
  const std::vector<uint8_t> a(M * K, a_value);
  const std::vector<int8_t> b(K * N, b_value);
  const auto [got, want] = run_both<Arch, uint8_t, int8_t, int32_t>(make_view(a.data(), M, K), make_view(b.data(), K, N),
                                                                    ep::make_pipeline(), za, zb);
  CHECK(got == want);
  CHECK(std::abs(double(want[0])) == 255.0 * 255.0 * double(K));
  // Without zero points (the weights' case), the raw extremes: all 255 times all −128 / +127.
  const std::vector<uint8_t> full(M * K, 255);
  const auto [raw, raw_want] = run_both<Arch, uint8_t, int8_t, int32_t>(make_view(full.data(), M, K),
                                                                        make_view(b.data(), K, N), ep::make_pipeline());
  CHECK(raw == raw_want);
  // The same through a saturating requantization to both 8-bit types.
  const float m[] = {1e-3f};
  const auto [s8, s8_want] = run_both<Arch, uint8_t, int8_t, int8_t>(
      make_view(a.data(), M, K), make_view(b.data(), K, N), ep::make_pipeline(ep::requantize<ep::per_tensor>{m, 0}), za, zb);
  CHECK(s8 == s8_want);
}

TEMPLATE_TEST_CASE("uint8 B, unpacked-B convenience form and strided views", "[gemm][views]", QTX_GEMM_BACKENDS) {
  using Arch = TestType;
  if (skip_unsupported<Arch>()) return;
  const index_t M = 19, N = 37, K = 45, pad = 3;
  // A with a row stride and an offset; B given transposed (col_stride ≠ 1); C with a row stride.
  const auto a_store = random_values<uint8_t>((M + 1) * (K + pad), 11);
  const auto bt_store = random_values<uint8_t>(N * K, 12);
  const auto av = make_view(a_store.data(), M, K, K + pad, K + pad + 1);
  const matrix_view<const uint8_t> bv = make_view(bt_store.data(), N, K).transposed();  // (K, N), strided
  const int32_t za = 17, zb = 200;

  std::vector<int32_t> want(M * N);
  ref::gemm(av, bv, make_view(want.data(), M, N), ep::make_pipeline(), za, zb);

  std::vector<int32_t> c_store(M * (N + pad), -1);
  const auto cv = make_view(c_store.data(), M, N, N + pad);
  ops::gemm(Arch{}, av, bv, cv, ep::make_pipeline(), za, zb);  // packs per call, uint8 B shifted by 128
  for (index_t m = 0; m < M; ++m)
    for (index_t n = 0; n < N; ++n) REQUIRE(cv(m, n) == want[m * N + n]);
  for (index_t m = 0; m < M; ++m) CHECK(c_store[m * (N + pad) + N] == -1);  // the gap is untouched

  // C transposed (col_stride ≠ 1) and A transposed.
  std::vector<int32_t> ct_store(N * M);
  const auto ctv = make_view(ct_store.data(), N, M).transposed();
  std::vector<uint8_t> at_store(K * M);
  for (index_t m = 0; m < M; ++m)
    for (index_t k = 0; k < K; ++k) at_store[k * M + m] = av(m, k);
  const matrix_view<const uint8_t> atv = make_view(at_store.data(), K, M).transposed();
  ops::gemm(Arch{}, atv, ops::pack_b<Arch>(bv, zb), ctv, ep::make_pipeline(), za);
  for (index_t m = 0; m < M; ++m)
    for (index_t n = 0; n < N; ++n) REQUIRE(ctv(m, n) == want[m * N + n]);

  // Float with a strided residual and a transposed float output.
  const auto af = random_values<float>(M * K, 13), bf = random_values<float>(K * N, 14), rf = random_values<float>(N * M, 15);
  const auto residual = make_view(rf.data(), N, M).transposed();
  const auto pipeline = ep::make_pipeline(ep::residual_add{residual});
  std::vector<float> f_want(M * N), ft_store(N * M);
  ref::gemm(make_view(af.data(), M, K), make_view(bf.data(), K, N), make_view(f_want.data(), M, N), pipeline);
  ops::gemm(Arch{}, make_view(af.data(), M, K), make_view(bf.data(), K, N), make_view(ft_store.data(), N, M).transposed(),
            pipeline);
  std::vector<float> f_got(M * N);
  for (index_t m = 0; m < M; ++m)
    for (index_t n = 0; n < N; ++n) f_got[m * N + n] = ft_store[n * M + m];
  check_float_close(f_got, f_want, abs_products(make_view(af.data(), M, K), make_view(bf.data(), K, N)), K);
}

TEMPLATE_TEST_CASE("transformer shapes: BERT 128x768x768 and a decode row", "[gemm][transformer]", QTX_GEMM_BACKENDS) {
  using Arch = TestType;
  if (skip_unsupported<Arch>()) return;
  const index_t M = GENERATE(1, 128), K = 768, N = 768;
  const auto a = random_values<uint8_t>(M * K, 21);
  const auto b = random_values<int8_t>(K * N, 22);
  std::vector<int32_t> bias(N, -1234);
  std::vector<float> multipliers(N);
  for (index_t n = 0; n < N; ++n) multipliers[n] = 1e-5f * float(1 + n % 17);
  const auto pipeline = ep::make_pipeline(ep::bias<int32_t>{bias.data()}, ep::requantize<ep::per_n>{multipliers.data(), 128});
  const auto [got, want] = run_both<Arch, uint8_t, int8_t, uint8_t>(make_view(a.data(), M, K), make_view(b.data(), K, N),
                                                                    pipeline, 113);
  CHECK(got == want);
}

TEMPLATE_TEST_CASE("float GEMM over several K blocks", "[gemm][kblocks]", QTX_GEMM_BACKENDS) {
  using Arch = TestType;
  if (skip_unsupported<Arch>()) return;
  // K blocks are 1024 (AVX-512) / 4096 (AVX2) floats deep: 4500 crosses both, with a ragged end.
  const index_t M = 3, K = 4500, N = 20;
  const auto a = random_values<float>(M * K, 41), b = random_values<float>(K * N, 42), bias = random_values<float>(N, 43);
  const auto av = make_view(a.data(), M, K);
  const auto bv = make_view(b.data(), K, N);
  const auto [got, want] = run_both<Arch, float, float, float>(av, bv, ep::make_pipeline(ep::bias<float>{bias.data()}));
  check_float_close(got, want, abs_products(av, bv), K);
}

TEMPLATE_TEST_CASE("threads: results do not depend on the thread count", "[gemm][threads]", QTX_GEMM_BACKENDS) {
  using Arch = TestType;
  if (skip_unsupported<Arch>()) return;
  const index_t M = 200, K = 70, N = 300;  // M > rows_per_pass: several passes
  const auto a = random_values<uint8_t>(M * K, 31);
  const auto b = random_values<int8_t>(K * N, 32);
  const auto packed = ops::pack_b<Arch>(make_view(b.data(), K, N), -3);
  std::vector<int32_t> one(M * N), many(M * N);
  const int threads = max_threads();
  set_num_threads(1);
  ops::gemm(Arch{}, make_view(a.data(), M, K), packed, make_view(one.data(), M, N), ep::make_pipeline(), 9);
  set_num_threads(std::max(threads, 3));
  ops::gemm(Arch{}, make_view(a.data(), M, K), packed, make_view(many.data(), M, N), ep::make_pipeline(), 9);
  set_num_threads(threads);
  CHECK(one == many);
}

TEST_CASE("ops::gemm rejects bad arguments with qtx::error", "[gemm][errors]") {
  using Arch = cpu::native;
  const std::vector<uint8_t> a(4 * 6, 1);
  const std::vector<int8_t> b(6 * 5, 1);
  std::vector<int32_t> c(4 * 5);
  const auto av = make_view(a.data(), 4, 6);
  const auto packed = ops::pack_b<Arch>(make_view(b.data(), 6, 5));
  const auto cv = make_view(c.data(), 4, 5);
  CHECK_NOTHROW(ops::gemm(Arch{}, av, packed, cv));
  // K above the int32-safe bound, for packing and for the convenience form.
  const std::vector<int8_t> tall((ops::int8_gemm_max_k + 1) * 2, 0);
  CHECK_THROWS_AS(ops::pack_b<Arch>(make_view(tall.data(), ops::int8_gemm_max_k + 1, 2)), qtx::error);
  CHECK_NOTHROW(ops::pack_b<Arch>(make_view(tall.data(), ops::int8_gemm_max_k, 2)));
  // Shapes.
  CHECK_THROWS_AS(ops::gemm(Arch{}, make_view(a.data(), 4, 5), packed, cv), qtx::error);
  CHECK_THROWS_AS(ops::gemm(Arch{}, av, packed, make_view(c.data(), 4, 4)), qtx::error);
  CHECK_THROWS_AS(ops::gemm(Arch{}, av, packed, make_view(c.data(), 5, 4)), qtx::error);
  // Zero points and views.
  CHECK_THROWS_AS(ops::gemm(Arch{}, av, packed, cv, ep::make_pipeline(), 256), qtx::error);
  CHECK_THROWS_AS(ops::gemm(Arch{}, av, packed, cv, ep::make_pipeline(), -1), qtx::error);
  CHECK_THROWS_AS(ops::pack_b<Arch>(make_view(b.data(), 6, 5), 128), qtx::error);
  CHECK_THROWS_AS(ops::pack_b<Arch>(make_view(reinterpret_cast<const uint8_t*>(b.data()), 6, 5), 256), qtx::error);
  const std::vector<float> f(30, 1.0f);
  CHECK_THROWS_AS(ops::pack_b<Arch>(make_view(f.data(), 6, 5), 1), qtx::error);
  CHECK_THROWS_AS(ops::gemm(Arch{}, matrix_view<const uint8_t>{nullptr, 4, 6, 6}, packed, cv), qtx::error);
  CHECK_THROWS_AS(ops::gemm(Arch{}, matrix_view<const uint8_t>{a.data(), -1, 6, 6}, packed, cv), qtx::error);
  // Epilogue data: a residual of the wrong shape, a null bias.
  const std::vector<float> r(4 * 4, 0.0f);
  std::vector<float> cf(4 * 5);
  const float scale[] = {1.0f};
  CHECK_THROWS_AS(ops::gemm(Arch{}, av, packed, make_view(cf.data(), 4, 5),
                            ep::make_pipeline(ep::dequantize<ep::per_tensor>{scale}, ep::residual_add{make_view(r.data(), 4, 4)})),
                  qtx::error);
  CHECK_THROWS_AS(ops::gemm(Arch{}, av, packed, cv, ep::make_pipeline(ep::bias<int32_t>{nullptr})), qtx::error);
  // Empty outputs are fine; K = 0 gives the epilogue of a zero accumulator.
  CHECK_NOTHROW(ops::gemm(Arch{}, make_view(a.data(), 0, 6), packed, make_view(c.data(), 0, 5)));
  const int32_t bias[] = {1, 2, 3, 4, 5};
  ops::gemm(Arch{}, make_view(a.data(), 4, 0), ops::pack_b<Arch>(make_view(b.data(), 0, 5)), cv,
            ep::make_pipeline(ep::bias<int32_t>{bias}), 7);
  CHECK(c == std::vector<int32_t>{1, 2, 3, 4, 5, 1, 2, 3, 4, 5, 1, 2, 3, 4, 5, 1, 2, 3, 4, 5});
}

// GEMM: every backend the CPU supports against the reference oracle qtx::ref::gemm.
//
// Integer outputs must be bit-exact (raw int32, requantize float / fixed-point, per tensor and per
// channel, saturating 8-bit stores), including extreme operands up to K = int8_gemm_max_k.
// Float outputs: |c − ref| ≤ 8·eps·√K·Σ_k|a·b| + 4·eps·|ref| + 1e−6 (the reference sums in
// double; the vector erf/sigmoid of GELU add < 1e−6 absolute). Paths that quantize a float
// (GELU → quantize) may land one level away when the float is within that tolerance of a
// rounding boundary: ±1, and ≥ 99 % exact.
#include <catch2/catch.hpp>

#include "backends.hpp"

#include <qtx/ops/gemm.hpp>
#include <qtx/ref/gemm.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <span>
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

using test_backends::skip_unsupported;

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

using gemm_backends = test_backends::compiled<test_backends::all_cpu>;

TEMPLATE_LIST_TEST_CASE("int8 GEMM is bit-exact over a shape sweep with zero points", "[gemm]", gemm_backends) {
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

TEMPLATE_LIST_TEST_CASE("float GEMM matches the reference within tolerance over a shape sweep", "[gemm]", gemm_backends) {
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

TEMPLATE_LIST_TEST_CASE("int8 epilogues used by the models are bit-exact", "[gemm][epilogue]", gemm_backends) {
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
  const ep::bias<int32_t> add_bias{bias};

  SECTION("bias + requantize per channel → u8, per tensor → s8, fixed point → u8") {
    const auto [u8, u8_want] = run_both<Arch, uint8_t, int8_t, uint8_t>(
        av, bv, ep::make_pipeline(add_bias, ep::requantize<ep::per_n>{multipliers, 100}), za);
    CHECK(u8 == u8_want);
    const auto [s8, s8_want] = run_both<Arch, uint8_t, int8_t, int8_t>(
        av, bv, ep::make_pipeline(add_bias, ep::requantize<ep::per_tensor>{std::span(multipliers).first(1), -5}), za);
    CHECK(s8 == s8_want);
    std::vector<fixed_point_multiplier> fixed(N);
    for (index_t n = 0; n < N; ++n) fixed[n] = to_fixed_point(multipliers[n] * (n % 3 == 0 ? 1e4 : 1.0));
    const auto [fx, fx_want] = run_both<Arch, uint8_t, int8_t, uint8_t>(
        av, bv, ep::make_pipeline(add_bias, ep::requantize_fixed<ep::per_n>{fixed, 7}), za);
    CHECK(fx == fx_want);
    const auto [f32, f32_want] = run_both<Arch, uint8_t, int8_t, int32_t>(
        av, bv, ep::make_pipeline(ep::requantize_fixed<ep::per_tensor>{std::span(fixed).first(1), -3}, ep::relu{}), za);
    CHECK(f32 == f32_want);
  }
  SECTION("bias + dequantize → f32, + residual, + relu; raw int32 stored as float") {
    const auto residual = random_values<float>(M * N, 4);
    const auto rv = make_view(residual.data(), M, N);
    const auto [f, f_want] = run_both<Arch, uint8_t, int8_t, float>(
        av, bv, ep::make_pipeline(add_bias, ep::dequantize<ep::per_n>{scales}), za);
    CHECK(f == f_want);  // one int32 → float conversion and one multiply: exact
    const auto [r, r_want] = run_both<Arch, uint8_t, int8_t, float>(
        av, bv, ep::make_pipeline(add_bias, ep::dequantize<ep::per_tensor>{std::span(scales).first(1)}, ep::residual_add{rv}, ep::relu{}), za);
    // Either side may contract acc·s + r into one FMA: the error scale is |acc·s| + |r|.
    std::vector<double> terms(r.size());
    for (std::size_t i = 0; i < r.size(); ++i) terms[i] = std::abs(double(f_want[i]) / scales[i % N] * scales[0]) + std::abs(residual[i]);
    check_float_close(r, r_want, terms, 1);
    const auto [raw, raw_want] = run_both<Arch, uint8_t, int8_t, float>(av, bv, ep::make_pipeline(), za);
    CHECK(raw == raw_want);
  }
  SECTION("bias + dequantize + GELU + quantize → u8 (BERT FFN1)") {
    const auto pipeline = ep::make_pipeline(add_bias, ep::dequantize<ep::per_n>{scales}, ep::gelu_erf{},
                                            ep::quantize{20.0f, 3});
    const auto [q, q_want] = run_both<Arch, uint8_t, int8_t, uint8_t>(av, bv, pipeline, za);
    check_levels_close(q, q_want);
    const auto tanh_pipeline = ep::make_pipeline(add_bias, ep::dequantize<ep::per_n>{scales}, ep::gelu_tanh{},
                                                 ep::quantize{20.0f, 3});
    const auto [t, t_want] = run_both<Arch, uint8_t, int8_t, uint8_t>(av, bv, tanh_pipeline, za);
    check_levels_close(t, t_want);
  }
}

TEMPLATE_LIST_TEST_CASE("float epilogues: bias + GELU, bias + residual, scales", "[gemm][epilogue]", gemm_backends) {
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
  const ep::bias<float> add_bias{bias};
  auto check_pipeline = [&](const auto& pipeline) {
    const auto [got, want] = run_both<Arch, float, float, float>(av, bv, pipeline);
    check_float_close(got, want, scale, K);
  };
  check_pipeline(ep::make_pipeline(add_bias, ep::gelu_erf{}));
  check_pipeline(ep::make_pipeline(add_bias, ep::gelu_tanh{}));
  check_pipeline(ep::make_pipeline(add_bias, ep::residual_add{make_view(residual.data(), M, N)}));
  check_pipeline(ep::make_pipeline(ep::scale{0.125f}, ep::row_scale{factors}, ep::relu{}));
}

TEMPLATE_LIST_TEST_CASE("extreme operands are exact up to the int32-safe K", "[gemm][extreme]", gemm_backends) {
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

// B whose k pairs (k, k+1), k even, satisfy |b₀| + |b₁| ≤ 128 (7-bit weights, say): the AVX2 backend
// packs it for vpmaddubsw, which is exact only within that bound; every backend must stay exact,
// at the bound and one past it (there the AVX2 packing must fall back to its widened layout).
template <class Packed>
int narrow_layout_of(const Packed& packed) {
  if constexpr (requires { packed.narrow.in_use; }) return packed.narrow.in_use ? 1 : 0;
  return -1;  // this backend has no second layout
}

TEMPLATE_LIST_TEST_CASE("int8 GEMM on saturation-safe B (AVX2's vpmaddubsw layout) is exact at the pair bound",
                   "[gemm][narrow]", gemm_backends) {
  using Arch = TestType;
  if (skip_unsupported<Arch>()) return;
  const bool avx2_int8 = std::is_same_v<Arch, cpu::avx2>;
  auto check_exact = [&](const std::vector<uint8_t>& a, const std::vector<int8_t>& b, index_t M, index_t K, index_t N,
                         int32_t za, int expected_layout) {
    INFO(Arch::name() << " " << M << "x" << K << "x" << N << " za " << za);
    const auto packed = ops::pack_b<Arch>(make_view(b.data(), K, N));
    if (avx2_int8) CHECK(narrow_layout_of(packed) == expected_layout);
    std::vector<int32_t> got(M * N), want(M * N);
    ops::gemm(Arch{}, make_view(a.data(), M, K), packed, make_view(got.data(), M, N), ep::make_pipeline(), za);
    ref::gemm(make_view(a.data(), M, K), make_view(b.data(), K, N), make_view(want.data(), M, N), ep::make_pipeline(),
              za, 0);
    CHECK(got == want);
  };
  // Random 7-bit B over a shape sweep (K tails, K not a multiple of 4: A packed instead of read in place).
  for (const index_t M : {index_t(1), index_t(5), index_t(13), index_t(64)})
    for (const index_t K : {index_t(1), index_t(3), index_t(6), index_t(64), index_t(257)})
      for (const index_t N : {index_t(1), index_t(17), index_t(48)}) {
        std::mt19937 rng(unsigned(M * 1000 + K * 10 + N));
        std::uniform_int_distribution<int> bd(-64, 64), ad(0, 255);
        std::vector<int8_t> b(K * N);
        std::vector<uint8_t> a(M * K);
        for (auto& x : b) x = int8_t(bd(rng));
        for (auto& x : a) x = uint8_t(ad(rng));
        check_exact(a, b, M, K, N, int32_t(M * 7 % 256), 1);
      }
  // Every pair exactly at the bound against A = 255 (and against za = 255, A = 0: −255 per element).
  const index_t M = 7, K = 96, N = 33;
  const int8_t pairs[][2] = {{-128, 0}, {0, -128}, {64, 64}, {-64, -64}, {127, 1}, {-1, -127}, {100, -28}, {-100, 28}};
  std::vector<int8_t> b(K * N);
  for (index_t k = 0; k < K; k += 2)
    for (index_t n = 0; n < N; ++n) {
      const auto& p = pairs[std::size_t(k / 2 + n) % std::size(pairs)];
      b[k * N + n] = p[0], b[(k + 1) * N + n] = p[1];
    }
  const std::vector<uint8_t> full(M * K, 255), zeros(M * K, 0);
  check_exact(full, b, M, K, N, 0, 1);
  check_exact(zeros, b, M, K, N, 255, 1);
  // One pair past the bound (65 + 64: 255·129 > 32767 would saturate vpmaddubsw): the wide layout.
  b[2 * N + 5] = 65, b[3 * N + 5] = 64;
  check_exact(full, b, M, K, N, 0, 0);
  // uint8 B (attention's operands) is stored as b − 128: values within 128 ± 64 are safe.
  std::vector<uint8_t> bu(K * N);
  for (std::size_t i = 0; i < bu.size(); ++i) bu[i] = uint8_t(64 + (i * 37) % 129);
  const auto packed_u8 = ops::pack_b<Arch>(make_view(bu.data(), K, N), 128);
  if (avx2_int8) CHECK(narrow_layout_of(packed_u8) == 1);
  std::vector<int32_t> got(M * N), want(M * N);
  ops::gemm(Arch{}, make_view(full.data(), M, K), packed_u8, make_view(got.data(), M, N), ep::make_pipeline(), 3);
  ref::gemm(make_view(full.data(), M, K), make_view<const uint8_t>(bu.data(), K, N), make_view(want.data(), M, N),
            ep::make_pipeline(), 3, 128);
  CHECK(got == want);
}

TEMPLATE_LIST_TEST_CASE("an int32 bias that overflows the accumulator wraps on every backend", "[gemm][extreme]", gemm_backends) {
  using Arch = TestType;
  if (skip_unsupported<Arch>()) return;
  // Found by the model fuzzer: a calibrated bias near INT32_MAX plus a positive dot product was
  // signed overflow (UB) in the scalar epilogue; every backend now wraps like vpaddd.
  const index_t M = 2, K = 37, N = 19;
  const std::vector<uint8_t> a(M * K, 255);
  const std::vector<int8_t> b(K * N, 127);
  std::vector<int32_t> bias(N);
  for (index_t n = 0; n < N; ++n) bias[n] = n % 2 ? std::numeric_limits<int32_t>::max() - int32_t(n)
                                                  : std::numeric_limits<int32_t>::min() + int32_t(n);
  const auto [got, want] = run_both<Arch, uint8_t, int8_t, int32_t>(make_view(a.data(), M, K), make_view(b.data(), K, N),
                                                                    ep::make_pipeline(ep::bias<int32_t>{bias}));
  CHECK(got == want);
  const int64_t dot = 255 * 127 * int64_t(K);
  for (index_t n = 0; n < N; ++n) {
    const int64_t wide = dot + bias[n];
    const auto wrapped = static_cast<int32_t>(static_cast<uint32_t>(static_cast<uint64_t>(wide)));
    INFO("n " << n);
    CHECK(got[n] == wrapped);
  }
}

TEMPLATE_LIST_TEST_CASE("uint8 B, unpacked-B convenience form and strided views", "[gemm][views]", gemm_backends) {
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

TEMPLATE_LIST_TEST_CASE("transformer shapes: BERT 128x768x768 and a decode row", "[gemm][transformer]", gemm_backends) {
  using Arch = TestType;
  if (skip_unsupported<Arch>()) return;
  const index_t M = GENERATE(1, 128), K = 768, N = 768;
  const auto a = random_values<uint8_t>(M * K, 21);
  const auto b = random_values<int8_t>(K * N, 22);
  std::vector<int32_t> bias(N, -1234);
  std::vector<float> multipliers(N);
  for (index_t n = 0; n < N; ++n) multipliers[n] = 1e-5f * float(1 + n % 17);
  const auto pipeline = ep::make_pipeline(ep::bias<int32_t>{bias}, ep::requantize<ep::per_n>{multipliers, 128});
  const auto [got, want] = run_both<Arch, uint8_t, int8_t, uint8_t>(make_view(a.data(), M, K), make_view(b.data(), K, N),
                                                                    pipeline, 113);
  CHECK(got == want);
}

TEMPLATE_LIST_TEST_CASE("float GEMM over several K blocks", "[gemm][kblocks]", gemm_backends) {
  using Arch = TestType;
  if (skip_unsupported<Arch>()) return;
  // K blocks are 1024 (AVX-512) / 4096 (AVX2) floats deep: 4500 crosses both, with a ragged end.
  const index_t M = 3, K = 4500, N = 20;
  const auto a = random_values<float>(M * K, 41), b = random_values<float>(K * N, 42), bias = random_values<float>(N, 43);
  const auto av = make_view(a.data(), M, K);
  const auto bv = make_view(b.data(), K, N);
  const auto [got, want] = run_both<Arch, float, float, float>(av, bv, ep::make_pipeline(ep::bias<float>{bias}));
  check_float_close(got, want, abs_products(av, bv), K);
}

TEMPLATE_LIST_TEST_CASE("threads: results do not depend on the thread count", "[gemm][threads]", gemm_backends) {
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

#if QTX_HAS_AVX512_VNNI
// The avx512_vnni int8 GEMM runs AMX tiles where the CPU has them (cpu/gemm/amx.hpp) and vpdpbusd
// otherwise, over the same packed B. Both paths against the oracle, on shapes around the tile edges:
// rows around 16/32 (one or two A tiles, padded blocks), K around 64 (tile steps, zero-padded last
// steps), N around 16/64 (partial panels), zero points, a fused epilogue, a strided A, 1 and 3 threads.
TEST_CASE("int8 GEMM: AMX tiles and vpdpbusd both give the oracle's bits", "[gemm][amx]") {
  using Arch = cpu::avx512_vnni;
  if (skip_unsupported<Arch>()) return;
  const bool amx = cpu_supports_amx_int8();
  if (!amx) WARN("CPU or OS without AMX-INT8: only the vpdpbusd path runs");
  const index_t M = GENERATE(8, 15, 16, 17, 32, 33, 70), K = GENERATE(1, 4, 63, 64, 65, 200, 1029),
                N = GENERATE(1, 17, 64, 130);
  // Each of za and zb zero for half of the shapes (no correction to add at all when both are).
  const int32_t za = M % 2 == 1 ? 0 : int32_t(M * 7 % 256), zb = K % 2 == 1 ? int32_t(K % 256) - 128 : 0;
  const auto a = random_values<uint8_t>(M * 2 * K, unsigned(M * 1000 + K));
  const auto b = random_values<int8_t>(K * N, unsigned(N * 1000 + K));
  std::vector<int32_t> bias(N);
  std::vector<float> multipliers(N);
  for (index_t n = 0; n < N; ++n) bias[n] = int32_t(n * 97 % 2001) - 1000, multipliers[n] = 1e-4f * float(n % 7 + 1);
  const auto requantize = ep::make_pipeline(ep::bias<int32_t>{bias}, ep::requantize<ep::per_n>{multipliers, 9});
  const auto packed = ops::pack_b<Arch>(make_view(b.data(), K, N), zb);
  const matrix_view<const uint8_t> dense = make_view(a.data(), M, K);
  const matrix_view<const uint8_t> strided{a.data(), M, K, 2 * K, 2};
  const int threads = max_threads();
  const bool amx_before = amx_enabled();
  for (const bool use_amx : {true, false}) {
    if (use_amx && !amx) continue;
    REQUIRE(set_amx_enabled(use_amx) == use_amx);
    for (const int t : {1, 3}) {
      set_num_threads(t);
      INFO((use_amx ? "AMX " : "vpdpbusd ") << M << "x" << K << "x" << N << " za " << za << " zb " << zb << " threads " << t);
      for (const auto& av : {dense, strided}) {
        std::vector<int32_t> got(M * N), want(M * N);
        ops::gemm(Arch{}, av, packed, make_view(got.data(), M, N), ep::make_pipeline(), za);
        ref::gemm(av, make_view(b.data(), K, N), make_view(want.data(), M, N), ep::make_pipeline(), za, zb);
        CHECK(got == want);
      }
      std::vector<uint8_t> got(M * N), want(M * N);
      ops::gemm(Arch{}, dense, packed, make_view(got.data(), M, N), requantize, za);
      ref::gemm(dense, make_view(b.data(), K, N), make_view(want.data(), M, N), requantize, za, zb);
      CHECK(got == want);
    }
  }
  set_num_threads(threads);
  set_amx_enabled(amx_before);
}
#endif

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
  CHECK_THROWS_AS(ops::gemm(Arch{}, av, packed, cv, ep::make_pipeline(ep::bias<int32_t>{{nullptr, 5}})), qtx::error);
  // Empty outputs are fine; K = 0 gives the epilogue of a zero accumulator.
  CHECK_NOTHROW(ops::gemm(Arch{}, make_view(a.data(), 0, 6), packed, make_view(c.data(), 0, 5)));
  const int32_t bias[] = {1, 2, 3, 4, 5};
  ops::gemm(Arch{}, make_view(a.data(), 4, 0), ops::pack_b<Arch>(make_view(b.data(), 0, 5)), cv,
            ep::make_pipeline(ep::bias<int32_t>{bias}), 7);
  CHECK(c == std::vector<int32_t>{1, 2, 3, 4, 5, 1, 2, 3, 4, 5, 1, 2, 3, 4, 5, 1, 2, 3, 4, 5});
}

// ---------------------------------------------------------------- epilogue validation

namespace {
// A user-written stage: v clamped to [lo, hi]; ops::gemm must call its validate().
struct clamp_stage {
  float lo, hi;
  float operator()(float v, index_t, index_t) const { return v < lo ? lo : v > hi ? hi : v; }
  void validate(const ep::gemm_call& call) const {
    qtx::check(lo <= hi, call, ": clamp_stage lo (", lo, ") > hi (", hi, ")");
  }
};
}  // namespace

TEST_CASE("ops::gemm validates every epilogue stage against C, by the shared rules", "[gemm][errors][epilogue]") {
  using Arch = cpu::native;
  const index_t M = 4, K = 6, N = 5;
  const std::vector<uint8_t> a(M * K, 1);
  const std::vector<int8_t> b(K * N, 1);
  const auto av = make_view(a.data(), M, K);
  const auto packed = ops::pack_b<Arch>(make_view(b.data(), K, N));
  std::vector<int32_t> c32(M * N, -7);
  std::vector<uint8_t> c8(M * N, 9);
  std::vector<float> cf(M * N, -1.0f);
  const auto c32v = make_view(c32.data(), M, N);
  const auto c8v = make_view(c8.data(), M, N);
  const auto cfv = make_view(cf.data(), M, N);
  const auto gemm_u8 = [&](const auto& pipeline) { ops::gemm(Arch{}, av, packed, c8v, pipeline, 3); };
  const auto gemm_f32 = [&](const auto& pipeline) { ops::gemm(Arch{}, av, packed, cfv, pipeline, 3); };
  const std::vector<int32_t> bias(N, 1), short_bias(N - 1, 1), long_bias(N + 1, 1);
  const std::vector<float> ones(N, 1.0f), one = {1.0f}, three(3, 1.0f);
  const float nan_f = std::numeric_limits<float>::quiet_NaN(), inf_f = std::numeric_limits<float>::infinity();

  // Lengths: bias (short, long, null, empty), per_n and per_tensor data, row factors.
  CHECK_THROWS_WITH(ops::gemm(Arch{}, av, packed, c32v, ep::make_pipeline(ep::bias<int32_t>{short_bias})),
                    Catch::Contains("gemm: bias values has 4 elements, expected 5 (one per column n of c)"));
  CHECK_THROWS_AS(ops::gemm(Arch{}, av, packed, c32v, ep::make_pipeline(ep::bias<int32_t>{long_bias})), qtx::error);
  CHECK_THROWS_WITH(ops::gemm(Arch{}, av, packed, c32v, ep::make_pipeline(ep::bias<int32_t>{{nullptr, N}})),
                    Catch::Contains("gemm: bias values is null"));
  CHECK_THROWS_AS(ops::gemm(Arch{}, av, packed, c32v, ep::make_pipeline(ep::bias<int32_t>{})), qtx::error);
  CHECK_THROWS_WITH(gemm_u8(ep::make_pipeline(ep::requantize<ep::per_n>{three, 0})),
                    Catch::Contains("gemm: requantize multipliers has 3 elements, expected 5"));
  CHECK_THROWS_WITH(gemm_u8(ep::make_pipeline(ep::requantize<ep::per_tensor>{three, 0})),
                    Catch::Contains("expected 1 (one for the whole tensor)"));
  CHECK_THROWS_AS(gemm_f32(ep::make_pipeline(ep::dequantize<ep::per_n>{one})), qtx::error);
  CHECK_THROWS_AS(gemm_f32(ep::make_pipeline(ep::dequantize<ep::per_tensor>{ones})), qtx::error);
  CHECK_THROWS_WITH(gemm_f32(ep::make_pipeline(ep::dequantize<ep::per_tensor>{one}, ep::row_scale{ones})),
                    Catch::Contains("gemm: row_scale factors has 5 elements, expected 4 (one per row m of c)"));
  // Values, by the rules ops::requantize / ops::quantize use (quant/params.hpp).
  for (float bad : {0.0f, -1.0f, nan_f, inf_f, -inf_f}) {
    std::vector<float> m = ones;
    m[2] = bad;
    CHECK_THROWS_WITH(gemm_u8(ep::make_pipeline(ep::requantize<ep::per_n>{m, 0})),
                      Catch::Contains("gemm: requantize multipliers[2] (") &&
                          Catch::Contains(") must be finite and positive"));
    CHECK_THROWS_WITH(gemm_f32(ep::make_pipeline(ep::dequantize<ep::per_n>{m})),
                      Catch::Contains("gemm: dequantize scales[2] ("));
    CHECK_THROWS_WITH(gemm_u8(ep::make_pipeline(ep::dequantize<ep::per_tensor>{one}, ep::quantize{bad, 0})),
                      Catch::Contains("gemm: quantize inv_scale ("));
    // The same multiplier through ops::requantize: the same rule, the same words.
    std::vector<int32_t> acc(1);
    std::vector<uint8_t> out(1);
    CHECK_THROWS_WITH(qtx::requantize<uint8_t>(acc, out, bad, 0), Catch::Contains(") must be finite and positive"));
  }
  CHECK_THROWS_WITH(gemm_u8(ep::make_pipeline(ep::requantize<ep::per_n>{ones, 256})),
                    Catch::Contains("gemm: requantize zero_point (256) is outside the range of u8 [0, 255]"));
  CHECK_THROWS_AS(gemm_u8(ep::make_pipeline(ep::requantize<ep::per_n>{ones, -1})), qtx::error);
  std::vector<int32_t> accepted(M * N);  // int32 C: any zero point
  CHECK_NOTHROW(ops::gemm(Arch{}, av, packed, make_view(accepted.data(), M, N),
                          ep::make_pipeline(ep::requantize<ep::per_n>{ones, 256})));
  std::vector<int8_t> c_s8(M * N);
  CHECK_THROWS_WITH(ops::gemm(Arch{}, av, packed, make_view(c_s8.data(), M, N),
                              ep::make_pipeline(ep::requantize<ep::per_tensor>{one, 128})),
                    Catch::Contains("outside the range of s8"));
  const std::vector<fixed_point_multiplier> bad_fixed = {to_fixed_point(0.5), {5, 0}, to_fixed_point(0.5),
                                                         to_fixed_point(0.5), to_fixed_point(0.5)};
  CHECK_THROWS_WITH(gemm_u8(ep::make_pipeline(ep::requantize_fixed<ep::per_n>{bad_fixed, 0})),
                    Catch::Contains("gemm: requantize_fixed multipliers[1] (m0 5, shift 0) is not normalised"));
  const std::vector<fixed_point_multiplier> wide_shift = {{1 << 30, 32}};
  CHECK_THROWS_AS(gemm_u8(ep::make_pipeline(ep::requantize_fixed<ep::per_tensor>{wide_shift, 0})), qtx::error);
  CHECK_THROWS_AS(gemm_u8(ep::make_pipeline(ep::requantize_fixed<ep::per_tensor>{std::span(bad_fixed).first(1), 300})),
                  qtx::error);
  CHECK_THROWS_WITH(gemm_u8(ep::make_pipeline(ep::dequantize<ep::per_tensor>{one}, ep::quantize{1.0f, 300})),
                    Catch::Contains("gemm: quantize zero_point (300)"));
  CHECK_THROWS_WITH(gemm_f32(ep::make_pipeline(ep::dequantize<ep::per_tensor>{one}, ep::scale{nan_f})),
                    Catch::Contains("gemm: scale alpha (nan) must be finite"));
  const std::vector<float> r(M * N, 0.0f);
  CHECK_THROWS_WITH(gemm_f32(ep::make_pipeline(ep::dequantize<ep::per_tensor>{one},
                                               ep::residual_add{{nullptr, M, N, N, 1}})),
                    Catch::Contains("gemm: residual is null"));
  CHECK_THROWS_AS(gemm_f32(ep::make_pipeline(ep::dequantize<ep::per_tensor>{one},
                                             ep::residual_add{{r.data(), M, N, -1, 1}})),
                  qtx::error);
  // A user-written stage is validated the same way, and runs on every backend's fallback path.
  CHECK_THROWS_WITH(gemm_f32(ep::make_pipeline(ep::dequantize<ep::per_tensor>{one}, clamp_stage{2.0f, 1.0f})),
                    Catch::Contains("gemm: clamp_stage lo (2) > hi (1)"));
  // Nothing was written by any rejected call.
  CHECK(c8 == std::vector<uint8_t>(M * N, 9));
  CHECK(cf == std::vector<float>(M * N, -1.0f));
  CHECK(c32 == std::vector<int32_t>(M * N, -7));
}

TEMPLATE_LIST_TEST_CASE("a user-written stage runs through the vector fallback bit-exactly", "[gemm][epilogue]", gemm_backends) {
  using Arch = TestType;
  if (skip_unsupported<Arch>()) return;
  const index_t M = GENERATE(1, 5), N = GENERATE(3, 37), K = 19;
  const auto a = random_values<uint8_t>(M * K, 51);
  const auto b = random_values<int8_t>(K * N, 52);
  const float s[] = {1e-3f};
  const auto pipeline = ep::make_pipeline(ep::dequantize<ep::per_tensor>{s}, clamp_stage{-0.5f, 0.25f});
  const auto [got, want] = run_both<Arch, uint8_t, int8_t, float>(make_view(a.data(), M, K), make_view(b.data(), K, N),
                                                                  pipeline, 77);
  CHECK(got == want);
}

TEST_CASE("ops::gemm with unpacked B names gemm, not pack_b, in its messages", "[gemm][errors]") {
  using Arch = cpu::native;
  const index_t K = ops::int8_gemm_max_k + 1;
  const std::vector<uint8_t> a(K, 1);
  const std::vector<int8_t> b(K, 1);
  std::vector<int32_t> c(1);
  CHECK_THROWS_WITH(ops::gemm(Arch{}, make_view(a.data(), 1, K), make_view(b.data(), K, 1), make_view(c.data(), 1, 1)),
                    Catch::StartsWith("gemm: K (33026) exceeds the int32-safe bound 33025"));
  CHECK_THROWS_WITH(ops::pack_b<Arch>(make_view(b.data(), K, 1)), Catch::StartsWith("pack_b: K (33026)"));
  CHECK_THROWS_WITH(ops::gemm(Arch{}, make_view(a.data(), 1, 4), make_view(b.data(), 4, 1), make_view(c.data(), 1, 1),
                              ep::make_pipeline(), 0, 200),
                    Catch::StartsWith("gemm: b_zero_point (200) is outside the range of s8"));
  CHECK_THROWS_WITH(ops::gemm(Arch{}, make_view(a.data(), 1, 4), make_view(b.data(), 3, 1), make_view(c.data(), 1, 1)),
                    Catch::StartsWith("gemm: a.cols (4) != b.rows (3)"));
  CHECK_THROWS_WITH(ops::gemm(Arch{}, make_view(a.data(), 1, 4), make_view(b.data(), 4, 1), make_view(c.data(), 1, 1),
                              ep::make_pipeline(), 256),
                    Catch::StartsWith("gemm: a_zero_point (256) is outside the range of u8"));
}

// ---------------------------------------------------------------- batched GEMM

namespace {
// A batch of (rows, cols) matrices stacked with `pad` elements after each row and `gap` after
// each matrix, filled from `values` (so the pads hold values the kernels must not read or write).
template <class T>
batch_view<T> stacked(std::vector<T>& store, index_t batch, index_t rows, index_t cols, index_t pad, index_t gap) {
  const index_t row_stride = cols + pad, batch_stride = rows * row_stride + gap;
  store.resize(std::size_t(std::max<index_t>(1, batch * batch_stride)));
  return {store.data(), batch, rows, cols, batch_stride, row_stride, 1};
}
}  // namespace

TEMPLATE_LIST_TEST_CASE("batched int8 GEMM is bit-exact per batch: shared B, per-batch B, per-batch epilogue",
                   "[gemm][batched]", gemm_backends) {
  using Arch = TestType;
  if (skip_unsupported<Arch>()) return;
  const index_t batch = GENERATE(1, 3, 20);
  const int shape = GENERATE(range(0, 4));  // (M, N, K): tiny, odd, and across a vector width
  constexpr index_t shapes[][3] = {{1, 1, 1}, {2, 3, 5}, {7, 17, 33}, {16, 65, 31}};
  const index_t M = shapes[shape][0], N = shapes[shape][1], K = shapes[shape][2];
  INFO(Arch::name() << " batch " << batch << " " << M << "x" << N << "x" << K);
  const int32_t za = 140;
  std::vector<uint8_t> a_store;
  const auto a = stacked(a_store, batch, M, K, 3, 5);
  {  // fill in place: `a` views a_store, so the vector must not be reallocated
    const auto values = random_values<uint8_t>(index_t(a_store.size()), unsigned(batch * 1000 + M));
    std::copy(values.begin(), values.end(), a_store.begin());
  }
  std::vector<std::vector<int8_t>> bs;
  std::vector<ops::packed_b<Arch, int8_t>> packed;
  std::vector<std::vector<int32_t>> biases;
  std::vector<float> multipliers(N);
  for (index_t n = 0; n < N; ++n) multipliers[n] = 1e-3f * float(1 + n % 5);
  for (index_t i = 0; i < batch; ++i) {
    bs.push_back(random_values<int8_t>(K * N, unsigned(i + 17 * N)));
    packed.push_back(ops::pack_b<Arch>(make_view(bs[i].data(), K, N), int32_t(i % 7) - 3));
    biases.push_back(random_values<int32_t>(N, unsigned(i + 5)));
    for (auto& v : biases.back()) v %= 5000;
  }
  const auto per_batch_ep = [&](index_t i) {
    return ep::make_pipeline(ep::bias<int32_t>{biases[i]}, ep::requantize<ep::per_n>{multipliers, int32_t(100 + i)});
  };
  // Expected: the reference GEMM of each batch on its own.
  auto expect = [&](bool shared_b, bool per_batch) {
    std::vector<uint8_t> want(batch * M * N);
    for (index_t i = 0; i < batch; ++i) {
      const index_t bi = shared_b ? 0 : i;
      const auto out = make_view(want.data() + i * M * N, M, N);
      const matrix_view<const uint8_t> ai = a[i];
      const auto bv = make_view(static_cast<const int8_t*>(bs[bi].data()), K, N);
      const int32_t zb = int32_t(bi % 7) - 3;
      if (per_batch) ref::gemm(ai, bv, out, per_batch_ep(i), za, zb);
      else ref::gemm(ai, bv, out, per_batch_ep(0), za, zb);
    }
    return want;
  };
  auto run = [&](auto&& call) {
    std::vector<uint8_t> c_store;
    const auto c = stacked(c_store, batch, M, N, 2, 3);
    std::fill(c_store.begin(), c_store.end(), uint8_t(77));
    call(c);
    std::vector<uint8_t> got;
    for (index_t i = 0; i < batch; ++i)
      for (index_t m = 0; m < M; ++m)
        for (index_t n = 0; n < N; ++n) got.push_back(c(i, m, n));
    // Row pads and batch gaps are untouched.
    index_t touched = 0;
    for (index_t i = 0; i < batch; ++i)
      for (index_t off = 0; off < c.batch_stride; ++off) {
        const index_t m = off / c.row_stride, n = off % c.row_stride;
        if ((m >= M || n >= N) && c_store[std::size_t(i * c.batch_stride + off)] != 77) ++touched;
      }
    CHECK(touched == 0);
    return got;
  };
  const batch_view<const uint8_t> ac{a.data, a.batch, a.rows, a.cols, a.batch_stride, a.row_stride, a.col_stride};
  CHECK(run([&](auto c) { ops::gemm(Arch{}, ac, packed[0], c, per_batch_ep(0), za); }) == expect(true, false));
  CHECK(run([&](auto c) { ops::gemm(Arch{}, a, packed, c, per_batch_ep(0), za); }) == expect(false, false));
  CHECK(run([&](auto c) { ops::gemm(Arch{}, a, std::span(packed), c, per_batch_ep, za); }) == expect(false, true));
  CHECK(run([&](auto c) { ops::gemm(Arch{}, a, packed[0], c, per_batch_ep, za); }) == expect(true, true));
}

TEMPLATE_LIST_TEST_CASE("batched GEMM over heads side by side in the columns (attention layout)", "[gemm][batched]",
                   gemm_backends) {
  using Arch = TestType;
  if (skip_unsupported<Arch>()) return;
  // A (T, H·d) as H batches (T, d); C (T, H·n) as H batches (T, n); batch_stride d / n, row stride H·d / H·n.
  const index_t T = GENERATE(1, 9, 40), H = 6, d = 16, n = 12;
  INFO(Arch::name() << " T " << T);
  const auto a = random_values<uint8_t>(T * H * d, unsigned(T));
  const auto b = random_values<int8_t>(d * n, 3);
  const auto packed = ops::pack_b<Arch>(make_view(b.data(), d, n), 5);
  std::vector<int32_t> c(T * H * n, -1), want(T * H * n);
  const batch_view<const uint8_t> av{a.data(), H, T, d, d, H * d, 1};
  const batch_view<int32_t> cv{c.data(), H, T, n, n, H * n, 1};
  ops::gemm(Arch{}, av, packed, cv, ep::make_pipeline(), 9);
  for (index_t h = 0; h < H; ++h)
    ref::gemm(av[h], make_view(b.data(), d, n), make_view(want.data() + h * n, T, n, H * n), ep::make_pipeline(), 9, 5);
  CHECK(c == want);

  // Float: the batched call equals one ops::gemm per batch, bit for bit (the same kernel).
  const auto af = random_values<float>(T * H * d, 4), bf = random_values<float>(d * n, 5), bias = random_values<float>(n, 6);
  const auto packed_f = ops::pack_b<Arch>(make_view(bf.data(), d, n));
  std::vector<float> cf(T * H * n), cf_want(T * H * n);
  const batch_view<const float> afv{af.data(), H, T, d, d, H * d, 1};
  const auto pipeline = ep::make_pipeline(ep::bias<float>{bias}, ep::gelu_tanh{});
  ops::gemm(Arch{}, afv, packed_f, batch_view<float>{cf.data(), H, T, n, n, H * n, 1}, pipeline);
  for (index_t h = 0; h < H; ++h)
    ops::gemm(Arch{}, afv[h], packed_f, make_view(cf_want.data() + h * n, T, n, H * n), pipeline);
  CHECK(cf == cf_want);
}

TEST_CASE("batched GEMM: overlapping C batches run one after another (last batch wins)", "[gemm][batched]") {
  using Arch = cpu::native;
  // batch_stride 0: every batch writes the same C; batch i adds bias i, so C holds batch 3's result.
  const index_t M = 3, N = 4, K = 2, B = 4;
  const std::vector<uint8_t> a(M * K, 2);
  const std::vector<int8_t> b(K * N, 1);
  const auto packed = ops::pack_b<Arch>(make_view(b.data(), K, N));
  std::vector<std::vector<int32_t>> biases;
  for (index_t i = 0; i < B; ++i) biases.emplace_back(N, int32_t(100 * i));
  std::vector<int32_t> c(M * N);
  ops::gemm(Arch{}, batch_view<const uint8_t>{a.data(), B, M, K, 0, K, 1}, packed, batch_view<int32_t>{c.data(), B, M, N, 0, N, 1},
            [&](index_t i) { return ep::make_pipeline(ep::bias<int32_t>{biases[i]}); });
  CHECK(c == std::vector<int32_t>(M * N, 2 * 2 + 300));
}

TEST_CASE("batched GEMM rejects bad arguments with qtx::error", "[gemm][batched][errors]") {
  using Arch = cpu::native;
  const index_t B = 3, M = 4, K = 6, N = 5;
  const std::vector<uint8_t> a(B * M * K, 1);
  const std::vector<int8_t> b(K * N, 1), b_wide(K * (N + 1), 1);
  std::vector<int32_t> c(B * M * N, -3);
  const auto packed = ops::pack_b<Arch>(make_view(b.data(), K, N));
  const auto av = make_batch_view(a.data(), B, M, K);
  const auto cv = make_batch_view(c.data(), B, M, N);
  CHECK_NOTHROW(ops::gemm(Arch{}, av, packed, cv));
  std::fill(c.begin(), c.end(), -3);
  // Batch counts and per-batch B's.
  CHECK_THROWS_WITH(ops::gemm(Arch{}, make_batch_view(a.data(), 2, M, K), packed, cv),
                    Catch::StartsWith("gemm: a has 2 batches but c has 3"));
  std::vector<ops::packed_b<Arch, int8_t>> two;
  two.push_back(ops::pack_b<Arch>(make_view(b.data(), K, N)));
  two.push_back(ops::pack_b<Arch>(make_view(b.data(), K, N)));
  CHECK_THROWS_WITH(ops::gemm(Arch{}, av, two, cv), Catch::StartsWith("gemm: b holds 2 packed matrices but a has 3 batches"));
  two.push_back(ops::pack_b<Arch>(make_view(b_wide.data(), K, N + 1)));
  CHECK_THROWS_WITH(ops::gemm(Arch{}, av, two, cv), Catch::StartsWith("gemm: c is 4x5 but a·b[2] is 4x6"));
  two[2] = ops::pack_b<Arch>(make_view(b.data(), K - 1, N));
  CHECK_THROWS_WITH(ops::gemm(Arch{}, av, two, cv), Catch::StartsWith("gemm: a.cols (6) != b[2].rows (5)"));
  // Shapes against a shared B.
  CHECK_THROWS_AS(ops::gemm(Arch{}, make_batch_view(a.data(), B, M, K - 1), packed, cv), qtx::error);
  CHECK_THROWS_AS(ops::gemm(Arch{}, av, packed, make_batch_view(c.data(), B, M - 1, N)), qtx::error);
  // Views: negative batch, negative batch_stride, null data, negative row stride.
  CHECK_THROWS_WITH(ops::gemm(Arch{}, batch_view<const uint8_t>{a.data(), -1, M, K, M * K, K, 1}, packed,
                              batch_view<int32_t>{c.data(), -1, M, N, M * N, N, 1}),
                    Catch::StartsWith("gemm: a has a negative batch count (-1)"));
  CHECK_THROWS_WITH(ops::gemm(Arch{}, batch_view<const uint8_t>{a.data(), B, M, K, -1, K, 1}, packed, cv),
                    Catch::StartsWith("gemm: a has a negative batch_stride (-1)"));
  CHECK_THROWS_WITH(ops::gemm(Arch{}, av, packed, batch_view<int32_t>{nullptr, B, M, N, M * N, N, 1}),
                    Catch::StartsWith("gemm: c is 4x5 with null data"));
  CHECK_THROWS_AS(ops::gemm(Arch{}, batch_view<const uint8_t>{a.data(), B, M, K, M * K, -K, 1}, packed, cv), qtx::error);
  // Zero point of A.
  CHECK_THROWS_WITH(ops::gemm(Arch{}, av, packed, cv, ep::make_pipeline(), 256),
                    Catch::StartsWith("gemm: a_zero_point (256)"));
  // Epilogues: a shared one of the wrong length; a per-batch one wrong only in batch 2 (named).
  const std::vector<int32_t> bias(N, 1), short_bias(N - 2, 1);
  CHECK_THROWS_WITH(ops::gemm(Arch{}, av, packed, cv, ep::make_pipeline(ep::bias<int32_t>{short_bias})),
                    Catch::StartsWith("gemm: bias values has 3 elements, expected 5"));
  CHECK_THROWS_WITH(ops::gemm(Arch{}, av, packed, cv,
                              [&](index_t i) { return ep::make_pipeline(ep::bias<int32_t>{i == 2 ? short_bias : bias}); }),
                    Catch::StartsWith("gemm (batch 2): bias values has 3 elements, expected 5"));
  CHECK(c == std::vector<int32_t>(B * M * N, -3));  // no batch was written by a rejected call
  // Empty batches and empty matrices are fine.
  CHECK_NOTHROW(ops::gemm(Arch{}, batch_view<const uint8_t>{nullptr, 0, M, K, M * K, K, 1}, packed,
                          batch_view<int32_t>{nullptr, 0, M, N, M * N, N, 1}));
  CHECK_NOTHROW(ops::gemm(Arch{}, make_batch_view(a.data(), B, 0, K), packed, make_batch_view(c.data(), B, 0, N)));
}

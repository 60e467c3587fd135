// Run-time dispatch (qtx/dispatch.hpp): this program is built for the baseline ISA; probe.cpp is
// compiled once per ISA into it (qtx_add_dispatch). Each variant must run its own code (its own
// ISA key and backend, so no symbol is shared between variants), agree with references written
// here, and the dispatcher must pick the best variant the CPU runs, capped by QTX_ISA.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include <qtx/dispatch.hpp>

#include "probe.hpp"

namespace dispatch_probe {
QTX_DISPATCH_DECLARE(run_fn, run)
}

namespace {

using dispatch_probe::run_fn;
using variant = qtx::dispatch::entry<run_fn>;

#define QTX_TEST_VARIANT(level, Type, Function) variant{qtx::isa::level, &dispatch_probe::abi_##level::run},
const std::vector<variant> compiled = {QTX_DISPATCH_TARGETS(QTX_TEST_VARIANT, run_fn, run)};
#undef QTX_TEST_VARIANT

struct inputs {
  int m = 13, k = 37, n = 19, rows = 5, cols = 77;
  std::vector<std::uint8_t> a;
  std::vector<std::int8_t> b;
  std::int32_t a_zero_point = 131;
  std::vector<float> x, weight, bias;
  inputs() : a(m * k), b(k * n), x(rows * cols), weight(cols), bias(cols) {
    std::mt19937 rng(7);
    std::uniform_int_distribution<int> u8(0, 255), s8(-128, 127);
    std::normal_distribution<float> normal(0.0f, 3.0f);
    for (auto& v : a) v = std::uint8_t(u8(rng));
    for (auto& v : b) v = std::int8_t(s8(rng));
    for (auto& v : x) v = normal(rng);
    for (auto& v : weight) v = 1.0f + 0.1f * normal(rng);
    for (auto& v : bias) v = 0.1f * normal(rng);
  }
};

struct outputs {
  std::vector<std::int32_t> c;
  std::vector<float> softmax, layer_norm;
  dispatch_probe::report who{};
};

outputs run(const inputs& in, run_fn* function) {
  outputs out{std::vector<std::int32_t>(in.m * in.n), std::vector<float>(in.rows * in.cols),
              std::vector<float>(in.rows * in.cols)};
  const dispatch_probe::problem p{in.m, in.k, in.n, in.a.data(), in.b.data(), in.a_zero_point, out.c.data(),
                                  in.rows, in.cols, in.x.data(), out.softmax.data(), in.weight.data(),
                                  in.bias.data(), out.layer_norm.data()};
  out.who = function(p);
  return out;
}

}  // namespace

TEST_CASE("every compiled variant runs its own ISA's code and matches the references", "[dispatch]") {
  const inputs in;
  // References in int64 / double, written out here.
  std::vector<std::int32_t> c_ref(in.m * in.n);
  for (int i = 0; i < in.m; ++i)
    for (int j = 0; j < in.n; ++j) {
      std::int64_t acc = 0;
      for (int p = 0; p < in.k; ++p) acc += std::int64_t(in.a[i * in.k + p] - in.a_zero_point) * in.b[p * in.n + j];
      c_ref[i * in.n + j] = std::int32_t(acc);
    }
  std::vector<double> softmax_ref(in.rows * in.cols), ln_ref(in.rows * in.cols);
  for (int r = 0; r < in.rows; ++r) {
    const float* x = &in.x[r * in.cols];
    double max = x[0], sum = 0, mean = 0, var = 0;
    for (int j = 0; j < in.cols; ++j) max = std::max(max, double(x[j]));
    for (int j = 0; j < in.cols; ++j) sum += std::exp(double(x[j]) - max);
    for (int j = 0; j < in.cols; ++j) softmax_ref[r * in.cols + j] = std::exp(double(x[j]) - max) / sum;
    for (int j = 0; j < in.cols; ++j) mean += x[j];
    mean /= in.cols;
    for (int j = 0; j < in.cols; ++j) var += (x[j] - mean) * (x[j] - mean);
    var /= in.cols;
    for (int j = 0; j < in.cols; ++j)
      ln_ref[r * in.cols + j] = (x[j] - mean) / std::sqrt(var + 1e-5) * in.weight[j] + in.bias[j];
  }

  REQUIRE(compiled.size() >= 2);  // GCC and Clang target at least scalar and AVX2
  CHECK(compiled.front().level == qtx::isa::scalar);
  for (const variant& v : compiled) {
    const std::string level = qtx::to_string(v.level);
    if (!qtx::cpu_supports(v.level)) {
      WARN("CPU lacks " << level << ": its variant is linked but not run");
      continue;
    }
    INFO("variant " << level);
    const outputs out = run(in, v.function);
    CHECK(std::string(out.who.abi) == "abi_" + level);
    CHECK(std::string(out.who.backend) == level);
    CHECK(out.c == c_ref);
    for (std::size_t i = 0; i < softmax_ref.size(); ++i) {
      CHECK(std::abs(out.softmax[i] - softmax_ref[i]) <= 1e-6 + 1e-5 * softmax_ref[i]);
      CHECK(std::abs(out.layer_norm[i] - ln_ref[i]) <= 2e-5 * (1 + std::abs(ln_ref[i])));
    }
  }
}

TEST_CASE("the dispatcher picks the best variant the CPU runs, capped by QTX_ISA", "[dispatch]") {
  const char* saved = std::getenv("QTX_ISA");
  const std::string restore = saved ? saved : "";
  auto select_with = [](const char* ceiling) {
    if (ceiling) ::setenv("QTX_ISA", ceiling, 1);
    else ::unsetenv("QTX_ISA");
    return qtx::dispatch::select<run_fn>(compiled);
  };
  qtx::isa best = qtx::isa::scalar;
  for (const variant& v : compiled)
    if (qtx::cpu_supports(v.level) && v.level > best) best = v.level;
  if (saved) {
    CHECK(select_with(saved).level <= qtx::parse_isa(restore).value_or(qtx::isa::avx512_vnni));
  }
  CHECK(select_with(nullptr).level == best);
  CHECK(select_with("scalar").level == qtx::isa::scalar);
  CHECK(select_with("avx2").level == (best >= qtx::isa::avx2 ? qtx::isa::avx2 : best));
  CHECK_THROWS_WITH(select_with("sse9"), Catch::Contains("QTX_ISA: 'sse9' is not an instruction set"));
  const variant only_top{qtx::isa::avx512_vnni, compiled.front().function};
  ::setenv("QTX_ISA", "scalar", 1);
  CHECK_THROWS_WITH(qtx::dispatch::select<run_fn>({only_top}), Catch::Contains("dispatch: no compiled variant"));
  if (saved) ::setenv("QTX_ISA", restore.c_str(), 1);
  else ::unsetenv("QTX_ISA");

  // The declared entry point selects once and runs the chosen variant.
  const auto& chosen = dispatch_probe::run_dispatch();
  const outputs out = run(inputs{}, chosen.function);
  CHECK(std::string(out.who.backend) == qtx::to_string(chosen.level));
}

#pragma once
// Measured multiply-add peak of one core, one probe per instruction mix a qtx backend (or a peer
// limited to the same ISA) runs, so "% of peak" is relative to what this core sustains.
//
// A probe runs independent accumulator chains through one instruction mix for a fixed number of
// steps; it reaches the rate only when chains ≥ pipes × latency (two 512-bit pipes with a ~5 cycle
// vpdpbusd latency on recent Intel cores need ≥ 10). The previous probe wrote its 16 chains as
// intrinsics: GCC copied every accumulator each step and kept one in memory, so the loop was bound
// by that chain's store-to-load latency (478 of 970 int8 GOPS on an Intel Xeon). Here the step is
// inline assembly with the accumulator tied to its register ("+v" / "+x"): the instructions timed
// are exactly the ones named, and the compiler can neither copy, spill nor fold them.
//
// The assembler accepts every instruction whatever the -m flags, so all probes are compiled in
// every build; a probe runs only when the CPU supports its ISA (CPUID), and reports 0 otherwise.
#include <benchmark/benchmark.h>
#include <qtx/core/isa.hpp>

#include <algorithm>
#include <cpuid.h>
#include <immintrin.h>
#include <cstdint>
#include <cstring>
#include <ctime>
#include <string>
#include <utility>

namespace qtx_bench {

// Thread CPU time: a trial descheduled by another process does not count the wait.
inline double thread_seconds() {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return double(t.tv_sec) + 1e-9 * double(t.tv_nsec);
}

// The CPU's brand string (CPUID 0x80000002–4), e.g. "Intel(R) Xeon(R) Processor".
inline std::string cpu_model() {
  unsigned regs[12] = {};
  for (unsigned leaf = 0; leaf < 3; ++leaf)
    if (!__get_cpuid(0x80000002u + leaf, &regs[4 * leaf], &regs[4 * leaf + 1], &regs[4 * leaf + 2], &regs[4 * leaf + 3]))
      return "unknown";
  char brand[sizeof regs + 1] = {};
  std::memcpy(brand, regs, sizeof regs);
  std::string s(brand);
  s.erase(0, s.find_first_not_of(' '));
  return s;
}

// The levels qtx's backends need, by the library's own CPUID check (qtx/core/isa.hpp).
inline bool cpu_has_avx_vnni() { return qtx::cpu_supports(qtx::isa::avx_vnni); }
inline bool cpu_has_avx512_vnni() { return qtx::cpu_supports(qtx::isa::avx512_vnni); }
inline bool cpu_has_avx2_fma() { return qtx::cpu_supports(qtx::isa::avx2); }
inline bool cpu_has_avx512f() { return __builtin_cpu_supports("avx512f"); }

inline constexpr long probe_steps = 1 << 16;
inline constexpr int probe_trials = 40;

// One step of one chain per instruction mix: c = mix(c, a); ops = 2 per multiply-add (a u8·s8
// product or a float lane), per step. Operands are zero: these instructions take the same time for
// every value (no early exit, no denormals). `volatile`: results are never read.
#define QTX_PROBE_ZMM __attribute__((target("avx512f"), always_inline))
#define QTX_PROBE_YMM __attribute__((target("avx2,fma"), always_inline))
struct fma512 {
  using reg = __m512;
  static constexpr double ops = 2.0 * 16;
  QTX_PROBE_ZMM static void step(reg& c, reg a) { asm volatile("vfmadd231ps %1, %1, %0" : "+v"(c) : "v"(a)); }
};
struct vpdpbusd512 {
  using reg = __m512i;
  static constexpr double ops = 2.0 * 64;
  QTX_PROBE_ZMM static void step(reg& c, reg a) { asm volatile("vpdpbusd %1, %1, %0" : "+v"(c) : "v"(a)); }
};
// 256-bit mixes use "x" (ymm0–15): what VEX can encode and all an AVX2-only core has.
struct fma256 {
  using reg = __m256;
  static constexpr double ops = 2.0 * 8;
  QTX_PROBE_YMM static void step(reg& c, reg a) { asm volatile("vfmadd231ps %1, %1, %0" : "+x"(c) : "x"(a)); }
};
struct vpdpbusd256_vex {  // AVX-VNNI; %{ %} escape the braces of the {vex} prefix
  using reg = __m256i;
  static constexpr double ops = 2.0 * 32;
  QTX_PROBE_YMM static void step(reg& c, reg a) { asm volatile("%{vex%} vpdpbusd %1, %1, %0" : "+x"(c) : "x"(a)); }
};
// AVX2 int8 as oneDNN runs it: vpmaddubsw (u8·s8 pairs → int16), vpmaddwd by ones (→ int32),
// vpaddd. The second operand stands in for the ones.
struct maddubs256 {
  using reg = __m256i;
  static constexpr double ops = 2.0 * 32;
  QTX_PROBE_YMM static void step(reg& c, reg a) {
    reg t;
    asm volatile("vpmaddubsw %2, %2, %1\n\tvpmaddwd %2, %1, %1\n\tvpaddd %1, %0, %0" : "+x"(c), "=&x"(t) : "x"(a));
  }
};
// AVX2 int8 on operands widened to int16: vpmaddwd + vpaddd, 16 products per step.
struct madd16_256 {
  using reg = __m256i;
  static constexpr double ops = 2.0 * 16;
  QTX_PROBE_YMM static void step(reg& c, reg a) {
    reg t;
    asm volatile("vpmaddwd %2, %2, %1\n\tvpaddd %1, %0, %0" : "+x"(c), "=&x"(t) : "x"(a));
  }
};

// An exact vpmaddubsw scheme for AVX2 (candidate for the int8 kernel, measured here instead):
// A = lo7 + 128·hi; lo7·B pairs cannot saturate (2·127·128 < 2^15) and go through vpmaddubsw,
// vpmaddwd, vpaddd; the hi-bit pairs (|·| ≤ 256) through vpmaddubsw, accumulated in int16 with
// vpaddw (flushed every ≤ 127 steps, not timed). 32 products per step, two registers per chain.
struct split7_256 {
  using reg = __m256i;
  static constexpr double ops = 2.0 * 32;
  QTX_PROBE_YMM static void step(reg& c32, reg& c16, reg a) {
    reg t, u;
    asm volatile(
        "vpmaddubsw %4, %4, %0\n\tvpmaddwd %4, %0, %0\n\tvpaddd %0, %2, %2\n\t"
        "vpmaddubsw %4, %4, %1\n\tvpaddw %1, %3, %3"
        : "=&x"(t), "=&x"(u), "+x"(c32), "+x"(c16)
        : "x"(a));
  }
};

// probe_steps steps of every chain. Chains: every register the encoding names but the operands
// (EVEX 32 → 24 chains, VEX 16 → 12), ≥ 2 pipes × 6 cycles of latency. Measured on an Intel Xeon
// (vpdpbusd zmm, 2 pipes): 8 chains 705 GOPS, 10: 884, 12: 956, 16 and 24: 970. The two drivers differ
// only in their target: a probe must be compiled for its ISA (Clang checks the asm operands against
// the function's target), and the ymm one must not use EVEX registers on an AVX2-only core.
template <class Mix, int... I>
__attribute__((target("avx512f"), noinline)) void run_zmm(std::integer_sequence<int, I...>) {
  typename Mix::reg acc[] = {((void)I, typename Mix::reg{})...}, a{};
  for (long s = 0; s < probe_steps; ++s) (Mix::step(acc[I], a), ...);
}
template <class Mix, int... I>
__attribute__((target("avx2,fma"), noinline)) void run_ymm(std::integer_sequence<int, I...>) {
  typename Mix::reg acc[] = {((void)I, typename Mix::reg{})...}, a{};
  for (long s = 0; s < probe_steps; ++s) (Mix::step(acc[I], a), ...);
}
template <int... I>  // split7_256: two accumulators per chain, so half the chains
__attribute__((target("avx2,fma"), noinline)) void run_split7(std::integer_sequence<int, I...>) {
  __m256i acc32[] = {((void)I, __m256i{})...}, acc16[] = {((void)I, __m256i{})...}, a{};
  for (long s = 0; s < probe_steps; ++s) (split7_256::step(acc32[I], acc16[I], a), ...);
}

// AMX-INT8: six independent 16 × 16 int32 accumulator tiles (tmm0–5) take tdpbusd from one A tile
// (tmm6) and one B tile (tmm7): 2·16·16·64 ops each. Six chains cover a tdpbusd latency of up to six
// times its issue interval. Tiles configured 16 rows × 64 bytes; operands are zero, as above.
__attribute__((target("amx-tile,amx-int8"), noinline)) inline void run_tdpbusd() {
  struct alignas(64) {
    uint8_t palette = 1, start_row = 0, reserved[14] = {};
    uint16_t bytes_per_row[16] = {64, 64, 64, 64, 64, 64, 64, 64};
    uint8_t rows[16] = {16, 16, 16, 16, 16, 16, 16, 16};
  } config;
  asm volatile("ldtilecfg %0" : : "m"(config));  // the whole object (see qtx/cpu/gemm/amx.hpp)
  _tile_zero(0);
  _tile_zero(1);
  _tile_zero(2);
  _tile_zero(3);
  _tile_zero(4);
  _tile_zero(5);
  _tile_zero(6);
  _tile_zero(7);
  for (long s = 0; s < probe_steps / 16; ++s) {
    _tile_dpbusd(0, 6, 7);
    _tile_dpbusd(1, 6, 7);
    _tile_dpbusd(2, 6, 7);
    _tile_dpbusd(3, 6, 7);
    _tile_dpbusd(4, 6, 7);
    _tile_dpbusd(5, 6, 7);
  }
  _tile_release();
}
inline double probe_tdpbusd() {
  double best = 0;
  for (int t = 0; t < probe_trials; ++t) {
    const double t0 = thread_seconds();
    run_tdpbusd();
    best = std::max(best, 6 * 2.0 * 16 * 16 * 64 * double(probe_steps / 16) / (thread_seconds() - t0));
  }
  return best * 1e-9;
}
// AMX as qtx uses it: the CPU has it and the OS granted the tile state (qtx/core/isa.hpp).
inline bool cpu_has_amx_int8() { return qtx::cpu_supports_amx_int8(); }

// Best of probe_trials, in G ops/s.
template <class Mix, int Chains, void (*Run)(std::make_integer_sequence<int, Chains>)>
double best_gops() {
  double best = 0;
  for (int t = 0; t < probe_trials; ++t) {
    const double t0 = thread_seconds();
    Run({});
    best = std::max(best, Mix::ops * Chains * double(probe_steps) / (thread_seconds() - t0));
  }
  return best * 1e-9;
}
template <class Mix>
double probe_zmm() { return best_gops<Mix, 24, &run_zmm<Mix>>(); }
template <class Mix>
double probe_ymm() { return best_gops<Mix, 12, &run_ymm<Mix>>(); }
inline double probe_split7() { return best_gops<split7_256, 6, &run_split7>(); }

// The rate of one probe, measured once (on first use) on a CPU that has its ISA, else 0.
template <double (*Probe)(), bool (*CpuHas)()>
double measured_once() {
  static const double gops = CpuHas() ? Probe() : 0.0;
  return gops;
}

struct peak_probe {
  const char* id;    // benchmark row name
  const char* name;  // the instruction mix
  double (*gops)();
};
inline constexpr peak_probe fp32_fma512{"fp32_fma512", "fp32 vfmadd231ps zmm", measured_once<probe_zmm<fma512>, cpu_has_avx512f>};
inline constexpr peak_probe fp32_fma256{"fp32_fma256", "fp32 vfmadd231ps ymm", measured_once<probe_ymm<fma256>, cpu_has_avx2_fma>};
inline constexpr peak_probe int8_vpdpbusd512{"int8_vpdpbusd512", "int8 vpdpbusd zmm (AVX-512 VNNI)",
                                             measured_once<probe_zmm<vpdpbusd512>, cpu_has_avx512_vnni>};
inline constexpr peak_probe int8_vpdpbusd256{"int8_vpdpbusd256_vex", "int8 {vex} vpdpbusd ymm (AVX-VNNI)",
                                             measured_once<probe_ymm<vpdpbusd256_vex>, cpu_has_avx_vnni>};
inline constexpr peak_probe int8_maddubs256{"int8_maddubs256", "int8 vpmaddubsw+vpmaddwd+vpaddd ymm (AVX2)",
                                            measured_once<probe_ymm<maddubs256>, cpu_has_avx2_fma>};
inline constexpr peak_probe int8_madd16_256{"int8_madd16_256", "int8 widened vpmaddwd+vpaddd ymm (AVX2)",
                                            measured_once<probe_ymm<madd16_256>, cpu_has_avx2_fma>};
inline constexpr peak_probe int8_split7_256{"int8_split7_256", "int8 exact split lo7/hi-bit vpmaddubsw ymm (AVX2)",
                                            measured_once<probe_split7, cpu_has_avx2_fma>};
inline constexpr peak_probe int8_tdpbusd{"int8_tdpbusd_amx", "int8 tdpbusd 16x64 tiles (AMX-INT8)",
                                         measured_once<probe_tdpbusd, cpu_has_amx_int8>};
inline constexpr peak_probe all_probes[] = {fp32_fma512,     fp32_fma256,     int8_vpdpbusd512, int8_vpdpbusd256,
                                            int8_maddubs256, int8_madd16_256, int8_split7_256,  int8_tdpbusd};

}  // namespace qtx_bench

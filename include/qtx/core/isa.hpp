#pragma once
/// @file
/// qtx::isa: the CPU instruction-set levels qtx has backends for, as a run-time value, and what the
/// running CPU supports. Shared by every translation unit whatever its ISA flags (not ISA-keyed):
/// run-time dispatch (qtx/dispatch.hpp) reads it from code compiled for the baseline.
#include <atomic>
#include <cstdlib>
#include <optional>
#include <string_view>

#include "error.hpp"
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#include <cpuid.h>
#endif
#if defined(__linux__) && defined(__x86_64__)
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace qtx {

/// Instruction-set levels, lowest first. avx_vnni (VEX vpdpbusd on ymm) and avx512_vnni are
/// siblings in hardware; as a ceiling (QTX_ISA) the order is this one.
enum class isa : int { scalar = 0, avx2 = 1, avx_vnni = 2, avx512_vnni = 3 };

/// Every level, lowest first.
inline constexpr isa all_isas[] = {isa::scalar, isa::avx2, isa::avx_vnni, isa::avx512_vnni};

/// The level's name, as the backend tags and QTX_ISA spell it.
constexpr const char* to_string(isa level) noexcept {
  switch (level) {
    case isa::scalar: return "scalar";
    case isa::avx2: return "avx2";
    case isa::avx_vnni: return "avx_vnni";
    case isa::avx512_vnni: return "avx512_vnni";
  }
  return "unknown";
}

/// The level named `name` ("scalar", "avx2", "avx_vnni", "avx512_vnni"), if any.
constexpr std::optional<isa> parse_isa(std::string_view name) noexcept {
  for (isa level : all_isas)
    if (name == to_string(level)) return level;
  return std::nullopt;
}

/// Whether the running CPU and OS (register state enabled) execute code built for `level`.
inline bool cpu_supports(isa level) noexcept {
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
  __builtin_cpu_init();
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  switch (level) {
    case isa::scalar: return true;
    case isa::avx2: return avx2;
    case isa::avx_vnni: {
      // CPUID.(EAX=7, ECX=1):EAX[4]; Clang 14's __builtin_cpu_supports does not know "avxvnni".
      unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
      return avx2 && __get_cpuid_count(7, 1, &eax, &ebx, &ecx, &edx) && (eax & (1u << 4)) != 0;
    }
    case isa::avx512_vnni:
      return avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
  }
  return false;
#else
  return level == isa::scalar;
#endif
}

/// The highest level run-time dispatch may pick: the environment variable QTX_ISA when set (to
/// test a lower backend on a capable CPU), else the highest level. A value that names no level
/// throws qtx::error rather than silently running something else.
inline isa isa_ceiling() {
  const char* forced = std::getenv("QTX_ISA");
  if (forced == nullptr || *forced == '\0') return isa::avx512_vnni;
  const std::optional<isa> level = parse_isa(forced);
  check(level.has_value(), "QTX_ISA: '", forced, "' is not an instruction set (scalar, avx2, avx_vnni, avx512_vnni)");
  return *level;
}

/// Whether the CPU has AMX-INT8 (tdpbusd on 16 × 64-byte tiles: Intel since Sapphire Rapids) and
/// the OS lets this process use it. Linux keeps the 8 KiB tile state off until a process asks for
/// it (arch_prctl ARCH_REQ_XCOMP_PERM), so the first call asks; the answer is kept. AMX is not a
/// level of its own: the avx512_vnni backend's int8 GEMM switches to it at run time (cpu/gemm/amx.hpp).
inline bool cpu_supports_amx_int8() noexcept {
#if defined(__GNUC__) && defined(__linux__) && defined(__x86_64__)
  static const bool usable = [] {
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) return false;
    const bool amx_tile = (edx & (1u << 24)) != 0, amx_int8 = (edx & (1u << 25)) != 0;
    if (!amx_tile || !amx_int8 || !cpu_supports(isa::avx512_vnni)) return false;
    unsigned xcr0_low = 0, xcr0_high = 0;
    __asm__("xgetbv" : "=a"(xcr0_low), "=d"(xcr0_high) : "c"(0));
    const unsigned long long xcr0 = (static_cast<unsigned long long>(xcr0_high) << 32) | xcr0_low;
    constexpr unsigned long long tile_state = (1ull << 17) | (1ull << 18);  // XTILECFG, XTILEDATA
    if ((xcr0 & tile_state) != tile_state) return false;
    constexpr long request_permission = 0x1023, tile_data = 18;  // ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA
    return syscall(SYS_arch_prctl, request_permission, tile_data) == 0;
  }();
  return usable;
#else
  return false;
#endif
}

namespace isa_detail {
/// The process-wide AMX switch behind amx_enabled / set_amx_enabled.
inline std::atomic<int>& amx_switch() {
  static std::atomic<int> state{-1};  // −1: not read yet; 0 off; 1 on
  return state;
}
}  // namespace isa_detail

/// Whether int8 GEMMs of the avx512_vnni backend use AMX: when the CPU and OS support it
/// (cpu_supports_amx_int8), unless the environment variable QTX_AMX is "0" or set_amx_enabled(false)
/// was called. Results are the same either way (exact integer sums); only the speed differs.
inline bool amx_enabled() noexcept {
  int state = isa_detail::amx_switch().load(std::memory_order_relaxed);
  if (state < 0) {
    const char* env = std::getenv("QTX_AMX");
    state = cpu_supports_amx_int8() && !(env != nullptr && std::string_view(env) == "0") ? 1 : 0;
    isa_detail::amx_switch().store(state, std::memory_order_relaxed);
  }
  return state == 1;
}

/// Turns AMX on (where supported) or off for later int8 GEMMs of every thread, e.g. to compare
/// both paths in one process. Returns whether AMX is now in use.
inline bool set_amx_enabled(bool on) noexcept {
  isa_detail::amx_switch().store(on && cpu_supports_amx_int8() ? 1 : 0, std::memory_order_relaxed);
  return amx_enabled();
}

}  // namespace qtx

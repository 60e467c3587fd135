#pragma once
/// @file
/// qtx::isa: the CPU instruction-set levels qtx has backends for, as a run-time value, and what the
/// running CPU supports. Shared by every translation unit whatever its ISA flags (not ISA-keyed):
/// run-time dispatch (qtx/dispatch.hpp) reads it from code compiled for the baseline.
#include <cstdlib>
#include <optional>
#include <string_view>

#include "error.hpp"
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#include <cpuid.h>
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

}  // namespace qtx

#pragma once
/// @file
/// Backend tags. Inheritance is the fallback order: an overload taking `cpu::avx2 const&` also
/// serves `cpu::avx512_vnni`, so the most capable implemented backend wins at compile time.
/// qtx::cpu::native is the best tag the compiler's target flags (-march) allow; a tag above what
/// the compiler targets cannot be used (its intrinsics would not compile), runtime dispatch is the
/// consumer's choice (per-ISA translation units).
#include <type_traits>
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#include <cpuid.h>
#endif

namespace qtx::cpu {

/// Portable C++ backend: runs anywhere and is the fallback every other tag inherits.
struct scalar {
  /// The tag's name, for logs and benchmark labels.
  static constexpr const char* name() noexcept { return "scalar"; }
};
/// AVX2 + FMA backend (Haswell and later, Zen); inherits scalar so scalar-only ops still accept it.
struct avx2 : scalar {
  /// The tag's name, for logs and benchmark labels.
  static constexpr const char* name() noexcept { return "avx2"; }
};
/// AVX2 + FMA + AVX-VNNI: VEX-encoded vpdpbusd on ymm (Intel since Alder Lake / Sapphire Rapids,
/// AMD Zen 5). A sibling of avx512_vnni, not its base: AVX-512 VNNI cores without AVX-VNNI exist
/// (Ice Lake, Zen 4).
struct avx_vnni : avx2 {
  /// The tag's name, for logs and benchmark labels.
  static constexpr const char* name() noexcept { return "avx_vnni"; }
};
/// AVX-512 F/BW/VL + VNNI backend (vpdpbusd on zmm: Cascade Lake and later, Zen 4 and later).
struct avx512_vnni : avx2 {
  /// The tag's name, for logs and benchmark labels.
  static constexpr const char* name() noexcept { return "avx512_vnni"; }
};

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && defined(__AVX512VNNI__)
/// 1 when the compiler targets AVX-512 F/BW/VL/VNNI (-march), so cpu::avx512_vnni code can be compiled.
#define QTX_HAS_AVX512_VNNI 1
#else
#define QTX_HAS_AVX512_VNNI 0
#endif
#if defined(__AVX2__) && defined(__FMA__)
/// 1 when the compiler targets AVX2 and FMA, so cpu::avx2 code can be compiled.
#define QTX_HAS_AVX2 1
#else
#define QTX_HAS_AVX2 0
#endif

#if QTX_HAS_AVX2 && defined(__AVXVNNI__)
/// 1 when the compiler targets AVX2, FMA and AVX-VNNI, so cpu::avx_vnni code can be compiled.
#define QTX_HAS_AVX_VNNI 1
#else
/// 0: the compiler does not target AVX-VNNI.
#define QTX_HAS_AVX_VNNI 0
#endif

#if QTX_HAS_AVX512_VNNI
using native = avx512_vnni;
#elif QTX_HAS_AVX_VNNI
using native = avx_vnni;
#elif QTX_HAS_AVX2
using native = avx2;
#else
using native = scalar;
#endif

/// True when the running CPU can execute code built for Arch (CPUID + OS register-state check).
template <class Arch>
bool supported() noexcept {
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
  __builtin_cpu_init();
  if constexpr (std::is_same_v<Arch, avx512_vnni>) {
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
  } else if constexpr (std::is_same_v<Arch, avx_vnni>) {
    // CPUID.(EAX=7, ECX=1):EAX[4]; Clang 14's __builtin_cpu_supports does not know "avxvnni".
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    return supported<avx2>() && __get_cpuid_count(7, 1, &eax, &ebx, &ecx, &edx) && (eax & (1u << 4)) != 0;
  } else if constexpr (std::is_same_v<Arch, avx2>) {
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  }
#endif
  return std::is_same_v<Arch, scalar>;
}

}  // namespace qtx::cpu

#pragma once
/// @file
/// Backend tags. Inheritance is the fallback order: an overload taking `cpu::avx2 const&` also
/// serves `cpu::avx512_vnni`, so the most capable implemented backend wins at compile time.
/// qtx::cpu::native is the best tag the compiler's target flags (-march) allow. A tag above them
/// does not compile (constructing it fails a static_assert that names the flags), so a build can
/// never silently run a lower backend than the tag it names. One binary for several CPUs compiles
/// per-ISA translation units and picks one at run time: qtx/dispatch.hpp.
#include "../config.hpp"
#include "isa.hpp"

namespace qtx::QTX_ABI::cpu {

/// Portable C++ backend: runs anywhere and is the fallback every other tag inherits.
struct scalar {
  /// Whether this translation unit can compile the backend's code (always, for scalar).
  static constexpr bool compiled = true;
  /// The tag's name, for logs and benchmark labels.
  static constexpr const char* name() noexcept { return "scalar"; }
  /// The run-time value of this level (qtx/core/isa.hpp).
  static constexpr qtx::isa level = qtx::isa::scalar;
};
/// AVX2 + FMA backend (Haswell and later, Zen); inherits scalar so scalar-only ops still accept it.
struct avx2 : scalar {
  /// Whether this translation unit is compiled with AVX2 and FMA.
  static constexpr bool compiled = QTX_HAS_AVX2;
  /// The tag's name, for logs and benchmark labels.
  static constexpr const char* name() noexcept { return "avx2"; }
  /// The run-time value of this level (qtx/core/isa.hpp).
  static constexpr qtx::isa level = qtx::isa::avx2;
  /// A template only so that the check fires where the tag is used, not where it is declared.
  template <bool Compiled = compiled>
  constexpr avx2() noexcept {
    static_assert(Compiled, "qtx::cpu::avx2 is used in a translation unit compiled without AVX2 and FMA: "
                            "add -mavx2 -mfma (or a -march that has them), or use qtx::cpu::native");
  }
};
/// AVX2 + FMA + AVX-VNNI: VEX-encoded vpdpbusd on ymm (Intel since Alder Lake / Sapphire Rapids,
/// AMD Zen 5). A sibling of avx512_vnni, not its base: AVX-512 VNNI cores without AVX-VNNI exist
/// (Ice Lake, Zen 4).
struct avx_vnni : avx2 {
  /// Whether this translation unit is compiled with AVX2, FMA and AVX-VNNI.
  static constexpr bool compiled = QTX_HAS_AVX_VNNI;
  /// The tag's name, for logs and benchmark labels.
  static constexpr const char* name() noexcept { return "avx_vnni"; }
  /// The run-time value of this level (qtx/core/isa.hpp).
  static constexpr qtx::isa level = qtx::isa::avx_vnni;
  /// A template only so that the check fires where the tag is used, not where it is declared.
  template <bool Compiled = compiled>
  constexpr avx_vnni() noexcept {
    static_assert(Compiled, "qtx::cpu::avx_vnni is used in a translation unit compiled without AVX-VNNI: "
                            "add -mavx2 -mfma -mavxvnni (or a -march that has them), or use qtx::cpu::native");
  }
};
/// AVX-512 F/BW/VL + VNNI backend (vpdpbusd on zmm: Cascade Lake and later, Zen 4 and later).
struct avx512_vnni : avx2 {
  /// Whether this translation unit is compiled with AVX-512 F/BW/VL/VNNI.
  static constexpr bool compiled = QTX_HAS_AVX512_VNNI;
  /// The tag's name, for logs and benchmark labels.
  static constexpr const char* name() noexcept { return "avx512_vnni"; }
  /// The run-time value of this level (qtx/core/isa.hpp).
  static constexpr qtx::isa level = qtx::isa::avx512_vnni;
  /// A template only so that the check fires where the tag is used, not where it is declared.
  template <bool Compiled = compiled>
  constexpr avx512_vnni() noexcept {
    static_assert(Compiled, "qtx::cpu::avx512_vnni is used in a translation unit compiled without "
                            "AVX-512 F/BW/VL/VNNI: add -mavx512f -mavx512bw -mavx512vl -mavx512vnni (or a -march "
                            "that has them), or use qtx::cpu::native");
  }
};

/// The name of the ISA key this translation unit's qtx code is compiled under (config.hpp), e.g.
/// "abi_avx2": what the symbols of the code that runs here carry.
constexpr const char* abi_name() noexcept { return QTX_ABI_STRING; }

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
  return cpu_supports(Arch::level);
}

}  // namespace qtx::cpu

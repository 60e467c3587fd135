#pragma once
// Per-backend GEMM configuration: the arithmetic, the register tile and the cache blocking, all
// constexpr and chosen by tag. config_for(tag, TA) overloads resolve through the tag inheritance
// (avx512_vnni → avx2, avx_vnni → avx2), so a tag without its own entry uses its parent's kernels; the scalar tag
// has none and takes the scalar backend (scalar.hpp).
//
// Why these numbers (measured on the development machine, an AMD Zen 4 with 32 KiB L1d and 1 MiB
// L2 per core, where a 512-bit vpdpbusd / FMA issues once per cycle with ≤ 4 cycles latency and
// L2 streams ~29 bytes per cycle to the core):
//   * Register tile MR × NR: MR·NV accumulators + NV B vectors + one A broadcast must fit the
//     register file (32 zmm / 16 ymm). One k-group step does NV loads of B and MR broadcasts of A
//     for MR·NV multiply-adds; MR·NV = 24 covers the multiply-add latency four times over and
//     needs 256 B of B per 24 cycles from L2 (9 % of its bandwidth). 6×64 measured 92–96 % of the
//     vpdpbusd peak on the BERT shapes.
//   * Short row blocks are balanced (vector.hpp): a block of r rows does r·NV multiply-adds per
//     NV B loads, and r = 1–2 runs at the L2 bandwidth instead of the multiply-add rate.
//   * rows_per_pass (MC = 384): the rows of A that share one sweep over the B panels; A (384·K
//     bytes) stays in L2 while each panel, read from L3 once per pass, is reused by all of them.
//     Measured 96 → 768: +1–3 % on the shapes whose B exceeds L2 (512×768×3072, 32×4096×4096).
//   * panel_slice_bytes (256 KB): K is blocked so that one panel slice K_block × NR stays in L2
//     across the row blocks of a pass (fp32 K = 4096 panels are 1 MB otherwise); partial sums
//     go through a per-thread tile buffer between K blocks.
//   * prefetch_groups (0 = off): software prefetch of B measured +10 % when B streams from L3
//     (6×4096×4096) but −8 % (int8) to −30 % (fp32) at M = 1, where the hardware prefetcher
//     already saturates L2; the decode row matters more, so it is off.
#include <cstdint>

#include "../../core/arch.hpp"
#include "microkernel.hpp"
#include "../../config.hpp"

namespace qtx::QTX_ABI::cpu::gemm_detail {

inline constexpr int default_rows_per_pass = 384;
inline constexpr int default_panel_slice_bytes = 256 * 1024;

template <class Dot, int MR, int NV, int RowsPerPass = default_rows_per_pass,
          int PanelSliceBytes = default_panel_slice_bytes, int PrefetchGroups = 0>
struct kernel_config {
  using dot = Dot;
  using simd = typename Dot::simd;
  using a_elem = typename Dot::a_elem;
  using b_elem = typename Dot::b_elem;
  static constexpr int mr = MR;                     // rows of the register tile
  static constexpr int nv = NV;                     // vectors across the register tile
  static constexpr int nr = NV * simd::lanes;       // columns of the register tile = panel width
  static constexpr int kg = Dot::k_group;           // k values per 32-bit lane
  static constexpr index_t rows_per_pass = RowsPerPass;
  static constexpr int prefetch_groups = PrefetchGroups;  // B prefetch distance in k-groups
  using acc_elem = typename Dot::acc_elem;
  // K is split into blocks whose B panel slice (K_block × NR) stays in L2 across the row blocks.
  static constexpr index_t k_block_groups = PanelSliceBytes / (nr * kg * index_t(sizeof(b_elem)));
  static constexpr bool integer = !std::is_same_v<a_elem, float>;
};

#if QTX_HAS_AVX2
// 16 ymm: 6×2 accumulators + 2 B + 1 A broadcast + 1 vpmaddwd product = 16. B packs in this
// widened layout, or, when its k pairs are saturation-safe, in the `narrow` one (packing.hpp):
// vpmaddubsw on u8 A in place and s8 B, 6×2 again (the ones of vpmaddwd come from memory), with
// the same panel width so both share the column sums' layout.
struct avx2_int8_config : kernel_config<dot_u8s8_madd16, 6, 2> {
  using narrow = kernel_config<dot_u8s8_maddubs, 6, 2>;
  static_assert(narrow::nr == nr, "both AVX2 int8 layouts share the panel width");
};
inline avx2_int8_config config_for(avx2, uint8_t) { return {}; }
// 6×2 accumulators + 2 B + 1 A broadcast = 15.
inline kernel_config<dot_f32_fma256, 6, 2> config_for(avx2, float) { return {}; }
#endif
#if QTX_HAS_AVX_VNNI
// 16 ymm: 4×3 accumulators + 3 B + 1 A broadcast = 16 (vpdpbusd needs no product register).
// Measured against 6×2 on an Intel Xeon, 1 thread: equal or better on every BERT shape, 1.5× at
// M = 1 (three B vectors per broadcast) and +15–30 % at 2048×1024×1024. Float takes the avx2 entry.
inline kernel_config<dot_u8s8_vnni<simd256>, 4, 3> config_for(avx_vnni, uint8_t) { return {}; }
#endif
#if QTX_HAS_AVX512_VNNI
// 32 zmm: 6×4 accumulators + 4 B + 1 A broadcast = 29; NR = 64 int8 columns = one cache line per
// k-group and vector, so every B load is one aligned line. These int8 panels are also AMX's B tile
// layout (amx.hpp), so CPUs with AMX run the same packed B on tiles.
inline kernel_config<dot_u8s8_vnni<simd512>, 6, 4> config_for(avx512_vnni, uint8_t) { return {}; }
inline kernel_config<dot_f32_fma512, 6, 4> config_for(avx512_vnni, float) { return {}; }
#endif

// A configuration with a second, narrow B layout used when B allows it (AVX2 int8).
template <class Config>
concept has_narrow_layout = requires { typename Config::narrow; };

// A tag/element pair with a vector kernel (false for cpu::scalar: it takes scalar.hpp).
template <class Arch, class TA>
concept has_vector_kernel = requires { config_for(Arch{}, TA{}); };

template <class Arch, class TA>
using config_t = decltype(config_for(Arch{}, TA{}));

}  // namespace qtx::cpu::gemm_detail

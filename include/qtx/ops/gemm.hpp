#pragma once
// Public GEMM front: C = epilogue(A · B), checked arguments, dispatch by backend tag.
//
//   auto w = qtx::ops::pack_b<qtx::cpu::native>(weights);            // (K, N) int8, once
//   qtx::ops::gemm(qtx::cpu::native{}, x_q, w, y_q, epilogue, x_zp);  // x_q (M, K) u8 → y_q (M, N)
//   qtx::ops::gemm(qtx::cpu::native{}, x_q, b, y, epilogue, x_zp, b_zp);  // B unpacked: packs per call
//
// Integer GEMMs take uint8 activations A (zero point a_zero_point) and 8-bit B (zero point stored
// at packing, 0 for weights) and accumulate exactly in int32:
//   acc(m, n) = Σ_k (A(m,k) − za)(B(k,n) − zb),   then the epilogue pipeline, then the store.
// B may be int8 (weights; zb in [−128, 127]) or uint8 (attention operands such as K or V
// activations; zb in [0, 255]): uint8 B is stored as b − 128 with zero point zb − 128, which leaves
// every product unchanged, so both give the same packed type packed_b<Arch, int8_t>. Float GEMMs
// take float A and B (zero points must be 0).
//
// Backends: cpu::avx512_vnni (vpdpbusd, FMA on zmm), cpu::avx2 (vpmaddwd on int16-widened
// operands: exact, no vpmaddubsw saturation; FMA on ymm), cpu::scalar; see cpu/gemm/.
#include <cstdint>
#include <type_traits>

#include "../core/arch.hpp"
#include "../core/error.hpp"
#include "../core/view.hpp"
#include "../cpu/gemm/scalar.hpp"
#include "../cpu/gemm/vector.hpp"
#include "../epilogue/pipeline.hpp"

namespace qtx::ops {

// K above which an 8-bit GEMM could overflow int32: |(a − za)(b − zb)| ≤ 255·255 per product.
inline constexpr index_t int8_gemm_max_k = 2147483647 / (255 * 255);  // 33025

// The packed-B type of backend Arch for element type TB (what a Linear layer holds); uint8 and
// int8 B share one packed type.
template <class Arch, class TB>
using packed_b = decltype(cpu::pack_b(Arch{}, std::declval<matrix_view<const TB>>(), int32_t{}));

template <class Arch, class TBv>
auto pack_b(matrix_view<TBv> b_view, int32_t b_zero_point = 0) {
  using TB = std::remove_const_t<TBv>;
  const matrix_view<const TB> b = b_view;
  static_assert(std::is_same_v<TB, float> || std::is_same_v<TB, int8_t> || std::is_same_v<TB, uint8_t>,
                "ops::pack_b: B must be float, int8 or uint8");
  check_view("pack_b", "b", b);
  if constexpr (std::is_floating_point_v<TB>) {
    check(b_zero_point == 0, "pack_b: b_zero_point (", b_zero_point, ") must be 0 for float B");
  } else {
    check(b.rows <= int8_gemm_max_k, "pack_b: K (", b.rows, ") exceeds the int32-safe bound ",
          int8_gemm_max_k, " for 8-bit GEMM");
    check(b_zero_point >= element_traits<TB>::min && b_zero_point <= element_traits<TB>::max,
          "pack_b: b_zero_point (", b_zero_point, ") is outside the range of ", element_traits<TB>::name);
  }
  return cpu::pack_b(Arch{}, b, b_zero_point);
}

namespace detail {
// Stages that carry shapes or pointers are checked against C; the others need nothing.
template <class Stage, class TC>
void check_stage(const Stage& stage, const matrix_view<TC>& c) {
  if constexpr (std::is_same_v<Stage, epilogue::residual_add>) {
    check_view("gemm", "residual", stage.residual);
    check(stage.residual.rows == c.rows && stage.residual.cols == c.cols, "gemm: residual is ",
          stage.residual.rows, "x", stage.residual.cols, " but c is ", c.rows, "x", c.cols);
  } else if constexpr (requires { stage.values; }) {
    check(stage.values != nullptr, "gemm: bias stage has null values");
  } else if constexpr (requires { stage.scales; }) {
    check(stage.scales != nullptr, "gemm: dequantize stage has null scales");
  } else if constexpr (requires { stage.multipliers; }) {
    check(stage.multipliers != nullptr, "gemm: requantize stage has null multipliers");
  } else if constexpr (requires { stage.factors; }) {
    check(stage.factors != nullptr, "gemm: row_scale stage has null factors");
  }
}
template <class TC>
void check_pipeline(const epilogue::pipeline<>&, const matrix_view<TC>&) {}
template <class T>
inline constexpr bool is_matrix_view = false;
template <class T>
inline constexpr bool is_matrix_view<matrix_view<T>> = true;
template <class TC, class First, class... Rest>
void check_pipeline(const epilogue::pipeline<First, Rest...>& p, const matrix_view<TC>& c) {
  check_stage(p.first, c);
  check_pipeline(p.rest, c);
}
}  // namespace detail

template <class Arch, class TAv, class PackedB, class TC, class Pipeline = epilogue::pipeline<>>
  requires(!detail::is_matrix_view<PackedB>)
void gemm(Arch arch, matrix_view<TAv> a_view, const PackedB& b, matrix_view<TC> c,
          const Pipeline& ep = {}, int32_t a_zero_point = 0) {
  using TA = std::remove_const_t<TAv>;
  const matrix_view<const TA> a = a_view;
  check_view("gemm", "a", a);
  check_view("gemm", "c", c);
  check(a.cols == b.k, "gemm: a.cols (", a.cols, ") != b.rows (", b.k, ")");
  check(c.rows == a.rows && c.cols == b.n, "gemm: c is ", c.rows, "x", c.cols, " but a·b is ", a.rows,
        "x", b.n);
  if constexpr (std::is_floating_point_v<TA>) {
    check(a_zero_point == 0, "gemm: a_zero_point (", a_zero_point, ") must be 0 for float A");
  } else {
    static_assert(std::is_same_v<TA, uint8_t>, "ops::gemm: integer A must be uint8");
    check(a.cols <= int8_gemm_max_k, "gemm: K (", a.cols, ") exceeds the int32-safe bound ",
          int8_gemm_max_k, " for 8-bit GEMM");
    check(a_zero_point >= 0 && a_zero_point <= 255, "gemm: a_zero_point (", a_zero_point,
          ") is outside uint8 range");
  }
  detail::check_pipeline(ep, c);
  if (c.empty()) return;
  cpu::gemm(arch, a, b, c, ep, a_zero_point);
}

// Convenience form with B unpacked (K, N): packs B for this call only (attention's per-call
// operands, tests). Prefer pack_b once + gemm for weights.
template <class Arch, class TAv, class TBv, class TC, class Pipeline = epilogue::pipeline<>>
void gemm(Arch arch, matrix_view<TAv> a, matrix_view<TBv> b, matrix_view<TC> c, const Pipeline& ep = {},
          int32_t a_zero_point = 0, int32_t b_zero_point = 0) {
  gemm(arch, a, pack_b<Arch>(b, b_zero_point), c, ep, a_zero_point);
}

}  // namespace qtx::ops

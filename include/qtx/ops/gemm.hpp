#pragma once
// Public GEMM front: C = epilogue(A · B), checked arguments, dispatch by backend tag.
//
//   auto w = qtx::ops::pack_b<qtx::cpu::native>(weights);            // (K, N) int8, once
//   qtx::ops::gemm(qtx::cpu::native{}, x_q, w, y_q, epilogue, x_zp);  // x_q (M, K) u8 → y_q (M, N)
//
// Integer GEMMs take uint8 activations A (zero point a_zero_point) and int8 B (zero point stored
// at packing, 0 for weights) and accumulate exactly in int32. Float GEMMs take float A and B.
#include <cstdint>
#include <type_traits>

#include "../core/arch.hpp"
#include "../core/error.hpp"
#include "../core/view.hpp"
#include "../cpu/gemm/scalar.hpp"
#include "../epilogue/pipeline.hpp"

namespace qtx::ops {

// K above which an 8-bit GEMM could overflow int32: |(a − za)(b − zb)| ≤ 255·255 per product.
inline constexpr index_t int8_gemm_max_k = 2147483647 / (255 * 255);  // 33025

// The packed-weight type of backend Arch for element type TB (what a Linear layer holds).
template <class Arch, class TB>
using packed_b = decltype(cpu::pack_b(Arch{}, std::declval<matrix_view<const TB>>(), int32_t{}));

template <class Arch, class TBv>
auto pack_b(matrix_view<TBv> b_view, int32_t b_zero_point = 0) {
  using TB = std::remove_const_t<TBv>;
  const matrix_view<const TB> b = b_view;
  static_assert(std::is_same_v<TB, float> || std::is_same_v<TB, int8_t>,
                "ops::pack_b: B must be float or int8");
  check_view("pack_b", "b", b);
  check(std::is_floating_point_v<TB> || (b.rows <= int8_gemm_max_k), "pack_b: K (", b.rows,
        ") exceeds the int32-safe bound ", int8_gemm_max_k, " for 8-bit GEMM");
  if constexpr (!std::is_floating_point_v<TB>)
    check(b_zero_point >= -128 && b_zero_point <= 127, "pack_b: b_zero_point (", b_zero_point,
          ") is outside int8 range");
  else
    check(b_zero_point == 0, "pack_b: b_zero_point (", b_zero_point, ") must be 0 for float B");
  return cpu::pack_b(Arch{}, b, b_zero_point);
}

template <class Arch, class TAv, class PackedB, class TC, class Pipeline = epilogue::pipeline<>>
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
    check(a_zero_point >= 0 && a_zero_point <= 255, "gemm: a_zero_point (", a_zero_point,
          ") is outside uint8 range");
  }
  if (c.empty()) return;
  cpu::gemm(arch, a, b, c, ep, a_zero_point);
}

}  // namespace qtx::ops

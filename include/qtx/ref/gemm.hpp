#pragma once
/// @file
/// Reference GEMM: the oracle the tests compare every backend against. Written for clarity.
///
///   acc(m, n) = Σ_k (A(m,k) − zp_a) · (B(k,n) − zp_b)        (int32 for 8-bit inputs; float
///                                                              inputs are summed in double)
///   C(m, n)   = store(epilogue(acc(m, n), m, n))
#include <cstdint>
#include <type_traits>

#include "../core/view.hpp"
#include "../epilogue/pipeline.hpp"
#include "../config.hpp"

namespace qtx::QTX_ABI::ref {

/// The GEMM oracle: triple loop, exact int32 (or double) accumulation, then the epilogue per element:
/// what every ops::gemm backend is tested against. Unchecked.
template <class TA, class TB, class TC, class Pipeline = epilogue::pipeline<>>
void gemm(matrix_view<const TA> a, matrix_view<const TB> b, matrix_view<TC> c,
          const Pipeline& ep = {}, int32_t a_zero_point = 0, int32_t b_zero_point = 0) {
  // Float products are summed in double so the oracle's own rounding error is negligible.
  using acc_t = std::conditional_t<std::is_floating_point_v<TA>, double, int32_t>;
  for (index_t m = 0; m < c.rows; ++m) {
    for (index_t n = 0; n < c.cols; ++n) {
      acc_t acc = 0;
      for (index_t k = 0; k < a.cols; ++k) {
        if constexpr (std::is_same_v<acc_t, int32_t>) {
          acc += (int32_t(a(m, k)) - a_zero_point) * (int32_t(b(k, n)) - b_zero_point);
        } else {
          acc += double(a(m, k)) * double(b(k, n));
        }
      }
      using value_t = std::conditional_t<std::is_same_v<acc_t, double>, float, int32_t>;
      c(m, n) = epilogue::evaluate<TC>(ep, static_cast<value_t>(acc), m, n);
    }
  }
}

}  // namespace qtx::ref

#pragma once
// Portable scalar GEMM backend (qtx::cpu::scalar): correct on any CPU, the fallback of every tag.
// B is stored K×N row-major; the integer path applies zero points by the rank-1 identity
//   Σ_k (a − za)(b − zb) = Σ a·b − za·colsum(B)[n] − zb·rowsum(A)[m] + K·za·zb
// so the inner loop is a plain integer dot product, as in the vector backends. uint8 B is stored
// as b − 128 (int8) with zero point zb − 128, which leaves every (b − zb) unchanged.
#include <cstdint>
#include <type_traits>

#include "../../core/arch.hpp"
#include "../../core/buffer.hpp"
#include "../../core/parallel.hpp"
#include "../../core/view.hpp"
#include "../../epilogue/pipeline.hpp"
#include "../../config.hpp"

namespace qtx::QTX_ABI::cpu {

// Weights packed once for the scalar backend: a dense K×N copy plus the column sums that fold
// the activation zero point into the accumulator.
template <class TB>
struct scalar_packed_b {
  index_t k = 0, n = 0;
  int32_t zero_point = 0;
  aligned_buffer<TB> values;           // (K, N) row-major
  aligned_buffer<int32_t> column_sums; // (N) Σ_k B(k, n), integer B only
  /// Bytes held, for the per-thread scratch bounds.
  std::size_t bytes() const {
    return std::size_t(values.size()) * sizeof(TB) + std::size_t(column_sums.size()) * sizeof(int32_t);
  }
};

template <class TB>
using scalar_stored_t = std::conditional_t<std::is_same_v<TB, uint8_t>, int8_t, TB>;

/// Packs b into p, reusing p's storage when it is large enough.
template <class TB>
void pack_b_into(scalar, scalar_packed_b<scalar_stored_t<TB>>& p, matrix_view<const TB> b, int32_t b_zero_point) {
  constexpr int32_t shift = std::is_same_v<TB, uint8_t> ? 128 : 0;
  p.k = b.rows;
  p.n = b.cols;
  p.zero_point = b_zero_point - shift;
  p.values.reserve(b.rows * b.cols);
  if constexpr (!std::is_floating_point_v<TB>) {
    p.column_sums.reserve(b.cols);
    for (index_t n = 0; n < b.cols; ++n) p.column_sums[n] = 0;
  }
  for (index_t k = 0; k < b.rows; ++k) {
    for (index_t n = 0; n < b.cols; ++n) {
      if constexpr (std::is_floating_point_v<TB>) {
        p.values[k * b.cols + n] = b(k, n);
      } else {
        const int32_t v = int32_t(b(k, n)) - shift;
        p.values[k * b.cols + n] = scalar_stored_t<TB>(v);
        p.column_sums[n] += v;
      }
    }
  }
}

template <class TB>
scalar_packed_b<scalar_stored_t<TB>> pack_b(scalar, matrix_view<const TB> b, int32_t b_zero_point) {
  scalar_packed_b<scalar_stored_t<TB>> p;
  pack_b_into(scalar{}, p, b, b_zero_point);
  return p;
}

template <class TA, class TB, class TC, class Pipeline>
void gemm(scalar, matrix_view<const TA> a, const scalar_packed_b<TB>& b, matrix_view<TC> c,
          const Pipeline& ep, int32_t a_zero_point) {
  const index_t K = a.cols, N = c.cols;
  parallel_for(0, c.rows, [&](index_t m) {
    if constexpr (std::is_floating_point_v<TA>) {
      for (index_t n = 0; n < N; ++n) {
        float acc = 0.0f;
        for (index_t k = 0; k < K; ++k) acc += a(m, k) * b.values[k * N + n];
        c(m, n) = epilogue::evaluate<TC>(ep, acc, m, n);
      }
    } else {
      int32_t row_sum = 0;
      for (index_t k = 0; k < K; ++k) row_sum += int32_t(a(m, k));
      for (index_t n = 0; n < N; ++n) {
        int32_t acc = 0;
        for (index_t k = 0; k < K; ++k) acc += int32_t(a(m, k)) * int32_t(b.values[k * N + n]);
        // int32 wrap-around is intended: the true result fits (ops/ checks K), so the
        // modular sum of the four terms is exact.
        acc = int32_t(uint32_t(acc) - uint32_t(a_zero_point) * uint32_t(b.column_sums[n]) -
                      uint32_t(b.zero_point) * uint32_t(row_sum) +
                      uint32_t(int64_t(K) * a_zero_point * b.zero_point));
        c(m, n) = epilogue::evaluate<TC>(ep, acc, m, n);
      }
    }
  });
}

}  // namespace qtx::cpu

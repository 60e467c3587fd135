#pragma once
// Host side of CUDA weight packing: B (K×N, any strides) → N×K_padded, K contiguous (the "col"
// operand of mma.sync), rows zero-padded to one mma K step, plus the column sums Σ_k B(k, n) that
// fold the activation zero point into the accumulator:
//   Σ_k (a − za)(b − zb) = Σ a·b − za·colsum[n] − zb·rowsum(A)[m] + K·za·zb
// Plain C++ so the CPU tests check the layout; cuda/gemm.cuh uploads the result.
#include <cstdint>
#include <type_traits>
#include <vector>

#include "../core/view.hpp"
#include "launch_params.hpp"
#include "../config.hpp"

namespace qtx::QTX_ABI::cuda {

template <class TB>
struct host_packed_b {
  index_t k = 0, n = 0, k_padded = 0;
  int32_t zero_point = 0;
  std::vector<TB> values;             // n × k_padded, row n = column n of B, zero padded
  std::vector<int32_t> column_sums;   // n entries for 8-bit B, empty otherwise
};

template <class TB>
host_packed_b<TB> pack_b_host(matrix_view<const TB> b, int32_t b_zero_point) {
  host_packed_b<TB> p;
  p.k = b.rows;
  p.n = b.cols;
  p.k_padded = packed_k(b.rows, int(sizeof(TB)));
  p.zero_point = b_zero_point;
  p.values.assign(static_cast<std::size_t>(p.n * p.k_padded), TB{});
  for (index_t n = 0; n < p.n; ++n)
    for (index_t k = 0; k < p.k; ++k) p.values[static_cast<std::size_t>(n * p.k_padded + k)] = b(k, n);
  if constexpr (std::is_integral_v<TB>) {
    p.column_sums.assign(static_cast<std::size_t>(p.n), 0);
    for (index_t n = 0; n < p.n; ++n)
      for (index_t k = 0; k < p.k; ++k) p.column_sums[static_cast<std::size_t>(n)] += int32_t(b(k, n));
  }
  return p;
}

// The constant part of the zero-point identity, computed modulo 2^32 like the kernel does: the
// true accumulator fits int32 (K is bounded), so wrap-around in the partial terms is harmless.
QTX_HOST_DEVICE constexpr int32_t zero_point_correction(int32_t dot, int32_t column_sum, int32_t row_sum,
                                                        int32_t k, int32_t a_zero_point,
                                                        int32_t b_zero_point) {
  const uint32_t v = uint32_t(dot) - uint32_t(a_zero_point) * uint32_t(column_sum) -
                     uint32_t(b_zero_point) * uint32_t(row_sum) +
                     uint32_t(k) * uint32_t(a_zero_point) * uint32_t(b_zero_point);
  return int32_t(v);
}

}  // namespace qtx::cuda

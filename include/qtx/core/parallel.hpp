#pragma once
/// @file
/// parallel_for: OpenMP when the consumer compiles with it (QTX_WITH_OPENMP), serial otherwise.
/// The body must not throw: kernels run after ops/ has validated everything.
#include "../config.hpp"
#include "types.hpp"

#if QTX_HAS_OPENMP
#include <omp.h>
#endif

namespace qtx::QTX_ABI {

/// Threads a later parallel_for may use (1 without OpenMP): size per-thread scratch with it.
inline int max_threads() {
#if QTX_HAS_OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

/// Sets the thread count used by later parallel_for calls (no-op without OpenMP).
inline void set_num_threads(int n) {
#if QTX_HAS_OPENMP
  if (n > 0) omp_set_num_threads(n);
#else
  (void)n;
#endif
}

/// Calls body(i) for every i in [begin, end); iterations are split statically over the threads,
/// so equal-cost tiles balance and each thread touches one contiguous range.
template <class Body>
void parallel_for(index_t begin, index_t end, Body&& body) {
#if QTX_HAS_OPENMP
  if (end - begin > 1 && omp_get_max_threads() > 1 && !omp_in_parallel()) {
#pragma omp parallel for schedule(static)
    for (index_t i = begin; i < end; ++i) body(i);
    return;
  }
#endif
  for (index_t i = begin; i < end; ++i) body(i);
}

}  // namespace qtx

#pragma once
// Included first by every binding source: GCC 12's AVX-512 intrinsics trip -Wuninitialized once
// inlined into the row kernels (GCC PR 105593, fixed in 12.3), and the row headers include them
// without the guard that qtx/cpu/gemm/simd.hpp uses; reading them here first, under the same
// pragma, keeps the module free of warnings without switching the warning off for our own code.
#if defined(__GNUC__) && !defined(__clang__) && (defined(__x86_64__) || defined(__i386__))
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <xsimd/xsimd.hpp>
#pragma GCC diagnostic pop
#endif

#pragma once
/// @file
/// Portability macros shared by every header (host/device qualifiers, inlining, aliasing, OpenMP).
#include "version.hpp"

// Functions shared by host and CUDA device code (epilogue stages, scalar math).
#if defined(__CUDACC__)
/// Marks functions compiled for both host and CUDA device (empty without nvcc).
#define QTX_HOST_DEVICE __host__ __device__
#else
#define QTX_HOST_DEVICE
#endif

#if defined(__GNUC__) || defined(__clang__)
/// Forces inlining of tiny kernel helpers whose call overhead would dominate.
#define QTX_ALWAYS_INLINE inline __attribute__((always_inline))
/// Promises the compiler that pointers do not alias, so it can vectorise loads and stores freely.
#define QTX_RESTRICT __restrict__
#else
#define QTX_ALWAYS_INLINE inline
#define QTX_RESTRICT
#endif

// OpenMP is a build choice of the consumer (CMake option QTX_WITH_OPENMP adds it as a usage
// requirement); the headers only look at whether the compiler has it switched on.
#if defined(_OPENMP)
/// 1 when the compiler has OpenMP switched on (-fopenmp): parallel_for then uses threads.
#define QTX_HAS_OPENMP 1
#else
#define QTX_HAS_OPENMP 0
#endif

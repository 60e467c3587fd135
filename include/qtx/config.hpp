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
/// Unrolls the next loop (constant trip count): its arrays of vectors then live in registers.
#define QTX_UNROLL _Pragma("GCC unroll 16")
/// QTX_ALWAYS_INLINE for a lambda (placed after its parameter list).
#define QTX_ALWAYS_INLINE_LAMBDA __attribute__((always_inline))
#else
#define QTX_ALWAYS_INLINE inline
#define QTX_RESTRICT
#define QTX_UNROLL
#define QTX_ALWAYS_INLINE_LAMBDA
#endif

// OpenMP is a build choice of the consumer (CMake option QTX_WITH_OPENMP adds it as a usage
// requirement); the headers only look at whether the compiler has it switched on.
#if defined(_OPENMP)
/// 1 when the compiler has OpenMP switched on (-fopenmp): parallel_for then uses threads.
#define QTX_HAS_OPENMP 1
#else
#define QTX_HAS_OPENMP 0
#endif

// What the compiler may emit for this translation unit (-m flags, -march). The backend tags in
// core/arch.hpp can only be used up to this level.
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && defined(__AVX512VNNI__)
/// 1 when the compiler targets AVX-512 F/BW/VL/VNNI (-march), so cpu::avx512_vnni code can be compiled.
#define QTX_HAS_AVX512_VNNI 1
#else
#define QTX_HAS_AVX512_VNNI 0
#endif
#if defined(__AVX2__) && defined(__FMA__)
/// 1 when the compiler targets AVX2 and FMA, so cpu::avx2 code can be compiled.
#define QTX_HAS_AVX2 1
#else
#define QTX_HAS_AVX2 0
#endif
#if QTX_HAS_AVX2 && defined(__AVXVNNI__)
/// 1 when the compiler targets AVX2, FMA and AVX-VNNI, so cpu::avx_vnni code can be compiled.
#define QTX_HAS_AVX_VNNI 1
#else
/// 0: the compiler does not target AVX-VNNI.
#define QTX_HAS_AVX_VNNI 0
#endif

// The ISA key of every qtx symbol with a body (the Highway / nlohmann ABI-tag technique). A header-
// only library is compiled into each translation unit with that unit's flags; without a key, a
// unit built with -mavx2 and one built with -march=native would both emit the same weak symbols
// (softmax, gemm, a layer's forward) with different code, and the linker would keep one of them:
// AVX-512 code could then run on an AVX2-only CPU. The key follows the highest instruction set the
// compiler may emit, not only the backend qtx picks, since any vector extension can appear in
// compiler-generated code. qtx::error, the views and the element types stay outside the key: they
// cross between units built for different ISAs (run-time dispatch, qtx/dispatch.hpp).
#if QTX_HAS_AVX512_VNNI
/// The ISA-keyed namespace of this translation unit: abi_scalar, abi_avx2, abi_avx_vnni, ...
#define QTX_ABI_NAME abi_avx512_vnni
/// QTX_ABI_NAME as a string (qtx::cpu::abi_name()).
#define QTX_ABI_STRING "abi_avx512_vnni"
#elif defined(__AVX512F__)
#define QTX_ABI_NAME abi_avx512
#define QTX_ABI_STRING "abi_avx512"
#elif QTX_HAS_AVX_VNNI
#define QTX_ABI_NAME abi_avx_vnni
#define QTX_ABI_STRING "abi_avx_vnni"
#elif QTX_HAS_AVX2
#define QTX_ABI_NAME abi_avx2
#define QTX_ABI_STRING "abi_avx2"
#elif defined(__AVX__)
#define QTX_ABI_NAME abi_avx
#define QTX_ABI_STRING "abi_avx"
#else
#define QTX_ABI_NAME abi_scalar
#define QTX_ABI_STRING "abi_scalar"
#endif
/// Opens the ISA-keyed inline namespace: `namespace qtx::QTX_ABI::cpu {`. Users name qtx's
/// entities without it (qtx::cpu::avx2); the key only shows in symbol names.
#define QTX_ABI inline QTX_ABI_NAME

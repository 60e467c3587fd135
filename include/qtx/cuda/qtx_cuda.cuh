#pragma once
// Umbrella header of the CUDA backend (include from .cu translation units only).
#if !defined(__CUDACC__)
#error "qtx/cuda/qtx_cuda.cuh needs nvcc (compile this translation unit as CUDA)"
#endif
#include "arch.hpp"
#include "attention.cuh"
#include "elementwise.cuh"
#include "gemm.cuh"
#include "layer_norm.cuh"
#include "softmax.cuh"

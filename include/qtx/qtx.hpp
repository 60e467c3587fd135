#pragma once
/// @file
/// Umbrella header of the CPU kernels (CMake target qtx::qtx: needs only xsimd, and OpenMP when
/// chosen; never includes cuda/). Included separately: the model-building layers (qtx/nn/, also
/// qtx::qtx), the file readers and tokenizer (qtx/io.hpp, target qtx::io, which brings nlohmann-json)
/// and the Eigen interop (qtx/core/eigen.hpp, target qtx::eigen, which brings Eigen).
#include "config.hpp"
#include "core/arch.hpp"
#include "core/buffer.hpp"
#include "core/error.hpp"
#include "core/parallel.hpp"
#include "core/types.hpp"
#include "core/view.hpp"
#include "epilogue/pipeline.hpp"
#include "ops/attention.hpp"
#include "ops/elementwise.hpp"
#include "ops/gate.hpp"
#include "ops/gemm.hpp"
#include "ops/layernorm.hpp"
#include "ops/softmax.hpp"
#include "quant/observers.hpp"
#include "quant/outlier_stats.hpp"
#include "quant/params.hpp"
#include "quant/quantize.hpp"
#include "version.hpp"

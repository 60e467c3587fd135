#pragma once
// Umbrella header for CPU users (never includes cuda/).
#include "config.hpp"
#include "core/arch.hpp"
#include "core/buffer.hpp"
#include "core/error.hpp"
#include "core/parallel.hpp"
#include "core/types.hpp"
#include "core/view.hpp"
#include "epilogue/pipeline.hpp"
#include "ops/gemm.hpp"
#include "quant/params.hpp"
#include "quant/quantize.hpp"
#include "version.hpp"

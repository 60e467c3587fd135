#pragma once
// CUDA GEMM front: C = epilogue(A · B) on tensor cores, with the CPU front's shape.
//
//   auto w = qtx::cuda::pack_b<qtx::cuda::sm80>(weights_host);          // (K, N) int8, once
//   qtx::cuda::gemm(qtx::cuda::sm80{}, x_dev, w, y_dev, epilogue, x_zp);  // u8 (M, K) → (M, N)
//
// A and C are *device* views (unit column stride; A of any alignment, misaligned A is staged into
// an aligned scratch copy first). Every pointer inside the epilogue stages (bias, scales,
// residual) must be device memory. Integer GEMMs take u8 A and s8 B (exact int32 accumulation);
// float GEMMs take fp16 or bf16 A and B and accumulate in fp32. All work is enqueued on `stream`.
#if !defined(__CUDACC__)
#error "qtx/cuda/gemm.cuh needs nvcc (compile this translation unit as CUDA)"
#endif
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>
#include <optional>
#include <type_traits>

#include "../core/error.hpp"
#include "../core/view.hpp"
#include "../epilogue/pipeline.hpp"
#include "arch.hpp"
#include "arguments.hpp"
#include "gemm_kernel.cuh"
#include "launch_params.hpp"
#include "packing.hpp"
#include "runtime.cuh"
#include "../config.hpp"

namespace qtx::QTX_ABI::cuda {

template <class T>
inline constexpr bool is_16bit_float_v = std::is_same_v<T, __half> || std::is_same_v<T, __nv_bfloat16>;

// Weights packed once for the device: N × K_padded, K contiguous, plus column sums for 8-bit B.
template <class TB>
struct packed_b {
  index_t k = 0, n = 0, k_padded = 0;
  int32_t zero_point = 0;
  device_buffer<TB> values;
  device_buffer<int32_t> column_sums;
};

// b_host: (K, N) host view of int8, fp16 or bf16 weights (any strides).
template <class Arch, class TBv>
packed_b<std::remove_const_t<TBv>> pack_b(matrix_view<TBv> b_host, int32_t b_zero_point = 0) {
  using TB = std::remove_const_t<TBv>;
  static_assert(std::is_base_of_v<sm80, Arch>, "cuda::pack_b: Arch must be a qtx::cuda tag");
  static_assert(std::is_same_v<TB, int8_t> || is_16bit_float_v<TB>, "cuda::pack_b: B must be int8, fp16 or bf16");
  const matrix_view<const TB> b = b_host;
  check_view("cuda::pack_b", "b", b);
  if constexpr (std::is_same_v<TB, int8_t>) {
    check(b.rows <= ops::int8_gemm_max_k, "cuda::pack_b: K (", b.rows, ") exceeds the int32-safe bound ",
          ops::int8_gemm_max_k, " for 8-bit GEMM");
    check(b_zero_point >= -128 && b_zero_point <= 127, "cuda::pack_b: b_zero_point (", b_zero_point,
          ") is outside int8 range");
  } else {
    check(b_zero_point == 0, "cuda::pack_b: b_zero_point (", b_zero_point, ") must be 0 for float B");
  }
  check(b.rows <= max_kernel_extent && b.cols <= max_kernel_extent, "cuda::pack_b: extents (", b.rows, "x",
        b.cols, ") exceed int32");
  const host_packed_b<TB> host = pack_b_host(b, b_zero_point);
  packed_b<TB> p;
  p.k = host.k;
  p.n = host.n;
  p.k_padded = host.k_padded;
  p.zero_point = host.zero_point;
  p.values.upload(host.values);
  p.column_sums.upload(host.column_sums);
  return p;
}

namespace detail {

template <gemm_tile Tile, class TA, class TC, class Pipeline>
void launch_gemm(const gemm_params<TC, Pipeline>& params, cudaStream_t stream) {
  constexpr gemm_tile_shape s = shape_of(Tile);
  const auto kernel = gemm_kernel<Tile, TA, TC, Pipeline>;
  allow_dynamic_smem(kernel, s.smem_bytes());
  const grid_2d grid = gemm_grid(Tile, params.m, params.n);
  kernel<<<dim3(unsigned(grid.x), unsigned(grid.y)), s.threads(), s.smem_bytes(), stream>>>(params);
  check_launch("cuda::gemm kernel");
}

}  // namespace detail

template <class Arch, class TAv, class TB, class TC, class Pipeline = epilogue::pipeline<>>
void gemm(Arch, matrix_view<TAv> a_view, const packed_b<TB>& b, matrix_view<TC> c, const Pipeline& ep = {},
          int32_t a_zero_point = 0, cudaStream_t stream = nullptr) {
  using TA = std::remove_const_t<TAv>;
  static_assert(std::is_base_of_v<sm80, Arch>, "cuda::gemm: Arch must be a qtx::cuda tag");
  static_assert((std::is_same_v<TA, uint8_t> && std::is_same_v<TB, int8_t>) ||
                    (is_16bit_float_v<TA> && std::is_same_v<TA, TB>),
                "cuda::gemm: operands must be u8·s8 or matching fp16/bf16");
  const matrix_view<const TA> a = a_view;
  check_gemm_arguments(a, b.k, b.n, b.zero_point, c, a_zero_point);
  // Stage data is device memory: lengths are checked, values are not read.
  ep.validate(epilogue::gemm_call::of<TC>("cuda::gemm", c.rows, c.cols, /*host_data=*/false));
  if (c.empty()) return;

  constexpr int element_bytes = int(sizeof(TA));
  const auto* a_bytes = reinterpret_cast<const uint8_t*>(a.data);
  int64_t a_stride_bytes = int64_t(a.row_stride) * element_bytes;
  std::optional<scratch_buffer<uint8_t>> staged;
  if (a.cols > 0 && !cp_async_compatible(a.data, a.rows, a.row_stride, a.col_stride, element_bytes)) {
    const index_t width = a.cols * element_bytes;
    const index_t pitch = round_up(width, copy_bytes);
    const index_t source_pitch = (a.rows > 1 ? a.row_stride : a.cols) * element_bytes;
    staged.emplace(a.rows * pitch, stream);
    check_cuda(cudaMemcpy2DAsync(staged->data(), pitch, a.data, source_pitch, width, a.rows,
                                 cudaMemcpyDeviceToDevice, stream),
               "cuda::gemm: staging A");
    a_bytes = staged->data();
    a_stride_bytes = pitch;
  }

  std::optional<scratch_buffer<int32_t>> row_sums;
  detail::gemm_params<TC, Pipeline> params;
  if constexpr (std::is_same_v<TA, uint8_t>) {
    if (b.zero_point != 0 && a.cols > 0) {
      row_sums.emplace(a.rows, stream);
      const unsigned blocks = unsigned(ceil_div(a.rows, detail::row_sum_rows_per_block));
      detail::row_sums_kernel<<<blocks, detail::row_sum_rows_per_block * warp_size, 0, stream>>>(
          a_bytes, a_stride_bytes, int(a.rows), int(a.cols), row_sums->data());
      check_launch("cuda::gemm row sums");
      params.row_sums = row_sums->data();
    }
    params.column_sums = b.column_sums.data();
  }
  params.a = a_bytes;
  params.a_stride_bytes = a_stride_bytes;
  params.a_k_bytes = int(a.cols) * element_bytes;
  params.b = reinterpret_cast<const uint8_t*>(b.values.data());
  params.b_stride_bytes = int64_t(b.k_padded) * element_bytes;
  params.m = int(c.rows);
  params.n = int(c.cols);
  params.k = int(a.cols);
  params.c = c.data;
  params.c_stride = c.rows > 1 ? c.row_stride : c.cols;
  params.a_zero_point = a_zero_point;
  params.b_zero_point = b.zero_point;
  params.ep = ep;

  switch (select_gemm_tile(c.rows, c.cols, device_sm_count())) {
    case gemm_tile::t128x128: detail::launch_gemm<gemm_tile::t128x128, TA>(params, stream); break;
    case gemm_tile::t64x128: detail::launch_gemm<gemm_tile::t64x128, TA>(params, stream); break;
    default: detail::launch_gemm<gemm_tile::t64x64, TA>(params, stream); break;
  }
}

}  // namespace qtx::cuda

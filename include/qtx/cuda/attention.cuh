#pragma once
// Fused multi-head attention on the GPU, the semantics of qtx::ref::attention (see
// attention_kernel.cuh for the formula and the two-pass clipped softmax):
//
//   qtx::cuda::attention(qtx::cuda::sm80{}, q, k, v, out, cfg, key_mask, gate, stream);
//
// q (batch × Tq × H·d), k and v (batch × Tk × H·d): fp16 or bf16 device tensors with unit column
// stride and 16-byte aligned rows; head h is columns [h·d, (h+1)·d), d ∈ {32, 64, 128}.
// out: float or the input type, any strides. key_mask (optional): additive float, 1 or batch rows
// × Tk. gate (optional): π as float, batch × Tq × H. All pointers are device memory.
#if !defined(__CUDACC__)
#error "qtx/cuda/attention.cuh needs nvcc (compile this translation unit as CUDA)"
#endif
#include <type_traits>

#include "../core/view.hpp"
#include "arch.hpp"
#include "arguments.hpp"
#include "attention_kernel.cuh"
#include "runtime.cuh"
#include "../config.hpp"

namespace qtx::QTX_ABI::cuda {
namespace detail {

template <int HeadDim, bool Clipped, class T, class TOut>
void launch_attention(const attention_params<T, TOut>& p, index_t heads, cudaStream_t stream) {
  const auto kernel = attention_kernel<HeadDim, Clipped, T, TOut>;
  const int smem = attention_smem_bytes(HeadDim, int(sizeof(T)));
  allow_dynamic_smem(kernel, smem);
  const dim3 grid(unsigned(ceil_div(p.q.rows, attention_block_q)), unsigned(heads), unsigned(p.q.batch));
  kernel<<<grid, attention_threads, smem, stream>>>(p);
  check_launch("cuda::attention");
}

template <bool Clipped, class T, class TOut>
void dispatch_head_dim(const attention_params<T, TOut>& p, index_t head_dim, index_t heads, cudaStream_t stream) {
  switch (head_dim) {
    case 32: launch_attention<32, Clipped>(p, heads, stream); break;
    case 64: launch_attention<64, Clipped>(p, heads, stream); break;
    default: launch_attention<128, Clipped>(p, heads, stream); break;
  }
}

}  // namespace detail

template <class Arch, class Tv, class TOut>
void attention(Arch, batch_view<Tv> q, batch_view<Tv> k, batch_view<Tv> v, batch_view<TOut> out,
               const attention_config& cfg, matrix_view<const float> key_mask = {},
               batch_view<const float> gate = {}, cudaStream_t stream = nullptr) {
  using T = std::remove_const_t<Tv>;
  static_assert(std::is_base_of_v<sm80, Arch>, "cuda::attention: Arch must be a qtx::cuda tag");
  static_assert(std::is_same_v<T, __half> || std::is_same_v<T, __nv_bfloat16>,
                "cuda::attention: q, k, v must be fp16 or bf16");
  static_assert(std::is_same_v<TOut, float> || std::is_same_v<TOut, T>, "cuda::attention: out must be float or T");
  const auto as_const = [](const batch_view<Tv>& x) {
    return batch_view<const T>{x.data, x.batch, x.rows, x.cols, x.batch_stride, x.row_stride, x.col_stride};
  };
  detail::attention_params<T, TOut> p;
  p.q = as_const(q);
  p.k = as_const(k);
  p.v = as_const(v);
  p.out = out;
  check_attention_arguments(p.q, p.k, p.v, out, cfg, key_mask, gate);
  if (q.batch == 0 || q.rows == 0) return;
  p.key_mask = key_mask;
  p.gate = gate;
  p.scale = cfg.scale;
  p.gamma = cfg.gamma;
  p.zeta = cfg.zeta;
  p.causal = cfg.causal;
  p.causal_offset = cfg.causal_offset;
  const index_t head_dim = q.cols / cfg.n_heads;
  // ζ = 1, γ = 0 is plain softmax: the one-pass online kernel computes the same function.
  if (cfg.gamma == 0.0f && cfg.zeta == 1.0f)
    detail::dispatch_head_dim<false>(p, head_dim, cfg.n_heads, stream);
  else
    detail::dispatch_head_dim<true>(p, head_dim, cfg.n_heads, stream);
}

// One sequence: q (Tq × H·d), k, v (Tk × H·d), out (Tq × H·d), key_mask (1 × Tk), gate (Tq × H).
template <class Arch, class Tv, class TOut>
void attention(Arch arch, matrix_view<Tv> q, matrix_view<Tv> k, matrix_view<Tv> v, matrix_view<TOut> out,
               const attention_config& cfg, matrix_view<const float> key_mask = {},
               matrix_view<const float> gate = {}, cudaStream_t stream = nullptr) {
  const auto one = [](const auto& x) {
    using E = std::remove_reference_t<decltype(*x.data)>;
    return batch_view<E>{x.data, 1, x.rows, x.cols, x.rows * x.row_stride, x.row_stride, x.col_stride};
  };
  attention(arch, one(q), one(k), one(v), one(out), cfg, key_mask,
            gate.data ? one(gate) : batch_view<const float>{}, stream);
}

}  // namespace qtx::cuda

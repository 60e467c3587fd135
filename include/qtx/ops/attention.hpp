#pragma once
/// @file
/// Public multi-head attention front: checks, then the CPU kernel: a few queries (decoding against a
/// KV cache) read K and V in place (cpu/attention/decode.hpp), more share packed K and V
/// (cpu/attention/fused.hpp).
///
///   out_h = π_h ⊙ (clip((ζ−γ)·softmax(scale·Q_h K_hᵀ + mask) + γ, 0, 1) · V_h)     for each head h
///
/// q (Tq, D), k and v (Tk, D) hold all heads side by side (head h = columns [h·d, (h+1)·d), the
/// layout a QKV projection produces), so heads are strided views and nothing is transposed.
/// Float inputs give float output; uint8 inputs (asymmetric, with their quant params) run both
/// products in int8 (int32 scores, uint8 probabilities with scale 1/255) and give uint8 or float output.
#include <cmath>

#include "../core/error.hpp"
#include "../core/view.hpp"
#include "../cpu/attention/decode.hpp"
#include "../cpu/attention/fused.hpp"
#include "../quant/params.hpp"
#include "rules.hpp"
#include "../config.hpp"

namespace qtx::QTX_ABI::ops {

using cpu::attention_params;
using cpu::attention_quant;

namespace detail {
template <class TQ, class TO>
void check_attention(matrix_view<TQ> q, matrix_view<TQ> k, matrix_view<TQ> v, matrix_view<TO> out,
                     const attention_params& p, matrix_view<const float> key_mask,
                     matrix_view<const float> gate) {
  const char* fn = "attention";
  check_view(fn, "q", q);
  check_view(fn, "k", k);
  check_view(fn, "v", v);
  check_view(fn, "out", out);
  check(p.n_heads > 0, fn, ": n_heads (", p.n_heads, ") must be positive");
  check(q.cols % p.n_heads == 0, fn, ": q has ", q.cols, " columns, not a multiple of n_heads ", p.n_heads);
  check(k.cols == q.cols && v.cols == q.cols, fn, ": q, k, v have ", q.cols, ", ", k.cols, ", ", v.cols,
        " columns; they must match");
  check(k.rows == v.rows, fn, ": k has ", k.rows, " rows but v has ", v.rows);
  check(out.rows == q.rows && out.cols == q.cols, fn, ": out is ", out.rows, "x", out.cols, ", expected ",
        q.rows, "x", q.cols);
  check(q.row_contiguous() && k.row_contiguous() && v.row_contiguous() && out.row_contiguous(), fn,
        ": q, k, v and out need col_stride 1");
  check(std::isfinite(p.scale), fn, ": scale (", p.scale, ") must be finite");
  check_clip(fn, p.gamma, p.zeta);
  check(p.causal_offset >= 0, fn, ": causal_offset (", p.causal_offset, ") must be non-negative");
  check(!key_mask.data || (key_mask.rows == 1 && key_mask.cols == k.rows), fn, ": key_mask is ",
        key_mask.rows, "x", key_mask.cols, ", expected 1x", k.rows);
  check(!gate.data || (gate.rows == q.rows && gate.cols == p.n_heads), fn, ": gate is ", gate.rows, "x",
        gate.cols, ", expected ", q.rows, "x", p.n_heads, " (tokens x heads)");
}
template <class Arch, class T, class TO>
void run_attention(Arch arch, matrix_view<const T> q, matrix_view<const T> k, matrix_view<const T> v,
                   matrix_view<TO> out, const attention_params& p, matrix_view<const float> key_mask,
                   matrix_view<const float> gate, const attention_quant& quant) {
  if (q.rows <= cpu::decode_max_queries)
    cpu::decode_attention(arch, q, k, v, out, p, key_mask, gate, quant);
  else
    cpu::fused_attention(arch, q, k, v, out, p, key_mask, gate, quant);
}
}  // namespace detail

/// Float attention.
template <class Arch>
void attention(Arch arch, matrix_view<const float> q, matrix_view<const float> k, matrix_view<const float> v,
               matrix_view<float> out, const attention_params& p, matrix_view<const float> key_mask = {},
               matrix_view<const float> gate = {}) {
  detail::check_attention(q, k, v, out, p, key_mask, gate);
  if (out.empty()) return;
  detail::run_attention(arch, q, k, v, out, p, key_mask, gate, attention_quant{});
}

/// W8A8 attention: uint8 q, k, v with quant params; output uint8 (quant.out) or float.
template <class Arch, class TO>
void attention(Arch arch, matrix_view<const uint8_t> q, matrix_view<const uint8_t> k,
               matrix_view<const uint8_t> v, matrix_view<TO> out, const attention_params& p,
               const attention_quant& quant, matrix_view<const float> key_mask = {},
               matrix_view<const float> gate = {}) {
  static_assert(std::is_same_v<TO, uint8_t> || std::is_same_v<TO, float>,
                "ops::attention: int8 attention writes uint8 or float");
  detail::check_attention(q, k, v, out, p, key_mask, gate);
  check_quant_params<uint8_t>("attention", "quant.q", quant.q);
  check_quant_params<uint8_t>("attention", "quant.k", quant.k);
  check_quant_params<uint8_t>("attention", "quant.v", quant.v);
  if constexpr (std::is_same_v<TO, uint8_t>) {
    if (quant.out_per_head.empty()) check_quant_params<uint8_t>("attention", "quant.out", quant.out);
    check(quant.out_per_head.empty() || index_t(quant.out_per_head.size()) == p.n_heads,
          "attention: quant.out_per_head has ", quant.out_per_head.size(), " entries, expected one per head (",
          p.n_heads, ") or none");
    for (const quant_params& head : quant.out_per_head)
      check_quant_params<uint8_t>("attention", "quant.out_per_head", head);
  } else {
    check(quant.out_per_head.empty(), "attention: quant.out_per_head has ", quant.out_per_head.size(),
          " entries, but a float output is not quantized (leave it empty)");
  }
  check(q.cols / p.n_heads <= int8_gemm_max_k && k.rows <= int8_gemm_max_k, "attention: d_head (",
        q.cols / p.n_heads, ") or Tk (", k.rows, ") exceeds the int32-safe bound ", int8_gemm_max_k);
  if (out.empty()) return;
  detail::run_attention(arch, q, k, v, out, p, key_mask, gate, quant);
}

}  // namespace qtx::ops

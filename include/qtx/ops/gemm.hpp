#pragma once
/// @file
/// Public GEMM front: C = epilogue(A · B) for float and W8A8, packed or unpacked B, batched; the
/// contract (integer arithmetic, zero points, argument checks, backends) is the comment that opens ops/gemm.hpp.
// Public GEMM front: C = epilogue(A · B), checked arguments, dispatch by backend tag.
//
//   auto w = qtx::ops::pack_b<qtx::cpu::native>(weights);            // (K, N) int8, once
//   qtx::ops::gemm(qtx::cpu::native{}, x_q, w, y_q, epilogue, x_zp);  // x_q (M, K) u8 → y_q (M, N)
//   qtx::ops::gemm(qtx::cpu::native{}, x_q, b, y, epilogue, x_zp, b_zp);  // B unpacked: packs per call
//   qtx::ops::gemm(qtx::cpu::native{}, xs, w, ys, epilogue, x_zp);    // batch_views: C[i] = ep(A[i] · B)
//
// Integer GEMMs take uint8 activations A (zero point a_zero_point) and 8-bit B (zero point stored
// at packing, 0 for weights) and accumulate exactly in int32:
//   acc(m, n) = Σ_k (A(m,k) − za)(B(k,n) − zb),   then the epilogue pipeline, then the store.
// B may be int8 (weights; zb in [−128, 127]) or uint8 (attention operands such as K or V
// activations; zb in [0, 255]): uint8 B is stored as b − 128 with zero point zb − 128, which leaves
// every product unchanged, so both give the same packed type packed_b<Arch, int8_t>. Float GEMMs
// take float A and B (zero points must be 0).
//
// Every argument is checked before any work, including each epilogue stage (its validate(),
// epilogue/stages.hpp), and every message names the function the user called.
//
// Backends: cpu::avx512_vnni (vpdpbusd, FMA on zmm), cpu::avx_vnni (VEX vpdpbusd on ymm; float as
// avx2), cpu::avx2 (vpmaddwd on int16-widened
// operands: exact, no vpmaddubsw saturation; FMA on ymm), cpu::scalar; see cpu/gemm/.
#include <algorithm>
#include <concepts>
#include <cstdint>
#include <ranges>
#include <type_traits>

#include "../core/arch.hpp"
#include "../core/error.hpp"
#include "../core/parallel.hpp"
#include "../core/view.hpp"
#include "../cpu/gemm/scalar.hpp"
#include "../cpu/gemm/vector.hpp"
#include "../epilogue/pipeline.hpp"
#include "../quant/params.hpp"
#include "../config.hpp"

namespace qtx::QTX_ABI::ops {

/// K above which an 8-bit GEMM could overflow int32: |(a − za)(b − zb)| ≤ 255·255 per product.
inline constexpr index_t int8_gemm_max_k = 2147483647 / (255 * 255);  // 33025

/// The packed-B type of backend Arch for element type TB (what a Linear layer holds); uint8 and
/// int8 B share one packed type.
template <class Arch, class TB>
using packed_b = decltype(cpu::pack_b(Arch{}, std::declval<matrix_view<const TB>>(), int32_t{}));

namespace detail {
template <class T>
inline constexpr bool is_matrix_view = false;
template <class T>
inline constexpr bool is_matrix_view<matrix_view<T>> = true;
template <class T>
inline constexpr bool is_batch_view = false;
template <class T>
inline constexpr bool is_batch_view<batch_view<T>> = true;
template <class T>
inline constexpr bool is_pipeline = false;
template <class... S>
inline constexpr bool is_pipeline<epilogue::pipeline<S...>> = true;

// One packed B (not a view, not a range of packed B's).
template <class P>
concept single_packed_b = !is_matrix_view<P> && !is_batch_view<P> && !std::ranges::range<P>;

// B (K, N) as pack_b takes it: a valid view, K within the int32-safe bound for 8-bit B, the zero
// point in B's range (0 for float).
template <class TB>
void check_b(const char* fn, const matrix_view<const TB>& b, int32_t b_zero_point) {
  static_assert(std::is_same_v<TB, float> || std::is_same_v<TB, int8_t> || std::is_same_v<TB, uint8_t>,
                "ops::gemm / ops::pack_b: B must be float, int8 or uint8");
  check_view(fn, "b", b);
  if constexpr (std::is_floating_point_v<TB>) {
    check(b_zero_point == 0, fn, ": b_zero_point (", b_zero_point, ") must be 0 for float B");
  } else {
    check(b.rows <= int8_gemm_max_k, fn, ": K (", b.rows, ") exceeds the int32-safe bound ", int8_gemm_max_k,
          " for 8-bit GEMM");
    check_zero_point<TB>(fn, "b_zero_point", b_zero_point);
  }
}

// A's element type, K and zero point.
template <class TA>
void check_a(const char* fn, index_t k, int32_t a_zero_point) {
  if constexpr (std::is_floating_point_v<TA>) {
    check(a_zero_point == 0, fn, ": a_zero_point (", a_zero_point, ") must be 0 for float A");
  } else {
    static_assert(std::is_same_v<TA, uint8_t>, "ops::gemm: integer A must be uint8");
    check(k <= int8_gemm_max_k, fn, ": K (", k, ") exceeds the int32-safe bound ", int8_gemm_max_k,
          " for 8-bit GEMM");
    check_zero_point<uint8_t>(fn, "a_zero_point", a_zero_point);
  }
}

// (M, K) · (K, N) → (M, N); b_name is "b" or "b[i]".
inline void check_shapes(const char* fn, const param_name& b_name, index_t a_rows, index_t a_cols, index_t b_k,
                         index_t b_n, index_t c_rows, index_t c_cols) {
  check(a_cols == b_k, fn, ": a.cols (", a_cols, ") != ", b_name, ".rows (", b_k, ")");
  check(c_rows == a_rows && c_cols == b_n, fn, ": c is ", c_rows, "x", c_cols, " but a·", b_name, " is ",
        a_rows, "x", b_n);
}

template <class Pipeline>
void check_pipeline_type() {
  static_assert(is_pipeline<Pipeline>, "ops::gemm: the epilogue must be an epilogue::pipeline (make_pipeline(...))");
}

// Every check of gemm(a, b (K, N), c, ep, za) but B's own.
template <class TA, class TC, class Pipeline>
void check_gemm(const char* fn, const matrix_view<const TA>& a, index_t b_k, index_t b_n,
                const matrix_view<TC>& c, const Pipeline& ep, int32_t a_zero_point) {
  check_pipeline_type<Pipeline>();
  check_view(fn, "a", a);
  check_view(fn, "c", c);
  check_shapes(fn, "b", a.rows, a.cols, b_k, b_n, c.rows, c.cols);
  check_a<TA>(fn, a.cols, a_zero_point);
  ep.validate(epilogue::gemm_call::of<TC>(fn, c.rows, c.cols));
}

// ops::gemm with packed B, its errors reported as fn (nn layers pass their own name).
template <class Arch, class TAv, class PackedB, class TC, class Pipeline>
void gemm_packed(const char* fn, Arch arch, matrix_view<TAv> a_view, const PackedB& b, matrix_view<TC> c,
                 const Pipeline& ep, int32_t a_zero_point) {
  const matrix_view<const std::remove_const_t<TAv>> a = a_view;
  check_gemm(fn, a, b.k, b.n, c, ep, a_zero_point);
  if (c.empty()) return;
  cpu::gemm(arch, a, b, c, ep, a_zero_point);
}

// A batch view's extents, strides and data (every batch shares one shape).
template <class T>
void check_batch_view(const char* fn, const char* name, const batch_view<T>& v) {
  check(v.batch >= 0, fn, ": ", name, " has a negative batch count (", v.batch, ")");
  check(v.batch_stride >= 0, fn, ": ", name, " has a negative batch_stride (", v.batch_stride, ")");
  if (v.batch > 0) check_view(fn, name, matrix_view<T>{v.data, v.rows, v.cols, v.row_stride, v.col_stride});
}

// True when the batches of v provably touch disjoint elements: stacked (each batch ends before the
// next begins) or side by side within the rows of one row-major matrix (attention's heads).
template <class T>
bool batches_disjoint(const batch_view<T>& v) {
  if (v.batch <= 1 || v.rows == 0 || v.cols == 0) return true;
  const index_t last = (v.rows - 1) * v.row_stride + (v.cols - 1) * v.col_stride;
  if (v.batch_stride > last) return true;
  const bool row_major = v.col_stride == 1 || v.cols == 1;
  return row_major && v.batch_stride >= v.cols &&
         (v.rows == 1 || (v.batch - 1) * v.batch_stride + v.cols <= v.row_stride);
}

// The pipeline of batch i: ep itself, or ep(i) for a per-batch epilogue.
template <class Epilogue>
inline constexpr bool per_batch_epilogue = std::invocable<const Epilogue&, index_t>;
template <class Epilogue>
decltype(auto) pipeline_of(const Epilogue& ep, index_t i) {
  if constexpr (per_batch_epilogue<Epilogue>) {
    return ep(i);
  } else {
    (void)i;
    return (ep);
  }
}

// C[i] = pipeline_of(ep, i)(A[i] · b_of(i)) for every batch i; b_count = 1 for a shared B.
template <class Arch, class TAv, class BOf, class TC, class Epilogue>
void gemm_batched(const char* fn, Arch arch, batch_view<TAv> a_view, BOf b_of, bool per_batch_b,
                  batch_view<TC> c, const Epilogue& ep, int32_t a_zero_point) {
  using TA = std::remove_const_t<TAv>;
  const batch_view<const TA> a{a_view.data,         a_view.batch,      a_view.rows,      a_view.cols,
                               a_view.batch_stride, a_view.row_stride, a_view.col_stride};
  check_batch_view(fn, "a", a);
  check_batch_view(fn, "c", c);
  check(a.batch == c.batch, fn, ": a has ", a.batch, " batches but c has ", c.batch);
  check_a<TA>(fn, a.cols, a_zero_point);
  if (!per_batch_b) check_shapes(fn, "b", a.rows, a.cols, b_of(0).k, b_of(0).n, c.rows, c.cols);
  for (index_t i = 0; i < a.batch && per_batch_b; ++i)
    check_shapes(fn, param_name("b", "", i), a.rows, a.cols, b_of(i).k, b_of(i).n, c.rows, c.cols);
  epilogue::gemm_call call = epilogue::gemm_call::of<TC>(fn, c.rows, c.cols);
  if constexpr (per_batch_epilogue<Epilogue>) {
    for (call.batch = 0; call.batch < a.batch; ++call.batch) {
      const auto& pipeline = ep(call.batch);
      check_pipeline_type<std::remove_cvref_t<decltype(pipeline)>>();
      pipeline.validate(call);
    }
  } else {
    check_pipeline_type<Epilogue>();
    ep.validate(call);
  }
  if (c.batch == 0 || c.rows == 0 || c.cols == 0) return;

  auto run = [&](index_t i) { cpu::gemm(arch, a[i], b_of(i), c[i], pipeline_of(ep, i), a_zero_point); };
  // Threads over batches when each GEMM is too small to be split itself or there are enough
  // batches for every thread; each GEMM then runs serially on its thread (parallel_for nests
  // serially). Batches of C that may overlap run one after another, never concurrently.
  const bool small = c.rows * c.cols * a.cols < cpu::gemm_detail::parallel_gemm_threshold;
  if (c.batch > 1 && (small || c.batch >= max_threads()) && batches_disjoint(c)) {
    parallel_for(0, c.batch, run);
  } else {
    for (index_t i = 0; i < c.batch; ++i) run(i);
  }
}
}  // namespace detail

/// Packs B (K, N) once for backend Arch (weights).
/// @param b_view B: float, int8 (weights) or uint8 (activations such as K or V), any strides.
/// @param b_zero_point zero point of B: in B's range for 8-bit B, 0 for float.
/// @return the packed B that ops::gemm takes (type packed_b<Arch, TB>).
/// @throws qtx::error ("pack_b: ...") for an invalid view, K > int8_gemm_max_k for 8-bit B, or a
///         zero point outside B's range (non-zero for float).
template <class Arch, class TBv>
auto pack_b(matrix_view<TBv> b_view, int32_t b_zero_point = 0) {
  const matrix_view<const std::remove_const_t<TBv>> b = b_view;
  detail::check_b("pack_b", b, b_zero_point);
  return cpu::pack_b(Arch{}, b, b_zero_point);
}

/// pack_b into `packed`, reusing its storage when it is large enough (operands packed per call,
/// like attention's K and V, then allocate nothing once warm).
/// @param packed a packed B of this backend and element type (from pack_b, or default-constructed).
/// @param b_view, b_zero_point as for pack_b.
/// @throws qtx::error as pack_b.
template <class Arch, class TBv, class Packed>
void pack_b_into(Packed& packed, matrix_view<TBv> b_view, int32_t b_zero_point = 0) {
  const matrix_view<const std::remove_const_t<TBv>> b = b_view;
  detail::check_b("pack_b_into", b, b_zero_point);
  cpu::pack_b_into(Arch{}, packed, b, b_zero_point);
}

/// C = ep(A · B) with B packed by pack_b<Arch>.
/// @param arch backend tag (cpu::scalar, cpu::avx2, cpu::avx_vnni, cpu::avx512_vnni; B must be packed for it).
/// @param a_view A (M, K): uint8 for the integer GEMM, float for the float one; any strides.
/// @param b B packed by pack_b<Arch> (K, N).
/// @param c C (M, N): int32, int8, uint8 or float (the store implied by the pipeline), any strides.
/// @param ep the epilogue pipeline; every stage is validated against C before any work.
/// @param a_zero_point zero point of A: in [0, 255] for uint8 A, 0 for float.
/// @throws qtx::error ("gemm: ...") for invalid views, shapes that do not chain, K above
///         int8_gemm_max_k, a zero point out of range, or a stage whose data does not fit C.
template <class Arch, class TAv, class PackedB, class TC, class Pipeline = epilogue::pipeline<>>
  requires detail::single_packed_b<PackedB>
void gemm(Arch arch, matrix_view<TAv> a_view, const PackedB& b, matrix_view<TC> c, const Pipeline& ep = {},
          int32_t a_zero_point = 0) {
  detail::gemm_packed("gemm", arch, a_view, b, c, ep, a_zero_point);
}

/// C = ep(A · B) with B unpacked (K, N): packs B for this call only (attention's per-call operands,
/// tests). Prefer pack_b once + gemm for weights. Parameters as the packed form, plus:
/// @param b_view B (K, N): float, int8 or uint8, any strides.
/// @param b_zero_point zero point of B, as for pack_b.
/// @throws qtx::error ("gemm: ...") for anything the packed form or pack_b rejects.
template <class Arch, class TAv, class TBv, class TC, class Pipeline = epilogue::pipeline<>>
void gemm(Arch arch, matrix_view<TAv> a_view, matrix_view<TBv> b_view, matrix_view<TC> c, const Pipeline& ep = {},
          int32_t a_zero_point = 0, int32_t b_zero_point = 0) {
  const matrix_view<const std::remove_const_t<TAv>> a = a_view;
  const matrix_view<const std::remove_const_t<TBv>> b = b_view;
  detail::check_b("gemm", b, b_zero_point);
  detail::check_gemm("gemm", a, b.rows, b.cols, c, ep, a_zero_point);
  if (c.empty()) return;
  cpu::gemm(arch, a, cpu::pack_b(arch, b, b_zero_point), c, ep, a_zero_point);
}

/// Batched GEMM with one shared packed B: C[i] = ep_i(A[i] · B) for every batch i.
/// @param a_view A: a batch of (M, K) matrices (uint8 or float), any strides.
/// @param b one B packed by pack_b<Arch> (K, N), used by every batch.
/// @param c C: a batch of (M, N) matrices, as many as A has.
/// @param ep one epilogue pipeline for every batch (its m, n are the batch's own), or a callable
///        `ep(i)` returning batch i's pipeline (e.g. a per-batch residual); it is called once per
///        batch to validate and once per batch to run, so it must return the same each time.
/// @param a_zero_point zero point of A, as for the matrix form.
/// @throws qtx::error ("gemm: ...", "gemm (batch i): ..." for a per-batch pipeline) for invalid
///         batch views, unequal batch counts, or anything the matrix form rejects.
template <class Arch, class TAv, class PackedB, class TC, class Epilogue = epilogue::pipeline<>>
  requires detail::single_packed_b<PackedB>
void gemm(Arch arch, batch_view<TAv> a_view, const PackedB& b, batch_view<TC> c, const Epilogue& ep = {},
          int32_t a_zero_point = 0) {
  detail::gemm_batched("gemm", arch, a_view, [&](index_t) -> const PackedB& { return b; }, false, c, ep,
                       a_zero_point);
}

/// Batched GEMM with one packed B per batch: C[i] = ep_i(A[i] · b[i]).
/// @param b a contiguous range (std::vector, std::span, array) of a.batch B's packed by
///        pack_b<Arch>, each (K, N) (zero points may differ).
/// Other parameters as the shared-B form.
/// @throws qtx::error ("gemm: ...") when b does not hold one B per batch, a b[i] does not fit A and
///         C, or for anything the shared-B form rejects.
template <class Arch, class TAv, class PackedBs, class TC, class Epilogue = epilogue::pipeline<>>
  requires std::ranges::contiguous_range<const PackedBs&> &&
           std::ranges::sized_range<const PackedBs&> &&
           detail::single_packed_b<std::ranges::range_value_t<const PackedBs&>>
void gemm(Arch arch, batch_view<TAv> a_view, const PackedBs& b, batch_view<TC> c, const Epilogue& ep = {},
          int32_t a_zero_point = 0) {
  const index_t count = static_cast<index_t>(std::ranges::size(b));
  check(count == a_view.batch, "gemm: b holds ", count, " packed matrices but a has ", a_view.batch, " batches");
  const auto* first = std::ranges::data(b);
  detail::gemm_batched("gemm", arch, a_view, [first](index_t i) -> const auto& { return first[i]; }, true, c, ep,
                       a_zero_point);
}

}  // namespace qtx::ops

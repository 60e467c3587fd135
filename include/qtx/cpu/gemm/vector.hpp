#pragma once
// Vector GEMM backends (cpu::avx2, cpu::avx512_vnni): pack A (or read it in place), then run the
// microkernel over the output tiles, threaded with parallel_for. On CPUs with AMX the avx512_vnni
// int8 GEMM runs on tiles instead (amx.hpp), over the same packed B.
//
//   integer:  acc(m, n) = Σ_k A(m,k)·B(k,n) − za·colsum(B)[n] − zb·rowsum(A)[m] + K·za·zb
//             = Σ_k (A(m,k) − za)(B(k,n) − zb), summed modulo 2^32: exact, since ops/ bounds K so
//             that the true value fits in int32. The m-term and K·za·zb are per-call row offsets,
//             the n-term is −za times the column sums kept with packed B; the accumulators start
//             at their sum, so the inner loop is pure vpdpbusd / vpmaddwd.
//
// Loop order per thread: rows in passes of rows_per_pass, then B panels, then K blocks, then row
// blocks of ≤ MR rows; the threads split the panels first (each streams its own share of the
// weights), rows second. Decode shapes (M ≤ MR) are one row block whose kernel has exactly M
// rows, with B pinned in registers: B streams once, at the L2 bandwidth for M = 1.
//   float:    acc(m, n) = Σ_k A(m,k)·B(k,n) with FMA, k ascending.
//   C(m, n) = store(epilogue(acc(m, n), m, n)), applied on registers (epilogue.hpp).
#include <algorithm>
#include <array>
#include <cstdint>
#include <type_traits>
#include <utility>

#include "../../core/arch.hpp"
#include "../../core/buffer.hpp"
#include "../../core/parallel.hpp"
#include "../../core/view.hpp"
#include "amx.hpp"
#include "packing.hpp"
#include "scratch.hpp"
#include "work_split.hpp"
#include "../../config.hpp"

namespace qtx::QTX_ABI::cpu {
namespace gemm_detail {

// The A element type that goes with a B element type.
template <class TB>
using a_type_for = std::conditional_t<std::is_floating_point_v<TB>, float, uint8_t>;

template <class Config>
using kernel_fn = void (*)(a_rows<typename Config::a_elem>, const typename Config::b_elem*, index_t,
                           const tile_sums<typename Config::acc_elem>&);

// kernels[r − 1] handles a block of r ≤ MR rows.
template <class Config>
constexpr auto kernels_by_rows() {
  return []<int... R>(std::integer_sequence<int, R...>) {
    return std::array<kernel_fn<Config>, sizeof...(R)>{
        &microkernel<typename Config::dot, R + 1, Config::nv, Config::prefetch_groups>...};
  }(std::make_integer_sequence<int, Config::mr>{});
}

}  // namespace gemm_detail

template <class Arch, class TB>
  requires gemm_detail::has_vector_kernel<Arch, gemm_detail::a_type_for<TB>>
auto pack_b(Arch, matrix_view<const TB> b, int32_t b_zero_point) {
  using config = gemm_detail::config_t<Arch, gemm_detail::a_type_for<TB>>;
  return gemm_detail::pack_panels<config>(b, b_zero_point);
}

/// pack_b into an existing packed B, reusing its storage (no allocation when it is large enough).
template <class Arch, class TB, class Config>
  requires gemm_detail::has_vector_kernel<Arch, gemm_detail::a_type_for<TB>>
void pack_b_into(Arch, gemm_detail::packed_panels<Config>& p, matrix_view<const TB> b, int32_t b_zero_point) {
  static_assert(std::is_same_v<Config, gemm_detail::config_t<Arch, gemm_detail::a_type_for<TB>>>,
                "cpu::pack_b_into: B was packed for another backend");
  gemm_detail::pack_panels_into(p, b, b_zero_point);
}

namespace gemm_detail {

template <class TA, class Config, class TC, class Pipeline>
void run_gemm(matrix_view<const TA> a, const packed_panels<Config>& b, matrix_view<TC> c, const Pipeline& ep,
              int32_t a_zero_point) {
  using elem = typename Config::a_elem;
  using acc_elem = typename Config::acc_elem;
  constexpr int mr = Config::mr, nr = Config::nr, kg = Config::kg;
  const index_t M = c.rows, N = c.cols, K = a.cols, groups = b.groups;
  const index_t row_blocks = (M + mr - 1) / mr;

  const index_t threads = M * N * K < parallel_gemm_threshold ? 1 : max_threads();
  const work_split split = split_work(row_blocks, b.panels, threads);
  const index_t parts = split.row_parts * split.col_parts;
  // A is read in place when it already is what the kernel broadcasts: row-contiguous, of the
  // kernel's element type (u8 for VNNI, float), K a whole number of k-groups (no read past a
  // row); otherwise (AVX2's int16 widening, strided views, K tails) it is packed. In place saves
  // the copy (+2–3 % on one thread), but with several threads the shared packed copy measured
  // faster (+6 % at 128×768×768), except for decode rows (M ≤ MR) where there is nothing to share.
  const bool in_place =
      std::is_same_v<elem, TA> && a.col_stride == 1 && K % kg == 0 && (parts == 1 || M <= mr);
  const bool private_packing = !in_place && M * K < private_packing_limit;
  const index_t packing_slots = private_packing ? parts : 1;
  const index_t a_size = in_place ? 0 : M * groups * kg;

  const scratch_use<workspace<elem>> scratch;  // the thread's scratch (scratch.hpp), freed on return if it outgrew the bound
  workspace<elem>& ws = scratch.ws;
  ws.a.reserve(packing_slots * a_size);
  if constexpr (Config::integer) ws.row_offsets.reserve(packing_slots * M);
  const index_t k_blocks = std::max<index_t>(1, (groups + Config::k_block_groups - 1) / Config::k_block_groups);
  constexpr index_t blocks_per_pass = std::max<index_t>(1, Config::rows_per_pass / mr);
  constexpr index_t partial_size = blocks_per_pass * mr * nr;
  acc_elem* all_partials = ws.template partials<acc_elem>(parts * partial_size);

  // Row blocks of near-equal height (e.g. 32 rows = 6+6+5+5+5+5, not 6·5+2): a short block does
  // little work per B load and would run bandwidth-bound.
  auto block_rows = [&](index_t block) { return part_range(M, row_blocks, block); };
  const bool row_sums = Config::integer && b.zero_point != 0;
  const int32_t k_za_zb = k_za_zb_term(K, a_zero_point, b.zero_point);
  auto finish_row_offsets = [&](int32_t* row_offsets, index_t rows) {  // row sums in, offsets out
    for (index_t i = 0; i < rows; ++i)
      row_offsets[i] = row_sums ? zero_point_row_offset(k_za_zb, b.zero_point, row_offsets[i]) : k_za_zb;
  };
  auto pack_block = [&](index_t block, index_t slot) {
    const auto [m0, m1] = block_rows(block);
    int32_t* row_offsets = Config::integer ? ws.row_offsets.data() + slot * M + m0 : nullptr;
    pack_rows<Config>(a, m0, int(m1 - m0), groups, ws.a.data() + slot * a_size + m0 * groups * kg,
                      row_sums ? row_offsets : nullptr);
    if constexpr (Config::integer) finish_row_offsets(row_offsets, m1 - m0);
  };
  if constexpr (Config::integer) {
    if (in_place) {
      int32_t* row_offsets = ws.row_offsets.data();
      for (index_t m = 0; m < M && row_sums; ++m) row_offsets[m] = row_sum(a, m);
      finish_row_offsets(row_offsets, M);
    }
  }
  if (!in_place && !private_packing) parallel_for(0, row_blocks, [&](index_t block) { pack_block(block, 0); });
  auto a_block = [&](const elem* packed, index_t m0, index_t rows, index_t g0) -> a_rows<elem> {
    if constexpr (std::is_same_v<elem, TA>) {
      if (in_place) return {a.row(m0) + g0 * kg, a.row_stride, kg};
    }
    return {packed + (m0 * groups + g0 * rows) * kg, kg, rows * kg};
  };

  static constexpr auto kernels = kernels_by_rows<Config>();
  parallel_for(0, parts, [&](index_t part) {
    const auto [rb_begin, rb_end] = part_range(row_blocks, split.row_parts, part / split.col_parts);
    const auto [p_begin, p_end] = part_range(b.panels, split.col_parts, part % split.col_parts);
    const index_t slot = private_packing ? part : 0;
    if (private_packing)
      for (index_t block = rb_begin; block < rb_end; ++block) pack_block(block, slot);
    const elem* packed_a = ws.a.data() + slot * a_size;
    const int32_t* row_offsets = Config::integer ? ws.row_offsets.data() + slot * M : nullptr;
    acc_elem* partials = all_partials + part * partial_size;
    for (index_t pass = rb_begin; pass < rb_end; pass += blocks_per_pass) {
      const index_t pass_end = std::min(pass + blocks_per_pass, rb_end);
      for (index_t p = p_begin; p < p_end; ++p) {
        const index_t n0 = p * nr;
        for (index_t kb = 0; kb < k_blocks; ++kb) {
          const index_t g0 = kb * Config::k_block_groups, g_count = std::min(Config::k_block_groups, groups - g0);
          for (index_t block = pass; block < pass_end; ++block) {
            const auto [m0, m1] = block_rows(block);
            const int rows = int(m1 - m0);
            acc_elem* sums = partials + (block - pass) * mr * nr;
            const tile_sums<acc_elem> start{row_offsets ? row_offsets + m0 : nullptr,
                                            Config::integer ? b.column_sums.data() + n0 : nullptr, -a_zero_point,
                                            sums, kb > 0};
            kernels[rows - 1](a_block(packed_a, m0, rows, g0), b.panel(p) + g0 * nr * kg, g_count, start);
            if (kb == k_blocks - 1)
              store_tile<typename Config::dot::simd, Config::nv>(sums, rows, tile_store<TC, Pipeline>{c, &ep, m0, n0, std::min<index_t>(nr, N - n0)});
          }
        }
      }
    }
  });
}

}  // namespace gemm_detail

template <class Arch, class TA, class Config, class TC, class Pipeline>
  requires gemm_detail::has_vector_kernel<Arch, TA>
void gemm(Arch, matrix_view<const TA> a, const gemm_detail::packed_panels<Config>& b, matrix_view<TC> c,
          const Pipeline& ep, int32_t a_zero_point) {
  static_assert(std::is_same_v<Config, gemm_detail::config_t<Arch, TA>>, "cpu::gemm: B was packed for another backend");
#if QTX_HAS_AMX_KERNEL
  if constexpr (gemm_detail::amx_serves<Config> && std::is_same_v<TA, uint8_t>) {
    if (c.rows >= gemm_detail::amx_min_rows && a.cols > 0 && amx_enabled())
      return gemm_detail::run_gemm_amx(a, b, c, ep, a_zero_point);
  }
#endif
  if constexpr (gemm_detail::has_narrow_layout<Config>) {
    if (b.narrow.in_use) return gemm_detail::run_gemm(a, b.narrow.panels, c, ep, a_zero_point);
  }
  gemm_detail::run_gemm(a, b, c, ep, a_zero_point);
}

}  // namespace qtx::cpu

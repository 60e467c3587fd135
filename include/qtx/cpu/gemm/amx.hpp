#pragma once
// AMX-INT8 path of the avx512_vnni int8 GEMM. On CPUs with AMX (Intel since Sapphire Rapids) one
// tdpbusd multiplies a 16 × 64 u8 tile by a 64 × 16 s8 tile into 16 × 16 int32 sums: several times
// the vpdpbusd rate of the same core. It is chosen at run time (qtx::amx_enabled, core/isa.hpp)
// inside the avx512_vnni backend, over the same packed B, so a model packed once runs either way
// and the two give the same bits (exact integer sums; the epilogue is the vector one).
//
//   B: an avx512_vnni panel already is AMX's B layout: its k-group row holds 64 columns × 4 k
//      ([column][kk], 256 bytes), so a B tile (16 k-groups × 16 columns) is read in place with a
//      256-byte stride. The last k step of a panel whose k-groups are not a multiple of 16 reads a
//      zero-padded copy instead, so no tile reads past the packed matrix.
//   A: packed per call in blocks of 32 rows, each k step (64 k) of a block a 32 × 64 byte slab,
//      zero-padded in K and in rows: every A tile is one contiguous 1 KiB load, and M and K tails
//      need no other code. Row sums for the zero-point correction are taken in the same pass.
//   Tiles (8 registers): C 2 × 2 (32 rows × 32 columns), A 2, B 2; four loads feed four tdpbusd
//      per k step. A 64-column panel takes two sweeps over A (A is L1/L2-resident).
//   The sums land in the same 32 × 64 int32 buffer layout the vector microkernel leaves
//   (microkernel.hpp), the zero-point correction is added there, and store_tile runs the epilogue.
// Threads split the 32-row blocks first (work_split.hpp). Loop order per thread: slices of B panels
// that fill half of this core's L2, 32-row blocks, the slice's panels, full K: the A block (32 × K
// bytes) is reused from L1 across the slice's panels, the slice from L2 across the blocks.
#include <cstdint>
#include <cstring>

#include "../../core/buffer.hpp"
#include "../../core/isa.hpp"
#include "../../core/parallel.hpp"
#include "../../core/view.hpp"
#include "microkernel.hpp"
#include "packing.hpp"
#include "scratch.hpp"
#include "work_split.hpp"
#include "../../config.hpp"

#if QTX_HAS_AVX512_VNNI && defined(__x86_64__) && !defined(__CUDACC__) && \
    ((defined(__clang__) && __clang_major__ >= 12) || (!defined(__clang__) && defined(__GNUC__) && __GNUC__ >= 11))
/// 1 when the avx512_vnni int8 GEMM has its AMX path compiled (it still runs only where the CPU has AMX).
#define QTX_HAS_AMX_KERNEL 1
#else
#define QTX_HAS_AMX_KERNEL 0
#endif

#if QTX_HAS_AMX_KERNEL
#include <unistd.h>  // sysconf: the cache sizes
#endif

namespace qtx::QTX_ABI::cpu::gemm_detail {

#if QTX_HAS_AMX_KERNEL

inline constexpr int amx_block_rows = 32;      // rows of A per block: two 16-row tiles
inline constexpr int amx_tile_rows = 16;
inline constexpr int amx_step_bytes = 64;      // k per step = bytes of one tile row
inline constexpr int amx_step_groups = 16;     // k-groups of 4 per step = rows of a B tile
inline constexpr int amx_panel_columns = 64;   // the avx512_vnni int8 panel width
inline constexpr int amx_b_row_bytes = amx_panel_columns * 4;
inline constexpr int amx_a_slab_bytes = amx_block_rows * amx_step_bytes;   // A of one k step of a block
inline constexpr int amx_b_step_bytes = amx_step_groups * amx_b_row_bytes;  // B of one k step of a panel
// Fewer rows than this take the vector kernel: a block is 32 rows whatever M is, and below 8 the
// vector kernel's decode rows (B pinned in registers, no packing) measured faster.
inline constexpr index_t amx_min_rows = 8;

// The L2 size of the core this runs on (glibc's sysconf reads CPUID), 1 MiB where unknown.
inline std::size_t amx_l2_bytes() {
  static const std::size_t bytes = [] {
#if defined(_SC_LEVEL2_CACHE_SIZE)
    const long l2 = sysconf(_SC_LEVEL2_CACHE_SIZE);
#else
    const long l2 = 0;
#endif
    return l2 > 0 ? std::size_t(l2) : std::size_t(1) << 20;
  }();
  return bytes;
}

// The configuration this path serves: the avx512_vnni int8 one (64-column panels of 4-byte k-groups).
template <class Config>
inline constexpr bool amx_serves =
    std::is_same_v<typename Config::dot, dot_u8s8_vnni<simd512>> && Config::nr == amx_panel_columns;

// LDTILECFG's 64-byte operand (palette 1): every tile used is 16 rows × 64 bytes.
struct alignas(64) amx_tile_config {
  uint8_t palette = 1, start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t bytes_per_row[16] = {};
  uint8_t rows[16] = {};
};

#define QTX_AMX_TARGET __attribute__((target("amx-tile,amx-int8")))

QTX_AMX_TARGET inline void amx_configure_tiles() {
  amx_tile_config config;
  for (int t = 0; t < 8; ++t) config.bytes_per_row[t] = amx_step_bytes, config.rows[t] = amx_tile_rows;
  // Not _tile_loadconfig: GCC 12's passes an 8-byte memory operand, so the compiler drops the stores
  // of the other 56 bytes as dead (tiles then fault as unconfigured). This operand is the whole object.
  asm volatile("ldtilecfg %0" : : "m"(config));
}
QTX_AMX_TARGET inline void amx_release_tiles() { _tile_release(); }

// Sums of one block (RowTiles × 16 rows) × one panel (64 columns) over `steps` k steps into
// sums[row · 64 + column]. Tiles: C 0–3, A 4–5, B 6–7. b_last is the last step's B (in place or
// the zero-padded copy).
template <int RowTiles>
QTX_AMX_TARGET void amx_block_sums(const uint8_t* a, index_t steps, const int8_t* b, const int8_t* b_last,
                                   int32_t* sums) {
  constexpr int half_bytes = 32 * 4, tile_bytes = 16 * 4;  // 32 / 16 columns of 4-byte k-groups
  constexpr int c_stride = amx_panel_columns * int(sizeof(int32_t));
  for (int half = 0; half < 2; ++half) {
    _tile_zero(0);
    _tile_zero(1);
    if constexpr (RowTiles == 2) {
      _tile_zero(2);
      _tile_zero(3);
    }
    for (index_t s = 0; s < steps; ++s) {
      const int8_t* bs = (s + 1 == steps ? b_last : b + s * amx_b_step_bytes) + half * half_bytes;
      const uint8_t* as = a + s * amx_a_slab_bytes;
      _tile_loadd(6, bs, amx_b_row_bytes);
      _tile_loadd(7, bs + tile_bytes, amx_b_row_bytes);
      _tile_loadd(4, as, amx_step_bytes);
      _tile_dpbusd(0, 4, 6);
      _tile_dpbusd(1, 4, 7);
      if constexpr (RowTiles == 2) {
        _tile_loadd(5, as + amx_tile_rows * amx_step_bytes, amx_step_bytes);
        _tile_dpbusd(2, 5, 6);
        _tile_dpbusd(3, 5, 7);
      }
    }
    int32_t* c = sums + half * 32;
    _tile_stored(0, c, c_stride);
    _tile_stored(1, c + 16, c_stride);
    if constexpr (RowTiles == 2) {
      _tile_stored(2, c + amx_tile_rows * amx_panel_columns, c_stride);
      _tile_stored(3, c + amx_tile_rows * amx_panel_columns + 16, c_stride);
    }
  }
}

// Rows [m0, m0 + 32) of A (fewer at the end, zeros after) into `steps` slabs of 32 × 64 bytes,
// zero-padded past K, and row_sums[i] = Σ_k A(m0 + i, k) (for the zero-point correction) in the
// same pass: one masked load, one store and one vpsadbw per row and step, nothing cleared first.
// (Replacing memset + memcpy + a separate row-sum loop took attention's W8A8 core at T = 128 from
// 0.29–0.31 to 0.25–0.27 ms.)
inline void amx_pack_block(matrix_view<const uint8_t> a, index_t m0, index_t steps, uint8_t* dst, int32_t* row_sums) {
  const index_t rows = std::min<index_t>(amx_block_rows, a.rows - m0), K = a.cols;
  alignas(64) uint8_t strided[amx_step_bytes];
  for (index_t i = 0; i < amx_block_rows; ++i) {
    __m512i sums = _mm512_setzero_si512();  // Σ bytes in 64-bit lanes (vpsadbw against zero)
    for (index_t s = 0; s < steps; ++s) {
      const index_t k0 = s * amx_step_bytes, depth = std::min<index_t>(amx_step_bytes, K - k0);
      const __mmask64 in_k = depth >= 64 ? ~__mmask64(0) : (__mmask64(1) << depth) - 1;
      __m512i v = _mm512_setzero_si512();
      if (i < rows) {
        const uint8_t* src = a.row(m0 + i) + k0 * a.col_stride;
        if (a.col_stride != 1) {
          for (index_t k = 0; k < depth; ++k) strided[k] = src[k * a.col_stride];
          src = strided;
        }
        v = _mm512_maskz_loadu_epi8(in_k, src);
      }
      _mm512_storeu_si512(dst + s * amx_a_slab_bytes + i * amx_step_bytes, v);
      sums = _mm512_add_epi64(sums, _mm512_sad_epu8(v, _mm512_setzero_si512()));
    }
    if (i < rows) {
      alignas(64) int64_t lanes[8];
      _mm512_store_si512(lanes, sums);
      row_sums[i] = int32_t(lanes[0] + lanes[1] + lanes[2] + lanes[3] + lanes[4] + lanes[5] + lanes[6] + lanes[7]);
    }
  }
}

template <class Config, class TC, class Pipeline>
void run_gemm_amx(matrix_view<const uint8_t> a, const packed_panels<Config>& b, matrix_view<TC> c, const Pipeline& ep,
                  int32_t a_zero_point) {
  constexpr int nr = Config::nr, nv = nr / simd512::lanes;
  const index_t M = c.rows, N = c.cols, K = a.cols;
  const index_t steps = (b.groups + amx_step_groups - 1) / amx_step_groups;
  const index_t last_step_groups = b.groups - (steps - 1) * amx_step_groups;
  const index_t row_blocks = (M + amx_block_rows - 1) / amx_block_rows;
  const index_t block_bytes = steps * amx_a_slab_bytes;

  const index_t threads = M * N * K < parallel_gemm_threshold ? 1 : max_threads();
  const work_split split = split_rows_first(row_blocks, b.panels, threads);
  const index_t parts = split.row_parts * split.col_parts;

  const scratch_use<workspace<uint8_t>> scratch;
  workspace<uint8_t>& ws = scratch.ws;
  // Packed A, then (when K ends inside a step) each panel's last step zero-padded to 16 k-groups.
  const bool b_tails = last_step_groups < amx_step_groups;
  ws.a.reserve(row_blocks * block_bytes + (b_tails ? b.panels * amx_b_step_bytes : 0));
  ws.row_offsets.reserve(M);
  int32_t* all_sums = ws.template partials<int32_t>(parts * amx_block_rows * nr);
  int8_t* tails = reinterpret_cast<int8_t*>(ws.a.data() + row_blocks * block_bytes);
  const index_t last_step_offset = (steps - 1) * amx_b_step_bytes;
  if (b_tails) {
    std::memset(tails, 0, std::size_t(b.panels * amx_b_step_bytes));
    for (index_t p = 0; p < b.panels; ++p)
      std::memcpy(tails + p * amx_b_step_bytes, b.panel(p) + last_step_offset,
                  std::size_t(last_step_groups * amx_b_row_bytes));
  }

  const int32_t k_za_zb = k_za_zb_term(K, a_zero_point, b.zero_point);
  const bool zero_points = a_zero_point != 0 || b.zero_point != 0;
  auto pack = [&](index_t block) {
    const index_t m0 = block * amx_block_rows, m1 = std::min(M, m0 + amx_block_rows);
    amx_pack_block(a, m0, steps, ws.a.data() + block * block_bytes, ws.row_offsets.data() + m0);
    for (index_t m = m0; m < m1; ++m)
      ws.row_offsets[m] = b.zero_point == 0 ? k_za_zb : zero_point_row_offset(k_za_zb, b.zero_point, ws.row_offsets[m]);
  };
  if (threads > 1)
    parallel_for(0, row_blocks, pack);
  else
    for (index_t block = 0; block < row_blocks; ++block) pack(block);

  // A block (32 rows × K) is reused across the panels of a slice from L1; the slice (panels whose
  // K × 64 bytes fill half of L2) across the blocks from L2.
  const index_t panels_per_slice = std::max<index_t>(1, index_t(amx_l2_bytes() / 2) / (b.groups * amx_b_row_bytes));
  parallel_for(0, parts, [&](index_t part) {
    const auto [rb_begin, rb_end] = part_range(row_blocks, split.row_parts, part / split.col_parts);
    const auto [p_begin, p_end] = part_range(b.panels, split.col_parts, part % split.col_parts);
    int32_t* sums = all_sums + part * amx_block_rows * nr;
    amx_configure_tiles();
    for (index_t slice = p_begin; slice < p_end; slice += panels_per_slice) {
      const index_t slice_end = std::min(slice + panels_per_slice, p_end);
      for (index_t block = rb_begin; block < rb_end; ++block) {
        const index_t m0 = block * amx_block_rows;
        const int rows = int(std::min<index_t>(amx_block_rows, M - m0));
        const uint8_t* a_block = ws.a.data() + block * block_bytes;
        for (index_t p = slice; p < slice_end; ++p) {
          const int8_t* panel = b.panel(p);
          const int8_t* b_last = b_tails ? tails + p * amx_b_step_bytes : panel + last_step_offset;
          if (rows > amx_tile_rows)
            amx_block_sums<2>(a_block, steps, panel, b_last, sums);
          else
            amx_block_sums<1>(a_block, steps, panel, b_last, sums);
          // + row_offsets[m] − za·column_sums[n], wrapping as the vector kernel's start values do (a pass
          // of its own: measured faster than adding it inside store_tile). Nothing to add without zero
          // points (symmetric weights and A quantized per row, whose zero points an epilogue stage takes).
          const index_t n0 = p * nr;
          if (zero_points) {
            using V = simd512;
            V::vint column_terms[nv];
            for (int j = 0; j < nv; ++j)
              column_terms[j] =
                  V::mullo(V::load_full(b.column_sums.data() + n0 + j * V::lanes), V::set1(-a_zero_point));
            for (int i = 0; i < rows; ++i) {
              const V::vint offset = V::set1(ws.row_offsets[m0 + i]);
              for (int j = 0; j < nv; ++j) {
                int32_t* v = sums + i * nr + j * V::lanes;
                V::store_full(v, V::add(V::load_full(v), V::add(offset, column_terms[j])));
              }
            }
          }
          store_tile<simd512, nv>(sums, rows, tile_store<TC, Pipeline>{c, &ep, m0, n0, std::min<index_t>(nr, N - n0)});
        }
      }
    }
    amx_release_tiles();
  });
}

#undef QTX_AMX_TARGET

#endif  // QTX_HAS_AMX_KERNEL

}  // namespace qtx::cpu::gemm_detail

#pragma once
// Packing into the exact order the microkernel reads (microkernel.hpp):
//
//   B (weights, once):  panels of NR columns; panel p holds groups × NR × kg elements, k-group
//                       major: [g][column][kk]. K is padded with zeros to a whole k-group, N to a
//                       whole panel, so the kernel never branches on either and never reads past
//                       the user's matrix. The column sums Σ_k B(k, n) are kept for the zero-point
//                       correction.
//   A (activations, per call, when it cannot be read in place, see vector.hpp): blocks of up to
//                       MR rows; a block of r rows holds groups × r × kg elements, [g][row][kk],
//                       so each k-group step broadcasts one 32-bit lane per row. Row sums are
//                       taken in the same pass when B has a zero point.
//
// uint8 B (attention operands) is stored as b − 128 in int8 with zero point zb − 128: the
// products (a − za)(b − zb) are unchanged.
//
// AVX2 int8 has two layouts (blocking.hpp): B widened to int16 for vpmaddwd, exact for any B, or
// B as int8 for vpmaddubsw, exact only when no pair of B values can saturate it; packing checks
// every pair and picks the narrow layout whenever it is exact, so the choice never shows in C.
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "../../core/buffer.hpp"
#include "../../core/view.hpp"
#include "blocking.hpp"
#include "../../config.hpp"

namespace qtx::QTX_ABI::cpu::gemm_detail {

template <class Config>
struct packed_panels;

// The narrow layout of a configuration that has one (AVX2 int8: s8 B for vpmaddubsw), held beside
// the main one; in use when B's k pairs are saturation-safe. Empty for every other configuration.
template <class Config>
struct narrow_layout {};
template <has_narrow_layout Config>
struct narrow_layout<Config> {
  bool in_use = false;
  packed_panels<typename Config::narrow> panels;
};

template <class Config>
struct packed_panels {
  using config = Config;
  using elem = typename Config::b_elem;
  index_t k = 0, n = 0;
  int32_t zero_point = 0;
  index_t groups = 0, panels = 0;
  aligned_buffer<elem> values;          // panels × groups × NR × kg
  aligned_buffer<int32_t> column_sums;  // panels × NR, zero in the padding (integer B only)
  [[no_unique_address]] narrow_layout<Config> narrow;  // AVX2 int8: B in the vpmaddubsw layout instead, when safe

  const elem* panel(index_t p) const { return values.data() + p * groups * Config::nr * Config::kg; }
  /// Bytes held (the narrow layout's too), for the per-thread scratch bounds.
  std::size_t bytes() const {
    std::size_t held = std::size_t(values.size()) * sizeof(elem) + std::size_t(column_sums.size()) * sizeof(int32_t);
    if constexpr (has_narrow_layout<Config>) held += narrow.panels.bytes();
    return held;
  }
};

template <class TB>
inline constexpr int32_t unsigned_shift = std::is_same_v<TB, uint8_t> ? 128 : 0;

// vpmaddubsw sums two u8·s8 products into a saturating int16: exact for every A in [0, 255] when
// |b₀| + |b₁| ≤ 128 (255·128 = 32640) for the stored b of each pair (k, k+1), k even — the pairs
// the narrow layout puts side by side. A K tail pairs with a zero.
template <class TB>
bool pairs_saturation_safe(matrix_view<const TB> b) {
  constexpr int32_t shift = unsigned_shift<TB>;
  for (index_t k = 0; k < b.rows; k += 2)
    for (index_t n = 0; n < b.cols; ++n) {
      const int32_t b0 = int32_t(b(k, n)) - shift, b1 = k + 1 < b.rows ? int32_t(b(k + 1, n)) - shift : 0;
      if ((b0 < 0 ? -b0 : b0) + (b1 < 0 ? -b1 : b1) > 128) return false;
    }
  return true;
}

// Elements of B (K × N) packed for Config: whole panels of whole k-groups.
template <class Config>
constexpr index_t packed_count(index_t k, index_t n) {
  return (n + Config::nr - 1) / Config::nr * ((k + Config::kg - 1) / Config::kg) * Config::nr * Config::kg;
}

// The VNNI / AMX layouts hold four consecutive k of one column in a 32-bit lane (int8, kg = 4).
template <class Config>
inline constexpr bool byte_quad_layout =
    Config::integer && Config::kg == 4 && sizeof(typename Config::b_elem) == 1;

// B into a byte-quad layout a 32-bit lane at a time, for the two shapes B takes in practice: rows
// contiguous (weights, attention's V) and columns contiguous (attention's Kᵀ, a transposed view).
// On attention's per-call K and V (T = 128, d = 64) it and the re-centring it absorbed went from
// ~42 % to ~10 % of the W8A8 core's time (perf, Intel Xeon). Every
// byte of p is written (padding included), so nothing is cleared first. uint8 B is stored as
// b xor 0x80 = b − 128 in int8.
template <class Config, class TB>
void pack_byte_quads(packed_panels<Config>& p, matrix_view<const TB> b) {
  constexpr int nr = Config::nr;
  constexpr int32_t shift = unsigned_shift<TB>;
  constexpr uint32_t flip = shift ? 0x80808080u : 0u;
  const index_t full_groups = b.rows / 4, depth_tail = b.rows - full_groups * 4;
  auto byte = [&](index_t k, index_t n) { return uint32_t(uint8_t(int32_t(b(k, n)) - shift)); };
  for (index_t panel = 0; panel < p.panels; ++panel) {
    uint8_t* dst = reinterpret_cast<uint8_t*>(p.values.data() + panel * p.groups * nr * 4);
    const index_t n0 = panel * nr, columns = b.cols - n0 < nr ? b.cols - n0 : nr;
    auto lane = [&](index_t g, index_t c) { return dst + (g * nr + c) * 4; };
    if (b.row_stride == 1) {  // column n is contiguous: each lane is one 32-bit load
      for (index_t c = 0; c < columns; ++c) {
        const TB* column = &b(0, n0 + c);
        for (index_t g = 0; g < full_groups; ++g) {
          uint32_t word;
          std::memcpy(&word, column + 4 * g, 4);
          word ^= flip;
          std::memcpy(lane(g, c), &word, 4);
        }
        int32_t sum = 0;
        for (index_t k = 0; k < b.rows; ++k) sum += int32_t(column[k]);
        p.column_sums[n0 + c] = sum - shift * int32_t(b.rows);
      }
    } else {  // rows contiguous: four rows interleaved byte by byte
      for (index_t g = 0; g < full_groups; ++g) {
        const auto* r0 = reinterpret_cast<const uint8_t*>(b.row(4 * g) + n0);
        const uint8_t* r1 = r0 + b.row_stride * sizeof(TB);
        const uint8_t* r2 = r1 + b.row_stride * sizeof(TB);
        const uint8_t* r3 = r2 + b.row_stride * sizeof(TB);
        for (index_t c = 0; c < columns; ++c) {
          const uint32_t word =
              (uint32_t(r0[c]) | uint32_t(r1[c]) << 8 | uint32_t(r2[c]) << 16 | uint32_t(r3[c]) << 24) ^ flip;
          std::memcpy(lane(g, c), &word, 4);
        }
      }
      for (index_t c = 0; c < columns; ++c) p.column_sums[n0 + c] = 0;
      for (index_t k = 0; k < b.rows; ++k) {
        const TB* row = b.row(k) + n0;
        for (index_t c = 0; c < columns; ++c) p.column_sums[n0 + c] += int32_t(row[c]) - shift;
      }
    }
    for (index_t c = 0; c < columns; ++c) {  // the K tail: a partial lane, zero-padded
      if (depth_tail == 0) break;
      uint32_t word = 0;
      for (index_t kk = 0; kk < depth_tail; ++kk) word |= byte(4 * full_groups + kk, n0 + c) << (8 * kk);
      std::memcpy(lane(full_groups, c), &word, 4);
    }
    for (index_t g = 0; g < p.groups; ++g) std::memset(lane(g, columns), 0, std::size_t(nr - columns) * 4);
    for (index_t c = columns; c < nr; ++c) p.column_sums[n0 + c] = 0;
  }
}

// How pack_panels_into treats p's storage.
enum class storage_use {
  fresh,   // p is new (weights, packed once): allocate the layout used, nothing more
  reused,  // p is packed again and again (attention's K and V): keep every layout allocated, so
           // that a warm caller allocates nothing whichever layout the next operand takes
};

// Packs b into p, reusing p's storage when it is large enough (so a caller that packs operands of
// the same size again, like attention's K and V, allocates nothing once warm). The padding is
// zeroed with the rest: the kernel reads it.
template <class Config, class TB>
void pack_panels_into(packed_panels<Config>& p, matrix_view<const TB> b, int32_t b_zero_point,
                      storage_use storage = storage_use::reused) {
  using elem = typename Config::b_elem;
  constexpr int nr = Config::nr, kg = Config::kg;
  constexpr int32_t shift = unsigned_shift<TB>;
  p.k = b.rows;
  p.n = b.cols;
  p.zero_point = b_zero_point - shift;
  p.groups = (b.rows + kg - 1) / kg;
  p.panels = (b.cols + nr - 1) / nr;
  const index_t count = packed_count<Config>(b.rows, b.cols);
  if constexpr (has_narrow_layout<Config>) {
    // One layout is packed (a B packed per call, like attention's K and V, pays for one pass).
    p.narrow.in_use = pairs_saturation_safe(b);
    if (p.narrow.in_use) {
      if (storage == storage_use::reused) p.values.reserve(count), p.column_sums.reserve(p.panels * nr);
      return pack_panels_into(p.narrow.panels, b, b_zero_point, storage);
    }
    if (storage == storage_use::reused) {
      p.narrow.panels.values.reserve(packed_count<typename Config::narrow>(b.rows, b.cols));
      p.narrow.panels.column_sums.reserve(p.panels * nr);  // the same panel width (blocking.hpp)
    }
  }
  p.values.reserve(count);
  if constexpr (byte_quad_layout<Config>) {
    if (b.row_stride == 1 || b.col_stride == 1) {
      p.column_sums.reserve(p.panels * nr);
      return pack_byte_quads(p, b);
    }
  }
  if (count > 0) std::memset(static_cast<void*>(p.values.data()), 0, std::size_t(count) * sizeof(elem));
  if constexpr (Config::integer) {
    p.column_sums.reserve(p.panels * nr);
    if (p.panels > 0) std::memset(p.column_sums.data(), 0, std::size_t(p.panels * nr) * sizeof(int32_t));
  }

  for (index_t panel = 0; panel < p.panels; ++panel) {
    elem* dst = p.values.data() + panel * p.groups * nr * kg;
    const index_t n0 = panel * nr, columns = b.cols - n0 < nr ? b.cols - n0 : nr;
    for (index_t g = 0; g < p.groups; ++g) {
      const index_t k0 = g * kg, depth = b.rows - k0 < kg ? b.rows - k0 : kg;
      for (index_t c = 0; c < columns; ++c) {
        for (index_t kk = 0; kk < depth; ++kk) {
          if constexpr (Config::integer) {
            const int32_t v = int32_t(b(k0 + kk, n0 + c)) - shift;
            dst[(g * nr + c) * kg + kk] = elem(v);
            p.column_sums[n0 + c] += v;
          } else {
            dst[(g * nr + c) * kg + kk] = b(k0 + kk, n0 + c);
          }
        }
      }
    }
  }
}

template <class Config, class TB>
packed_panels<Config> pack_panels(matrix_view<const TB> b, int32_t b_zero_point) {
  packed_panels<Config> p;
  pack_panels_into(p, b, b_zero_point, storage_use::fresh);
  return p;
}

// The integer sums of row m start at K·za·zb − zb·Σ_k A(m, k) (vector.hpp), in wrapping int32 arithmetic:
// the true sums fit, since ops/ bounds K.
inline int32_t k_za_zb_term(index_t k, int32_t a_zero_point, int32_t b_zero_point) {
  return int32_t(int64_t(k) * a_zero_point * b_zero_point);
}
inline int32_t zero_point_row_offset(int32_t k_za_zb, int32_t b_zero_point, int32_t a_row_sum) {
  return int32_t(uint32_t(k_za_zb) - uint32_t(b_zero_point) * uint32_t(a_row_sum));
}

template <class TA>
int32_t row_sum(matrix_view<const TA> a, index_t m) {
  int32_t sum = 0;
  for (index_t k = 0; k < a.cols; ++k) sum += int32_t(a(m, k));
  return sum;
}

// Rows [m0, m0 + rows) of A into dst ([g][row][kk], zero-padded past K). When row_sums is not
// null, row_sums[i] = Σ_k A(m0 + i, k).
template <class Config, class TA>
void pack_rows(matrix_view<const TA> a, index_t m0, int rows, index_t groups, typename Config::a_elem* dst,
               int32_t* row_sums) {
  using elem = typename Config::a_elem;
  constexpr int kg = Config::kg;
  const index_t full_groups = a.cols / kg, tail = a.cols - full_groups * kg;
  auto pack = [&](auto col_stride) {
    for (int i = 0; i < rows; ++i) {
      const TA* src = a.row(m0 + i);
      elem* out = dst + i * kg;
      if constexpr (std::is_same_v<decltype(col_stride), std::integral_constant<index_t, 1>> &&
                    std::is_same_v<elem, TA>) {
        // The common case: one 32-bit move per k-group (measured 3× faster than element-wise).
        for (index_t g = 0; g < full_groups; ++g) std::memcpy(out + g * rows * kg, src + g * kg, kg * sizeof(elem));
      } else {
        for (index_t g = 0; g < full_groups; ++g)
          for (int kk = 0; kk < kg; ++kk) out[g * rows * kg + kk] = elem(src[(g * kg + kk) * col_stride]);
      }
      for (index_t g = full_groups; g < groups; ++g)
        for (int kk = 0; kk < kg; ++kk)
          out[g * rows * kg + kk] = kk < tail ? elem(src[(g * kg + kk) * col_stride]) : elem(0);
      if (row_sums) row_sums[i] = row_sum(a, m0 + i);
    }
  };
  if (a.col_stride == 1)
    pack(std::integral_constant<index_t, 1>{});
  else
    pack(a.col_stride);
}

}  // namespace qtx::cpu::gemm_detail

// Host-side logic of the CUDA backend, checked on the CPU (no GPU, no nvcc): tile shapes and the
// tile heuristic, grids, packing layout, the zero-point identity, row/attention launch math and
// every argument check of the CUDA front.
#include <catch2/catch.hpp>

#include <cstdint>
#include <random>
#include <vector>

#include <qtx/cuda/arch.hpp>
#include <qtx/cuda/arguments.hpp>
#include <qtx/cuda/launch_params.hpp>
#include <qtx/cuda/packing.hpp>

using namespace qtx;
using namespace qtx::cuda;

TEST_CASE("cuda tags fall back along inheritance", "[cuda_host]") {
  STATIC_REQUIRE(std::is_base_of_v<sm80, sm90>);
  STATIC_REQUIRE(sm90::compute_capability == 90);
}

TEST_CASE("gemm tile shapes are consistent", "[cuda_host]") {
  for (int i = 0; i < gemm_tile_count; ++i) {
    const gemm_tile_shape s = shape_of(static_cast<gemm_tile>(i));
    CHECK(s.valid());
    CHECK(s.threads() % warp_size == 0);
    CHECK(s.threads() <= 1024);
    CHECK(s.smem_bytes() <= 227 * 1024);
    CHECK(s.mma_tiles_n() % 2 == 0);  // B fragments are loaded two n8 blocks at a time
  }
  const gemm_tile_shape big = shape_of(gemm_tile::t128x128);
  CHECK(big.threads() == 128);
  CHECK(big.smem_pitch_bytes() == 80);
  CHECK(big.smem_bytes() == 4 * 256 * 80);
  CHECK_FALSE(gemm_tile_shape{128, 128, 64, 64, 1, 64}.valid());   // one stage cannot pipeline
  CHECK_FALSE(gemm_tile_shape{128, 128, 64, 24, 3, 64}.valid());   // warp_n not a multiple of 16
  CHECK_FALSE(gemm_tile_shape{128, 128, 64, 64, 3, 48}.valid());   // K tile not whole mma steps
}

TEST_CASE("gemm tile heuristic fills the SMs with the largest tile it can", "[cuda_host]") {
  constexpr int h100_sms = 132;
  CHECK(select_gemm_tile(8192, 4096, h100_sms) == gemm_tile::t128x128);
  CHECK(select_gemm_tile(2048, 1152, h100_sms) == gemm_tile::t128x128);  // 16·9 = 144 CTAs
  CHECK(select_gemm_tile(1024, 1152, h100_sms) == gemm_tile::t64x128);   // 8·9 = 72 → 16·9 = 144
  CHECK(select_gemm_tile(128, 768, h100_sms) == gemm_tile::t64x64);      // too small for any: smallest
  CHECK(select_gemm_tile(1, 1, 1) == gemm_tile::t128x128);
  CHECK(gemm_ctas(gemm_tile::t64x64, 65, 65) == 4);
  const grid_2d g = gemm_grid(gemm_tile::t64x128, 130, 129);
  CHECK(g.x == 2);  // N
  CHECK(g.y == 3);  // M
}

TEST_CASE("packed K and the cp.async alignment rule", "[cuda_host]") {
  CHECK(packed_k(1, 1) == 32);
  CHECK(packed_k(32, 1) == 32);
  CHECK(packed_k(33, 1) == 64);
  CHECK(packed_k(33, 2) == 48);
  CHECK(packed_k(0, 1) == 0);
  alignas(16) static uint8_t buffer[256];
  CHECK(cp_async_compatible(buffer, 4, 32, 1, 1));
  CHECK_FALSE(cp_async_compatible(buffer + 1, 4, 32, 1, 1));
  CHECK_FALSE(cp_async_compatible(buffer, 4, 33, 1, 1));
  CHECK(cp_async_compatible(buffer, 1, 33, 1, 1));  // one row: the stride is never used
  CHECK(cp_async_compatible(buffer, 4, 8, 1, 2));   // 8 fp16 = 16 bytes
  CHECK_FALSE(cp_async_compatible(buffer, 4, 32, 2, 1));
}

TEST_CASE("cuda packing: N × K_padded, zero padding, column sums", "[cuda_host]") {
  std::mt19937 rng(3);
  std::uniform_int_distribution<int> dist(-128, 127);
  for (index_t k : {1, 31, 32, 33, 100}) {
    const index_t n = 7;
    std::vector<int8_t> b(std::size_t(k * n * 2));
    for (auto& x : b) x = int8_t(dist(rng));
    // A strided view: every other column of a (K, 2N) matrix.
    const matrix_view<const int8_t> view{b.data(), k, n, 2 * n, 2};
    const auto p = pack_b_host(view, 5);
    REQUIRE(p.k_padded == packed_k(k, 1));
    REQUIRE(p.values.size() == std::size_t(n * p.k_padded));
    CHECK(p.zero_point == 5);
    for (index_t j = 0; j < n; ++j) {
      int32_t sum = 0;
      for (index_t kk = 0; kk < p.k_padded; ++kk) {
        const int8_t expected = kk < k ? view(kk, j) : int8_t(0);
        CHECK(p.values[std::size_t(j * p.k_padded + kk)] == expected);
        if (kk < k) sum += view(kk, j);
      }
      CHECK(p.column_sums[std::size_t(j)] == sum);
    }
  }
  const std::vector<uint16_t> halves(6, 0x3c00);  // 16-bit payloads are copied bit for bit
  const auto p16 = pack_b_host(matrix_view<const uint16_t>{halves.data(), 3, 2, 2, 1}, 0);
  CHECK(p16.k_padded == 16);
  CHECK(p16.values[0] == 0x3c00);
  CHECK(p16.values[3] == 0);
}

TEST_CASE("zero-point identity matches the direct sum, modulo 2^32 included", "[cuda_host]") {
  std::mt19937 rng(11);
  std::uniform_int_distribution<int> u8(0, 255), s8(-128, 127);
  for (int trial = 0; trial < 200; ++trial) {
    const int32_t k = trial < 2 ? int32_t(ops::int8_gemm_max_k) : 1 + trial % 97;
    const int32_t za = trial == 0 ? 0 : u8(rng), zb = trial == 0 ? 127 : s8(rng);
    int32_t dot = 0, colsum = 0, rowsum = 0;
    int64_t direct = 0;
    for (int32_t i = 0; i < k; ++i) {
      const int32_t a = trial < 2 ? 255 : u8(rng), b = trial < 2 ? -128 : s8(rng);
      dot = int32_t(uint32_t(dot) + uint32_t(a * b));
      colsum += b;
      rowsum += a;
      direct += int64_t(a - za) * (b - zb);
    }
    REQUIRE(direct >= INT32_MIN);
    REQUIRE(direct <= INT32_MAX);
    CHECK(zero_point_correction(dot, colsum, rowsum, k, za, zb) == int32_t(direct));
  }
}

TEST_CASE("row kernel launch math", "[cuda_host]") {
  CHECK(row_kernel_threads(1) == 32);
  CHECK(row_kernel_threads(128) == 32);
  CHECK(row_kernel_threads(129) == 64);
  CHECK(row_kernel_threads(768) == 192);
  CHECK(row_kernel_threads(100000) == row_max_threads);
  CHECK(mask_row_group(24, 1) == 24);
  CHECK(mask_row_group(24, 3) == 8);
  CHECK(mask_row_group(24, 5) == 0);
  CHECK(mask_row_group(24, 0) == 0);
}

TEST_CASE("attention launch math: visible keys and KV tiles", "[cuda_host]") {
  CHECK(attention_visible_keys(0, 512, 512, false, 0) == 512);
  CHECK(attention_visible_keys(0, 512, 512, true, 0) == 64);     // rows 0..63 see keys 0..63
  CHECK(attention_visible_keys(448, 512, 512, true, 0) == 512);
  CHECK(attention_visible_keys(0, 7, 100, true, 93) == 100);     // decoding with a KV cache
  CHECK(attention_visible_keys(0, 7, 100, true, -10) == 0);      // nothing visible: zero output
  CHECK(attention_visible_keys(0, 130, 200, true, 0) == 64);
  CHECK(attention_kv_tiles(0) == 0);
  CHECK(attention_kv_tiles(64) == 1);
  CHECK(attention_kv_tiles(65) == 2);
  CHECK(attention_smem_bytes(64, 2) == (64 + 4 * 64) * 144);
  CHECK(attention_head_dim_supported(64));
  CHECK_FALSE(attention_head_dim_supported(48));
}

TEST_CASE("cuda gemm argument checks", "[cuda_host]") {
  alignas(16) static uint8_t a[64 * 64];
  static int32_t c[64 * 64];
  const matrix_view<const uint8_t> av{a, 16, 32, 32, 1};
  const matrix_view<int32_t> cv{c, 16, 8, 8, 1};
  CHECK_NOTHROW(check_gemm_arguments(av, 32, 8, 0, cv, 7));
  CHECK_THROWS_AS(check_gemm_arguments(av, 31, 8, 0, cv, 7), qtx::error);                    // K mismatch
  CHECK_THROWS_AS(check_gemm_arguments(av, 32, 9, 0, cv, 7), qtx::error);                    // N mismatch
  CHECK_THROWS_AS(check_gemm_arguments(av, 32, 8, 0, cv, 256), qtx::error);                  // a_zp range
  CHECK_THROWS_AS(check_gemm_arguments(av, 32, 8, 0, cv, -1), qtx::error);
  CHECK_THROWS_AS(check_gemm_arguments(matrix_view<const uint8_t>{a, 16, 32, 1, 16}, 32, 8, 0, cv, 0), qtx::error);
  CHECK_THROWS_AS(check_gemm_arguments(av, 32, 8, 0, matrix_view<int32_t>{c, 16, 8, 8, 2}, 0), qtx::error);
  CHECK_THROWS_AS(check_gemm_arguments(av, 32, 8, 0, matrix_view<int32_t>{c, 16, 8, 4, 1}, 0), qtx::error);
  CHECK_THROWS_AS(check_gemm_arguments(matrix_view<const uint8_t>{nullptr, 16, 32, 32, 1}, 32, 8, 0, cv, 0),
                  qtx::error);
  const matrix_view<const uint8_t> deep{a, 16, ops::int8_gemm_max_k + 1, 0, 1};
  CHECK_THROWS_AS(check_gemm_arguments(deep, deep.cols, 8, 0, cv, 0), qtx::error);
  const matrix_view<const uint16_t> half_a{reinterpret_cast<const uint16_t*>(a), 16, 32, 32, 1};
  const matrix_view<float> fc{reinterpret_cast<float*>(c), 16, 8, 8, 1};
  CHECK_NOTHROW(check_gemm_arguments(half_a, 32, 8, 0, fc, 0));
  CHECK_THROWS_AS(check_gemm_arguments(half_a, 32, 8, 0, fc, 3), qtx::error);  // zero point on float A
  CHECK_THROWS_AS(check_gemm_arguments(half_a, 32, 8, 1, fc, 0), qtx::error);
}

TEST_CASE("cuda softmax / layer norm / map argument checks", "[cuda_host]") {
  static float x[24 * 16], y[24 * 16], mask[3 * 16];
  static uint8_t q[24 * 16];
  const matrix_view<const float> xv{x, 24, 16, 16, 1};
  const matrix_view<float> yv{y, 24, 16, 16, 1};
  softmax_config cfg;
  CHECK_NOTHROW(check_softmax_arguments(xv, yv, cfg, {}, {}));
  CHECK_NOTHROW(check_softmax_arguments(xv, yv, cfg, matrix_view<const float>{mask, 3, 16, 16, 1}, {}));
  CHECK_THROWS_AS(check_softmax_arguments(xv, yv, cfg, matrix_view<const float>{mask, 5, 16, 16, 1}, {}), qtx::error);
  CHECK_THROWS_AS(check_softmax_arguments(xv, yv, cfg, matrix_view<const float>{mask, 3, 15, 16, 1}, {}), qtx::error);
  CHECK_THROWS_AS(check_softmax_arguments(xv, matrix_view<float>{y, 24, 15, 16, 1}, cfg, {}, {}), qtx::error);
  cfg.query_rows = 5;
  CHECK_THROWS_AS(check_softmax_arguments(xv, yv, cfg, {}, {}), qtx::error);
  cfg = {};
  cfg.gamma = 0.1f;
  CHECK_THROWS_AS(check_softmax_arguments(xv, yv, cfg, {}, {}), qtx::error);
  cfg = {};
  cfg.zeta = 0.5f;
  CHECK_THROWS_AS(check_softmax_arguments(xv, yv, cfg, {}, {}), qtx::error);
  const matrix_view<uint8_t> qv{q, 24, 16, 16, 1};
  CHECK_NOTHROW(check_softmax_arguments(xv, qv, {}, {}, quant_params{1.0f / 255, 0}));
  CHECK_THROWS_AS(check_softmax_arguments(xv, qv, {}, {}, quant_params{1.0f / 255, 300}), qtx::error);
  CHECK_THROWS_AS(check_softmax_arguments(xv, qv, {}, {}, quant_params{0.0f, 0}), qtx::error);

  CHECK_NOTHROW(check_layer_norm_arguments(xv, {}, x, x, 1e-5f, yv, {}));
  CHECK_THROWS_AS(check_layer_norm_arguments(xv, {}, nullptr, x, 1e-5f, yv, {}), qtx::error);
  CHECK_THROWS_AS(check_layer_norm_arguments(xv, {}, x, x, 0.0f, yv, {}), qtx::error);
  CHECK_THROWS_AS(check_layer_norm_arguments(xv, matrix_view<const float>{x, 23, 16, 16, 1}, x, x, 1e-5f, yv, {}),
                  qtx::error);
  CHECK_NOTHROW(check_map_arguments("gelu", xv, yv));
  CHECK_THROWS_AS(check_map_arguments("gelu", xv, matrix_view<float>{y, 16, 24, 24, 1}), qtx::error);
}

TEST_CASE("cuda attention argument checks", "[cuda_host]") {
  alignas(16) static uint16_t buffer[2 * 64 * 192 + 8];
  static float out[2 * 64 * 192], mask[2 * 64], gate[2 * 64 * 3];
  const batch_view<const uint16_t> qkv{buffer, 2, 64, 192, 64 * 192, 192, 1};
  const batch_view<float> o{out, 2, 64, 192, 64 * 192, 192, 1};
  attention_config cfg;
  cfg.n_heads = 3;  // d = 64
  CHECK_NOTHROW(check_attention_arguments(qkv, qkv, qkv, o, cfg, {}, {}));
  CHECK_NOTHROW(check_attention_arguments(qkv, qkv, qkv, o, cfg, matrix_view<const float>{mask, 2, 64, 64, 1},
                                          batch_view<const float>{gate, 2, 64, 3, 192, 3, 1}));
  CHECK_THROWS_AS(check_attention_arguments(qkv, qkv, qkv, o, cfg, matrix_view<const float>{mask, 3, 64, 64, 1}, {}),
                  qtx::error);
  CHECK_THROWS_AS(check_attention_arguments(qkv, qkv, qkv, o, cfg, {}, batch_view<const float>{gate, 2, 64, 2, 128, 2, 1}),
                  qtx::error);
  cfg.n_heads = 4;  // d = 48
  CHECK_THROWS_AS(check_attention_arguments(qkv, qkv, qkv, o, cfg, {}, {}), qtx::error);
  cfg.n_heads = 5;  // 192 % 5 != 0
  CHECK_THROWS_AS(check_attention_arguments(qkv, qkv, qkv, o, cfg, {}, {}), qtx::error);
  cfg.n_heads = 3;
  const batch_view<const uint16_t> shifted{buffer + 1, 2, 64, 192, 64 * 192, 192, 1};
  CHECK_THROWS_AS(check_attention_arguments(shifted, qkv, qkv, o, cfg, {}, {}), qtx::error);
  const batch_view<const uint16_t> odd_stride{buffer, 2, 64, 192, 64 * 192, 193, 1};
  CHECK_THROWS_AS(check_attention_arguments(qkv, odd_stride, qkv, o, cfg, {}, {}), qtx::error);
  const batch_view<const uint16_t> fewer_keys{buffer, 2, 32, 192, 64 * 192, 192, 1};
  CHECK_THROWS_AS(check_attention_arguments(qkv, qkv, fewer_keys, o, cfg, {}, {}), qtx::error);
  cfg.gamma = 0.5f;
  CHECK_THROWS_AS(check_attention_arguments(qkv, qkv, qkv, o, cfg, {}, {}), qtx::error);
}

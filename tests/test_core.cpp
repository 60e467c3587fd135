#include <catch2/catch.hpp>

#include "backends.hpp"

#include <qtx/core/arch.hpp>
#include <qtx/core/buffer.hpp>
#include <qtx/core/eigen.hpp>
#include <qtx/core/parallel.hpp>
#include <qtx/core/view.hpp>

#include <array>
#include <string>
#include <tuple>
#include <atomic>
#include <span>
#include <vector>

using qtx::index_t;

TEST_CASE("matrix_view indexes row-major data with strides and offsets", "[core][view]") {
  std::vector<int> data(20);
  for (int i = 0; i < 20; ++i) data[i] = i;
  auto v = qtx::make_view(data.data(), 3, 4, 5, 2);  // (3,4) inside a (4,5) buffer at offset 2
  CHECK(v(0, 0) == 2);
  CHECK(v(1, 0) == 7);
  CHECK(v(2, 3) == 2 + 10 + 3);
  auto blk = v.block(1, 1, 2, 2);
  CHECK(blk(0, 0) == 8);
  CHECK(blk(1, 1) == 14);
  auto t = v.transposed();
  CHECK(t.rows == 4);
  CHECK(t(3, 2) == v(2, 3));
  qtx::matrix_view<const int> cv = v;  // non-const converts to const
  CHECK(cv(2, 3) == 15);
}

TEST_CASE("make_view rejects bad shapes with messages naming the values", "[core][view]") {
  std::vector<float> data(12);
  CHECK_THROWS_AS(qtx::make_view(data.data(), -1, 3), qtx::error);
  CHECK_THROWS_WITH(qtx::make_view(data.data(), 3, 4, 2), Catch::Contains("row_stride (2)"));
  CHECK_THROWS_AS(qtx::make_view<float>(nullptr, 2, 2), qtx::error);
  CHECK_NOTHROW(qtx::make_view<float>(nullptr, 0, 5));
  std::span<float> s(data);
  CHECK_NOTHROW(qtx::make_view(s, 3, 4));
  CHECK_THROWS_WITH(qtx::make_view(s, 3, 4, 5), Catch::Contains("too small"));
  CHECK_THROWS_AS(qtx::make_view(s, 2, 4, 4, 5), qtx::error);
  // qtx::error is an std::invalid_argument
  CHECK_THROWS_AS(qtx::make_view(data.data(), 1, -2), std::invalid_argument);
}

TEST_CASE("batch_view addresses a stack of matrices", "[core][view]") {
  std::vector<int> data(2 * 3 * 4);
  for (int i = 0; i < 24; ++i) data[i] = i;
  auto b = qtx::make_batch_view(data.data(), 2, 3, 4);
  CHECK(b(1, 2, 3) == 23);
  CHECK(b[1](0, 0) == 12);
  CHECK(b[0].rows == 3);
}

TEST_CASE("views of Eigen matrices keep their layout", "[core][eigen]") {
  Eigen::Matrix<float, 3, 4, Eigen::RowMajor> rm;
  Eigen::Matrix<float, 3, 4, Eigen::ColMajor> cm;
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 4; ++c) rm(r, c) = cm(r, c) = float(10 * r + c);
  auto vr = qtx::view_of(rm);
  auto vc = qtx::view_of(cm);
  CHECK(vr.col_stride == 1);
  CHECK(vc.row_stride == 1);
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 4; ++c) {
      CHECK(vr(r, c) == rm(r, c));
      CHECK(vc(r, c) == cm(r, c));
    }
  std::array<float, 6> raw = {1, 2, 3, 4, 5, 6};
  auto vm = qtx::view_of(Eigen::Map<Eigen::Matrix<float, 2, 3, Eigen::RowMajor>>(raw.data()));
  CHECK(vm(1, 2) == 6);
  const Eigen::MatrixXf& constant = cm;
  auto vconst = qtx::view_of(constant.block(1, 1, 2, 2));
  CHECK(vconst(1, 1) == cm(2, 2));
}

TEST_CASE("aligned_buffer is 64-byte aligned, zeroed and movable", "[core][buffer]") {
  qtx::aligned_buffer<float> b(37);
  CHECK(reinterpret_cast<std::uintptr_t>(b.data()) % 64 == 0);
  CHECK(b.size() == 37);
  for (float v : b) CHECK(v == 0.0f);
  b[3] = 2.5f;
  qtx::aligned_buffer<float> moved = std::move(b);
  CHECK(moved[3] == 2.5f);
  CHECK(b.size() == 0);
  qtx::aligned_buffer<int> empty(0);
  CHECK(empty.data() == nullptr);
  CHECK_THROWS_AS(qtx::aligned_buffer<int>(-1), qtx::error);
}

TEST_CASE("parallel_for visits every index exactly once", "[core][parallel]") {
  for (index_t n : {0, 1, 2, 7, 1000}) {
    std::vector<std::atomic<int>> hits(static_cast<std::size_t>(n));
    qtx::parallel_for(0, n, [&](index_t i) { hits[static_cast<std::size_t>(i)]++; });
    for (auto& h : hits) CHECK(h.load() == 1);
  }
  CHECK(qtx::max_threads() >= 1);
}

namespace {
template <class... Tags>
void warn_uncompiled(std::tuple<Tags...>*) {
  ((Tags::compiled ? void() : [] { WARN(Tags::name() << ": not compiled into this build (its ISA flags are off); its tests are skipped"); }()), ...);
}
}  // namespace

TEST_CASE("the build reports the backends it compiled and its ISA key", "[core][arch]") {
  warn_uncompiled(static_cast<test_backends::all_cpu*>(nullptr));
  STATIC_REQUIRE(qtx::cpu::native::compiled);
  STATIC_REQUIRE(qtx::cpu::scalar::compiled);
  // The key names the level the compiler targets; it is the native tag's unless the flags hold
  // extensions no backend uses (AVX-512 without VNNI, AVX without AVX2).
  const std::string key = qtx::cpu::abi_name();
  INFO("abi " << key << ", native " << qtx::cpu::native::name());
  if (key != "abi_avx512" && key != "abi_avx") CHECK(key == std::string("abi_") + qtx::cpu::native::name());
  CHECK(qtx::cpu::supported<qtx::cpu::scalar>());
}

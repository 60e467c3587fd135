// io/: dtype conversions, the safetensors reader and writer (round trips, every malformation the
// reader must reject, the fuzzer's seed corpus as regression cases) and the MiniLM weights when
// scripts/setup-minilm.sh has fetched them.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <qtx/io/safetensors.hpp>

#include "fuzz/exercise_safetensors.hpp"

namespace fs = std::filesystem;
using namespace qtx;
using io::dtype;

namespace {

const fs::path repo_root = fs::path(__FILE__).parent_path().parent_path();

fs::path minilm_dir() {
  if (const char* dir = std::getenv("QTX_MINILM_DIR")) return dir;
  return repo_root / "models" / "minilm";
}

std::vector<std::byte> bytes_of(std::string_view s) {
  const auto* p = reinterpret_cast<const std::byte*>(s.data());
  return {p, p + s.size()};
}

// A file with a hand-written header (unpadded) followed by `data_bytes` zero bytes.
std::vector<std::byte> raw_file(std::string_view header, std::size_t data_bytes) {
  std::vector<std::byte> file(8);
  for (std::size_t i = 0; i < 8; ++i) file[i] = static_cast<std::byte>(header.size() >> (8 * i));
  const auto h = bytes_of(header);
  file.insert(file.end(), h.begin(), h.end());
  file.resize(file.size() + data_bytes);
  return file;
}

// Loading must throw qtx::error whose message contains `fragment`.
void require_rejected(const std::vector<std::byte>& file, const std::string& fragment) {
  INFO("expected an error containing: " << fragment);
  REQUIRE_THROWS_WITH(io::safetensors_file::from_bytes(file), Catch::Contains(fragment));
}

// IEEE binary16 decoded from its definition, for comparison with the bit-twiddling conversion.
double f16_by_definition(std::uint16_t h) {
  const int sign = h >> 15, exponent = (h >> 10) & 0x1F, mantissa = h & 0x3FF;
  const double magnitude = exponent == 0 ? std::ldexp(mantissa, -24)
                                         : std::ldexp(1.0 + mantissa / 1024.0, exponent - 15);
  return sign ? -magnitude : magnitude;
}

}  // namespace

TEST_CASE("dtype: names, sizes, parse", "[io]") {
  for (const auto& entry : io::dtype_table) {
    REQUIRE(io::parse_dtype(entry.name) == entry.type);
    REQUIRE(io::name(entry.type) == entry.name);
  }
  REQUIRE(io::size_of(dtype::bf16) == 2);
  REQUIRE(io::size_of(dtype::i64) == 8);
  REQUIRE_FALSE(io::parse_dtype("F8_E4M3").has_value());
  REQUIRE_FALSE(io::parse_dtype("f32").has_value());
  STATIC_REQUIRE(io::dtype_of<float> == dtype::f32);
  STATIC_REQUIRE(io::dtype_of<std::int8_t> == dtype::i8);
  STATIC_REQUIRE_FALSE(io::has_dtype<bool>);
}

TEST_CASE("dtype: f16 → float is exact for all 65536 encodings", "[io]") {
  int mismatches = 0;
  for (std::uint32_t h = 0; h <= 0xFFFF; ++h) {
    const float got = io::f16_to_float(static_cast<std::uint16_t>(h));
    const int exponent = (h >> 10) & 0x1F, mantissa = h & 0x3FF;
    bool ok = std::signbit(got) == bool(h & 0x8000);  // -0 stays -0, NaN keeps its sign
    if (exponent == 0x1F)
      ok = ok && (mantissa != 0 ? std::isnan(got) : std::isinf(got));
    else
      ok = ok && static_cast<double>(got) == f16_by_definition(static_cast<std::uint16_t>(h));
    if (!ok && ++mismatches <= 5) WARN("f16 0x" << std::hex << h << " → " << got);
  }
  REQUIRE(mismatches == 0);
}

TEST_CASE("dtype: bf16 → float", "[io]") {
  REQUIRE(io::bf16_to_float(0x3F80) == 1.0f);
  REQUIRE(io::bf16_to_float(0xC040) == -3.0f);
  REQUIRE(io::bf16_to_float(0x0001) == std::ldexp(1.0f, -133));  // smallest subnormal
  REQUIRE(std::isinf(io::bf16_to_float(0x7F80)));
  REQUIRE(std::isnan(io::bf16_to_float(0x7FC0)));
}

TEST_CASE("safetensors: write → read round trip, every dtype and metadata", "[io]") {
  const std::vector<float> f32 = {1.5f, -2.0f, 0.25f, 3.0f, -0.0f, 1e-3f};  // (2,3)
  const std::vector<std::int8_t> i8 = {-128, 127, 0, 5};                    // (2,2)
  const std::vector<std::uint8_t> u8 = {0, 255, 7};
  const std::vector<std::int32_t> i32 = {-7, 1 << 30};
  const std::vector<std::int64_t> i64 = {-1, 1LL << 40, 3};  // (1,3)
  const std::vector<double> f64 = {2.5};                     // scalar
  const std::vector<std::uint16_t> f16 = {0x3C00, 0xC000, 0x0001, 0x7BFF};  // 1, -2, 2^-24, 65504
  const std::vector<std::uint16_t> bf16 = {0x3F80, 0x4049};
  std::vector<io::tensor_data> tensors = {
      io::make_tensor_data("w.f32", std::span(f32), {2, 3}),
      io::make_tensor_data("w.i8", std::span(i8), {2, 2}),
      io::make_tensor_data("u8", std::span(u8), {3}),
      io::make_tensor_data("i32", std::span(i32), {2}),
      io::make_tensor_data("ids", std::span(i64), {1, 3}),
      io::make_tensor_data("scalar", std::span(f64), {}),
      {"half", dtype::f16, {4}, std::as_bytes(std::span(f16))},
      {"brain", dtype::bf16, {2, 1}, std::as_bytes(std::span(bf16))},
      {"empty", dtype::f32, {0, 5}, {}},
  };
  const io::metadata_map metadata = {{"format", "pt"}, {"note", "qtx test ✓"}};

  const fs::path path = fs::temp_directory_path() / "qtx_test_io_roundtrip.safetensors";
  io::write_safetensors(path, tensors, metadata);
  const std::vector<std::byte> serialized = io::serialize_safetensors(tensors, metadata);
  REQUIRE(fs::file_size(path) == serialized.size());

  for (int from_file = 0; from_file < 2; ++from_file) {
    const auto file = from_file ? io::safetensors_file::open(path)
                                : io::safetensors_file::from_bytes(serialized);
    REQUIRE(file.size() == static_cast<index_t>(tensors.size()));
    REQUIRE(file.metadata() == metadata);
    for (const auto& t : tensors) {
      const io::tensor_info& got = file.at(t.name);
      REQUIRE(got.type == t.type);
      REQUIRE(got.shape == t.shape);
      REQUIRE(std::equal(got.bytes.begin(), got.bytes.end(), t.bytes.begin(), t.bytes.end()));
      // The writer's layout keeps every tensor aligned to its element size.
      REQUIRE(reinterpret_cast<std::uintptr_t>(got.bytes.data()) % io::size_of(got.type) == 0);
    }
    const auto m = file.matrix<float>("w.f32");
    REQUIRE((m.rows == 2 && m.cols == 3 && m.row_stride == 3));
    REQUIRE(m(1, 2) == 1e-3f);
    REQUIRE(file.matrix<std::int8_t>("w.i8")(0, 0) == -128);
    REQUIRE(file.values<std::int64_t>("ids")[1] == (1LL << 40));
    REQUIRE(file.at("scalar").numel() == 1);
    REQUIRE(file.at("empty").numel() == 0);
    const auto half = file.to_float("half");
    REQUIRE(std::vector<float>(half.begin(), half.end()) ==
            std::vector<float>{1.0f, -2.0f, std::ldexp(1.0f, -24), 65504.0f});
    const auto brain = file.to_float("brain");
    REQUIRE((brain[0] == 1.0f && brain[1] == 3.140625f));
    REQUIRE(file.to_float("scalar")[0] == 2.5f);
    REQUIRE(file.to_float("w.f32")[4] == 0.0f);
    // Into the caller's memory: the same values; a destination of another size is refused.
    std::vector<float> into(4);
    file.to_float("half", into);
    REQUIRE(into == std::vector<float>(half.begin(), half.end()));
    std::vector<float> short_of_one(3);
    REQUIRE_THROWS_WITH(file.to_float("half", short_of_one),
                        Catch::Contains("to_float: tensor 'half' has 4 elements, the destination 3"));
  }
  fs::remove(path);
}

TEST_CASE("safetensors: typed access is checked", "[io]") {
  const std::vector<float> v = {1, 2, 3, 4};
  const std::vector<io::tensor_data> tensors = {io::make_tensor_data("v", std::span(v), {4}),
                                                io::make_tensor_data("m", std::span(v), {2, 2})};
  const auto file = io::safetensors_file::from_bytes(io::serialize_safetensors(tensors));
  REQUIRE_THROWS_WITH(file.at("nope"), Catch::Contains("no tensor named 'nope'"));
  REQUIRE_THROWS_WITH(file.values<std::int32_t>("v"), Catch::Contains("is F32, not I32"));
  REQUIRE_THROWS_WITH(file.matrix<float>("v"), Catch::Contains("rank 1"));
  REQUIRE(file.matrix<float>("m")(1, 0) == 3.0f);
  REQUIRE_FALSE(file.contains("nope"));

  // A 1-byte header pad puts the F32 data at an odd address: views refuse, to_float copies.
  const auto odd = raw_file(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", 4);
  REQUIRE((odd.size() - 4) % 4 != 0);
  const auto unaligned = io::safetensors_file::from_bytes(odd);
  REQUIRE_THROWS_WITH(unaligned.values<float>("w"), Catch::Contains("not aligned"));
  REQUIRE(unaligned.to_float("w")[0] == 0.0f);

  const std::vector<std::int32_t> ints = {1};
  const std::vector<io::tensor_data> int_tensor = {io::make_tensor_data("i", std::span(ints), {1})};
  const auto int_file = io::safetensors_file::from_bytes(io::serialize_safetensors(int_tensor));
  REQUIRE_THROWS_WITH(int_file.to_float("i"), Catch::Contains("not a floating type"));
}

TEST_CASE("safetensors: the writer rejects inconsistent tensors", "[io]") {
  const std::vector<float> v = {1, 2, 3};
  const auto write = [](std::vector<io::tensor_data> t) { return io::serialize_safetensors(t); };
  REQUIRE_THROWS_WITH(write({io::make_tensor_data("a", std::span(v), {2})}),
                      Catch::Contains("12 bytes but its shape and F32 need 8"));
  REQUIRE_THROWS_WITH(write({io::make_tensor_data("a", std::span(v), {3}),
                             io::make_tensor_data("a", std::span(v), {3})}),
                      Catch::Contains("given twice"));
  REQUIRE_THROWS_WITH(write({io::make_tensor_data("__metadata__", std::span(v), {3})}),
                      Catch::Contains("reserved"));
  REQUIRE_THROWS_WITH(write({io::make_tensor_data("a", std::span(v), {-3})}),
                      Catch::Contains("negative extent"));
  REQUIRE_THROWS_WITH(write({io::make_tensor_data("\xff", std::span(v), {3})}),
                      Catch::Contains("cannot encode the header"));
  REQUIRE_THROWS_WITH(io::write_safetensors("/nonexistent-dir/x.safetensors", {}),
                      Catch::Contains("cannot open"));
  REQUIRE_THROWS_WITH(io::safetensors_file::open("/nonexistent-dir/x.safetensors"),
                      Catch::Contains("cannot open"));
}

TEST_CASE("safetensors: malformed files throw qtx::error with a clear message", "[io]") {
  const auto tensor = [](std::string fields) { return R"({"w":{)" + fields + "}}"; };
  const std::string f32x2 = R"("dtype":"F32","shape":[2],)";

  require_rejected(bytes_of("\x10\x00"), "shorter than the 8-byte header length");
  auto too_long = raw_file("{}", 0);
  too_long[0] = std::byte{0x40};
  require_rejected(too_long, "header length 64 exceeds the 2 bytes");
  require_rejected(raw_file("{\"w\": [", 0), "not valid JSON");
  require_rejected(raw_file("[1,2]", 0), "not an object (array)");
  require_rejected(raw_file("\"text\"", 0), "not an object (string)");
  require_rejected(raw_file(R"({"w":[1]})", 0), "'w' must be an object");
  require_rejected(raw_file(tensor(R"("shape":[1],"data_offsets":[0,4])"), 4), "has no 'dtype'");
  require_rejected(raw_file(tensor(R"("dtype":"F32","data_offsets":[0,4])"), 4), "has no 'shape'");
  require_rejected(raw_file(tensor(R"("dtype":"F32","shape":[1])"), 4), "has no 'data_offsets'");
  require_rejected(raw_file(tensor(R"("dtype":4,"shape":[1],"data_offsets":[0,4])"), 4),
                   "dtype must be a string");
  require_rejected(raw_file(tensor(R"("dtype":"F8_E5M2","shape":[4],"data_offsets":[0,4])"), 4),
                   "unsupported dtype \"F8_E5M2\"");
  require_rejected(raw_file(tensor(f32x2 + R"("data_offsets":[0,8],"x":1)"), 8),
                   "unknown field 'x'");
  require_rejected(raw_file(tensor(R"("dtype":"F32","shape":{},"data_offsets":[0,4])"), 4),
                   "shape must be an array");
  require_rejected(raw_file(tensor(R"("dtype":"F32","shape":[-1],"data_offsets":[0,4])"), 4),
                   "non-negative integers, found -1");
  require_rejected(raw_file(tensor(R"("dtype":"F32","shape":[1.0],"data_offsets":[0,4])"), 4),
                   "non-negative integers, found 1.0");
  require_rejected(raw_file(tensor(R"("dtype":"U8","shape":[18446744073709551615],)"
                                   R"("data_offsets":[0,4])"), 4),
                   "is too large");
  require_rejected(raw_file(tensor(R"("dtype":"F32","shape":[4294967296,4294967296],)"
                                   R"("data_offsets":[0,4])"), 4),
                   "too many elements");
  require_rejected(raw_file(tensor(f32x2 + R"("data_offsets":[0])"), 8), "must be [begin, end]");
  require_rejected(raw_file(tensor(f32x2 + R"("data_offsets":"0,8")"), 8), "must be [begin, end]");
  require_rejected(raw_file(tensor(f32x2 + R"("data_offsets":[8,0])"), 8), "begin 8 > end 0");
  require_rejected(raw_file(tensor(f32x2 + R"("data_offsets":[4,12])"), 8),
                   "end 12 is past the data section of 8 bytes");
  require_rejected(raw_file(tensor(f32x2 + R"("data_offsets":[0,4])"), 8),
                   "4 bytes for shape [2] of F32 (needs 8)");
  require_rejected(raw_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                            R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})", 12),
                   "tensors 'a' and 'b' overlap");
  require_rejected(raw_file(R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},)"
                            R"("a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}})", 2),
                   "key 'a' twice");
  require_rejected(raw_file(tensor(R"("dtype":"U8","dtype":"U8","shape":[1],"data_offsets":[0,1])"), 1),
                   "key 'dtype' twice");
  require_rejected(raw_file(R"({"__metadata__":{"n":3}})", 0), "metadata 'n' must be a string");
  require_rejected(raw_file(R"({"__metadata__":"x"})", 0), "'__metadata__' must be an object");
}

TEST_CASE("safetensors: holes and zero-size tensors are accepted", "[io]") {
  const auto file = io::safetensors_file::from_bytes(
      raw_file(R"({"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},)"
               R"("z":{"dtype":"F32","shape":[0],"data_offsets":[1,1]},)"
               R"("b":{"dtype":"U8","shape":[2],"data_offsets":[6,8]}})", 8));
  REQUIRE(file.size() == 3);
  REQUIRE(file.at("z").bytes.empty());
}

TEST_CASE("safetensors: fuzz seed corpus replays as load-or-qtx::error", "[io]") {
  const fs::path corpus = repo_root / "tests" / "fuzz" / "corpus";
  REQUIRE(fs::is_directory(corpus));
  int seeds = 0, loaded = 0;
  for (const auto& entry : fs::directory_iterator(corpus)) {
    std::ifstream in(entry.path(), std::ios::binary);
    const std::string content((std::istreambuf_iterator<char>(in)), {});
    INFO(entry.path().filename().string());
    const auto result = fuzz::exercise_safetensors(bytes_of(content));  // no other exception
    const std::string name = entry.path().filename().string();
    if (name.starts_with("valid_")) REQUIRE(result.loaded);
    if (name.starts_with("bad_")) REQUIRE_FALSE(result.loaded);
    ++seeds;
    loaded += result.loaded;
  }
  REQUIRE(seeds >= 20);
  REQUIRE(loaded >= 5);
}

TEST_CASE("safetensors: all-MiniLM-L6-v2 weights (scripts/setup-minilm.sh)", "[io][minilm]") {
  const fs::path path = minilm_dir() / "model.safetensors";
  if (!fs::exists(path)) {
    WARN("skipped: " << path << " is absent; run scripts/setup-minilm.sh");
    return;
  }
  const auto file = io::safetensors_file::open(path);
  constexpr index_t layers = 6, hidden = 384, ffn = 1536, vocab = 30522, positions = 512;
  constexpr index_t tensors_per_layer = 16, embedding_tensors = 6, pooler_tensors = 2;
  REQUIRE(file.size() == layers * tensors_per_layer + embedding_tensors + pooler_tensors);
  REQUIRE(file.metadata().at("format") == "pt");

  const auto words = file.matrix<float>("embeddings.word_embeddings.weight");
  REQUIRE((words.rows == vocab && words.cols == hidden));
  REQUIRE(file.matrix<float>("embeddings.position_embeddings.weight").rows == positions);
  const auto position_ids = file.values<std::int64_t>("embeddings.position_ids");
  REQUIRE(position_ids[positions - 1] == positions - 1);
  for (index_t l = 0; l < layers; ++l) {
    const std::string prefix = "encoder.layer." + std::to_string(l) + ".";
    for (const char* proj : {"query", "key", "value"}) {
      const auto w = file.matrix<float>(prefix + "attention.self." + proj + ".weight");
      REQUIRE((w.rows == hidden && w.cols == hidden));
    }
    REQUIRE(file.at(prefix + "intermediate.dense.weight").shape == std::vector<index_t>{ffn, hidden});
    REQUIRE(file.at(prefix + "output.dense.weight").shape == std::vector<index_t>{hidden, ffn});
    REQUIRE(file.at(prefix + "output.LayerNorm.weight").shape == std::vector<index_t>{hidden});
  }
  for (const auto& [name, t] : file.tensors()) {
    if (t.type != dtype::f32) continue;
    const auto values = file.values<float>(name);
    INFO(name);
    REQUIRE(std::all_of(values.begin(), values.end(), [](float x) { return std::isfinite(x); }));
  }
}

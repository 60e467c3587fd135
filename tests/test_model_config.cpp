// The example models' checkpoint loading (examples/common/config.hpp, weights.hpp and the BERT, OPT
// and ViT loaders): one case per class of bad config.json or bad tensor the model fuzzer
// (tests/fuzz/fuzz_model.cpp) found or was seeded with, each refused with a qtx::error naming the
// key or tensor and the value; the fuzzer's seed corpus replayed; the committed checkpoints and the
// pretrained MiniLM loading unchanged.
#include <catch2/catch.hpp>

#include "fuzz/exercise_model.hpp"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;
using qtx::index_t;
using qtx::fuzz::family;
using qtx::fuzz::tensor_edit;
using json = nlohmann::json;
using Catch::Contains;

const fs::path repo_root = fs::path(__FILE__).parent_path().parent_path();

json base_config(family f) {
  switch (f) {
    case family::bert:
      return {{"vocab_size", 30},          {"hidden_size", 8},          {"num_hidden_layers", 2},
              {"num_attention_heads", 2},  {"intermediate_size", 16},   {"max_position_embeddings", 8},
              {"layer_norm_eps", 1e-12}};
    case family::opt:
      return {{"vocab_size", 30},         {"hidden_size", 8}, {"num_hidden_layers", 2},
              {"num_attention_heads", 2}, {"ffn_dim", 16},    {"max_position_embeddings", 8}};
    case family::vit:
      return {{"hidden_size", 8}, {"num_hidden_layers", 1}, {"num_attention_heads", 2}, {"intermediate_size", 16},
              {"image_size", 8},  {"patch_size", 4},        {"num_channels", 1},        {"layer_norm_eps", 1e-6}};
  }
  return {};
}

// Edit kinds of exercise_model.hpp.
enum edit_kind : std::uint8_t { drop, set_extent, append_extent, drop_extent, set_dtype, fill, reverse, swap };

// Writes the checkpoint (the family's layout for the config's sizes, then the edits) and loads and
// runs it through the fuzzer's exercise function.
struct checkpoint {
  family kind;
  json config;
  bool mlm_head = false;
  std::vector<std::pair<std::string, tensor_edit>> edits;  // by tensor name

  explicit checkpoint(family f) : kind(f), config(base_config(f)) {}
  checkpoint& edit(const std::string& tensor, edit_kind k, std::uint8_t a = 0, std::uint8_t b = 0) {
    edits.push_back({tensor, {0, k, a, b}});
    return *this;
  }
  qtx::fuzz::model_result load() const {
    const std::string text = config.dump();
    const auto layout = qtx::fuzz::checkpoint_layout(kind, qtx::fuzz::detail::layout_sizes(text, mlm_head));
    std::vector<std::uint8_t> bytes{std::uint8_t(int(kind) | (mlm_head ? 4 : 0)), std::uint8_t(edits.size())};
    for (const auto& [name, e] : edits) {
      std::size_t index = 0;
      while (index < layout.size() && layout[index].name != name) ++index;
      REQUIRE(index < layout.size());  // a tensor of the layout
      bytes.insert(bytes.end(), {std::uint8_t(index), e.kind, e.a, e.b});
    }
    bytes.insert(bytes.end(), text.begin(), text.end());
    return qtx::fuzz::exercise_model(bytes);
  }
  // Refused, with a message containing `what`.
  void refused(const std::string& what) const {
    const auto r = load();
    INFO("config " << config.dump());
    CHECK_FALSE(r.loaded);
    CHECK_THAT(r.error, Contains(what));
  }
};

constexpr family all_families[] = {family::bert, family::opt, family::vit};

}  // namespace

TEST_CASE("model config: valid tiny checkpoints of every family and attention variant load and run", "[models][config]") {
  for (family f : all_families) {
    INFO(qtx::fuzz::family_name(f));
    checkpoint c(f);
    CHECK(c.load().loaded);
    for (const char* gate : {"linear_per_head", "mlp_per_head", "unconditional"}) {
      c.config["qtx_gate"] = gate;
      CHECK(c.load().loaded);
    }
    c.config["qtx_gate_hidden"] = 3;
    c.config["qtx_gate"] = "mlp_per_head";
    CHECK(c.load().loaded);
    checkpoint clipped(f);
    clipped.config["qtx_softmax_gamma"] = -0.03;
    clipped.config["qtx_softmax_zeta"] = 1.01;
    clipped.config["qtx_gate_pi_init"] = nullptr;  // null: as if absent
    CHECK(clipped.load().loaded);
    checkpoint no_layers(f);
    no_layers.config["num_hidden_layers"] = 0;  // embeddings (and head) only: W8A8 runs too
    CHECK(no_layers.load().loaded);
    checkpoint odd(f);  // heads = hidden: d_head 1
    odd.config["hidden_size"] = 6;
    odd.config["num_attention_heads"] = 6;
    CHECK(odd.load().loaded);
  }
  checkpoint mlm(family::bert);
  mlm.mlm_head = true;
  CHECK(mlm.load().loaded);
  checkpoint rgb(family::vit);
  rgb.config["num_channels"] = 3;
  rgb.config["qtx_image_mean"] = {0.5, 0.4, 0.3};
  rgb.config["qtx_image_std"] = {0.2, 0.3, 0.4};
  rgb.config["qtx_patch_embedding_ln"] = true;
  rgb.config["num_labels"] = 3;
  CHECK(rgb.load().loaded);
}

TEST_CASE("model config: config.json that is not a JSON object", "[models][config]") {
  using demo::config_reader;
  CHECK_THROWS_WITH(config_reader("bert", "{\"hidden_size\": 8,"), Contains("bert: config.json: not valid JSON"));
  CHECK_THROWS_WITH(config_reader("bert", ""), Contains("not valid JSON"));
  CHECK_THROWS_WITH(config_reader("opt", "{\"qtx_gate\": \"\xff\"}"), Contains("not valid JSON"));
  CHECK_THROWS_WITH(config_reader("vit", "[8, 2]"), Contains("vit: config.json: the top level is array, not an object"));
  CHECK_THROWS_WITH(config_reader("vit", "42"), Contains("the top level is number"));
  CHECK_THROWS_WITH(config_reader::from_file("bert", "/nonexistent/config.json"), Contains("cannot open config"));
  // Through the loaders: every family turns a JSON error into qtx::error.
  for (family f : all_families) {
    const std::string text = "{\"hidden_size\": ";
    std::vector<std::uint8_t> bytes{std::uint8_t(f), 0};
    bytes.insert(bytes.end(), text.begin(), text.end());
    const auto r = qtx::fuzz::exercise_model(bytes);
    CHECK_FALSE(r.loaded);
    CHECK_THAT(r.error, Contains("not valid JSON"));
  }
}

TEST_CASE("model config: sizes of the wrong type or out of range", "[models][config]") {
  const demo::config_reader r("bert", R"({"a": "8", "b": true, "c": 8.5, "d": 1e30, "e": -8, "f": 0,
      "g": 4611686018427387904, "h": 18446744073709551615, "i": 1048577, "j": null, "k": 1048576, "l": [8]})");
  CHECK_THROWS_WITH(r.extent("a"), Contains("bert: config.json: a must be an integer, found \"8\""));
  CHECK_THROWS_WITH(r.extent("b"), Contains("b must be an integer, found true"));
  CHECK_THROWS_WITH(r.extent("c"), Contains("c must be an integer, found 8.5"));
  CHECK_THROWS_WITH(r.extent("d"), Contains("d must be an integer, found 1e+30"));
  CHECK_THROWS_WITH(r.extent("e"), Contains("e (-8) must lie in [1, 1048576]"));
  CHECK_THROWS_WITH(r.extent("f"), Contains("f (0) must lie in [1, 1048576]"));
  CHECK(r.extent("f", 0) == 0);
  CHECK_THROWS_WITH(r.extent("g"), Contains("g (4611686018427387904) must lie in"));
  CHECK_THROWS_WITH(r.extent("h"), Contains("h (18446744073709551615) must lie in"));
  CHECK_THROWS_WITH(r.extent("i"), Contains("i (1048577) must lie in"));
  CHECK_THROWS_WITH(r.extent("j"), Contains("no 'j'"));  // null is absent
  CHECK(r.extent_or("j", 5) == 5);
  CHECK(r.extent("k") == demo::max_config_extent);
  CHECK_THROWS_WITH(r.extent("l"), Contains("l must be an integer, found [8]"));
  CHECK_THROWS_WITH(r.extent("missing"), Contains("no 'missing'"));

  for (family f : all_families) {
    INFO(qtx::fuzz::family_name(f));
    for (const char* key : {"hidden_size", "num_attention_heads", "num_hidden_layers"}) {
      checkpoint c(f);
      c.config.erase(key);
      c.refused(std::string("no '") + key + "'");
      c.config[key] = -1;
      c.refused(std::string(key) + " (-1) must lie in");
      c.config[key] = "2";
      c.refused(std::string(key) + " must be an integer");
      c.config[key] = 1e30;  // was a float-to-int overflow (UB) in nlohmann's conversion
      c.refused(std::string(key) + " must be an integer, found 1e+30");
    }
    checkpoint huge(f);
    huge.config["hidden_size"] = std::int64_t(1) << 62;  // was a signed overflow in tokens × hidden
    huge.refused("hidden_size (4611686018427387904) must lie in");
  }
}

TEST_CASE("model config: hidden size not divisible by the head count", "[models][config]") {
  for (family f : all_families) {
    checkpoint c(f);
    c.config["num_attention_heads"] = 3;
    c.refused("hidden_size (8) is not a multiple of num_attention_heads (3)");
    c.config["num_attention_heads"] = 0;
    c.refused("num_attention_heads (0) must lie in [1, ");
    c.config["num_attention_heads"] = 16;  // more heads than channels
    c.refused("hidden_size (8) is not a multiple of num_attention_heads (16)");
  }
}

TEST_CASE("model config: attention variant keys", "[models][config]") {
  for (family f : all_families) {
    INFO(qtx::fuzz::family_name(f));
    checkpoint c(f);
    c.config["qtx_softmax_gamma"] = 0.5;
    c.refused("qtx_softmax_gamma (0.5) must be <= 0");
    c.config["qtx_softmax_gamma"] = -1e300;  // was -inf as float: NaN outputs
    c.refused("qtx_softmax_gamma (-1e+300) must be a finite float");
    c.config["qtx_softmax_gamma"] = "-0.1";
    c.refused("qtx_softmax_gamma must be a number");
    c.config["qtx_softmax_gamma"] = -3e38;
    c.config["qtx_softmax_zeta"] = 3e38;
    c.refused("qtx_softmax_zeta - qtx_softmax_gamma");
    c.config["qtx_softmax_gamma"] = 0.0;
    c.config["qtx_softmax_zeta"] = 0.5;
    c.refused("qtx_softmax_zeta (0.5) must be >= 1");
    c.config["qtx_softmax_zeta"] = 1.0;
    c.config["qtx_gate"] = "sideways";
    c.refused("unsupported qtx_gate 'sideways'");
    c.config["qtx_gate"] = 3;
    c.refused("qtx_gate must be a string, found 3");
    c.config["qtx_gate"] = "mlp_per_head";
    c.config["qtx_gate_hidden"] = -2;
    c.refused("qtx_gate_hidden (-2) must lie in [0, ");
  }
}

TEST_CASE("model config: family-specific keys", "[models][config]") {
  checkpoint bert(family::bert);
  bert.config["layer_norm_eps"] = -1e-5;
  bert.refused("layer_norm_eps (-1e-05) must be positive as float");
  bert.config["layer_norm_eps"] = 1e-50;  // 0 as float
  bert.refused("layer_norm_eps (0) must be positive as float");
  bert.config["layer_norm_eps"] = "small";
  bert.refused("layer_norm_eps must be a number");

  checkpoint vit(family::vit);
  vit.config["patch_size"] = 3;
  vit.refused("image_size (8) is not a multiple of patch_size (3)");
  vit.config["patch_size"] = 0;
  vit.refused("patch_size (0) must lie in [1, ");
  vit.config["patch_size"] = 1;
  vit.config["image_size"] = std::int64_t(1) << 40;  // was a signed overflow in patches()
  vit.refused("image_size (1099511627776) must lie in");
  checkpoint channels(family::vit);
  channels.config["num_channels"] = std::int64_t(1) << 40;  // was a 4 TiB allocation
  channels.refused("num_channels (1099511627776) must lie in");
  channels.config["num_channels"] = -1;  // was std::length_error
  channels.refused("num_channels (-1) must lie in");
  checkpoint norm(family::vit);
  norm.config["qtx_image_std"] = {0.0};
  norm.refused("qtx_image_std values must be positive, found 0");
  norm.config["qtx_image_std"] = {1e300};
  norm.refused("qtx_image_std (1e+300) must be a finite float");
  norm.config["qtx_image_std"] = 0.5;
  norm.refused("qtx_image_std must be an array of numbers, found 0.5");
  norm.config["qtx_image_std"] = {0.5};
  norm.config["qtx_image_mean"] = {"a"};
  norm.refused("qtx_image_mean must be a number, found \"a\"");
  norm.config["qtx_image_mean"] = {0.1, 0.2};
  norm.refused("qtx_image_mean and qtx_image_std have 2 and 1 values, num_channels is 1");
  norm.config["qtx_image_mean"] = {0.1};
  norm.config["qtx_patch_embedding_ln"] = "yes";
  norm.refused("qtx_patch_embedding_ln must be true or false, found \"yes\"");
  norm.config["qtx_patch_embedding_ln"] = true;
  norm.edit("vit.embeddings.patch_layernorm.bias", drop);
  norm.refused("no tensor 'vit.embeddings.patch_layernorm.bias'");
}

TEST_CASE("model config: sizes that disagree with the safetensors shapes", "[models][config]") {
  // Stated past the fuzzer layout's caps, so the tensors keep their default sizes.
  checkpoint bert(family::bert);
  bert.config["vocab_size"] = 1000;  // was an out-of-bounds read of the word embeddings
  bert.refused("tensor 'embeddings.word_embeddings.weight' has shape [30, 8], config.json says [1000, 8] "
               "(vocab_size x hidden_size)");
  bert.config["vocab_size"] = 30;
  bert.config["max_position_embeddings"] = 1000;  // was an out-of-bounds read of the positions
  bert.refused("'embeddings.position_embeddings.weight' has shape [8, 8], config.json says [1000, 8]");
  bert.config["max_position_embeddings"] = 8;
  bert.config["type_vocab_size"] = 3;
  bert.refused("'embeddings.token_type_embeddings.weight' has shape [2, 8], config.json says [3, 8]");
  bert.config.erase("type_vocab_size");
  bert.config["hidden_size"] = 40;  // was a heap-buffer-overflow in the embedding
  bert.refused("has shape [30, 8], config.json says [30, 40] (vocab_size x hidden_size)");
  bert.config["hidden_size"] = 8;
  bert.config["intermediate_size"] = 100;
  bert.refused("'encoder.layer.0.intermediate.dense.weight' has shape [16, 8], config.json says [100, 8] "
               "(intermediate_size x hidden_size)");

  checkpoint opt(family::opt);
  opt.config["max_position_embeddings"] = 1000;
  opt.refused("'model.decoder.embed_positions.weight' has shape [10, 8], config.json says [1002, 8] "
              "(max_position_embeddings + 2 x hidden_size)");
  opt.config["max_position_embeddings"] = 8;
  opt.config["ffn_dim"] = 100;
  opt.refused("'model.decoder.layers.0.fc1.weight' has shape [16, 8], config.json says [100, 8] (ffn_dim x hidden_size)");

  checkpoint vit(family::vit);
  vit.config["hidden_size"] = 40;
  vit.refused("'vit.embeddings.patch_embeddings.projection.weight' has shape [8, 1, 4, 4], config.json says "
              "[40, 1, 4, 4] (hidden_size x num_channels x patch_size x patch_size)");
  vit.config["hidden_size"] = 8;
  vit.config["num_labels"] = 5;
  vit.refused("'classifier.weight' has shape [3, 8], config.json says [5, 8] (num_labels x hidden_size)");
}

TEST_CASE("model config: tensors of the wrong shape, rank or dtype, or missing", "[models][config]") {
  checkpoint bert(family::bert);
  bert.edit("encoder.layer.1.output.dense.weight", reverse);  // transposed
  bert.refused("'encoder.layer.1.output.dense.weight' has shape [16, 8], config.json says [8, 16] "
               "(hidden_size x intermediate_size)");
  checkpoint rank(family::opt);
  rank.edit("model.decoder.layers.0.self_attn.k_proj.bias", append_extent, 0, 1);
  rank.refused("'model.decoder.layers.0.self_attn.k_proj.bias' has shape [8, 1], config.json says [8] (hidden_size)");
  checkpoint flat(family::vit);
  flat.edit("vit.embeddings.cls_token", drop_extent);  // (1, 1, H) → (1, 1): count was checked, not shape
  flat.refused("'vit.embeddings.cls_token' has shape [1, 1], config.json says [1, 1, 8]");
  checkpoint empty(family::vit);
  empty.edit("classifier.weight", set_extent, 0, 0);
  empty.edit("classifier.bias", set_extent, 0, 0);
  empty.refused("classifier.weight has no rows");
  checkpoint missing(family::opt);
  missing.edit("model.decoder.layers.1.fc2.bias", drop);
  missing.refused("opt: ");
  missing.refused("no tensor 'model.decoder.layers.1.fc2.bias'");
  checkpoint integer(family::bert);
  integer.edit("embeddings.LayerNorm.weight", set_dtype, 0, 3);  // I32
  integer.refused("tensor 'embeddings.LayerNorm.weight' is I32, not a floating type");
  checkpoint halves(family::bert);  // F16, BF16 and F64 are converted
  halves.edit("embeddings.LayerNorm.bias", set_dtype, 0, 0);
  halves.edit("embeddings.word_embeddings.weight", set_dtype, 0, 1);
  halves.edit("encoder.layer.0.attention.self.query.weight", set_dtype, 0, 2);
  CHECK(halves.load().loaded);

  checkpoint gate(family::opt);
  gate.config["qtx_gate"] = "linear_per_head";
  gate.edit("model.decoder.layers.0.self_attn.gate.weight", reverse);
  gate.refused("'model.decoder.layers.0.self_attn.gate.weight' has shape [4, 2], config.json says [2, 4] "
               "(num_attention_heads x hidden_size / num_attention_heads)");
  checkpoint mlp(family::vit);
  mlp.config["qtx_gate"] = "mlp_per_head";
  mlp.config["qtx_gate_hidden"] = 2;
  mlp.edit("vit.encoder.layer.0.attention.attention.gate.fc1.weight", set_extent, 1, 3);
  mlp.refused("has shape [2, 3, 4], config.json says [2, 2, 4] (num_attention_heads x qtx_gate_hidden x");
  checkpoint head(family::bert);
  head.mlm_head = true;
  head.edit("cls.predictions.bias", set_extent, 0, 3);
  head.refused("'cls.predictions.bias' has shape [3], config.json says [30] (vocab_size)");
}

TEST_CASE("model config: the loaded models check their calibration and state", "[models][config]") {
  const fs::path dir = qtx::fuzz::detail::scratch_dir();
  qtx::fuzz::write_checkpoint({family::opt, false, {}, base_config(family::opt).dump()}, dir);
  opt::model<> m(dir);
  CHECK_THROWS_WITH(m.quantize({}), Contains("opt: quantize: calibration has 0 layers, the model 2"));
  auto foreign = opt::model<>::state<float>{};  // no caches: not from new_state()
  qtx::aligned_buffer<float> logits;
  const std::vector<qtx::io::token_id> ids{1, 2};
  CHECK_THROWS_WITH(m.forward(ids, foreign, logits), Contains("opt: state has 0 layer caches, the model 2 layers"));

  // Without layers the decoder still advances its positions (the state's length was the caches').
  auto none = base_config(family::opt);
  none["num_hidden_layers"] = 0;
  qtx::fuzz::write_checkpoint({family::opt, false, {}, none.dump()}, dir);
  opt::model<> flat(dir);
  auto st = flat.new_state<float>(4);
  flat.forward(ids, st, logits);
  CHECK(st.length() == 2);
  CHECK_THROWS_WITH(flat.forward(std::vector<qtx::io::token_id>(7, 1), st, logits), Contains("exceed"));
  opt::calibration cal;
  flat.quantize(cal);  // no layers: forward_w8a8 used to refuse ("before quantize()") even now
  auto st8 = flat.new_state<uint8_t>(4);
  flat.forward_w8a8(ids, st8, logits);
  CHECK(st8.length() == 2);
}

TEST_CASE("model config: the model fuzzer's seed corpus replays", "[models][config]") {
  const fs::path corpus = repo_root / "tests" / "fuzz" / "corpus_model";
  REQUIRE(fs::is_directory(corpus));
  int valid = 0, bad = 0;
  for (const auto& entry : fs::directory_iterator(corpus)) {
    std::ifstream in(entry.path(), std::ios::binary);
    const std::vector<std::uint8_t> bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    const std::string name = entry.path().filename().string();
    INFO(name);
    const auto r = qtx::fuzz::exercise_model(bytes);  // no other exception, finite outputs
    INFO(r.error);
    if (name.starts_with("valid_")) {
      CHECK(r.loaded);
      ++valid;
    }
    if (name.starts_with("bad_")) {
      CHECK_FALSE(r.loaded);
      CHECK_FALSE(r.error.empty());
      ++bad;
    }
  }
  CHECK(valid >= 20);
  CHECK(bad >= 100);
}

TEST_CASE("model config: the committed checkpoints and the pretrained MiniLM load", "[models][config]") {
  int loaded = 0;
  for (const auto& entry : fs::directory_iterator(repo_root / "checkpoints")) {
    const fs::path dir = entry.path();
    if (!fs::exists(dir / "model.safetensors")) continue;
    const std::string name = dir.filename().string();
    INFO(name);
    if (name.starts_with("bert")) CHECK(bert::model<>(dir).has_mlm_head());
    if (name.starts_with("opt")) CHECK(opt::model<>(dir).cfg().layers > 0);
    if (name.starts_with("vit")) CHECK(vit::model<>(dir).classes() == 10);
    ++loaded;
  }
  CHECK(loaded >= 3);
  const char* env = std::getenv("QTX_MINILM_DIR");
  const fs::path minilm = env ? fs::path(env) : repo_root / "models" / "minilm";
  if (!fs::exists(minilm / "model.safetensors")) {
    WARN("skipped: " << minilm << " is absent; run scripts/setup-minilm.sh");
    return;
  }
  const bert::model<> m(minilm);
  CHECK(m.cfg().hidden == 384);
  CHECK_FALSE(m.has_mlm_head());
}

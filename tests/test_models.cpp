// Example models on random weights: the BERT encoder of examples/bert against the double
// reference (embeddings here, layers from reference_encoder.hpp), and its W8A8 form against its FP32 form.
#include <catch2/catch.hpp>

#include "bert/bert.hpp"
#include "random_weights.hpp"
#include "reference_encoder.hpp"

#include <qtx/io/safetensors.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>

namespace {
using qtx::index_t;

struct tiny_bert {
  index_t vocab = 50, H = 32, layers = 2, heads = 4, inter = 64, positions = 24;
  test_models::random_weights weights{7};
  std::filesystem::path dir;

  tiny_bert(const std::string& name, float gamma, bool gated) {
    auto add = [&](const std::string& n, std::vector<index_t> shape, float stddev, float mean = 0.0f) {
      weights.add(n, std::move(shape), stddev, mean);
    };
    add("embeddings.word_embeddings.weight", {vocab, H}, 1.0f);
    add("embeddings.position_embeddings.weight", {positions, H}, 0.3f);
    add("embeddings.token_type_embeddings.weight", {2, H}, 0.3f);
    add("embeddings.LayerNorm.weight", {H}, 0.1f, 1.0f);
    add("embeddings.LayerNorm.bias", {H}, 0.1f);
    for (index_t i = 0; i < layers; ++i) {
      const std::string p = "encoder.layer." + std::to_string(i) + ".";
      for (const char* m : {"attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense"}) {
        add(p + m + ".weight", {H, H}, 0.2f);
        add(p + m + ".bias", {H}, 0.1f);
      }
      add(p + "intermediate.dense.weight", {inter, H}, 0.2f);
      add(p + "intermediate.dense.bias", {inter}, 0.1f);
      add(p + "output.dense.weight", {H, inter}, 0.15f);
      add(p + "output.dense.bias", {H}, 0.1f);
      for (const char* ln : {"attention.output.LayerNorm", "output.LayerNorm"}) {
        add(p + ln + ".weight", {H}, 0.1f, 1.0f);
        add(p + ln + ".bias", {H}, 0.1f);
      }
      if (gated) {
        add(p + "attention.self.gate.weight", {heads, H / heads}, 0.3f);
        add(p + "attention.self.gate.bias", {heads}, 0.0f, qtx::logit(0.5f));
      }
    }
    dir = std::filesystem::temp_directory_path() / ("qtx_tiny_bert_" + name);
    weights.write(dir);
    std::ofstream(dir / "config.json") << "{\"vocab_size\": " << vocab << ", \"hidden_size\": " << H
                                       << ", \"num_hidden_layers\": " << layers << ", \"num_attention_heads\": " << heads
                                       << ", \"intermediate_size\": " << inter << ", \"max_position_embeddings\": "
                                       << positions << ", \"layer_norm_eps\": 1e-12, \"qtx_softmax_gamma\": " << gamma
                                       << ", \"qtx_gate\": \"" << (gated ? "linear_per_head" : "none") << "\"}";
  }

  // The whole encoder in double, straight from the definitions.
  std::vector<double> reference(const std::vector<int>& ids, float gamma, bool gated) const {
    const index_t T = index_t(ids.size());
    auto W = [&](const std::string& n) -> const std::vector<float>& { return weights.w.at(n); };
    std::vector<double> x(T * H);
    for (index_t t = 0; t < T; ++t)
      for (index_t c = 0; c < H; ++c)
        x[t * H + c] = W("embeddings.word_embeddings.weight")[ids[t] * H + c] +
                       W("embeddings.position_embeddings.weight")[t * H + c] + W("embeddings.token_type_embeddings.weight")[c];
    auto layer_norm = [&](std::vector<double>& v, const std::string& n) {
      for (index_t t = 0; t < T; ++t) {
        double mean = 0, var = 0;
        for (index_t c = 0; c < H; ++c) mean += v[t * H + c] / double(H);
        for (index_t c = 0; c < H; ++c) var += (v[t * H + c] - mean) * (v[t * H + c] - mean) / double(H);
        for (index_t c = 0; c < H; ++c)
          v[t * H + c] = (v[t * H + c] - mean) / std::sqrt(var + 1e-12) * W(n + ".weight")[c] + W(n + ".bias")[c];
      }
    };
    layer_norm(x, "embeddings.LayerNorm");
    for (index_t i = 0; i < layers; ++i) {
      const std::string p = "encoder.layer." + std::to_string(i) + ".";
      auto l = ::reference::from_named(weights.w,
                                     {p + "attention.self.query.", p + "attention.self.key.", p + "attention.self.value.",
                                      p + "attention.output.dense.", p + "attention.output.LayerNorm.",
                                      p + "output.LayerNorm.", p + "intermediate.dense.", p + "output.dense.",
                                      p + "attention.self.gate."},
                                     H, inter, heads);
      l.post_ln = true, l.gamma = gamma, l.eps = 1e-12f;
      if (!gated) l.gate.reset();
      x = ::reference::forward(l, x, T);
    }
    return x;
  }
};

std::vector<std::vector<int>> test_sequences() {
  return {{1, 5, 9, 2}, {1, 17, 3, 44, 8, 31, 12, 2}, {1, 2}, {1, 49, 48, 47, 46, 45, 44, 43, 42, 41, 40, 39, 38, 37, 2}};
}
}  // namespace

TEST_CASE("tiny BERT: FP32 forward equals a double reference; W8A8 tracks FP32", "[models][bert]") {
  for (auto [gamma, gated] : {std::pair{0.0f, false}, std::pair{-0.05f, false}, std::pair{0.0f, true}}) {
    INFO("gamma " << gamma << " gated " << gated);
    tiny_bert tb(std::to_string(int(-gamma * 100)) + (gated ? "g" : ""), gamma, gated);
    bert::model<> model(tb.dir);
    qtx::aligned_buffer<float> out;
    // Calibrate on the test sequences themselves (min-max) and collect FP32 results.
    std::map<std::pair<index_t, int>, std::pair<float, float>> ranges;
    const bert::model<>::observer record = [&](index_t layer, int point, qtx::matrix_view<const float> t) {
      auto& r = ranges[{layer, point}];
      for (index_t i = 0; i < t.rows; ++i)
        for (index_t c = 0; c < t.cols; ++c) r.first = std::min(r.first, t(i, c)), r.second = std::max(r.second, t(i, c));
    };
    std::vector<std::vector<float>> fp32_embeddings;
    for (const auto& seq : test_sequences()) {
      const std::vector<qtx::io::token_id> ids(seq.begin(), seq.end());
      model.forward(ids, out, &record);
      const auto ref = tb.reference(seq, gamma, gated);
      for (std::size_t i = 0; i < ref.size(); ++i) REQUIRE(out[i] == Approx(ref[i]).margin(2e-4));
      fp32_embeddings.push_back(bert::mean_pool_normalize(out.data(), index_t(seq.size()), tb.H));
    }
    bert::calibration cal;
    auto params = [&](index_t l, int p) { return qtx::asymmetric_params<uint8_t>(ranges[{l, p}].first, ranges[{l, p}].second); };
    cal.embeddings_ln = params(-1, bert::attention_ln);
    for (index_t l = 0; l < tb.layers; ++l) {
      cal.layers.emplace_back();
      for (int p = 0; p < bert::points; ++p) cal.layers[l][p] = params(l, p);
    }
    model.quantize(cal);
    std::size_t s = 0;
    for (const auto& seq : test_sequences()) {
      const std::vector<qtx::io::token_id> ids(seq.begin(), seq.end());
      model.forward_w8a8(ids, out);
      const auto e = bert::mean_pool_normalize(out.data(), index_t(seq.size()), tb.H);
      double dot = 0;
      for (index_t c = 0; c < tb.H; ++c) dot += double(e[c]) * fp32_embeddings[s][c];
      CHECK(dot > 0.99);  // cosine of unit vectors; W8A8 error bound for this tiny random model
      ++s;
    }

    // The sequences as one packed batch (more tokens than max_positions: the workspaces grow) give
    // the one-at-a-time hidden states bit for bit, FP32 and W8A8.
    std::vector<std::vector<qtx::io::token_id>> batch;
    for (const auto& seq : test_sequences()) batch.emplace_back(seq.begin(), seq.end());
    const std::vector<bert::model<>::ids_view> views(batch.begin(), batch.end());
    for (bool w8a8 : {false, true}) {
      INFO("w8a8 " << w8a8);
      qtx::aligned_buffer<float> packed, single;
      w8a8 ? model.forward_w8a8(views, packed) : model.forward(views, packed);
      std::size_t row = 0;
      for (const auto& ids : batch) {
        w8a8 ? model.forward_w8a8(ids, single) : model.forward(ids, single);
        for (std::size_t i = 0; i < ids.size() * std::size_t(tb.H); ++i) REQUIRE(packed[row * tb.H + i] == single[i]);
        row += ids.size();
      }
    }
    std::filesystem::remove_all(tb.dir);
  }
}

TEST_CASE("BERT model rejects bad inputs", "[models][bert]") {
  tiny_bert tb("errors", 0.0f, false);
  bert::model<> model(tb.dir);
  qtx::aligned_buffer<float> out;
  const std::vector<qtx::io::token_id> too_long(30, 1), bad_id = {1, 50};
  CHECK_THROWS_WITH(model.forward(too_long, out), Catch::Contains("30 tokens"));
  CHECK_THROWS_WITH(model.forward(bad_id, out), Catch::Contains("token id 50"));
  CHECK_THROWS_WITH(model.forward_w8a8(bad_id, out), Catch::Contains("before quantize"));
  CHECK_THROWS_WITH(model.forward(std::span<const bert::model<>::ids_view>{}, out), Catch::Contains("empty batch"));
  CHECK_THROWS_AS(bert::model<>(tb.dir / "missing"), qtx::error);
  std::filesystem::remove_all(tb.dir);
}

#include "opt/opt.hpp"

namespace {
struct tiny_opt {
  index_t vocab = 40, H = 32, layers = 2, heads = 4, ffn = 64, positions = 32;
  std::filesystem::path dir;
  explicit tiny_opt(const std::string& name, bool gated) {
    test_models::random_weights weights(11);
    auto add = [&](const std::string& n, std::vector<index_t> shape, float stddev, float mean = 0.0f) {
      weights.add(n, std::move(shape), stddev, mean);
    };
    add("model.decoder.embed_tokens.weight", {vocab, H}, 0.5f);
    add("model.decoder.embed_positions.weight", {positions + opt::position_offset, H}, 0.2f);
    add("model.decoder.final_layer_norm.weight", {H}, 0.1f, 1.0f);
    add("model.decoder.final_layer_norm.bias", {H}, 0.1f);
    for (index_t i = 0; i < layers; ++i) {
      const std::string p = "model.decoder.layers." + std::to_string(i) + ".";
      for (const char* m : {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.out_proj"}) {
        add(p + m + ".weight", {H, H}, 0.2f);
        add(p + m + ".bias", {H}, 0.1f);
      }
      add(p + "fc1.weight", {ffn, H}, 0.2f);
      add(p + "fc1.bias", {ffn}, 0.1f);
      add(p + "fc2.weight", {H, ffn}, 0.15f);
      add(p + "fc2.bias", {H}, 0.1f);
      for (const char* ln : {"self_attn_layer_norm", "final_layer_norm"}) {
        add(p + ln + ".weight", {H}, 0.1f, 1.0f);
        add(p + ln + ".bias", {H}, 0.1f);
      }
      if (gated) {
        add(p + "self_attn.gate.weight", {heads, H / heads}, 0.3f);
        add(p + "self_attn.gate.bias", {heads}, 0.0f, qtx::logit(0.25f));
      }
    }
    dir = std::filesystem::temp_directory_path() / ("qtx_tiny_opt_" + name);
    weights.write(dir);
    std::ofstream(dir / "config.json") << "{\"vocab_size\": " << vocab << ", \"hidden_size\": " << H
                                       << ", \"num_hidden_layers\": " << layers << ", \"num_attention_heads\": " << heads
                                       << ", \"ffn_dim\": " << ffn << ", \"max_position_embeddings\": " << positions
                                       << ", \"qtx_gate\": \"" << (gated ? "linear_per_head" : "none") << "\"}";
  }
  ~tiny_opt() { std::filesystem::remove_all(dir); }
};
}  // namespace

TEST_CASE("tiny OPT: cached decoding equals the full causal pass; W8A8 tracks FP32", "[models][opt]") {
  for (bool gated : {false, true}) {
    tiny_opt to(gated ? "gated" : "plain", gated);
    opt::model<> model(to.dir);
    const std::vector<qtx::io::token_id> ids = {2, 7, 13, 1, 39, 22, 5, 5, 18, 30, 11};
    const index_t T = index_t(ids.size()), V = to.vocab;
    std::map<std::pair<index_t, int>, std::pair<float, float>> ranges;
    const opt::model<>::observer record = [&](index_t layer, int point, qtx::matrix_view<const float> t) {
      auto& r = ranges[{layer, point}];
      for (index_t i = 0; i < t.rows; ++i)
        for (index_t c = 0; c < t.cols; ++c) r.first = std::min(r.first, t(i, c)), r.second = std::max(r.second, t(i, c));
    };
    auto full_state = model.new_state<float>(T);
    qtx::aligned_buffer<float> full, step;
    model.forward(ids, full_state, full, &record);
    auto st = model.new_state<float>(T);
    for (index_t t = 0; t < T; ++t) {
      model.forward(std::span(ids).subspan(t, 1), st, step);
      for (index_t c = 0; c < V; ++c) REQUIRE(step[c] == Approx(full[t * V + c]).margin(1e-4));
    }
    // W8A8 with min-max calibration on the same sequence: logits stay close to FP32.
    opt::calibration cal;
    cal.embeddings = qtx::asymmetric_params<uint8_t>(ranges[{-1, 0}].first, ranges[{-1, 0}].second);
    for (index_t l = 0; l < to.layers; ++l) {
      cal.layers.emplace_back();
      for (int p = 0; p < opt::points; ++p)
        cal.layers[l][p] = qtx::asymmetric_params<uint8_t>(ranges[{l, p}].first, ranges[{l, p}].second);
    }
    model.quantize(cal);
    auto qst = model.new_state<uint8_t>(T);
    qtx::aligned_buffer<float> qlogits;
    model.forward_w8a8(ids, qst, qlogits);
    double err = 0, norm = 0;
    for (index_t i = 0; i < T * V; ++i) err += (qlogits[i] - full[i]) * (qlogits[i] - full[i]), norm += full[i] * full[i];
    CHECK(std::sqrt(err / norm) < 0.1);
    // Greedy generation runs through the cache and stays inside the vocabulary.
    const auto out = opt::generate_greedy(model, {2, 7, 13}, 8);
    CHECK(out.size() == 11);
    for (auto id : out) CHECK((id >= 0 && id < V));
    auto small = model.new_state<float>(2);
    CHECK_THROWS_WITH(model.forward(ids, small, step), Catch::Contains("exceed the capacity"));
  }
}

#pragma once
// Loads an adversarial checkpoint directory (config.json + model.safetensors) with an example model
// (examples/bert, opt, vit) and, when it loads, runs its FP32 and W8A8 forward passes. Shared by the
// libFuzzer harness (fuzz_model.cpp) and the corpus regression test (tests/test_model_config.cpp):
// a bad checkpoint must end in qtx::error, a good one in finite outputs, and nothing else.
//
// Input bytes:
//   byte 0      bits 0-1: model family (bert, opt, vit; 3 = bert); bit 2: BERT's MLM head tensors
//   byte 1      bits 0-2: number E of tensor edits
//   2 .. 2+4E   E edits of 4 bytes: target tensor, kind, a, b (see apply_edit)
//   the rest    config.json, verbatim
// The safetensors file holds the family's layout (checkpoint_layout.hpp) for the sizes the config
// states, each clamped to a tiny model (a size it does not state, or states out of range, takes a
// default), so that a well-formed config gives a consistent checkpoint and the edits break it.
#include "bert/bert.hpp"
#include "checkpoint_layout.hpp"
#include "opt/opt.hpp"
#include "vit/vit.hpp"

#include <qtx/io/safetensors_writer.hpp>
#include <qtx/quant/observers.hpp>

#include <unistd.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace qtx::fuzz {

struct tensor_edit {
  std::uint8_t target = 0, kind = 0, a = 0, b = 0;
};

struct model_input {
  family kind = family::bert;
  bool mlm_head = false;
  std::vector<tensor_edit> edits;
  std::string config;
};

inline model_input decode_model_input(std::span<const std::uint8_t> data) {
  constexpr std::size_t edit_bytes = 4, max_edits = 7;
  const auto at = [&](std::size_t i) -> std::uint8_t { return i < data.size() ? data[i] : 0; };
  model_input in;
  in.kind = static_cast<family>((at(0) & 3) % families);
  in.mlm_head = (at(0) & 4) != 0;
  const std::size_t edits = at(1) & max_edits;
  for (std::size_t e = 0; e < edits; ++e) {
    const std::size_t o = 2 + e * edit_bytes;
    in.edits.push_back({at(o), at(o + 1), at(o + 2), at(o + 3)});
  }
  const std::size_t text = std::min(data.size(), 2 + edits * edit_bytes);
  in.config.assign(reinterpret_cast<const char*>(data.data()) + text, data.size() - text);
  return in;
}

// A tensor to write: its spec, dtype and, when set, one special value for every element.
struct tensor_plan {
  tensor_spec spec;
  io::dtype type = io::dtype::f32;
  int special = -1;  // index into special_values
};

inline constexpr float special_values[] = {
    std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
    -std::numeric_limits<float>::infinity(), 1e30f, 0.0f, -0.0f,
    std::numeric_limits<float>::denorm_min(), 65504.0f};
inline constexpr io::dtype edit_dtypes[] = {io::dtype::f16, io::dtype::bf16, io::dtype::f64,
                                            io::dtype::i32, io::dtype::u8,   io::dtype::i8,
                                            io::dtype::f32};

namespace detail {

inline constexpr index_t max_edited_elements = index_t(1) << 14;  // keeps every run tiny

// The sizes the config states, clamped; defaults where it states none or an odd value.
inline model_sizes layout_sizes(const std::string& config_text, bool mlm_head) {
  model_sizes s;
  s.mlm_head = mlm_head;
  const auto j = nlohmann::json::parse(config_text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return s;
  const auto size = [&](const char* key, index_t& v, index_t cap) {
    const auto it = j.find(key);
    if (it != j.end() && it->is_number_integer() && it->get<std::int64_t>() >= 0 &&
        it->get<std::int64_t>() <= cap)
      v = it->get<index_t>();
  };
  size("vocab_size", s.vocab, 64);
  size("hidden_size", s.hidden, 32);
  size("num_hidden_layers", s.layers, 3);
  size("num_attention_heads", s.heads, 8);
  size("intermediate_size", s.intermediate, 64);
  size("ffn_dim", s.intermediate, 64);
  size("max_position_embeddings", s.positions, 32);
  size("qtx_gate_hidden", s.gate_hidden, 8);
  size("image_size", s.image, 16);
  size("patch_size", s.patch, 16);
  size("num_channels", s.channels, 4);
  if (const auto it = j.find("qtx_gate"); it != j.end() && it->is_string()) s.gate = *it;
  if (const auto it = j.find("qtx_patch_embedding_ln"); it != j.end() && it->is_boolean())
    s.patch_ln = *it;
  return s;
}

inline index_t elements(const std::vector<index_t>& shape) {
  index_t n = 1;
  for (index_t e : shape) n *= e;
  return n;
}

// Edit kinds: 0 drop the tensor, 1 set extent a to b, 2 append extent b, 3 drop the last extent,
// 4 change the dtype, 5 fill with a special value, 6 reverse the shape, 7 swap shapes with tensor a.
inline void apply_edit(std::vector<tensor_plan>& plans, const tensor_edit& e) {
  if (plans.empty()) return;
  const std::size_t target = e.target % plans.size();
  tensor_plan& p = plans[target];
  auto& shape = p.spec.shape;
  const auto before = shape;
  switch (e.kind % 8) {
    case 0: plans.erase(plans.begin() + static_cast<std::ptrdiff_t>(target)); return;
    case 1:
      if (!shape.empty()) shape[e.a % shape.size()] = e.b % 24;
      break;
    case 2: shape.push_back(e.b % 4); break;
    case 3:
      if (!shape.empty()) shape.pop_back();
      break;
    case 4: p.type = edit_dtypes[e.b % std::size(edit_dtypes)]; return;
    case 5: p.special = e.b % static_cast<int>(std::size(special_values)); return;
    case 6: std::reverse(shape.begin(), shape.end()); break;
    case 7: std::swap(shape, plans[e.a % plans.size()].spec.shape); break;
  }
  if (elements(shape) > max_edited_elements) shape = before;
}

// Small deterministic values, near 1 for norm weights so that the model behaves like a model.
inline float value(std::size_t tensor, index_t i, bool norm_weight) {
  std::uint32_t h = static_cast<std::uint32_t>(tensor * 2654435761u) ^
                    static_cast<std::uint32_t>(i * 40503u + 1u);
  h ^= h >> 13;
  h *= 0x5bd1e995u;
  h ^= h >> 15;
  const float u = static_cast<float>(h % 1024u) / 1024.0f - 0.5f;  // [-0.5, 0.5)
  return norm_weight ? 1.0f + 0.2f * u : u;
}

inline bool is_norm_weight(const std::string& name) {
  const std::string_view n = name;
  return n.ends_with("orm.weight") || n.ends_with("norm_before.weight") ||
         n.ends_with("norm_after.weight");
}

// The tensor's bytes in its dtype (integers: zeros; they must be refused anyway).
inline std::vector<std::byte> tensor_bytes(const tensor_plan& p, std::size_t index) {
  const index_t n = elements(p.spec.shape);
  std::vector<std::byte> bytes(static_cast<std::size_t>(n * io::size_of(p.type)));
  const bool norm = is_norm_weight(p.spec.name);
  for (index_t i = 0; i < n; ++i) {
    const float v = p.special >= 0 ? special_values[p.special] : value(index, i, norm);
    std::byte* out = bytes.data() + i * io::size_of(p.type);
    if (p.type == io::dtype::f32) {
      std::memcpy(out, &v, sizeof v);
    } else if (p.type == io::dtype::f64) {
      const double d = v;
      std::memcpy(out, &d, sizeof d);
    } else if (p.type == io::dtype::bf16 || p.type == io::dtype::f16) {
      // bf16 keeps the float's top half; f16 gets the same bits (another value, still a float).
      const auto bits = static_cast<std::uint16_t>(std::bit_cast<std::uint32_t>(v) >> 16);
      std::memcpy(out, &bits, sizeof bits);
    }
  }
  return bytes;
}

inline bool all_finite(std::span<const float> v) {
  for (float x : v)
    if (!std::isfinite(x)) return false;
  return true;
}

// A finite output was expected (finite weights) and did not come: silent garbage, report it.
inline void require_finite(std::span<const float> v, bool expect_finite) {
  if (expect_finite && !all_finite(v)) __builtin_trap();
}

// Min-max of every quantization point of an FP32 forward, keyed (layer, point).
struct range_recorder {
  std::map<std::pair<index_t, int>, minmax_observer> ranges;
  std::function<void(index_t, int, matrix_view<const float>)> observer() {
    return [this](index_t layer, int point, matrix_view<const float> t) {
      ranges[{layer, point}].observe(t);
    };
  }
  quant_params at(index_t layer, int point) { return ranges[{layer, point}].params<uint8_t>(); }
  template <int Points>
  std::vector<std::array<quant_params, Points>> layers(index_t count) {
    std::vector<std::array<quant_params, Points>> out(static_cast<std::size_t>(count));
    for (index_t l = 0; l < count; ++l)
      for (int p = 0; p < Points; ++p) out[static_cast<std::size_t>(l)][p] = at(l, p);
    return out;
  }
};

// A sequence that reaches the last id of the vocabulary and, for the default layout, the last position.
inline constexpr index_t max_sequence = 9;
inline std::vector<io::token_id> some_ids(index_t count, index_t vocab) {
  std::vector<io::token_id> ids;
  for (index_t t = 0; t < count; ++t) ids.push_back(static_cast<io::token_id>((vocab - 1 + t * 7) % vocab));
  return ids;
}

inline void run(bert::model<>& m, bool finite) {
  const auto& c = m.cfg();
  const auto ids = some_ids(std::min(c.max_positions, max_sequence), c.vocab);
  range_recorder rec;
  const bert::model<>::observer obs = rec.observer();
  aligned_buffer<float> out;
  m.forward(ids, out, &obs);
  require_finite({out.data(), std::size_t(out.size())}, finite);
  if (m.has_mlm_head()) {
    aligned_buffer<float> logits;
    m.mlm_logits(make_view(out.data(), index_t(ids.size()), c.hidden), logits);
    require_finite({logits.data(), std::size_t(logits.size())}, finite);
  }
  bert::calibration cal{rec.at(-1, bert::attention_ln), rec.layers<bert::points>(c.layers)};
  m.quantize(cal);
  m.forward_w8a8(ids, out);
  require_finite({out.data(), std::size_t(out.size())}, finite);
}

inline void run(opt::model<>& m, bool finite) {
  const auto& c = m.cfg();
  const index_t T = std::min(c.max_positions, max_sequence);
  const auto ids = some_ids(T, c.vocab);
  range_recorder rec;
  const opt::model<>::observer obs = rec.observer();
  auto st = m.new_state<float>(T);
  aligned_buffer<float> logits;
  m.forward(ids, st, logits, &obs);
  require_finite({logits.data(), std::size_t(logits.size())}, finite);
  opt::calibration cal{rec.at(-1, 0), rec.layers<opt::points>(c.layers)};
  m.quantize(cal);
  auto st8 = m.new_state<uint8_t>(T);
  m.forward_w8a8(ids, st8, logits);
  require_finite({logits.data(), std::size_t(logits.size())}, finite);
  if (c.max_positions >= 2) (void)opt::generate_greedy(m, {ids[0]}, 1);
}

inline void run(vit::model<>& m, bool finite) {
  const auto& c = m.cfg();
  std::vector<uint8_t> image(static_cast<std::size_t>(c.channels * c.image_size * c.image_size));
  for (std::size_t i = 0; i < image.size(); ++i) image[i] = static_cast<uint8_t>(i * 37 % 256);
  range_recorder rec;
  const vit::model<>::observer obs = rec.observer();
  auto logits = m.forward(image, &obs);
  require_finite(logits, finite);
  vit::calibration cal{rec.at(-1, vit::model<>::pixels_point), rec.at(-1, vit::model<>::embeddings_point),
                       rec.layers<vit::points>(c.layers)};
  m.quantize(cal);
  logits = m.forward_w8a8(image);
  require_finite(logits, finite);
}

struct model_result {
  bool loaded = false;  // and ran
  std::string error;    // the qtx::error's message otherwise
};

template <class Model>
model_result load_and_run(const std::filesystem::path& dir, bool finite) {
  try {
    Model m(dir);
    run(m, finite);
    return {true, {}};
  } catch (const qtx::error& e) {
    return {false, e.what()};
  }
}

// This process's scratch checkpoint directory, removed at exit.
inline const std::filesystem::path& scratch_dir() {
  struct scratch {
    std::filesystem::path dir = std::filesystem::temp_directory_path() /
                                ("qtx_fuzz_model_" + std::to_string(::getpid()));
    scratch() { std::filesystem::create_directories(dir); }
    ~scratch() {
      std::error_code ignored;
      std::filesystem::remove_all(dir, ignored);
    }
  };
  static const scratch s;
  return s.dir;
}

}  // namespace detail

// Writes the checkpoint the input describes into dir (config.json, model.safetensors).
inline void write_checkpoint(const model_input& in, const std::filesystem::path& dir) {
  std::vector<tensor_plan> plans;
  for (auto& spec : checkpoint_layout(in.kind, detail::layout_sizes(in.config, in.mlm_head)))
    plans.push_back({std::move(spec)});
  for (const auto& e : in.edits) detail::apply_edit(plans, e);
  std::vector<std::vector<std::byte>> storage;
  storage.reserve(plans.size());  // the tensor_data spans point into it
  std::vector<io::tensor_data> tensors;
  for (std::size_t i = 0; i < plans.size(); ++i) {
    storage.push_back(detail::tensor_bytes(plans[i], i));
    tensors.push_back({plans[i].spec.name, plans[i].type, plans[i].spec.shape, storage.back()});
  }
  io::write_safetensors(dir / "model.safetensors", tensors);
  std::ofstream(dir / "config.json", std::ios::binary) << in.config;
}

using detail::model_result;

inline model_result exercise_model(std::span<const std::uint8_t> data) {
  const model_input in = decode_model_input(data);
  const auto& dir = detail::scratch_dir();
  write_checkpoint(in, dir);
  bool finite = true;
  for (const auto& e : in.edits) finite = finite && e.kind % 8 != 5;  // no special-value fill
  switch (in.kind) {
    case family::bert: return detail::load_and_run<bert::model<>>(dir, finite);
    case family::opt: return detail::load_and_run<opt::model<>>(dir, finite);
    case family::vit: return detail::load_and_run<vit::model<>>(dir, finite);
  }
  return {};
}

}  // namespace qtx::fuzz

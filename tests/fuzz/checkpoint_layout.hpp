#pragma once
// The tensors (Hugging Face names and shapes) a checkpoint of each example model family holds for
// given sizes: what examples/{bert,opt,vit} load. The model fuzzer starts from this layout and then
// breaks it; the config regression tests (tests/test_model_config.cpp) write it unbroken.
#include <qtx/core/types.hpp>

#include <string>
#include <vector>

namespace qtx::fuzz {

enum class family { bert, opt, vit };
inline constexpr int families = 3;

inline const char* family_name(family f) {
  switch (f) {
    case family::bert: return "bert";
    case family::opt: return "opt";
    case family::vit: return "vit";
  }
  return "?";
}

// The sizes a config.json states; each family reads the ones it has.
struct model_sizes {
  index_t vocab = 30, hidden = 8, layers = 1, heads = 2, intermediate = 16, positions = 8;
  std::string gate = "none";  // qtx_gate
  index_t gate_hidden = 0;    // qtx_gate_hidden; 0 = d_head / 4 (at least 1)
  bool mlm_head = false;      // BERT: cls.predictions.*
  // ViT
  index_t image = 8, patch = 4, channels = 1, classes = 3;
  bool patch_ln = false;  // qtx_patch_embedding_ln

  index_t d_head() const { return heads > 0 ? hidden / heads : 0; }
  index_t vit_tokens() const {
    const index_t side = patch > 0 ? image / patch : 0;
    return side * side + 1;
  }
};

struct tensor_spec {
  std::string name;
  std::vector<index_t> shape;
};

namespace detail {

// Gate tensors under `prefix` (the layer's "...gate."), as demo::attention_options_for reads them.
inline void add_gate(std::vector<tensor_spec>& t, const model_sizes& s, const std::string& prefix) {
  const index_t h = s.heads, dh = s.d_head();
  if (s.gate == "linear_per_head") {
    t.push_back({prefix + "weight", {h, dh}});
    t.push_back({prefix + "bias", {h}});
  } else if (s.gate == "mlp_per_head") {
    const index_t g = s.gate_hidden > 0 ? s.gate_hidden : (dh / 4 > 0 ? dh / 4 : 1);
    t.push_back({prefix + "fc1.weight", {h, g, dh}});
    t.push_back({prefix + "fc1.bias", {h, g}});
    t.push_back({prefix + "fc2.weight", {h, g}});
    t.push_back({prefix + "fc2.bias", {h}});
  } else if (s.gate == "unconditional") {
    t.push_back({prefix + "bias", {h}});
  }
}

inline void add_linear(std::vector<tensor_spec>& t, const std::string& name, index_t out, index_t in) {
  t.push_back({name + ".weight", {out, in}});
  t.push_back({name + ".bias", {out}});
}

inline void add_norm(std::vector<tensor_spec>& t, const std::string& name, index_t features) {
  t.push_back({name + ".weight", {features}});
  t.push_back({name + ".bias", {features}});
}

// One encoder/decoder block: four attention projections, two FFN linears, two norms, the gate.
struct block_names {
  const char *q, *k, *v, *o, *ffn_in, *ffn_out, *norm1, *norm2, *gate;
};

inline void add_block(std::vector<tensor_spec>& t, const model_sizes& s, const std::string& prefix,
                      const block_names& n) {
  const index_t H = s.hidden, I = s.intermediate;
  for (const char* m : {n.q, n.k, n.v, n.o}) add_linear(t, prefix + m, H, H);
  add_linear(t, prefix + n.ffn_in, I, H);
  add_linear(t, prefix + n.ffn_out, H, I);
  add_norm(t, prefix + n.norm1, H);
  add_norm(t, prefix + n.norm2, H);
  add_gate(t, s, prefix + n.gate);
}

}  // namespace detail

inline std::vector<tensor_spec> checkpoint_layout(family f, const model_sizes& s) {
  using namespace detail;
  std::vector<tensor_spec> t;
  const index_t H = s.hidden;
  switch (f) {
    case family::bert:
      t.push_back({"embeddings.word_embeddings.weight", {s.vocab, H}});
      t.push_back({"embeddings.position_embeddings.weight", {s.positions, H}});
      t.push_back({"embeddings.token_type_embeddings.weight", {2, H}});
      add_norm(t, "embeddings.LayerNorm", H);
      for (index_t i = 0; i < s.layers; ++i)
        add_block(t, s, "encoder.layer." + std::to_string(i) + ".",
                  {"attention.self.query", "attention.self.key", "attention.self.value",
                   "attention.output.dense", "intermediate.dense", "output.dense",
                   "attention.output.LayerNorm", "output.LayerNorm", "attention.self.gate."});
      if (s.mlm_head) {
        add_linear(t, "cls.predictions.transform.dense", H, H);
        add_norm(t, "cls.predictions.transform.LayerNorm", H);
        t.push_back({"cls.predictions.bias", {s.vocab}});
      }
      break;
    case family::opt:
      t.push_back({"model.decoder.embed_tokens.weight", {s.vocab, H}});
      t.push_back({"model.decoder.embed_positions.weight", {s.positions + 2, H}});  // OPT's offset
      add_norm(t, "model.decoder.final_layer_norm", H);
      for (index_t i = 0; i < s.layers; ++i)
        add_block(t, s, "model.decoder.layers." + std::to_string(i) + ".",
                  {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.out_proj",
                   "fc1", "fc2", "self_attn_layer_norm", "final_layer_norm", "self_attn.gate."});
      break;
    case family::vit:
      t.push_back({"vit.embeddings.patch_embeddings.projection.weight",
                   {H, s.channels, s.patch, s.patch}});
      t.push_back({"vit.embeddings.patch_embeddings.projection.bias", {H}});
      t.push_back({"vit.embeddings.cls_token", {1, 1, H}});
      t.push_back({"vit.embeddings.position_embeddings", {1, s.vit_tokens(), H}});
      if (s.patch_ln) add_norm(t, "vit.embeddings.patch_layernorm", H);
      for (index_t i = 0; i < s.layers; ++i)
        add_block(t, s, "vit.encoder.layer." + std::to_string(i) + ".",
                  {"attention.attention.query", "attention.attention.key",
                   "attention.attention.value", "attention.output.dense", "intermediate.dense",
                   "output.dense", "layernorm_before", "layernorm_after",
                   "attention.attention.gate."});
      add_norm(t, "vit.layernorm", H);
      add_linear(t, "classifier", s.classes, H);
      break;
  }
  return t;
}

}  // namespace qtx::fuzz

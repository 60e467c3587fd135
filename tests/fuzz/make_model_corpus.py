#!/usr/bin/env python3
"""Writes the seed corpus of the model-loading fuzzer (tests/fuzz/corpus_model/): one valid tiny
checkpoint per model family and attention variant, and one input per kind of bad config or tensor
the loaders must reject. tests/test_model_config.cpp replays every seed.

Input layout (tests/fuzz/exercise_model.hpp): byte 0 = family (0 bert, 1 opt, 2 vit) | 4 for BERT's
MLM head, byte 1 = number of tensor edits, 4 bytes per edit (target, kind, a, b), then config.json.
Edit kinds: 0 drop, 1 set extent a to b, 2 append extent b, 3 drop last extent, 4 dtype
(b: 0 F16, 1 BF16, 2 F64, 3 I32, 4 U8, 5 I8, 6 F32), 5 special fill, 6 reverse shape, 7 swap shapes.

Usage: python3 tests/fuzz/make_model_corpus.py [out_dir=tests/fuzz/corpus_model]
"""
import json
import os
import sys

BERT, OPT, VIT, MLM = 0, 1, 2, 4

BASE = {
    BERT: {"vocab_size": 30, "hidden_size": 8, "num_hidden_layers": 2, "num_attention_heads": 2,
           "intermediate_size": 16, "max_position_embeddings": 8, "layer_norm_eps": 1e-12},
    OPT: {"vocab_size": 30, "hidden_size": 8, "num_hidden_layers": 2, "num_attention_heads": 2,
          "ffn_dim": 16, "max_position_embeddings": 8},
    VIT: {"hidden_size": 8, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 16,
          "image_size": 8, "patch_size": 4, "num_channels": 1, "layer_norm_eps": 1e-6},
}


def seed(family, config, edits=(), flags=0):
    text = config if isinstance(config, bytes) else json.dumps(config).encode()
    out = bytes([family | flags, len(edits)])
    for e in edits:
        out += bytes(e)
    return out + text


def cfg(family, **changes):
    c = dict(BASE[family])
    for k, v in changes.items():
        if v is None:
            c.pop(k, None)
        else:
            c[k] = v
    return c


seeds = {}
names = {BERT: "bert", OPT: "opt", VIT: "vit"}
for f, n in names.items():
    # valid
    seeds[f"valid_{n}"] = seed(f, cfg(f))
    seeds[f"valid_{n}_clipped"] = seed(f, cfg(f, qtx_softmax_gamma=-0.03, qtx_softmax_zeta=1.0))
    seeds[f"valid_{n}_gate_linear"] = seed(f, cfg(f, qtx_gate="linear_per_head"))
    seeds[f"valid_{n}_gate_mlp"] = seed(f, cfg(f, qtx_gate="mlp_per_head", qtx_gate_hidden=2))
    seeds[f"valid_{n}_gate_unconditional"] = seed(f, cfg(f, qtx_gate="unconditional"))
    seeds[f"valid_{n}_no_layers"] = seed(f, cfg(f, num_hidden_layers=0))
    seeds[f"valid_{n}_f16_bf16_f64"] = seed(f, cfg(f), [(0, 4, 0, 0), (1, 4, 0, 1), (2, 4, 0, 2)])
    # config values the loaders must reject
    seeds[f"bad_{n}_heads_not_dividing"] = seed(f, cfg(f, num_attention_heads=3))
    seeds[f"bad_{n}_zero_heads"] = seed(f, cfg(f, num_attention_heads=0))
    seeds[f"bad_{n}_negative_hidden"] = seed(f, cfg(f, hidden_size=-8))
    seeds[f"bad_{n}_huge_hidden"] = seed(f, cfg(f, hidden_size=2**62))
    seeds[f"bad_{n}_hidden_past_int64"] = seed(f, cfg(f, hidden_size=2**64 - 1))
    seeds[f"bad_{n}_hidden_float_huge"] = seed(f, cfg(f, hidden_size=1e30))
    seeds[f"bad_{n}_hidden_fraction"] = seed(f, cfg(f, hidden_size=8.5))
    seeds[f"bad_{n}_hidden_string"] = seed(f, cfg(f, hidden_size="8"))
    seeds[f"bad_{n}_hidden_bool"] = seed(f, cfg(f, hidden_size=True))
    seeds[f"bad_{n}_missing_hidden"] = seed(f, cfg(f, hidden_size=None))
    seeds[f"bad_{n}_negative_layers"] = seed(f, cfg(f, num_hidden_layers=-1))
    seeds[f"bad_{n}_hidden_disagrees"] = seed(f, cfg(f, hidden_size=40))  # past the layout cap: tensors stay 8
    seeds[f"bad_{n}_gamma_positive"] = seed(f, cfg(f, qtx_softmax_gamma=0.5))
    seeds[f"bad_{n}_zeta_below_one"] = seed(f, cfg(f, qtx_softmax_zeta=0.5))
    seeds[f"bad_{n}_gamma_huge"] = seed(f, cfg(f, qtx_softmax_gamma=-1e300))
    seeds[f"bad_{n}_gate_unknown"] = seed(f, cfg(f, qtx_gate="sideways"))
    seeds[f"bad_{n}_gate_number"] = seed(f, cfg(f, qtx_gate=3))
    seeds[f"bad_{n}_gate_hidden_negative"] = seed(f, cfg(f, qtx_gate="mlp_per_head", qtx_gate_hidden=-2))
    seeds[f"bad_{n}_not_json"] = seed(f, b'{"hidden_size": 8,')
    seeds[f"bad_{n}_not_object"] = seed(f, b"[8, 2]")
    seeds[f"bad_{n}_invalid_utf8"] = seed(f, b'{"qtx_gate": "\xff"}')
    # tensors that disagree with a valid config
    seeds[f"bad_{n}_missing_tensor"] = seed(f, cfg(f), [(3, 0, 0, 0)])
    seeds[f"bad_{n}_extent_changed"] = seed(f, cfg(f), [(0, 1, 0, 5)])
    seeds[f"bad_{n}_inner_extent_changed"] = seed(f, cfg(f), [(9, 1, 1, 3)])
    seeds[f"bad_{n}_zero_extent"] = seed(f, cfg(f), [(5, 1, 0, 0)])
    seeds[f"bad_{n}_rank_grown"] = seed(f, cfg(f), [(6, 2, 0, 1)])
    seeds[f"bad_{n}_rank_shrunk"] = seed(f, cfg(f), [(0, 3, 0, 0)])
    # tensor indices in checkpoint_layout order: the first layer starts at 5 (BERT) or 4 (OPT, ViT)
    first = 5 if f == BERT else 4
    seeds[f"bad_{n}_transposed"] = seed(f, cfg(f), [(first + 10, 6, 0, 0)])  # FFN output weight
    seeds[f"bad_{n}_swapped"] = seed(f, cfg(f), [(first, 7, first + 9, 0)])  # query weight, FFN input bias
    seeds[f"bad_{n}_int_dtype"] = seed(f, cfg(f), [(2, 4, 0, 3)])
    seeds[f"special_{n}_nan_weights"] = seed(f, cfg(f), [(7, 5, 0, 0)])
    seeds[f"special_{n}_inf_weights"] = seed(f, cfg(f), [(8, 5, 0, 1)])
    seeds[f"bad_{n}_gate_missing"] = seed(f, cfg(f, qtx_gate="linear_per_head"), [(first + 16, 0, 0, 0)])

# family-specific keys
seeds["valid_bert_mlm_head"] = seed(BERT, cfg(BERT), flags=MLM)
seeds["bad_bert_mlm_bias_short"] = seed(BERT, cfg(BERT), [(5 + 2 * 16 + 4, 1, 0, 3)], flags=MLM)
seeds["bad_bert_vocab_disagrees"] = seed(BERT, cfg(BERT, vocab_size=1000))
seeds["bad_bert_positions_disagree"] = seed(BERT, cfg(BERT, max_position_embeddings=1000))
seeds["bad_bert_eps_negative"] = seed(BERT, cfg(BERT, layer_norm_eps=-1e-5))
seeds["bad_bert_eps_underflows"] = seed(BERT, cfg(BERT, layer_norm_eps=1e-50))
seeds["bad_bert_eps_string"] = seed(BERT, cfg(BERT, layer_norm_eps="small"))
seeds["bad_opt_vocab_disagrees"] = seed(OPT, cfg(OPT, vocab_size=1000))
seeds["bad_opt_positions_disagree"] = seed(OPT, cfg(OPT, max_position_embeddings=1000))
seeds["valid_vit_patch_ln"] = seed(VIT, cfg(VIT, qtx_patch_embedding_ln=True))
seeds["valid_vit_rgb"] = seed(VIT, cfg(VIT, num_channels=3, qtx_image_mean=[0.5, 0.4, 0.3],
                                       qtx_image_std=[0.2, 0.3, 0.4]))
seeds["bad_vit_patch_not_dividing"] = seed(VIT, cfg(VIT, patch_size=3))
seeds["bad_vit_zero_patch"] = seed(VIT, cfg(VIT, patch_size=0))
seeds["bad_vit_huge_image"] = seed(VIT, cfg(VIT, image_size=2**40, patch_size=1))
seeds["bad_vit_huge_channels"] = seed(VIT, cfg(VIT, num_channels=2**40))
seeds["bad_vit_negative_channels"] = seed(VIT, cfg(VIT, num_channels=-1))
seeds["bad_vit_std_zero"] = seed(VIT, cfg(VIT, qtx_image_std=[0.0]))
seeds["bad_vit_std_short"] = seed(VIT, cfg(VIT, num_channels=2, qtx_image_std=[0.5]))
seeds["bad_vit_mean_strings"] = seed(VIT, cfg(VIT, qtx_image_mean=["a"]))
seeds["bad_vit_mean_huge"] = seed(VIT, cfg(VIT, qtx_image_mean=[1e300]))
seeds["bad_vit_patch_ln_string"] = seed(VIT, cfg(VIT, qtx_patch_embedding_ln="yes"))
seeds["bad_vit_patch_ln_missing"] = seed(VIT, cfg(VIT, qtx_patch_embedding_ln=True), [(4, 0, 0, 0)])
seeds["bad_vit_classifier_width"] = seed(VIT, cfg(VIT), [(200, 1, 1, 5)])

out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "corpus_model")
os.makedirs(out, exist_ok=True)
for name, data in sorted(seeds.items()):
    with open(os.path.join(out, name), "wb") as fh:
        fh.write(data)
print(f"{len(seeds)} seeds in {out}")

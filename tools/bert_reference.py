#!/usr/bin/env python3
"""Independent FP64 numpy forward of a Hugging Face BERT encoder + sentence-transformers pooling.

Used to check qtx's C++ BERT example: it reads the same safetensors weights and the token ids that the
C++ program used, and writes (or compares against) mean-pooled, L2-normalised embeddings.

  bert_reference.py MODEL_DIR IDS.txt OUT.npy          # one line of space-separated ids per sentence
  bert_reference.py MODEL_DIR IDS.txt --compare QTX_EMBEDDINGS.txt [--min-cosine 0.9999]

Nothing here is shared with qtx: the safetensors parser, the layer algebra and the erf (SciPy's) are
numpy / SciPy in float64. Sentences of equal length run as one batch, so every step is a matmul over
all tokens or over (batch, head), with no padding and no mask: the result equals a per-sentence
forward (to rounding).
"""
import argparse
import json
import math
import sys
from collections import defaultdict

import numpy as np
from scipy.special import erf

import safetensors_np

def load_safetensors(path):
    return {name: array.astype(np.float64) for name, array in safetensors_np.read(path).items()}


def gelu(x):
    return 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))


def layer_norm(x, w, b, eps):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


def forward(t, cfg, ids):
    """ids: (B, T) int array of B sentences of the same length T -> (B, hidden) embeddings."""
    B, T = ids.shape
    H, nh = cfg["hidden_size"], cfg["num_attention_heads"]
    dh = H // nh
    eps = cfg.get("layer_norm_eps", 1e-12)
    x = t["embeddings.word_embeddings.weight"][ids] + t["embeddings.position_embeddings.weight"][:T] \
        + t["embeddings.token_type_embeddings.weight"][0]
    # The hidden states as one (B*T, H) matrix: every Linear is a single BLAS GEMM.
    x = layer_norm(x.reshape(B * T, H), t["embeddings.LayerNorm.weight"], t["embeddings.LayerNorm.bias"], eps)
    for i in range(cfg["num_hidden_layers"]):
        p = f"encoder.layer.{i}."
        lin = lambda v, n: v @ t[p + n + ".weight"].T + t[p + n + ".bias"]
        heads = lambda v: v.reshape(B, T, nh, dh).transpose(0, 2, 1, 3)  # (batch, head, token, dim)
        q, k, v = (heads(lin(x, f"attention.self.{n}")) for n in ("query", "key", "value"))
        s = q @ k.transpose(0, 1, 3, 2) / math.sqrt(dh)  # (batch, head, query, key)
        s = np.exp(s - s.max(-1, keepdims=True))
        att = s / s.sum(-1, keepdims=True)
        ctx = (att @ v).transpose(0, 2, 1, 3).reshape(B * T, H)
        x = layer_norm(lin(ctx, "attention.output.dense") + x, t[p + "attention.output.LayerNorm.weight"],
                       t[p + "attention.output.LayerNorm.bias"], eps)
        h = gelu(lin(x, "intermediate.dense"))
        x = layer_norm(lin(h, "output.dense") + x, t[p + "output.LayerNorm.weight"],
                       t[p + "output.LayerNorm.bias"], eps)
    e = x.reshape(B, T, H).mean(1)
    return e / np.linalg.norm(e, axis=1, keepdims=True)


def embed_all(t, cfg, sentences, batch=64):
    """Embeddings of every sentence, in input order, computed in batches of equal-length sentences."""
    by_length = defaultdict(list)
    for i, ids in enumerate(sentences):
        by_length[len(ids)].append(i)
    out = np.empty((len(sentences), cfg["hidden_size"]))
    for rows in by_length.values():
        for start in range(0, len(rows), batch):
            chunk = rows[start:start + batch]
            out[chunk] = forward(t, cfg, np.array([sentences[i] for i in chunk], dtype=np.int64))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model_dir")
    ap.add_argument("ids")
    ap.add_argument("out", nargs="?")
    ap.add_argument("--compare")
    ap.add_argument("--min-cosine", type=float, default=0.9999)
    a = ap.parse_args()
    t = load_safetensors(a.model_dir + "/model.safetensors")
    with open(a.model_dir + "/config.json") as f:
        cfg = json.load(f)
    with open(a.ids) as f:
        sentences = [[int(v) for v in line.split()] for line in f if line.strip()]
    if not sentences:
        sys.exit(f"{a.ids}: no sentences")
    ref = embed_all(t, cfg, sentences)
    if a.out:
        np.save(a.out, ref)
    if a.compare:
        got = np.loadtxt(a.compare, ndmin=2)
        if got.shape != ref.shape:
            sys.exit(f"shape mismatch: qtx {got.shape} vs reference {ref.shape}")
        cos = (got * ref).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(ref, axis=1)
        print(f"cosine qtx FP32 vs numpy FP64 over {len(cos)} sentences: min {cos.min():.7f} mean {cos.mean():.7f}")
        if cos.min() < a.min_cosine:
            sys.exit(f"FAIL: min cosine {cos.min():.7f} < {a.min_cosine}")
        print("PASS")


if __name__ == "__main__":
    main()

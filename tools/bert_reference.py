#!/usr/bin/env python3
"""Independent FP64 numpy forward of a Hugging Face BERT encoder + sentence-transformers pooling.

Used to check qtx's C++ BERT example: it reads the same safetensors weights and the token ids that the
C++ program used, and writes (or compares against) mean-pooled, L2-normalised embeddings.

  bert_reference.py MODEL_DIR IDS.txt OUT.npy          # one line of space-separated ids per sentence
  bert_reference.py MODEL_DIR IDS.txt --compare QTX_EMBEDDINGS.txt [--min-cosine 0.9999]
"""
import argparse
import json
import math
import struct
import sys

import numpy as np

DTYPES = {"F32": np.float32, "F16": np.float16, "I64": np.int64, "I32": np.int32, "I8": np.int8, "U8": np.uint8}


def load_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        if info["dtype"] == "BF16":
            raw = np.frombuffer(data[begin:end], dtype=np.uint16).astype(np.uint32) << 16
            arr = raw.view(np.float32)
        else:
            arr = np.frombuffer(data[begin:end], dtype=DTYPES[info["dtype"]])
        tensors[name] = arr.reshape(info["shape"]).astype(np.float64)
    return tensors


_erf = np.vectorize(math.erf)


def gelu(x):
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))


def layer_norm(x, w, b, eps):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


def forward(t, cfg, ids):
    T = len(ids)
    H, nh = cfg["hidden_size"], cfg["num_attention_heads"]
    dh = H // nh
    eps = cfg.get("layer_norm_eps", 1e-12)
    x = t["embeddings.word_embeddings.weight"][ids] + t["embeddings.position_embeddings.weight"][:T] \
        + t["embeddings.token_type_embeddings.weight"][0]
    x = layer_norm(x, t["embeddings.LayerNorm.weight"], t["embeddings.LayerNorm.bias"], eps)
    for i in range(cfg["num_hidden_layers"]):
        p = f"encoder.layer.{i}."
        lin = lambda v, n: v @ t[p + n + ".weight"].T + t[p + n + ".bias"]
        q = lin(x, "attention.self.query").reshape(T, nh, dh).transpose(1, 0, 2)
        k = lin(x, "attention.self.key").reshape(T, nh, dh).transpose(1, 0, 2)
        v = lin(x, "attention.self.value").reshape(T, nh, dh).transpose(1, 0, 2)
        s = q @ k.transpose(0, 2, 1) / math.sqrt(dh)
        s = np.exp(s - s.max(-1, keepdims=True))
        p_att = s / s.sum(-1, keepdims=True)
        ctx = (p_att @ v).transpose(1, 0, 2).reshape(T, H)
        x = layer_norm(lin(ctx, "attention.output.dense") + x, t[p + "attention.output.LayerNorm.weight"],
                       t[p + "attention.output.LayerNorm.bias"], eps)
        h = gelu(lin(x, "intermediate.dense"))
        x = layer_norm(lin(h, "output.dense") + x, t[p + "output.LayerNorm.weight"],
                       t[p + "output.LayerNorm.bias"], eps)
    e = x.mean(0)
    return e / np.linalg.norm(e)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model_dir")
    ap.add_argument("ids")
    ap.add_argument("out", nargs="?")
    ap.add_argument("--compare")
    ap.add_argument("--min-cosine", type=float, default=0.9999)
    a = ap.parse_args()
    t = load_safetensors(a.model_dir + "/model.safetensors")
    cfg = json.load(open(a.model_dir + "/config.json"))
    sentences = [[int(v) for v in line.split()] for line in open(a.ids) if line.strip()]
    ref = np.stack([forward(t, cfg, ids) for ids in sentences])
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

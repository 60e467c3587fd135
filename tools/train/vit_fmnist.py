#!/usr/bin/python3
"""ViT classifier (pre-LN, Hugging Face ViTForImageClassification names) on Fashion-MNIST with
vanilla / clipped-softmax / gated attention. No LayerNorm after the patch embedding unless
--patch-ln (the paper's vanilla ViT has none).

  nice -n 19 /usr/bin/python3 tools/train/vit_fmnist.py --variant vanilla --steps 1500 --out checkpoints/vit-vanilla

Data: the IDX files of Debian's dataset-fashion-mnist (/usr/share/datasets/fashion-mnist/*.gz); the
uncompressed copies that examples/vit reads are written to --idx-out.
"""
import argparse
import gzip
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

import common

MEAN, STD = 0.2860, 0.3530  # Fashion-MNIST training pixels / 255


def load_idx(path, out_dir):
    raw = gzip.open(path, "rb").read()
    (Path(out_dir) / Path(path).stem).write_bytes(raw)  # uncompressed copy for examples/vit
    rank = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(rank)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * rank).reshape(dims)


class Layer(nn.Module):
    def __init__(self, a):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(a.hidden, eps=1e-6), nn.LayerNorm(a.hidden, eps=1e-6)
        self.attn = common.SelfAttention(a.hidden, a.heads, a.variant, a.gamma, a.pi_init)
        self.fc1, self.fc2 = nn.Linear(a.hidden, a.ffn), nn.Linear(a.ffn, a.hidden)

    def forward(self, x):
        x = x + self.attn(self.ln1(x))
        return x + self.fc2(F.gelu(self.fc1(self.ln2(x))))


class ViT(nn.Module):
    def __init__(self, a):
        super().__init__()
        self.p, self.grid = a.patch, 28 // a.patch
        self.patch = nn.Linear(a.patch * a.patch, a.hidden)
        self.patch_ln = nn.LayerNorm(a.hidden, eps=1e-6) if a.patch_ln else None
        self.cls = nn.Parameter(torch.zeros(1, 1, a.hidden))
        self.pos = nn.Parameter(torch.randn(1, self.grid * self.grid + 1, a.hidden) * 0.02)
        self.layers = nn.ModuleList(Layer(a) for _ in range(a.layers))
        self.ln = nn.LayerNorm(a.hidden, eps=1e-6)
        self.classifier = nn.Linear(a.hidden, 10)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)

    def forward(self, img):  # img: B, 28, 28 uint8
        B, p, g = img.shape[0], self.p, self.grid
        x = (img.float() / 255 - MEAN) / STD
        x = x.view(B, g, p, g, p).permute(0, 1, 3, 2, 4).reshape(B, g * g, p * p)  # rows (gy, gx), cols (y, x)
        x = self.patch(x)
        if self.patch_ln is not None:
            x = self.patch_ln(x)
        x = torch.cat([self.cls.expand(B, -1, -1), x], 1) + self.pos
        for l in self.layers:
            x = l(x)
        return self.classifier(self.ln(x[:, 0]))

    def export(self):
        H = self.patch.weight.shape[0]
        out = {"vit.embeddings.patch_embeddings.projection.weight": self.patch.weight.view(H, 1, self.p, self.p),
               "vit.embeddings.patch_embeddings.projection.bias": self.patch.bias,
               "vit.embeddings.cls_token": self.cls, "vit.embeddings.position_embeddings": self.pos,
               "vit.layernorm.weight": self.ln.weight, "vit.layernorm.bias": self.ln.bias,
               "classifier.weight": self.classifier.weight, "classifier.bias": self.classifier.bias}
        if self.patch_ln is not None:
            out["vit.embeddings.patch_layernorm.weight"] = self.patch_ln.weight
            out["vit.embeddings.patch_layernorm.bias"] = self.patch_ln.bias
        names = {"q": "attention.attention.query", "k": "attention.attention.key", "v": "attention.attention.value",
                 "o": "attention.output.dense", "gate": "attention.attention.gate"}
        return common.export_layers(self.layers, "vit.encoder.layer.{}.", names, (
            ("layernorm_before", "ln1"), ("layernorm_after", "ln2"), ("intermediate.dense", "fc1"),
            ("output.dense", "fc2")), out)


def accuracy(model, x, y, batch=500):
    model.eval()
    with torch.no_grad():
        correct = sum(int((model(x[i:i + batch]).argmax(1) == y[i:i + batch]).sum()) for i in range(0, len(x), batch))
    model.train()
    return 100.0 * correct / len(x)


def main():
    ap = argparse.ArgumentParser()
    common.add_model_args(ap, hidden=96, ffn=384)
    ap.add_argument("--patch", type=int, default=7)
    ap.add_argument("--patch-ln", action="store_true")
    ap.add_argument("--alpha", type=float, default=0.0197, help="γ = −α/T (paper ViT: γ = −0.0001 at T = 197)")
    ap.add_argument("--pi-init", type=float, default=0.5)
    common.add_training_args(ap, steps=1500, batch=64)
    ap.add_argument("--eval-images", type=int, default=1000)
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--idx-out", default=str(common.REPO / "build-fidelity/fashion-mnist"))
    a = ap.parse_args()
    tokens = (28 // a.patch) ** 2 + 1
    a.gamma = common.gamma_for(a.alpha, tokens)
    common.set_threads()
    common.seed_everything(a.seed)
    Path(a.idx_out).mkdir(parents=True, exist_ok=True)
    load = lambda n: torch.from_numpy(load_idx(Path(a.data) / n, a.idx_out).copy())
    xtr, ytr = load("train-images-idx3-ubyte.gz"), load("train-labels-idx1-ubyte.gz").long()
    xte, yte = load("t10k-images-idx3-ubyte.gz"), load("t10k-labels-idx1-ubyte.gz").long()
    xte, yte = xte[:a.eval_images], yte[:a.eval_images]
    print(f"{len(xtr)} training images, {tokens} tokens, γ = {a.gamma:.6f}", flush=True)

    model = ViT(a)
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=0.05)
    warm = max(1, int(a.warmup * a.steps))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warm, 0.5 * (1 + math.cos(math.pi * min(1.0, s / a.steps)))))
    g = torch.Generator().manual_seed(a.seed)
    epoch = {"perm": torch.randperm(len(xtr), generator=g), "pos": 0}
    log = []

    def loss_at(step):
        if epoch["pos"] + a.batch > len(xtr):
            epoch["perm"], epoch["pos"] = torch.randperm(len(xtr), generator=g), 0
        idx = epoch["perm"][epoch["pos"]:epoch["pos"] + a.batch]
        epoch["pos"] += a.batch
        return F.cross_entropy(model(xtr[idx]), ytr[idx])

    def save(step, running, seconds):
        acc = accuracy(model, xte, yte)
        log.append({"step": step, "train_loss": running, "test_top1_torch": acc, "seconds": seconds})
        print(f"save step {step}: test top-1 (PyTorch, first {len(xte)} images) {acc:.2f} %", flush=True)
        cfg = {"architectures": ["ViTForImageClassification"], "model_type": "vit", "hidden_size": a.hidden,
               "num_hidden_layers": a.layers, "num_attention_heads": a.heads, "intermediate_size": a.ffn,
               "image_size": 28, "patch_size": a.patch, "num_channels": 1, "num_labels": 10,
               "hidden_act": "gelu", "layer_norm_eps": 1e-6, **common.qtx_config(a.variant, a.gamma),
               "qtx_patch_embedding_ln": a.patch_ln, "qtx_image_mean": [MEAN], "qtx_image_std": [STD],
               "qtx_gate_pi_init": a.pi_init if a.variant == "gated" else None}
        out = a.out if step == a.steps else f"{a.out}-step{step}"
        common.save_checkpoint(out, model.export(), cfg, None, {"args": vars(a), "log": log, "step": step})

    common.train(model, opt, sched, a, loss_at, save)

if __name__ == "__main__":
    main()

"""Shared pieces of the qtx training scripts: attention with the paper's three variants, a
safetensors writer (fp16 storage), the corpus, and the exported config keys the qtx examples read.

Attention variants (Bondarenko et al. 2023):
  vanilla  softmax(QKᵀ/√d) V
  clipped  clip((ζ − γ)·softmax(QKᵀ/√d) + γ, 0, 1) V   with γ = −α/T, ζ = 1 (no renormalisation)
  gated    π ⊙ softmax(QKᵀ/√d) V per head, π(t,h) = sigmoid(w_h · x(t,h) + b_h), x(t,h) the head's
           d_head slice of the block's input hidden state; b_h starts at logit(π_init)
           (gate "mlp": π(t,h) = sigmoid(w2_h · relu(W1_h x(t,h) + b1_h) + b2_h), hidden d_head/4,
           the paper's best gate for BERT; b2_h starts at logit(π_init))
"""
import json
import math
import os
import random
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[2]
VARIANTS = ("vanilla", "clipped", "gated")
GATES = ("linear", "mlp")
SPECIALS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


def seed_everything(seed):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def gamma_for(alpha, T):
    return -alpha / T


def clipped_softmax(scores, gamma, zeta=1.0):
    p = torch.softmax(scores, dim=-1)
    if gamma == 0.0 and zeta == 1.0:
        return p
    return torch.clamp((zeta - gamma) * p + gamma, 0.0, 1.0)


class SelfAttention(nn.Module):
    """Q/K/V/O projections with the variant's softmax and optional per-head linear gate.

    names: dict with keys q, k, v, o, gate → the Hugging Face submodule names of the model family."""

    def __init__(self, hidden, heads, variant, gamma=0.0, pi_init=0.5, gate="linear"):
        super().__init__()
        self.hidden, self.heads, self.d_head = hidden, heads, hidden // heads
        self.variant, self.gamma = variant, gamma if variant == "clipped" else 0.0
        self.gate = gate if variant == "gated" else None
        self.q, self.k, self.v, self.o = (nn.Linear(hidden, hidden) for _ in range(4))
        logit = math.log(pi_init / (1 - pi_init))
        # The gate's output factor: 1 when trained from scratch; 1 / π_init when gates are added to a
        # trained model (the paper's fine-tuning mode), so that the model starts where it was. Export
        # folds it into the output projection, which is linear in the context.
        self.gate_scale = 1.0
        if self.gate == "linear":
            self.gate_weight = nn.Parameter(torch.empty(heads, self.d_head).normal_(std=0.02))
            self.gate_bias = nn.Parameter(torch.full((heads,), logit))
        elif self.gate == "mlp":
            self.gate_hidden = max(1, self.d_head // 4)
            self.gate_w1 = nn.Parameter(torch.empty(heads, self.gate_hidden, self.d_head).normal_(std=0.02))
            self.gate_b1 = nn.Parameter(torch.zeros(heads, self.gate_hidden))
            self.gate_w2 = nn.Parameter(torch.empty(heads, self.gate_hidden).normal_(std=0.02))
            self.gate_b2 = nn.Parameter(torch.full((heads,), logit))

    def gate_logits(self, x):
        """(B, T, heads) gate logits from the block input x (B, T, hidden)."""
        B, T, _ = x.shape
        xh = x.view(B, T, self.heads, self.d_head)
        if self.gate == "linear":
            return (xh * self.gate_weight).sum(-1) + self.gate_bias
        h = F.relu(torch.einsum("btnd,nhd->btnh", xh, self.gate_w1) + self.gate_b1)
        return (h * self.gate_w2).sum(-1) + self.gate_b2

    def forward(self, x, key_mask=None, causal=False):
        B, T, H = x.shape
        split = lambda t: t.view(B, T, self.heads, self.d_head).transpose(1, 2)  # B, h, T, dh
        q, k, v = split(self.q(x)), split(self.k(x)), split(self.v(x))
        scores = q @ k.transpose(-1, -2) / math.sqrt(self.d_head)
        if key_mask is not None:  # B, T (1 = real token)
            scores = scores.masked_fill(key_mask[:, None, None, :] == 0, float("-inf"))
        if causal:
            future = torch.ones(T, T, dtype=torch.bool, device=x.device).triu(1)
            scores = scores.masked_fill(future, float("-inf"))
        p = clipped_softmax(scores, self.gamma)
        ctx = p @ v  # B, h, T, dh
        if self.gate:
            pi = torch.sigmoid(self.gate_logits(x))  # B, T, h
            ctx = ctx * (self.gate_scale * pi.transpose(1, 2)[..., None])
        ctx = ctx.transpose(1, 2).reshape(B, T, H)
        return self.o(ctx)

    def export(self, prefix, names, out):
        for key in ("q", "k", "v", "o"):
            lin = getattr(self, key)
            out[f"{prefix}{names[key]}.weight"] = lin.weight
            out[f"{prefix}{names[key]}.bias"] = lin.bias
        if self.gate and self.gate_scale != 1.0:
            out[f"{prefix}{names['o']}.weight"] = self.o.weight * self.gate_scale
        g = f"{prefix}{names['gate']}."
        if self.gate == "linear":
            out[g + "weight"], out[g + "bias"] = self.gate_weight, self.gate_bias
        elif self.gate == "mlp":
            out[g + "fc1.weight"], out[g + "fc1.bias"] = self.gate_w1, self.gate_b1
            out[g + "fc2.weight"], out[g + "fc2.bias"] = self.gate_w2, self.gate_b2


def export_layers(layers, prefix, attention_names, module_names, out):
    """Adds every layer's tensors under its Hugging Face names: prefix.format(i) + name.
    attention_names: see SelfAttention.export; module_names: (HF name, layer attribute) of the
    layer's other Linear / LayerNorm modules."""
    for i, layer in enumerate(layers):
        p = prefix.format(i)
        layer.attn.export(p, attention_names, out)
        for name, attr in module_names:
            mod = getattr(layer, attr)
            out[p + name + ".weight"], out[p + name + ".bias"] = mod.weight, mod.bias
    return out


def qtx_config(variant, gamma, gate="linear", d_head=None):
    cfg = {"qtx_variant": variant, "qtx_softmax_gamma": gamma if variant == "clipped" else 0.0,
           "qtx_softmax_zeta": 1.0, "qtx_gate": "none"}
    if variant == "gated":
        cfg["qtx_gate"] = {"linear": "linear_per_head", "mlp": "mlp_per_head"}[gate]
        if gate == "mlp":
            cfg["qtx_gate_hidden"] = max(1, d_head // 4)
    return cfg


def write_safetensors(path, tensors, dtype=torch.float16):
    """Minimal safetensors writer: 8-byte header length, JSON header, raw little-endian data."""
    names = sorted(tensors)
    header, blobs, offset = {}, [], 0
    for n in names:
        t = tensors[n].detach().to("cpu", dtype).contiguous()
        data = t.numpy().tobytes()
        header[n] = {"dtype": {torch.float16: "F16", torch.float32: "F32"}[dtype], "shape": list(t.shape),
                     "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    head = json.dumps(header, separators=(",", ":")).encode()
    head += b" " * ((8 - len(head) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(head)))
        f.write(head)
        for b in blobs:
            f.write(b)


def write_shared_vocab(path, vocab_lines):
    """The text checkpoints share one vocabulary file beside them (checkpoints/vocab.txt; the examples
    take it with --vocab): written once, and a checkpoint with another vocabulary is refused."""
    text = "\n".join(vocab_lines) + "\n"
    if path.exists():
        if path.read_text(encoding="utf-8") != text:
            sys.exit(f"{path} holds another vocabulary; train into another folder")
        return
    path.write_text(text, encoding="utf-8")


def save_checkpoint(out_dir, tensors, config, vocab_lines=None, extra=None, dtype=torch.float16):
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if vocab_lines is not None:
        write_shared_vocab(out_dir.parent / "vocab.txt", vocab_lines)
    write_safetensors(out_dir / "model.safetensors", tensors, dtype)
    (out_dir / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    if extra:
        (out_dir / "train_log.json").write_text(json.dumps(extra, indent=2) + "\n")


def text_splits(text_dir):
    """tools/prepare_text.py's SOTU splits (≤ 2000 train, > 2000 held out); made if missing."""
    text_dir = Path(text_dir)
    if not (text_dir / "sotu_calibration.txt").exists():
        subprocess.run([sys.executable, str(REPO / "tools/prepare_text.py"), str(REPO / "data"), str(text_dir)],
                       check=True)
    read = lambda n: [l for l in (text_dir / n).read_text(encoding="utf-8").splitlines() if l.strip()]
    return read("sotu_calibration.txt"), read("sotu_heldout.txt")


def sotu_corpus(a):
    """The SOTU splits and the tokenizer of the text trainers: (train sentences, held-out sentences,
    vocabulary lines, WordPiece). The restricted vocabulary is cached beside the text."""
    from wordpiece import WordPiece
    train_text, held_text = text_splits(a.text)
    cache = Path(a.text) / f"bert_vocab_{a.max_len}.txt"
    if not cache.exists():
        cache.write_text("\n".join(restricted_vocab(WordPiece(a.vocab), train_text, a.max_len)) + "\n",
                         encoding="utf-8")
    return train_text, held_text, cache.read_text(encoding="utf-8").splitlines(), WordPiece(cache)


def add_text_args(ap):
    ap.add_argument("--text", default=str(REPO / "build-fidelity/text"))
    ap.add_argument("--vocab", default=str(REPO / "models/minilm/vocab.txt"))


def restricted_vocab(tok, sentences, max_len):
    """The corpus's WordPiece tokens plus every single-character piece and the specials, in the
    original order. Greedy longest-match gives the same pieces with this vocabulary on the corpus
    (every piece it picked is kept and no longer one is added), and still covers unseen words."""
    keep = set()
    for s in sentences:
        keep.update(tok.encode(s, max_len))
    lines = []
    for i, t in enumerate(tok.tokens):
        single = len(t) == 1 or (t.startswith("##") and len(t) == 3)
        if i in keep or single or t in SPECIALS:
            lines.append(t)
    return lines


def set_threads():
    torch.set_num_threads(int(os.environ.get("QTX_TRAIN_THREADS", "1")))


def add_model_args(ap, hidden, ffn, layers=4, heads=4):
    """The attention variant and the transformer's size."""
    ap.add_argument("--variant", choices=VARIANTS, required=True)
    ap.add_argument("--hidden", type=int, default=hidden)
    ap.add_argument("--layers", type=int, default=layers)
    ap.add_argument("--heads", type=int, default=heads)
    ap.add_argument("--ffn", type=int, default=ffn)


def add_training_args(ap, steps, batch, lr=1e-3, warmup=0.05):
    """The arguments every trainer takes (the loop's), with the trainer's defaults."""
    ap.add_argument("--steps", type=int, default=steps)
    ap.add_argument("--batch", type=int, default=batch)
    ap.add_argument("--lr", type=float, default=lr)
    ap.add_argument("--warmup", type=float, default=warmup)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--save-at", default="", help="comma-separated steps to save (the last step always is)")
    ap.add_argument("--out", required=True)


def warmup_then_linear_decay(opt, a):
    warm = max(1, int(a.warmup * a.steps))
    return torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warm, max(0.0, (a.steps - s) / max(1, a.steps - warm))))


def train(model, opt, sched, a, loss_at, save):
    """The loop the trainers share: loss_at(step) gives the batch loss; gradients clipped to norm 1;
    an EMA of the loss printed every 100 steps; save(step, ema_loss, seconds) at a.save_at and at the end."""
    save_at = {int(s) for s in a.save_at.split(",") if s} | {a.steps}
    t0, running = time.time(), None
    for step in range(1, a.steps + 1):
        loss = loss_at(step)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        running = loss.item() if running is None else 0.98 * running + 0.02 * loss.item()
        if step % 100 == 0:
            print(f"step {step} loss {running:.3f} {time.time() - t0:.0f}s", flush=True)
        if step in save_at:
            save(step, running, time.time() - t0)

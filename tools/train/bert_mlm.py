#!/usr/bin/python3
"""BERT-style masked LM (post-LN, GELU, Hugging Face BertForMaskedLM names) on State of the Union
sentences up to 2000, with vanilla / clipped-softmax / gated attention.

  nice -n 19 /usr/bin/python3 tools/train/bert_mlm.py --variant vanilla --steps 3000 \
      --save-at 750,1500,3000 --out checkpoints/bert-vanilla

Writes OUT[-stepN]/{model.safetensors (fp16), config.json, train_log.json} and OUT/../vocab.txt (the
vocabulary all text checkpoints share: examples/bert --vocab checkpoints/vocab.txt). The vocabulary
is MiniLM's WordPiece restricted to the pieces the corpus uses (see common.restricted_vocab), so the
exported vocab.txt drives qtx's tokenizer to the same ids. Held-out MLM perplexity uses the
deterministic masking of examples/bert --mlm-eval: every position t (1 ≤ t ≤ T−2) of sentence s
with (t + s) % 7 == 0 becomes [MASK].
"""
import argparse
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

import common

EVAL_MASK_PERIOD = 7


class Layer(nn.Module):
    def __init__(self, a):
        super().__init__()
        self.attn = common.SelfAttention(a.hidden, a.heads, a.variant, a.gamma, a.pi_init, a.gate)
        self.ln1 = nn.LayerNorm(a.hidden, eps=1e-12)
        self.fc1, self.fc2 = nn.Linear(a.hidden, a.ffn), nn.Linear(a.ffn, a.hidden)
        self.ln2 = nn.LayerNorm(a.hidden, eps=1e-12)

    def forward(self, x, mask):
        x = self.ln1(x + self.attn(x, mask))
        return self.ln2(x + self.fc2(F.gelu(self.fc1(x))))


class BertMLM(nn.Module):
    def __init__(self, a, vocab):
        super().__init__()
        self.word = nn.Embedding(vocab, a.hidden)
        self.pos = nn.Embedding(a.max_len, a.hidden)
        self.token_type = nn.Embedding(2, a.hidden)
        self.ln = nn.LayerNorm(a.hidden, eps=1e-12)
        self.layers = nn.ModuleList(Layer(a) for _ in range(a.layers))
        self.head_dense = nn.Linear(a.hidden, a.hidden)
        self.head_ln = nn.LayerNorm(a.hidden, eps=1e-12)
        self.head_bias = nn.Parameter(torch.zeros(vocab))
        for m in self.modules():  # BERT's initialisation
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, std=0.02)
            if isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)

    def encode(self, ids, mask):
        """The last layer's token states (B, T, hidden)."""
        T = ids.shape[1]
        x = self.word(ids) + self.pos.weight[:T] + self.token_type.weight[0]
        x = self.ln(x)
        for l in self.layers:
            x = l(x, mask)
        return x

    def forward(self, ids, mask, targets_at=None):
        x = self.encode(ids, mask)
        h = x[targets_at] if targets_at is not None else x
        h = self.head_ln(F.gelu(self.head_dense(h)))
        return h @ self.word.weight.t() + self.head_bias

    def export(self):
        out = {"embeddings.word_embeddings.weight": self.word.weight,
               "embeddings.position_embeddings.weight": self.pos.weight,
               "embeddings.token_type_embeddings.weight": self.token_type.weight,
               "embeddings.LayerNorm.weight": self.ln.weight, "embeddings.LayerNorm.bias": self.ln.bias,
               "cls.predictions.transform.dense.weight": self.head_dense.weight,
               "cls.predictions.transform.dense.bias": self.head_dense.bias,
               "cls.predictions.transform.LayerNorm.weight": self.head_ln.weight,
               "cls.predictions.transform.LayerNorm.bias": self.head_ln.bias,
               "cls.predictions.bias": self.head_bias}
        names = {"q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
                 "o": "attention.output.dense", "gate": "attention.self.gate"}
        return common.export_layers(self.layers, "encoder.layer.{}.", names, (
            ("attention.output.LayerNorm", "ln1"), ("intermediate.dense", "fc1"), ("output.dense", "fc2"),
            ("output.LayerNorm", "ln2")), out)


def encode_corpus(tok, sentences, max_len):
    return [np.array(tok.encode(s, max_len), dtype=np.int64) for s in sentences]


def batches(seqs, batch, rng):
    """Random batches of sentences of similar length (less padding): sort a random pool by length."""
    pool = 50 * batch
    while True:
        idx = rng.choice(len(seqs), pool, replace=False)
        idx = idx[np.argsort([len(seqs[i]) for i in idx], kind="stable")]
        chunks = [idx[i:i + batch] for i in range(0, pool, batch)]
        for j in rng.permutation(len(chunks)):
            yield [seqs[i] for i in chunks[j]]


def pad(seqs, pad_id):
    T = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), T), pad_id, dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, :len(s)] = torch.from_numpy(s)
    return ids, (ids != pad_id).long()


def mlm_mask(ids, attn, tok, vocab, rng):
    """BERT's dynamic masking: 15 % of the real tokens; 80 % [MASK], 10 % random, 10 % unchanged."""
    special = (ids == tok_cls) | (ids == tok_sep) | (attn == 0)
    chosen = (torch.from_numpy(rng.random(ids.shape)) < 0.15) & ~special
    inputs = ids.clone()
    r = torch.from_numpy(rng.random(ids.shape))
    inputs[chosen & (r < 0.8)] = tok_mask
    rand = chosen & (r >= 0.8) & (r < 0.9)
    inputs[rand] = torch.from_numpy(rng.integers(len(common.SPECIALS), vocab, ids.shape))[rand]
    return inputs, chosen


def eval_ppl(model, seqs, batch=64):
    model.eval()
    nll, count = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(seqs), batch):
            chunk = seqs[start:start + batch]
            ids, attn = pad(chunk, tok_pad)
            at = torch.zeros_like(ids, dtype=torch.bool)
            for b, s in enumerate(chunk):
                for t in range(1, len(s) - 1):
                    at[b, t] = (t + start + b) % EVAL_MASK_PERIOD == 0
            inputs = ids.masked_fill(at, tok_mask)
            logits = model(inputs, attn, at)
            nll += F.cross_entropy(logits, ids[at], reduction="sum").item()
            count += int(at.sum())
    model.train()
    return math.exp(nll / count)


def main():
    global tok_cls, tok_sep, tok_mask, tok_pad
    ap = argparse.ArgumentParser()
    common.add_model_args(ap, hidden=128, ffn=512)
    ap.add_argument("--max-len", type=int, default=128)
    ap.add_argument("--alpha", type=float, default=3.2, help="clipped softmax: γ = −α/T, T = max-len (paper: −0.025 at 128)")
    ap.add_argument("--pi-init", type=float, default=0.25)
    ap.add_argument("--gate", choices=common.GATES, default="linear", help="gated variant: per-head linear or MLP gate")
    common.add_training_args(ap, steps=2000, batch=64)
    ap.add_argument("--eval-sentences", type=int, default=500)
    common.add_text_args(ap)
    a = ap.parse_args()
    a.gamma = common.gamma_for(a.alpha, a.max_len)
    common.set_threads()
    common.seed_everything(a.seed)

    train_text, held_text, vocab_lines, tok = common.sotu_corpus(a)
    tok_cls, tok_sep, tok_mask, tok_pad = tok.cls, tok.sep, tok.mask, tok.pad
    train = encode_corpus(tok, train_text, a.max_len)
    held = encode_corpus(tok, held_text[::max(1, len(held_text) // a.eval_sentences)][:a.eval_sentences], a.max_len)
    V = len(vocab_lines)
    print(f"vocab {V}, {len(train)} training sentences, {len(held)} held-out; γ = {a.gamma:.5f}", flush=True)

    model = BertMLM(a, V)
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=0.01, betas=(0.9, 0.98))
    rng = np.random.default_rng(a.seed)
    stream, log = batches(train, a.batch, rng), []

    def loss_at(step):
        ids, attn = pad(next(stream), tok.pad)
        inputs, at = mlm_mask(ids, attn, tok, V, rng)
        return F.cross_entropy(model(inputs, attn, at), ids[at])

    def save(step, running, seconds):
        ppl = eval_ppl(model, held)
        log.append({"step": step, "train_loss": running, "heldout_mlm_ppl_torch": ppl, "seconds": seconds})
        print(f"save step {step}: held-out MLM ppl (PyTorch, fp32) {ppl:.2f}", flush=True)
        cfg = {"architectures": ["BertForMaskedLM"], "model_type": "bert", "vocab_size": V,
               "hidden_size": a.hidden, "num_hidden_layers": a.layers, "num_attention_heads": a.heads,
               "intermediate_size": a.ffn, "max_position_embeddings": a.max_len, "type_vocab_size": 2,
               "hidden_act": "gelu", "layer_norm_eps": 1e-12,
               **common.qtx_config(a.variant, a.gamma, a.gate, a.hidden // a.heads),
               "qtx_gate_pi_init": a.pi_init if a.variant == "gated" else None}
        out = a.out if step == a.steps else f"{a.out}-step{step}"
        common.save_checkpoint(out, model.export(), cfg, vocab_lines, {"args": vars(a), "log": log, "step": step})

    common.train(model, opt, common.warmup_then_linear_decay(opt, a), a, loss_at, save)

if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""OPT-style causal LM (pre-LN, ReLU FFN, learned positions with OPT's offset of 2, LM head tied to the
token embeddings; Hugging Face OPTForCausalLM names) on State of the Union sentences up to 2000, with
vanilla / clipped-softmax / gated attention.

  nice -n 19 /usr/bin/python3 tools/train/opt_clm.py --variant gated --steps 2400 --out checkpoints/opt-gated

Each training sequence is one sentence as the WordPiece tokenizer encodes it ([CLS] … [SEP]); [CLS] plays
the role of OPT's BOS token. The held-out perplexity predicts every next token of the sentences
examples/opt reads (every 3rd non-empty line of sotu_heldout.txt), so the C++ FP32 number must match the
one logged here. Clipped softmax: γ = −α/T with the paper's OPT α = 12 and T = max-len.
"""
import argparse
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

import common
from bert_mlm import batches, encode_corpus, pad

POSITION_OFFSET = 2  # OPT's learned positions start at row 2


class Layer(nn.Module):
    def __init__(self, a):
        super().__init__()
        self.attn_ln = nn.LayerNorm(a.hidden, eps=1e-5)
        self.attn = common.SelfAttention(a.hidden, a.heads, a.variant, a.gamma, a.pi_init)
        self.ffn_ln = nn.LayerNorm(a.hidden, eps=1e-5)
        self.fc1, self.fc2 = nn.Linear(a.hidden, a.ffn), nn.Linear(a.ffn, a.hidden)

    def forward(self, x):
        x = x + self.attn(self.attn_ln(x), causal=True)
        return x + self.fc2(F.relu(self.fc1(self.ffn_ln(x))))


class OptLM(nn.Module):
    def __init__(self, a, vocab):
        super().__init__()
        self.tokens = nn.Embedding(vocab, a.hidden)
        self.positions = nn.Embedding(a.max_len + POSITION_OFFSET, a.hidden)
        self.layers = nn.ModuleList(Layer(a) for _ in range(a.layers))
        self.final_ln = nn.LayerNorm(a.hidden, eps=1e-5)
        for m in self.modules():  # OPT's initialisation
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, std=0.02)
            if isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)

    def forward(self, ids):
        T = ids.shape[1]
        x = self.tokens(ids) + self.positions.weight[POSITION_OFFSET:POSITION_OFFSET + T]
        for l in self.layers:
            x = l(x)
        return self.final_ln(x) @ self.tokens.weight.t()

    def export(self):
        d = "model.decoder."
        out = {d + "embed_tokens.weight": self.tokens.weight, d + "embed_positions.weight": self.positions.weight,
               d + "final_layer_norm.weight": self.final_ln.weight, d + "final_layer_norm.bias": self.final_ln.bias}
        names = {"q": "self_attn.q_proj", "k": "self_attn.k_proj", "v": "self_attn.v_proj",
                 "o": "self_attn.out_proj", "gate": "self_attn.gate"}
        return common.export_layers(self.layers, d + "layers.{}.", names, (
            ("self_attn_layer_norm", "attn_ln"), ("final_layer_norm", "ffn_ln"), ("fc1", "fc1"), ("fc2", "fc2")), out)


def next_token_nll(model, ids, real):
    """Sum of −log p(token t+1 | ≤ t) over real (non-pad) targets, and their count."""
    logits = model(ids)[:, :-1]
    targets, keep = ids[:, 1:], real[:, 1:].bool()
    return F.cross_entropy(logits[keep], targets[keep], reduction="sum"), int(keep.sum())


def eval_ppl(model, seqs, pad_id, batch=64):
    model.eval()
    nll, count = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(seqs), batch):
            ids, real = pad(seqs[start:start + batch], pad_id)
            s, n = next_token_nll(model, ids, real)
            nll, count = nll + s.item(), count + n
    model.train()
    return math.exp(nll / count)


def main():
    ap = argparse.ArgumentParser()
    common.add_model_args(ap, hidden=128, ffn=512)
    ap.add_argument("--max-len", type=int, default=128)
    ap.add_argument("--alpha", type=float, default=12.0, help="clipped softmax: γ = −α/T, T = max-len (paper's OPT α = 12)")
    ap.add_argument("--pi-init", type=float, default=0.25, help="gate bias logit(π_init) (paper's OPT value)")
    common.add_training_args(ap, steps=2400, batch=32)
    ap.add_argument("--eval-sentences", type=int, default=200, help="as examples/opt --sentences")
    common.add_text_args(ap)
    a = ap.parse_args()
    a.gamma = common.gamma_for(a.alpha, a.max_len)
    common.set_threads()
    common.seed_everything(a.seed)

    train_text, held_text, vocab_lines, tok = common.sotu_corpus(a)
    train = encode_corpus(tok, train_text, a.max_len)
    held = encode_corpus(tok, held_text[::3][:a.eval_sentences], a.max_len)
    V = len(vocab_lines)
    print(f"vocab {V}, {len(train)} training sentences, {len(held)} held-out; γ = {a.gamma:.5f}", flush=True)

    model = OptLM(a, V)
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=0.01, betas=(0.9, 0.98))
    stream, log = batches(train, a.batch, np.random.default_rng(a.seed)), []

    def loss_at(step):
        nll, count = next_token_nll(model, *pad(next(stream), tok.pad))
        return nll / count

    def save(step, running, seconds):
        ppl = eval_ppl(model, held, tok.pad)
        log.append({"step": step, "train_loss": running, "heldout_ppl_torch": ppl, "seconds": seconds})
        print(f"save step {step}: held-out ppl (PyTorch, fp32) {ppl:.2f}", flush=True)
        cfg = {"architectures": ["OPTForCausalLM"], "model_type": "opt", "vocab_size": V,
               "hidden_size": a.hidden, "num_hidden_layers": a.layers, "num_attention_heads": a.heads,
               "ffn_dim": a.ffn, "max_position_embeddings": a.max_len, "do_layer_norm_before": True,
               "activation_function": "relu", **common.qtx_config(a.variant, a.gamma, "linear", a.hidden // a.heads),
               "qtx_gate_pi_init": a.pi_init if a.variant == "gated" else None}
        out = a.out if step == a.steps else f"{a.out}-step{step}"
        common.save_checkpoint(out, model.export(), cfg, vocab_lines, {"args": vars(a), "log": log, "step": step})

    common.train(model, opt, common.warmup_then_linear_decay(opt, a), a, loss_at, save)

if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""Context-free baselines for the LM tables: the perplexity of the training split's unigram token
distribution (add-one smoothed) on exactly the positions examples/bert --mlm-eval masks, and on every
next token examples/opt predicts (every 3rd held-out sentence, [SEP] included).

  /usr/bin/python3 tools/train/unigram_baseline.py [--heldout 500] [--opt-sentences 500]
"""
import argparse
import math
from collections import Counter
from pathlib import Path

import common
from wordpiece import WordPiece

ap = argparse.ArgumentParser()
ap.add_argument("--heldout", type=int, default=500)
ap.add_argument("--opt-sentences", type=int, default=500)
ap.add_argument("--text", default=str(common.REPO / "build-fidelity/text"))
a = ap.parse_args()
train, held = common.text_splits(a.text)
tok = WordPiece(Path(a.text) / "bert_vocab_128.txt")
counts, counts_next = Counter(), Counter()  # words only; words and [SEP] (a next-token target)
for s in train:
    ids = tok.encode(s)
    counts.update(ids[1:-1])
    counts_next.update(ids[1:])
total, total_next, V = sum(counts.values()), sum(counts_next.values()), len(tok.tokens)
stride = max(1, len(held) // a.heldout)
nll, n = 0.0, 0
for i, s in enumerate(held[::stride][:a.heldout]):
    ids = tok.encode(s)
    for t in range(1, len(ids) - 1):
        if (t + i) % 7 == 0:
            nll -= math.log((counts[ids[t]] + 1) / (total + V))
            n += 1
print(f"unigram MLM perplexity over {n} masked held-out tokens: {math.exp(nll / n):.1f}")

nll, n = 0.0, 0
for s in held[::3][:a.opt_sentences]:
    for t in tok.encode(s)[1:]:
        nll -= math.log((counts_next[t] + 1) / (total_next + V))
        n += 1
print(f"unigram next-token perplexity over {n} held-out tokens: {math.exp(nll / n):.1f}")

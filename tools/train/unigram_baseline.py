#!/usr/bin/python3
"""Context-free baseline for the MLM table: the perplexity of the training split's unigram token
distribution (add-one smoothed) on exactly the positions examples/bert --mlm-eval masks.

  /usr/bin/python3 tools/train/unigram_baseline.py [--heldout 500]
"""
import argparse
import math
from collections import Counter
from pathlib import Path

import common
from wordpiece import WordPiece

ap = argparse.ArgumentParser()
ap.add_argument("--heldout", type=int, default=500)
ap.add_argument("--text", default=str(common.REPO / "build-fidelity/text"))
a = ap.parse_args()
train, held = common.text_splits(a.text)
tok = WordPiece(Path(a.text) / "bert_vocab_128.txt")
counts = Counter()
for s in train:
    counts.update(tok.encode(s)[1:-1])
total, V = sum(counts.values()), len(tok.tokens)
stride = max(1, len(held) // a.heldout)
nll, n = 0.0, 0
for i, s in enumerate(held[::stride][:a.heldout]):
    ids = tok.encode(s)
    for t in range(1, len(ids) - 1):
        if (t + i) % 7 == 0:
            nll -= math.log((counts[ids[t]] + 1) / (total + V))
            n += 1
print(f"unigram MLM perplexity over {n} masked held-out tokens: {math.exp(nll / n):.1f}")

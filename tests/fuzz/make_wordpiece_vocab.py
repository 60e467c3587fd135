#!/usr/bin/env python3
"""Writes tests/fuzz/minilm_vocab_subset.txt, the vocabulary of the WordPiece fuzzer: a subset of the
all-MiniLM-L6-v2 vocab.txt (BERT's uncased WordPiece vocabulary, Apache-2.0; see tests/fuzz/README.md)
that keeps every script the full vocabulary covers: the five special tokens, every single-character
token and its "##" continuation, the 2000 most frequent whole words and the 600 most frequent
multi-character continuations, in their original order (ids are line numbers of the subset).

Usage: python3 tests/fuzz/make_wordpiece_vocab.py [vocab=models/minilm/vocab.txt] [out]
"""
import os
import sys

here = os.path.dirname(os.path.abspath(__file__))
src = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "..", "..", "models", "minilm", "vocab.txt")
out = sys.argv[2] if len(sys.argv) > 2 else os.path.join(here, "minilm_vocab_subset.txt")
WORDS, CONTINUATIONS = 2000, 600

vocab = [line.rstrip("\n") for line in open(src, encoding="utf-8")]
special = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"}
words = [t for t in vocab if len(t) > 1 and not t.startswith(("##", "["))][:WORDS]
continuations = [t for t in vocab if t.startswith("##") and len(t) > 3][:CONTINUATIONS]
keep = special | set(words) | set(continuations)
keep |= {t for t in vocab if len(t) == 1 or (t.startswith("##") and len(t) == 3)}
subset = [t for t in vocab if t in keep]
with open(out, "w", encoding="utf-8") as fh:
    fh.write("\n".join(subset) + "\n")
print(f"{len(subset)} of {len(vocab)} tokens in {out}")

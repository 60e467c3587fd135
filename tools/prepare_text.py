#!/usr/bin/env python3
"""Turns the corpora in data/ into the plain-text inputs of the qtx examples.

  prepare_text.py DATA_DIR OUT_DIR        (DATA_DIR: the repository's data/, see data/README.md)

Writes (one item a line, UTF-8):
  sotu_calibration.txt  sentences from State of the Union speeches up to 2000 (calibration / training)
  sotu_heldout.txt      sentences from the speeches after 2000 (held out, as the paper's test split)
  spam.tsv              label<TAB>split<TAB>text for SpamAssassin: subject + start of the body;
                        split by a hash of the message id (never by position), 80 % train / 20 % test
Deterministic: same inputs, same outputs.
"""
import hashlib
import json
import lzma
import re
import sys
from pathlib import Path

SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"'])")


def sentences(text):
    text = re.sub(r"\s+", " ", text).strip()
    for s in SENTENCE_END.split(text):
        words = s.split()
        if 6 <= len(words) <= 60:
            yield s


def email_text(raw):
    head, _, body = raw.partition("\n\n")
    subject = ""
    for line in head.splitlines():
        if line.lower().startswith("subject:"):
            subject = line[8:].strip()
            break
    body = re.sub(r"<[^>]+>", " ", body)  # drop HTML tags
    body = re.sub(r"\s+", " ", body).strip()
    return (subject + " . " + body)[:600].replace("\t", " ")


def main():
    data, out = Path(sys.argv[1]), Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    calib, held = [], []
    with lzma.open(data / "sotu.jsonl.xz", "rt", encoding="utf-8") as f:
        for line in f:
            doc = json.loads(line)
            year = int(doc["id"][:4])
            (calib if year <= 2000 else held).extend(sentences(doc["text"]))
    (out / "sotu_calibration.txt").write_text("\n".join(calib) + "\n", encoding="utf-8")
    (out / "sotu_heldout.txt").write_text("\n".join(held) + "\n", encoding="utf-8")
    rows = []
    with lzma.open(data / "spam_assassin.jsonl.xz", "rt", encoding="utf-8") as f:
        for line in f:
            doc = json.loads(line)
            h = int(hashlib.sha256(doc["id"].encode()).hexdigest(), 16) % 5
            rows.append(f"{doc['label']}\t{'test' if h == 0 else 'train'}\t{email_text(doc['text'])}")
    (out / "spam.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    print(f"prepare_text: {len(calib)} calibration and {len(held)} held-out sentences, {len(rows)} emails -> {out}")


if __name__ == "__main__":
    main()

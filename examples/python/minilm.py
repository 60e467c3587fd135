"""MiniLM (all-MiniLM-L6-v2) from Python: FP32 vs W8A8 sentence embeddings on held-out real text.

    scripts/setup-minilm.sh models/minilm && /usr/bin/python3 tools/prepare_text.py data build/text
    PYTHONPATH=build/release/python /usr/bin/python3 examples/python/minilm.py models/minilm build/text

The same sentences, calibration and W8A8 modes as the C++ demo (examples/bert), through the qtx
package: cosine of each mode's sentence embedding to FP32, and ms per sentence (batch 1, and batch
32 packed without padding).
"""
import argparse
import time

import numpy as np

import qtx
from qtx.models import Bert, length_sorted_batches, sentence_embeddings

MODES = [  # (name, quantize() arguments): the C++ demo's W8A8 modes
    ("static, paper's points", {}),
    ("static, float residual stream", {"round_residuals": False}),
    ("dynamic per token", {"round_residuals": False, "activations": "dynamic-token"}),
    ("per token + smoothing 0.5", {"round_residuals": False, "activations": "dynamic-token", "smoothing_alpha": 0.5}),
]


def read_lines(path, count, stride):
    """The C++ demo's selection: every stride-th non-empty line, up to count."""
    lines, seen = [], 0
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if line and len(lines) < count:
                if seen % stride == 0:
                    lines.append(line)
                seen += 1
    return lines


def embed_one_by_one(model, ids, w8a8):
    start = time.perf_counter()
    out = [sentence_embeddings(model.forward(s, w8a8=w8a8), [len(s)])[0] for s in ids]
    return np.stack(out), (time.perf_counter() - start) * 1e3 / len(ids)


def embed_batched(model, ids, w8a8, size=32):
    out = np.empty((len(ids), model.hidden), np.float32)
    start = time.perf_counter()
    for chosen in length_sorted_batches(ids, size):
        batch = [ids[i] for i in chosen]
        out[chosen] = sentence_embeddings(model.forward(batch, w8a8=w8a8), [len(s) for s in batch])
    return out, (time.perf_counter() - start) * 1e3 / len(ids)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", help="checkpoint folder (config.json, model.safetensors, vocab.txt)")
    ap.add_argument("text", help="folder of sotu_calibration.txt and sotu_heldout.txt (tools/prepare_text.py)")
    ap.add_argument("--heldout", type=int, default=1000)
    ap.add_argument("--calibration", type=int, default=256)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()

    qtx.set_num_threads(args.threads)
    model = Bert.from_pretrained(args.model)
    tok = qtx.WordPiece(f"{args.model}/vocab.txt")
    calibration = [tok.encode(s, 128) for s in read_lines(f"{args.text}/sotu_calibration.txt", args.calibration, 7)]
    heldout = [tok.encode(s, 128) for s in read_lines(f"{args.text}/sotu_heldout.txt", args.heldout, 1)]
    print(f"qtx {qtx.__version__} ({qtx.backend()}), {qtx.get_num_threads()} thread(s): {model.n_layers} layers, "
          f"hidden {model.hidden}; {len(heldout)} held-out sentences "
          f"(mean {np.mean([len(s) for s in heldout]):.1f} tokens), {len(calibration)} calibration")
    model.calibrate(calibration)

    fp32, ms = embed_one_by_one(model, heldout, False)
    _, ms_batch = embed_batched(model, heldout, False)
    print(f"{'mode':32s} {'cos mean':>9s} {'cos min':>9s} {'ms/sent b1':>11s} {'ms/sent b32':>12s}")
    print(f"{'FP32':32s} {1:9.5f} {1:9.5f} {ms:11.2f} {ms_batch:12.2f}")
    for name, options in MODES:
        model.quantize(**options)
        emb, ms = embed_one_by_one(model, heldout, True)
        batched, ms_batch = embed_batched(model, heldout, True)
        cos = np.sum(emb * fp32, axis=1)
        same = "" if np.array_equal(batched, emb) else "  (batched differs!)"
        print(f"{'W8A8 ' + name:32s} {cos.mean():9.5f} {cos.min():9.5f} {ms:11.2f} {ms_batch:12.2f}{same}")


if __name__ == "__main__":
    main()

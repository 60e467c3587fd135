#!/usr/bin/python3
"""Evaluates every checkpoint under checkpoints/ with qtx's int8 kernels, in this process (the qtx
Python package: qtx.models.Bert / Opt / ViT on the library's encoder layers; not PyTorch), and writes
the paper's Table 2 layout (FP32 metric, max inf-norm, avg kurtosis, W8A8 metric) plus per-layer
plots to docs/.

  tools/train/evaluate.py --build build-fid [--bert-sentences 500] [--opt-sentences 500] [--vit-images 1000]
                          [--calibration 256] [--only NAME]

--build: a build folder with the Python module (ninja -C BUILD qtx_python_module). The protocols are
the C++ examples' (same sentences, masking, images and calibration; on one machine the same numbers as
the examples to the printed digits, except where the module's -march=native build and the examples'
dispatched variant round a W8A8 value differently, e.g. bert-gated-mlp-long 845.783 vs 845.789):
BERT MLM checkpoints as examples/bert --mlm-eval (held-out SOTU, deterministic masking: position t of
sentence s is masked when (t + s) % 7 == 0); OPT causal LM checkpoints as examples/opt (next-token
perplexity on every 3rd held-out sentence); ViT checkpoints as examples/vit (the first Fashion-MNIST
test images). Activation ranges: running min-max over `calibration` training sentences / images, one
per FP32 pass. Outlier statistics: every layer's output on the calibration inputs. Outputs:
build-fidelity/eval/<name>/{summary.json,layer_stats.csv}, docs/fidelity/<name>.png,
docs/fidelity/trend_*.png, docs/fidelity/table.md.
"""
import argparse
import gzip
import json
import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
MASK_PERIOD = 7


def step_of(name):
    m = re.search(r"-step(\d+)$", name)
    return int(m.group(1)) if m else None


def read_lines(path, count, stride=1):
    """Non-empty lines, every stride-th of them, up to count (examples/common/demo.hpp's read_lines)."""
    lines, seen = [], 0
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if len(lines) >= count:
                break
            if line and seen % stride == 0:
                lines.append(line)
            if line:
                seen += 1
    return lines


def read_idx(folder, name):
    """A Fashion-MNIST IDX file (uncompressed, or its .gz) as a uint8 array of its dimensions."""
    path = Path(folder) / name
    data = path.read_bytes() if path.exists() else gzip.open(str(path) + ".gz").read()
    rank = data[3]
    dims = [int.from_bytes(data[4 + 4 * d:8 + 4 * d], "big") for d in range(rank)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * rank).reshape(dims)


def nll(logits, targets):
    """Sum of −log softmax(row)[target] in float64 (the examples' token_nll)."""
    z = logits.astype(np.float64)
    top = logits.max(axis=1).astype(np.float64)
    return float(np.sum(np.log(np.exp(z - top[:, None]).sum(axis=1)) + top - z[np.arange(len(targets)), targets]))


class LayerStats:
    """qtx.OutlierStats of every layer's output, per calibration input."""

    def __init__(self, qtx, layers):
        self.stats = [qtx.OutlierStats() for _ in range(layers)]

    def __call__(self, layer, x):
        self.stats[layer].add_sequence(x)

    def write(self, path):
        with open(path, "w") as f:
            f.write("layer,max_inf_norm,mean_inf_norm,avg_kurtosis\n")
            for i, s in enumerate(self.stats):
                f.write(f"{i},{s.max_inf_norm},{s.mean_inf_norm},{s.mean_kurtosis}\n")
        return {"max_inf_norm": max(s.max_inf_norm for s in self.stats),
                "avg_kurtosis": sum(s.mean_kurtosis for s in self.stats) / len(self.stats)}


def evaluate_bert(qtx, ck, a, text, tok, mask_id):
    model = qtx.models.Bert.from_pretrained(ck)
    stats = LayerStats(qtx, model.n_layers)
    model.calibrate((tok.encode(s, 128) for s in read_lines(text / "sotu_calibration.txt", a.calibration, 7)),
                    layer_outputs=stats)
    model.quantize()
    held = read_lines(text / "sotu_heldout.txt", math.inf)
    stride = max(1, len(held) // max(a.bert_sentences, 1))
    totals, masked_tokens = [0.0, 0.0], 0
    for s in range(a.bert_sentences):
        if s * stride >= len(held):
            break
        ids = tok.encode(held[s * stride], 128)
        positions = [t for t in range(1, len(ids) - 1) if (t + s) % MASK_PERIOD == 0]
        masked = [mask_id if t in positions else i for t, i in enumerate(ids)]
        for k, w8a8 in enumerate((False, True)):
            logits = model.mlm_logits(model.forward(masked, w8a8=w8a8))
            totals[k] += nll(logits[positions], np.asarray(ids)[positions]) if positions else 0.0
        masked_tokens += len(positions)
    return {"metric": "mlm_ppl", "fp32": math.exp(totals[0] / masked_tokens), "w8a8": math.exp(totals[1] / masked_tokens),
            "masked_tokens": masked_tokens}, stats


def evaluate_opt(qtx, ck, a, text, tok):
    model = qtx.models.Opt.from_pretrained(ck)
    max_len = min(model.max_positions, 128)
    stats = LayerStats(qtx, model.n_layers)
    model.calibrate((tok.encode(s, max_len) for s in read_lines(text / "sotu_calibration.txt", a.calibration, 13)),
                    layer_outputs=stats)
    model.quantize()
    totals, tokens = [0.0, 0.0], 0
    for s in read_lines(text / "sotu_heldout.txt", a.opt_sentences, 3):
        ids = np.asarray(tok.encode(s, max_len))
        for k, w8a8 in enumerate((False, True)):
            totals[k] += nll(model.logits(ids, w8a8=w8a8)[:-1], ids[1:])
        tokens += len(ids) - 1
    return {"metric": "ppl", "fp32": math.exp(totals[0] / tokens), "w8a8": math.exp(totals[1] / tokens),
            "tokens": tokens}, stats


def evaluate_vit(qtx, ck, a, images):
    model = qtx.models.ViT.from_pretrained(ck)
    stats = LayerStats(qtx, model.n_layers)
    train = images["train"]
    stride = max(1, len(train) // a.calibration)
    model.calibrate((train[(i * stride) % len(train)] for i in range(a.calibration)), layer_outputs=stats)
    model.quantize()
    n = min(a.vit_images, len(images["test"]))
    test, labels = images["test"][:n], images["labels"][:n]
    correct = [int(np.sum(model.forward(test, w8a8=w8a8).argmax(axis=1) == labels)) for w8a8 in (False, True)]
    return {"metric": "top1_accuracy", "fp32": 100.0 * correct[0] / n, "w8a8": 100.0 * correct[1] / n,
            "images": n}, stats


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=str(REPO / "build-fid"), help="build folder holding python/ (the qtx module)")
    ap.add_argument("--bert-sentences", type=int, default=500)
    ap.add_argument("--opt-sentences", type=int, default=500)
    ap.add_argument("--vit-images", type=int, default=1000)
    ap.add_argument("--calibration", type=int, default=256)
    ap.add_argument("--fashion-mnist", default=str(REPO / "build-fidelity/fashion-mnist"),
                    help="IDX files (or their .gz); falls back to /usr/share/datasets/fashion-mnist")
    ap.add_argument("--only", default="", help="evaluate only checkpoints whose name contains this")
    a = ap.parse_args()
    sys.path.insert(0, str(Path(a.build) / "python"))
    import qtx  # noqa: E402  (the module of --build)
    qtx.set_num_threads(1)
    evals, docs = REPO / "build-fidelity/eval", REPO / "docs/fidelity"
    docs.mkdir(parents=True, exist_ok=True)
    text = REPO / "build-fidelity/text"
    vocab = REPO / "checkpoints/vocab.txt"  # the one vocabulary of every BERT and OPT checkpoint
    tok = qtx.WordPiece(str(vocab))
    mask_id = tok.id_of("[MASK]")
    images = None
    rows = []
    for ck in sorted(d for d in (REPO / "checkpoints").iterdir() if d.is_dir()):
        cfg = json.loads((ck / "config.json").read_text())
        out = evals / ck.name
        out.mkdir(parents=True, exist_ok=True)
        summary = out / "summary.json"
        fresh = summary.exists() and summary.stat().st_mtime > (ck / "model.safetensors").stat().st_mtime
        if a.only in ck.name and not fresh:
            print("evaluating", ck.name, flush=True)
            if cfg["model_type"] == "bert":
                result, stats = evaluate_bert(qtx, ck, a, text, tok, mask_id)
            elif cfg["model_type"] == "opt":
                result, stats = evaluate_opt(qtx, ck, a, text, tok)
            elif cfg["model_type"] == "vit":
                if images is None:
                    folder = a.fashion_mnist if Path(a.fashion_mnist).exists() else "/usr/share/datasets/fashion-mnist"
                    images = {"train": read_idx(folder, "train-images-idx3-ubyte"),
                              "test": read_idx(folder, "t10k-images-idx3-ubyte"),
                              "labels": read_idx(folder, "t10k-labels-idx1-ubyte")}
                result, stats = evaluate_vit(qtx, ck, a, images)
            else:
                continue
            result.update(stats.write(out / "layer_stats.csv"))
            summary.write_text(json.dumps(result) + "\n")
            print(f"  {result['metric']}: FP32 {result['fp32']:.3f}, W8A8 {result['w8a8']:.3f}; "
                  f"max inf-norm {result['max_inf_norm']:.2f}, avg kurtosis {result['avg_kurtosis']:.1f}", flush=True)
            subprocess.run(["bash", str(REPO / "scripts/plot-layer-stats.sh"), out / "layer_stats.csv",
                            docs / f"{ck.name}.png", f"{ck.name}: FP32 layer outputs"], check=True,
                           stdout=subprocess.DEVNULL)
        if not summary.exists():
            continue
        s = json.loads(summary.read_text())
        train = json.loads((ck / "train_log.json").read_text())
        rows.append({"name": ck.name, "family": cfg["model_type"], "variant": cfg.get("qtx_variant", "vanilla"),
                     "gamma": cfg["qtx_softmax_gamma"], "gate": cfg["qtx_gate"], "step": train["step"], **s,
                     "torch": train["log"][-1]})
    (evals / "results.json").write_text(json.dumps(rows, indent=2) + "\n")

    lines = ["| checkpoint | variant | steps | metric | FP32 | max inf-norm | avg kurtosis | W8A8 | Δ (W8A8 − FP32) |",
             "|---|---|---:|---|---:|---:|---:|---:|---:|"]
    for r in sorted(rows, key=lambda r: (r["family"], r["variant"] != "vanilla", r["variant"], r["step"])):
        metric = {"mlm_ppl": "MLM ppl ↓", "ppl": "ppl ↓", "top1_accuracy": "top-1 % ↑"}[r["metric"]]
        lines.append(f"| {r['name']} | {r['variant']} | {r['step']} | {metric} | {r['fp32']:.2f} | "
                     f"{r['max_inf_norm']:.2f} | {r['avg_kurtosis']:.1f} | {r['w8a8']:.2f} | {r['w8a8'] - r['fp32']:+.2f} |")
    (docs / "table.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))

    # Trend of the vanilla models' outliers with training length.
    for family in ("bert", "opt", "vit"):
        pts = sorted((r["step"], r["max_inf_norm"], r["avg_kurtosis"]) for r in rows
                     if r["family"] == family and r["variant"] == "vanilla")
        if len(pts) < 2:
            continue
        dat = evals / f"trend_{family}.dat"
        dat.write_text("".join(f"{s} {m} {k}\n" for s, m, k in pts))
        gp = f"""set terminal pngcairo size 800,450 font ",11"
set output "{docs / f'trend_{family}.png'}"
set title "{family} vanilla: outliers vs training steps (FP32 layer outputs)"
set xlabel "training step"; set ylabel "max inf-norm"; set y2label "avg kurtosis"
set ytics nomirror; set y2tics; set key top left; set style data linespoints
plot "{dat}" using 1:2 title "max inf-norm" lw 2, "" using 1:3 axes x1y2 title "avg kurtosis" lw 2 dt 2
"""
        subprocess.run(["gnuplot"], input=gp, text=True, check=True)


if __name__ == "__main__":
    main()

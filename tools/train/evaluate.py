#!/usr/bin/python3
"""Evaluates every checkpoint under checkpoints/ with the qtx C++ examples (not PyTorch) and writes
the paper's Table 2 layout (FP32 metric, max inf-norm, avg kurtosis, W8A8 metric) plus per-layer
plots to docs/.

  tools/train/evaluate.py --build build-fid [--bert-sentences 500] [--opt-sentences 500] [--vit-images 1000]
                          [--calibration 256]

BERT MLM checkpoints: examples/bert --mlm-eval (held-out SOTU > 2000, deterministic masking);
OPT causal LM checkpoints: examples/opt (next-token perplexity on every 3rd held-out sentence);
ViT checkpoints: examples/vit (Fashion-MNIST test images). Activation ranges: running min-max over
`calibration` training sentences / images. Outputs: build-fidelity/eval/<name>/{summary.json,
layer_stats.csv,log.txt}, docs/fidelity/<name>.png, docs/fidelity/trend_*.png, docs/fidelity/table.md.
"""
import argparse
import json
import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def step_of(name):
    m = re.search(r"-step(\d+)$", name)
    return int(m.group(1)) if m else None


def run(cmd, log):
    print("+", " ".join(map(str, cmd)), flush=True)
    with open(log, "w") as f:
        subprocess.run(["nice", "-n", "19", *map(str, cmd)], check=True, stdout=f, stderr=subprocess.DEVNULL)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=str(REPO / "build-fid"))
    ap.add_argument("--bert-sentences", type=int, default=500)
    ap.add_argument("--opt-sentences", type=int, default=500)
    ap.add_argument("--vit-images", type=int, default=1000)
    ap.add_argument("--calibration", type=int, default=256)
    ap.add_argument("--only", default="", help="evaluate only checkpoints whose name contains this")
    a = ap.parse_args()
    build, evals, docs = Path(a.build), REPO / "build-fidelity/eval", REPO / "docs/fidelity"
    docs.mkdir(parents=True, exist_ok=True)
    text, idx = REPO / "build-fidelity/text", REPO / "build-fidelity/fashion-mnist"
    vocab = REPO / "checkpoints/vocab.txt"  # the one vocabulary of every BERT and OPT checkpoint
    rows = []
    for ck in sorted(d for d in (REPO / "checkpoints").iterdir() if d.is_dir()):
        cfg = json.loads((ck / "config.json").read_text())
        out = evals / ck.name
        out.mkdir(parents=True, exist_ok=True)
        summary = out / "summary.json"
        fresh = summary.exists() and summary.stat().st_mtime > (ck / "model.safetensors").stat().st_mtime
        if a.only in ck.name and not fresh:
            if cfg["model_type"] == "bert":
                run([build / "examples/bert", ck, text, "--mlm-eval", "--heldout", a.bert_sentences,
                     "--calibration", a.calibration, "--vocab", vocab, "--out", out], out / "log.txt")
            elif cfg["model_type"] == "opt":
                run([build / "examples/opt", ck, text, "--sentences", a.opt_sentences, "--calibration", a.calibration,
                     "--vocab", vocab, "--out", out], out / "log.txt")
            elif cfg["model_type"] == "vit":
                run([build / "examples/vit", ck, idx, "--images", a.vit_images, "--calibration", a.calibration,
                     "--out", out], out / "log.txt")
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

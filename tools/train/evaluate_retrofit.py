#!/usr/bin/python3
"""Evaluates the original MiniLM and its retrofits (tools/train/retrofit_minilm.py) with the qtx BERT
demo (examples/bert, real int8 kernels, 1 thread) and writes docs/fidelity/retrofit.md (one row per
model and W8A8 mode, cosines against the *original* FP32 model) and the per-layer plot of the
residual sums' max inf-norm, docs/fidelity/retrofit_residuals.png, and the training curves
(outliers and cosine vs step, from each retrofit's train_log.json), docs/fidelity/retrofit_curve.png.

  tools/train/evaluate_retrofit.py --bert build/release/examples/bert [--heldout 1000] [--calibration 256]
                                   [--retrofits build-fidelity/retrofit] [--text build/text]

Each model's run goes to build-fidelity/eval-retrofit/<name>/ (log.txt, summary.json,
residual_stats.csv); a run whose summary is newer than its weights is reused.
"""
import argparse
import json
import os
import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def step_of(name):
    m = re.search(r"-step(\d+)$", name)
    return int(m.group(1)) if m else None


def evaluate(bert, model, text, out, heldout, calibration, reference=None):
    summary = out / "summary.json"
    if summary.exists() and summary.stat().st_mtime > (model / "model.safetensors").stat().st_mtime:
        return json.loads(summary.read_text())
    out.mkdir(parents=True, exist_ok=True)
    cmd = [bert, model, text, "--heldout", heldout, "--calibration", calibration, "--out", out]
    if reference:
        cmd += ["--reference", reference]
    print("+", " ".join(map(str, cmd)), flush=True)
    with open(out / "log.txt", "w") as log:
        subprocess.run(list(map(str, cmd)), check=True, stdout=log, stderr=subprocess.DEVNULL,
                       env=dict(os.environ, OMP_NUM_THREADS="1"))
    return json.loads(summary.read_text())


def residual_extremes(s):
    sums = s["attention_residual_sums"] + s["ffn_residual_sums"]
    return max(x["max_inf_norm"] for x in sums), sum(x["avg_kurtosis"] for x in s["ffn_residual_sums"]) / len(
        s["ffn_residual_sums"])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bert", default=str(REPO / "build/release/examples/bert"))
    ap.add_argument("--original", default=str(REPO / "models/minilm"))
    ap.add_argument("--retrofits", default=str(REPO / "build-fidelity/retrofit"))
    ap.add_argument("--text", default=str(REPO / "build/text"))
    ap.add_argument("--heldout", type=int, default=1000)
    ap.add_argument("--calibration", type=int, default=256)
    ap.add_argument("--with-steps", action="store_true", help="also run the demo on the -stepN checkpoints")
    a = ap.parse_args()
    evals, docs = REPO / "build-fidelity/eval-retrofit", REPO / "docs/fidelity"
    docs.mkdir(parents=True, exist_ok=True)
    original = Path(a.original)

    results = {"original": evaluate(a.bert, original, a.text, evals / "original", a.heldout, a.calibration)}
    logs = {}
    for ck in sorted(Path(a.retrofits).iterdir()):
        if not (ck / "config.json").exists() or "qtx_retrofit_of" not in json.loads((ck / "config.json").read_text()):
            continue
        if step_of(ck.name) is not None and not a.with_steps:
            continue
        results[ck.name] = evaluate(a.bert, ck, a.text, evals / ck.name, a.heldout, a.calibration, original)
        logs[ck.name] = json.loads((ck / "train_log.json").read_text())
    (evals / "results.json").write_text(json.dumps(results, indent=2) + "\n")

    finals = ["original"] + [n for n in results if n != "original" and step_of(n) is None]
    lines = [f"| model | mode | cosine vs original FP32, mean | min | spam probe % | max inf-norm (residual sums) "
             f"| avg kurtosis (FFN sums) | ms/sentence |", "|---|---|---:|---:|---:|---:|---:|---:|"]
    for name in finals:
        s = results[name]
        inf, kurt = residual_extremes(s)
        fp32_cos = s["fp32"].get("cosine", {"mean": 1.0, "min": 1.0})
        lines.append(f"| {name} | FP32 | {fp32_cos['mean']:.5f} | {fp32_cos['min']:.5f} | {100 * s['fp32']['probe']:.2f} "
                     f"| {inf:.1f} | {kurt:.1f} | {s['fp32']['ms']:.2f} |")
        for m in s["w8a8"]:
            lines.append(f"| {name} | W8A8 {m['mode']} | {m['cosine']['mean']:.5f} | {m['cosine']['min']:.5f} "
                         f"| {100 * m['probe']:.2f} | | | {m['ms']:.2f} |")
    lines += ["", "| retrofit | step | PyTorch: cosine to original, mean | min | max residual inf-norm "
                  "| qtx W8A8 static (paper) cosine, mean | min |", "|---|---:|---:|---:|---:|---:|---:|"]
    for name in finals[1:]:
        for row in logs[name]["log"]:
            at = name if row["step"] == logs[name]["step"] else f"{name}-step{row['step']}"
            static = results[at]["w8a8"][0]["cosine"] if at in results else None
            qtx_cells = f"{static['mean']:.5f} | {static['min']:.5f}" if static else " | "
            lines.append(f"| {name} | {row['step']} | {row['cosine_mean']:.5f} | {row['cosine_min']:.5f} "
                         f"| {row['max_inf_norm']:.1f} | {qtx_cells} |")
    (docs / "retrofit.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))

    dat = evals / "residuals.dat"
    layers = len(results["original"]["ffn_residual_sums"])
    dat.write_text("".join(f"{i} " + " ".join(
        f"{max(results[n]['attention_residual_sums'][i]['max_inf_norm'], results[n]['ffn_residual_sums'][i]['max_inf_norm'])}"
        for n in finals) + "\n" for i in range(layers)))
    plots = ", ".join(f'"{dat}" using 1:{c + 2} title "{n}" lw 2' for c, n in enumerate(finals))
    gp = f"""set terminal pngcairo size 800,450 font ",11"
set output "{docs / 'retrofit_residuals.png'}"
set title "MiniLM residual sums (LN inputs), max inf-norm per layer, calibration text"
set xlabel "layer"; set ylabel "max inf-norm"; set key top right; set style data linespoints
set xtics 1; set yrange [0:*]
plot {plots}
"""
    subprocess.run(["gnuplot"], input=gp, text=True, check=True)

    # The training curve of each retrofit (PyTorch, held-out sentences): outliers and cosine vs step.
    curves = []
    for name in finals[1:]:
        dat = evals / f"curve_{name}.dat"
        dat.write_text("".join(f"{r['step']} {r['max_inf_norm']} {r['cosine_mean']}\n" for r in logs[name]["log"]))
        curves += [f'"{dat}" using 1:2 title "{name}: max inf-norm" lw 2',
                   f'"{dat}" using 1:3 axes x1y2 title "{name}: cosine to original" lw 2 dt 2']
    gp = f"""set terminal pngcairo size 800,450 font ",11"
set output "{docs / 'retrofit_curve.png'}"
set title "Retrofit of MiniLM: residual-sum outliers and fidelity vs fine-tuning steps (PyTorch, held-out)"
set xlabel "step"; set ylabel "max inf-norm of the residual sums"; set y2label "embedding cosine to the original"
set ytics nomirror; set y2tics; set key center right; set style data linespoints; set logscale y
plot {", ".join(curves)}
"""
    subprocess.run(["gnuplot"], input=gp, text=True, check=True)


if __name__ == "__main__":
    main()

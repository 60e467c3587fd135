"""The peer benchmark: qtx vs ONNX Runtime on all-MiniLM-L6-v2 and on a BERT-base-shaped layer, same
token ids, 1 thread, one table. Run through benchmarks/peers/run.sh (README.md there).

  bench.py --minilm MODEL_DIR --ids IDS_DIR --work DIR [--passes N]

IDS_DIR holds calibration_ids.txt and heldout_ids.txt (qtx_peers_runner tokenize). Both systems run
in this process from Python: ONNX Runtime's session and the qtx package's BERT (qtx.models.Bert, the
build's python/ folder on PYTHONPATH), so each pays its own Python overhead. Every system runs every
sentence once per pass; the passes interleave the systems, so the load of a shared machine hits all
of them alike; the table gives the median pass (and the range).
"""
import argparse
import logging
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort
import qtx
from qtx.models import Bert, length_sorted_batches, sentence_embeddings

import bert_layer
import bert_onnx
import ort_models

BATCH = 32


def read_ids(path):
    return [[int(t) for t in line.split()] for line in Path(path).read_text().splitlines() if line.strip()]


def pooled(hidden, lengths):
    """sentence-transformers' embedding: mean over the real tokens, L2-normalised."""
    rows = [h[:n].astype(np.float64).mean(axis=0) for h, n in zip(hidden, lengths)]
    return np.array([r / np.linalg.norm(r) for r in rows])


def session(path):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class result:
    """Seconds per pass for the whole sequence set (wall clock and the thread's CPU time), and the
    embeddings of the last pass."""

    def __init__(self):
        self.seconds = {"wall": [], "cpu": []}
        self.embeddings = None


def ort_pass(sess, sequences, batch, out):
    """One pass over the sequences in batches of `batch`. Batches group sentences of similar length
    (sorted by length, as a throughput server buckets them), each padded to its longest with a mask;
    the embeddings come back in the original order."""
    embeddings, wall, cpu = [None] * len(sequences), 0.0, 0.0
    for chunk in length_sorted_batches(sequences, batch):
        feeds = ort_models.feeds([sequences[j] for j in chunk])
        c0, t0 = time.thread_time(), time.perf_counter()
        hidden = sess.run(None, feeds)[0]
        wall += time.perf_counter() - t0
        cpu += time.thread_time() - c0
        for j, e in zip(chunk, pooled(hidden, [len(sequences[j]) for j in chunk])):
            embeddings[j] = e
    out.seconds["wall"].append(wall)
    out.seconds["cpu"].append(cpu)
    out.embeddings = np.array(embeddings)


# qtx's W8A8 modes (qtx.models.Bert.quantize arguments): the paper's static points, 7-bit weights
# (ORT's reduce_range: the AVX2 backend's exact vpmaddubsw kernel), and GEMM inputs quantized per
# call with the residual stream float.
PER_TOKEN = "W8A8 dynamic per token"
QTX_MODES = {
    "W8A8": {},
    "W8A8, 7-bit weights": {"weight_bits": 7},
    "W8A8 dynamic per tensor": {"activations": "dynamic-tensor", "round_residuals": False},
    PER_TOKEN: {"activations": "dynamic-token", "round_residuals": False},
    PER_TOKEN + ", 7-bit weights": {"activations": "dynamic-token", "round_residuals": False, "weight_bits": 7},
}


def qtx_pass(model, sequences, batch, out, w8a8):
    """One pass of the qtx model over the sequences, `batch` per forward: the same length-sorted
    batches as ort_pass, packed back to back without padding (no mask, no padding work)."""
    embeddings = np.empty((len(sequences), model.hidden))
    wall = cpu = 0.0
    for chunk in length_sorted_batches(sequences, batch):
        ids = [sequences[j] for j in chunk]
        c0, t0 = time.thread_time(), time.perf_counter()
        hidden = model.forward(ids if batch > 1 else ids[0], w8a8=w8a8)
        wall += time.perf_counter() - t0
        cpu += time.thread_time() - c0
        embeddings[chunk] = sentence_embeddings(hidden, [len(s) for s in ids])
    out.seconds["wall"].append(wall)
    out.seconds["cpu"].append(cpu)
    out.embeddings = embeddings


def build_ort(model_dir, work, calibration, log):
    """ORT FP32 (fused), int8 dynamic and int8 static models of the BERT in model_dir."""
    work.mkdir(parents=True, exist_ok=True)
    config = bert_onnx.export(model_dir, work / "model.onnx")
    heads, hidden = config["num_attention_heads"], config["hidden_size"]
    fused = ort_models.optimize(work / "model.onnx", work / "fp32.onnx", heads, hidden)
    ort_models.optimize(work / "model.onnx", work / "unfused_attention.onnx", heads, hidden, fuse_attention=False)
    log(f"{model_dir}: ORT fused {fused}")
    ort_models.quantize_int8_dynamic(work / "fp32.onnx", work / "int8_dynamic.onnx")
    ort_models.quantize_int8_static(work / "unfused_attention.onnx", work / "int8_static.onnx", calibration)
    return {"FP32": session(work / "fp32.onnx"), "int8 dynamic": session(work / "int8_dynamic.onnx"),
            "int8 static QDQ": session(work / "int8_static.onnx")}


@dataclass
class workload:
    """One model, its id files, and its ORT sessions."""
    name: str
    model_dir: Path
    calibration_ids: Path
    eval_ids: Path
    work: Path
    log: object
    batched: bool  # also measure batch 32

    def __post_init__(self):
        self.sequences = read_ids(self.eval_ids)
        calibration = read_ids(self.calibration_ids)
        self.sessions = build_ort(self.model_dir, self.work / ("ort_" + self.name.replace(" ", "_")),
                                  calibration, self.log)
        self.qtx = Bert.from_pretrained(self.model_dir)
        self.qtx.calibrate(calibration)  # one sequence per FP32 pass, as the C++ demo


def mean_cosine(a, b):
    return float(np.mean(np.sum(a * b, axis=1)))


def cpu_model():
    for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
        if line.startswith("Model name:"):
            return line.split(":", 1)[1].strip()
    return "unknown CPU"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minilm", required=True, type=Path)
    ap.add_argument("--ids", required=True, type=Path)
    ap.add_argument("--work", required=True, type=Path)
    ap.add_argument("--passes", type=int, default=3)
    ap.add_argument("--clock", choices=("cpu", "wall"), default="cpu",
                    help="the time behind sentences/s and the last line: the thread's CPU time (default; "
                         "on a shared machine it hides the other processes' load best) or the wall clock")
    args = ap.parse_args()
    if args.passes < 1:
        sys.exit(f"bench.py: --passes ({args.passes}) must be >= 1")
    qtx.set_num_threads(1)  # ORT's sessions use one thread too

    def log(message):
        print(f"[peers] {message}", file=sys.stderr, flush=True)

    layer_dir = bert_layer.write(args.work / "bert_base_layer")
    log("exporting and quantizing the ONNX models")
    workloads = [workload("MiniLM", args.minilm, args.ids / "calibration_ids.txt", args.ids / "heldout_ids.txt",
                          args.work, log, batched=True),
                 workload("BERT-base layer", layer_dir, layer_dir / "calibration_ids.txt",
                          layer_dir / "eval_ids.txt", args.work, log, batched=False)]
    rows = {}  # (model, system, precision, batch) -> result

    def row(w, *key):
        return rows.setdefault((w.name,) + key, result())

    for p in range(args.passes):
        for w in workloads:
            log(f"pass {p + 1}/{args.passes}: {w.name}")
            for batch in (1, BATCH) if w.batched else (1,):
                if p == 0:
                    qtx_pass(w.qtx, w.sequences[:BATCH], batch, result(), False)  # warm-up
                qtx_pass(w.qtx, w.sequences, batch, row(w, "qtx", "FP32", str(batch)), False)
                for name, options in QTX_MODES.items():
                    w.qtx.quantize(**options)
                    qtx_pass(w.qtx, w.sequences, batch, row(w, "qtx", name, str(batch)), True)
            for precision, sess in w.sessions.items():
                if p == 0:
                    ort_pass(sess, w.sequences[:BATCH], 1, result())  # warm-up
                ort_pass(sess, w.sequences, 1, row(w, "ORT", precision, "1"))
                if w.batched:
                    ort_pass(sess, w.sequences, BATCH, row(w, "ORT", precision, str(BATCH)))
    print_table(rows, {w.name: w for w in workloads}, args.clock)


def print_table(rows, workloads, clock):
    minilm, layer = workloads["MiniLM"].sequences, workloads["BERT-base layer"].sequences
    passes = len(next(iter(rows.values())).seconds["wall"])
    print(f"\nPeer benchmark, 1 thread. CPU: {cpu_model()}. onnxruntime {ort.__version__}; qtx {qtx.__version__} "
          f"({qtx.backend()} backend), both from Python in one process.")
    print(f"MiniLM: all-MiniLM-L6-v2 on {len(minilm)} held-out SOTU sentences (the BERT demo's token ids, mean "
          f"{np.mean([len(s) for s in minilm]):.1f} tokens). BERT-base layer: 1 layer, hidden 768, 12 heads, FFN "
          f"3072, random weights, {len(layer)} calls of T={len(layer[0])}. Batch 32: length-sorted batches; ORT pads "
          f"each to its longest sentence with a mask, qtx packs them back to back (no padding). Median (range) of {passes} interleaved passes; cos: mean cosine of the mean-pooled "
          f"embeddings. sentences/s and the ratio use the {clock} time.")
    print("| model | system | precision | batch | ms per sentence, wall (range) | ms per sentence, CPU (range) | "
          "sentences/s | cos vs ORT FP32 | cos vs qtx FP32 |")
    print("|---|---|---|---|---|---|---|---|---|")
    ms = {}
    for model, w in workloads.items():
        sequences = w.sequences
        ref_ort = rows[(model, "ORT", "FP32", "1")].embeddings
        ref_qtx = rows[(model, "qtx", "FP32", "1")].embeddings
        keys = [k for k in rows if k[0] == model]
        keys.sort(key=lambda k: (k[3] != "1", k[1] != "ORT", k[2]))
        for key in keys:
            r = rows[key]
            per = {c: [1e3 * s / len(sequences) for s in r.seconds[c]] for c in ("wall", "cpu")}
            cell = {c: f"{statistics.median(v):.2f} ({min(v):.2f}-{max(v):.2f})" for c, v in per.items()}
            ms[key] = statistics.median(per[clock])
            print(f"| {model} | {key[1]} | {key[2]} | {key[3]} | {cell['wall']} | {cell['cpu']} | "
                  f"{1e3 / ms[key]:.0f} | {mean_cosine(r.embeddings, ref_ort):.5f} | "
                  f"{mean_cosine(r.embeddings, ref_qtx):.5f} |")
    for name in (PER_TOKEN, PER_TOKEN + ", 7-bit weights"):
        for batch in (str(BATCH), "1"):
            ratio = ms[("MiniLM", "ORT", "int8 dynamic", batch)] / ms[("MiniLM", "qtx", name, batch)]
            print(f"qtx {name} vs ORT int8 dynamic, MiniLM batch {batch}: {ratio:.2f}x")
    for batch in (str(BATCH), "1"):  # the batch-1 line last: its form is fixed
        ratio = ms[("MiniLM", "ORT", "int8 dynamic", batch)] / ms[("MiniLM", "qtx", "W8A8", batch)]
        print(f"qtx W8A8 vs ORT int8 dynamic, MiniLM batch {batch}: {ratio:.2f}x")


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    # The quantizers log through the root logger (advice on pre-processing, which ort_models does).
    logging.getLogger().setLevel(logging.ERROR)
    main()

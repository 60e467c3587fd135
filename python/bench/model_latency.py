"""MiniLM from Python (qtx.models.Bert) vs the same model in C++ (the BERT example's, timed by
qtx_peers_runner), on the same token ids: ms per sentence and whether the embeddings agree.

Run (from the repository, after benchmarks/peers/run.sh or `qtx_peers_runner tokenize` made the ids):
  OMP_NUM_THREADS=1 PYTHONPATH=build/release/python /usr/bin/python3 python/bench/model_latency.py \\
      --runner build/release/benchmarks/peers/qtx_peers_runner --minilm models/minilm \\
      --ids build/peers/minilm_ids --work build/model_latency [--passes 3] [--sentences 1000]

Each pass runs the C++ runner (its own process: calibrate, then FP32 and W8A8 over every sentence)
and then the Python model over the same sentences; the table gives the median pass of the thread's
CPU time per forward call (the range in brackets) and Python / C++.
"""
import argparse
import statistics
import subprocess
import time
from pathlib import Path

import numpy as np

import qtx
from qtx.models import Bert, length_sorted_batches, sentence_embeddings

# (name, C++ runner --mode, qtx.models.Bert.quantize arguments): the same mode on both sides.
MODES = [("W8A8 static (paper)", 0, {}),
         ("W8A8 dynamic per token", 3, {"activations": "dynamic-token", "round_residuals": False})]


def read_ids(path, limit=None):
    lines = [line for line in Path(path).read_text().splitlines() if line.strip()]
    return [[int(t) for t in line.split()] for line in lines[:limit]]


def python_pass(model, sequences, batch, w8a8):
    """CPU seconds of every forward call and the embeddings, in the runner's batching (length-sorted, packed)."""
    embeddings, cpu = np.empty((len(sequences), model.hidden), np.float32), 0.0
    for chunk in length_sorted_batches(sequences, batch):
        ids = [sequences[j] for j in chunk]
        c0 = time.thread_time()
        hidden = model.forward(ids if batch > 1 else ids[0], w8a8=w8a8)
        cpu += time.thread_time() - c0
        embeddings[chunk] = sentence_embeddings(hidden, [len(s) for s in ids])
    return cpu, embeddings


def overhead_bound(layers, tokens, calls=2000):
    """CPU ms per forward of a BERT with MiniLM's structure (layers, one sequence of `tokens` tokens)
    but 16 wide, where the kernels cost next to nothing: an upper bound of what Python adds per call."""
    rng = np.random.default_rng(0)
    c = dict(vocab_size=100, hidden_size=16, num_hidden_layers=layers, num_attention_heads=4, intermediate_size=32,
             max_position_embeddings=128, layer_norm_eps=1e-12, hidden_act="gelu")
    shapes = {"embeddings.word_embeddings.weight": (100, 16), "embeddings.position_embeddings.weight": (128, 16),
              "embeddings.token_type_embeddings.weight": (2, 16), "embeddings.LayerNorm.weight": (16,),
              "embeddings.LayerNorm.bias": (16,)}
    for i in range(layers):
        for name, shape in (("attention.self.query", (16, 16)), ("attention.self.key", (16, 16)),
                            ("attention.self.value", (16, 16)), ("attention.output.dense", (16, 16)),
                            ("intermediate.dense", (32, 16)), ("output.dense", (16, 32))):
            shapes[f"encoder.layer.{i}.{name}.weight"] = shape
            shapes[f"encoder.layer.{i}.{name}.bias"] = shape[:1]
        for name in ("attention.output.LayerNorm", "output.LayerNorm"):
            shapes[f"encoder.layer.{i}.{name}.weight"] = shapes[f"encoder.layer.{i}.{name}.bias"] = (16,)
    model = Bert(c, {k: rng.normal(scale=0.1, size=v).astype(np.float32) for k, v in shapes.items()})
    ids = list(range(1, tokens + 1))
    model.calibrate([ids])
    model.quantize()
    result = {}
    for w8a8 in (False, True):
        model.forward(ids, w8a8=w8a8)
        c0 = time.thread_time()
        for _ in range(calls):
            model.forward(ids, w8a8=w8a8)
        result[w8a8] = 1e3 * (time.thread_time() - c0) / calls
    return result


def cpp_pass(runner, minilm, calibration_ids, eval_ids, out, batch, mode):
    subprocess.run([str(runner), "run", str(minilm), str(calibration_ids), str(eval_ids), str(out), "--repeats", "1",
                    "--batch", str(batch), "--mode", str(mode)], check=True)
    return {name: (float(np.load(out / f"{name}_cpu_seconds.npy").sum()), np.load(out / f"{name}_embeddings.npy"))
            for name in ("fp32", "w8a8")}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runner", required=True, type=Path)
    ap.add_argument("--minilm", required=True, type=Path)
    ap.add_argument("--ids", required=True, type=Path)
    ap.add_argument("--work", required=True, type=Path)
    ap.add_argument("--passes", type=int, default=3)
    ap.add_argument("--sentences", type=int, default=1000)
    args = ap.parse_args()
    qtx.set_num_threads(1)
    args.work.mkdir(parents=True, exist_ok=True)
    eval_ids = args.work / "eval_ids.txt"
    sequences = read_ids(args.ids / "heldout_ids.txt", args.sentences)
    eval_ids.write_text("".join(" ".join(map(str, s)) + "\n" for s in sequences))
    calibration = read_ids(args.ids / "calibration_ids.txt")
    model = Bert.from_pretrained(args.minilm)
    model.calibrate(calibration)

    times = {}  # (mode, batch, side) -> [ms per sentence per pass]
    agree = {}  # (mode, batch) -> max |python - C++| over the embeddings
    for p in range(args.passes):
        for name, mode, options in MODES:
            model.quantize(**options)
            for batch in (1, 32):
                cpp = cpp_pass(args.runner, args.minilm, args.ids / "calibration_ids.txt", eval_ids,
                               args.work / f"cpp_{mode}_{batch}", batch, mode)
                rows = [("FP32", False, cpp["fp32"])] if mode == 0 else []
                rows.append((name, True, cpp["w8a8"]))
                for row, w8a8, (cpp_seconds, cpp_embeddings) in rows:
                    if p == 0:
                        python_pass(model, sequences[:32], batch, w8a8)  # warm-up
                    seconds, embeddings = python_pass(model, sequences, batch, w8a8)
                    for side, s in (("C++", cpp_seconds), ("Python", seconds)):
                        times.setdefault((row, batch, side), []).append(1e3 * s / len(sequences))
                    agree[(row, batch)] = float(np.abs(embeddings - cpp_embeddings).max())

    bound = overhead_bound(model.n_layers, round(np.mean([len(s) for s in sequences])))
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    print(f"\nMiniLM, {len(sequences)} held-out sentences, 1 thread, CPU {cpu}, qtx {qtx.backend()} backend; "
          f"thread CPU ms per sentence, median (range) of {args.passes} passes")
    print("| mode | batch | C++ (qtx_peers_runner) | Python (qtx.models.Bert) | Python / C++ | max abs diff of embeddings |")
    print("|---|---|---|---|---|---|")
    for (row, batch), diff in agree.items():
        c, py = times[(row, batch, "C++")], times[(row, batch, "Python")]
        fmt = lambda v: f"{statistics.median(v):.2f} ({min(v):.2f}-{max(v):.2f})"  # noqa: E731
        print(f"| {row} | {batch} | {fmt(c)} | {fmt(py)} | {statistics.median(py) / statistics.median(c):.3f} | "
              f"{diff:.1e} |")
    print(f"Upper bound of the Python overhead per forward call (the same {model.n_layers} layers and calls, 16 wide, "
          f"{round(np.mean([len(s) for s in sequences]))} tokens): FP32 {bound[False]:.3f} ms, W8A8 {bound[True]:.3f} ms")


if __name__ == "__main__":
    main()


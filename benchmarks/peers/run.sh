#!/usr/bin/env bash
# The peer benchmark, one command: qtx vs ONNX Runtime (FP32, int8 dynamic, int8 static) on
# all-MiniLM-L6-v2 and a BERT-base-shaped layer, 1 thread, one table (README.md beside this file).
#   benchmarks/peers/run.sh [--passes N]
# Environment: QTX_DATA_DIR (corpora, default data/), QTX_MINILM_DIR (default models/minilm,
# fetched by scripts/setup-minilm.sh when missing), QTX_PEERS_VENV (default build/peers-venv, made by
# scripts/setup-peers-venv.sh when missing).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "${root}"
data="${QTX_DATA_DIR:-${root}/data}"
minilm="${QTX_MINILM_DIR:-models/minilm}"
venv="${QTX_PEERS_VENV:-${root}/build/peers-venv}"
work=build/peers

[ -x "${venv}/bin/python" ] || scripts/setup-peers-venv.sh "${venv}"
[ -f "${minilm}/model.safetensors" ] || scripts/setup-minilm.sh "${minilm}"
[ -f build/text/sotu_heldout.txt ] || {
  [ -d "${data}" ] || { echo "run.sh: corpora not found in ${data}; set QTX_DATA_DIR" >&2; exit 1; }
  /usr/bin/python3 tools/prepare_text.py "${data}" build/text
}
cmake --preset release >/dev/null
cmake --build --preset release --target qtx_peers_runner qtx_python_module >/dev/null
build/release/benchmarks/peers/qtx_peers_runner tokenize "${minilm}" build/text "${work}/minilm_ids"

# qtx runs in-process through its Python package (built for this interpreter's CPython version).
export OMP_NUM_THREADS=1 PYTHONPATH="${root}/build/release/python${PYTHONPATH:+:${PYTHONPATH}}"
"${venv}/bin/python" benchmarks/peers/bench.py --minilm "${minilm}" --ids "${work}/minilm_ids" --work "${work}" "$@"

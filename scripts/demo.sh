#!/usr/bin/env bash
# The main demo, from a fresh clone: a pretrained BERT sentence encoder (all-MiniLM-L6-v2) on real
# text, FP32 vs W8A8 with qtx's int8 kernels, checked against an independent numpy forward.
#   scripts/demo.sh            (the corpora are in data/; QTX_DATA_DIR overrides the folder)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "${root}"
data="${QTX_DATA_DIR:-${root}/data}"
[ -d "${data}" ] || { echo "demo.sh: corpora not found in ${data} (data/ of the repository, or QTX_DATA_DIR)" >&2; exit 1; }

scripts/install-deps.sh
scripts/setup-minilm.sh models/minilm
/usr/bin/python3 tools/prepare_text.py "${data}" build/text
cmake --preset release >/dev/null
cmake --build --preset release --target bert
out=build/bert_out
build/release/examples/bert models/minilm build/text --out "${out}" "$@"
/usr/bin/python3 tools/bert_reference.py models/minilm "${out}/heldout_ids.txt" \
  --compare "${out}/heldout_fp32_embeddings.txt" --min-cosine 0.9999
scripts/plot-layer-stats.sh "${out}/layer_stats.csv" "${out}/layer_stats.png" "all-MiniLM-L6-v2 (FP32): residual sums and layer outputs" \
  "${out}/residual_stats.csv"
echo "demo.sh: done in $((SECONDS / 60)) min $((SECONDS % 60)) s"

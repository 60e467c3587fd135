#!/usr/bin/env bash
# Fuzzes qtx::io::safetensors_file with libFuzzer + ASan + UBSan: scripts/fuzz.sh safetensors.
#
#   scripts/fuzz-safetensors.sh [runs=1000000] [extra libFuzzer flags...]
set -euo pipefail
exec "$(dirname "$0")/fuzz.sh" safetensors "$@"

#!/usr/bin/env bash
# The virtualenv of the peer benchmark (benchmarks/peers/): ONNX Runtime, onnx and numpy from PyPI.
# Never needed by the C++ build or the tests.
#   scripts/setup-peers-venv.sh [VENV_DIR]        (default build/peers-venv)
#
# ONNX Runtime is pinned to its fastest release on this workload (MiniLM and a BERT-base layer,
# 1 thread, int8 and FP32), measured with benchmarks/peers/: 1.24.4. 1.20.1 is about as fast;
# 1.30 and later are slower (their CPU SkipLayerNormalization is scalar, ~4x slower per call).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="${1:-${root}/build/peers-venv}"
ort_version="${QTX_PEERS_ORT_VERSION:-1.24.4}"
[ -x "${venv}/bin/python" ] || /usr/bin/python3 -m venv "${venv}"
"${venv}/bin/python" -m pip install --quiet --disable-pip-version-check \
  "onnxruntime==${ort_version}" "onnx==1.17.0" "ml_dtypes==0.7.0" "numpy<2.3"
"${venv}/bin/python" -c "import onnxruntime, onnx, numpy; print('peers venv:', '${venv}', 'onnxruntime', onnxruntime.__version__, 'onnx', onnx.__version__, 'numpy', numpy.__version__)"

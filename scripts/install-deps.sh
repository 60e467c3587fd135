#!/usr/bin/env bash
# Installs every Debian package qtx needs to build, test and benchmark.
# Idempotent (only what is missing is installed, and root is needed only then), quiet, and loud on
# failure.
set -euo pipefail

packages=(
  g++ cmake make ninja-build
  libeigen3-dev libxsimd-dev catch2 libbenchmark-dev nlohmann-json3-dev
  doxygen       # API reference (target docs) and its test docs_undocumented
  libdnnl-dev   # oneDNN: side-by-side benchmarks only, never used by the headers
  xz-utils python3-numpy gnuplot-nox
  libcli11-dev               # the examples' command lines
  python3-scipy libopenblas0-serial   # tools/bert_reference.py: erf, and a BLAS ~20x the reference one
  clang libclang-rt-14-dev   # libFuzzer for scripts/fuzz-safetensors.sh
  libomp-14-dev              # LLVM OpenMP + Archer for the tsan preset
  python3-dev pybind11-dev python3-pybind11 python3-pytest   # Python bindings (python/) and their tests
  python3-torch              # qtx.torch ops and their tests; tools/train
)

export DEBIAN_FRONTEND=noninteractive
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps.sh: all packages present"
  exit 0
fi
# Only installing needs root: a user whose machine has every package goes on without it.
if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps.sh: missing ${missing[*]}; run as root (apt-get) to install them" >&2
  exit 1
fi
echo "install-deps.sh: installing ${missing[*]}"
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps.sh: done"

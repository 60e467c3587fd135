#!/usr/bin/env bash
# Builds the CUDA tests and benchmarks for sm_90 on this (GPU-less) machine and stages them, with the
# run-time libraries the device image may lack, in gpu-run/ (git-ignored) for one device call:
#   scripts/cuda/prepare-device-run.sh   then   device run: bash gpu-run/device-run.sh   (carry: gpu-run)
# Building here keeps the device lease for measuring; cuBLAS/cuBLASLt are too large to carry and are
# found on the device image instead.
set -euo pipefail
cd "$(dirname "$0")/../.."
cmake -S . -B build/gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DQTX_WITH_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 \
  -DQTX_BUILD_EXAMPLES=OFF
cmake --build build/gpu --target cuda_test_gemm cuda_test_rows cuda_test_attention bench_cuda_gemm bench_cuda_attention
rm -rf gpu-run && mkdir gpu-run
grep -qx '/gpu-run/' .git/info/exclude 2>/dev/null || echo /gpu-run/ >> .git/info/exclude
cp build/gpu/tests/cuda_test_* build/gpu/benchmarks/bench_cuda_* scripts/cuda/device-run.sh gpu-run/
for lib in libbenchmark.so.1debian libcudart.so.13; do
  cp -L "$(ldconfig -p | awk -v l="$lib" '$1 == l {print $NF; exit}' || true)" gpu-run/ 2>/dev/null ||
    cp -L "$(find /usr/local/cuda/lib* /usr/lib/x86_64-linux-gnu -name "$lib" | head -1)" gpu-run/
done
du -sh gpu-run

#!/usr/bin/env bash
# Runs on the GPU machine from gpu-run/ (see prepare-device-run.sh): the CUDA tests, then the benchmarks
# (cuBLASLt int8 and cuBLAS+softmax peers in the same executables). Full logs and JSON go to $OUT.
cd "$(dirname "$0")"
OUT=${OUT:-/tmp/qtx-cuda}; mkdir -p "$OUT"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv
lt=$(dirname "$(find / -name 'libcublasLt.so.13*' -not -path '*/proc/*' 2>/dev/null | head -1)")
export LD_LIBRARY_PATH=$PWD:$lt:${LD_LIBRARY_PATH:-}
for t in cuda_test_gemm cuda_test_rows cuda_test_attention; do
  echo "== $t"; timeout 150 ./$t 2>&1 | tee "$OUT/$t.log" | tail -25; echo "rc=${PIPESTATUS[0]}"
done
echo "== bench_cuda_attention"
timeout 90 ./bench_cuda_attention --benchmark_min_time=0.2 --benchmark_out="$OUT/attn.json" 2>&1 |
  tee "$OUT/bench_attn.log" | tail -12
echo "== bench_cuda_gemm"
timeout 180 ./bench_cuda_gemm --benchmark_min_time=0.1 --benchmark_out="$OUT/gemm.json" > "$OUT/bench_gemm.log" 2>&1
echo "rc=$?"
grep -E "M:(2048|8192)/K:4096/N:4096|M:128/K:768/N:768|M:2048/K:768/N:3072" "$OUT/bench_gemm.log"

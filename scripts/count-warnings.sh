#!/usr/bin/env bash
# Counts the compiler warnings of qtx's own targets (tests, examples, benchmarks) for one compiler and
# one ISA choice, without -Werror, so a table of warnings before/after a change can be measured:
#   scripts/count-warnings.sh <g++|clang++-14> <native|avx2|none> [source dir] [build dir]
# native: -march=native; avx2: -mavx2 -mfma; none: the compiler's default target (SSE2).
# Prints "<compiler> <isa> <warnings> <errors>" last; the full log lies in <build dir>/warnings.log.
set -euo pipefail
compiler=${1:?compiler (g++ or clang++-14)}
isa=${2:?isa (native, avx2 or none)}
source_dir=$(realpath "${3:-$(dirname "$0")/..}")
build_dir=${4:-$source_dir/build/warnings-$compiler-$isa}

case $isa in
  native) isa_options=(-DQTX_NATIVE_ARCH=ON -DCMAKE_CXX_FLAGS=) ;;
  avx2) isa_options=(-DQTX_NATIVE_ARCH=OFF "-DCMAKE_CXX_FLAGS=-mavx2 -mfma") ;;
  none) isa_options=(-DQTX_NATIVE_ARCH=OFF -DCMAKE_CXX_FLAGS=) ;;
  *) echo "count-warnings.sh: isa must be native, avx2 or none, not '$isa'" >&2; exit 2 ;;
esac

mkdir -p "$build_dir"
cmake -S "$source_dir" -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER="$compiler" \
      -DQTX_WITH_CUDA=OFF -DQTX_WERROR=OFF "${isa_options[@]}" > "$build_dir/configure.log"
# Every object again (-k 0: keep going past errors), so the count covers the whole build.
ninja -C "$build_dir" -t clean > /dev/null
ninja -C "$build_dir" -k 0 -j "${CMAKE_BUILD_PARALLEL_LEVEL:-2}" > "$build_dir/warnings.log" 2>&1 || true
warnings=$(grep -c 'warning:' "$build_dir/warnings.log" || true)
errors=$(grep -c 'error:' "$build_dir/warnings.log" || true)
echo "$compiler $isa $warnings $errors"

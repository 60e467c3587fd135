#!/usr/bin/env bash
# Fuzzes qtx::io::safetensors_file with libFuzzer + ASan + UBSan.
#
#   scripts/fuzz-safetensors.sh [runs=1000000] [extra libFuzzer flags...]
#
# Builds tests/fuzz/fuzz_safetensors.cpp with clang++ into build-fuzz/, then runs it from the seed
# corpus tests/fuzz/corpus/ (read only: new inputs go to build-fuzz/corpus/). Exits non-zero, with
# the crashing input saved in build-fuzz/, on any crash, sanitizer report or escaped exception.
set -euo pipefail

repo_root="$(cd "$(dirname "$0")/.." && pwd)"
build="${QTX_FUZZ_BUILD_DIR:-${repo_root}/build-fuzz}"
runs="${1:-1000000}"
shift || true
cxx="${CXX_FUZZ:-clang++}"
readonly max_input_bytes=4096

# libFuzzer's runtime ships with Debian's clang in libclang-rt-<version>-dev.
if ! echo 'extern "C" int LLVMFuzzerTestOneInput(const char*, unsigned long) { return 0; }' |
    "${cxx}" -x c++ -fsanitize=fuzzer - -o /dev/null 2>/dev/null; then
  clang_major="$("${cxx}" --version | sed -n 's/.*clang version \([0-9]*\).*/\1/p' | head -n1)"
  echo "fuzz-safetensors.sh: installing libclang-rt-${clang_major}-dev (libFuzzer runtime)"
  if [ "$(id -u)" -ne 0 ]; then echo "fuzz-safetensors.sh: needs root for apt-get" >&2; exit 1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "libclang-rt-${clang_major}-dev" >/dev/null
fi

mkdir -p "${build}/corpus"
echo "fuzz-safetensors.sh: building with $("${cxx}" --version | head -n1)"
"${cxx}" -std=c++20 -O1 -g -fno-omit-frame-pointer \
  -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
  -I"${repo_root}/include" -I/usr/include \
  "${repo_root}/tests/fuzz/fuzz_safetensors.cpp" -o "${build}/fuzz_safetensors"

echo "fuzz-safetensors.sh: ${runs} runs"
cd "${build}"
start=$(date +%s)
set +e
ASAN_OPTIONS="detect_leaks=1:abort_on_error=1" UBSAN_OPTIONS="print_stacktrace=1" \
  ./fuzz_safetensors -runs="${runs}" -max_len="${max_input_bytes}" -print_final_stats=1 \
  -dict="${repo_root}/tests/fuzz/safetensors.dict" -artifact_prefix="${build}/" "$@" \
  "${build}/corpus" "${repo_root}/tests/fuzz/corpus" >"${build}/fuzz.log" 2>&1
status=$?
set -e
grep -E "^(#[0-9]+ +(INITED|DONE)|Done|stat::|SUMMARY)" "${build}/fuzz.log" || true
if [ "${status}" -ne 0 ]; then
  tail -n 40 "${build}/fuzz.log"
  echo "fuzz-safetensors.sh: FAILED (exit status ${status}); inputs saved as ${build}/crash-*" >&2
fi
echo "fuzz-safetensors.sh: $(( $(date +%s) - start )) s, exit status ${status}, log ${build}/fuzz.log"
exit "${status}"

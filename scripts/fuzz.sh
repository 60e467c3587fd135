#!/usr/bin/env bash
# Fuzzes one qtx input parser with libFuzzer + ASan + UBSan.
#
#   scripts/fuzz.sh HARNESS [runs=1000000] [extra libFuzzer flags...]
#
#   safetensors  qtx::io::safetensors_file on arbitrary bytes       seeds tests/fuzz/corpus/
#   wordpiece    the WordPiece tokenizer (MiniLM vocabulary subset)  seeds tests/fuzz/corpus_wordpiece/
#   model        the example models' loaders: adversarial config.json and tensor shapes
#                                                                    seeds tests/fuzz/corpus_model/
#
# Builds tests/fuzz/fuzz_HARNESS.cpp with clang++ into build-fuzz/HARNESS/, then runs it from the
# committed seeds (read only: new inputs go to build-fuzz/HARNESS/corpus/). Exits non-zero, with the
# crashing input saved in build-fuzz/HARNESS/, on any crash, sanitizer report, escaped exception,
# timeout or memory blow-up. Replay one input: build-fuzz/HARNESS/fuzz_HARNESS FILE.
set -euo pipefail

repo_root="$(cd "$(dirname "$0")/.." && pwd)"
harness="${1:?usage: scripts/fuzz.sh safetensors|wordpiece|model [runs] [libFuzzer flags...]}"
runs="${2:-1000000}"
shift $(( $# >= 2 ? 2 : 1 ))
cxx="${CXX_FUZZ:-clang++}"
fuzz="${repo_root}/tests/fuzz"

case "${harness}" in
  safetensors) seeds="${fuzz}/corpus"; max_len=4096; dict=(-dict="${fuzz}/safetensors.dict") ;;
  wordpiece) seeds="${fuzz}/corpus_wordpiece"; max_len=1024; dict=(-dict="${fuzz}/wordpiece.dict") ;;
  model) seeds="${fuzz}/corpus_model"; max_len=2048; dict=(-dict="${fuzz}/model.dict") ;;
  *) echo "fuzz.sh: unknown harness '${harness}' (safetensors, wordpiece, model)" >&2; exit 2 ;;
esac
build="${QTX_FUZZ_BUILD_DIR:-${repo_root}/build-fuzz}/${harness}"

# libFuzzer's runtime ships with Debian's clang in libclang-rt-<version>-dev.
if ! echo 'extern "C" int LLVMFuzzerTestOneInput(const char*, unsigned long) { return 0; }' |
    "${cxx}" -x c++ -fsanitize=fuzzer - -o /dev/null 2>/dev/null; then
  clang_major="$("${cxx}" --version | sed -n 's/.*clang version \([0-9]*\).*/\1/p' | head -n1)"
  echo "fuzz.sh: installing libclang-rt-${clang_major}-dev (libFuzzer runtime)"
  if [ "$(id -u)" -ne 0 ]; then echo "fuzz.sh: needs root for apt-get" >&2; exit 1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "libclang-rt-${clang_major}-dev" >/dev/null
fi

mkdir -p "${build}/corpus"
echo "fuzz.sh ${harness}: building with $("${cxx}" --version | head -n1)"
"${cxx}" -std=c++20 -O1 -g -fno-omit-frame-pointer -Wall -Wextra -Wno-unused-parameter \
  -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
  -I"${repo_root}/include" -I"${repo_root}/tests" -I"${repo_root}/examples" \
  "${fuzz}/fuzz_${harness}.cpp" -o "${build}/fuzz_${harness}"

echo "fuzz.sh ${harness}: ${runs} runs"
cd "${build}"
# The model harness writes a scratch checkpoint per input: keep it in memory where possible.
if [ -z "${TMPDIR:-}" ] && [ -d /dev/shm ] && [ -w /dev/shm ]; then export TMPDIR=/dev/shm; fi
start=$(date +%s)
set +e
ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:malloc_context_size=4" UBSAN_OPTIONS="print_stacktrace=1" \
  "./fuzz_${harness}" -runs="${runs}" -max_len="${max_len}" -timeout=10 -rss_limit_mb=2048 \
  -print_final_stats=1 "${dict[@]}" -artifact_prefix="${build}/" "$@" \
  "${build}/corpus" "${seeds}" >"${build}/fuzz.log" 2>&1
status=$?
set -e
grep -E "^(#[0-9]+ +(INITED|DONE)|Done|stat::|SUMMARY)" "${build}/fuzz.log" || true
if [ "${status}" -ne 0 ]; then
  tail -n 40 "${build}/fuzz.log"
  echo "fuzz.sh ${harness}: FAILED (exit status ${status}); inputs saved as ${build}/crash-*" >&2
fi
echo "fuzz.sh ${harness}: $(( $(date +%s) - start )) s, exit status ${status}, log ${build}/fuzz.log"
exit "${status}"

#!/usr/bin/env bash
# CI: the whole test suite built with AddressSanitizer + UndefinedBehaviorSanitizer
# (CPU only; nvcc cannot sanitize) in build-asan/, run with ctest. Any sanitizer
# report fails its test: UBSan is built with -fno-sanitize-recover, ASan aborts.
#   GS_SANITIZE_EXCLUDE  ctest label regex to leave out (default: none)
#   extra arguments go to ctest
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build="$root/build-asan"
jobs=$(nproc)
t0=$(date +%s)

mkdir -p "$build"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGRADSWEEP_SANITIZE=ON -DGRADSWEEP_CUDA=OFF \
      -DGRADSWEEP_NATIVE=OFF > "$build/configure.log" 2>&1 || { cat "$build/configure.log" >&2; exit 1; }
cmake --build "$build" -j"$jobs"
t1=$(date +%s)

# detect_leaks: a leak is a bug too. The test scripts run the sanitized binary,
# so these options reach every process.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:strict_string_checks=1:detect_stack_use_after_return=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
args=(--output-on-failure -j"$jobs")
[[ -n ${GS_SANITIZE_EXCLUDE:-} ]] && args+=(-LE "$GS_SANITIZE_EXCLUDE")
cd "$build"
ctest "${args[@]}" "$@"
echo "ci_sanitize: passed (build $((t1 - t0))s, tests $(( $(date +%s) - t1 ))s)"

#!/usr/bin/env bash
# CI: the whole test suite built with AddressSanitizer + UndefinedBehaviorSanitizer
# (CPU only; nvcc cannot sanitize) in build-asan/, run with ctest. Any sanitizer
# report fails the stage: UBSan is built with -fno-sanitize-recover, ASan aborts,
# and every report is also written under build-asan/sanitizer-reports/, so one
# from a process whose failure a test expected (a CLI test checking "exit != 0")
# still fails the stage.
#   GS_SANITIZE_EXCLUDE  ctest label regex to leave out (default: none). E.g. "slow":
#     the Catch tests tagged [slow], statistical checks over thousands of width-512
#     networks (mean-field theory vs the engine): ~40-90 s in the normal build,
#     ~170 s under clang's ASan+UBSan on 2 cores (7+ min with GCC's, which is why
#     the label exists); the whole stage stays ~5-10 min with them, so they run.
#   extra arguments go to ctest
# Built with clang: its ASan and UBSan share one runtime, so log_path catches
# UBSan's reports too (GCC's separate libubsan ignores log_path when ASan is
# loaded and would only print to the test's stderr, where a CLI test expecting
# a failure may never look).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build="$root/build-asan"
jobs=$(nproc)
t0=$(date +%s)

mkdir -p "$build"
have_clang_sanitizers() {
    command -v clang++ > /dev/null || return 1
    echo 'int main() { return 0; }' > "$build/probe.cpp"
    clang++ -fsanitize=address,undefined "$build/probe.cpp" -o "$build/probe" > /dev/null 2>&1
}
if ! have_clang_sanitizers; then
    echo "ci_sanitize: installing clang and its sanitizer runtimes (Debian: clang, libclang-rt-14-dev)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq clang libclang-rt-14-dev > /dev/null
    have_clang_sanitizers || { echo "ci_sanitize: FAILED: clang++ cannot build with -fsanitize=address,undefined" >&2; exit 1; }
fi
cxx=$(command -v clang++) cc=$(command -v clang)
# A build directory configured with another compiler is started afresh.
if [[ -f $build/CMakeCache.txt ]] && ! grep -qx "CMAKE_CXX_COMPILER:[A-Z]*=$cxx" "$build/CMakeCache.txt"; then
    echo "ci_sanitize: $build was configured with another compiler; starting it afresh"
    rm -rf "$build"; mkdir -p "$build"
fi
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGRADSWEEP_SANITIZE=ON -DGRADSWEEP_CUDA=OFF \
      -DGRADSWEEP_NATIVE=OFF -DCMAKE_C_COMPILER="$cc" -DCMAKE_CXX_COMPILER="$cxx" \
      > "$build/configure.log" 2>&1 || { cat "$build/configure.log" >&2; exit 1; }
cmake --build "$build" -j"$jobs"
t1=$(date +%s)

# detect_leaks: a leak is a bug too. The test scripts run the sanitized binary,
# so these options reach every process.
reports="$build/sanitizer-reports"
rm -rf "$reports"; mkdir -p "$reports"; chmod 1777 "$reports"  # some tests run processes as nobody
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:strict_string_checks=1:detect_stack_use_after_return=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export ASAN_OPTIONS="$ASAN_OPTIONS:log_path=$reports/asan"
export UBSAN_OPTIONS="$UBSAN_OPTIONS:log_path=$reports/ubsan"
args=(--output-on-failure -j"$jobs")
exclude=${GS_SANITIZE_EXCLUDE:-}
[[ -n $exclude ]] && args+=(-LE "$exclude")
cd "$build"
set +e
ctest "${args[@]}" "$@"
rc=$?
set -e
mapfile -d '' found < <(find "$reports" -type f -size +0 -print0 | sort -z)
if ((${#found[@]})); then
    for f in "${found[@]}"; do echo "--- $f" >&2; head -60 -- "$f" >&2; done
    echo "ci_sanitize: FAILED: ${#found[@]} sanitizer report(s) under $reports" >&2
    exit 1
fi
if (( rc != 0 )); then
    echo "ci_sanitize: FAILED: ctest exit $rc" >&2
    exit "$rc"
fi
echo "ci_sanitize: passed (build $((t1 - t0))s, tests $(( $(date +%s) - t1 ))s)"

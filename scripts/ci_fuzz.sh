#!/usr/bin/env bash
# CI: fuzzes the spec parser with libFuzzer (clang, ASan + UBSan) for a bounded
# time. Fails on any crash, sanitizer report, uncaught exception, broken
# invariant (see fuzz/fuzz_spec.cpp), hang (-timeout) or memory blow-up
# (-rss_limit_mb). Builds in its own directory, build-fuzz/.
#   GS_FUZZ_SECONDS  fuzzing time (default 50, at most 60)
#   GS_FUZZ_SEED     libFuzzer's -seed (default: a fresh one, printed; a failure
#                    prints it too, beside the reproducer files)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build="$root/build-fuzz"
secs=${GS_FUZZ_SECONDS:-50}
# Checked before (( )): bash evaluates a variable's text as an expression there.
[[ $secs =~ ^[0-9]+$ ]] || { echo "ci_fuzz: GS_FUZZ_SECONDS must be a number of seconds, got \"$secs\"" >&2; exit 2; }
(( 10#$secs > 60 )) && secs=60
seed=${GS_FUZZ_SEED:-$((RANDOM * 32768 + RANDOM + 1))}  # libFuzzer: -seed=0 would mean "pick one"
[[ $seed =~ ^[0-9]+$ ]] || { echo "ci_fuzz: GS_FUZZ_SEED must be a number, got '$seed'" >&2; exit 1; }
t0=$(date +%s)

have_libfuzzer() {
    command -v clang++ > /dev/null || return 1
    echo 'extern "C" int LLVMFuzzerTestOneInput(const unsigned char*, unsigned long) { return 0; }' > "$build/probe.cpp"
    clang++ -fsanitize=fuzzer,address,undefined "$build/probe.cpp" -o "$build/probe" > /dev/null 2>&1
}
mkdir -p "$build"
if ! have_libfuzzer; then
    echo "ci_fuzz: installing clang and libFuzzer (Debian: clang, libclang-rt-14-dev)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq clang libclang-rt-14-dev > /dev/null
    have_libfuzzer || { echo "ci_fuzz: clang++ cannot build a libFuzzer target" >&2; exit 1; }
fi

# The parser is three files, the planning it feeds two more (and stats.cpp for
# row_stride); compiling them directly keeps this independent of the CMake build
# (and of CUDA).
sources=("$root"/src/spec/spec.cpp "$root"/src/spec/spec_keys.cpp "$root"/src/spec/spec_reader.cpp "$root"/src/run/work_units.cpp
         "$root"/src/run/memory_plan.cpp "$root"/src/output/result_columns.cpp "$root"/src/aggregate/stats.cpp "$root"/fuzz/fuzz_spec.cpp)
bin="$build/fuzz_spec"
if [[ ! -x $bin ]] || [[ -n $(find "${sources[@]}" "$root"/src "$root"/include -newer "$bin" 2>/dev/null) ]]; then
    echo "ci_fuzz: building $bin"
    clang++ -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
        -I"$root/include" -I"$root/src" "${sources[@]}" -o "$bin"
fi

rm -rf "$build/seeds" "$build/artifacts"
"$root/fuzz/make_corpus.sh" "$build/seeds"
mkdir -p "$build/corpus" "$build/artifacts"   # corpus/ keeps what earlier runs found

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
# -timeout catches hangs (a loop that does not end), not work that grows with
# the spec: the largest valid spec (100,000 cells, a grid's product fits in
# 4 kB) parses and plans in ~7 s per execution under ASan on a 2-core machine,
# and libFuzzer may execute it twice (its leak check). -report_slow_units at the
# same bound: a slow-unit file (an artifact, so a failure here) only for what
# would be a hang.
echo "ci_fuzz: fuzzing for ${secs}s, seed $seed"
set +e
"$bin" -seed="$seed" -max_total_time="$secs" -timeout=60 -report_slow_units=60 -rss_limit_mb=2048 -max_len=4096 \
    -dict="$root/fuzz/spec.dict" -artifact_prefix="$build/artifacts/" -print_final_stats=1 \
    "$build/corpus" "$build/seeds" > "$build/fuzz.log" 2>&1
rc=$?
set -e
grep -E '^(Done|stat::(number_of_executed_units|average_exec_per_sec|new_units_added|peak_rss_mb))' "$build/fuzz.log" || true
if (( rc != 0 )) || [[ -n $(ls -A "$build/artifacts") ]]; then
    tail -40 "$build/fuzz.log" >&2
    echo "ci_fuzz: FAILED (exit $rc); reproducer(s): $(ls "$build/artifacts")" >&2
    echo "ci_fuzz: rerun one with: $bin $build/artifacts/<file>; the search again with GS_FUZZ_SEED=$seed (and the same corpus)" >&2
    exit 1
fi
echo "ci_fuzz: passed in $(( $(date +%s) - t0 ))s (corpus: $(ls "$build/corpus" | wc -l) inputs)"

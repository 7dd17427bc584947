#!/usr/bin/env bash
# SIGINT and SIGTERM stop a run cleanly: exit 130 / 143, finished work units kept,
# no temporary file left, no results written; --resume then finishes with the
# uninterrupted run's results. Also progress on stderr: plain lines when stderr
# is a file, a bar on a terminal, nothing with --quiet.
set -euo pipefail
bin=$1 src=$2 work=$3
rm -rf "$work"; mkdir -p "$work"
check="/usr/bin/python3 $src/tests/cli/scale_out_check.py"
fail() { echo "FAIL: $*" >&2; exit 1; }
passed=0

cat > "$work/spec.json" <<'JSON'
{"name": "signals", "seeds": {"count": 6000, "first": 1},
 "grid": {"depth": [4, 8], "width": [16, 48], "shortcut": [false, true]},
 "network": {"input_dim": 4}, "input": {"distribution": "normal", "batch": 4}}
JSON
# --checkpoint-units: every unit's rows go to a unit file, so the units kept can be
# counted one by one (cells cheap to redo would otherwise keep rows in memory).
opts=(--threads 1 --seed-block 200 --checkpoint-units)
"$bin" run "$work/spec.json" -o "$work/ref" "${opts[@]}" -q 2> "$work/ref.err" || fail "reference run"
[[ ! -s $work/ref.err ]] || fail "--quiet printed on stderr: $(cat "$work/ref.err")"
passed=$((passed + 1))

# Each run to be stopped is held behind a gate (tests/cli/lib/gate.bash) a few
# units past the point where it gets its signal: it cannot finish first, however
# fast the machine, and the signal waits for that point, however slow.
UNITS_PER_CELL=30
source "$src/tests/cli/lib/gate.bash"
gate="$work/gate"

# stop_with SIGNAL CODE MIN_UNITS: run (resuming), send SIGNAL once MIN_UNITS
# units exist, expect exit CODE and a clean directory.
out="$work/out"
stop_with() {
    local sig=$1 code=$2 min=$3
    gate_at "$gate" $((min + 5))
    GRADSWEEP_TEST_GATE=$gate GRADSWEEP_PROGRESS_SECONDS=0.3 "$bin" run "$work/spec.json" -o "$out" "${opts[@]}" --resume 2> "$work/$sig.err" &
    local pid=$!
    wait_units "$out" "$min" "$pid"
    kill -s "$sig" "$pid"
    set +e; wait "$pid"; local rc=$?; set -e
    [[ $rc == "$code" ]] || fail "$sig: exit $rc, want $code; stderr: $(tail -3 "$work/$sig.err")"
    grep -q "stopped by SIG$sig; .* work units are kept in $out; continue with --resume" "$work/$sig.err" \
        || fail "$sig: no stop message: $(tail -3 "$work/$sig.err")"
    $check no-temporaries "$out" || fail "$sig: temporary files left"
    local n; n=$($check units "$out" 200) || fail "$sig: damaged unit or cell file"
    ((n >= min)) || fail "$sig: finished units were lost ($n < $min)"
    [[ ! -e $out/results.csv && ! -e $out/results.json ]] || fail "$sig: results written by a stopped run"
    echo "signals: $sig -> exit $rc with $n units kept"
    passed=$((passed + 1))
}
stop_with INT 130 20
stop_with TERM 143 60

# Plain progress lines (stderr is a file): the bar's text, one per line, the
# last one with the totals. The run is held at 100 units until it has printed a
# line (a fast machine would otherwise finish before the first interval).
line_re='^gradsweep: [0-9]+/8 cells, [0-9]+/240 units, [0-9]+/48000 networks, [0-9.]+[kM]? networks/s, ETA '
gate_at "$gate" 100
GRADSWEEP_TEST_GATE=$gate GRADSWEEP_PROGRESS_SECONDS=0.2 "$bin" run "$work/spec.json" -o "$work/plain" "${opts[@]}" 2> "$work/plain.err" > /dev/null &
pid=$!
wait_line "$work/plain.err" "$line_re" "$pid"
gate_at "$gate" 241
wait "$pid" || fail "plain run"
grep -q '^gradsweep: 8/8 cells, 240/240 units, 48000/48000 networks' "$work/plain.err" || fail "no final progress line"
grep -q $'\r' "$work/plain.err" && fail "carriage returns in a log file"
cmp "$work/plain/results.csv" "$work/ref/results.csv" || fail "plain run results differ"
passed=$((passed + 1))

# A signal once every unit is done, while results are put together (with
# --per-seed, all rows are read back at the end): still clean, and resumable.
# The run is held before the results until the signal has come.
late="$work/late"
gate_at "$gate" 240
GRADSWEEP_TEST_GATE=$gate "$bin" run "$work/spec.json" -o "$late" "${opts[@]}" --per-seed -q &
pid=$!
wait_units "$late" 240 "$pid"
kill -s INT "$pid"
gate_at "$gate" 241
set +e; wait "$pid"; rc=$?; set -e
[[ $rc == 130 ]] || fail "late INT: exit $rc, want 130"
[[ ! -e $late/results.csv && ! -e $late/per_seed.csv ]] || fail "late INT: results written by a stopped run"
$check no-temporaries "$late" || fail "late INT: temporary files left"
[[ $($check units "$late" 200) == 240 ]] || fail "late INT: units lost"
"$bin" run "$work/spec.json" -o "$late" "${opts[@]}" --per-seed -q --resume || fail "late INT: resume"
cmp "$late/results.csv" "$work/ref/results.csv" || fail "late INT: results differ"
echo "signals: INT after the last unit -> exit $rc"
passed=$((passed + 1))

# --resume finishes: the uninterrupted run's results, to the bit.
"$bin" run "$work/spec.json" -o "$out" "${opts[@]}" --resume -q || fail "final resume"
cmp "$out/results.csv" "$work/ref/results.csv" || fail "results.csv differs after interruptions"
$check same "$out/results.json" "$work/ref/results.json" || fail "results.json differs after interruptions"
$check no-temporaries "$out" || fail "temporary files left"
passed=$((passed + 1))

# On a terminal: a bar redrawn in place with cells, networks/s and ETA.
if command -v script > /dev/null; then
    GRADSWEEP_PROGRESS_SECONDS=0.3 script -qfec "'$bin' run '$work/spec.json' -o '$work/tty' --threads 1 --seed-block 200" /dev/null \
        > "$work/tty.txt" 2>&1 || fail "run on a terminal: $(tail -3 "$work/tty.txt")"
    grep -qP '\r\[#*-*\] \d+/8 cells  [\d.]+[kM]? networks/s  ETA ' "$work/tty.txt" || fail "no progress bar on a terminal: $(head -c 300 "$work/tty.txt" | od -c | head)"
    cmp "$work/tty/results.csv" "$work/ref/results.csv" || fail "tty run results differ"
    passed=$((passed + 1))
else
    echo "signals: no 'script' command; terminal progress bar not checked"
fi
echo "signals: $passed passed, 0 failed"

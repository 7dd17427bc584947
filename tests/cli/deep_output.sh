#!/usr/bin/env bash
# Deep networks: output linear in depth, memory counted and refused up front,
# and signals honoured while the result files are written.
#  1. depth 10000, width 1, one seed: results.csv at most ~300 bytes a row (it
#     was 1.0 GB: every row repeated the whole layer_sizes string), results.json
#     at most ~2.5 kB a layer; plan lists the summaries' memory and the files' sizes.
#  2. depth 1048576 (the largest depth validate accepts; it peaks at ~0.9 GB
#     RSS): run --max-memory 800M refuses at once (exit 2, one line, nothing
#     created; the plan used to say 544 MiB and the run reached 16.6 GiB); plan
#     counts >= 440 MiB of summaries for it.
#  3. SIGTERM / SIGINT while the result files are written (run and merge):
#     exit 143 / 130, no temporary or result file left; --resume then writes
#     exactly the uninterrupted results. GRADSWEEP_TEST_WRITE_DELAY_MS pauses
#     after each 1 MiB chunk, so the writing phase lasts for seconds and the
#     test knows it is in it (a *.tmp.* file exists) before it signals. A write
#     that did not stop would put the results in place (exit 0): that, not a
#     clock, shows the stop came mid-write, however loaded the machine.
set -euo pipefail
bin=$1 src=$2 work=$3
rm -rf "$work"; mkdir -p "$work"
fail() { echo "FAIL: $*" >&2; exit 1; }

cat > "$work/deep.json" <<'JSON'
{"name": "deep", "network": {"depth": 10000, "width": 1}, "seeds": {"count": 1}}
JSON
"$bin" run "$work/deep.json" -o "$work/ref" -q --threads 1 || fail "depth 10000 run"
csv=$(stat -c %s "$work/ref/results.csv") json=$(stat -c %s "$work/ref/results.json")
rows=$(($(wc -l < "$work/ref/results.csv") - 1))
[[ $rows == 50001 ]] || fail "depth 10000: $rows rows in results.csv (want 5 x 10000 + 1 loss row)"
((csv <= rows * 300)) || fail "depth 10000: results.csv is $csv bytes for $rows rows"
((json <= 10000 * 2500)) || fail "depth 10000: results.json is $json bytes"
grep -q ',1x10001,' "$work/ref/results.csv" || fail "layer_sizes not in runs: $(sed -n 2p "$work/ref/results.csv")"
echo "deep_output: depth 10000: results.csv $csv bytes ($((csv / rows)) a row), results.json $json bytes"

"$bin" plan "$work/deep.json" --backend cpu > "$work/plan.txt" || fail "plan: $(cat "$work/plan.txt")"
grep -q '^  results (summaries)' "$work/plan.txt" || fail "plan does not count the summaries: $(cat "$work/plan.txt")"
grep -q '^  result files on disk' "$work/plan.txt" || fail "plan does not size the result files: $(cat "$work/plan.txt")"

# 2. The deepest network validate accepts.
cat > "$work/deepest.json" <<'JSON'
{"name": "deepest", "network": {"depth": 1048576, "width": 1}}
JSON
"$bin" validate "$work/deepest.json" > /dev/null || fail "validate depth 1048576"
set +e
"$bin" run "$work/deepest.json" -o "$work/deepest" --max-memory 800M --backend cpu > "$work/deepest.out" 2> "$work/deepest.err"
rc=$?
set -e
[[ $rc == 2 ]] || fail "depth 1048576 --max-memory 800M: exit $rc (want 2): $(head -c 300 "$work/deepest.err")"
[[ $(wc -l < "$work/deepest.err") == 1 ]] || fail "depth 1048576: not one line: $(head -c 500 "$work/deepest.err")"
grep -q 'will not fit' "$work/deepest.err" || fail "depth 1048576: $(cat "$work/deepest.err")"
[[ ! -e $work/deepest ]] || fail "depth 1048576: output directory created"
"$bin" plan "$work/deepest.json" --backend cpu --max-memory 64G > "$work/plan2.txt" 2>&1 || true
summ=$(sed -n 's/^  results (summaries) *\([0-9.]*\) MiB.*/\1/p' "$work/plan2.txt")
[[ -n $summ ]] && /usr/bin/python3 -c "import sys; sys.exit(0 if float('$summ') >= 440 else 1)" \
    || fail "plan: summaries of depth 1048576 not counted: $(grep results "$work/plan2.txt")"
echo "deep_output: depth 1048576 refused up front: $(cat "$work/deepest.err")"

# 3. Signals while writing. stop_while_writing NAME SIGNAL CODE CMD...
stop_while_writing() {
    local name=$1 sig=$2 code=$3 dir=$4; shift 4
    GRADSWEEP_TEST_WRITE_DELAY_MS=400 "$@" &
    local pid=$!
    until compgen -G "$dir/*.tmp.*" > /dev/null; do
        kill -0 "$pid" 2> /dev/null || fail "$name: ended before it wrote anything"
        sleep 0.05
    done
    local t0 t1
    t0=$(date +%s%N)
    kill -s "$sig" "$pid"
    set +e; wait "$pid"; local rc=$?; set -e
    t1=$(date +%s%N)
    local ms=$(( (t1 - t0) / 1000000 ))
    [[ $rc == "$code" ]] || fail "$name: SIG$sig while writing: exit $rc, want $code"
    compgen -G "$dir/*.tmp.*" > /dev/null && fail "$name: temporary files left: $(ls "$dir")"
    [[ ! -e $dir/results.csv && ! -e $dir/results.json ]] || fail "$name: results written by a stopped run"
    echo "deep_output: $name: SIG$sig while writing -> exit $rc after $ms ms, nothing written"
}
stop_while_writing run TERM 143 "$work/out" "$bin" run "$work/deep.json" -o "$work/out" -q --threads 1
"$bin" run "$work/deep.json" -o "$work/out" -q --threads 1 --resume || fail "resume after a stop while writing"
cmp "$work/out/results.csv" "$work/ref/results.csv" || fail "results.csv after the stop and --resume differs"
/usr/bin/python3 "$src/tests/cli/scale_out_check.py" same "$work/out/results.json" "$work/ref/results.json" \
    || fail "results.json after the stop and --resume differs"

"$bin" run "$work/deep.json" -o "$work/shard" -q --threads 1 --shard 0/1 || fail "shard"
stop_while_writing merge INT 130 "$work/merged" "$bin" merge "$work/shard" -o "$work/merged" -q
echo "deep_output: ok"

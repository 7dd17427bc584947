#!/usr/bin/env bash
# kill -9 a real run at random moments, again and again; `run --resume` must
# finish it with results identical to the bit to an uninterrupted run. After
# every kill: no result file exists half-written (results appear only complete,
# at the end) and every unit file present is complete (header, size, checksum).
set -euo pipefail
bin=$1 src=$2 work=$3
rm -rf "$work"; mkdir -p "$work"
check="/usr/bin/python3 $src/tests/cli/scale_out_check.py"
fail() { echo "FAIL: $*" >&2; exit 1; }

# ~4 s on one core: 8 cells x 30 blocks of 200 seeds = 240 work units.
cat > "$work/spec.json" <<'JSON'
{"name": "killme", "seeds": {"count": 6000, "first": 1},
 "grid": {"depth": [4, 8], "width": [16, 48], "shortcut": [false, true]},
 "network": {"input_dim": 4}, "input": {"distribution": "normal", "batch": 4}}
JSON
opts=(--threads 1 --seed-block 200 -q)

now_ms() { echo $(($(date +%s%N) / 1000000)); }
start=$(now_ms)
"$bin" run "$work/spec.json" -o "$work/ref" "${opts[@]}" --per-seed || fail "reference run"
ref_ms=$(($(now_ms) - start))
echo "resume_kill: reference run took ${ref_ms} ms"

# Kills are timed by the run's own progress, not by the clock (a loaded CI box
# can be ten times slower than the reference run was): each attempt waits until
# a random number of further units (3..27) is on disk, then a random 0..30 ms
# more, so the kill lands anywhere in a unit's computation or its file write.
random_ms() { printf '0.%03d' $((RANDOM % 31)); }
units_done() {  # finished units: unit files, plus 30 per summarised cell
    local u c
    u=$(ls "$1/units" 2> /dev/null | grep -c '\.bin$' || true)
    c=$(ls "$1/cells" 2> /dev/null | grep -c '\.bin$' || true)
    echo $((u + 30 * c))
}
kill_after_progress() {  # PID DIR: kill -9 PID once DIR has gained 3..27 units
    local pid=$1 dir=$2 target
    target=$(($(units_done "$dir") + 3 + RANDOM % 25))
    while kill -0 "$pid" 2> /dev/null && (($(units_done "$dir") < target)); do sleep 0.01; done
    sleep "$(random_ms)"
    kill -9 "$pid" 2> /dev/null || true
}
random_delay() { printf '0.%03d' $((RANDOM % 300)); }

out="$work/out"
kills=0 finished=0
for attempt in $(seq 1 14); do
    "$bin" run "$work/spec.json" -o "$out" "${opts[@]}" --resume &
    pid=$!
    if (($(units_done "$out") < 200)); then
        kill_after_progress "$pid" "$out"
    fi
    set +e; wait "$pid" 2> /dev/null; rc=$?; set -e
    case $rc in
        137) kills=$((kills + 1)) ;;
        0) finished=1 ;;  # it finished before the kill (or was let finish)
        *) fail "attempt $attempt: run exited with $rc" ;;
    esac
    # Invariants of the directory as a kill leaves it.
    if [[ -e $out/results.csv || -e $out/results.json ]]; then
        # Results only ever appear complete.
        cmp -s "$out/results.csv" "$work/ref/results.csv" || fail "attempt $attempt: results.csv present but not the final one"
        $check same "$out/results.json" "$work/ref/results.json" || fail "attempt $attempt: results.json present but not the final one"
    fi
    n=$($check units "$out" 200) || fail "attempt $attempt: a damaged unit or cell file"
    echo "resume_kill: attempt $attempt: killed=$((1 - finished)), $n of 240 units on disk"
    ((finished)) && break
done
((kills >= 3)) || fail "only $kills kills landed before the run finished"

if ((!finished)); then
    "$bin" run "$work/spec.json" -o "$out" "${opts[@]}" --resume || fail "final resume exit $?"
fi
cmp "$out/results.csv" "$work/ref/results.csv" || fail "results.csv differs from the uninterrupted run"
$check same "$out/results.json" "$work/ref/results.json" || fail "results.json differs"
$check no-temporaries "$out" || fail "temporary files left after completion"
[[ ! -e $out/units && ! -e $out/checkpoint.json ]] || fail "checkpoint left after completion"

# With --per-seed every row is kept to the end and read back then: kill that too.
ps="$work/ps"
for attempt in 1 2 3; do
    "$bin" run "$work/spec.json" -o "$ps" "${opts[@]}" --per-seed --resume &
    pid=$!
    sleep "$(random_delay)"; sleep "$(random_delay)"
    kill -9 "$pid" 2> /dev/null || true
    wait "$pid" 2> /dev/null || true
    [[ ! -e $ps/per_seed.csv ]] || cmp -s "$ps/per_seed.csv" "$work/ref/per_seed.csv" || fail "per-seed attempt $attempt: partial per_seed.csv"
    $check units "$ps" 200 > /dev/null || fail "per-seed attempt $attempt: damaged unit file"
done
"$bin" run "$work/spec.json" -o "$ps" "${opts[@]}" --per-seed --resume || fail "per-seed final resume"
cmp "$ps/per_seed.csv" "$work/ref/per_seed.csv" || fail "per_seed.csv differs after kills"
cmp "$ps/results.csv" "$work/ref/results.csv" || fail "results.csv (--per-seed) differs after kills"

# A shard killed twice and resumed, merged with its sibling: the same results again.
for k in 0 1; do
    "$bin" run "$work/spec.json" -o "$work/shard$k" --shard $k/2 --threads 1 --seed-block 200 -q --resume &
    pid=$!
    if ((k == 1)); then
        for _ in 1 2; do
            sleep "$(random_delay)"
            kill -9 "$pid" 2> /dev/null || true
            wait "$pid" 2> /dev/null || true
            $check units "$work/shard$k" > /dev/null || fail "shard: damaged unit file after kill"
            "$bin" run "$work/spec.json" -o "$work/shard$k" --shard $k/2 --threads 1 --seed-block 200 -q --resume &
            pid=$!
        done
    fi
    wait "$pid" || fail "shard $k exit $?"
done
"$bin" merge "$work/shard0" "$work/shard1" -o "$work/merged" -q --per-seed || fail "merge exit $?"
cmp "$work/merged/results.csv" "$work/ref/results.csv" || fail "merged results.csv differs"
cmp "$work/merged/per_seed.csv" "$work/ref/per_seed.csv" || fail "merged per_seed.csv differs"
$check same "$work/merged/results.json" "$work/ref/results.json" || fail "merged results.json differs"

# An existing output directory is refused without --resume or --force.
set +e
"$bin" run "$work/spec.json" -o "$out" -q 2> "$work/err.txt"; rc=$?
set -e
[[ $rc == 2 ]] || fail "existing directory: exit $rc"
grep -q -- "--resume" "$work/err.txt" || fail "refusal does not mention --resume: $(cat "$work/err.txt")"
echo "resume_kill: $kills kills, results identical; 1 passed, 0 failed"

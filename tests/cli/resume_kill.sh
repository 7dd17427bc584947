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

"$bin" run "$work/spec.json" -o "$work/ref" "${opts[@]}" --per-seed || fail "reference run"

# Kills are placed by the run's own progress, never by the clock: each killed
# run is started behind a gate (tests/cli/lib/gate.bash) a few units past the
# point where it is killed, so it cannot finish first however fast the machine
# is, and the kill waits for the units however slow (loaded) it is. Where
# exactly it lands is random: after a random number of further units (3..27) is
# on disk, a random 0..30 ms more, so anywhere in a unit's computation, in its
# file write, in summarising a cell, or at the gate.
UNITS_PER_CELL=30
source "$src/tests/cli/lib/gate.bash"
gate="$work/gate"
random_ms() { printf '0.%03d' $((RANDOM % 31)); }
# killed_run DIR MORE HEADROOM ARGS...: a gated run on DIR, killed -9 once MORE
# units more than now are on disk; it may write at most HEADROOM units beyond
# that. Fails unless the kill landed (exit 137).
killed_run() {
    local dir=$1 more=$2 headroom=$3 target pid rc; shift 3
    target=$(($(units_on_disk "$dir") + more))
    gate_at "$gate" $((target + headroom))
    GRADSWEEP_TEST_GATE=$gate "$bin" run "$work/spec.json" -o "$dir" "$@" --resume &
    pid=$!
    wait_units "$dir" "$target" "$pid"
    sleep "$(random_ms)"
    kill -9 "$pid" 2> /dev/null || true
    set +e; wait "$pid" 2> /dev/null; rc=$?; set -e
    [[ $rc == 137 ]] || fail "$dir: a run held $headroom units past the kill exited $rc, not 137 (killed)"
}

# With --checkpoint-units every unit's rows go to a unit file as it finishes (the
# finest resume); the final resume below runs without it, so the cells left
# then keep their rows in memory: both kinds in one run.
out="$work/out"
kills=0
while (($(units_on_disk "$out") < 200)); do
    ((kills < 40)) || fail "no progress: $(units_on_disk "$out") units after $kills kills"
    killed_run "$out" $((3 + RANDOM % 25)) 4 "${opts[@]}" --checkpoint-units
    kills=$((kills + 1))
    # Invariants of the directory as a kill leaves it: no results (they appear
    # only complete, at the end), every unit and cell file complete.
    [[ ! -e $out/results.csv && ! -e $out/results.json ]] || fail "kill $kills: results written by an unfinished run"
    n=$($check units "$out" 200) || fail "kill $kills: a damaged unit or cell file"
    echo "resume_kill: kill $kills: $n of 240 units on disk"
done
((kills >= 3)) || fail "only $kills kills"

"$bin" run "$work/spec.json" -o "$out" "${opts[@]}" --resume || fail "final resume exit $?"
cmp "$out/results.csv" "$work/ref/results.csv" || fail "results.csv differs from the uninterrupted run"
$check same "$out/results.json" "$work/ref/results.json" || fail "results.json differs"
$check no-temporaries "$out" || fail "temporary files left after completion"
[[ ! -e $out/units && ! -e $out/checkpoint.json ]] || fail "checkpoint left after completion"

# Without --checkpoint-units these cells, cheap to redo (docs/scale_out.md),
# keep their rows in memory while computed: a kill keeps whole cells (their cell
# files) and never a unit file, and --resume computes the cells in flight again.
# Each run is killed once 1 or 2 more cells are on disk, held at most 29 units
# past that (inside the next cell, which the kill then loses).
mem="$work/mem"
mkills=0
while (($(units_on_disk "$mem") < 180)); do
    ((mkills < 20)) || fail "in memory: no progress: $(units_on_disk "$mem") units after $mkills kills"
    killed_run "$mem" $((UNITS_PER_CELL * (1 + RANDOM % 2))) $((1 + RANDOM % 29)) "${opts[@]}"
    mkills=$((mkills + 1))
    [[ ! -e $mem/results.csv && ! -e $mem/results.json ]] || fail "in memory, kill $mkills: results written by an unfinished run"
    [[ -z $(ls -A "$mem/units" 2> /dev/null) ]] || fail "in memory, kill $mkills: unit files written: $(ls "$mem/units" | head -3)"
    n=$($check units "$mem" 200) || fail "in memory, kill $mkills: a damaged cell file"
    echo "resume_kill: in memory, kill $mkills: $n of 240 units on disk (whole cells)"
done
"$bin" run "$work/spec.json" -o "$mem" "${opts[@]}" --resume || fail "in memory: final resume exit $?"
cmp "$mem/results.csv" "$work/ref/results.csv" || fail "in memory: results.csv differs from the uninterrupted run"
$check same "$mem/results.json" "$work/ref/results.json" || fail "in memory: results.json differs"

# With --per-seed every row is kept to the end and read back then: kill twice
# while units are written, then once every unit is on disk, released into
# reading them back and writing the results (that kill may come after the
# results are complete: then they must be the final ones).
ps="$work/ps"
for attempt in 1 2; do
    killed_run "$ps" $((20 + RANDOM % 60)) 4 "${opts[@]}" --per-seed
    [[ ! -e $ps/per_seed.csv ]] || fail "per-seed kill $attempt: per_seed.csv written by an unfinished run"
    $check units "$ps" 200 > /dev/null || fail "per-seed kill $attempt: damaged unit file"
done
gate_at "$gate" 240
GRADSWEEP_TEST_GATE=$gate "$bin" run "$work/spec.json" -o "$ps" "${opts[@]}" --per-seed --resume &
pid=$!
wait_units "$ps" 240 "$pid"
gate_at "$gate" 241
sleep "$(random_ms)"
kill -9 "$pid" 2> /dev/null || true
set +e; wait "$pid" 2> /dev/null; rc=$?; set -e
[[ $rc == 137 || $rc == 0 ]] || fail "per-seed late kill: exit $rc"
[[ ! -e $ps/per_seed.csv ]] || cmp -s "$ps/per_seed.csv" "$work/ref/per_seed.csv" || fail "per-seed late kill: partial per_seed.csv"
$check no-temporaries "$ps" > /dev/null || [[ $rc == 137 ]] || fail "per-seed late kill: temporaries after a finished run"
[[ $rc == 0 ]] || "$bin" run "$work/spec.json" -o "$ps" "${opts[@]}" --per-seed --resume || fail "per-seed final resume"
echo "resume_kill: per-seed late kill: exit $rc"
cmp "$ps/per_seed.csv" "$work/ref/per_seed.csv" || fail "per_seed.csv differs after kills"
cmp "$ps/results.csv" "$work/ref/results.csv" || fail "results.csv (--per-seed) differs after kills"

# A shard killed twice and resumed, merged with its sibling: the same results again.
UNITS_PER_CELL=0  # shards keep unit files; they never summarise cells
"$bin" run "$work/spec.json" -o "$work/shard0" --shard 0/2 "${opts[@]}" || fail "shard 0 exit $?"
for _ in 1 2; do
    killed_run "$work/shard1" $((10 + RANDOM % 40)) 4 --shard 1/2 "${opts[@]}"
    $check units "$work/shard1" > /dev/null || fail "shard: damaged unit file after kill"
done
"$bin" run "$work/spec.json" -o "$work/shard1" --shard 1/2 "${opts[@]}" --resume || fail "shard 1 exit $?"
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

#!/usr/bin/env bash
# `gradsweep plan`'s peak memory is an upper bound on what `gradsweep run` really
# uses, and not a loose one: measured peak RSS <= plan's estimate <= 2 x measured,
# on sweeps whose memory is dominated by different things (the process itself,
# a cell's columns, per-thread scratch, results text and JSON tree, per_seed.csv,
# a shard). Peak RSS comes from /usr/bin/time (getrusage of the child); it does
# not depend on the machine's load, and nothing here is timed.
# (bench/plan_vs_measured.py makes the README's table, time included.)
set -uo pipefail
bin=$1 src=$2 work=$3
rm -rf "$work"; mkdir -p "$work"
cd "$work" || exit 1
failed=0
fail() { echo "FAIL: $*" >&2; failed=$((failed + 1)); }
[[ -x /usr/bin/time ]] || { echo "SKIPPED: no /usr/bin/time"; exit 77; }
# Under ASan the peak RSS is mostly shadow memory and the freed-block quarantine,
# not the run's own memory, so it says nothing about plan's estimate; the normal
# build's test stage checks the bound.
[[ ${GS_SANITIZED_BUILD:-0} == 1 ]] && { echo "SKIPPED: sanitizer build (peak RSS is ASan's shadow memory)"; exit 77; }

# case NAME 'SPEC JSON' [extra options for plan and run]
case_() {
    local name=$1 spec=$2; shift 2
    echo "$spec" > "$name.json"
    "$bin" plan "$name.json" --backend cpu --threads 2 "$@" > "$name.plan" 2> "$name.plan_err" \
        || { fail "$name: plan exit $?: $(cat "$name.plan_err")"; return; }
    local est
    est=$(sed -nE 's/^  peak \(cpu run\) .*\(([0-9]+) bytes.*/\1/p' "$name.plan")
    # (the human form, "12.3 MiB", where the exact count is missing)
    [[ -n $est ]] || est=$(awk '/^  peak \(cpu run\)/ { u = $5; sub(";", "", u); m = index("B  KiBMiBGiBTiB", u); if (m) printf "%.0f", $4 * 2 ^ (10 * (m - 1) / 3) }' "$name.plan")
    [[ -n $est ]] || { fail "$name: no peak in plan's output: $(cat "$name.plan")"; return; }
    /usr/bin/time -f "%M" -o "$name.rss" "$bin" run "$name.json" -o "$name.out" --backend cpu --threads 2 --quiet "$@" \
        2> "$name.run_err" || { fail "$name: run exit: $(cat "$name.run_err")"; return; }
    local rss=$(( $(tail -1 "$name.rss") * 1024 ))
    echo "$name: plan $est bytes, measured peak RSS $rss bytes ($(awk -v e="$est" -v r="$rss" 'BEGIN { printf "%.2f", e / r }')x)"
    (( est >= rss )) || fail "$name: plan says $est bytes, the run used $rss: not an upper bound"
    (( est <= 2 * rss )) || fail "$name: plan says $est bytes, more than twice the $rss the run used"
    rm -rf "$name.out"
}

net='"network": {"input_dim": 3, "last_activation": false'
case_ tiny "{\"name\": \"tiny\", \"seeds\": {\"count\": 1}, $net, \"depth\": 2, \"width\": 3}}"
case_ many_seeds "{\"name\": \"many-seeds\", \"seeds\": {\"count\": 131072}, $net, \"depth\": 5, \"width\": 3}}"
case_ zeros "{\"name\": \"zeros\", \"seeds\": {\"count\": 65536}, $net, \"depth\": 3, \"width\": 3, \"init\": {\"kind\": \"normal\", \"sigma_w\": 0}}}"
case_ wide "{\"name\": \"wide\", \"seeds\": {\"count\": 8}, \"grid\": {\"shortcut\": [false, true]}, $net, \"depth\": 3, \"width\": 2048}}"
case_ deep "{\"name\": \"deep\", \"seeds\": {\"count\": 8}, $net, \"depth\": 1500, \"width\": 4}}"
case_ many_cells "{\"name\": \"many-cells\", \"seeds\": {\"count\": 4}, \"grid\": {\"depth\": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20], \"width\": [2, 3, 4, 5, 6], \"activation\": [\"relu\", \"tanh\", \"gelu\", \"sigmoid\"]}, $net}}"
case_ per_seed "{\"name\": \"per-seed\", \"seeds\": {\"count\": 4096}, \"grid\": {\"depth\": [4, 8], \"width\": [3, 16]}, $net}}" --per-seed
case_ shard "{\"name\": \"shard\", \"seeds\": {\"count\": 8192}, \"grid\": {\"depth\": [4, 8], \"width\": [3, 8]}, $net}}" --shard 0/2
case_ float64_batch '{"name": "f64", "precision": "float64", "seeds": {"count": 64}, "input": {"distribution": "normal", "batch": 32},
                     "grid": {"depth": [2, 4]}, "network": {"width": 96, "input_dim": 16}}'
case_ torch "{\"name\": \"torch\", \"rng\": \"torch\", \"seeds\": {\"count\": 1024}, \"grid\": {\"depth\": [3, 6], \"width\": [8, 32]}, $net}}"

echo "plan_memory: $failed failed"
[[ $failed == 0 ]]

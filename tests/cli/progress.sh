#!/usr/bin/env bash
# Progress of `gradsweep run` on stderr: plain lines no more often than the
# interval when stderr is not a terminal; on a terminal a bar redrawn in place
# that ends complete on its own line; --quiet prints nothing at all, terminal
# or not. (tests/cli/signals.sh checks the lines' text and the bar's format.)
set -uo pipefail
bin=$1 src=$2 work=$3
rm -rf "$work"; mkdir -p "$work"
cd "$work"
failed=0
fail() { echo "FAIL: $*" >&2; failed=$((failed + 1)); }

cat > spec.json <<'JSON'
{"name": "progress", "seeds": {"count": 6000, "first": 1},
 "grid": {"depth": [4, 8], "width": [16, 48], "shortcut": [false, true]},
 "network": {"input_dim": 4}, "input": {"distribution": "normal", "batch": 4}}
JSON
# --checkpoint-units: a unit file per unit, so units on disk count one by one.
opts=(--threads 1 --seed-block 200 --backend cpu --checkpoint-units)

# Plain lines, one interval (0.5 s) apart at most: never more lines than the
# elapsed time allows (+2: the first, the final totals), and at least the final
# one. The run is held at 100 units (tests/cli/lib/gate.bash) until it has
# printed a line there: on a fast machine it could otherwise finish within the
# first interval and rightly print nothing. Held, it goes on printing lines, and
# it is held exactly there: 3 cells summarised and 10 unit files.
UNITS_PER_CELL=30
source "$src/tests/cli/lib/gate.bash"
gate_at gate 100
start=$(date +%s%N)
GRADSWEEP_TEST_GATE=gate GRADSWEEP_PROGRESS_SECONDS=0.5 "$bin" run spec.json -o plain "${opts[@]}" > plain.out 2> plain.err &
pid=$!
if wait_line plain.err '^gradsweep: 3/8 cells, 100/240 units, 20000/48000 networks, ' "$pid"; then
    held=$(units_on_disk plain)
    [[ $held == 100 ]] || fail "a run held at 100 units has $held on disk"
    kill -0 "$pid" 2> /dev/null || fail "a run held at 100 units ended"
fi
gate_at gate 241
wait "$pid" || fail "plain run"
ms=$((($(date +%s%N) - start) / 1000000))
n=$(grep -c '^gradsweep: [0-9]*/8 cells, ' plain.err)
max=$((ms / 500 + 2))
((n >= 1 && n <= max)) || fail "$n progress lines in $ms ms (want 1..$max at one per 0.5 s): $(head -5 plain.err)"
tail -1 plain.err | grep -q '^gradsweep: 8/8 cells, 240/240 units, 48000/48000 networks' || fail "last line is not the totals: $(tail -1 plain.err)"
grep -q $'\r' plain.err && fail "carriage returns in a log"
grep -q 'gradsweep: ' plain.out && fail "progress on stdout"

if command -v script > /dev/null; then
    # On a terminal: the bar, redrawn with \r, finished with the totals and a newline.
    script -qfec "'$bin' run spec.json -o tty ${opts[*]}" /dev/null > tty.txt 2>&1 || fail "run on a terminal"
    grep -q $'\r\\[#*-*\\] 8/8 cells' tty.txt || fail "no complete bar: $(head -c 300 tty.txt | od -c | head -5)"
    grep -q '^gradsweep: [0-9]*/8 cells, ' tty.txt && fail "plain progress lines on a terminal"
    # --quiet on a terminal: not a byte.
    script -qfec "'$bin' run spec.json -o ttyq ${opts[*]} --quiet" /dev/null > ttyq.txt 2>&1 || fail "quiet run on a terminal"
    [[ ! -s ttyq.txt ]] || fail "--quiet printed on a terminal: $(head -c 300 ttyq.txt | od -c | head -5)"
    cmp -s tty/results.csv plain/results.csv && cmp -s ttyq/results.csv plain/results.csv || fail "results differ"
else
    echo "progress: no 'script' command (bsdutils); terminal cases not checked"
fi
# --quiet, stderr a file: empty.
"$bin" run spec.json -o quiet "${opts[@]}" -q > quiet.out 2> quiet.err || fail "quiet run"
[[ ! -s quiet.err && ! -s quiet.out ]] || fail "--quiet printed: $(head -3 quiet.err quiet.out)"

echo "progress: $failed failed"
[[ $failed == 0 ]]

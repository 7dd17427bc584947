#!/usr/bin/env bash
# `gradsweep plan SPEC`: cells, networks, memory per backend and a calibrated
# time on stdout, nothing written; a spec whose work cannot fit (--max-memory,
# or more than the machine has) is refused with one reason line and exit 2,
# by plan and by run alike, before anything is created.
set -uo pipefail
bin=$1 src=$2 work=$3
rm -rf "$work"; mkdir -p "$work"
failed=0
fail() { echo "FAIL: $*" >&2; failed=$((failed + 1)); }

cat > "$work/spec.json" <<'JSON'
{"name": "p", "seeds": {"count": 50}, "grid": {"depth": [2, 4], "width": [4, 8]}, "network": {"input_dim": 3}}
JSON
# 10^12 seeds of a 40-layer cell: petabytes of rows, more than any machine has.
cat > "$work/huge.json" <<'JSON'
{"name": "huge", "seeds": {"count": 1000000000000}, "network": {"depth": 40, "width": 4, "input_dim": 3}}
JSON

cd "$work"
"$bin" plan spec.json --backend cpu > plan.out 2> plan.err || fail "plan exit $?: $(cat plan.err)"
for want in "cells 4, seeds 50, networks 200, backend cpu" "work units 4" "memory (estimates):" \
            "  cpu backend " "  cuda backend " "  peak (cpu run) " "estimated time " "calibrated on "; do
    grep -qF -- "$want" plan.out || fail "plan output lacks '$want': $(cat plan.out)"
done
# One table row per cell with a finite, non-negative time estimate.
rows=$(grep -cE '^[0-3] +3-[48](-[48])*-1 +[0-9.]+ +[0-9.e+-]+$' plan.out)
[[ $rows == 4 ]] || fail "plan: $rows cell rows, want 4: $(cat plan.out)"
[[ -z $(ls -A | grep -v -e '^spec.json$' -e '^huge.json$' -e '^plan\.') ]] || fail "plan wrote files: $(ls)"

# expect_refusal NAME PATTERN CMD...: exit 2, one stderr line matching PATTERN (a glob).
expect_refusal() {
    local name=$1 pattern=$2; shift 2
    "$@" > "$name.out" 2> "$name.err"
    local rc=$? lines
    mapfile -t lines < "$name.err"
    [[ $rc == 2 ]] || { fail "$name: exit $rc (want 2): $(head -c 400 "$name.err")"; return; }
    [[ ${#lines[@]} == 1 ]] || { fail "$name: ${#lines[@]} stderr lines: $(head -c 400 "$name.err")"; return; }
    # shellcheck disable=SC2053
    [[ ${lines[0]} == $pattern ]] || fail "$name: '${lines[0]}' does not match '$pattern'"
}
expect_refusal plan_max_memory "gradsweep: error: will not fit: cell * needs * more than --max-memory 1 KiB*" \
    "$bin" plan spec.json --backend cpu --max-memory 1K
expect_refusal plan_too_big "gradsweep: error: will not fit: cell 0 * more than the * available (MemAvailable)*" \
    "$bin" plan huge.json --backend cpu
expect_refusal run_max_memory "gradsweep: error: will not fit: * more than --max-memory 1 KiB*" \
    "$bin" run spec.json -o out1 --backend cpu --max-memory 1K
expect_refusal run_too_big "gradsweep: error: will not fit: *" "$bin" run huge.json -o out2 --backend cpu
[[ ! -e out1 && ! -e out2 ]] || fail "a refused run created its output directory"
# The estimates above the reason still went to stdout.
grep -qF "peak (cpu run)" plan_max_memory.out || fail "plan --max-memory: no estimates before the refusal"
# Enough memory: plan accepts it.
"$bin" plan spec.json --backend cpu --max-memory 1G > /dev/null 2>&1 || fail "plan --max-memory 1G refused"

# Cells cheap to redo keep their rows in memory when the budget for them fits
# (docs/scale_out.md); with a --max-memory between the two peaks the plan, and
# the run, fall back to unit files instead of refusing. 4 cells of 200000 seeds:
# the in-memory budget is two cells' columns, one cell's with unit files.
cat > "$work/mem.json" <<'JSON'
{"name": "m", "seeds": {"count": 200000}, "grid": {"depth": [2, 3], "width": [2, 3]}, "network": {"input_dim": 2}}
JSON
peak_of() { sed -nE 's/.*peak \(cpu run\) .*\(([0-9]+) bytes.*/\1/p' "$1"; }
"$bin" plan mem.json --backend cpu --threads 1 > mem_plan.out 2>&1 || fail "plan mem.json exit $?: $(cat mem_plan.out)"
grep -q "^  cells kept in memory " mem_plan.out || fail "plan: no 'cells kept in memory' line: $(cat mem_plan.out)"
"$bin" plan mem.json --backend cpu --threads 1 --checkpoint-units > units_plan.out 2>&1 || fail "plan --checkpoint-units exit $?"
! grep -q "cells kept in memory" units_plan.out || fail "plan --checkpoint-units keeps cells in memory"
with_mem=$(peak_of mem_plan.out) with_units=$(peak_of units_plan.out)
if [[ -n $with_mem && -n $with_units ]] && ((with_units < with_mem)); then
    between=$(((with_mem + with_units) / 2))
    "$bin" plan mem.json --backend cpu --threads 1 --max-memory "$between" > between.out 2>&1 || fail "plan --max-memory $between refused: $(tail -1 between.out)"
    ! grep -q "cells kept in memory" between.out || fail "plan --max-memory $between still keeps cells in memory"
    [[ $(peak_of between.out) == "$with_units" ]] || fail "plan --max-memory $between: peak $(peak_of between.out), want $with_units"
    "$bin" run mem.json -o between_run --backend cpu --threads 1 -q --max-memory "$between" || fail "run --max-memory $between exit $?"
    "$bin" run mem.json -o mem_run --backend cpu --threads 1 -q || fail "run mem.json exit $?"
    cmp between_run/results.csv mem_run/results.csv || fail "unit files and memory give different results.csv"
else
    fail "plan peaks: in memory '$with_mem', unit files '$with_units' (want a smaller one with unit files)"
fi

echo "plan: $failed failed"
[[ $failed == 0 ]]

#!/usr/bin/env bash
# run / validate / plan through the real binary: outputs, columns, exit codes.
set -euo pipefail
bin=$1 src=$2 work=$3
rm -rf "$work"; mkdir -p "$work"
fail() { echo "FAIL: $*" >&2; exit 1; }

cat > "$work/spec.json" <<'JSON'
{"name": "e2e", "seeds": {"count": 50, "first": 3},
 "grid": {"depth": [2, 4], "activation": ["relu", "tanh"], "shortcut": [false, true]},
 "network": {"width": 5, "bias": true},
 "input": {"distribution": "normal", "batch": 2}, "loss": {"kind": "mse", "target": 0.5}}
JSON

out=$("$bin" validate "$work/spec.json") || fail "validate exit $?"
[[ $out == "ok: e2e: 8 cells x 50 seeds = 400 networks" ]] || fail "validate said: $out"

"$bin" plan "$work/spec.json" --backend cpu > "$work/plan.txt" || fail "plan exit"
grep -q "cells 8, seeds 50, networks 400" "$work/plan.txt" || fail "plan output: $(cat "$work/plan.txt")"
[[ ! -e "$work/out" ]] || fail "plan wrote output"

"$bin" run "$work/spec.json" -o "$work/out" --threads 2 --per-seed > "$work/stdout.txt" 2> "$work/stderr.txt" || fail "run exit"
for f in results.json results.csv per_seed.csv; do [[ -s "$work/out/$f" ]] || fail "missing $f"; done
ls "$work/out" | grep -q tmp && fail "temporary file left behind"
head -1 "$work/out/results.csv" | grep -qx 'cell,depth,width,layer_sizes,activation,leaky_slope,shortcut,bias,last_activation,residual_scale,init,sigma_w,sigma_b,name,spec_hash,precision,rng,rng_key,seeds_first,seeds_count,input,input_batch,loss_target,layer,quantity,n,mean,std,min,q05,median,q95,max,geomean,n_nonfinite,n_zero' \
  || fail "csv header: $(head -1 "$work/out/results.csv")"
# 8 cells; depth 2 and 4 -> (2+4)*2*2 layer blocks of 5 quantities each = 120 rows,
# plus one loss row per cell (+ header).
rows=$(($(wc -l < "$work/out/results.csv") - 1))
[[ $rows == 128 ]] || fail "csv has $rows rows"
[[ $(grep -c ',,loss,50,' "$work/out/results.csv") == 8 ]] || fail "no loss row per cell: $(grep loss "$work/out/results.csv" | head -3)"
# per_seed: 400 networks x (layers*5 + loss)
ps=$(($(wc -l < "$work/out/per_seed.csv") - 1))
[[ $ps == $((100 * (2 * 5 + 1) + 100 * (4 * 5 + 1) + 100 * (2 * 5 + 1) + 100 * (4 * 5 + 1))) ]] || fail "per_seed rows $ps"
grep -q "first layer" "$work/stdout.txt" || fail "no summary table"
# The summary: a header, then one row per cell with first/last medians, ratio, non-finite count.
/usr/bin/python3 - "$work/stdout.txt" "$work/out" <<'PY' || fail "summary table: $(cat "$work/stdout.txt")"
import csv, math, re, sys
lines = open(sys.argv[1], encoding="utf-8").read().splitlines()
head = [i for i, l in enumerate(lines) if l.split()[:2] == ["cell", "network"]]
assert len(head) == 1, lines
cols = re.split(r"\s{2,}", lines[head[0]].strip())  # columns are two or more spaces apart
for col in ["first layer", "last layer", "first/last", "nonfinite", "mean-field f/l", "rate/layer", "mean-field rate"]:
    assert col in cols, (col, cols)
rows = lines[head[0] + 1: head[0] + 9]
assert "-nan" not in "\n".join(lines)
med = {}
for x in csv.DictReader(open(f"{sys.argv[2]}/results.csv")):
    if x["quantity"] == "weight_grad_mean_abs":
        med.setdefault(int(x["cell"]), {})[int(x["layer"])] = float(x["median"])
growth = {int(x["cell"]): x for x in csv.DictReader(open(f"{sys.argv[2]}/growth.csv")) if x["quantity"] == "weight_grad_rms"}
for c, row in enumerate(rows):
    f = dict(zip(cols, re.split(r"\s{2,}", row.strip())))
    assert int(f["cell"]) == c, row
    m = med[c]
    assert math.isclose(float(f["first layer"]), m[0], rel_tol=6e-3), (row, m[0])
    assert math.isclose(float(f["last layer"]), m[max(m)], rel_tol=6e-3), (row, m)
    assert math.isclose(float(f["first/last"]), m[0] / m[max(m)], rel_tol=6e-3), row
    assert f["nonfinite"] == "0", row
    g = growth[c]
    if g["rate"] == "NaN":  # depth 2: no hidden layers to fit
        assert f["rate/layer"] == "\u2014" and g["reason"].startswith("fewer than 2 hidden layers"), (row, g)
    else:
        rate, se = f["rate/layer"].split(" \u00b1 ")
        assert math.isclose(float(rate), float(g["rate"]), rel_tol=6e-3), (row, g)
        assert math.isclose(float(se), float(g["rate_stderr"]), rel_tol=6e-3), (row, g)
        assert math.isclose(float(f["mean-field rate"]), float(g["theory_rate"]), rel_tol=6e-3), (row, g)
PY
# growth.csv: two rows per cell (weight_grad_rms, delta_rms), results.csv's identifying columns then the rate's.
head -1 "$work/out/growth.csv" | grep -qx 'cell,depth,width,layer_sizes,activation,leaky_slope,shortcut,bias,last_activation,residual_scale,init,sigma_w,sigma_b,name,spec_hash,precision,rng,rng_key,seeds_first,seeds_count,input,input_batch,loss_target,quantity,first_layer,last_layer,seeds,rate,rate_stderr,depth_scale,theory_rate,reason' \
  || fail "growth.csv header: $(head -1 "$work/out/growth.csv")"
[[ $(($(wc -l < "$work/out/growth.csv") - 1)) == 16 ]] || fail "growth.csv rows: $(wc -l < "$work/out/growth.csv")"
# Recomputed from per_seed.csv: the slope of ln mean(x^2) over layers 1..2 of the depth-4 cells, x the
# weight_grad_rms of the layer, or for delta_rms that divided by the activation_rms of the layer before.
/usr/bin/python3 - "$work/out" <<'PY' || fail "growth.csv disagrees with per_seed.csv"
import csv, json, math, sys
d = sys.argv[1]
v = {}
for x in csv.DictReader(open(f"{d}/per_seed.csv")):
    v.setdefault((int(x["cell"]), int(x["seed"]), int(x["layer"]), x["quantity"]), float(x["value"]))
seeds = sorted({k[1] for k in v})
cells = json.load(open(f"{d}/results.json"))["cells"]
for g in csv.DictReader(open(f"{d}/growth.csv")):
    c, q = int(g["cell"]), g["quantity"]
    if int(g["depth"]) != 4:
        continue
    def x2(s, l):
        w = v[(c, s, l, "weight_grad_rms")]
        return (w / v[(c, s, l - 1, "activation_rms")] if q == "delta_rms" else w) ** 2
    m1, m2 = (sum(x2(s, l) for s in seeds) / len(seeds) for l in (1, 2))
    want = math.log(m1) - math.log(m2)  # layer 1 is one layer further from the output than layer 2
    assert (int(g["first_layer"]), int(g["last_layer"]), int(g["seeds"])) == (1, 2, 50), g
    assert math.isclose(float(g["rate"]), want, rel_tol=1e-9, abs_tol=1e-12), (g, want)
    js = cells[c]["growth"][q]
    assert js["rate"] == float(g["rate"]) and js["fitted_layers"] == [1, 2] and js["seeds"] == 50, js
PY
[[ -s $work/out/theory.csv ]] || fail "missing theory.csv"
[[ $(head -1 "$work/out/theory.csv") == "cell,layer,quantity,value" ]] || fail "theory.csv header"
[[ $(($(wc -l < "$work/out/theory.csv") - 1)) == 24 ]] || fail "theory.csv rows: $(wc -l < "$work/out/theory.csv")"
grep -q "backend auto -> cpu" "$work/stderr.txt" || fail "backend choice not printed"

# results.json: provenance and the spec as run; the CSV agrees with it.
/usr/bin/python3 - "$work/out" <<'PY'
import csv, json, sys, math
d = sys.argv[1]
r = json.load(open(f"{d}/results.json"))
p = r["provenance"]
for k in ["version", "git_commit", "backend", "device", "threads", "start_time", "end_time", "elapsed_seconds", "networks_per_second"]:
    assert k in p, k
assert p["backend"] == "cpu" and p["threads"] == 2 and p["networks"] == 400
assert r["spec"]["name"] == "e2e" and len(r["cells"]) == 8
rows = list(csv.DictReader(open(f"{d}/results.csv")))
row = [x for x in rows if x["cell"] == "5" and x["layer"] == "1" and x["quantity"] == "weight_grad_rms"][0]
js = r["cells"][5]["layers"][1]["weight_grad_rms"]
assert float(row["median"]) == js["median"] and int(row["n"]) == js["n"] == 50, (row, js)
assert r["cells"][5]["params"]["activation"] == row["activation"]
# The per-seed values reproduce the aggregate.
vals = sorted(float(x["value"]) for x in csv.DictReader(open(f"{d}/per_seed.csv"))
              if x["cell"] == "5" and x["layer"] == "1" and x["quantity"] == "weight_grad_rms")
assert len(vals) == 50 and abs((vals[24] + vals[25]) / 2 - js["median"]) <= 1e-15 * abs(js["median"])
PY

# Same spec, 1 thread: identical CSV; --quiet prints nothing.
"$bin" run "$work/spec.json" -o "$work/out1" --threads 1 -q > "$work/quiet.txt" 2>&1 || fail "run -q"
cmp -s "$work/out/results.csv" "$work/out1/results.csv" || fail "1 vs 2 threads differ"
cmp -s "$work/out/theory.csv" "$work/out1/theory.csv" || fail "theory.csv differs"
cmp -s "$work/out/growth.csv" "$work/out1/growth.csv" || fail "growth.csv differs between 1 and 2 threads"
[[ ! -s $work/quiet.txt ]] || fail "--quiet printed: $(cat "$work/quiet.txt")"

# merge prints the same summary table (and nothing with --quiet).
"$bin" run "$work/spec.json" -o "$work/s0" --shard 0/2 --threads 2 -q || fail "shard 0"
"$bin" run "$work/spec.json" -o "$work/s1" --shard 1/2 --threads 2 -q || fail "shard 1"
"$bin" merge "$work/s0" "$work/s1" -o "$work/merged" > "$work/merge.txt" || fail "merge exit"
sed -n '/^cell  *network/,/^(median/p' "$work/stdout.txt" > "$work/table_run.txt"
sed -n '/^cell  *network/,/^(median/p' "$work/merge.txt" > "$work/table_merge.txt"
[[ -s $work/table_merge.txt ]] || fail "merge printed no summary: $(cat "$work/merge.txt")"
cmp -s "$work/table_run.txt" "$work/table_merge.txt" || fail "merge summary differs from the run's"
cmp -s "$work/out/theory.csv" "$work/merged/theory.csv" || fail "merged theory.csv differs"
cmp -s "$work/out/growth.csv" "$work/merged/growth.csv" || fail "merged growth.csv differs"
"$bin" merge "$work/s0" "$work/s1" -o "$work/merged_q" -q > "$work/merge_q.txt" 2>&1 || fail "merge -q"
[[ ! -s $work/merge_q.txt ]] || fail "merge --quiet printed: $(cat "$work/merge_q.txt")"

# Existing output directory is refused without --force; bad input exits 2 and writes nothing.
set +e
"$bin" run "$work/spec.json" -o "$work/out" -q 2> "$work/err.txt"; rc=$?
set -e
[[ $rc == 2 ]] || fail "existing dir: rc $rc"
echo '{"grid": {"width": [3, 0]}, "network": {"depth": 2}}' > "$work/bad.json"
set +e
"$bin" run "$work/bad.json" -o "$work/badout" 2> "$work/err.txt"; rc=$?
set -e
[[ $rc == 2 ]] || fail "bad spec rc $rc"
[[ $(wc -l < "$work/err.txt") == 1 ]] || fail "error is not one line: $(cat "$work/err.txt")"
grep -q "grid.width\[1\]" "$work/err.txt" || fail "error does not name the path: $(cat "$work/err.txt")"
[[ ! -e "$work/badout" ]] || fail "bad spec created the output directory"
set +e
"$bin" validate "$work/missing.json" 2> "$work/err.txt"; rc=$?
set -e
[[ $rc == 2 ]] || fail "missing file rc $rc"
# Bad command-line values: exit 2, one line naming the option, nothing written.
for bad in "--threads 100000" "--threads -1" "--max-memory" "--seed-block 0" "--shard 3/2" "--backend gpu"; do
    read -ra extra <<< "$bad"
    [[ $bad == "--max-memory" ]] && extra=(--max-memory "")
    set +e
    "$bin" run "$work/spec.json" -o "$work/badargs" "${extra[@]}" 2> "$work/err.txt"; rc=$?
    set -e
    [[ $rc == 2 ]] || fail "$bad: rc $rc"
    [[ $(wc -l < "$work/err.txt") == 1 ]] || fail "$bad: error is not one line: $(cat "$work/err.txt")"
    grep -q -- "^gradsweep: error: .*${extra[0]}" "$work/err.txt" || fail "$bad: the line does not name the option: $(cat "$work/err.txt")"
    [[ ! -e "$work/badargs" ]] || fail "$bad: created the output directory"
done
echo "end_to_end: 1 passed, 0 failed"

#!/usr/bin/env bash
# scripts/plot.py end to end: a tiny sweep run with --per-seed, then the PNGs it
# must produce, with and without per_seed.csv and theory in results.json.
set -euo pipefail
bin=$1 src=$2 work=$3
rm -rf "$work"; mkdir -p "$work"
fail() { echo "FAIL: $*" >&2; exit 1; }
py=/usr/bin/python3
if ! "$py" -c "import matplotlib, numpy" 2>/dev/null; then
  echo "SKIPPED: $py lacks matplotlib or numpy"
  exit 0
fi

cat > "$work/spec.json" <<'JSON'
{"name": "plot-test", "seeds": {"count": 64, "first": 0},
 "grid": {"depth": [2, 4], "width": [3, 8], "activation": ["relu", "tanh"], "shortcut": [false, true]},
 "network": {"input_dim": 3, "output_dim": 1, "last_activation": false},
 "input": {"values": [[1.0, 0.0, -1.0]]}, "loss": {"kind": "mse", "target": 0.0}}
JSON
"$bin" run "$work/spec.json" -o "$work/out" --per-seed --quiet --threads 2 || fail "run exit $?"
"$py" "$src/scripts/plot.py" "$work/out" > "$work/written.txt" 2> "$work/plot_err.txt" || fail "plot.py: $(cat "$work/plot_err.txt")"

# A PNG that is really a picture: the signature, a sane size, more than one colour.
check_png() {
  [[ -s $1 ]] || fail "missing $1"
  "$py" - "$1" <<'PY' || fail "not a plot: $1"
import sys
import matplotlib.image as mpimg
path = sys.argv[1]
with open(path, "rb") as f:
    assert f.read(8) == b"\x89PNG\r\n\x1a\n", "not a PNG"
img = mpimg.imread(path)
h, w = img.shape[:2]
assert h >= 200 and w >= 300, (h, w)
assert img[..., :3].std() > 0.02, "blank image"
PY
}
for f in layers_relu.png layers_tanh.png first_layer_vs_depth.png histograms.png; do
  check_png "$work/out/$f"
  grep -q "$f" "$work/written.txt" || fail "$f not listed"
done

# What the figures show, through matplotlib's objects: legend line styles, titles,
# integer layer ticks, readable fonts, notes for identical curves and open bands,
# extra CSV columns, and a message when nothing can be plotted.
"$py" "$src/tests/cli/plot_checks.py" "$src" "$work/out" "$work" plot-test 64 || fail "plot_checks.py"

# Theory beside data: the engine writes it (theory.csv and results.json's per-cell
# "theory"); plot.py reads it from there, from either file, and never recomputes it.
[[ $(head -1 "$work/out/theory.csv") == "cell,layer,quantity,value" ]] || fail "theory.csv header"
grep -q '"theory": {' "$work/out/results.json" || grep -q '"theory":{' "$work/out/results.json" || fail "no theory in results.json"
check_png "$work/out/theory_vs_data_relu.png"
check_png "$work/out/theory_vs_data_tanh.png"
check_png "$work/out/theory_ratio.png"
grep -q theory_vs_data_relu.png "$work/written.txt" || fail "theory_vs_data_relu.png not listed"
# results.json alone (no theory.csv): the same plots.
mkdir -p "$work/json_only"
cp "$work/out/results.csv" "$work/out/results.json" "$work/json_only/"
"$py" "$src/scripts/plot.py" "$work/json_only" > "$work/json_only.txt" 2>&1 || fail "plot.py without theory.csv"
check_png "$work/json_only/theory_vs_data_relu.png"
# No prediction in the outputs (every cell's theory null): no theory plots, and a note.
mkdir -p "$work/no_theory"
cp "$work/out/results.csv" "$work/no_theory/"
"$py" - "$work/out/results.json" "$work/no_theory/results.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
for c in r["cells"]:
    c["theory"] = None
    c["theory_reason"] = "test"
json.dump(r, open(sys.argv[2], "w"))
PY
"$py" "$src/scripts/plot.py" "$work/no_theory" > /dev/null 2> "$work/no_theory_err.txt" || fail "plot.py without theory"
[[ ! -e $work/no_theory/theory_vs_data_relu.png ]] || fail "theory plot without theory in the outputs"
grep -q "no theory" "$work/no_theory_err.txt" || fail "no note about the missing theory"

# gradsweep run --plot calls plot.py on the results.
"$bin" run "$work/spec.json" -o "$work/with_plot" --quiet --threads 2 --plot > "$work/run_plot.txt" 2>&1 || fail "run --plot: $(cat "$work/run_plot.txt")"
check_png "$work/with_plot/layers_relu.png"
grep -q "png" "$work/run_plot.txt" && fail "run --plot --quiet listed the PNGs: $(cat "$work/run_plot.txt")"
check_png "$work/with_plot/theory_vs_data_tanh.png"

# Without per_seed.csv (and written elsewhere with --out): everything but the
# histograms, and a note saying why.
mkdir -p "$work/no_seeds"
cp "$work/out/results.csv" "$work/out/results.json" "$work/no_seeds/"
"$py" "$src/scripts/plot.py" "$work/no_seeds" --out "$work/elsewhere" > /dev/null 2> "$work/no_seeds_err.txt" \
  || fail "plot.py without per_seed.csv"
[[ ! -e $work/elsewhere/histograms.png ]] || fail "histograms without per_seed.csv"
grep -q "per-seed" "$work/no_seeds_err.txt" || fail "no note about --per-seed"
check_png "$work/elsewhere/first_layer_vs_depth.png"
check_png "$work/elsewhere/layers_relu.png"
[[ -z $(ls "$work/no_seeds" | grep png) ]] || fail "--out ignored"

# A quantity the results do not have is refused.
if "$py" "$src/scripts/plot.py" "$work/out" --quantity nope > /dev/null 2>&1; then fail "bad --quantity accepted"; fi
echo "plot.sh: ok"

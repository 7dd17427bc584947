#!/usr/bin/env python3
"""Checks of scripts/plot.py's figures through matplotlib's objects (tests/cli/plot.sh).

usage: plot_checks.py SRC_DIR RESULTS_DIR WORK_DIR SPEC_NAME SEEDS

RESULTS_DIR holds a run of the spec in tests/cli/plot.sh (depth 2, 4; widths 3
and 8; relu and tanh; shortcut off and on; --per-seed). Every figure plot.py saves
is kept (Figure.savefig is wrapped) and inspected:
- legends: a dashed entry has no marker over it and a sample long enough to show
  two dash periods; the depth figures have both a solid and a dashed entry;
- titles: the spec's name and the seed count;
- per-layer panels: integer layer ticks only;
- first_layer_vs_depth: fonts of at least 9 pt, not a thin strip;
- identical curves (3 -> 8 -> 1: a shortcut never applies) are named in a note;
- a band whose q05 is 0 runs to the panel's bottom, with a note;
- a results.csv with extra columns and rows of no layer (loss) gives the same files;
- every median 0 or NaN: no layers PNG, and plot.py says why.
"""
import csv
import io
import os
import shutil
import sys
from contextlib import redirect_stderr, redirect_stdout

import matplotlib

matplotlib.use("Agg")
import matplotlib.figure  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib import rcParams  # noqa: E402
from matplotlib.collections import PolyCollection  # noqa: E402
from matplotlib.text import Text  # noqa: E402

src, results, work, spec_name, seeds = sys.argv[1:6]
sys.path.insert(0, os.path.join(src, "scripts"))
import plot  # noqa: E402

failures = []


def check(ok, what):
    if not ok:
        failures.append(what)


saved = {}
_savefig = matplotlib.figure.Figure.savefig


def keep(fig, path, *args, **kwargs):
    saved[os.path.basename(str(path))] = fig
    return _savefig(fig, path, *args, **kwargs)


matplotlib.figure.Figure.savefig = keep


def run(directory, out):
    """plot.main on a directory; (PNG names written, stderr text)."""
    saved.clear()
    err, so = io.StringIO(), io.StringIO()
    try:
        with redirect_stderr(err), redirect_stdout(so):
            rc = plot.main([directory, "--out", out])
        check(rc == 0, f"plot.py {directory}: exit {rc}")
    except Exception as e:  # noqa: BLE001 (a crash is one more failure to report)
        check(False, f"plot.py {directory}: {type(e).__name__}: {e}")
    return dict(saved), err.getvalue()


def texts(fig):
    return [t.get_text() for t in fig.findobj(Text)]


def visible_axes(fig):
    return [ax for ax in fig.axes if ax.get_visible()]


figs, err = run(results, os.path.join(work, "checks_out"))
want = {"layers_relu.png", "layers_tanh.png", "first_layer_vs_depth.png", "histograms.png",
        "theory_vs_data_relu.png", "theory_vs_data_tanh.png", "theory_ratio.png"}
check(want <= set(figs), f"figures written: {sorted(figs)}, want {sorted(want)}")

# Legends: what is drawn dashed must look dashed in the legend too.
for name, fig in figs.items():
    for leg in fig.legends + [ax.get_legend() for ax in fig.axes if ax.get_legend()]:
        length = leg.handlelength * leg.prop.get_size_in_points()
        for line in leg.get_lines():
            if line.get_linestyle() not in ("--", "dashed"):
                continue
            lw = line.get_linewidth()
            period = sum(rcParams["lines.dashed_pattern"]) * (lw if rcParams["lines.scale_dashes"] else 1)
            check(line.get_marker() in (None, "None", "", " "),
                  f"{name}: dashed legend entry '{line.get_label()}' has a marker over its dashes")
            check(length >= 2 * period, f"{name}: dashed legend sample {length:.1f} pt < 2 dash periods ({period:.1f} pt)")
for name in ("first_layer_vs_depth.png", "theory_ratio.png"):
    if name in figs:
        styles = {line.get_linestyle() for leg in figs[name].legends for line in leg.get_lines()}
        check({"-", "--"} <= styles, f"{name}: legend line styles {styles}, want solid and dashed")

# Titles: the spec's name and the seed count.
for name, fig in figs.items():
    title = fig._suptitle.get_text() if fig._suptitle else ""
    check(title.startswith(f"{spec_name} ({seeds} seeds): "), f"{name}: title '{title}'")

# Layer axes: integer ticks (depth-2 panels used to get 0.5 steps).
for name in ("layers_relu.png", "layers_tanh.png", "theory_vs_data_relu.png"):
    for ax in visible_axes(figs.get(name, matplotlib.figure.Figure())):
        lo, hi = ax.get_xlim()
        ticks = [t for t in ax.get_xticks() if lo <= t <= hi]
        check(all(float(t).is_integer() for t in ticks), f"{name}: {ax.get_title()}: layer ticks {ticks}")

# first_layer_vs_depth: readable fonts, not a thin strip.
if "first_layer_vs_depth.png" in figs:
    fig = figs["first_layer_vs_depth.png"]
    w, h = fig.get_size_inches()
    check(w / h <= 2.5, f"first_layer_vs_depth: {w:.1f} x {h:.1f} in")
    for ax in visible_axes(fig):
        sizes = [t.get_fontsize() for t in ax.get_xticklabels() + ax.get_yticklabels()]
        check(min(sizes) >= 9, f"first_layer_vs_depth: tick labels of {min(sizes)} pt")
        check(ax.title.get_fontsize() >= 10 and ax.xaxis.label.get_fontsize() >= 9, "first_layer_vs_depth: small titles")
    for leg in fig.legends:
        check(leg.prop.get_size_in_points() >= 9, "first_layer_vs_depth: small legend")

# Identical curves: in 3 -> 8 -> 1 (depth 2, width 8) no layer maps a width onto
# itself, so the shortcut never applies and plain = shortcut; in the other panels
# the curves differ.
for name in ("layers_relu.png", "layers_tanh.png"):
    for ax in visible_axes(figs[name]):
        notes = [t for t in texts(ax) if "identical" in t]
        if ax.get_title() == "depth=2  width=8":
            check(any("plain" in t and "shortcut" in t for t in notes), f"{name}: no note that the curves coincide")
        else:
            check(not notes, f"{name}: {ax.get_title()}: 'identical' note where curves differ: {notes}")


def edit_csv(src_dir, dst_dir, edit, columns=None):
    """Copies a results directory, passing results.csv's rows through edit(row) (None drops a row)."""
    os.makedirs(dst_dir, exist_ok=True)
    for f in ("results.json", "theory.csv", "per_seed.csv"):
        shutil.copy(os.path.join(src_dir, f), dst_dir)
    with open(os.path.join(src_dir, "results.csv"), newline="") as f:
        rows = list(csv.DictReader(f))
    names = columns or list(rows[0].keys())
    with open(os.path.join(dst_dir, "results.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=names, lineterminator="\n")
        w.writeheader()
        for r in rows:
            r = edit(dict(r))
            if r is not None:
                w.writerow(r)
    return rows


def cells_with(rows, **kv):
    return {r["cell"] for r in rows if all(r[k] == v for k, v in kv.items())}


# q05 = 0 for one cell (depth 4, width 8, relu, plain): its band runs to the bottom.
rows = edit_csv(results, os.path.join(work, "q05_zero"), lambda r: r)
target = cells_with(rows, depth="4", width="8", activation="relu", shortcut="false")
edit_csv(results, os.path.join(work, "q05_zero"),
         lambda r: dict(r, q05="0") if r["cell"] in target and r["layer"] in ("0", "1") else r)
figs, err = run(os.path.join(work, "q05_zero"), os.path.join(work, "q05_zero"))
ax = [a for a in visible_axes(figs["layers_relu.png"]) if a.get_title() == "depth=4  width=8"]
check(len(ax) == 1, "no depth=4 width=8 panel")
if ax:
    ax = ax[0]
    check(any("q05 = 0" in t for t in texts(ax)), f"q05 = 0: no note: {texts(ax)}")
    bottom = ax.get_ylim()[0]
    lows = [p.vertices[:, 1].min() for c in ax.collections if isinstance(c, PolyCollection) for p in c.get_paths()]
    check(any(np.isclose(v, bottom, rtol=1e-6) for v in lows), f"q05 = 0: no band reaches the bottom {bottom}: {lows}")

# Extra columns (as a later engine may write them) and a loss row with no layer.
extra = ["name", "precision", "rng", "leaky_slope", "sigma_w", "sigma_b"]


def add_columns(r):
    r.update(name=spec_name, precision="float32", rng="philox", leaky_slope="0.01", sigma_w="", sigma_b="")
    return r


rows = edit_csv(results, os.path.join(work, "extra"), add_columns, list(rows[0].keys()) + extra)
with open(os.path.join(work, "extra", "results.csv"), "a", newline="") as f:
    w = csv.writer(f, lineterminator="\n")
    header = list(rows[0].keys()) + extra
    for cell in sorted({r["cell"] for r in rows}, key=int):
        first = next(r for r in rows if r["cell"] == cell)
        loss = add_columns(dict(first, layer="", quantity="loss"))
        w.writerow([loss[k] for k in header])
figs_extra, err = run(os.path.join(work, "extra"), os.path.join(work, "extra"))
check(want <= set(figs_extra), f"extra columns and loss rows: wrote {sorted(figs_extra)}, want {sorted(want)}")

# Every median of tanh 0: no layers_tanh.png, and a line saying so.
tanh = cells_with(rows, activation="tanh")
edit_csv(results, os.path.join(work, "zeros"),
         lambda r: dict(r, median="0", q05="0", q95="0") if r["cell"] in tanh else r)
figs, err = run(os.path.join(work, "zeros"), os.path.join(work, "zeros"))
check("layers_tanh.png" not in figs and "layers_relu.png" in figs, f"all-zero medians: wrote {sorted(figs)}")
check("layers_tanh.png not written: every median of weight_grad_mean_abs is 0 or NaN" in err,
      f"all-zero medians: no message: {err!r}")

for f in failures:
    print("FAIL:", f, file=sys.stderr)
print(f"plot_checks: {len(failures)} failed")
sys.exit(1 if failures else 0)

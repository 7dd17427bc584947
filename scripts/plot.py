#!/usr/bin/env python3
"""Pictures of a gradsweep results directory.

usage: plot.py RESULTS_DIR [--out DIR] [--quantity Q] [--hist-cells 3,7,...]

Reads RESULTS_DIR/results.csv (and results.json, per_seed.csv when present) and
writes PNGs into RESULTS_DIR (or --out):

  layers[_<split>].png          per-layer gradient vs layer index: median over seeds with
                                the q05-q95 band, log scale; one panel per depth x width,
                                one line per shortcut setting; one file per value of any
                                further grid axis (e.g. activation)
  first_layer_vs_depth.png      the first layer's gradient vs depth, per width and shortcut
  histograms.png                the first layer's gradient over seeds for chosen cells
                                (needs per_seed.csv, i.e. `gradsweep run --per-seed`)
  theory_vs_data[_<split>].png  measured sqrt(E[weight_grad_rms^2]) beside the infinite-width
                                prediction, read from theory.csv (or results.json's per-cell
                                "theory"); plot.py never recomputes it
  theory_ratio.png              layer 0: measured / predicted E[weight_grad_rms^2] vs depth

Q defaults to weight_grad_mean_abs, the seeds notebooks' per-layer mean |dLoss/dW|.
Only the standard library, numpy and matplotlib (Agg) are used.
"""
import argparse
import csv
import json
import math
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

STAT_COLUMNS = {"cell", "layer", "quantity", "n", "mean", "std", "min", "q05", "median", "q95", "max",
                "geomean", "n_nonfinite", "n_zero"}
# Columns that name or restate a cell rather than place it on the grid.
NOT_AXES = {"name", "spec_hash", "layer_sizes"}
INIT_PARAMETERS = ("sigma_w", "sigma_b")
FLOAT_STATS = ["mean", "std", "min", "q05", "median", "q95", "max", "geomean"]


def number(text):
    """CSV cell -> float; empty, NaN and +-Infinity as written by the engine."""
    if text is None or text == "":
        return math.nan
    try:
        return float(text)
    except ValueError:
        return math.nan


def sort_key(value):
    """Numbers numerically, then booleans false before true, then text."""
    try:
        return (0, float(value), "")
    except ValueError:
        return (1, 0.0, value)


class Results:
    """results.csv in memory: cells' parameters and (cell, quantity) -> per-layer stats."""

    def __init__(self, directory):
        path = os.path.join(directory, "results.csv")
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            missing = {"cell", "layer", "quantity", "median", "q05", "q95"} - set(reader.fieldnames or [])
            if missing:
                sys.exit(f"plot.py: {path}: missing columns {sorted(missing)}")
            # sigma_w and sigma_b are the normal init's parameters: folded into "init".
            self.param_names = [c for c in reader.fieldnames if c not in STAT_COLUMNS | set(INIT_PARAMETERS)]
            self.params = {}  # cell -> {param: text}
            self.stats = {}   # (cell, quantity) -> {layer: {stat: float}}
            for row in reader:
                if row["layer"] == "":  # the cell's loss row (quantity "loss"): not a layer
                    continue
                cell = int(row["cell"])
                if cell not in self.params:
                    self.params[cell] = {p: row[p] for p in self.param_names}
                    if "init" in self.params[cell] and any(row.get(k) for k in INIT_PARAMETERS):
                        self.params[cell]["init"] += "(" + ",".join(f"{k}={row.get(k, '')}" for k in INIT_PARAMETERS) + ")"
                layers = self.stats.setdefault((cell, row["quantity"]), {})
                layers[int(row["layer"])] = {s: number(row.get(s)) for s in FLOAT_STATS + ["n", "n_zero", "n_nonfinite"]}
        self.cells = sorted(self.params)
        self.axes = self._axes()
        # cell -> [E[weight_grad_rms^2] per layer], as the engine wrote it (never recomputed here):
        # theory.csv (cell,layer,quantity,value; value = sqrt(E[q^2])) or results.json's cell "theory".
        self.theory = {}
        self.theory_source = None
        theory_csv = os.path.join(directory, "theory.csv")
        json_path = os.path.join(directory, "results.json")
        if os.path.exists(theory_csv):
            self._read_theory_csv(theory_csv)
        elif os.path.exists(json_path):
            with open(json_path) as f:
                self._read_theory_json(json.load(f))

    def _axes(self):
        axes = {}
        for p in self.param_names:
            values = sorted({self.params[c][p] for c in self.cells}, key=sort_key)
            if len(values) > 1:
                axes[p] = values
        # layer_sizes restates depth and width; it is an axis only when nothing else is.
        if "layer_sizes" in axes and ("depth" in axes or "width" in axes):
            del axes["layer_sizes"]
        for p in NOT_AXES - {"layer_sizes"}:
            axes.pop(p, None)
        return axes

    def _read_theory_csv(self, path):
        per_cell = {}
        with open(path, newline="") as f:
            for row in csv.DictReader(f):
                if row["quantity"] == "weight_grad_rms":
                    per_cell.setdefault(int(row["cell"]), {})[int(row["layer"])] = number(row["value"]) ** 2
        for c, layers in per_cell.items():
            values = [layers.get(l, math.nan) for l in range(max(layers) + 1)]
            if any(math.isfinite(v) for v in values):
                self.theory[c] = values
        self.theory_source = path

    def _read_theory_json(self, doc):
        for c in doc.get("cells", []):
            t = c.get("theory")
            if not isinstance(t, dict):
                continue  # null: the prediction does not cover this cell (see its "theory_reason")
            values = [math.nan if v is None else float(v) ** 2 for v in t.get("weight_grad_rms", [])]
            if values and any(math.isfinite(v) for v in values):
                self.theory[int(c["cell"])] = values
        self.theory_source = "results.json"

    def layer_stat(self, cell, quantity, stat):
        layers = self.stats.get((cell, quantity), {})
        return np.array([layers[l][stat] for l in sorted(layers)], dtype=float)

    def cells_where(self, **fixed):
        return [c for c in self.cells if all(self.params[c].get(k) == v for k, v in fixed.items())]


def layout(res):
    """(row axis, column axis, split axes): depth x width panels, other axes split files."""
    free = [a for a in res.axes if a != "shortcut"]
    preferred = [a for a in ("depth", "width") if a in free] + [a for a in free if a not in ("depth", "width")]
    row = preferred[0] if preferred else None
    col = preferred[1] if len(preferred) > 1 else None
    splits = preferred[2:]
    return row, col, splits


def split_combinations(res, splits):
    combos = [{}]
    for a in splits:
        combos = [dict(c, **{a: v}) for c in combos for v in res.axes[a]]
    return combos


def split_suffix(combo):
    return "".join("_" + "".join(ch if ch.isalnum() or ch in ".-" else "-" for ch in str(v)) for v in combo.values())


def split_title(combo):
    return ", ".join(f"{k}={v}" for k, v in combo.items())


def shortcut_lines(res):
    """(label, value, style) per shortcut setting present."""
    values = res.axes.get("shortcut") or sorted({res.params[c].get("shortcut", "") for c in res.cells})
    styles = {"true": ("shortcut", "tab:blue"), "false": ("plain", "tab:red")}
    return [(styles.get(v, (f"shortcut={v}", "tab:gray"))[0], v, styles.get(v, ("", "tab:gray"))[1]) for v in values]


def positive(a):
    a = np.array(a, dtype=float)
    a[~(a > 0)] = np.nan  # log axes: zeros (dead networks) and NaN leave gaps
    return a


def panel_grid(res, row, col):
    rows = res.axes[row] if row else [None]
    cols = res.axes[col] if col else [None]
    fig, axs = plt.subplots(len(rows), len(cols), figsize=(max(6.5, 3.1 * len(cols) + 0.6), 2.3 * len(rows) + 0.9),
                            squeeze=False)
    return fig, axs, rows, cols


def panel_label(row, rv, col, cv):
    return "  ".join(f"{k}={v}" for k, v in ((row, rv), (col, cv)) if k)


def fixed_for(row, rv, col, cv, combo):
    fixed = dict(combo)
    if row:
        fixed[row] = rv
    if col:
        fixed[col] = cv
    return fixed


def plot_layers(res, quantity, out_dir):
    row, col, splits = layout(res)
    written = []
    for combo in split_combinations(res, splits):
        fig, axs, rows, cols = panel_grid(res, row, col)
        any_data = False
        for i, rv in enumerate(rows):
            for j, cv in enumerate(cols):
                ax = axs[i][j]
                fixed = fixed_for(row, rv, col, cv, combo)
                for label, sv, color in shortcut_lines(res):
                    cells = res.cells_where(**dict(fixed, shortcut=sv)) if "shortcut" in res.param_names else res.cells_where(**fixed)
                    for c in cells[:1]:
                        med = positive(res.layer_stat(c, quantity, "median"))
                        if med.size == 0:
                            continue
                        x = np.arange(med.size)
                        lo, hi = positive(res.layer_stat(c, quantity, "q05")), positive(res.layer_stat(c, quantity, "q95"))
                        ax.fill_between(x, lo, hi, color=color, alpha=0.18, linewidth=0)
                        ax.plot(x, med, color=color, marker="o" if med.size <= 16 else None, markersize=3, label=label)
                        zeros = res.layer_stat(c, quantity, "n_zero")
                        n = res.layer_stat(c, quantity, "n") + res.layer_stat(c, quantity, "n_nonfinite")
                        if np.any(zeros > 0.5 * n):
                            ax.text(0.02, 0.02 if sv != "true" else 0.12, f"{label}: >50% exact zeros",
                                    transform=ax.transAxes, fontsize=7, color=color)
                        any_data = any_data or bool(np.any(np.isfinite(med)))
                if not ax.get_lines():
                    ax.set_visible(False)  # no cell at this grid point (e.g. layer_sizes axes)
                    continue
                ax.set_yscale("log")
                ax.set_title(panel_label(row, rv, col, cv), fontsize=9)
                ax.tick_params(labelsize=7)
                if i == len(rows) - 1:
                    ax.set_xlabel("layer (0 = input side)", fontsize=8)
                if j == 0:
                    ax.set_ylabel(quantity, fontsize=8)
        if not any_data:
            plt.close(fig)
            continue
        handles, labels = axs[0][0].get_legend_handles_labels()
        for a in axs.flat:
            if len(handles) < len(shortcut_lines(res)):
                handles, labels = a.get_legend_handles_labels()
        fig.legend(handles, labels, loc="lower center", ncol=4, fontsize=8, frameon=False)
        title = f"{quantity} per layer: median over seeds, band q05-q95"
        if combo:
            title += f"  ({split_title(combo)})"
        fig.suptitle(title, fontsize=10, wrap=True)
        height = fig.get_size_inches()[1]
        fig.tight_layout(rect=(0, 0.35 / height, 1, 1 - 0.45 / height))
        path = os.path.join(out_dir, f"layers{split_suffix(combo)}.png")
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(path)
    return written


def depth_panels(n_panels):
    """Figure with up to 4 panels per row and room for a legend underneath."""
    ncols = min(4, n_panels)
    nrows = (n_panels + ncols - 1) // ncols
    fig, axs = plt.subplots(nrows, ncols, figsize=(3.5 * ncols + 0.4, 3.0 * nrows + 0.9), squeeze=False)
    for k in range(n_panels, nrows * ncols):
        axs.flat[k].set_visible(False)
    return fig, list(axs.flat)[:n_panels]


def by_width_and_shortcut(res, combo):
    """(name, color, style, cells sorted by depth) for each width x shortcut line of a panel."""
    widths = res.axes.get("width", [None])
    cmap = plt.get_cmap("viridis")
    lines = []
    for wi, w in enumerate(widths):
        color = cmap(wi / max(1, len(widths) - 1) * 0.9)
        for label, sv, _ in shortcut_lines(res):
            fixed = dict(combo)
            if w is not None:
                fixed["width"] = w
            if "shortcut" in res.param_names:
                fixed["shortcut"] = sv
            cells = sorted(res.cells_where(**fixed), key=lambda c: float(res.params[c]["depth"]))
            if cells:
                name = (f"width {w} " if w is not None else "") + label
                lines.append((name, color, "-" if sv == "true" else "--", cells))
    return lines


def finish_depth_figure(fig, axs, title, path):
    handles, labels = axs[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 6), fontsize=7, frameon=False)
    fig.suptitle(title, fontsize=10, wrap=True)
    height = fig.get_size_inches()[1]
    legend_rows = (len(labels) + 5) // 6
    fig.tight_layout(rect=(0, (0.2 + 0.17 * legend_rows) / height, 1, 1 - 0.35 / height))
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_first_layer_vs_depth(res, quantity, out_dir):
    if "depth" not in res.axes:
        return []
    combos = split_combinations(res, [a for a in res.axes if a not in ("depth", "width", "shortcut")])
    fig, axs = depth_panels(len(combos))
    for ax, combo in zip(axs, combos):
        for name, color, style, cells in by_width_and_shortcut(res, combo):
            depth = np.array([float(res.params[c]["depth"]) for c in cells])
            stat = lambda s: positive([res.stats[(c, quantity)][0][s] for c in cells])  # noqa: E731
            ax.plot(depth, stat("median"), style, color=color, marker="o", markersize=3, label=name)
            ax.fill_between(depth, stat("q05"), stat("q95"), color=color, alpha=0.07, linewidth=0)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("depth", fontsize=8)
        ax.set_ylabel(f"first layer {quantity}", fontsize=8)
        ax.set_title(split_title(combo) or "all cells", fontsize=9)
        ax.tick_params(labelsize=7)
    path = os.path.join(out_dir, "first_layer_vs_depth.png")
    finish_depth_figure(fig, axs, f"First layer's {quantity} vs depth: median over seeds, q05-q95 band; "
                                  "solid = shortcut, dashed = plain", path)
    return [path]


def plot_theory_ratio(res, out_dir):
    """Layer 0: measured E[weight_grad_rms^2] / prediction, vs depth. 1 = the limit holds."""
    if not res.theory or "depth" not in res.axes:
        return []
    combos = split_combinations(res, [a for a in res.axes if a not in ("depth", "width", "shortcut")])
    fig, axs = depth_panels(len(combos))
    for ax, combo in zip(axs, combos):
        for name, color, style, cells in by_width_and_shortcut(res, combo):
            cells = [c for c in cells if c in res.theory]
            depth = np.array([float(res.params[c]["depth"]) for c in cells])
            ratio = positive([measured_rms2(res, c)[0] / res.theory[c][0] for c in cells])
            ax.plot(depth, ratio, style, color=color, marker="o", markersize=3, label=name)
        ax.axhline(1.0, color="black", linewidth=0.8)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("depth", fontsize=8)
        ax.set_ylabel("layer 0: measured / predicted", fontsize=8)
        ax.set_title(split_title(combo) or "all cells", fontsize=9)
        ax.tick_params(labelsize=7)
    path = os.path.join(out_dir, "theory_ratio.png")
    finish_depth_figure(fig, axs, "First layer: mean over seeds of weight_grad_rms^2 / infinite-width prediction; "
                                  "solid = shortcut, dashed = plain", path)
    return [path]


def default_hist_cells(res):
    """The widest cells at a middle depth: one per value of the other axes and shortcut."""
    fixed = {}
    if "depth" in res.axes:
        depths = sorted(res.axes["depth"], key=sort_key)
        fixed["depth"] = depths[len(depths) // 2]
    if "width" in res.axes:
        widths = {res.params[c]["width"] for c in res.cells_where(**fixed)}
        if widths:
            fixed["width"] = max(widths, key=sort_key)
    return (res.cells_where(**fixed) or res.cells)[:12]


def read_per_seed(path, cells, quantity, layer=0):
    """Values of one quantity and layer per cell from per_seed.csv (cell,seed,layer,quantity,value).
    Its fields never hold commas or quotes, so lines are split directly: a 1 GB file takes ~1 minute."""
    wanted = {str(c) for c in cells}
    values = {c: [] for c in cells}
    layer = str(layer)
    with open(path) as f:
        header = f.readline().rstrip("\n").split(",")
        ic, il, iq, iv = (header.index(k) for k in ("cell", "layer", "quantity", "value"))
        for line in f:
            row = line.rstrip("\n").split(",")
            if row[ic] in wanted and row[il] == layer and row[iq] == quantity:
                values[int(row[ic])].append(number(row[iv]))
    return {c: np.array(v, dtype=float) for c, v in values.items()}


def plot_histograms(res, quantity, out_dir, directory, cells):
    path = os.path.join(directory, "per_seed.csv")
    if not os.path.exists(path):
        print("plot.py: no per_seed.csv (run gradsweep with --per-seed): no histograms", file=sys.stderr)
        return []
    cells = [c for c in (cells or default_hist_cells(res)) if c in res.params]
    if not cells:
        print("plot.py: no such cells for histograms", file=sys.stderr)
        return []
    data = read_per_seed(path, cells, quantity)
    # Columns: the cell without its shortcut setting; rows: the shortcut settings.
    groups, settings = {}, []
    for c in cells:
        key = tuple((a, res.params[c][a]) for a in res.axes if a != "shortcut")
        sv = res.params[c].get("shortcut", "")
        groups.setdefault(key, {})[sv] = c
        if sv not in settings:
            settings.append(sv)
    settings.sort(key=sort_key)
    fig, axs = plt.subplots(len(settings), len(groups), figsize=(3.2 * len(groups) + 0.4, 2.4 * len(settings) + 0.9),
                            squeeze=False)
    styles = {"true": ("shortcut", "tab:blue"), "false": ("plain", "tab:red")}
    for j, (key, members) in enumerate(groups.items()):
        for i, sv in enumerate(settings):
            ax = axs[i][j]
            label, color = styles.get(sv, (f"shortcut={sv}" if sv else "", "tab:gray"))
            title = " ".join(str(v) if a == "activation" else f"{a}={v}" for a, v in key)
            ax.set_title(f"{title} {label}".strip(), fontsize=9)
            ax.tick_params(labelsize=7)
            if sv not in members:
                ax.set_visible(False)
                continue
            v = data[members[sv]]
            pos = v[(v > 0) & np.isfinite(v)]
            if pos.size:
                logs = np.log10(pos)
                ax.hist(logs, bins=30, color=color, alpha=0.7)
                ax.axvline(np.median(logs), color="black", linewidth=0.8)
            zeros, bad = int(np.sum(v == 0)), int(np.sum(~np.isfinite(v)))
            note = f"cell {members[sv]}, n={v.size}"
            if zeros or bad:
                note += f"\n{zeros} zero, {bad} non-finite"
            ax.text(0.02, 0.97, note, transform=ax.transAxes, va="top", fontsize=7)
            if i == len(settings) - 1:
                ax.set_xlabel(f"log10 first-layer {quantity}", fontsize=8)
    fig.suptitle(f"First layer's {quantity} over seeds (black line: median)", fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.94))
    out = os.path.join(out_dir, "histograms.png")
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return [out]


def measured_rms2(res, c):
    """Mean over seeds of weight_grad_rms^2, from its mean and (ddof=1) std."""
    mean = res.layer_stat(c, "weight_grad_rms", "mean")
    std = res.layer_stat(c, "weight_grad_rms", "std")
    n = res.layer_stat(c, "weight_grad_rms", "n")
    return mean ** 2 + std ** 2 * np.where(n > 1, (n - 1) / np.maximum(n, 1), 0.0)


def plot_theory(res, out_dir):
    if not res.theory:
        print("plot.py: no theory.csv and no per-cell theory in results.json: no theory_vs_data plot", file=sys.stderr)
        return []
    row, col, splits = layout(res)
    written = []
    for combo in split_combinations(res, splits):
        fig, axs, rows, cols = panel_grid(res, row, col)
        drawn = False
        for i, rv in enumerate(rows):
            for j, cv in enumerate(cols):
                ax = axs[i][j]
                fixed = fixed_for(row, rv, col, cv, combo)
                for label, sv, color in shortcut_lines(res):
                    cells = res.cells_where(**dict(fixed, shortcut=sv)) if "shortcut" in res.param_names else res.cells_where(**fixed)
                    for c in cells[:1]:
                        data = positive(np.sqrt(measured_rms2(res, c)))
                        x = np.arange(data.size)
                        ax.plot(x, data, color=color, marker="o" if data.size <= 16 else None, markersize=3,
                                label=f"{label}: measured")
                        if c in res.theory:
                            th = positive(np.sqrt(np.array(res.theory[c], dtype=float)))
                            ax.plot(np.arange(th.size), th, "--", color="black" if sv == "true" else "dimgray",
                                    linewidth=1, zorder=3, label=f"{label}: infinite width")
                            drawn = True
                if not ax.get_lines():
                    ax.set_visible(False)
                    continue
                ax.set_yscale("log")
                ax.set_title(panel_label(row, rv, col, cv), fontsize=9)
                ax.tick_params(labelsize=7)
                if i == len(rows) - 1:
                    ax.set_xlabel("layer", fontsize=8)
                if j == 0:
                    ax.set_ylabel("sqrt(E[rms^2])", fontsize=8)
        if not drawn:
            plt.close(fig)
            continue
        handles, labels = [], []
        for a in axs.flat:
            h, l = a.get_legend_handles_labels()
            if len(h) > len(handles):
                handles, labels = h, l
        fig.legend(handles, labels, loc="lower center", ncol=4, fontsize=8, frameon=False)
        title = "sqrt(mean over seeds of weight_grad_rms^2): measured vs infinite width (docs/theory.md)"
        if combo:
            title += f"  ({split_title(combo)})"
        fig.suptitle(title, fontsize=10, wrap=True)
        height = fig.get_size_inches()[1]
        fig.tight_layout(rect=(0, 0.35 / height, 1, 1 - 0.45 / height))
        path = os.path.join(out_dir, f"theory_vs_data{split_suffix(combo)}.png")
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(path)
    return written


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("results_dir")
    p.add_argument("--out", help="where to write the PNGs (default: RESULTS_DIR)")
    p.add_argument("--quantity", default="weight_grad_mean_abs")
    p.add_argument("--hist-cells", help="comma-separated cell indices for histograms.png")
    a = p.parse_args(argv)
    out_dir = a.out or a.results_dir
    os.makedirs(out_dir, exist_ok=True)
    res = Results(a.results_dir)
    if not any(q == a.quantity for (_, q) in res.stats):
        sys.exit(f"plot.py: no quantity {a.quantity!r} in results.csv")
    hist_cells = [int(x) for x in a.hist_cells.split(",")] if a.hist_cells else None
    written = []
    written += plot_layers(res, a.quantity, out_dir)
    written += plot_first_layer_vs_depth(res, a.quantity, out_dir)
    written += plot_histograms(res, a.quantity, out_dir, a.results_dir, hist_cells)
    written += plot_theory(res, out_dir)
    written += plot_theory_ratio(res, out_dir)
    for w in written:
        print(w)
    return 0


if __name__ == "__main__":
    sys.exit(main())

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
Titles name the spec and its seed count. Nothing is hidden silently: curves drawn
exactly over each other are named in a note, a band whose q05 is 0 runs to the
panel's bottom (with a note), a panel with no positive value says so, and a file
that would show nothing at all (every median 0 or NaN) is not written, with a line
on stderr saying why. Columns of results.csv other than the statistics are read as
cell parameters (constant ones and ones that only restate others are ignored), and
rows with no layer (e.g. the loss) are kept out of the per-layer plots.
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
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.ticker import FixedLocator, FormatStrFormatter, MaxNLocator, NullLocator  # noqa: E402
import numpy as np  # noqa: E402

STAT_COLUMNS = {"cell", "layer", "quantity", "n", "mean", "std", "min", "q05", "median", "q95", "max",
                "geomean", "n_nonfinite", "n_zero"}
# Columns that name a run rather than place a cell on the grid.
NOT_AXES = {"name", "spec", "spec_name", "spec_hash", "layer_sizes"}
# The normal init's parameters: folded into "init".
INIT_PARAMETERS = ("sigma_w", "sigma_b")
# Columns that restate others (dropped first when the other axes tell their value).
DERIVED_LAST = ["layer_sizes", "init_kind", "input_dim", "output_dim"]
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
            self.cell_stats = {}  # (cell, quantity) -> {stat: float} for rows of no layer (e.g. loss)
            for row in reader:
                cell = int(row["cell"])
                if cell not in self.params:
                    self.params[cell] = {p: row[p] for p in self.param_names}
                    if "init" in self.params[cell] and any(row.get(k) for k in INIT_PARAMETERS):
                        self.params[cell]["init"] += "(" + ",".join(f"{k}={row.get(k, '')}" for k in INIT_PARAMETERS) + ")"
                values = {s: number(row.get(s)) for s in FLOAT_STATS + ["n", "n_zero", "n_nonfinite"]}
                layer = (row.get("layer") or "").strip()
                if not layer.lstrip("-").isdigit():
                    self.cell_stats[(cell, row["quantity"])] = values  # a per-network quantity (the loss), not per layer
                    continue
                self.stats.setdefault((cell, row["quantity"]), {})[int(layer)] = values
        self.cells = sorted(self.params)
        self.axes = self._axes()
        self.name, self.seeds = self._name_and_seeds(directory)
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
        """Columns that vary between cells, less those that only restate others: layer_sizes
        restates depth and width, sigma_w an init label, and so on. A column is dropped when
        the remaining axes already tell its value (least preferred first), so any columns
        the engine adds, constant or derived, never split the plots further."""
        axes = {}
        for p in self.param_names:
            if p in NOT_AXES - {"layer_sizes"}:
                continue
            values = sorted({self.params[c][p] for c in self.cells}, key=sort_key)
            if len(values) > 1:
                axes[p] = values
        preferred = [a for a in ("depth", "width", "shortcut", "activation") if a in axes]
        order = preferred + [a for a in axes if a not in preferred and a not in DERIVED_LAST] + \
            [a for a in DERIVED_LAST if a in axes]
        kept = list(order)
        for a in reversed(order):
            others = [b for b in kept if b != a]
            seen = {}
            if others and all(seen.setdefault(tuple(self.params[c][b] for b in others), self.params[c][a])
                              == self.params[c][a] for c in self.cells):
                kept.remove(a)
        return {a: axes[a] for a in order if a in kept}

    def _name_and_seeds(self, directory):
        """The spec's name and the seeds per cell, for titles: results.json, else the CSV."""
        name, seeds = None, None
        try:
            with open(os.path.join(directory, "results.json")) as f:
                doc = json.load(f)
            spec = doc.get("spec") if isinstance(doc.get("spec"), dict) else {}
            name = spec.get("name")
            seeds = (doc.get("seeds") or {}).get("count") or (spec.get("seeds") or {}).get("count")
        except (OSError, ValueError, AttributeError):
            pass
        first = self.params[self.cells[0]] if self.cells else {}
        for column in ("name", "spec", "spec_name"):
            if name is None and first.get(column):
                name = first[column]
        for column in ("seed_count", "seeds", "seeds_count"):
            if seeds is None and first.get(column, "").isdigit():
                seeds = int(first[column])
        if seeds is None:  # every network of a cell has a row value, finite or not
            counts = [v["n"] + v["n_nonfinite"] for layers in self.stats.values() for v in layers.values()]
            seeds = int(max(counts)) if counts and all(math.isfinite(c) for c in counts) else None
        return name or "sweep", seeds

    def title(self, what):
        """`what`, after the spec's name and the seed count."""
        seeds = f" ({self.seeds} seeds)" if self.seeds else ""
        return f"{self.name}{seeds}: {what}"

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


# Legend samples long enough to show a dashed line as dashed, with no marker over it.
LEGEND = dict(handlelength=4.0, frameon=False)


class Panel:
    """One log-scale axes: curves and their q05-q95 bands, drawn so that nothing is lost
    silently. Identical curves (one hides the other) get a note; a band whose q05 is 0
    (no lower end on a log axis) runs to the panel's bottom, with a note; so do notes
    given by the caller (e.g. exact zeros)."""

    def __init__(self, ax):
        self.ax = ax
        self.curves = []  # (label, x, y) as given
        self.bands = []   # (x, lo, hi, kwargs)
        self.notes = []

    def curve(self, x, y, label, **kw):
        x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
        self.ax.plot(x, positive(y), label=label, **kw)
        self.curves.append((label, x, y))

    def band(self, x, lo, hi, **kw):
        self.bands.append((np.asarray(x, dtype=float), np.asarray(lo, dtype=float), np.asarray(hi, dtype=float), kw))

    def note(self, text):
        if text not in self.notes:
            self.notes.append(text)

    def has_data(self):
        return any(np.any(positive(y) > 0) for _, _, y in self.curves)

    def finish(self, fontsize=7, empty="no positive value: every one is 0 or NaN"):
        """Log scale, bands and notes; a panel with nothing positive says so instead."""
        ax = self.ax
        if not self.has_data():
            ax.text(0.5, 0.5, empty, transform=ax.transAxes, ha="center", va="center", fontsize=fontsize + 1, wrap=True)
            ax.set_yticks([])
            return
        ax.set_yscale("log")
        shown = [y for _, _, y in self.curves] + [b[1] for b in self.bands] + [b[2] for b in self.bands]
        finite = np.concatenate([positive(v)[np.isfinite(positive(v))] for v in shown] or [np.array([])])
        floor = None
        for x, lo, hi, kw in self.bands:
            up = positive(hi)
            down = positive(lo)
            open_end = ~(lo > 0) & (up > 0)  # q05 is 0 (or less): the band has no bottom on a log axis
            if np.any(open_end) and finite.size:
                floor = finite.min() / 4 if floor is None else floor
                down = np.where(open_end, floor, down)
                self.note("q05 = 0: band runs to the bottom")
            ax.fill_between(x, down, up, linewidth=0, **kw)
        if floor is not None:
            ax.set_ylim(bottom=floor)
        # Curves drawn over each other: say which, since only the last one shows.
        groups = []
        for label, x, y in self.curves:
            if not np.any(np.isfinite(positive(y))):
                continue
            for g in groups:
                if g[1].shape == x.shape and np.array_equal(g[1], x) and np.array_equal(g[2], y, equal_nan=True):
                    g[0].append(label)
                    break
            else:
                groups.append(([label], x, y))
        for labels, _, _ in groups:
            if len(labels) > 1:
                self.note(" = ".join(labels) + "\n(identical: drawn over each other)")
        if self.notes:
            t = ax.text(0.02, 0.02, "\n".join(self.notes), transform=ax.transAxes, fontsize=fontsize, va="bottom",
                        bbox=dict(facecolor="white", alpha=0.7, linewidth=0, pad=1.5), clip_on=True)
            t.set_in_layout(False)  # a long note must not shrink the panel


def integer_ticks(ax):
    """Layer indices are integers: no 0.5 ticks on a depth-2 panel."""
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def panel_grid(res, row, col):
    rows = res.axes[row] if row else [None]
    cols = res.axes[col] if col else [None]
    fig, axs = plt.subplots(len(rows), len(cols), figsize=(max(6.5, 3.1 * len(cols) + 0.6), 2.3 * len(rows) + 1.1),
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


def legend_below(fig, handles, labels, fontsize):
    """The legend under the panels, in as many rows as its labels need to fit the
    figure; returns the height (inches) it takes."""
    width_in = fig.get_size_inches()[0]
    per_entry = [(len(label) * 0.55 + LEGEND["handlelength"] + 2.5) * fontsize / 72 for label in labels]
    ncol = max(1, min(len(labels), int(width_in / max(per_entry or [1]))))
    fig.legend(handles, labels, loc="lower center", ncol=ncol, fontsize=fontsize, **LEGEND)
    rows = (len(labels) + ncol - 1) // ncol
    return 0.15 + rows * fontsize * 1.6 / 72


def nothing_to_plot(path, quantity, cells):
    print(f"plot.py: {os.path.basename(path)} not written: every median of {quantity} is 0 or NaN in its "
          f"{len(cells)} cell{'s' if len(cells) != 1 else ''} (vanished or non-finite gradients; see results.csv)",
          file=sys.stderr)


def plot_layers(res, quantity, out_dir):
    row, col, splits = layout(res)
    written = []
    for combo in split_combinations(res, splits):
        path = os.path.join(out_dir, f"layers{split_suffix(combo)}.png")
        fig, axs, rows, cols = panel_grid(res, row, col)
        combo_cells, any_data = [], False
        for i, rv in enumerate(rows):
            for j, cv in enumerate(cols):
                ax = axs[i][j]
                panel = Panel(ax)
                fixed = fixed_for(row, rv, col, cv, combo)
                for label, sv, color in shortcut_lines(res):
                    cells = res.cells_where(**dict(fixed, shortcut=sv)) if "shortcut" in res.param_names else res.cells_where(**fixed)
                    for c in cells[:1]:
                        med = res.layer_stat(c, quantity, "median")
                        if med.size == 0:
                            continue
                        combo_cells.append(c)
                        x = np.arange(med.size)
                        panel.band(x, res.layer_stat(c, quantity, "q05"), res.layer_stat(c, quantity, "q95"),
                                   color=color, alpha=0.18)
                        panel.curve(x, med, label, color=color, marker="o" if med.size <= 16 else None, markersize=3)
                        zeros = res.layer_stat(c, quantity, "n_zero")
                        n = res.layer_stat(c, quantity, "n") + res.layer_stat(c, quantity, "n_nonfinite")
                        if np.any(zeros > 0.5 * n):
                            panel.note(f"{label}: >50% exact zeros")
                if not panel.curves:
                    ax.set_visible(False)  # no cell at this grid point (e.g. layer_sizes axes)
                    continue
                any_data = any_data or panel.has_data()
                panel.finish(empty="every median 0 or NaN")
                integer_ticks(ax)
                ax.set_title(panel_label(row, rv, col, cv), fontsize=9)
                ax.tick_params(labelsize=7)
                if i == len(rows) - 1:
                    ax.set_xlabel("layer (0 = input side)", fontsize=8)
                if j == 0:
                    ax.set_ylabel(quantity, fontsize=8)
        if not any_data:
            plt.close(fig)
            if combo_cells:
                nothing_to_plot(path, quantity, combo_cells)
            continue
        handles, labels = axs[0][0].get_legend_handles_labels()
        for a in axs.flat:
            if len(handles) < len(shortcut_lines(res)):
                handles, labels = a.get_legend_handles_labels()
        below = legend_below(fig, handles, labels, 8)
        title = f"{quantity} per layer: median over seeds, band q05-q95"
        if combo:
            title += f"  ({split_title(combo)})"
        fig.suptitle(res.title(title), fontsize=10, wrap=True)
        height = fig.get_size_inches()[1]
        fig.tight_layout(rect=(0, below / height, 1, 1))  # (tight_layout leaves room for the suptitle)
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(path)
    return written


def depth_panels(n_panels):
    """Up to 2 panels per row, large enough for readable fonts, room for a legend below."""
    ncols = min(2, n_panels)
    nrows = (n_panels + ncols - 1) // ncols
    fig, axs = plt.subplots(nrows, ncols, figsize=(5.4 * ncols + 0.4, 3.9 * nrows + 1.6), squeeze=False)
    for k in range(n_panels, nrows * ncols):
        axs.flat[k].set_visible(False)
    return fig, list(axs.flat)[:n_panels]


def by_width_and_shortcut(res, combo):
    """(width label, shortcut label, color, style, cells sorted by depth) per line of a panel."""
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
                lines.append((f"width {w}" if w is not None else None, label, color, "-" if sv == "true" else "--", cells))
    return lines


def depth_legend(lines):
    """One entry per width (its colour) and one per shortcut setting (its line style):
    fewer entries than width x shortcut, and the dashes are shown long enough to see."""
    handles, labels = [], []
    for wname, _, color, _, _ in lines:
        if wname is not None and wname not in labels:
            handles.append(Line2D([], [], color=color, linewidth=2.5))
            labels.append(wname)
    for _, sname, _, style, _ in lines:
        if sname not in labels:
            handles.append(Line2D([], [], color="black", linestyle=style, linewidth=1.5))
            labels.append(sname)
    return handles, labels


def finish_depth_figure(fig, axs, lines, title, path):
    handles, labels = depth_legend(lines)
    below = legend_below(fig, handles, labels, 10)
    fig.suptitle(title, fontsize=12, wrap=True)
    height = fig.get_size_inches()[1]
    fig.tight_layout(rect=(0, below / height, 1, 1))
    fig.savefig(path, dpi=100)
    plt.close(fig)


def depth_axes(ax, ylabel, title, depths):
    ax.set_xscale("log", base=2)
    ax.xaxis.set_major_locator(FixedLocator(depths))  # the depths run, written as numbers
    ax.xaxis.set_major_formatter(FormatStrFormatter("%g"))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xlabel("depth", fontsize=10)
    ax.set_ylabel(ylabel, fontsize=10)
    ax.set_title(title, fontsize=11)
    ax.tick_params(labelsize=9)


def depths_of(res):
    return sorted({float(res.params[c]["depth"]) for c in res.cells})


def plot_first_layer_vs_depth(res, quantity, out_dir):
    if "depth" not in res.axes:
        return []
    path = os.path.join(out_dir, "first_layer_vs_depth.png")
    combos = split_combinations(res, [a for a in res.axes if a not in ("depth", "width", "shortcut")])
    fig, axs = depth_panels(len(combos))
    all_lines, cells_seen, any_data = [], [], False
    for ax, combo in zip(axs, combos):
        panel = Panel(ax)
        for line in by_width_and_shortcut(res, combo):
            wname, sname, color, style, cells = line
            cells = [c for c in cells if (c, quantity) in res.stats and 0 in res.stats[(c, quantity)]]
            if not cells:
                continue
            all_lines.append(line)
            cells_seen += cells
            depth = np.array([float(res.params[c]["depth"]) for c in cells])
            stat = lambda s: np.array([res.stats[(c, quantity)][0][s] for c in cells])  # noqa: E731
            name = " ".join(t for t in (wname, sname) if t)
            panel.curve(depth, stat("median"), name, linestyle=style, color=color, marker="o", markersize=3.5)
            panel.band(depth, stat("q05"), stat("q95"), color=color, alpha=0.07)
        any_data = any_data or panel.has_data()
        depth_axes(ax, f"first layer {quantity}", split_title(combo) or "all cells", depths_of(res))
        panel.finish(fontsize=8, empty="every median 0 or NaN")
    if not any_data:
        plt.close(fig)
        nothing_to_plot(path, quantity, cells_seen)
        return []
    finish_depth_figure(fig, axs, all_lines, res.title(f"first layer's {quantity} vs depth: median over seeds, "
                                                       "q05-q95 band"), path)
    return [path]


def plot_theory_ratio(res, out_dir):
    """Layer 0: measured E[weight_grad_rms^2] / prediction, vs depth. 1 = the limit holds."""
    if not res.theory or "depth" not in res.axes:
        return []
    combos = split_combinations(res, [a for a in res.axes if a not in ("depth", "width", "shortcut")])
    fig, axs = depth_panels(len(combos))
    all_lines = []
    for ax, combo in zip(axs, combos):
        panel = Panel(ax)
        for line in by_width_and_shortcut(res, combo):
            wname, sname, color, style, cells = line
            cells = [c for c in cells if c in res.theory]
            if not cells:
                continue
            all_lines.append(line)
            depth = np.array([float(res.params[c]["depth"]) for c in cells])
            ratio = np.array([measured_rms2(res, c)[0] / res.theory[c][0] for c in cells])
            name = " ".join(t for t in (wname, sname) if t)
            panel.curve(depth, ratio, name, linestyle=style, color=color, marker="o", markersize=3.5)
        ax.axhline(1.0, color="black", linewidth=0.8)
        depth_axes(ax, "layer 0: measured / predicted", split_title(combo) or "all cells", depths_of(res))
        panel.finish(fontsize=8)
    path = os.path.join(out_dir, "theory_ratio.png")
    finish_depth_figure(fig, axs, all_lines, res.title("first layer: mean over seeds of weight_grad_rms^2 / "
                                                       "infinite-width prediction"), path)
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
    fig.suptitle(res.title(f"first layer's {quantity} over seeds (black line: median)"), fontsize=10)
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
                panel = Panel(ax)
                fixed = fixed_for(row, rv, col, cv, combo)
                for label, sv, color in shortcut_lines(res):
                    cells = res.cells_where(**dict(fixed, shortcut=sv)) if "shortcut" in res.param_names else res.cells_where(**fixed)
                    for c in cells[:1]:
                        data = np.sqrt(measured_rms2(res, c))
                        x = np.arange(data.size)
                        panel.curve(x, data, f"{label}: measured", color=color,
                                    marker="o" if data.size <= 16 else None, markersize=3)
                        if c in res.theory:
                            th = np.sqrt(np.array(res.theory[c], dtype=float))
                            panel.curve(np.arange(th.size), th, f"{label}: infinite width", linestyle="--",
                                        color="black" if sv == "true" else "dimgray", linewidth=1, zorder=3)
                            drawn = True
                if not panel.curves:
                    ax.set_visible(False)
                    continue
                panel.finish()
                integer_ticks(ax)
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
        below = legend_below(fig, handles, labels, 8)
        title = "sqrt(mean over seeds of weight_grad_rms^2): measured vs infinite width (docs/theory.md)"
        if combo:
            title += f"  ({split_title(combo)})"
        fig.suptitle(res.title(title), fontsize=10, wrap=True)
        height = fig.get_size_inches()[1]
        fig.tight_layout(rect=(0, below / height, 1, 1))  # (tight_layout leaves room for the suptitle)
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

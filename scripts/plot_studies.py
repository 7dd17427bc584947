#!/usr/bin/env python3
"""Plots of the shipped studies (sweeps/studies/), from a results directory.

usage: plot_studies.py spread RESULTS_DIR [--out PNG]
       plot_studies.py he RESULTS_DIR [--out PNG]
       plot_studies.py chaos RESULTS_DIR [--out PNG]
       plot_studies.py residual RESULTS_DIR [--out PNG]

spread  sweeps/studies/finite_width_spread.json run with --per-seed: the variance
        over seeds of ln(weight_grad_rms^2) of the first layer against
        beta = (depth - 1) / width (the sum of 1/width over the hidden layers),
        one colour per depth; error bars are one standard error of the variance
        (from the seeds' fourth moment). The points of different depths fall on
        one curve (Hanin, NeurIPS 2018).
he      sweeps/studies/he_criticality.json: the growth rate per layer (growth.csv)
        of the backpropagated gradient (delta_rms) and of the weight gradient
        (weight_grad_rms) against sigma_w^2, +- 2 standard errors, beside
        ln(sigma_w^2 / 2) and 0 (He et al. 2015).
chaos   sweeps/studies/edge_of_chaos.json: left, the measured growth rate per
        layer of the backpropagated gradient (delta_rms in growth.csv) as a colour
        map over (sigma_w^2, sigma_b^2), with the mean-field critical line
        chi_1 = 1 drawn over it (computed here by Gauss-Hermite, as
        mean_field_fixed_point does); right, each cell's measured rate against
        ln chi_1 at the fixed point q* (Poole et al. 2016, Schoenholz et al. 2017).
residual sweeps/studies/residual_scaling.json: the first layer's weight_grad_rms
        (median over seeds, 5 %-95 % band) against depth for residual_scale 1,
        1/sqrt(depth) and 0, one panel per activation, with the mean-field
        prediction sqrt(E[rms^2]) from theory.csv dashed.

Default output: RESULTS_DIR/<study>.png. Only the standard library, numpy and
matplotlib (Agg) are used.
"""
import argparse
import csv
import math
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def read_csv(path):
    if not os.path.exists(path):
        raise SystemExit(f"plot_studies.py: {path} is missing")
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def variance_and_stderr(xs):
    """Sample variance and its standard error, Var(s^2) ~ (m4 - s^4 (n-3)/(n-1)) / n."""
    n = len(xs)
    m = sum(xs) / n
    d2 = [(x - m) ** 2 for x in xs]
    var = sum(d2) / (n - 1)
    m4 = sum(d * d for d in d2) / n
    return var, math.sqrt(max(m4 - var * var * (n - 3) / (n - 1), 0.0) / n)


def plot_spread(directory, out):
    cells = {r["cell"]: r for r in read_csv(os.path.join(directory, "results.csv")) if r["quantity"] == "loss"}
    values = {}
    for r in read_csv(os.path.join(directory, "per_seed.csv")):
        if r["quantity"] == "weight_grad_rms" and r["layer"] == "0":
            x = float(r["value"])
            if x > 0 and math.isfinite(x):
                values.setdefault(r["cell"], []).append(2 * math.log(x))
    if not values:
        raise SystemExit("plot_studies.py: per_seed.csv has no first-layer weight_grad_rms values (run with --per-seed)")
    by_depth = {}
    for c, xs in values.items():
        depth, width = int(cells[c]["depth"]), int(cells[c]["width"])
        var, se = variance_and_stderr(xs)
        by_depth.setdefault(depth, []).append(((depth - 1) / width, var, se, width))
    fig, ax = plt.subplots(figsize=(7.5, 5))
    cmap = plt.get_cmap("viridis")
    depths = sorted(by_depth)
    for i, d in enumerate(depths):
        pts = sorted(by_depth[d])
        ax.errorbar([p[0] for p in pts], [p[1] for p in pts], yerr=[p[2] for p in pts], marker="o", capsize=3,
                    color=cmap(i / max(1, len(depths) - 1)), label=f"depth {d}")
    ax.axhline(math.pi ** 2 / 2, color="grey", linestyle=":", label="π²/2 (ln χ²₁: one output unit)")
    ax.set_xscale("log")
    ax.set_xlabel("β = Σ 1/width over the hidden layers = (depth − 1) / width")
    ax.set_ylabel("Var over seeds of ln weight_grad_rms² (layer 0)")
    spec = cells[next(iter(cells))]
    ax.set_title(f"{spec['name']}: {spec['seeds_count']} seeds per cell, relu, He init\n"
                 "the spread follows β, not depth (Hanin 2018)", fontsize=11)
    ax.legend(fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    print(out)


def plot_he(directory, out):
    rows = read_csv(os.path.join(directory, "growth.csv"))
    series = {"delta_rms": [], "weight_grad_rms": []}
    for r in rows:
        if r["quantity"] in series and r["rate"] != "NaN":
            sw2 = float(r["sigma_w"]) ** 2
            series[r["quantity"]].append((sw2, float(r["rate"]), float(r["rate_stderr"]), float(r["theory_rate"])))
    if not series["delta_rms"]:
        raise SystemExit("plot_studies.py: growth.csv has no defined delta_rms rates")
    fig, ax = plt.subplots(figsize=(7.5, 5))
    xs = [p[0] for p in sorted(series["delta_rms"])]
    grid = [min(xs) + (max(xs) - min(xs)) * k / 100 for k in range(101)]
    ax.plot(grid, [math.log(x / 2) for x in grid], color="grey", linestyle="--", label="ln(σ_w²/2) = ln χ₁")
    ax.axhline(0, color="grey", linestyle=":", linewidth=1)
    for q, colour, label in (("delta_rms", "tab:blue", "backpropagated gradient (delta_rms)"),
                             ("weight_grad_rms", "tab:red", "weight gradient (weight_grad_rms)")):
        pts = sorted(series[q])
        ax.errorbar([p[0] for p in pts], [p[1] for p in pts], yerr=[2 * p[2] for p in pts], marker="o", capsize=3,
                    linestyle="none", color=colour, label=label + ", ± 2 s.e.")
    ax.axvline(2, color="black", linewidth=0.8)
    ax.set_xlabel("σ_w²  (W ~ N(0, σ_w²/fan_in), no bias)")
    ax.set_ylabel("growth rate per layer towards the input")
    r0 = rows[0]
    ax.set_title(f"{r0['name']}: relu, depth {r0['depth']}, width {r0['width']}, {r0['seeds_count']} seeds per cell\n"
                 "critical at σ_w² = 2 (He et al. 2015)", fontsize=11)
    ax.legend(fontsize=9)
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    print(out)


def tanh_fixed_point(sw2, sb2, q0):
    """q* and chi_1 for tanh (theory.hpp, mean_field_fixed_point): q <- sw2 E[tanh(sqrt(q) z)^2] + sb2
    from q0, by probabilists' Gauss-Hermite quadrature; q running off to 0 gives chi_1 = sw2."""
    import numpy as np
    z, w = np.polynomial.hermite_e.hermegauss(101)
    w = w / w.sum()
    q = q0
    for _ in range(100000):
        if q < 1e-30:
            return 0.0, sw2
        nxt = sw2 * float(np.sum(w * np.tanh(math.sqrt(q) * z) ** 2)) + sb2
        done = abs(nxt - q) <= 1e-14 * q
        q = nxt
        if done:
            break
    return q, sw2 * float(np.sum(w * (1 - np.tanh(math.sqrt(q) * z) ** 2) ** 2))


def critical_sigma_w2(sb2, lo=0.5, hi=4.0):
    """sigma_w^2 on the line chi_1 = 1 at this sigma_b^2 (chi_1 grows with sigma_w^2), by bisection; None if outside."""
    def chi(sw2):
        return tanh_fixed_point(sw2, sb2, sw2 + sb2)[1] - 1
    if chi(lo) > 0 or chi(hi) < 0:
        return None
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if chi(mid) < 0 else (lo, mid)
    return 0.5 * (lo + hi)


def plot_chaos(directory, out):
    import numpy as np
    from matplotlib.colors import TwoSlopeNorm
    rows = [r for r in read_csv(os.path.join(directory, "growth.csv")) if r["quantity"] == "delta_rms"]
    if not rows:
        raise SystemExit("plot_studies.py: growth.csv has no delta_rms rows")
    # sigma_w, sigma_b are the columns (standard deviations); the axes are their squares.
    pts = {}
    for r in rows:
        if r["sigma_w"] == "" or r["activation"] != "tanh":
            continue
        key = (round(float(r["sigma_w"]) ** 2, 9), round(float(r["sigma_b"]) ** 2, 9))
        pts[key] = (float(r["rate"]), float(r["rate_stderr"]), float(r["theory_rate"]))
    sw2s = sorted({k[0] for k in pts})
    sb2s = sorted({k[1] for k in pts})
    grid = np.full((len(sb2s), len(sw2s)), np.nan)
    for (a, b), (rate, _, _) in pts.items():
        grid[sb2s.index(b), sw2s.index(a)] = rate

    def edges(v):
        v = np.asarray(v, dtype=float)
        if len(v) == 1:
            return np.array([v[0] - 0.5, v[0] + 0.5])
        mid = (v[1:] + v[:-1]) / 2
        return np.concatenate([[2 * v[0] - mid[0]], mid, [2 * v[-1] - mid[-1]]])

    fig, (ax, bx) = plt.subplots(1, 2, figsize=(13, 5.2), gridspec_kw={"width_ratios": [1.25, 1]})
    finite = grid[np.isfinite(grid)]
    span = max(float(np.max(np.abs(finite))), 1e-6) if finite.size else 1.0
    mesh = ax.pcolormesh(edges(sw2s), edges(sb2s), grid, cmap="RdBu_r", norm=TwoSlopeNorm(0, -span, span), shading="flat")
    fig.colorbar(mesh, ax=ax, label="measured growth rate of ∂L/∂z per layer towards the input")
    # The line leaves (1, 0) vertically in sigma_b^2 (q* -> 0 there): dense points near 0.
    line_b = np.concatenate([[min(sb2s)], np.geomspace(max(min(sb2s), 1e-7), max(sb2s), 60)])
    line_w = [critical_sigma_w2(b, min(sw2s), max(sw2s)) for b in line_b]
    ax.plot([w for w in line_w if w is not None], [b for b, w in zip(line_b, line_w) if w is not None], color="black",
            linewidth=2, label="theory: χ₁ = 1")
    ax.set_xlabel("σ_w²  (W ~ N(0, σ_w²/fan_in))")
    ax.set_ylabel("σ_b²  (b ~ N(0, σ_b²))")
    ax.text(0.03, 0.95, "ordered: gradients vanish", transform=ax.transAxes, va="top", fontsize=9)
    ax.text(0.97, 0.05, "chaotic: gradients explode", transform=ax.transAxes, ha="right", fontsize=9)
    ax.legend(loc="upper right", fontsize=9)
    r0 = rows[0]
    ax.set_title(f"{r0['name']}: tanh, depth {r0['depth']}, width {r0['width']}, {r0['seeds_count']} seeds per cell",
                 fontsize=11)
    # Right: measured against ln chi_1 at q*.
    cmap = plt.get_cmap("viridis")
    for i, b in enumerate(sb2s):
        xs, ys, es, ts = [], [], [], []
        for a in sw2s:
            if (a, b) not in pts:
                continue
            rate, se, th = pts[(a, b)]
            xs.append(math.log(tanh_fixed_point(a, b, a + b)[1]))
            ys.append(rate)
            es.append(2 * se)
            ts.append(th)
        colour = cmap(i / max(1, len(sb2s) - 1))
        bx.errorbar(xs, ys, yerr=es, marker="o", markersize=4, capsize=2, linestyle="none", color=colour,
                    label=f"σ_b² = {b:g}")
        bx.plot(xs, ts, marker="x", markersize=5, linestyle="none", color=colour)
    bx.plot([], [], marker="x", linestyle="none", color="grey", label="theory_rate: exact recursion from the input")
    lim = [min(bx.get_xlim()[0], bx.get_ylim()[0]), max(bx.get_xlim()[1], bx.get_ylim()[1])]
    bx.plot(lim, lim, color="grey", linestyle="--", label="measured = ln χ₁")
    bx.axhline(0, color="grey", linewidth=0.6)
    bx.axvline(0, color="grey", linewidth=0.6)
    bx.set_xlabel("ln χ₁ at the fixed point q* (mean field)")
    bx.set_ylabel("measured rate (delta_rms), ± 2 s.e.")
    bx.set_title("Poole et al. 2016; Schoenholz et al. 2017", fontsize=11)
    bx.legend(fontsize=8)
    bx.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    print(out)


def plot_residual(directory, out):
    rows = [r for r in read_csv(os.path.join(directory, "results.csv"))
            if r["quantity"] == "weight_grad_rms" and r["layer"] == "0"]
    if not rows:
        raise SystemExit("plot_studies.py: results.csv has no first-layer weight_grad_rms rows")
    theory = {}
    path = os.path.join(directory, "theory.csv")
    if os.path.exists(path):
        for r in read_csv(path):
            if r["quantity"] == "weight_grad_rms" and r["layer"] == "0":
                theory[r["cell"]] = float(r["value"])

    def scaling(r):
        s, d = float(r["residual_scale"]), int(r["depth"])
        if s == 0:
            return "0 (ReZero, SkipInit)"
        if s == 1:
            return "1"
        if abs(s * math.sqrt(d) - 1) < 1e-12:
            return "1/√depth"
        return f"{s:g}"

    acts = sorted({r["activation"] for r in rows})
    fig, axes = plt.subplots(1, len(acts), figsize=(6.5 * len(acts), 5), squeeze=False)
    colours = {"1": "tab:red", "1/√depth": "tab:blue", "0 (ReZero, SkipInit)": "tab:green"}
    for ax, act in zip(axes[0], acts):
        series = {}
        for r in rows:
            if r["activation"] == act:
                series.setdefault(scaling(r), []).append(r)
        for name in sorted(series, key=lambda n: list(colours).index(n) if n in colours else 9):
            pts = sorted(series[name], key=lambda r: int(r["depth"]))
            d = [int(r["depth"]) for r in pts]
            c = colours.get(name)
            ax.plot(d, [float(r["median"]) for r in pts], marker="o", color=c, label=f"residual_scale {name}: median")
            ax.fill_between(d, [float(r["q05"]) for r in pts], [float(r["q95"]) for r in pts], color=c, alpha=0.15)
            th = [(int(r["depth"]), theory.get(r["cell"])) for r in pts]
            th = [(x, y) for x, y in th if y is not None and math.isfinite(y) and y > 0]
            if th:
                ax.plot([x for x, _ in th], [y for _, y in th], color=c, linestyle="--", linewidth=1)
        ax.plot([], [], color="grey", linestyle="--", label="mean field √E[rms²]")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("depth (number of Linear layers)")
        ax.set_ylabel("first layer's weight_grad_rms")
        r0 = rows[0]
        ax.set_title(f"{act}, width {r0['width']}, {r0['seeds_count']} seeds; band: 5 %–95 %", fontsize=11)
        ax.legend(fontsize=8)
        ax.grid(True, which="both", alpha=0.3)
    fig.suptitle(f"{rows[0]['name']}: residual scale 1 explodes with depth, 1/√depth tames it, 0 freezes the residual layers",
                 fontsize=11)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    print(out)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("study", choices=["spread", "he", "chaos", "residual"])
    p.add_argument("directory")
    p.add_argument("--out")
    a = p.parse_args()
    out = a.out or os.path.join(a.directory, f"{a.study}.png")
    {"spread": plot_spread, "he": plot_he, "chaos": plot_chaos, "residual": plot_residual}[a.study](a.directory, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Plots of the shipped studies (sweeps/studies/), from a results directory.

usage: plot_studies.py spread RESULTS_DIR [--out PNG]
       plot_studies.py he RESULTS_DIR [--out PNG]

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


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("study", choices=["spread", "he"])
    p.add_argument("directory")
    p.add_argument("--out")
    a = p.parse_args()
    out = a.out or os.path.join(a.directory, f"{a.study}.png")
    (plot_spread if a.study == "spread" else plot_he)(a.directory, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""`gradsweep plan`'s estimates beside what `gradsweep run` measures, on sweeps of
different shapes (README, "Planning a sweep").

usage: bench/plan_vs_measured.py GRADSWEEP [--threads N] [--only NAME,...] [--work DIR]

For each sweep below: `gradsweep plan SPEC --backend cpu` (its "peak (cpu run)" and
"estimated time" lines), then `gradsweep run SPEC --backend cpu` under
/usr/bin/time -v (peak RSS, wall seconds). Prints a Markdown table and, per sweep,
the two ratios; memory must be an upper bound within 2x, time within 2x either way.
Memory does not depend on the machine's load; time does, so run this on a quiet
machine (the README says what the machine was doing).
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))


def grid_spec(name, seeds, grid, network=None, **top):
    spec = {"name": name, "seeds": {"count": seeds}, "grid": grid,
            "network": dict({"input_dim": 3, "last_activation": False}, **(network or {}))}
    spec.update(top)
    return spec


def shortcut_vs_depth(seeds):
    with open(os.path.join(HERE, "..", "sweeps", "shortcut_vs_depth.json")) as f:
        spec = json.load(f)
    spec["seeds"]["count"] = seeds
    spec["name"] = f"shortcut_vs_depth at {seeds} seeds"
    return spec


# (name, spec, extra run arguments): shapes that stress different terms of the
# estimate: rows and columns (many seeds), per-thread scratch (wide, batch),
# results text (deep, many cells), per_seed.csv, float64, torch mode, shards.
SWEEPS = [
    ("240 cells x 16 seeds (shortcut_vs_depth)", shortcut_vs_depth(16), []),
    ("quickstart: 24 cells x 4096 seeds", json.load(open(os.path.join(HERE, "..", "sweeps", "quickstart.json"))), []),
    ("1 cell 5x3, 262144 seeds", grid_spec("many-seeds", 262144, {"depth": [5]}, {"width": 3}), []),
    ("4 cells, width 2048, 32 seeds", grid_spec("wide", 32, {"depth": [2, 4], "shortcut": [False, True]}, {"width": 2048}), []),
    ("1 cell depth 3000 x 4, 64 seeds", grid_spec("deep", 64, {"depth": [3000]}, {"width": 4}), []),
    ("2000 cells, 16 seeds", grid_spec("many-cells", 16, {"depth": list(range(1, 101)), "width": [2, 3, 4, 5, 6],
                                                            "activation": ["relu", "tanh", "gelu", "sigmoid"]}), []),
    ("8 cells x 8192 seeds, --per-seed", grid_spec("per-seed", 8192, {"depth": [4, 8], "width": [3, 16],
                                                                       "shortcut": [False, True]}), ["--per-seed"]),
    ("float64, batch 64 normal input, width 128", grid_spec("f64-batch", 256, {"depth": [4, 8]}, {"width": 128, "input_dim": 16},
                                                            precision="float64", input={"distribution": "normal", "batch": 64}), []),
    ("rng torch, 6 cells x 4096 seeds", grid_spec("torch", 4096, {"depth": [3, 6, 12], "width": [8, 32]}, rng="torch"), []),
    ("shard 0/2 of 16 cells x 16384 seeds", grid_spec("shard", 16384, {"depth": [4, 8], "width": [3, 8],
                                                                       "shortcut": [False, True], "activation": ["relu", "tanh"]}),
     ["--shard", "0/2"]),
]

def parse_plan(text):
    m = re.search(r"peak \((?:cpu|cuda) run[^)]*\)\s+[0-9.e+]+ (?:B|KiB|MiB|GiB|TiB) \((\d+) bytes", text)
    t = re.search(r"estimated time ([0-9.e+-]+) s", text)
    if not m or not t:
        raise SystemExit(f"cannot read plan's output:\n{text}")
    return float(m.group(1)), float(t.group(1))


def measure(cmd, prefix):
    """(peak RSS bytes, wall seconds, CPU seconds) of cmd from /usr/bin/time -v."""
    r = subprocess.run(prefix + ["/usr/bin/time", "-v"] + cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)}: exit {r.returncode}\n{r.stderr[-2000:]}")
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", r.stderr).group(1)) * 1024
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (?:(\d+):)?(\d+):([0-9.]+)", r.stderr)
    seconds = int(wall.group(1) or 0) * 3600 + int(wall.group(2)) * 60 + float(wall.group(3))
    cpu = sum(float(re.search(rf"{k} time \(seconds\): ([0-9.]+)", r.stderr).group(1)) for k in ("User", "System"))
    return rss, seconds, cpu


def niced(nice):
    """A command prefix that runs at this niceness, in a session of its own whose
    autogroup gets the same niceness: with the kernel's autogroup scheduling (on
    by default) plain nice only ranks a process within its own session, so
    against other sessions' builds it still gets one share in several and its
    wall time says more about them than about the run."""
    if not nice:
        return []
    return ["setsid", "-w", "sh", "-c",
            f'echo {nice} > /proc/self/autogroup 2>/dev/null; exec nice -n {nice} "$@"', "sh"]


def mib(b):
    return f"{b / 2 ** 20:.1f} MiB"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("gradsweep")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--only", help="comma-separated indices (from 0) of the sweeps to run")
    p.add_argument("--work", help="scratch directory (default: a temporary one)")
    p.add_argument("--nice", type=int, default=0,
                   help="run plan and run at this niceness, their session's autogroup too (as root, e.g. -20, on a shared machine)")
    a = p.parse_args()
    work = a.work or tempfile.mkdtemp(prefix="plan_vs_measured.")
    os.makedirs(work, exist_ok=True)
    picked = [int(i) for i in a.only.split(",")] if a.only else range(len(SWEEPS))
    common = ["--backend", "cpu", "--threads", str(a.threads)]
    rows, bad = [], 0
    for i in picked:
        name, spec, extra = SWEEPS[i]
        path = os.path.join(work, f"sweep{i}.json")
        with open(path, "w") as f:
            json.dump(spec, f)
        plan_extra = [x for x in extra if x != "--per-seed"] + (["--per-seed"] if "--per-seed" in extra else [])
        prefix = niced(a.nice)
        load = os.getloadavg()[0]
        plan = subprocess.run(prefix + [a.gradsweep, "plan", path] + common + plan_extra, capture_output=True, text=True)
        if plan.returncode != 0:
            raise SystemExit(f"plan {name}: exit {plan.returncode}: {plan.stderr}")
        est_mem, est_time = parse_plan(plan.stdout)
        out = os.path.join(work, f"out{i}")
        shutil.rmtree(out, ignore_errors=True)
        rss, seconds, cpu = measure([a.gradsweep, "run", path, "-o", out, "--quiet"] + common + extra, prefix)
        shutil.rmtree(out, ignore_errors=True)
        m_ratio, t_ratio = est_mem / rss, est_time / seconds
        ok = 1 <= m_ratio <= 2 and 0.5 <= t_ratio <= 2
        bad += not ok
        rows.append((name, est_mem, rss, m_ratio, est_time, seconds, t_ratio, cpu, load))
        print(f"# {name}: memory {mib(est_mem)} planned, {mib(rss)} measured ({m_ratio:.2f}x); "
              f"time {est_time:.3g} s planned, {seconds:.3g} s measured ({t_ratio:.2f}x, {cpu:.3g} CPU-s); load average {load:.1f}"
              f"{'' if ok else '  OUT OF BOUNDS'}", file=sys.stderr, flush=True)
    print("| sweep | plan: peak memory | measured peak RSS | ratio | plan: time | measured time (CPU) | ratio | load |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, em, rss, mr, et, s, tr, cpu, load in rows:
        print(f"| {name} | {mib(em)} | {mib(rss)} | {mr:.2f} | {et:.3g} s | {s:.3g} s ({cpu:.3g} s) | {tr:.2f} | {load:.1f} |")
    if not a.work:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

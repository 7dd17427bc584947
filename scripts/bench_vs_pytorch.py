#!/usr/bin/python3
"""Measured speed of gradsweep's CPU backend against PyTorch on the same machine, in the same run.

For each workload (the seeds' network: input [[1,0,-1]], 3 -> width ... -> 1, torch_default init,
bias, activation on every layer, MSE against 0) this times, in networks per second:

  loop  the seed notebooks' way: one nn.Module per seed (torch.manual_seed, nn.Linear default
        init), forward, MSE, backward, then per-layer grad.abs().mean().item();
  best  the fastest batched ensemble we could write: weights for N networks drawn at once with
        torch.rand, a bmm / broadcast forward, a manual or autograd or functorch-vmap backward,
        computing the same statistics gradsweep reports (mean|G|, rms G, max|G|, mean|gb|,
        activation rms, loss); every strategy is tried and the fastest kept per workload;
  gradsweep  the bench_cpu binary (its own best-of-N timing).

Usage: scripts/bench_vs_pytorch.py BUILD/bench_cpu [--min-seconds S] [--only a,b] [--out FILE]
The raw output (machine, commit, every strategy's rate, the table) is also written to
bench/results/cpu-<date>.txt unless --out says otherwise.
"""
import argparse
import datetime
import io
import json
import math
import os
import subprocess
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

try:
    import functorch
except ImportError:  # not every torch build ships it
    functorch = None

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Same names and shapes as bench/bench_cpu.cpp's kWorkloads.
WORKLOADS = [
    ("gelu_shortcut_d5_w3", 5, 3, "gelu", True),
    ("relu_shortcut_d5_w3", 5, 3, "relu", True),
    ("gelu_plain_d5_w3", 5, 3, "gelu", False),
    ("gelu_shortcut_d20_w64", 20, 64, "gelu", True),
    ("relu_shortcut_d20_w64", 20, 64, "relu", True),
    ("gelu_shortcut_d10_w256", 10, 256, "gelu", True),
    ("relu_shortcut_d10_w256", 10, 256, "relu", True),
]
INPUT = [[1.0, 0.0, -1.0]]
TARGET = 0.0


def layer_sizes(depth, width):
    return [3] + [width] * (depth - 1) + [1]


class Log:
    """Prints and keeps everything for the results file."""

    def __init__(self):
        self.buf = io.StringIO()

    def __call__(self, *args):
        line = " ".join(str(a) for a in args)
        print(line, flush=True)
        self.buf.write(line + "\n")


def timed_rate(run, min_seconds, repeats=3):
    """Networks per second of run(first_seed, count), best of `repeats` after calibrating count."""
    count = 1
    t0 = time.perf_counter()
    run(0, count)
    t = time.perf_counter() - t0
    while t < 0.1 * min_seconds:
        count = int(count * min(16.0, max(2.0, 0.12 * min_seconds / max(t, 1e-9))))
        t0 = time.perf_counter()
        run(0, count)
        t = time.perf_counter() - t0
    count = max(count, int(count * min_seconds / max(t, 1e-9)))
    best = math.inf
    for r in range(repeats):
        t0 = time.perf_counter()
        run((r + 1) * count, count)
        best = min(best, time.perf_counter() - t0)
    return count / best, count


# ----------------------------------------------------------------------------- (a) the loop

class SeedNet(nn.Module):
    """Notebooks 002-004's network, generalised to any layer sizes."""

    def __init__(self, sizes, activation, shortcut):
        super().__init__()
        act = {"gelu": nn.GELU, "relu": nn.ReLU}[activation]
        self.shortcut = shortcut
        self.layers = nn.ModuleList(
            [nn.Sequential(nn.Linear(sizes[i], sizes[i + 1]), act()) for i in range(len(sizes) - 1)])

    def forward(self, x):
        for layer in self.layers:
            out = layer(x)
            x = x + out if self.shortcut and x.shape == out.shape else out
        return x


def loop_runner(depth, width, activation, shortcut):
    sizes = layer_sizes(depth, width)
    x = torch.tensor(INPUT)
    target = torch.tensor([[TARGET]])
    criterion = nn.MSELoss()

    def run(first, count):
        for seed in range(first, first + count):
            torch.manual_seed(seed)
            model = SeedNet(sizes, activation, shortcut)
            loss = criterion(model(x), target)
            loss.backward()
            [p.grad.abs().mean().item() for name, p in model.named_parameters() if "weight" in name]

    return run


# ----------------------------------------------------------------------------- (b) batched ensembles

def act_fns(activation):
    if activation == "gelu":
        return F.gelu, lambda g, z: torch.ops.aten.gelu_backward(g, z)
    return F.relu, lambda g, z: torch.ops.aten.threshold_backward(g, z, 0)


def draw_params(sizes, n):
    """nn.Linear's default init for n networks at once: U(+-1/sqrt(fan_in)) weights and biases."""
    ws, bs = [], []
    for l in range(len(sizes) - 1):
        bound = 1.0 / math.sqrt(sizes[l])
        ws.append(torch.rand(n, sizes[l + 1], sizes[l]).mul_(2 * bound).sub_(bound))
        bs.append(torch.rand(n, sizes[l + 1]).mul_(2 * bound).sub_(bound))
    return ws, bs


def weight_stats(G, gb):
    """[mean|G|, rms G, max|G|, mean|gb|] per network; G is [n, out, in], gb [n, out]."""
    absG = G.abs()
    return torch.stack([absG.mean((1, 2)), G.square().mean((1, 2)).sqrt(), absG.amax((1, 2)),
                        gb.abs().mean(1)], 1)


def ensemble_manual(sizes, activation, shortcut, n, ws=None, bs=None, matmul="bmm"):
    """Forward with stacked weights, hand-written backward. Returns [n, depth, 5] stats and loss."""
    fwd, bwd = act_fns(activation)
    D = len(sizes) - 1
    if ws is None:
        ws, bs = draw_params(sizes, n)
    x = torch.tensor(INPUT)
    B = x.shape[0]
    a = x.expand(n, B, sizes[0])
    acts, zs = [a], []
    stats = torch.empty(n, D, 5)
    for l in range(D):
        if matmul == "bmm":
            z = torch.baddbmm(bs[l].unsqueeze(1), a, ws[l].transpose(1, 2))
        else:  # broadcast multiply + sum: no per-matrix call overhead for tiny widths
            z = (ws[l].unsqueeze(1) * a.unsqueeze(2)).sum(-1) + bs[l].unsqueeze(1)
        y = fwd(z)
        a = a + y if (shortcut and sizes[l] == sizes[l + 1]) else y
        zs.append(z)
        acts.append(a)
        stats[:, l, 4] = a.square().mean((1, 2)).sqrt()
    diff = a - TARGET
    loss = diff.square().mean((1, 2))
    g = diff * (2.0 / (B * sizes[-1]))
    for l in reversed(range(D)):
        res = shortcut and sizes[l] == sizes[l + 1]
        delta = bwd(g, zs[l])
        if matmul == "bmm":
            G = torch.bmm(delta.transpose(1, 2), acts[l])
        else:
            G = (delta.unsqueeze(3) * acts[l].unsqueeze(2)).sum(1)
        stats[:, l, :4] = weight_stats(G, delta.sum(1))
        if l > 0:
            gprev = torch.bmm(delta, ws[l]) if matmul == "bmm" else (delta.unsqueeze(3) * ws[l].unsqueeze(1)).sum(2)
            g = gprev + g if res else gprev
    return stats, loss


def ensemble_autograd(sizes, activation, shortcut, n, ws=None, bs=None):
    """Same forward through bmm, backward by autograd on the sum of the n losses."""
    fwd, _ = act_fns(activation)
    D = len(sizes) - 1
    if ws is None:
        ws, bs = draw_params(sizes, n)
    ws = [w.requires_grad_() for w in ws]
    bs = [b.requires_grad_() for b in bs]
    x = torch.tensor(INPUT)
    B = x.shape[0]
    a = x.expand(n, B, sizes[0])
    rms = []
    for l in range(D):
        y = fwd(torch.baddbmm(bs[l].unsqueeze(1), a, ws[l].transpose(1, 2)))
        a = a + y if (shortcut and sizes[l] == sizes[l + 1]) else y
        rms.append(a.detach().square().mean((1, 2)).sqrt())
    loss = (a - TARGET).square().mean((1, 2))
    loss.sum().backward()  # networks are independent: d(sum)/dW_k = dloss_k/dW_k
    with torch.no_grad():
        stats = torch.stack([torch.cat([weight_stats(ws[l].grad, bs[l].grad), rms[l].unsqueeze(1)], 1)
                             for l in range(D)], 1)
    return stats, loss.detach()


def ensemble_vmap(sizes, activation, shortcut, n, ws=None, bs=None):
    """functorch.vmap over a per-network grad_and_value."""
    fwd, _ = act_fns(activation)
    D = len(sizes) - 1
    if ws is None:
        ws, bs = draw_params(sizes, n)
    x = torch.tensor(INPUT)

    def net(wl, bl, x):
        a = x
        rms = []
        for l in range(D):
            y = fwd(F.linear(a, wl[l], bl[l]))
            a = a + y if (shortcut and sizes[l] == sizes[l + 1]) else y
            rms.append(a.square().mean().sqrt())
        loss = (a - TARGET).square().mean()
        return loss, (torch.stack(rms), loss)

    gfn = functorch.vmap(functorch.grad(net, argnums=(0, 1), has_aux=True), in_dims=(0, 0, None))
    (gw, gb), (rms, loss) = gfn(ws, bs, x)
    stats = torch.stack([torch.cat([weight_stats(gw[l], gb[l]), rms[:, l:l + 1]], 1) for l in range(D)], 1)
    return stats, loss


STRATEGIES = {
    "bmm_manual": lambda s, a, sc, n: ensemble_manual(s, a, sc, n, matmul="bmm"),
    "bcast_manual": lambda s, a, sc, n: ensemble_manual(s, a, sc, n, matmul="bcast"),
    "bmm_autograd": ensemble_autograd,
}
if functorch is not None:
    STRATEGIES["functorch_vmap"] = ensemble_vmap


def check_strategies(log):
    """All strategies must agree on the same weights, or the race is not fair."""
    torch.manual_seed(0)
    for sizes, act, sc in [([3, 3, 3, 3, 3, 1], "gelu", True), ([3, 16, 16, 1], "relu", True), ([3, 8, 8, 1], "gelu", False)]:
        ws, bs = draw_params(sizes, 7)
        ref, ref_loss = ensemble_autograd(sizes, act, sc, 7, [w.clone() for w in ws], [b.clone() for b in bs])
        for name in ["bmm", "bcast"]:
            st, lo = ensemble_manual(sizes, act, sc, 7, ws, bs, matmul=name)
            assert torch.allclose(st, ref, rtol=1e-4, atol=1e-7), (name, sizes)
            assert torch.allclose(lo, ref_loss, rtol=1e-5)
        if functorch is not None:
            st, lo = ensemble_vmap(sizes, act, sc, 7, ws, bs)
            assert torch.allclose(st, ref, rtol=1e-4, atol=1e-7), ("vmap", sizes)
        # And the first network agrees with a plain nn.Module carrying the same weights.
        model = SeedNet(sizes, act, sc)
        with torch.no_grad():
            for l, layer in enumerate(model.layers):
                layer[0].weight.copy_(ws[l][0])
                layer[0].bias.copy_(bs[l][0])
        nn.MSELoss()(model(torch.tensor(INPUT)), torch.tensor([[TARGET]])).backward()
        for l, layer in enumerate(model.layers):
            assert math.isclose(layer[0].weight.grad.abs().mean().item(), ref[0, l, 0].item(), rel_tol=1e-4, abs_tol=1e-9)
    log("# check: bmm_manual, bcast_manual, bmm_autograd" + (", functorch_vmap" if functorch else "")
        + " and nn.Module agree on the same weights")


def chunk_sizes(sizes):
    """Networks per chunk: bound the weights (and weight gradients) of a chunk to ~16M or ~64M floats."""
    per_net = sum(sizes[l] * sizes[l + 1] + sizes[l + 1] for l in range(len(sizes) - 1))
    return sorted({max(4, min(1 << 17, budget // per_net)) for budget in (1 << 24, 1 << 26)})


def best_ensemble(depth, width, activation, shortcut, min_seconds, log):
    sizes = layer_sizes(depth, width)
    trials = []
    for name, fn in STRATEGIES.items():
        if name == "bcast_manual" and width > 64:
            continue  # materialises [n, out, in] products per sample: hopeless when wide
        for chunk in chunk_sizes(sizes):
            needs_grad = name in ("bmm_autograd", "functorch_vmap")

            def run(first, count, fn=fn, chunk=chunk, needs_grad=needs_grad):
                done = 0
                while done < count:
                    k = min(chunk, count - done)
                    with torch.enable_grad() if needs_grad else torch.no_grad():
                        fn(sizes, activation, shortcut, k)
                    done += k
            # Short trial for every candidate, a full timing only for the winner.
            rate, _ = timed_rate(run, min_seconds / 4, repeats=1)
            trials.append((rate, name, chunk, run))
            log(f"#   {name:15s} chunk {chunk:7d}: {rate:12.1f} networks/s (trial)")
    trials.sort(key=lambda t: -t[0])
    _, name, chunk, run = trials[0]
    rate, _ = timed_rate(run, min_seconds, repeats=3)
    return rate, f"{name}/chunk{chunk}"


# ----------------------------------------------------------------------------- gradsweep

def run_gradsweep(binary, threads, min_seconds, only, log):
    cmd = [binary, "--threads", str(threads), "--min-seconds", str(min_seconds), "--only", ",".join(only)]
    log("# $ " + " ".join(cmd))
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    rates = {}
    for line in out.splitlines():
        log("# gradsweep: " + line)
        if line.startswith("{"):
            rec = json.loads(line)
            rates[rec["workload"]] = rec["networks_per_s"]
    return rates


def run_cli_end_to_end(binary, threads, name, depth, width, act, sc, backend_rate, min_seconds, log, extra=()):
    """`gradsweep run` on one workload, end to end: spec parsing, the backend, aggregation over
    seeds (quantiles), the checkpoint and the result files. Sized from the backend's rate to
    take about min_seconds; best of 2. extra: more options (--checkpoint-units: every unit's
    rows through a unit file, the data path before cells kept their rows in memory)."""
    import tempfile
    cli = os.path.join(os.path.dirname(os.path.abspath(binary)), "gradsweep")
    if not os.access(cli, os.X_OK):
        return math.nan
    n = max(10000, int(backend_rate * min_seconds / 3))
    spec = {"name": name, "seeds": {"count": n, "first": 0}, "rng": "philox", "precision": "float32",
            "network": {"depth": depth, "width": width, "input_dim": 3, "output_dim": 1, "activation": act,
                        "shortcut": sc, "bias": True, "last_activation": True, "residual_scale": 1.0,
                        "init": "torch_default"},
            "input": {"values": INPUT}, "loss": {"kind": "mse", "target": TARGET}}
    best = math.inf
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "spec.json")
        with open(path, "w") as f:
            json.dump(spec, f)
        for rep in range(2):
            out = os.path.join(tmp, f"out{rep}")
            t0 = time.perf_counter()
            subprocess.run([cli, "run", path, "-o", out, "--threads", str(threads), "-q", *extra], check=True)
            best = min(best, time.perf_counter() - t0)
    rate = n / best
    log(f"#   gradsweep run end to end{' ' + ' '.join(extra) if extra else ''}: {n} networks in {best:.3f} s = {rate:12.1f} networks/s")
    return rate


def run_floor(binary, threads, pytorch_best, ours, min_seconds, log):
    """bench_tiny_floor: the per-network cost of the parts of a depth 5 x width 3 GELU
    network that the contract fixes (Philox words, activation formulas, float64
    statistics), hence the largest ratio to PyTorch that any kernel could reach here."""
    floor = os.path.join(os.path.dirname(os.path.abspath(binary)), "bench_tiny_floor")
    if not os.access(floor, os.X_OK):
        return
    cmd = [floor, "--layer-sizes", "3,3,3,3,3,1", "--min-seconds", str(min_seconds / 2),
           "--pytorch-best", str(pytorch_best), "--threads", str(threads)]
    log("")
    log("# $ " + " ".join(cmd))
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    bound = math.nan
    for line in out.splitlines():
        log("# floor: " + line)
        if line.startswith("{"):
            bound = json.loads(line)["bound_ns"]
    ceiling = threads * 1e9 / bound / pytorch_best
    log(f"gelu_shortcut_d5_w3: fixed parts alone cost {bound:.1f} ns per network and core, so no kernel can pass "
        f"{ceiling:.1f}x PyTorch's best on this machine; the backend reaches {ours / pytorch_best:.1f}x; target 20x.")


def machine_info():
    model, cores = "unknown", os.cpu_count()
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    except OSError:
        pass
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                               capture_output=True, text=True).stdout.strip()
    except OSError:
        commit, dirty = "unknown", ""
    return model, cores, commit + (" (working tree modified)" if dirty else "")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("binary", help="path to the bench_cpu executable")
    ap.add_argument("--min-seconds", type=float, default=2.0, help="time budget per measurement")
    ap.add_argument("--only", default="", help="comma-separated workload names")
    ap.add_argument("--skip-loop", action="store_true", help="skip the (slow) notebook loop")
    ap.add_argument("--out", default=None, help="results file (default bench/results/cpu-<date>.txt)")
    args = ap.parse_args()

    threads = os.cpu_count()
    torch.set_num_threads(threads)
    log = Log()
    model, cores, commit = machine_info()
    log(f"# gradsweep vs PyTorch, {datetime.datetime.now().isoformat(timespec='seconds')}")
    log(f"# machine: {model}, {cores} logical cores; commit {commit}")
    log(f"# torch {torch.__version__}, torch threads {torch.get_num_threads()}, "
        f"functorch {'yes' if functorch else 'no'}; gradsweep threads {threads}; min seconds {args.min_seconds}")
    check_strategies(log)

    only = [w for w in args.only.split(",") if w]
    workloads = [w for w in WORKLOADS if not only or w[0] in only]
    rows = []
    for name, depth, width, act, sc in workloads:
        log(f"# {name}")
        loop = math.nan
        if not args.skip_loop:
            loop, _ = timed_rate(loop_runner(depth, width, act, sc), args.min_seconds)
            log(f"#   notebook loop: {loop:12.1f} networks/s")
        best, how = best_ensemble(depth, width, act, sc, args.min_seconds, log)
        log(f"#   best ensemble: {best:12.1f} networks/s ({how})")
        rows.append((name, loop, best, how))
    ours = run_gradsweep(args.binary, threads, args.min_seconds, [w[0] for w in workloads], log)

    e2e, e2e_units = {}, {}
    for name, depth, width, act, sc in workloads:
        log(f"# {name}")
        e2e[name] = run_cli_end_to_end(args.binary, threads, name, depth, width, act, sc, ours.get(name, 1000.0),
                                       args.min_seconds, log)
        e2e_units[name] = run_cli_end_to_end(args.binary, threads, name, depth, width, act, sc, ours.get(name, 1000.0),
                                             args.min_seconds, log, extra=("--checkpoint-units",))

    log("")
    log("gradsweep = the backend (bench_cpu: forward, backward, per-network statistics, as PyTorch computes them);")
    log("end to end = `gradsweep run` (also aggregation over seeds with quantiles, checkpoint, result files);")
    log("e2e units = the same with --checkpoint-units (every unit's rows written to and read back from a unit file).")
    log("")
    log(f"| workload | PyTorch loop nets/s | PyTorch best nets/s (how) | gradsweep nets/s | vs loop | vs best "
        f"| end to end nets/s | end to end vs best | end to end / gradsweep | e2e units nets/s | e2e units vs best |")
    log(f"|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, loop, best, how in rows:
        g = ours.get(name, math.nan)
        e = e2e.get(name, math.nan)
        u = e2e_units.get(name, math.nan)
        log(f"| {name} | {loop:,.0f} | {best:,.0f} ({how}) | {g:,.0f} | {g / loop:,.0f}x | {g / best:,.1f}x "
            f"| {e:,.0f} | {e / best:,.1f}x | {e / g:.2f} | {u:,.0f} | {u / best:,.1f}x |")

    best_of = {name: best for name, _, best, _ in rows}
    if "gelu_shortcut_d5_w3" in best_of:
        run_floor(args.binary, threads, best_of["gelu_shortcut_d5_w3"], ours.get("gelu_shortcut_d5_w3", math.nan),
                  args.min_seconds, log)

    out = args.out or os.path.join(REPO, "bench", "results", f"cpu-{datetime.date.today().isoformat()}.txt")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w") as f:
        f.write(log.buf.getvalue())
    print(f"# written to {out}")


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""PyTorch reference values for gradsweep's rng = "torch" mode.

Each case is one network built the seed notebooks' way: torch.manual_seed(seed),
then torch.randn(batch, in) when the input is random, then each nn.Linear in
order; one forward + backward pass with MSE loss against a constant target.
The output has the format of tests/data/torch_cases.json: per layer the
weight gradient's mean |g|, rms and max |g| and the bias gradient's mean |g|
(computed in float64 from the float32 gradients), and the float32 loss.

  torch_reference.py --cases FILE [--out OUT]     recompute FILE's cases
  torch_reference.py --random N --seed S [--out OUT]   N random cases
  torch_reference.py --rng-table [--out OUT]      the C++ include with raw
                                                  generator values for
                                                  tests/test_torch_rng.cpp

Needs /usr/bin/python3 with PyTorch 1.13 (Debian's python3-torch). Other
PyTorch versions give the same numbers as long as their CPU random kernels
did not change; the generator line in the output says which one made them.
"""
import argparse
import json
import math
import random
import struct
import sys

import torch
import torch.nn as nn

ACTIVATIONS = ["relu", "gelu", "gelu_tanh", "tanh", "sigmoid", "silu", "identity", "leaky_relu"]


def activation_module(name):
    return {
        "relu": nn.ReLU,
        "gelu": nn.GELU,
        "gelu_tanh": lambda: nn.GELU(approximate="tanh"),
        "tanh": nn.Tanh,
        "sigmoid": nn.Sigmoid,
        "silu": nn.SiLU,
        "identity": nn.Identity,
        "leaky_relu": lambda: nn.LeakyReLU(0.01),
    }[name]()


def run_case(case):
    """Expected statistics of one case, as torch computes them in float32."""
    sizes = case["layer_sizes"]
    torch.manual_seed(case["seed"])
    inp = case["input"]
    if "values" in inp:
        x = torch.tensor(inp["values"], dtype=torch.float32)
    else:
        x = torch.randn(inp["batch"], sizes[0])
    layers = [nn.Linear(sizes[i], sizes[i + 1], bias=case["bias"]) for i in range(len(sizes) - 1)]
    act = activation_module(case["activation"])
    scale = case.get("residual_scale", 1.0)
    depth = len(layers)
    for i, layer in enumerate(layers):
        y = layer(x)
        if i + 1 < depth or case["last_activation"]:
            y = act(y)
        if case["shortcut"] and y.shape == x.shape:
            x = x + y if scale == 1.0 else x + scale * y
        else:
            x = y
    loss = nn.MSELoss()(x, torch.full_like(x, case["target"]))
    loss.backward()
    stats = []
    for layer in layers:
        g = layer.weight.grad.double()
        entry = {
            "weight_grad_mean_abs": g.abs().mean().item(),
            "weight_grad_rms": g.pow(2).mean().sqrt().item(),
            "weight_grad_max_abs": g.abs().max().item(),
        }
        if case["bias"]:  # a network without bias has no bias gradient to report
            entry["bias_grad_mean_abs"] = layer.bias.grad.double().abs().mean().item()
        stats.append(entry)
    return {"loss": loss.item(), "layers": stats}


CASE_KEYS = ["name", "layer_sizes", "activation", "shortcut", "bias", "last_activation", "seed", "input", "target"]


def random_cases(n, seed):
    """Small random networks covering every activation, both input kinds and
    both randn paths (fewer and at least 16 elements)."""
    rnd = random.Random(seed)
    cases = []
    for k in range(n):
        depth = rnd.randint(1, 6)
        in_dim = rnd.choice([1, 2, 3, 4, 5, 8, 10, 16, 20])
        width = rnd.choice([1, 2, 3, 4, 6, 8, 12, 16, 24])
        out_dim = rnd.choice([1, 1, 2, 3])
        sizes = [in_dim] + [width] * (depth - 1) + [out_dim]
        if depth > 2 and rnd.random() < 0.3:  # a funnel now and then
            sizes = [in_dim] + [rnd.choice([2, 4, 8, 16]) for _ in range(depth - 1)] + [out_dim]
        if rnd.random() < 0.5:
            batch = rnd.randint(1, 3)
            inp = {"values": [[round(rnd.gauss(0, 1), 3) for _ in range(in_dim)] for _ in range(batch)]}
        else:
            inp = {"batch": rnd.randint(1, 4)}
        case = {
            "name": f"random-{seed}-{k}",
            "layer_sizes": sizes,
            "activation": ACTIVATIONS[k % len(ACTIVATIONS)] if k < len(ACTIVATIONS) else rnd.choice(ACTIVATIONS),
            "shortcut": rnd.random() < 0.6,
            "bias": rnd.random() < 0.8,
            "last_activation": rnd.random() < 0.5,
            "seed": rnd.choice([rnd.randrange(0, 1000), rnd.randrange(0, 2**32), rnd.randrange(2**32, 2**40)]),
            "input": inp,
            "target": rnd.choice([0.0, 0.0, 0.5, -1.0]),
        }
        cases.append(case)
    return cases


def generator_line():
    return f"PyTorch {torch.__version__} CPU, float32"


def reference_document(cases):
    out = []
    for case in cases:
        c = {k: case[k] for k in CASE_KEYS}
        if "residual_scale" in case:
            c["residual_scale"] = case["residual_scale"]
        c["expected"] = run_case(c)
        out.append(c)
    return {"generator": generator_line(), "cases": out}


# ---------------------------------------------------------------- raw generator values

def f32_bits(t):
    return [struct.unpack("<I", struct.pack("<f", v))[0] for v in t.flatten().tolist()]


def fnv1a(words):
    """FNV-1a over the little-endian bytes of 32-bit words (tests/test_torch_rng.cpp has the same)."""
    h = 0xcbf29ce484222325
    for w in words:
        for shift in (0, 8, 16, 24):
            h ^= (w >> shift) & 0xff
            h = (h * 0x100000001b3) & 0xffffffffffffffff
    return h


def linear_tensors(seed, shapes, bias=True, randn_first=None):
    torch.manual_seed(seed)
    tensors = []
    if randn_first is not None:
        tensors.append(("input", torch.randn(*randn_first)))
    for out_f, in_f in shapes:
        layer = nn.Linear(in_f, out_f, bias=bias)
        tensors.append(("weight", layer.weight.detach()))
        if bias:
            tensors.append(("bias", layer.bias.detach()))
    return tensors


def words_cpp(words):
    lines, line = [], []
    for w in words:
        line.append(f"0x{w:08x}u")
        if len(line) == 8:
            lines.append("     " + ", ".join(line) + ",")
            line = []
    if line:
        lines.append("     " + ", ".join(line) + ",")
    return "\n".join(lines)


def rng_table():
    """C++ initialisers: RandnCase{kernels, seed, n, {bits}}, LinearCase{...}, HashCase{...}."""
    cap = torch.backends.cpu.get_cpu_capability() if hasattr(torch.backends, "cpu") else None
    o = ["// Generated by scripts/torch_reference.py --rng-table with " + generator_line() + ".",
         "// float32 bit patterns of torch.manual_seed(seed) followed by torch.randn / nn.Linear.",
         "// The 'generic' entries were made with ATEN_CPU_CAPABILITY=default (see docs/torch_exact.md).",
         ""]
    o.append("static const RandnCase kRandnCases[] = {")
    for kernels, seed, sizes in [("avx2", 123, range(1, 41)), ("avx2", 0, [1, 2, 3, 15, 16, 17, 20, 31, 32, 33, 40]),
                                 ("avx2", 2**32 + 77, [5, 24])]:
        for n in sizes:
            torch.manual_seed(seed)
            words = f32_bits(torch.randn(n))
            o.append(f"    {{TorchKernels::{kernels}, {seed}ull, {n}, {{\n{words_cpp(words)}\n    }}}},")
    o.append("};")
    o.append("")
    o.append("// nn.Linear(in, out): weight [out][in] then bias [out], one model per seed.")
    o.append("static const LinearCase kLinearCases[] = {")
    for seed in [0, 123]:
        for out_f, in_f in [(3, 3), (10, 10), (20, 20), (1, 3), (7, 5)]:
            (_, w), (_, b) = linear_tensors(seed, [(out_f, in_f)])
            o.append(f"    {{TorchKernels::avx2, {seed}ull, {out_f}, {in_f}, {{\n{words_cpp(f32_bits(w))}\n    }}, {{\n"
                     f"{words_cpp(f32_bits(b))}\n    }}}},")
    o.append("};")
    o.append("")
    o.append("// FNV-1a of whole tensors, for sizes too big to list.")
    o.append("static const HashCase kHashCases[] = {")
    for seed in [0, 123, 4242]:
        for n in [100, 257, 1000, 4096]:
            torch.manual_seed(seed)
            o.append(f"    {{\"randn\", {seed}ull, {n}, 0, 0x{fnv1a(f32_bits(torch.randn(n))):016x}ull}},")
        for out_f, in_f in [(256, 128), (1024, 512)]:
            (_, w), (_, b) = linear_tensors(seed, [(out_f, in_f)])
            o.append(f"    {{\"linear_weight\", {seed}ull, {out_f}, {in_f}, 0x{fnv1a(f32_bits(w)):016x}ull}},")
            o.append(f"    {{\"linear_bias\", {seed}ull, {out_f}, {in_f}, 0x{fnv1a(f32_bits(b)):016x}ull}},")
    o.append("};")
    o.append("")
    # Whole networks through gs::torch_params: notebook 000 and a batch-2 funnel.
    o.append("// Whole networks (torch_params order: randn input, then each layer's weight and bias).")
    o.append("static const NetworkCase kNetworkCases[] = {")
    nets = [("notebook000", 123, [10, 10, 10, 10, 10, 1], False, 1),
            ("funnel", 3, [16, 32, 64, 32, 16, 1], True, 2),
            ("randn15", 9, [5, 4, 2], True, 3)]
    for name, seed, sizes, bias, batch in nets:
        shapes = [(sizes[i + 1], sizes[i]) for i in range(len(sizes) - 1)]
        tensors = linear_tensors(seed, shapes, bias=bias, randn_first=(batch, sizes[0]))
        hashes = ", ".join(f"0x{fnv1a(f32_bits(t)):016x}ull" for _, t in tensors)
        first = ", ".join(f"0x{w:08x}u" for w in f32_bits(tensors[0][1])[:4])
        sizes_txt = ", ".join(map(str, sizes))
        o.append(f"    {{\"{name}\", {seed}ull, {{{sizes_txt}}}, {str(bias).lower()}, {batch}, {{{hashes}}}, {{{first}}}}},")
    o.append("};")
    return "\n".join(o) + "\n"


def rng_table_generic():
    torch.manual_seed(123)
    o = ["static const RandnCase kRandnGenericCases[] = {"]
    for n in [16, 17, 20, 31, 32, 40]:
        torch.manual_seed(123)
        o.append(f"    {{TorchKernels::generic, 123ull, {n}, {{\n{words_cpp(f32_bits(torch.randn(n)))}\n    }}}},")
    o.append("};")
    o.append("static const LinearCase kLinearGenericCases[] = {")
    for out_f, in_f in [(10, 10), (20, 20)]:
        (_, w), (_, b) = linear_tensors(123, [(out_f, in_f)])
        o.append(f"    {{TorchKernels::generic, 123ull, {out_f}, {in_f}, {{\n{words_cpp(f32_bits(w))}\n    }}, {{\n"
                 f"{words_cpp(f32_bits(b))}\n    }}}},")
    o.append("};")
    return "\n".join(o) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", help="output file (default: stdout)")
    ap.add_argument("--cases", help="JSON file: a list of cases or a {\"cases\": [...]} document; expected values are recomputed")
    ap.add_argument("--random", type=int, metavar="N", help="draw N random cases")
    ap.add_argument("--seed", type=int, default=0, help="seed for drawing random cases (default 0)")
    ap.add_argument("--rng-table", action="store_true", help="C++ include of raw generator values for the unit tests")
    ap.add_argument("--rng-table-generic", action="store_true",
                    help="the same for ATEN_CPU_CAPABILITY=default (run with that variable set)")
    args = ap.parse_args()

    torch.set_num_threads(1)
    if args.rng_table:
        text = rng_table()
    elif args.rng_table_generic:
        text = rng_table_generic()
    else:
        if args.cases:
            with open(args.cases) as f:
                doc = json.load(f)
            cases = doc["cases"] if isinstance(doc, dict) else doc
        elif args.random is not None:
            cases = random_cases(args.random, args.seed)
        else:
            ap.error("give --cases FILE, --random N or --rng-table")
        text = json.dumps(reference_document(cases), indent=1) + "\n"
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main()

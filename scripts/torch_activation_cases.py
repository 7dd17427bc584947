#!/usr/bin/python3
"""Writes tests/data/torch_activation_cases.json: what PyTorch computes for every
gradsweep activation, forward and backward, on the inputs where implementations
differ: NaN, +-inf, +-0, subnormals, the edges of the normal range, and values
where exp/erf/tanh saturate or x*x overflows. tests/test_activation_torch.cpp
checks every implementation of the activations (the scalar formulas, the CPU
SIMD lanes, the CUDA kernels' math) against it.

Values are stored as their bit patterns (hex), so NaN, infinities and signed
zeros survive JSON. Backward: dL/dx for upstream gradients dL/dy that are
ordinary, zero and non-finite (PyTorch's ReLU backward is a select, not a
product: an inactive unit passes no gradient even when dL/dy is inf or NaN).

Run with Debian's python3-torch:  /usr/bin/python3 scripts/torch_activation_cases.py
"""
import json
import math
import os
import struct
import sys

import torch
import torch.nn.functional as F

LEAKY_SLOPE = 0.01  # gradsweep's default network.leaky_slope

ACTIVATIONS = {
    "relu": torch.relu,
    "gelu": F.gelu,
    "gelu_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "silu": F.silu,
    "identity": lambda x: x * 1,  # a node autograd can differentiate
    "leaky_relu": lambda x: F.leaky_relu(x, LEAKY_SLOPE),
}

UPSTREAM = [1.0, -0.75, 0.0, math.inf, -math.inf, math.nan]


def inputs(dtype):
    fi = torch.finfo(dtype)
    denorm_min = fi.tiny * fi.eps  # the smallest subnormal: 2^-149 or 2^-1074
    largest_sub = fi.tiny - denorm_min
    mid_sub = 1e-40 if dtype == torch.float32 else 1e-310
    big = [30.0, 100.0, 1e4, 1e20] + ([1e200] if dtype == torch.float64 else [])
    pos = [denorm_min, mid_sub, largest_sub, fi.tiny, 0.5, 1.0, 2.5] + big + [fi.max]
    vals = [math.nan, -math.nan, math.inf, -math.inf, 0.0, -0.0]
    for v in pos:
        vals += [v, -v]
    return vals


def bits(t):
    """Hex bit patterns of a 1-d float32/float64 tensor."""
    if t.dtype == torch.float32:
        return ["0x%08x" % struct.unpack("<I", struct.pack("<f", v))[0] for v in t.tolist()]
    return ["0x%016x" % struct.unpack("<Q", struct.pack("<d", v))[0] for v in t.tolist()]


def cases(dtype):
    x0 = torch.tensor(inputs(dtype), dtype=dtype)
    out = {"x": bits(x0), "x_repr": [repr(v) for v in x0.tolist()],
           "upstream": bits(torch.tensor(UPSTREAM, dtype=dtype)), "activations": {}}
    for name, f in ACTIVATIONS.items():
        entry = {"dx": []}
        for u in UPSTREAM:
            x = x0.clone().requires_grad_(True)
            y = f(x)
            y.backward(torch.full_like(y, u))
            entry["y"] = bits(y.detach())
            entry["dx"].append(bits(x.grad))
        out["activations"][name] = entry
    return out


def main():
    torch.set_num_threads(1)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, "tests", "data", "torch_activation_cases.json")
    doc = {
        "generator": "scripts/torch_activation_cases.py",
        "torch_version": torch.__version__,
        "leaky_slope": LEAKY_SLOPE,
        "float32": cases(torch.float32),
        "float64": cases(torch.float64),
    }
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as fh:
        json.dump(doc, fh, indent=1)
        fh.write("\n")
    print("wrote", path)


if __name__ == "__main__":
    main()

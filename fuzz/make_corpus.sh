#!/usr/bin/env bash
# Seed corpus for fuzz_spec: the example sweeps, every bad spec, and a few
# hand-written specs that reach the rarer branches. Usage: make_corpus.sh OUTDIR
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=$1
mkdir -p "$out"
cp "$root"/sweeps/*.json "$out"/
for f in "$root"/tests/bad_specs/*.json; do cp "$f" "$out/bad_$(basename "$f")"; done
cat > "$out/every_key.json" <<'JSON'
{"name": "n", "description": "d", "seeds": {"count": 9, "first": 4}, "rng": "philox", "rng_key": 7,
 "precision": "float64",
 "network": {"input_dim": null, "output_dim": 3, "leaky_slope": 0.2, "bias": false, "last_activation": false,
             "residual_scale": 0.5},
 "grid": {"depth": [1, 3], "width": [2, 4], "activation": ["relu", "leaky_relu"], "shortcut": [false, true],
          "init": ["torch_default", {"kind": "normal", "sigma_w": 1.5, "sigma_b": 0.25}]},
 "input": {"distribution": "normal", "batch": 6}, "loss": {"kind": "mse", "target": -0.5}}
JSON
cat > "$out/layer_sizes.json" <<'JSON'
{"grid": {"layer_sizes": [[3, 3, 1], [2, 7, 7, 2]]}, "input": {"values": [[1, 2, 3]]}}
JSON
cat > "$out/torch.json" <<'JSON'
{"rng": "torch", "seeds": {"count": 3}, "network": {"depth": 2, "width": 3, "init": "torch_default"},
 "input": {"values": [[1.0, 0.0, -1.0], [0.5, 0.5, 0.5]]}}
JSON
echo "$(ls "$out" | wc -l) seed inputs in $out"

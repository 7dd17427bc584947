#!/usr/bin/env bash
# compute-sanitizer (memcheck, racecheck, initcheck, synccheck) over a small sweep
# that covers both kernel schedules (thread per network and block per network),
# both precisions, batch > 1 and the device-side summary.
# usage: sanitize.sh GRADSWEEP_BINARY GPU_TEST_BINARY SCRATCH_DIR
# Exits 77 (ctest: skipped) without a CUDA device or without compute-sanitizer.
set -u
bin=$1 gpu_tests=$2 scratch=$3

"$gpu_tests" --list-test-names-only >/dev/null 2>&1
if [ $? -eq 77 ]; then
  echo "SKIPPED: no CUDA device"
  exit 77
fi
san=$(command -v compute-sanitizer || true)
[ -z "$san" ] && [ -x /usr/local/cuda/bin/compute-sanitizer ] && san=/usr/local/cuda/bin/compute-sanitizer
[ -z "$san" ] && [ -x /usr/local/cuda/compute-sanitizer/compute-sanitizer ] && san=/usr/local/cuda/compute-sanitizer/compute-sanitizer
if [ -z "$san" ]; then
  echo "SKIPPED: compute-sanitizer not found"
  exit 77
fi

rm -rf "$scratch" && mkdir -p "$scratch"
for precision in float32 float64; do
  cat > "$scratch/small_$precision.json" <<JSON
{
  "name": "sanitize-$precision",
  "seeds": {"count": 70, "first": 3},
  "rng": "philox",
  "precision": "$precision",
  "grid": {"width": [3, 40], "activation": ["gelu", "tanh"], "shortcut": [false, true]},
  "network": {"depth": 3, "input_dim": 5, "output_dim": 2},
  "input": {"distribution": "normal", "batch": 5},
  "loss": {"kind": "mse", "target": 0.1}
}
JSON
done

fail=0
for tool in memcheck racecheck initcheck synccheck; do
  for precision in float32 float64; do
    echo "== $tool, $precision sweep"
    if ! "$san" --tool "$tool" --error-exitcode 3 "$bin" run "$scratch/small_$precision.json" \
         -o "$scratch/out_${tool}_$precision" --backend cuda --quiet; then
      echo "FAILED: $tool on the $precision sweep"
      fail=1
    fi
  done
done
# The device summary (CUB sort + summary kernel) and the error paths, via the GPU tests.
for tool in memcheck racecheck; do
  echo "== $tool, device summary tests"
  if ! "$san" --tool "$tool" --error-exitcode 3 "$gpu_tests" "[summary]"; then
    echo "FAILED: $tool on the device summary tests"
    fail=1
  fi
done
exit $fail

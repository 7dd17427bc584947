#!/usr/bin/env bash
# compute-sanitizer (memcheck, racecheck, initcheck, synccheck) over a small sweep
# that covers both kernel schedules (thread per network and block per network),
# both precisions, batch > 1 and the device-side summary.
# usage: sanitize.sh GRADSWEEP_BINARY GPU_TEST_BINARY SCRATCH_DIR [TOOL...]
#   TOOL: memcheck racecheck initcheck synccheck (default: all four, one after the
#   other; scripts/gpu_accept.sh runs one tool per call, in parallel).
# Exits 0 when every tool ran and found nothing, 1 on a finding or a failed run,
# 77 (ctest: skipped) when nothing could be checked, with the reason on a line of
# its own: "SKIPPED: no CUDA device", "UNAVAILABLE: compute-sanitizer not found",
# or "UNAVAILABLE: <tool>: device not supported" (compute-sanitizer refuses some
# virtualised GPUs: that is not a pass).
set -u
bin=$1 gpu_tests=$2 scratch=$3
shift 3
tools=("$@")
[ ${#tools[@]} -eq 0 ] && tools=(memcheck racecheck initcheck synccheck)
for tool in "${tools[@]}"; do
  case $tool in
    memcheck | racecheck | initcheck | synccheck) ;;
    *) echo "sanitize.sh: unknown tool $tool" >&2; exit 2 ;;
  esac
done

"$gpu_tests" --list-test-names-only >/dev/null 2>&1
if [ $? -eq 77 ]; then
  echo "SKIPPED: no CUDA device"
  exit 77
fi
san=$(command -v compute-sanitizer || true)
[ -z "$san" ] && [ -x /usr/local/cuda/bin/compute-sanitizer ] && san=/usr/local/cuda/bin/compute-sanitizer
[ -z "$san" ] && [ -x /usr/local/cuda/compute-sanitizer/compute-sanitizer ] && san=/usr/local/cuda/compute-sanitizer/compute-sanitizer
if [ -z "$san" ]; then
  echo "UNAVAILABLE: compute-sanitizer not found"
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

# One sanitizer run; its output goes to stdout and is searched for the refusal.
# Returns 0 clean, 1 finding or failure, 2 device not supported.
sanitize() {
  local tool=$1 log=$2
  shift 2
  "$san" --tool "$tool" --error-exitcode 3 "$@" >"$log" 2>&1
  local rc=$?
  cat "$log"
  if grep -qi "device not supported\|not supported on this device" "$log"; then
    return 2
  fi
  return $((rc == 0 ? 0 : 1))
}

fail=0 unavailable=0 ran=0
for tool in "${tools[@]}"; do
  for precision in float32 float64; do
    echo "== $tool, $precision sweep"
    sanitize "$tool" "$scratch/${tool}_$precision.log" "$bin" run "$scratch/small_$precision.json" \
      -o "$scratch/out_${tool}_$precision" --backend cuda --quiet
    case $? in
      0) ran=$((ran + 1)) ;;
      2) echo "UNAVAILABLE: $tool: device not supported"; unavailable=1; continue 2 ;;
      *) echo "FAILED: $tool on the $precision sweep"; fail=1 ;;
    esac
  done
  # The device summary (CUB sort + summary kernel) and the error paths, via the GPU tests.
  if [ "$tool" = memcheck ] || [ "$tool" = racecheck ]; then
    echo "== $tool, device summary tests"
    sanitize "$tool" "$scratch/${tool}_summary.log" "$gpu_tests" "[summary]"
    case $? in
      0) ran=$((ran + 1)) ;;
      2) echo "UNAVAILABLE: $tool: device not supported"; unavailable=1 ;;
      *) echo "FAILED: $tool on the device summary tests"; fail=1 ;;
    esac
  fi
done
[ $fail -ne 0 ] && exit 1
[ $unavailable -ne 0 ] && exit 77
echo "PASSED: ${tools[*]} ($ran runs)"
exit 0

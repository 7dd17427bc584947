#!/usr/bin/env bash
# The GPU acceptance call, dry: scripts/gpu_accept_prep.sh stages this build's
# binaries (no build, no .deb download), then scripts/gpu_accept.sh runs every
# step on this machine. Without a device every GPU step must say "no device"
# cleanly, the rest pass, results.json be complete and the bundle be there; with
# --require-gpu (the GPU machine) the same run must fail; with no runnable
# binaries, or stopped by a signal, results.json must still be written. Skipped (77) in a CPU-only
# build, or where a CUDA device is present (the real run belongs there).
set -uo pipefail
bin=$1 src=$2 work=$3
bdir=$(cd "$(dirname "$bin")" && pwd)
[ -x "$bdir/tests/gpu/gradsweep_gpu_tests" ] || { echo "SKIPPED: CPU-only build (no gradsweep_gpu_tests)"; exit 77; }
"$bdir/tests/gpu/gradsweep_gpu_tests" --list-test-names-only >/dev/null 2>&1
[ $? -eq 77 ] || { echo "SKIPPED: a CUDA device is present"; exit 77; }
py=$(command -v /usr/bin/python3 || command -v python3) || { echo "SKIPPED: no python3"; exit 77; }
rm -rf "$work"; mkdir -p "$work"
failed=0
fail() { echo "FAIL: $*" >&2; failed=$((failed + 1)); }

# results.json: STATUS_OVERALL then NAME=STATUS pairs that must hold.
check_results() {
  local file=$1
  shift
  "$py" - "$file" "$@" <<'PY' || fail "results check: $file"
import json, sys
doc = json.load(open(sys.argv[1]))
ok = True
for want in sys.argv[2:]:
    key, value = want.split("=", 1)
    got = doc["status"] if key == "overall" else doc["steps"].get(key, {}).get("status")
    if got != value:
        print("%s: %s is %r, want %r" % (sys.argv[1], key, got, value))
        ok = False
for key in ("commit", "device", "driver", "build_mode", "seconds", "steps", "deviations", "bench"):
    if key not in doc:
        print("%s: no %s" % (sys.argv[1], key))
        ok = False
for name, step in doc["steps"].items():
    for key in ("status", "exit_code", "seconds", "log"):
        if key not in step:
            print("%s: step %s has no %s" % (sys.argv[1], name, key))
            ok = False
sys.exit(0 if ok else 1)
PY
}

bash "$src/scripts/gpu_accept_prep.sh" --from-build "$bdir" --no-debs --carry "$work/carry" >"$work/prep.out" 2>&1 ||
  fail "prep exit $?: $(cat "$work/prep.out")"
for want in "command:   bash" "--require-gpu --bundle" "carry:     [" "timeout_s: 530"; do
  grep -qF -- "$want" "$work/prep.out" || fail "prep output lacks '$want': $(cat "$work/prep.out")"
done
for f in bin/gradsweep.gz bin/gradsweep_gpu_tests.gz bin/bench_cuda_kernels.gz scripts/gpu_accept.sh scripts/gpu_accept_compare.py \
         scripts/sanitize.sh data/tests/data/torch_cases.json manifest.txt; do
  [ -f "$work/carry/$f" ] || fail "carry lacks $f"
done

# 1. Dry run: every GPU step "no device", the rest passed, exit 0, bundle written.
(cd "$src" && GS_ACCEPT_CARRY="$work/carry" GS_ACCEPT_E2E_SEEDS=10 bash "$work/carry/scripts/gpu_accept.sh" "$work/out" \
  --bundle "$work/bundle") \
  >"$work/dry.out" 2>&1
rc=$?
[ $rc -eq 0 ] || fail "dry run exit $rc: $(cat "$work/dry.out")"
check_results "$work/out/results.json" "overall=no device" probe="no device" binaries=passed gpu_tests="no device" \
  sanitizer_memcheck="no device" sanitizer_racecheck="no device" sanitizer_initcheck="no device" \
  sanitizer_synccheck="no device" e2e="no device" bench="no device"
for f in results.json summary.txt logs.tar.gz; do [ -s "$work/bundle/$f" ] || fail "bundle lacks $f"; done
grep -q "comparer self-check, cpu vs cpu, float64: .* 0 failures" "$work/out/logs/e2e.log" ||
  fail "the comparer did not run: $(cat "$work/out/logs/e2e.log")"

# 2. The same on "the GPU machine" (--require-gpu): no device is a failure there.
(cd "$src" && GS_ACCEPT_CARRY="$work/carry" GS_ACCEPT_E2E_SEEDS=3 bash "$work/carry/scripts/gpu_accept.sh" "$work/out2" \
  --require-gpu) >"$work/req.out" 2>&1
rc=$?
[ $rc -eq 1 ] || fail "--require-gpu without a device: exit $rc, want 1: $(cat "$work/req.out")"
check_results "$work/out2/results.json" overall=failed probe=failed gpu_tests=failed bench=failed

# 3. Nothing runnable and no build allowed: results.json is still written.
mkdir -p "$work/empty"
(cd "$src" && GS_ACCEPT_CARRY="$work/empty" GS_ACCEPT_NO_BUILD=1 bash "$work/carry/scripts/gpu_accept.sh" "$work/out3") \
  >"$work/nobin.out" 2>&1
rc=$?
[ $rc -eq 1 ] || fail "no binaries: exit $rc, want 1: $(cat "$work/nobin.out")"
check_results "$work/out3/results.json" overall=failed binaries=failed gpu_tests=failed e2e=failed

# 4. A TERM mid-run (the device tool's limit, a deadline): the supervisor writes a
# results.json that lists every step and says failed.
(cd "$src" && GS_ACCEPT_CARRY="$work/carry" GS_ACCEPT_E2E_SEEDS=3 exec bash "$work/carry/scripts/gpu_accept.sh" "$work/out4") \
  >"$work/term.out" 2>&1 &
pid=$!
# (the summary line is printed once the step's record is complete). No
# deadline: a loaded machine may take long to get there, and a TERM sent before
# it would test something else.
until grep -q '^binaries ' "$work/out4/summary.txt" 2>/dev/null; do
  kill -0 $pid 2>/dev/null || { fail "TERM: the run ended before its binaries step was recorded: $(cat "$work/term.out")"; break; }
  sleep 0.2
done
kill -TERM $pid
wait $pid
rc=$?
[ $rc -eq 1 ] || fail "TERM: exit $rc, want 1: $(cat "$work/term.out")"
check_results "$work/out4/results.json" overall=failed binaries=passed
"$py" -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(len(d["steps"]) != 9)' "$work/out4/results.json" ||
  fail "TERM: results.json does not list all 9 steps"

# 5. The comparer: within tolerance passes, one statistic off fails.
out=$work/out/e2e/out_cpu_float64/results.json
"$py" - "$out" "$work/perturbed.json" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
s = doc["cells"][0]["layers"][0]["weight_grad_rms"]
s["median"] *= 1 + 1e-6
json.dump(doc, open(sys.argv[2], "w"))
PY
"$py" "$src/scripts/gpu_accept_compare.py" "$work/perturbed.json" "$out" --tol 1e-5 >/dev/null ||
  fail "comparer: a 1e-6 change failed a 1e-5 tolerance"
"$py" "$src/scripts/gpu_accept_compare.py" "$work/perturbed.json" "$out" --tol 1e-8 >"$work/cmp.out"
[ $? -eq 1 ] || fail "comparer: a 1e-6 change passed a 1e-8 tolerance"
grep -q "FAIL cell 0 .* layer 0 weight_grad_rms median" "$work/cmp.out" || fail "comparer output: $(cat "$work/cmp.out")"

[ $failed -eq 0 ] && echo "gpu_accept dry run: all checks passed"
exit $((failed > 0))

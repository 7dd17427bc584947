#!/usr/bin/env bash
# GPU acceptance in one call: proves the CUDA backend on a lent GPU machine, which
# arrives bare, can reach nothing, and is lent for minutes. Run from the
# repository root; scripts/gpu_accept_prep.sh (on a machine without a GPU) builds
# the binaries and stages everything this needs in gpu-carry/, and prints the call.
#
# usage: scripts/gpu_accept.sh [OUT_DIR] [--require-gpu] [--bundle DIR]
#   OUT_DIR        everything learnt goes here (default gpu-accept/); results.json always
#   --require-gpu  this is the GPU machine: "no device" (exit 77) is a failure, not a skip
#   --bundle DIR   also write results.json, summary.txt and logs.tar.gz to DIR (the
#                  device tool brings back at most 8 files)
# environment:
#   GS_ACCEPT_CARRY        the staged folder (default gpu-carry): bin/, debs/, data/, scripts/
#   GS_ACCEPT_DEADLINE     seconds for the whole run (default 470)
#   GS_ACCEPT_FORCE_BUILD  1: build on this machine even if the carried binaries run
#   GS_ACCEPT_NO_BUILD     1: never build here (tests of this script)
#   GS_ACCEPT_USE_DEBS     1: build against the carried .deb files even if the system has the deps
#   GS_ACCEPT_E2E_SEEDS    seeds per cell of the end-to-end sweeps (default 1000; 50 without a device)
#
# Steps (each under its own `timeout`, cut to what the deadline leaves):
#   probe       nvidia-smi (device, driver, clocks, MIG), nvcc/cmake/g++/compute-sanitizer versions, ldd
#   binaries    the carried ones if they run, else a build here (sm_90, GRADSWEEP_NATIVE=OFF, only
#               the three targets; Debian build deps unpacked from the carried .deb files)
#   gpu_tests   gradsweep_gpu_tests in full
#   sanitizer_* memcheck, racecheck, initcheck, synccheck in parallel (tests/gpu/sanitize.sh)
#   e2e         gradsweep run on the GPU and on the CPU, same specs, every statistic compared
#               (gpu_accept_compare.py; tolerances in docs/cuda_backend.md)
#   bench       bench_cuda_kernels --accept, with the clocks before and after
# The steps run in a worker process; the supervisor that started it writes
# results.json whatever happens (deadline, a signal, a failed step).
# Exit: 0 when every step passed (without a device: when every GPU step said
# "no device" cleanly and the rest passed), 1 otherwise.
set -u
set -o pipefail

# ---------------------------------------------------------------- JSON helpers
jstr() {  # a JSON string literal
  local s=${1-}
  s=${s//\\/\\\\}
  s=${s//\"/\\\"}
  s=${s//$'\n'/\\n}
  s=${s//$'\r'/\\r}
  s=${s//$'\t'/\\t}
  s=$(printf '%s' "$s" | tr -d '\000-\010\013\014\016-\037')
  printf '"%s"' "$s"
}
jnum() { [[ ${1-} =~ ^-?[0-9]+([.][0-9]+)?([eE][-+]?[0-9]+)?$ ]] && printf '%s' "$1" || printf 'null'; }
# The system python (standard library only): a plain python3 on PATH may be a slow shim.
py=$(command -v /usr/bin/python3 || command -v python3 || echo python3)
json_valid() { [ -s "$1" ] && "$py" -c 'import json,sys; json.load(open(sys.argv[1]))' "$1" 2>/dev/null; }
json_file_or_null() { if json_valid "$1"; then cat "$1"; else printf 'null'; fi; }

now() { date +%s; }
# Every step, in the order results.json lists them: one that never ran (deadline,
# a signal, no binaries) is reported "not finished".
step_order=(probe binaries gpu_tests sanitizer_memcheck sanitizer_racecheck sanitizer_initcheck sanitizer_synccheck e2e bench)
# step_record NAME STATUS RC SECONDS [EXTRA_JSON_MEMBERS]
step_record() {
  local name=$1 status=$2 rc=$3 secs=$4 extra=${5-}
  {
    printf '{"status": %s, "exit_code": %s, "seconds": %s' "$(jstr "$status")" "$(jnum "$rc")" "$(jnum "$secs")"
    [ -n "$extra" ] && printf ', %s' "$extra"
    printf ', "log": %s}' "$(jstr "logs/$name.log")"
  } >"$out/steps/$name.json"
  printf '%-22s %-12s exit %-4s %5ss\n' "$name" "$status" "$rc" "$secs" | tee -a "$out/summary.txt"
}

# Seconds a step may take: its cap, cut so that the later steps keep their minimum
# and the supervisor keeps 10 s to write results.
step_budget() {
  local cap=$1 keep_for_later=$2
  local left=$((t_end - $(now) - keep_for_later - 10))
  [ $left -lt $cap ] && cap=$left
  [ $cap -lt 1 ] && cap=1
  echo $cap
}

# Ends a process and every process under it, by id: stopped first so that it
# starts nothing new while its children are ended.
kill_tree() {
  local p=$1 c
  kill -STOP "$p" 2>/dev/null
  for c in $(ps -o pid= --ppid "$p" 2>/dev/null); do kill_tree "$c"; done
  kill -TERM "$p" 2>/dev/null
  kill -CONT "$p" 2>/dev/null
}

# ---------------------------------------------------------------- results.json
# Written by the supervisor from what the worker left in $out: step records,
# meta (device, build mode, commit), compare_*.json, bench.json or its ROW lines.
meta() { sed -n "s/^$1\t//p" "$out/meta" 2>/dev/null | tail -1; }
finalize() {
  local secs=$(( $(now) - t_start ))
  local overall=passed s st
  for s in "${step_order[@]}"; do
    # Never started, or stopped while being written.
    json_valid "$out/steps/$s.json" || step_record "$s" "not finished" "" "" >/dev/null

    st=$(sed -n 's/^{"status": "\([^"]*\)".*/\1/p' "$out/steps/$s.json")
    case $st in
      passed) ;;
      "no device" | unavailable) [ "$overall" = passed ] && overall="no device" ;;
      *) overall=failed ;;
    esac
  done
  [ $require_gpu -eq 1 ] && [ "$overall" = "no device" ] && overall=failed
  local commit carried_commit mode device driver mig build_mode
  commit=$(meta commit) carried_commit=$(meta carried_commit) mode=$(meta mode) device=$(meta device)
  driver=$(meta driver) mig=$(meta mig) build_mode=$(meta build_mode)
  {
    printf '{\n "format": "gradsweep-gpu-accept/1",\n'
    printf ' "status": %s,\n' "$(jstr "$overall")"
    printf ' "commit": %s,\n' "$(jstr "${commit-}")"
    printf ' "carried_commit": %s,\n' "$(jstr "${carried_commit-}")"
    printf ' "mode": %s,\n' "$(jstr "${mode-}")"
    printf ' "require_gpu": %s,\n' "$([ $require_gpu -eq 1 ] && echo true || echo false)"
    printf ' "device": %s,\n' "$(jstr "${device-}")"
    printf ' "driver": %s,\n' "$(jstr "${driver-}")"
    printf ' "mig": %s,\n' "$(jstr "${mig-}")"
    printf ' "build_mode": %s,\n' "$(jstr "${build_mode:-none}")"
    printf ' "started": %s,\n' "$(jstr "$(date -u -d "@$t_start" +%Y-%m-%dT%H:%M:%SZ 2>/dev/null)")"
    printf ' "deadline_s": %s,\n' "$deadline_s"
    printf ' "seconds": %s,\n' "$secs"
    printf ' "steps": {'
    local first=1
    for s in "${step_order[@]}"; do
      [ $first -eq 0 ] && printf ','
      first=0
      printf '\n  %s: ' "$(jstr "$s")"
      json_file_or_null "$out/steps/$s.json"
    done
    printf '\n },\n'
    printf ' "deviations": ['
    first=1
    for f in "$out"/e2e/compare_*.json; do
      [ -e "$f" ] || continue
      [ $first -eq 0 ] && printf ','
      first=0
      printf '\n  '
      json_file_or_null "$f"
    done
    printf '\n ],\n'
    printf ' "clocks_before_bench": %s,\n' "$(jstr "$(cat "$out/clocks_before.csv" 2>/dev/null)")"
    printf ' "clocks_after_bench": %s,\n' "$(jstr "$(cat "$out/clocks_after.csv" 2>/dev/null)")"
    printf ' "bench": '
    if json_valid "$out/bench.json"; then
      cat "$out/bench.json"
    elif [ -f "$out/logs/bench.log" ] && grep -q '^ROW ' "$out/logs/bench.log"; then
      # Killed before the end: the rows it printed.
      printf '{"rows": ['
      grep '^ROW ' "$out/logs/bench.log" | sed 's/^ROW //' | paste -sd, -
      printf ']}'
    else
      printf 'null'
    fi
    printf '\n}\n'
  } >"$out/results.json.tmp" && mv "$out/results.json.tmp" "$out/results.json"
  printf '%-22s %s (%ss of %ss)\n' "overall" "$overall" "$secs" "$deadline_s" | tee -a "$out/summary.txt"
  if [ -n "$bundle" ]; then
    # The device tool brings back files of at most 16 MiB: a log that a flood of
    # sanitizer reports made huge keeps its first and last 2 MiB.
    local f
    for f in $(find "$out/logs" -type f -size +4M 2>/dev/null); do
      { head -c 2M "$f"; printf '\n[... %s bytes cut ...]\n' "$(($(stat -c %s "$f") - (4 << 20)))"; tail -c 2M "$f"; } >"$f.cut" &&
        mv "$f.cut" "$f"
    done
    mkdir -p "$bundle"
    cp "$out/results.json" "$out/summary.txt" "$bundle/" 2>/dev/null
    tar -czf "$bundle/logs.tar.gz" -C "$(dirname "$out")" --exclude='*/e2e/out_*' --exclude='*/sanitize/*/out_*' \
      "$(basename "$out")" 2>/dev/null
  fi
  rm -rf "$work"
  [ "$overall" = failed ] && return 1
  return 0
}

# ---------------------------------------------------------------- supervisor
# The steps run in a worker (this script again, GS_ACCEPT_ROLE=worker). The
# supervisor only waits: at the deadline or on a signal it ends the worker and
# everything the worker started (by process id), then writes results.json. (A
# trap inside the worker could fire while bash parses a command substitution,
# which bash does not survive cleanly; waiting is safe.)
if [ "${GS_ACCEPT_ROLE:-}" != worker ]; then
  t_start=$(date +%s)
  out=gpu-accept bundle="" require_gpu=0
  while [ $# -gt 0 ]; do
    case $1 in
      --require-gpu) require_gpu=1 ;;
      --bundle) bundle=${2:?--bundle needs a folder}; shift ;;
      -h | --help) sed -n '2,30p' "$0"; exit 0 ;;
      -*) echo "gpu_accept.sh: unknown option $1" >&2; exit 2 ;;
      *) out=$1 ;;
    esac
    shift
  done
  root=$(pwd)
  carry=${GS_ACCEPT_CARRY:-gpu-carry}
  case $carry in /*) ;; *) carry=$root/$carry ;; esac
  deadline_s=${GS_ACCEPT_DEADLINE:-470}
  t_end=$((t_start + deadline_s))
  rm -rf "$out"
  mkdir -p "$out/logs" "$out/steps" || { echo "gpu_accept.sh: cannot create $out" >&2; exit 2; }
  out=$(cd "$out" && pwd)
  work=$(mktemp -d "${TMPDIR:-/tmp}/gs-accept.XXXXXX")
  echo "gpu_accept.sh: output $out, deadline ${deadline_s}s" | tee "$out/summary.txt"
  # gpu_accept_prep.sh gzips the binaries (their kernel images put three of them
  # past the 64 MiB the device tool carries): unpacked here, once.
  for gz in "$carry"/bin/*.gz; do
    [ -f "$gz" ] && { gunzip -f "$gz" || echo "gpu_accept.sh: cannot unpack $gz" >&2; }
  done
  GS_ACCEPT_ROLE=worker GS_ACCEPT_OUT=$out GS_ACCEPT_WORK=$work GS_ACCEPT_ROOT=$root GS_ACCEPT_CARRY=$carry \
    GS_ACCEPT_T_START=$t_start GS_ACCEPT_T_END=$t_end GS_ACCEPT_REQUIRE_GPU=$require_gpu bash "$0" </dev/null &
  worker=$!
  sleep $((deadline_s + 15)) </dev/null >/dev/null 2>&1 &
  sleeper=$!
  stopped=""
  trap 'stopped="a signal"' INT TERM
  wait -n "$worker" "$sleeper"
  if kill -0 "$worker" 2>/dev/null; then
    [ -z "$stopped" ] && stopped="the deadline"
    echo "gpu_accept.sh: stopped by $stopped" | tee -a "$out/summary.txt"
    kill_tree "$worker"
  fi
  wait "$worker" 2>/dev/null
  kill "$sleeper" 2>/dev/null
  wait "$sleeper" 2>/dev/null
  trap '' INT TERM
  finalize
  exit $?
fi

# ---------------------------------------------------------------- worker
out=$GS_ACCEPT_OUT work=$GS_ACCEPT_WORK root=$GS_ACCEPT_ROOT carry=$GS_ACCEPT_CARRY
t_start=$GS_ACCEPT_T_START t_end=$GS_ACCEPT_T_END require_gpu=$GS_ACCEPT_REQUIRE_GPU
here=$(cd "$(dirname "$0")" && pwd)
meta_set() { printf '%s\t%s\n' "$1" "$2" >>"$out/meta"; }

# ---------------------------------------------------------------- probe
t0=$(now)
{
  echo "== uname"; uname -a
  echo "== os"; cat /etc/os-release 2>/dev/null | head -4
  echo "== cpus / memory"; nproc; free -g 2>/dev/null | head -2
  echo "== nvidia-smi -L"; timeout 20 nvidia-smi -L
  echo "== nvidia-smi query"
  timeout 20 nvidia-smi --query-gpu=name,driver_version,memory.total,memory.used,clocks.sm,clocks.mem,clocks.max.sm,clocks.max.mem,mig.mode.current,temperature.gpu,power.draw,compute_mode --format=csv
  echo "== nvidia-smi -q"; timeout 20 nvidia-smi -q
  echo "== nvcc"; (command -v nvcc || ls /usr/local/cuda/bin/nvcc) && { nvcc --version 2>/dev/null || /usr/local/cuda/bin/nvcc --version; }
  echo "== cmake"; cmake --version
  echo "== g++"; g++ --version
  echo "== compute-sanitizer"; { compute-sanitizer --version 2>/dev/null || /usr/local/cuda/bin/compute-sanitizer --version; }
  echo "== python3"; "$py" --version
  echo "== git"; git -C "$root" rev-parse HEAD; git -C "$root" status --short | head -20
  echo "== carry"; ls -la "$carry" "$carry/bin" 2>&1; cat "$carry/manifest.txt" 2>&1
  for b in gradsweep gradsweep_gpu_tests bench_cuda_kernels; do
    echo "== ldd $b"; ldd "$carry/bin/$b" 2>&1
  done
} >"$out/logs/probe.log" 2>&1
smi=$(timeout 20 nvidia-smi --query-gpu=name,driver_version,mig.mode.current --format=csv,noheader 2>/dev/null | head -1)
if [ -n "$smi" ]; then
  device=$(echo "$smi" | cut -d, -f1 | sed 's/^ *//;s/ *$//')
  driver=$(echo "$smi" | cut -d, -f2 | sed 's/^ *//;s/ *$//')
  mig=$(echo "$smi" | cut -d, -f3 | sed 's/^ *//;s/ *$//')
  mode=gpu
else
  device="" driver="" mig=""
  mode="no device"
fi
[ $require_gpu -eq 1 ] && mode=gpu
carried_commit=$(sed -n 's/^commit: //p' "$carry/manifest.txt" 2>/dev/null | head -1)
# The device tool's copy of the tree may have no .git: then the carried manifest's.
commit=$(git -C "$root" rev-parse HEAD 2>/dev/null || echo "${carried_commit%% *}")
meta_set commit "$commit"
meta_set carried_commit "$carried_commit"
meta_set mode "$mode"
meta_set device "$device"
meta_set driver "$driver"
meta_set mig "$mig"
if [ -n "$smi" ]; then
  step_record probe passed 0 $(( $(now) - t0 )) "\"nvidia_smi\": $(jstr "$smi")"
elif [ $require_gpu -eq 1 ]; then
  step_record probe failed 1 $(( $(now) - t0 )) "\"nvidia_smi\": \"no GPU listed\""
else
  step_record probe "no device" 0 $(( $(now) - t0 )) "\"nvidia_smi\": \"no GPU listed\""
fi

# A step whose program says "no device": a failure on the GPU machine, else "no device".
no_device_status() { [ "$mode" = gpu ] && echo failed || echo "no device"; }

# ---------------------------------------------------------------- binaries
t0=$(now)
bin_ok() {  # DIR: do the three binaries start here?
  local d=$1 rc
  [ -x "$d/gradsweep" ] && [ -x "$d/gradsweep_gpu_tests" ] && [ -x "$d/bench_cuda_kernels" ] || return 1
  timeout 30 "$d/gradsweep" --version >/dev/null 2>&1 || return 1
  timeout 60 "$d/gradsweep_gpu_tests" --list-test-names-only >/dev/null 2>&1
  rc=$?
  [ $rc -eq 0 ] || [ $rc -eq 77 ] || return 1
  timeout 30 "$d/bench_cuda_kernels" --help >/dev/null 2>&1 || return 1
}
bindir=""
build_mode=none
echo "== carried binaries in $carry/bin (ldd in logs/probe.log)" >"$out/logs/binaries.log"
if [ "${GS_ACCEPT_FORCE_BUILD:-0}" != 1 ] && bin_ok "$carry/bin"; then
  bindir=$carry/bin
  build_mode=prebuilt
  echo "carried binaries run" >>"$out/logs/binaries.log"
elif [ "${GS_ACCEPT_NO_BUILD:-0}" = 1 ]; then
  echo "carried binaries do not run, and GS_ACCEPT_NO_BUILD=1" >>"$out/logs/binaries.log"
else
  echo "== building here (carried binaries missing or not runnable, or GS_ACCEPT_FORCE_BUILD=1)" >>"$out/logs/binaries.log"
  budget=$(step_budget 200 250)
  cat >"$work/build.sh" <<'BUILD'
set -eux
root=$1 carry=$2 work=$3
prefix=()
if [ "${GS_ACCEPT_USE_DEBS:-0}" = 1 ] || [ ! -f /usr/include/nlohmann/json.hpp ] ||
   ! ls -d /usr/lib/cmake/Catch2 /usr/share/cmake/Catch2 /usr/local/lib/cmake/Catch2 >/dev/null 2>&1; then
  # Nothing can be fetched on the GPU machine: unpack the carried Debian
  # packages into a private prefix (never into /).
  ls "$carry"/debs/*.deb
  mkdir -p "$work/deps"
  for d in "$carry"/debs/*.deb; do dpkg -x "$d" "$work/deps"; done
  prefix=(-DCMAKE_PREFIX_PATH="$work/deps/usr")
fi
nvcc_path=$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)
cmake -S "$root" -B "$work/build" -DCMAKE_BUILD_TYPE=Release -DGRADSWEEP_NATIVE=OFF \
  -DCMAKE_CUDA_ARCHITECTURES=90 -DCMAKE_CUDA_COMPILER="$nvcc_path" "${prefix[@]}"
cmake --build "$work/build" -j"$(nproc)" --target gradsweep gradsweep_gpu_tests bench_cuda_kernels
mkdir -p "$work/bin"
cp "$work/build/gradsweep" "$work/build/tests/gpu/gradsweep_gpu_tests" "$work/build/bench_cuda_kernels" "$work/bin/"
BUILD
  # timeout ends the whole process group (cmake, make, nvcc), not only bash.
  timeout -k 10 "$budget" bash "$work/build.sh" "$root" "$carry" "$work" >>"$out/logs/binaries.log" 2>&1
  echo "build exit $?" >>"$out/logs/binaries.log"
  for b in "$work"/bin/*; do echo "== ldd $b"; ldd "$b"; done >>"$out/logs/binaries.log" 2>&1
  if bin_ok "$work/bin"; then
    bindir=$work/bin
    build_mode="built here"
  fi
fi
meta_set build_mode "$build_mode"
if [ -n "$bindir" ]; then
  step_record binaries passed 0 $(( $(now) - t0 )) "\"build_mode\": $(jstr "$build_mode"), \"dir\": $(jstr "$bindir")"
else
  step_record binaries failed 1 $(( $(now) - t0 )) "\"build_mode\": \"none\""
fi
# Test data: the carried copy (same commit as the binaries), else this checkout's.
data_root=$root
[ -d "$carry/data/tests/data" ] && data_root=$carry/data
export GS_SOURCE_DIR=$data_root
scripts_dir=$here
[ -f "$carry/scripts/sanitize.sh" ] && scripts_dir=$carry/scripts
sanitize_sh=$scripts_dir/sanitize.sh
[ -f "$sanitize_sh" ] || sanitize_sh=$root/tests/gpu/sanitize.sh
compare_py=$scripts_dir/gpu_accept_compare.py
[ -f "$compare_py" ] || compare_py=$root/scripts/gpu_accept_compare.py

if [ -z "$bindir" ]; then
  for s in gpu_tests sanitizer_memcheck sanitizer_racecheck sanitizer_initcheck sanitizer_synccheck e2e bench; do
    echo "no binaries" >"$out/logs/$s.log"
    step_record $s failed "" 0 "\"reason\": \"no binaries\""
  done
  exit 1
fi

# ---------------------------------------------------------------- sanitizers (background)
tools=(memcheck racecheck initcheck synccheck)
declare -A san_pid san_t0 san_budget
for tool in "${tools[@]}"; do
  san_budget[$tool]=$(step_budget 200 180)
  san_t0[$tool]=$(now)
  timeout -k 5 "${san_budget[$tool]}" bash "$sanitize_sh" "$bindir/gradsweep" "$bindir/gradsweep_gpu_tests" \
    "$out/sanitize/$tool" "$tool" >"$out/logs/sanitizer_$tool.log" 2>&1 &
  san_pid[$tool]=$!
done

# ---------------------------------------------------------------- GPU tests
t0=$(now)
budget=$(step_budget 230 150)
timeout -k 10 "$budget" "$bindir/gradsweep_gpu_tests" -d yes >"$out/logs/gpu_tests.log" 2>&1
rc=$?
secs=$(( $(now) - t0 ))
# Catch2 v2's last line: "All tests passed (A assertions in C test cases)" or
# "test cases: C | P passed | F failed" + "assertions: ...".
summary_line=$(grep -E '^(All tests passed|test cases:)' "$out/logs/gpu_tests.log" | tail -1)
assert_line=$(grep -E '^assertions:' "$out/logs/gpu_tests.log" | tail -1)
cases_total=$(echo "$summary_line" | grep -oE '[0-9]+ test case' | grep -oE '[0-9]+')
[ -z "$cases_total" ] && cases_total=$(echo "$summary_line" | sed -n 's/^test cases: *\([0-9]*\).*/\1/p')
cases_failed=$(echo "$summary_line" | grep -oE '[0-9]+ failed' | grep -oE '[0-9]+' | head -1)
[ -z "$cases_failed" ] && [ $rc -eq 0 ] && cases_failed=0
skipped_cases=$(grep -c 'SKIPPED' "$out/logs/gpu_tests.log")
extra="\"test_cases\": $(jnum "$cases_total"), \"failed_test_cases\": $(jnum "$cases_failed"), \"skipped_messages\": $skipped_cases, \"summary\": $(jstr "$summary_line $assert_line")"
case $rc in
  0) step_record gpu_tests passed 0 $secs "$extra" ;;
  77) step_record gpu_tests "$(no_device_status)" 77 $secs "$extra" ;;
  124 | 137) step_record gpu_tests timeout $rc $secs "$extra" ;;
  *) step_record gpu_tests failed $rc $secs "$extra" ;;
esac

# ---------------------------------------------------------------- sanitizers (collect)
for tool in "${tools[@]}"; do
  wait "${san_pid[$tool]}"
  rc=$?
  log=$out/logs/sanitizer_$tool.log
  secs=$(( $(now) - ${san_t0[$tool]} ))
  errors=$(grep -oE 'ERROR SUMMARY: [0-9]+' "$log" | awk '{s += $3} END {print s + 0}')
  runs=$(grep -c '^== ' "$log")
  extra="\"errors\": $errors, \"runs\": $runs, \"timeout_s\": ${san_budget[$tool]}"
  if [ $rc -eq 0 ]; then
    step_record "sanitizer_$tool" passed 0 $secs "$extra"
  elif [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
    step_record "sanitizer_$tool" timeout $rc $secs "$extra"
  elif grep -q '^UNAVAILABLE' "$log"; then
    step_record "sanitizer_$tool" unavailable $rc $secs "$extra, \"reason\": $(jstr "$(grep -m1 '^UNAVAILABLE' "$log")")"
  elif grep -q '^SKIPPED: no CUDA device' "$log"; then
    step_record "sanitizer_$tool" "$(no_device_status)" $rc $secs "$extra"
  else
    step_record "sanitizer_$tool" failed $rc $secs "$extra"
  fi
done

# ---------------------------------------------------------------- end to end: GPU vs CPU
t0=$(now)
mkdir -p "$out/e2e"
seeds=${GS_ACCEPT_E2E_SEEDS:-}
[ -z "$seeds" ] && { [ "$mode" = gpu ] && seeds=1000 || seeds=50; }
# float64: every activation, relu too (its kink is 1e-16 wide there); float32:
# smooth activations only, since one float32 relu unit on the kink changes its
# network's gradients by O(1) (the GPU tests handle that per network, see
# tests/gpu/kink_reference.hpp; statistics over seeds cannot). Widths 3/16 (a
# thread per network), 40 (32 threads), 200 (64); batch 3; depth 2 and 6.
for precision in float64 float32; do
  if [ $precision = float64 ]; then acts='"relu", "gelu", "tanh", "leaky_relu"'; else acts='"gelu", "tanh", "silu"'; fi
  cat >"$out/e2e/spec_$precision.json" <<JSON
{
  "name": "gpu-accept-e2e-$precision",
  "seeds": {"count": $seeds, "first": 17},
  "rng": "philox",
  "precision": "$precision",
  "grid": {"width": [3, 16, 40, 200], "depth": [2, 6], "activation": [$acts], "shortcut": [false, true]},
  "network": {"output_dim": 1, "bias": true, "last_activation": false},
  "input": {"distribution": "normal", "batch": 3},
  "loss": {"kind": "mse", "target": 0.25}
}
JSON
done
budget=$(step_budget 100 80)
e2e_deadline=$(( $(now) + budget ))
e2e_left() { local l=$((e2e_deadline - $(now))); [ $l -lt 1 ] && l=1; echo $l; }
(
  # exit 0: compared and within tolerance; 1: a failure; 3: no GPU run (else fine).
  fail=0 nogpu=0
  for precision in float64 float32; do
    spec=$out/e2e/spec_$precision.json
    echo "== cpu $precision"
    timeout -k 5 "$(e2e_left)" "$bindir/gradsweep" run "$spec" -o "$out/e2e/out_cpu_$precision" --backend cpu --quiet || fail=1
    echo "== cuda $precision"
    timeout -k 5 "$(e2e_left)" "$bindir/gradsweep" run "$spec" -o "$out/e2e/out_cuda_$precision" --backend cuda --quiet
    r=$?
    if [ $r -eq 0 ]; then
      tol=1e-8 slack=0
      [ $precision = float32 ] && tol=1e-3 slack=0.001
      timeout -k 5 "$(e2e_left)" "$py" "$compare_py" "$out/e2e/out_cuda_$precision/results.json" \
        "$out/e2e/out_cpu_$precision/results.json" --tol $tol --zero-slack $slack \
        --json "$out/e2e/compare_$precision.json" --label "cuda vs cpu, $precision" || fail=1
    else
      echo "cuda run: exit $r"
      nogpu=1
      # No GPU run to compare: still prove the comparer on the CPU output against
      # itself (zero deviation), so a dry run exercises all but the device.
      "$py" "$compare_py" "$out/e2e/out_cpu_$precision/results.json" "$out/e2e/out_cpu_$precision/results.json" \
        --tol 0 --label "comparer self-check, cpu vs cpu, $precision" || fail=1
    fi
  done
  [ $fail -ne 0 ] && exit 1
  [ $nogpu -ne 0 ] && exit 3
  exit 0
) >"$out/logs/e2e.log" 2>&1
rc=$?
secs=$(( $(now) - t0 ))
max64=$(sed -n 's/^ "max_rel_dev": \(.*\),$/\1/p' "$out/e2e/compare_float64.json" 2>/dev/null)
max32=$(sed -n 's/^ "max_rel_dev": \(.*\),$/\1/p' "$out/e2e/compare_float32.json" 2>/dev/null)
extra="\"seeds_per_cell\": $seeds, \"max_rel_dev_float64\": $(jnum "$max64"), \"max_rel_dev_float32\": $(jnum "$max32")"
case $rc in
  0) step_record e2e passed 0 $secs "$extra" ;;
  3) step_record e2e "$(no_device_status)" 3 $secs "$extra, \"comparer_self_check\": \"passed\"" ;;
  124 | 137) step_record e2e timeout $rc $secs "$extra" ;;
  *) step_record e2e failed $rc $secs "$extra" ;;
esac

# ---------------------------------------------------------------- bench (alone, last)
t0=$(now)
clocks() { timeout 10 nvidia-smi --query-gpu=clocks.sm,clocks.mem,clocks.max.sm,temperature.gpu,power.draw,clocks_throttle_reasons.active --format=csv 2>&1; }
clocks >"$out/clocks_before.csv"
budget=$(step_budget 110 0)
timeout -k 5 "$budget" "$bindir/bench_cuda_kernels" --accept --seconds 0.5 --json "$out/bench.json" >"$out/logs/bench.log" 2>&1
rc=$?
clocks >"$out/clocks_after.csv"
secs=$(( $(now) - t0 ))
rows=$(grep -c '^ROW ' "$out/logs/bench.log")
if grep -q '^SKIPPED: no CUDA device' "$out/logs/bench.log"; then
  step_record bench "$(no_device_status)" $rc $secs "\"rows\": 0"
elif [ $rc -eq 0 ] && [ "$rows" -eq 8 ]; then
  step_record bench passed 0 $secs "\"rows\": $rows"
elif [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
  step_record bench timeout $rc $secs "\"rows\": $rows"
else
  step_record bench failed $rc $secs "\"rows\": $rows"
fi
exit 0

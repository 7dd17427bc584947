#!/usr/bin/env bash
# CI: the test suite again, while busy loops keep every core busy (one per core,
# at the tests' own priority), so a test whose outcome depends on timing, load
# or scheduling fails the submission that adds it rather than a later one at
# random. Uses the build of the test stage (build/; builds it if missing). The
# hog processes are always killed, whatever ends this script.
#   GS_LOAD_REPEAT   runs of the suite (default 1): ctest --repeat until-fail:N
#   GS_LOAD_SECONDS  bound on the whole stage's ctest (default 2400): the suite
#                    took ~1100 s under this load on CI's 2 cores (2026-12-01)
#   GS_LOAD_EXCLUDE  ctest label regex to leave out (default "slow": the [slow]
#                    Catch tests are statistics over fixed seeds, with no timing
#                    in them, and take minutes under load)
#   GS_LOAD_BUILD    the build directory (default build/)
#   extra arguments go to ctest (e.g. -R 'cli\.')
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${GS_LOAD_BUILD:-$root/build}
t0=$(date +%s)
repeat=${GS_LOAD_REPEAT:-1}
limit=${GS_LOAD_SECONDS:-2400}
exclude=${GS_LOAD_EXCLUDE-slow}
[[ $repeat =~ ^[1-9][0-9]*$ && $limit =~ ^[1-9][0-9]*$ ]] || { echo "ci_load: GS_LOAD_REPEAT and GS_LOAD_SECONDS must be positive integers" >&2; exit 2; }

if [[ ! -f $build/CTestTestfile.cmake || ! -x $build/gradsweep ]]; then
    [[ $build == "$root/build" ]] || { echo "ci_load: no build in $build" >&2; exit 2; }
    echo "ci_load: no build in $build; building it"
    "$root/scripts/build.sh"
fi

hogs=()
stop_hogs() {
    local pid
    for pid in "${hogs[@]}"; do kill "$pid" 2> /dev/null || true; done
    for pid in "${hogs[@]}"; do wait "$pid" 2> /dev/null || true; done
    hogs=()
}
trap stop_hogs EXIT
trap 'exit 143' TERM
trap 'exit 130' INT
cores=$(nproc)
for ((i = 0; i < cores; i++)); do
    (trap - EXIT TERM INT; while :; do :; done) &
    hogs+=($!)
done
echo "ci_load: $cores busy loops (pids ${hogs[*]}); ctest x$repeat, at most ${limit}s"

args=(--output-on-failure -j"$cores" --repeat "until-fail:$repeat")
[[ -n $exclude ]] && args+=(-LE "$exclude")
cd "$build"
set +e
timeout -k 30 "$limit" ctest "${args[@]}" "$@"
rc=$?
set -e
stop_hogs
if ((rc == 124 || rc == 137)); then
    echo "ci_load: FAILED: the suite did not finish within ${limit}s under load (GS_LOAD_SECONDS)" >&2
elif ((rc != 0)); then
    echo "ci_load: FAILED (ctest exit $rc): a test failed under load; it depends on timing, load or scheduling" >&2
else
    echo "ci_load: passed in $(($(date +%s) - t0))s"
fi
exit "$rc"

#!/usr/bin/env bash
# CI: the Slurm path end to end on a real single-node Slurm (tests/cli/slurm.sh):
# installs slurm-wlm and munge with apt-get when missing, builds gradsweep when
# needed, then starts munged + slurmctld + slurmd itself, submits a sweep with
# scripts/slurm/submit.sh and checks the merged results against an unsharded run.
#   scripts/ci_slurm.sh [BINARY]    (default: build/gradsweep)
set -euo pipefail
t0=$(date +%s)
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${1:-${GRADSWEEP_BIN:-$root/build/gradsweep}}

# A stage that cannot run is a failure, not a pass: CI must not go green
# without the Slurm test having run. GS_SLURM_ALLOW_SKIP=1 turns this into a
# loud skip (exit 0) for machines where that is known and accepted.
if [[ $(id -u) != 0 ]]; then
    if [[ ${GS_SLURM_ALLOW_SKIP:-0} == 1 ]]; then
        echo "ci_slurm: SKIPPED (GS_SLURM_ALLOW_SKIP=1): needs root (to install Slurm and run slurmd)" >&2
        exit 0
    fi
    echo "ci_slurm: FAILED: needs root (to install Slurm and run slurmd); GS_SLURM_ALLOW_SKIP=1 to skip" >&2
    exit 1
fi
missing=()
command -v slurmctld > /dev/null && command -v slurmd > /dev/null && command -v sbatch > /dev/null || missing+=(slurm-wlm)
command -v munged > /dev/null || missing+=(munge)
if ((${#missing[@]})); then
    echo "ci_slurm: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y --no-install-recommends "${missing[@]}" > /tmp/ci_slurm_apt.log 2>&1 \
        || { apt-get update > /dev/null 2>&1 && apt-get install -y --no-install-recommends "${missing[@]}" >> /tmp/ci_slurm_apt.log 2>&1; } \
        || { tail -20 /tmp/ci_slurm_apt.log >&2; echo "ci_slurm: FAILED: cannot install ${missing[*]}" >&2; exit 1; }
fi
[[ -r /etc/munge/munge.key ]] || { command -v mungekey > /dev/null && mungekey --create --keyfile=/etc/munge/munge.key; } \
    || { echo "ci_slurm: FAILED: no /etc/munge/munge.key" >&2; exit 1; }
[[ -x $bin ]] || "$root/scripts/build.sh"

work=$(mktemp -d /tmp/gradsweep_ci_slurm.XXXXXX)
set +e
timeout 300 bash "$root/tests/cli/slurm.sh" "$bin" "$root" "$work"
rc=$?
set -e
case $rc in
    0) rm -rf "$work"; echo "ci_slurm: passed in $(( $(date +%s) - t0 ))s" ;;
    77) echo "ci_slurm: FAILED: the Slurm test skipped although Slurm was installed" >&2; exit 1 ;;
    *) echo "ci_slurm: FAILED (exit $rc); logs under $work" >&2; exit 1 ;;
esac

#!/usr/bin/env bash
# One task of the array that scripts/slurm/submit.sh submits: shard K of N, with
# K and N from the Slurm array variables (--shard auto). --resume: a requeued
# task continues from its checkpoint; a finished one just rewrites its manifest.
#   shard_task.sh BIN SPEC OUT [gradsweep options...]
# BIN, SPEC and OUT are absolute paths (submit.sh makes them so).
set -euo pipefail
bin=$1 spec=$2 out=$3
shift 3
# Checked before any arithmetic: bash evaluates a variable's text as an expression there.
for v in SLURM_ARRAY_TASK_ID SLURM_ARRAY_TASK_MIN; do
    [[ -z ${!v:-} || ${!v} =~ ^[0-9]+$ ]] || { echo "shard_task.sh: $v is not a number: ${!v}" >&2; exit 2; }
done
[[ -n ${SLURM_ARRAY_TASK_ID:-} ]] || { echo "shard_task.sh: SLURM_ARRAY_TASK_ID is not set (run it through submit.sh)" >&2; exit 2; }
k=$((10#$SLURM_ARRAY_TASK_ID - 10#${SLURM_ARRAY_TASK_MIN:-0}))
threads=()
[[ -n ${SLURM_CPUS_PER_TASK:-} ]] && threads=(--threads "$SLURM_CPUS_PER_TASK")
exec "$bin" run "$spec" -o "$out/shard-$k" --shard auto --resume "${threads[@]}" "$@"

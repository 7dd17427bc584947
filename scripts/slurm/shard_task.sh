#!/usr/bin/env bash
# One task of the array that scripts/slurm/submit.sh submits: shard K of N, with
# K and N from the Slurm array variables (--shard auto). --resume: a requeued
# task continues from its checkpoint; a finished one just rewrites its manifest.
#   shard_task.sh BIN SPEC OUT [gradsweep options...]
set -euo pipefail
bin=$1 spec=$2 out=$3
shift 3
k=$((SLURM_ARRAY_TASK_ID - ${SLURM_ARRAY_TASK_MIN:-0}))
threads=()
[[ -n ${SLURM_CPUS_PER_TASK:-} ]] && threads=(--threads "$SLURM_CPUS_PER_TASK")
exec "$bin" run "$spec" -o "$out/shard-$k" --shard auto --resume "${threads[@]}" "$@"

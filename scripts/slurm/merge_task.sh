#!/usr/bin/env bash
# The merge job of scripts/slurm/submit.sh: runs once every shard succeeded.
# Names every shard directory explicitly, so a missing one is an error, not a
# silently smaller sweep.
#   merge_task.sh BIN OUT N
set -euo pipefail
bin=$1 out=$2 n=$3
dirs=()
for ((k = 0; k < n; k++)); do dirs+=("$out/shard-$k"); done
exec "$bin" merge "${dirs[@]}" -o "$out/merged" --force

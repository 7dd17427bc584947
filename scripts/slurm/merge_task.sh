#!/usr/bin/env bash
# The merge job of scripts/slurm/submit.sh: runs once every shard succeeded.
# Names every shard directory explicitly, so a missing one is an error, not a
# silently smaller sweep.
#   merge_task.sh BIN OUT N      (BIN and OUT absolute paths, as submit.sh gives them)
set -euo pipefail
bin=$1 out=$2 n=$3
# Checked before the loop: bash evaluates a variable's text as an expression in (( )).
[[ $n =~ ^[1-9][0-9]*$ ]] || { echo "merge_task.sh: N must be a positive integer, got \"$n\"" >&2; exit 2; }
dirs=()
for ((k = 0; k < 10#$n; k++)); do dirs+=("$out/shard-$k"); done
exec "$bin" merge "${dirs[@]}" -o "$out/merged" --force

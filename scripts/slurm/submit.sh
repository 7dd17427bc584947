#!/usr/bin/env bash
# Submits a sweep to Slurm as a job array of N shards plus a merge job that runs
# once every shard has succeeded (--dependency=afterok).
#
#   scripts/slurm/submit.sh SPEC OUT --shards N [--gradsweep BIN] [--seed-block B] [sbatch options...]
#
# Shard K runs `gradsweep run SPEC -o OUT/shard-K --shard auto --resume` (so a
# requeued or resubmitted task continues where it stopped); the merge job runs
# `gradsweep merge OUT/shard-0 ... OUT/shard-(N-1) -o OUT/merged`. Every other
# option goes to both sbatch calls (e.g. --partition=gpu --gres=gpu:1 --time=2:00:00
# --cpus-per-task=8). Logs: OUT/logs/. Job ids: OUT/jobs.env. Prints the two ids.
# The binary: --gradsweep BIN, else $GRADSWEEP, else the build tree's or the
# installed one beside this script (PREFIX/share/gradsweep/scripts/slurm ->
# PREFIX/bin), else gradsweep on PATH.
#
# Paths may hold any character but one: every value stays one quoted word (no
# eval, no word splitting) and paths are made absolute before they reach a
# command (so one starting with '-' is never an option). The log names given to
# sbatch --output are patterns to Slurm: a '%' in OUT is written '%%', and OUT
# may not contain a '\', which Slurm drops from every log path (it would write
# the logs to a directory that does not exist).
set -euo pipefail
self=${BASH_SOURCE[0]}
if [[ $self == */* ]]; then here=${self%/*}; else here=.; fi
[[ $here == /* ]] || here=$PWD/$here
usage() { echo "usage: $0 SPEC OUT --shards N [--gradsweep BIN] [--seed-block B] [sbatch options...]" >&2; exit 2; }
(($# >= 2)) || usage
spec=$1 out=$2
shift 2
shards="" bin=${GRADSWEEP:-} block=""
sbatch_opts=()
while (($#)); do
    case $1 in
        --shards) shards=${2:-}; shift 2 ;;
        --shards=*) shards=${1#*=}; shift ;;
        --gradsweep) bin=${2:-}; shift 2 ;;
        --gradsweep=*) bin=${1#*=}; shift ;;
        --seed-block) block=${2:-}; shift 2 ;;
        --seed-block=*) block=${1#*=}; shift ;;
        *) sbatch_opts+=("$1"); shift ;;
    esac
done
[[ $shards =~ ^[1-9][0-9]*$ ]] || { echo "submit.sh: --shards N (N >= 1) is required" >&2; usage; }
[[ -z $block || $block =~ ^[1-9][0-9]*$ ]] || { echo "submit.sh: --seed-block expects a positive integer, got \"$block\"" >&2; exit 2; }
if [[ -z $bin ]]; then
    if [[ -x $here/../../build/gradsweep ]]; then bin=$here/../../build/gradsweep
    elif [[ -x $here/../../../../bin/gradsweep ]]; then bin=$here/../../../../bin/gradsweep
    else bin=$(command -v gradsweep || true)
    fi
fi
[[ -n $bin && -x $bin ]] || { echo "submit.sh: gradsweep binary not found (use --gradsweep BIN or GRADSWEEP=BIN)" >&2; exit 2; }
command -v sbatch > /dev/null || { echo "submit.sh: sbatch not found" >&2; exit 2; }
[[ $bin == /* ]] || bin=$PWD/$bin
[[ $spec == /* ]] || spec=$PWD/$spec
[[ $out == /* ]] || out=$PWD/$out
[[ $out != *\\* ]] || { echo "submit.sh: OUT must not contain a backslash (Slurm drops it from log paths): $out" >&2; exit 2; }

# Bad specs fail here, not in N queued jobs.
"$bin" validate "$spec" > /dev/null || exit 2
mkdir -p -- "$out/logs"
# The jobs read a private copy: editing SPEC after submitting changes nothing.
if [[ -e $out/spec.json ]] && ! cmp -s -- "$spec" "$out/spec.json"; then
    echo "submit.sh: $out/spec.json exists and differs from $spec (another sweep in this directory?)" >&2
    exit 2
fi
cp -- "$spec" "$out/spec.json.tmp.$$" && mv -- "$out/spec.json.tmp.$$" "$out/spec.json"
extra=()
[[ -n $block ]] && extra+=(--seed-block "$block")

# The job name is for squeue: the spec's file name, letters, digits and ._- only.
name=${spec##*/}
name=${name%.json}
name=gradsweep-${name//[^A-Za-z0-9._-]/_}
parse_id() { local id; id=$(cat); id=${id%%;*}; [[ $id =~ ^[0-9]+$ ]] || { echo "submit.sh: sbatch said: $id" >&2; exit 1; }; echo "$id"; }
logs=${out//%/%%}/logs
array_id=$(sbatch --parsable --array=0-$((shards - 1)) --job-name="$name" --output="$logs/shard-%a.out" \
    "${sbatch_opts[@]}" "$here/shard_task.sh" "$bin" "$out/spec.json" "$out" "${extra[@]}" | parse_id)
merge_id=$(sbatch --parsable --dependency=afterok:"$array_id" --kill-on-invalid-dep=yes --job-name="$name-merge" \
    --output="$logs/merge.out" "${sbatch_opts[@]}" "$here/merge_task.sh" "$bin" "$out" "$shards" | parse_id)
printf 'ARRAY_JOB_ID=%s\nMERGE_JOB_ID=%s\nSHARDS=%s\n' "$array_id" "$merge_id" "$shards" > "$out/jobs.env"
echo "submitted array job $array_id ($shards shards) and merge job $merge_id; results will be in $out/merged"

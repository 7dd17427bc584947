#!/usr/bin/env bash
# ./scripts/run.sh SPEC [gradsweep run options]: installs, builds, runs the sweep into
# results/<spec name>/ and prints the summary table.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
[[ $# -ge 1 ]] || { echo "usage: $0 SPEC.json [options]" >&2; exit 2; }
spec=$1; shift
[[ $spec == -* ]] && spec=./$spec   # a file named like an option is still the spec
"$root/scripts/build.sh" >/dev/null
name=${spec##*/}
name=${name%.json}
exec "$root/build/gradsweep" run "$spec" -o "$root/results/$name" --force "$@"

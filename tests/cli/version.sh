#!/usr/bin/env bash
# gradsweep --version: the version (CMakeLists.txt's project()), the commit the
# binary was built from (git HEAD of the source tree at build time, also the one
# results.json records), and whether the CUDA backend is compiled in and for
# which architectures, checked against the GPU code the binary really embeds
# (cuobjdump: an "NN-real" entry is sm_NN code, "NN-virtual" compute_NN PTX,
# plain "NN" both).
set -uo pipefail
bin=$1 src=$2 work=$3
fail() { echo "FAIL: $*" >&2; exit 1; }
rm -rf "$work"; mkdir -p "$work"

out=$("$bin" --version) || fail "--version: exit $?"
[[ $("$bin" version) == "$out" ]] || fail "'gradsweep version' differs from --version"
mapfile -t lines <<< "$out"
[[ ${#lines[@]} == 2 ]] || fail "--version printed ${#lines[@]} lines: $out"

version=$(sed -n 's/^project(gradsweep VERSION \([0-9.]*\).*/\1/p' "$src/CMakeLists.txt")
[[ -n $version ]] || fail "no version in $src/CMakeLists.txt"
commit=unknown
if head=$(git -C "$src" rev-parse --short=12 HEAD 2> /dev/null); then commit=$head; fi
[[ ${lines[0]} == "gradsweep $version ($commit)" ]] || fail "first line: '${lines[0]}', want 'gradsweep $version ($commit)'"

# results.json records the same version and commit.
cat > "$work/spec.json" <<'JSON'
{"name": "version", "seeds": {"count": 2}, "grid": {"depth": [2]}, "network": {"width": 3}}
JSON
"$bin" run "$work/spec.json" -o "$work/out" --quiet || fail "run"
/usr/bin/python3 - "$work/out/results.json" "$version" "$commit" <<'PY' || fail "results.json provenance"
import json, sys
p = json.load(open(sys.argv[1]))["provenance"]
assert p["version"] == sys.argv[2] and p["git_commit"] == sys.argv[3], (p["version"], p["git_commit"])
PY

# The CUDA line, against the binary.
has_fatbin=0
readelf -SW "$bin" | grep -q '\.nv_fatbin' && has_fatbin=1
if [[ ${lines[1]} == "CUDA backend: not compiled in (CPU backend only)" ]]; then
    ((has_fatbin == 0)) || fail "says no CUDA backend, but the binary has GPU code (.nv_fatbin)"
    echo "version: ${lines[0]}; CPU-only build, no GPU code in the binary"
    exit 0
fi
re='^CUDA backend: compiled in \(nvcc ([0-9.]+); architectures ([^)]+)\)$'
[[ ${lines[1]} =~ $re ]] || fail "second line: '${lines[1]}'"
nvcc_version=${BASH_REMATCH[1]} archs=${BASH_REMATCH[2]}
((has_fatbin)) || fail "says CUDA is compiled in, but the binary has no GPU code"
cuobjdump=$(command -v cuobjdump || true)
[[ -n $cuobjdump ]] || cuobjdump=/usr/local/cuda/bin/cuobjdump
[[ -x $cuobjdump ]] || fail "cuobjdump not found (the CUDA build's toolkit has it)"
nvcc=$(dirname "$cuobjdump")/nvcc
if [[ -x $nvcc ]] && "$nvcc" --version | grep -q "release ${nvcc_version%.*}"; then :; else
    echo "version: (nvcc beside cuobjdump is not $nvcc_version; the build used another toolkit)"
fi
want_sass=() want_ptx=()
IFS=';' read -ra entries <<< "$archs"
for a in "${entries[@]}"; do
    case $a in
        [0-9]*-real) want_sass+=("sm_${a%-real}") ;;
        [0-9]*-virtual) want_ptx+=("compute_${a%-virtual}") ;;
        [0-9]*) want_sass+=("sm_$a"); want_ptx+=("compute_$a") ;;
        *) echo "version: architectures '$archs' are symbolic: not compared with the binary"; exit 0 ;;
    esac
done
got_sass=$("$cuobjdump" --list-elf "$bin" | grep -o 'sm_[0-9]*[a-z]*' | sort -u | tr '\n' ' ')
got_ptx=$("$cuobjdump" --list-ptx "$bin" | grep -o 'sm_[0-9]*[a-z]*' | sed 's/sm_/compute_/' | sort -u | tr '\n' ' ')
want_sass_s=$(printf '%s\n' "${want_sass[@]}" | grep . | sort -u | tr '\n' ' ')
want_ptx_s=$(printf '%s\n' "${want_ptx[@]}" | grep . | sort -u | tr '\n' ' ')
[[ $got_sass == "$want_sass_s" ]] || fail "architectures $archs: binary has SASS for [$got_sass], want [$want_sass_s]"
[[ $got_ptx == "$want_ptx_s" ]] || fail "architectures $archs: binary has PTX for [$got_ptx], want [$want_ptx_s]"
echo "version: ${lines[0]}; CUDA (nvcc $nvcc_version) for $archs: SASS [$got_sass], PTX [$got_ptx] in the binary"

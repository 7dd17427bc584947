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
# The GPU code in the binary, from its .nv_fatbin section: fat binaries (magic
# 0xBA55ED50; 16-byte header: magic, version, header size, payload size), each a
# run of entries (kind 1 = PTX, 2 = ELF/SASS; entry header size and payload size
# at bytes 4 and 8; the architecture at byte 28). cuobjdump --list-elf/--list-ptx
# print the same, where the toolkit has it.
got=$(/usr/bin/python3 - "$bin" <<'PY'
import struct, subprocess, sys
path = sys.argv[1]
sections = subprocess.run(["readelf", "-SW", path], capture_output=True, text=True, check=True).stdout
line = next(l for l in sections.splitlines() if " .nv_fatbin " in l)
fields = line.split("]", 1)[1].split()  # name type address offset size ...
offset, size = int(fields[3], 16), int(fields[4], 16)
with open(path, "rb") as f:
    f.seek(offset)
    sec = f.read(size)
sass, ptx, pos = set(), set(), 0
while pos + 16 <= len(sec):
    magic, _, header, payload = struct.unpack_from("<IHHQ", sec, pos)
    if magic != 0xBA55ED50:
        pos += 8  # padding between fat binaries
        continue
    p, end = pos + header, pos + header + payload
    while p < end:
        kind, _, entry_header, entry_payload = struct.unpack_from("<HHIQ", sec, p)
        arch = struct.unpack_from("<I", sec, p + 28)[0]
        {1: ptx, 2: sass}.get(kind, set()).add(arch)
        p += entry_header + entry_payload
    pos = end
print(" ".join(f"sm_{a}" for a in sorted(sass)) + "|" + " ".join(f"compute_{a}" for a in sorted(ptx)))
PY
) || fail "cannot read the GPU code in $bin"
got_sass=${got%|*} got_ptx=${got#*|}
want_sass_s=$(printf '%s\n' "${want_sass[@]}" | grep . | sort -t_ -k2n -u | tr '\n' ' ')
want_ptx_s=$(printf '%s\n' "${want_ptx[@]}" | grep . | sort -t_ -k2n -u | tr '\n' ' ')
[[ "$got_sass " == "$want_sass_s" || ( -z $got_sass && -z $want_sass_s ) ]] \
    || fail "architectures $archs: the binary has SASS for [$got_sass], want [$want_sass_s]"
[[ "$got_ptx " == "$want_ptx_s" || ( -z $got_ptx && -z $want_ptx_s ) ]] \
    || fail "architectures $archs: the binary has PTX for [$got_ptx], want [$want_ptx_s]"
echo "version: ${lines[0]}; CUDA (nvcc $nvcc_version) for $archs: SASS [$got_sass], PTX [$got_ptx] in the binary"

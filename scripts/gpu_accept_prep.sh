#!/usr/bin/env bash
# Prepares the GPU acceptance call on a machine without a GPU: builds the three
# binaries it runs for the lent machine's H200 (sm_90 only, static CUDA runtime,
# static libstdc++, no -march=native), stages them with the test data, the
# Debian build dependencies' .deb files (for a build there, where nothing can be
# fetched) and the scripts into one git-ignored folder, checks that what travels
# stays under the device tool's 64 MiB, and prints the exact device call.
#
# usage: scripts/gpu_accept_prep.sh [--carry DIR] [--build-dir DIR] [--from-build DIR] [--no-debs]
#   --carry DIR       the staged folder (default gpu-carry); the device tool needs it inside the
#                     repository and ignored by git (checked), tests may put it elsewhere
#   --build-dir DIR   where to build (default build-gpu-accept)
#   --from-build DIR  stage the binaries of an existing build instead of building (the dry-run
#                     test reuses build/; such binaries may carry -march=native and sm_80)
#   --no-debs         do not download the .deb files (no package mirror here)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
carry=gpu-carry build_dir=build-gpu-accept from_build="" debs=1
while [ $# -gt 0 ]; do
  case $1 in
    --carry) carry=${2:?}; shift ;;
    --build-dir) build_dir=${2:?}; shift ;;
    --from-build) from_build=${2:?}; shift ;;
    --no-debs) debs=0 ;;
    -h | --help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "gpu_accept_prep.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
die() { echo "gpu_accept_prep.sh: $*" >&2; exit 1; }
limit=$((64 << 20))
deadline=470 timeout_s=530
[ -d .git ] || [ -f .git ] || die "not a git checkout: $root"

# The carry folder must be ignored by git: the device tool carries only ignored
# paths named in `carry`; a tracked or untracked-visible one would travel twice.
mkdir -p "$carry"
carry=$(cd "$carry" && pwd)
case $carry in
  "$root"/*)
    carry=${carry#"$root"/}
    git check-ignore -q "$carry/" || die "$carry is not ignored by git (add it to .gitignore or .git/info/exclude)" ;;
  *) echo "gpu_accept_prep.sh: note: $carry is outside the repository; the device tool carries only folders inside it" >&2 ;;
esac

if [ -n "$from_build" ]; then
  bdir=$from_build
  build_note="from existing build $from_build"
else
  "$root/scripts/install_deps.sh"
  nvcc=${CUDACXX:-/usr/local/cuda/bin/nvcc}
  [ -x "$nvcc" ] || die "no nvcc at $nvcc: the GPU binaries need the CUDA toolkit"
  export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$root}
  launcher=()
  command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_CUDA_COMPILER_LAUNCHER=ccache)
  cmake -S "$root" -B "$build_dir" -DCMAKE_BUILD_TYPE=Release -DGRADSWEEP_NATIVE=OFF -DGRADSWEEP_CUDA=ON \
    -DCMAKE_CUDA_COMPILER="$nvcc" -DCMAKE_CUDA_ARCHITECTURES=90 \
    -DCMAKE_EXE_LINKER_FLAGS="-static-libstdc++ -static-libgcc" "${launcher[@]}" >/dev/null
  grep -q '^GRADSWEEP_HAVE_CUDA:.*=ON' "$build_dir/CMakeCache.txt" 2>/dev/null ||
    grep -q 'gradsweep_gpu_tests' "$build_dir/tests/gpu/Makefile" 2>/dev/null ||
    die "the CUDA backend is not enabled in $build_dir"
  cmake --build "$build_dir" -j"$(nproc)" --target gradsweep gradsweep_gpu_tests bench_cuda_kernels
  bdir=$build_dir
  build_note="sm_90, GRADSWEEP_NATIVE=OFF, Release, static cudart/libstdc++/libgcc"
fi
bins=("$bdir/gradsweep" "$bdir/tests/gpu/gradsweep_gpu_tests" "$bdir/bench_cuda_kernels")
for b in "${bins[@]}"; do [ -x "$b" ] || die "missing $b (a CUDA build makes it)"; done

# Nothing unused linked: no shared CUDA runtime or library (the driver's libcuda
# is opened at run time by the static runtime).
if [ -z "$from_build" ]; then
  for b in "${bins[@]}"; do
    if ldd "$b" | grep -E 'libcudart|libcublas|libcurand|libcufft|libcudnn|libstdc\+\+'; then
      die "$b links a shared library it must not (see above)"
    fi
  done
fi

rm -rf "${carry:?}"/*
mkdir -p "$carry/bin" "$carry/debs" "$carry/scripts" "$carry/data/tests" "$carry/data/sweeps"
cp "${bins[@]}" "$carry/bin/"
# Gzipped: with their kernel images three binaries pass the 64 MiB that travels
# (gzip about halves them); gpu_accept.sh unpacks them first.
gzip -9 "$carry"/bin/*
cp scripts/gpu_accept.sh scripts/gpu_accept_compare.py tests/gpu/sanitize.sh "$carry/scripts/"
cp -r tests/data "$carry/data/tests/"
cp -r sweeps/seeds "$carry/data/sweeps/"
if [ $debs -eq 1 ]; then
  # Header-only build dependencies, unpacked there with dpkg -x into a private prefix.
  (cd "$carry/debs" && apt-get download nlohmann-json3-dev catch2) >/dev/null ||
    die "apt-get download failed (no package mirror? --no-debs skips this)"
fi
{
  echo "commit: $(git rev-parse HEAD)$(git diff --quiet HEAD -- . ':!gpu-carry' 2>/dev/null || echo ' (with uncommitted changes)')"
  echo "prepared: $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(uname -n)"
  echo "build: $build_note"
  echo "nvcc: $({ "${CUDACXX:-/usr/local/cuda/bin/nvcc}" --version 2>/dev/null || true; } | tail -1)"
  echo "files:"
  (cd "$carry" && find . -type f ! -name manifest.txt | sort | xargs sha256sum)
  for b in "${bins[@]}"; do
    echo "ldd $(basename "$b"):"
    ldd "$b" | sed 's/^/  /'
  done
} >"$carry/manifest.txt"

# What travels: tracked files, untracked files git does not ignore, and the carry.
tree_bytes=$({ git ls-files -z; git ls-files -z --others --exclude-standard; } |
  du -cb --files0-from=- 2>/dev/null | tail -1 | cut -f1)
carry_bytes=$(du -sb "$carry" | cut -f1)
total=$((tree_bytes + carry_bytes))
printf 'staged %s: %d KiB (binaries %s), working tree %d KiB, together %d KiB of %d KiB\n' "$carry" \
  $((carry_bytes >> 10)) "$(du -ch "$carry"/bin/* | tail -1 | cut -f1)" $((tree_bytes >> 10)) $((total >> 10)) $((limit >> 10))
[ "$total" -le "$limit" ] || die "over the 64 MiB that travels"

cat <<EOF

The device call (device tool \`run\`), from the repository root:
  command:   bash $carry/scripts/gpu_accept.sh gpu-accept --require-gpu --bundle "\$OUT"
  carry:     ["$carry"]
  timeout_s: $timeout_s
(the script's own deadline is ${deadline}s; results.json, summary.txt and logs.tar.gz come back under \$OUT;
 commit them under bench/results/gpu-<date>/)
EOF

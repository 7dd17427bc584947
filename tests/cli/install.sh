#!/usr/bin/env bash
# Installing like a real tool. `cmake --install` into a prefix, and the Debian
# package from `cpack -G DEB` unpacked with `dpkg -x`: each tree is copied
# somewhere else and the original deleted (the binary finds its files relative
# to itself), then the quickstart sweep runs with --plot from another working
# directory. A recording interpreter (GRADSWEEP_PYTHON) shows which plot.py ran:
# the installed copy, not the source tree's. Also checked: the package's
# dependencies, and that a binary copied out of the build tree on its own does
# not fall back to the source tree.
set -uo pipefail
bin=$1 src=$2 work=$3
fail() { echo "FAIL: $*" >&2; exit 1; }
rm -rf "$work"; mkdir -p "$work"
work=$(cd "$work" && pwd)
# The build tree: the nearest directory above the binary with a CMakeCache.txt.
build=$(cd "$(dirname "$bin")" && pwd)
while [[ ! -f $build/CMakeCache.txt && $build != / ]]; do build=$(dirname "$build"); done
[[ -f $build/CMakeCache.txt ]] || fail "no build tree above $bin"

py=/usr/bin/python3
have_mpl=0
"$py" -c "import matplotlib, numpy" 2> /dev/null && have_mpl=1
# Records the script it is asked to run, then runs it with the real python3
# (without matplotlib: only records).
recorder=$work/record-python
cat > "$recorder" <<SH
#!/usr/bin/env bash
printf '%s' "\$1" > "\$GS_PLOT_SCRIPT_RECORD"
((${have_mpl})) || exit 0
exec $py "\$@"
SH
chmod +x "$recorder"

# quickstart: run it with --plot from a directory outside every tree, with the
# binary and the sweep of the installed tree ROOT (PREFIX = ROOT/PREFIX_DIR).
run_quickstart() {
    local prefix=$1 what=$2 cwd
    cwd=$(mktemp -d "$work/cwd.XXXXXX")
    (
        cd "$cwd" || exit 1
        GRADSWEEP_PYTHON=$recorder GS_PLOT_SCRIPT_RECORD=$cwd/script "$prefix/bin/gradsweep" run \
            "$prefix/share/gradsweep/sweeps/quickstart.json" -o quick --threads 2 --plot > run.out 2>&1
    ) || fail "$what: quickstart --plot: exit $?: $(tail -5 "$cwd/run.out")"
    [[ -s $cwd/quick/results.csv && -s $cwd/quick/results.json ]] || fail "$what: no results in $cwd/quick"
    grep -q "results in quick/" "$cwd/run.out" || fail "$what: no summary: $(tail -3 "$cwd/run.out")"
    [[ $(cat "$cwd/script") == "$prefix/share/gradsweep/scripts/plot.py" ]] \
        || fail "$what: --plot ran $(cat "$cwd/script"), want $prefix/share/gradsweep/scripts/plot.py"
    if ((have_mpl)); then
        for f in layers_relu.png layers_gelu.png first_layer_vs_depth.png theory_vs_data_relu.png; do
            [[ -s $cwd/quick/$f ]] || fail "$what: --plot did not write quick/$f"
        done
    fi
    [[ $("$prefix/bin/gradsweep" --version) == "$("$bin" --version)" ]] || fail "$what: --version differs from the build's"
    echo "install: $what: quickstart + --plot from $cwd ran the installed plot.py ($( ((have_mpl)) && echo "PNGs written" || echo "no matplotlib: not plotted"))"
}

# 1. cmake --install into a prefix; then the prefix is moved.
cmake --install "$build" --prefix "$work/prefix" > "$work/install.log" 2>&1 || fail "cmake --install: $(tail -5 "$work/install.log")"
for f in bin/gradsweep share/gradsweep/scripts/plot.py share/gradsweep/scripts/plot_studies.py share/gradsweep/scripts/slurm/submit.sh \
         share/gradsweep/scripts/slurm/shard_task.sh share/gradsweep/scripts/slurm/merge_task.sh; do
    [[ -x $work/prefix/$f ]] || fail "cmake --install: $f missing or not executable"
done
for f in share/gradsweep/sweeps/quickstart.json share/gradsweep/sweeps/shortcut_vs_depth.json \
         share/gradsweep/sweeps/seeds/001_shortcut_relu.json share/gradsweep/sweeps/studies/he_criticality.json \
         share/doc/gradsweep/README.md \
         share/doc/gradsweep/docs/scale_out.md share/doc/gradsweep/docs/plots/layers_relu.png; do
    [[ -f $work/prefix/$f ]] || fail "cmake --install: $f missing"
done
cp -a "$work/prefix" "$work/moved prefix" && rm -rf "$work/prefix"
run_quickstart "$work/moved prefix" "prefix install (moved)"

# 2. A binary copied out of the build tree on its own: no share/ beside it and
# no fallback to the source tree, so --plot fails with a clear line (the results
# are still written).
mkdir -p "$work/lonely"
cp "$bin" "$work/lonely/gradsweep"
(cd "$work/lonely" && ./gradsweep run "$src/sweeps/seeds/001_shortcut_relu.json" -o out --quiet --plot > run.out 2>&1)
rc=$?
[[ $rc == 1 ]] || fail "lonely binary --plot: exit $rc (want 1): $(cat "$work/lonely/run.out")"
grep -q "scripts/plot.py not found (looked in $work/share/gradsweep/scripts/plot.py)" "$work/lonely/run.out" \
    || fail "lonely binary --plot: $(cat "$work/lonely/run.out")"
[[ -s $work/lonely/out/results.json ]] || fail "lonely binary: no results"
echo "install: a binary copied out of the build tree does not use the source tree's plot.py"

# 3. The Debian package.
command -v cpack > /dev/null && command -v dpkg-deb > /dev/null || fail "cpack or dpkg-deb missing"
(cd "$work" && cpack -G DEB -B "$work/pkg" --config "$build/CPackConfig.cmake" > "$work/cpack.log" 2>&1) \
    || fail "cpack -G DEB: $(tail -15 "$work/cpack.log")"
debs=("$work"/pkg/gradsweep_*.deb)
[[ ${#debs[@]} == 1 && -f ${debs[0]} ]] || fail "cpack made no single gradsweep_*.deb: $(ls "$work/pkg")"
deb=${debs[0]}
field() { dpkg-deb -f "$deb" "$1"; }
[[ $(field Package) == gradsweep ]] || fail "Package: $(field Package)"
version=$(sed -n 's/^project(gradsweep VERSION \([0-9.]*\).*/\1/p' "$src/CMakeLists.txt")
[[ $(field Version) == "$version" ]] || fail "Version: $(field Version), want $version"
[[ $(field Architecture) == "$(dpkg --print-architecture)" ]] || fail "Architecture: $(field Architecture)"
depends=$(field Depends)
for p in libc6 libstdc++6 libgcc-s1; do [[ $depends == *"$p"* ]] || fail "Depends lacks $p: $depends"; done
[[ ! $depends =~ cuda|cudart|cublas|nvidia|python ]] || fail "Depends names something the binary does not need: $depends"
recommends=$(field Recommends)
for p in python3 python3-numpy python3-matplotlib; do
    [[ ", $recommends," == *", $p,"* ]] || fail "Recommends lacks $p: $recommends"
done
# Every library the binary needs is one dpkg-shlibdeps turned into a dependency:
# libc, libstdc++, libgcc_s, libm (no CUDA runtime: it is linked statically).
mkdir -p "$work/root"
dpkg -x "$deb" "$work/root" || fail "dpkg -x"
needed=$(readelf -d "$work/root/usr/bin/gradsweep" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | sort | tr '\n' ' ')
for lib in $needed; do
    [[ $lib =~ ^(libc|libm|libstdc\+\+|libgcc_s|libpthread|libdl|librt|ld-linux.*)\.so ]] \
        || fail "the packaged binary needs $lib, which no declared dependency provides"
done
for f in usr/share/gradsweep/scripts/plot.py usr/share/gradsweep/scripts/slurm/submit.sh usr/share/gradsweep/sweeps/quickstart.json \
         usr/share/doc/gradsweep/README.md; do
    [[ -f $work/root/$f ]] || fail "package lacks /$f"
done
cp -a "$work/root" "$work/unpacked copy" && rm -rf "$work/root"
run_quickstart "$work/unpacked copy/usr" "Debian package (dpkg -x, copied)"
echo "install: $(basename "$deb"): Depends: $depends; Recommends: $recommends; NEEDED: $needed"
echo "install: ok"

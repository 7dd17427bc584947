#!/usr/bin/env bash
# No path or option reaches a shell. `gradsweep run --plot` and `merge --plot`
# on output directories and spec paths full of shell syntax (spaces, quotes,
# $(...), backticks, ;, |, >, \, newlines, leading dashes): nothing they spell
# runs (no MARKER_* file appears), results and plots land in exactly the
# directory given, and plot.py receives that directory as one argument. Then
# SIGTERM/SIGINT while plotting: the plot is stopped and waited for, exit 143/130.
#
# The argument checks use a stand-in interpreter (GRADSWEEP_PYTHON, which
# records its arguments), the plots the real /usr/bin/python3 (when it has
# matplotlib and numpy).
set -uo pipefail
bin=$1 src=$2 work=$3
fail() { echo "FAIL: $*" >&2; exit 1; }
rm -rf "$work"; mkdir -p "$work"
cd "$work" || fail "cd $work"
work=$PWD
[[ $bin == /* ]] || bin=$OLDPWD/$bin

# Relative MARKER_* names: a shell that ran one would create it here, in the
# working directory gradsweep (and any shell it started) has.
names=(
    'sp ace'
    'd$(touch MARKER_dollar)'
    'b`touch MARKER_tick`'
    'q"; touch MARKER_quote; "'
    "s'; touch MARKER_squote; '"
    'semi;touch MARKER_semi'
    'p|touch MARKER_pipe &&touch MARKER_and'
    'r>MARKER_redirect'
    'e\"$(touch MARKER_escape)'
    $'nl\n$(touch MARKER_newline)\n'
    '-h'
    '--out=MARKER_dash'
    '-x $(touch MARKER_all) `touch MARKER_all2` ;touch MARKER_all3 "q" '\''q'\'' |>MARKER_all4 \'
)
check_no_markers() {
    local found
    # Directories whose names contain the markers are fine; a file named a marker is not.
    found=$(find "$work" -type f -name 'MARKER_*' -print | head -5)
    [[ -z $found ]] || fail "shell syntax in a path was executed ($1): $found"
}

cat > spec.template <<'JSON'
{"name": "shell-safety", "seeds": {"count": 12, "first": 0},
 "grid": {"depth": [2, 3], "width": [3], "activation": ["relu", "tanh"], "shortcut": [false, true]},
 "network": {"input_dim": 3, "output_dim": 1, "last_activation": false},
 "input": {"values": [[1.0, 0.0, -1.0]]}, "loss": {"kind": "mse", "target": 0.0}}
JSON

# The stand-in interpreter: its own path has a space and a quote too.
fake="$work/fake py'thon"
cat > "$fake" <<'SH'
#!/usr/bin/env bash
# Records its arguments NUL-separated; with GS_FAKE_PIDFILE, waits to be signalled.
printf '%s\0' "$@" > "$GS_FAKE_ARGS"
if [[ -n ${GS_FAKE_PIDFILE:-} ]]; then
    sleep 600 & sleeper=$!
    trap 'kill $sleeper; echo TERM > "$GS_FAKE_PIDFILE.signal"; exit 143' TERM
    trap 'kill $sleeper; echo INT > "$GS_FAKE_PIDFILE.signal"; exit 130' INT
    echo $$ > "$GS_FAKE_PIDFILE.tmp" && mv "$GS_FAKE_PIDFILE.tmp" "$GS_FAKE_PIDFILE"
    wait $sleeper
fi
exit 0
SH
chmod +x "$fake"
export GS_FAKE_ARGS=$work/fake_args

# plot.py got exactly: SCRIPT -- DIR.
check_plot_args() {
    local dir=$1 what=$2 args=()
    mapfile -d '' args < "$GS_FAKE_ARGS"
    [[ ${#args[@]} == 3 ]] || fail "$what: plot.py got ${#args[@]} arguments: $(printf '[%s] ' "${args[@]}")"
    [[ ${args[0]} == */scripts/plot.py && -f ${args[0]} ]] || fail "$what: script ${args[0]}"
    [[ ${args[1]} == -- ]] || fail "$what: second argument ${args[1]}"
    [[ ${args[2]} == "$dir" ]] || fail "$what: directory argument [${args[2]}], want [$dir]"
}

# A spec path starting with '-' is given as ./-name (as for any command); the
# output directory is taken as given, dashes and all.
# Likewise a shard directory given to merge.
spec_arg() { if [[ $1 == -* ]]; then printf './%s.json' "$1"; else printf '%s.json' "$1"; fi; }
positional() { if [[ $1 == -* ]]; then printf './%s' "$1"; else printf '%s' "$1"; fi; }
i=0
for name in "${names[@]}"; do
    i=$((i + 1))
    what="name $i $(printf '%q' "$name")"
    cp -- spec.template "$name.json" || fail "$what: cannot create the spec file"
    spec=$(spec_arg "$name")
    rm -f "$GS_FAKE_ARGS"
    GRADSWEEP_PYTHON=$fake "$bin" run "$spec" -o "$name" --quiet --plot > run.out 2>&1 \
        || fail "$what: run --plot: exit $?: $(cat run.out)"
    [[ -f $name/results.json && -f $name/results.csv ]] || fail "$what: run's results are not in the directory given"
    check_plot_args "$name" "$what: run --plot"
    # A shard of it, merged with --plot into a directory with the same syntax.
    "$bin" run "$spec" -o "$name.shard" --shard 0/1 --quiet > run.out 2>&1 || fail "$what: run --shard: $(cat run.out)"
    rm -f "$GS_FAKE_ARGS"
    GRADSWEEP_PYTHON=$fake "$bin" merge "$(positional "$name.shard")" -o "$name.merged" --quiet --plot > run.out 2>&1 \
        || fail "$what: merge --plot: exit $?: $(cat run.out)"
    cmp -s -- "$name/results.csv" "$name.merged/results.csv" || fail "$what: merged results.csv differs from the run's"
    check_plot_args "$name.merged" "$what: merge --plot"
    check_no_markers "$what"
done
echo "shell_safety: ${#names[@]} directory and spec names: run --plot and merge --plot passed each as one argument, nothing executed"

# The real plotting script on the nastiest name (leading dash, every kind of
# syntax, a trailing backslash): the PNGs land in the directory given.
py=/usr/bin/python3
if "$py" -c "import matplotlib, numpy" 2> /dev/null; then
    name=${names[${#names[@]} - 1]}
    spec=$(spec_arg "$name")
    "$bin" run "$spec" -o "$name.real" --quiet --plot > run.out 2>&1 || fail "real run --plot: exit $?: $(cat run.out)"
    [[ -s $name.real/first_layer_vs_depth.png && -s $name.real/theory_ratio.png ]] || fail "run --plot: PNGs not in [$name.real]"
    "$bin" merge "$(positional "$name.shard")" -o "$name.real merged" --plot > merge.out 2>&1 || fail "real merge --plot: exit $?: $(cat merge.out)"
    [[ -s "$name.real merged/first_layer_vs_depth.png" ]] || fail "merge --plot: PNGs not in [$name.real merged]"
    grep -q "first_layer_vs_depth.png" merge.out || fail "merge --plot (not quiet) did not list the PNGs: $(cat merge.out)"
    check_no_markers "real plot.py"
    echo "shell_safety: the real plot.py wrote its PNGs into [$(printf '%q' "$name.real")] and its merge twin"
else
    echo "shell_safety: (no matplotlib/numpy for $py: real plots not checked here; tests/cli/plot.sh skips too)"
fi

# SIGTERM and SIGINT while plotting: passed on to the plotting process, which is
# waited for (its record exists when gradsweep has exited), exit 128 + signal.
for sig in TERM INT; do
    pidfile=$work/plot_pid_$sig
    rm -f "$pidfile" "$pidfile.signal"
    GRADSWEEP_PYTHON=$fake GS_FAKE_PIDFILE=$pidfile "$bin" run spec.template -o "sig $sig" --quiet --plot \
        > "sig_$sig.out" 2>&1 &
    gpid=$!
    # No deadline (a loaded machine may take long to get there): until the
    # plotting process has started, or gradsweep has ended without it.
    until [[ -s $pidfile ]]; do kill -0 "$gpid" 2> /dev/null || break; sleep 0.05; done
    [[ -s $pidfile ]] || { kill "$gpid" 2> /dev/null; fail "SIG$sig: the plotting process never started: $(cat "sig_$sig.out")"; }
    kill -s "$sig" "$gpid"
    wait "$gpid"
    rc=$?
    [[ $sig == TERM ]] && want=143 || want=130
    [[ $rc == "$want" ]] || fail "SIG$sig while plotting: exit $rc (want $want): $(cat "sig_$sig.out")"
    [[ $(cat "$pidfile.signal" 2> /dev/null) == "$sig" ]] || fail "SIG$sig was not passed on to the plotting process (or not waited for)"
    grep -q "SIG$sig: plotting stopped" "sig_$sig.out" || fail "SIG$sig: no message: $(cat "sig_$sig.out")"
    [[ -f "sig $sig/results.json" ]] || fail "SIG$sig: results missing"
done
echo "shell_safety: SIGTERM/SIGINT while plotting: passed on, waited for, exit 143/130"
echo "shell_safety: ok"

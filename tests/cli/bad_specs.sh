#!/usr/bin/env bash
# Every spec in tests/bad_specs/ must be refused before any work starts: exit 2,
# exactly one line on stderr (the one in NAME.expected, after "FILE: "), nothing
# on stdout, and no output directory created by `run`.
set -uo pipefail
bin=$1 src=$2 work=$3
rm -rf "$work"; mkdir -p "$work"
dir="$src/tests/bad_specs"
pass=0 failed=0
fail() { echo "FAIL: $*" >&2; failed=$((failed + 1)); }

# check NAME EXPECTED_LINE CMD...: exit 2, exactly EXPECTED_LINE on stderr, empty stdout.
check() {
    local name=$1 want=$2; shift 2
    "$@" > "$work/stdout" 2> "$work/stderr"
    local rc=$?
    if [[ $rc != 2 ]]; then fail "$name: $* exited $rc (want 2); stderr: $(head -c 300 "$work/stderr")"; return 1; fi
    if [[ -s $work/stdout ]]; then fail "$name: $* wrote to stdout: $(head -c 300 "$work/stdout")"; return 1; fi
    local lines; mapfile -t lines < "$work/stderr"
    if [[ ${#lines[@]} != 1 ]]; then fail "$name: $* wrote ${#lines[@]} lines to stderr: $(head -c 500 "$work/stderr")"; return 1; fi
    local got=${lines[0]}
    if [[ $got != "$want" ]]; then
        fail "$name: $*"$'\n'"  want: $want"$'\n'"  got:  $got"
        return 1
    fi
    return 0
}

n_specs=0
for spec in "$dir"/*.json; do
    name=$(basename "$spec" .json)
    n_specs=$((n_specs + 1))
    if [[ ! -f $dir/$name.expected ]]; then fail "$name: no $name.expected"; continue; fi
    want="gradsweep: error: $spec: $(< "$dir/$name.expected")"
    ok=1
    check "$name" "$want" "$bin" validate "$spec" || ok=0
    check "$name" "$want" "$bin" plan "$spec" --backend cpu || ok=0
    out="$work/out_$name"
    check "$name" "$want" "$bin" run "$spec" -o "$out" --backend cpu || ok=0
    if [[ -e $out ]]; then fail "$name: run created $out"; ok=0; fi
    # A bad spec must not clobber results already in an existing directory either.
    [[ -d $work/existing ]] || { mkdir "$work/existing" && echo "earlier results" > "$work/existing/results.csv"; }
    check "$name" "$want" "$bin" run "$spec" -o "$work/existing" --force --backend cpu || ok=0
    existing=("$work"/existing/*)
    if [[ ${#existing[@]} != 1 || $(< "$work/existing/results.csv") != "earlier results" ]]; then
        fail "$name: run --force touched an existing output directory"; ok=0
        rm -rf "$work/existing"  # start the next spec from a clean copy
    fi
    ((ok)) && pass=$((pass + 1))
done
[[ $n_specs -ge 40 ]] || fail "only $n_specs bad specs in $dir (want at least 40)"
for e in "$dir"/*.expected; do [[ -f ${e%.expected}.json ]] || fail "$(basename "$e") has no .json"; done

# File-level problems: same rules, no JSON path.
file_case() {
    local name=$1 spec=$2 problem=$3
    local want="gradsweep: error: $spec: $problem"
    local ok=1
    check "$name" "$want" "$bin" validate "$spec" || ok=0
    check "$name" "$want" "$bin" run "$spec" -o "$work/out_$name" || ok=0
    if [[ -e $work/out_$name ]]; then fail "$name: run created an output directory"; ok=0; fi
    ((ok)) && pass=$((pass + 1))
}
file_case missing_file "$work/no_such_spec.json" "cannot read spec file: No such file or directory"
mkdir -p "$work/a_directory.json"
file_case spec_is_directory "$work/a_directory.json" "cannot read spec file: it is a directory"
truncate -s 20M "$work/huge.json"
file_case spec_too_large "$work/huge.json" "spec is larger than 16777216 bytes"
file_case spec_is_dev_zero /dev/zero "cannot read spec file: it is a character device, not a regular file"

echo "bad_specs: $pass passed, $failed failed ($n_specs specs + 4 file cases)"
[[ $failed == 0 ]]

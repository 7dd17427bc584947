#!/usr/bin/env bash
# Command-line mistakes get exit 2 and ONE line on stderr (README, docs/errors.md),
# whatever the option, file or file name: an existing -o target, a --device that
# is not there, a repeated option, a number out of range, a spec that is a FIFO,
# a file name with a newline. --opt=value works like --opt value, and -0 in a
# spec is the number 0 (one cell, printed 0).
set -uo pipefail
bin=$1 src=$2 work=$3
rm -rf "$work"; mkdir -p "$work"
cd "$work" || exit 1
failed=0
fail() { echo "FAIL: $*" >&2; failed=$((failed + 1)); }

cat > spec.json <<'JSON'
{"name": "e", "seeds": {"count": 8}, "network": {"depth": 2, "width": 3}}
JSON

# refused NAME PATTERN CMD...: exit 2, nothing on stdout, exactly one stderr line
# matching the glob PATTERN. (timeout: a command that blocks fails, never hangs.)
refused() {
    local name=$1 pattern=$2; shift 2
    timeout 60 "$@" > "$name.out" 2> "$name.err" < /dev/null
    local rc=$? lines
    mapfile -t lines < "$name.err"
    [[ $rc == 2 ]] || { fail "$name: exit $rc (want 2): $(head -c 600 "$name.err")"; return; }
    [[ ! -s $name.out ]] || fail "$name: wrote to stdout: $(head -c 300 "$name.out")"
    [[ ${#lines[@]} == 1 ]] || { fail "$name: ${#lines[@]} stderr lines (want 1): $(head -c 600 "$name.err")"; return; }
    # shellcheck disable=SC2053
    [[ ${lines[0]} == $pattern ]] || fail "$name: '${lines[0]}' does not match '$pattern'"
}

# -o onto an existing file, or a non-empty directory, without --quiet: the backend
# line used to come first and the usage text after the error.
echo "not a directory" > a_file
refused out_is_file "gradsweep: error: -o a_file: exists and is not a directory" "$bin" run spec.json -o a_file
mkdir full && echo x > full/results.csv
refused out_nonempty "gradsweep: error: -o full: directory exists and is not empty (use --resume *, --force to overwrite)" \
    "$bin" run spec.json -o full
refused unknown_option "gradsweep: error: unknown option --thread" "$bin" run spec.json -o o1 --thread 2

# --device N names a CUDA device: absent, it is an error, never a quiet CPU run.
# (999: no machine has it, so this holds with or without CUDA.)
refused device_absent "gradsweep: error: --device 999: *" "$bin" run spec.json -o dev_out --device 999
[[ ! -e dev_out ]] || fail "--device 999 created its output directory"
refused device_plan "gradsweep: error: --device 999: *" "$bin" plan spec.json --device 999
refused device_with_cpu "gradsweep: error: --device 0 selects a CUDA device; it does not go with --backend cpu" \
    "$bin" run spec.json -o dev_out --device 0 --backend cpu

# Each option once: a second -o (or --out after -o) would silently win.
refused repeated_o "gradsweep: error: -o given twice; give each option once" "$bin" run spec.json -o a -o b
refused repeated_out "gradsweep: error: -o given twice; give each option once" "$bin" run spec.json --out a -o b
refused repeated_flag "gradsweep: error: -q given twice; give each option once" "$bin" run spec.json -o a --quiet -q
refused repeated_eq "gradsweep: error: --threads given twice; give each option once" "$bin" run spec.json -o a --threads=1 --threads 2
[[ ! -e a && ! -e b ]] || fail "a refused run created a or b"

# Integers: out of range says so, with the bound; not-a-number says that.
refused seed_block_huge "gradsweep: error: --seed-block is too large: 10000000000000 (at most 16777216)" \
    "$bin" run spec.json -o o2 --seed-block 10000000000000
refused seed_block_huger "gradsweep: error: --seed-block is too large: 99999999999999999999999 (at most 16777216)" \
    "$bin" run spec.json -o o2 --seed-block 99999999999999999999999
refused seed_block_zero "gradsweep: error: --seed-block must be at least 1, got 0" "$bin" run spec.json -o o2 --seed-block 0
refused threads_huge "gradsweep: error: --threads is too large: 5000 (at most 4096)" "$bin" run spec.json -o o2 --threads 5000
refused threads_negative "gradsweep: error: --threads must be at least 0, got -1" "$bin" run spec.json -o o2 --threads -1
refused threads_text "gradsweep: error: --threads expects an integer, got \"2x\"" "$bin" run spec.json -o o2 --threads 2x
refused device_huge "gradsweep: error: --device is too large: 3000000000 (at most 2147483647)" \
    "$bin" run spec.json -o o2 --device 3000000000

# --opt=value everywhere; a flag takes no value.
"$bin" run spec.json --out=eq_out --threads=1 --backend=cpu --seed-block=4 --max-memory=1G --quiet > eq.out 2> eq.err \
    || fail "--opt=value run: exit $?: $(cat eq.err)"
grep -q '"threads": 1' eq_out/results.json || fail "--threads=1 not used: $(grep threads eq_out/results.json)"
grep -q '"seed_block": 4' eq_out/results.json || fail "--seed-block=4 not used"
[[ ! -s eq.out && ! -s eq.err ]] || fail "--quiet run printed: $(cat eq.out eq.err)"
"$bin" plan spec.json --backend=cpu --threads=1 > plan_eq.out 2>&1 || fail "plan --backend=cpu: $(cat plan_eq.out)"
refused flag_value "gradsweep: error: --quiet takes no value, got \"--quiet=yes\"" "$bin" run spec.json -o o3 --quiet=yes
refused empty_value "gradsweep: error: --threads expects an integer, got \"\"" "$bin" run spec.json -o o3 --threads=
refused backend_eq "gradsweep: error: --backend must be auto, cpu or cuda, got \"gpu\"" "$bin" run spec.json -o o3 --backend=gpu

# A spec that is not a regular file: a FIFO nobody writes to used to block forever.
mkfifo pipe.json
refused spec_fifo "gradsweep: error: pipe.json: cannot read spec file: it is a FIFO (named pipe), not a regular file" \
    "$bin" validate pipe.json
refused spec_fifo_run "gradsweep: error: pipe.json: cannot read spec file: it is a FIFO (named pipe), not a regular file" \
    "$bin" run pipe.json -o fifo_out
[[ ! -e fifo_out ]] || fail "run on a FIFO spec created its output directory"

# File names with a newline (or other control characters) stay on one line, escaped
# (in the patterns, \\ is one backslash).
nl=$'bad\nname.json'
printf '{"seeds": {"count": 0}, "network": {"depth": 2, "width": 3}}' > "$nl"
refused newline_spec 'gradsweep: error: bad\\nname.json: seeds.count: expected an integer >= 1, got 0' "$bin" validate "$nl"
refused newline_missing 'gradsweep: error: no\\nsuch\\tfile: cannot read spec file: No such file or directory' \
    "$bin" validate $'no\nsuch\tfile'
nl_out=$'out\ndir'
echo x > "$nl_out"
refused newline_out 'gradsweep: error: -o out\\ndir: exists and is not a directory' "$bin" run spec.json -o "$nl_out"
refused newline_arg 'gradsweep: error: unexpected argument "x\\ny"' "$bin" validate spec.json $'x\ny'

# -0 is 0: as an axis value it repeats 0 (tests/bad_specs/dup_axis_negative_zero.json);
# given once, it is printed 0 in every output.
cat > negzero.json <<'JSON'
{"name": "z", "seeds": {"count": 4}, "network": {"depth": 2, "width": 3, "shortcut": true, "leaky_slope": -0.0},
 "grid": {"residual_scale": [-0.0, 1], "activation": ["leaky_relu"]}, "loss": {"kind": "mse", "target": -0.0}}
JSON
"$bin" run negzero.json -o negzero_out --quiet --backend cpu > /dev/null 2> negzero.err || fail "-0 spec: $(cat negzero.err)"
if grep -E '(^|[,:\[ ])-0(\.0*)?([,}\] ]|$)' negzero_out/results.csv negzero_out/results.json > negzero.grep; then
    fail "-0 printed: $(head -5 negzero.grep)"
fi
[[ $(grep -c '^0,' negzero_out/results.csv) -gt 0 ]] || fail "no rows for cell 0"

echo "cli_errors: $failed failed"
[[ $failed == 0 ]]

#!/usr/bin/env bash
# Output that cannot be written: exit 1 with one clear line, no temporary files
# left behind, and results already in the directory left exactly as they were.
# Cases: the parent of -o is a file; a file-size limit (EFBIG, works anywhere);
# where this user may mount (root in a container), a full tmpfs (ENOSPC) and a
# read-only one (EROFS); and a directory this user may not write (EACCES; as
# root, the failing runs go through setpriv as nobody).
set -uo pipefail
bin=$1 src=$2 work=$3
rm -rf "$work"; mkdir -p "$work"
pass=0 failed=0
fail() { echo "FAIL: $*" >&2; failed=$((failed + 1)); }

cat > "$work/small.json" <<'JSON'
{"name": "small", "seeds": {"count": 4}, "network": {"depth": 2, "width": 3}}
JSON
# Big enough that its per_seed.csv (~1.5 MB) cannot fit in the limits below.
cat > "$work/big.json" <<'JSON'
{"name": "big", "seeds": {"count": 2000}, "grid": {"depth": [4, 8]}, "network": {"width": 3}}
JSON

# expect_failure NAME PATTERN CMD...: exit 1, one stderr line matching PATTERN (a bash glob).
expect_failure() {
    local name=$1 pattern=$2; shift 2
    "$@" > "$work/stdout" 2> "$work/stderr"
    local rc=$?
    local lines; mapfile -t lines < "$work/stderr"
    if [[ $rc != 1 ]]; then fail "$name: exit $rc (want 1): $(head -c 400 "$work/stderr")"; return 1; fi
    if [[ ${#lines[@]} != 1 ]]; then fail "$name: ${#lines[@]} lines on stderr: $(head -c 400 "$work/stderr")"; return 1; fi
    # shellcheck disable=SC2053
    if [[ ${lines[0]} != $pattern ]]; then fail "$name: stderr '${lines[0]}' does not match '$pattern'"; return 1; fi
    return 0
}

no_temporaries() {
    local name=$1 dir=$2
    local left; left=$(find "$dir" -name '*.tmp.*' 2>/dev/null)
    [[ -z $left ]] || { fail "$name: temporary files left behind: $left"; return 1; }
}

# Runs small.json into DIR, keeps a copy of the results, then runs big.json over
# them with --force under the given wrapper; the earlier results must survive.
earlier_results_survive() {
    local name=$1 dir=$2 pattern=$3; shift 3
    rm -rf "$dir" 2>/dev/null
    "$bin" run "$work/small.json" -o "$dir" -q --per-seed --backend cpu || { fail "$name: setup run failed"; return 1; }
    rm -rf "$work/before"; cp -r "$dir" "$work/before"
    local ok=1
    expect_failure "$name" "$pattern" "$@" "$bin" run "$work/big.json" -o "$dir" -q --per-seed --force --backend cpu || ok=0
    no_temporaries "$name" "$dir" || ok=0
    diff -r "$work/before" "$dir" > /dev/null || { fail "$name: earlier results changed"; ok=0; }
    ((ok)) && pass=$((pass + 1))
}

# 1. The parent of -o is a regular file: nothing can be created.
touch "$work/a_file"
if expect_failure parent_is_file "gradsweep: error: cannot create $work/a_file/out: *" \
       "$bin" run "$work/small.json" -o "$work/a_file/out" -q --backend cpu; then
    [[ -f $work/a_file && ! -s $work/a_file ]] && pass=$((pass + 1)) || fail "parent_is_file: the file was touched"
fi

# 2. A file-size limit: writes fail with EFBIG ("File too large") instead of the
#    process being killed, because SIGXFSZ is ignored (and stays ignored across exec).
with_size_limit() { (trap '' XFSZ; ulimit -f 64; exec "$@"); }
rm -rf "$work/limited"
if expect_failure size_limit_fresh "gradsweep: error: cannot write $work/limited/*: File too large" \
       with_size_limit "$bin" run "$work/big.json" -o "$work/limited" -q --per-seed --backend cpu; then
    no_temporaries size_limit_fresh "$work/limited" && pass=$((pass + 1))
    # All or nothing: not even the small files of the failed run were put in place.
    [[ -z $(ls -A "$work/limited") ]] || fail "size_limit_fresh: partial results left: $(ls "$work/limited")"
fi
earlier_results_survive size_limit_over_earlier "$work/limited2" \
    "gradsweep: error: cannot write $work/limited2/*: File too large" with_size_limit

# 3. A real full disk and a read-only one, where tmpfs can be mounted.
mnt="$work/mnt"
mkdir -p "$mnt"
if mount -t tmpfs -o size=256k gradsweep_test "$mnt" 2> /dev/null; then
    trap 'umount "$mnt" 2>/dev/null' EXIT
    earlier_results_survive disk_full "$mnt/out" "gradsweep: error: cannot write $mnt/out/*: No space left on device"
    # The failed run's temporary files were removed: the space is free again.
    "$bin" run "$work/small.json" -o "$mnt/again" -q --backend cpu && pass=$((pass + 1)) || fail "disk_full: space not freed"
    mount -o remount,ro "$mnt"
    earlier_read_only() {
        local ok=1
        expect_failure read_only "gradsweep: error: cannot write $mnt/out/*: Read-only file system" \
            "$bin" run "$work/big.json" -o "$mnt/out" -q --force --backend cpu || ok=0
        diff -r "$work/before" "$mnt/out" > /dev/null || { fail "read_only: earlier results changed"; ok=0; }
        expect_failure read_only_mkdir "gradsweep: error: cannot create $mnt/new: Read-only file system" \
            "$bin" run "$work/small.json" -o "$mnt/new" -q --backend cpu || ok=0
        ((ok)) && pass=$((pass + 1))
    }
    earlier_read_only
    umount "$mnt"
    trap - EXIT
else
    echo "write_failures: cannot mount a tmpfs here; disk-full and read-only cases skipped"
fi

# 4. A directory this user may not write (EACCES). Root writes anywhere, so as
#    root the runs go through setpriv as nobody; the earlier results belong to
#    the setup user and must survive --force.
as_user=()
if [[ $(id -u) == 0 ]]; then
    command -v setpriv > /dev/null && as_user=(setpriv --reuid=65534 --regid=65534 --clear-groups)
fi
if [[ $(id -u) != 0 || ${#as_user[@]} != 0 ]]; then
    ro="$work/unwritable"
    rm -rf "$ro"
    if "$bin" run "$work/small.json" -o "$ro" -q --per-seed --backend cpu; then
        chmod 555 "$ro"
        chmod a+r "$work/small.json" "$work/big.json"
        if "${as_user[@]}" test -x "$bin" -a -r "$work/big.json"; then
            rm -rf "$work/before"; cp -r "$ro" "$work/before"
            ok=1
            expect_failure unwritable_dir "gradsweep: error: cannot write $ro/*: Permission denied" \
                "${as_user[@]}" "$bin" run "$work/big.json" -o "$ro" -q --per-seed --force --backend cpu || ok=0
            no_temporaries unwritable_dir "$ro" || ok=0
            diff -r "$work/before" "$ro" > /dev/null || { fail "unwritable_dir: earlier results changed"; ok=0; }
            expect_failure unwritable_parent "gradsweep: error: cannot create $ro/sub: Permission denied" \
                "${as_user[@]}" "$bin" run "$work/small.json" -o "$ro/sub" -q --backend cpu || ok=0
            ((ok)) && pass=$((pass + 1))
        else
            echo "write_failures: nobody cannot reach $bin or $work; unwritable-directory case skipped"
        fi
        chmod 755 "$ro"
    else
        fail "unwritable_dir: setup run failed"
    fi
else
    echo "write_failures: root without setpriv; unwritable-directory case skipped"
fi

echo "write_failures: $pass passed, $failed failed"
[[ $failed == 0 ]]

# Sourced by the CLI tests that stop a run part-way (resume_kill.sh, signals.sh,
# progress.sh). A run started with GRADSWEEP_TEST_GATE=FILE writes no more work
# units than FILE says (src/run/test_gate.hpp), so such a test picks the point
# of the run's progress where it signals or kills, and the run cannot finish
# before that, however fast or slow (loaded) the machine is. The waits below
# poll for a state and have no deadline: a hang is reported by ctest's timeout.
# The test defines fail() (it may exit, or count and return).

# gate_at FILE N: from now on the gated run writes units only while fewer than N
# (resumed ones included) are done. Written whole, so the run never reads half a number.
gate_at() {
    echo "$2" > "$1.new" && mv -f "$1.new" "$1"
}

# units_on_disk DIR: finished units in a run directory: unit files, plus the
# units of each summarised cell (UNITS_PER_CELL of them, set by the test). A run
# summarises a cell by writing its cell file and then deleting the cell's unit
# files, so for a moment both exist: unit files of a cell that has its cell file
# are not counted again. Cells are listed before units, so the count can lag
# the run but never run ahead of it (a test that waits for N units then has N).
units_on_disk() {
    local f k u=0 c=0
    local -A summarised=()
    for f in "$1"/cells/cell-*.bin; do
        [[ -e $f ]] || continue
        k=${f##*/cell-}
        summarised[${k%.bin}]=1
        c=$((c + 1))
    done
    for f in "$1"/units/cell-*-block-*.bin; do
        [[ -e $f ]] || continue
        k=${f##*/cell-}
        [[ -n ${summarised[${k%%-*}]:-} ]] || u=$((u + 1))
    done
    echo $((u + UNITS_PER_CELL * c))
}

# wait_units DIR N PID: until DIR holds at least N finished units; fails if PID
# ends first (the test then never had the run where it wanted it).
wait_units() {
    while (($(units_on_disk "$1") < $2)); do
        kill -0 "$3" 2> /dev/null || { fail "the run (pid $3) ended before $2 units were on disk ($(units_on_disk "$1"))"; return 1; }
        sleep 0.01
    done
}

# wait_line FILE REGEX PID: until FILE has a line matching REGEX (grep -E);
# fails if PID ends first.
wait_line() {
    until grep -qE -- "$2" "$1" 2> /dev/null; do
        kill -0 "$3" 2> /dev/null || { fail "the run (pid $3) ended before printing a line matching '$2'"; return 1; }
        sleep 0.01
    done
}

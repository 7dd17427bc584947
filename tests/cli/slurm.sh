#!/usr/bin/env bash
# A real single-node Slurm, end to end: starts munged, slurmctld and slurmd on
# localhost with a private configuration under the scratch directory, submits a
# sweep with scripts/slurm/submit.sh (job array of shards + merge job with
# --dependency=afterok), waits for the merge, and checks the merged
# results equal an unsharded run to the bit. Stops exactly the daemons it
# started, by pid. Skips (77) without root or without Slurm and munge installed
# (scripts/ci_slurm.sh installs them).
set -uo pipefail
bin=$1 src=$2 work=$3
fail() { echo "FAIL: $*" >&2; dump_logs; exit 1; }
skip() { echo "slurm: SKIPPED: $*"; exit 77; }

[[ $(id -u) == 0 ]] || skip "needs root to run slurmd"
for b in munged munge slurmctld slurmd sbatch squeue scontrol scancel; do
    command -v "$b" > /dev/null || skip "$b not installed (apt-get install slurm-wlm munge, or run scripts/ci_slurm.sh)"
done
[[ -r /etc/munge/munge.key ]] || skip "/etc/munge/munge.key missing"

rm -rf "$work"; mkdir -p "$work"
work=$(cd "$work" && pwd)
# munged insists that the directory of its socket is not writable by others
# and can be searched by all.
run=$work/run
mkdir -p "$run" "$run/state" "$run/spool" "$run/log"
chmod 711 "$work" "$run"
install -m 400 /etc/munge/munge.key "$run/munge.key"

pids=()
dump_logs() {
    for f in "$run"/log/*.log "$run"/log/*.out "$work"/out/logs/*.out; do
        [[ -s $f ]] && { echo "--- $f"; tail -15 "$f"; }
    done >&2 2> /dev/null || true
}
cleanup() {
    if [[ -n ${SLURM_CONF:-} && -n ${array_id:-} ]]; then scancel "$array_id" "${merge_id:-}" 2> /dev/null || true; fi
    # Newest first: slurmd, slurmctld, munged. SIGTERM, then SIGKILL after 10 s.
    local i pid
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do kill "${pids[i]}" 2> /dev/null || true; done
    for pid in "${pids[@]}"; do
        for _ in $(seq 100); do kill -0 "$pid" 2> /dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2> /dev/null || true
        wait "$pid" 2> /dev/null || true
    done
}
trap cleanup EXIT
trap "exit 143" TERM INT

# The waits below have no deadline, however loaded the machine: each ends when
# the state is reached, or fails when a daemon it needs has died. A hang is
# caught by the caller's bound (ctest's timeout; scripts/ci_slurm.sh's).
alive() {  # NAME: fail unless the daemon NAME we started still runs
    kill -0 "${daemon_pid[$1]}" 2> /dev/null || fail "$1 (pid ${daemon_pid[$1]}) exited"
}
declare -A daemon_pid

# Two free TCP ports, so a Slurm already on this machine is never disturbed.
port_free() { ! (exec 3<> "/dev/tcp/127.0.0.1/$1") 2> /dev/null; }
pick_port() {
    local p
    for _ in $(seq 50); do
        p=$((20000 + RANDOM % 20000))
        port_free "$p" && port_free $((p + 1)) && { echo "$p"; return; }
    done
    fail "no free port"
}
port=$(pick_port)
host=$(hostname -s)

munged -F --force --socket="$run/munge.sock" --key-file="$run/munge.key" --pid-file="$run/munged.pid" \
    --log-file="$run/log/munged.log" --seed-file="$run/munged.seed" > "$run/log/munged.out" 2>&1 &
pids+=($!) daemon_pid[munged]=$!
until [[ -S $run/munge.sock ]]; do alive munged; sleep 0.1; done
munge -S "$run/munge.sock" -n | unmunge -S "$run/munge.sock" > /dev/null 2>&1 || fail "munged does not work"

cat > "$run/slurm.conf" <<EOF
ClusterName=gradsweeptest
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$port
SlurmdPort=$((port + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$run/munge.sock
CredType=cred/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MpiDefault=none
SchedulerType=sched/backfill
StateSaveLocation=$run/state
SlurmdSpoolDir=$run/spool
SlurmctldPidFile=$run/slurmctld.pid
SlurmdPidFile=$run/slurmd.pid
SlurmctldLogFile=$run/log/slurmctld.log
SlurmdLogFile=$run/log/slurmd.log
JobCompType=jobcomp/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MinJobAge=600
NodeName=$host NodeAddr=127.0.0.1 CPUs=$(nproc) RealMemory=2000 State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
export SLURM_CONF=$run/slurm.conf
slurmctld -D -c -f "$SLURM_CONF" > "$run/log/slurmctld.out" 2>&1 &
pids+=($!) daemon_pid[slurmctld]=$!
until scontrol ping 2> /dev/null | grep -q UP; do alive slurmctld; sleep 0.1; done
slurmd -D -f "$SLURM_CONF" > "$run/log/slurmd.out" 2>&1 &
pids+=($!) daemon_pid[slurmd]=$!
until sinfo -h -o %T 2> /dev/null | grep -q idle; do alive slurmctld; alive slurmd; sleep 0.2; done
echo "slurm: controller and node up (port $port)"

cat > "$work/spec.json" <<'JSON'
{"name": "slurm", "seeds": {"count": 1500, "first": 3},
 "grid": {"depth": [3, 6], "width": [8, 32], "activation": ["relu", "tanh"]},
 "network": {"input_dim": 4}, "input": {"distribution": "normal", "batch": 2}}
JSON
"$bin" run "$work/spec.json" -o "$work/ref" -q --per-seed --seed-block 256 || fail "unsharded run"

# Submitted held (--hold reaches both sbatch calls), so the dependency is seen
# before it can be satisfied and dropped, however fast the shards would run.
out=$work/out
submitted=$("$src/scripts/slurm/submit.sh" "$work/spec.json" "$out" --shards 3 --gradsweep "$bin" --seed-block 256 \
    --time=10 --hold) || fail "submit.sh: $submitted"
echo "slurm: $submitted"
source "$out/jobs.env"
array_id=$ARRAY_JOB_ID merge_id=$MERGE_JOB_ID
scontrol show job "$merge_id" | grep -q "Dependency=afterok:$array_id" || fail "merge job has no afterok dependency on $array_id"
scontrol release "$array_id" "$merge_id" || fail "cannot release the held jobs"

# job_state ID: its JobState ("" while scontrol cannot say, e.g. a busy controller).
job_state() { scontrol show job "$1" 2> /dev/null | grep -o 'JobState=[A-Z_]*' | cut -d= -f2 || true; }
# wait_job ID: until the job has ended; its final state in $state.
wait_job() {
    for ((;;)); do
        state=$(job_state "$1")
        case $state in "" | PENDING | CONFIGURING | RUNNING | COMPLETING | SUSPENDED | REQUEUED | RESIZING) ;; *) return ;; esac
        alive slurmctld; alive slurmd
        sleep 0.5
    done
}
wait_job "$merge_id"
[[ $state == COMPLETED ]] || fail "merge job ended as '$state'"
for k in 0 1 2; do
    task_state=$(scontrol show job "${array_id}_$k" 2> /dev/null | grep -o 'JobState=[A-Z_]*' | cut -d= -f2)
    [[ $task_state == COMPLETED ]] || fail "array task $k: '$task_state'"
    grep -q "\"index\": $k" "$out/shard-$k/results.json" || fail "shard-$k is not shard $k"
done
# The merge really ran after the shards: its start is not before any task's end.
merge_start=$(scontrol show job "$merge_id" | grep -o 'StartTime=[^ ]*' | cut -d= -f2)
for k in 0 1 2; do
    end=$(scontrol show job "${array_id}_$k" | grep -o 'EndTime=[^ ]*' | cut -d= -f2)
    [[ ! $merge_start < $end ]] || fail "merge started $merge_start before task $k ended $end"
done

cmp "$out/merged/results.csv" "$work/ref/results.csv" || fail "merged results.csv differs from the unsharded run"
/usr/bin/python3 "$src/tests/cli/scale_out_check.py" same "$out/merged/results.json" "$work/ref/results.json" \
    || fail "merged results.json differs from the unsharded run"
# per_seed.csv from the same shards, merged again by hand: identical too.
"$bin" merge "$out"/shard-{0,1,2} -o "$work/merged_ps" -q --per-seed || fail "merge --per-seed"
cmp "$work/merged_ps/per_seed.csv" "$work/ref/per_seed.csv" || fail "per_seed.csv differs"
echo "slurm: array $array_id (3 shards) + merge $merge_id (afterok) -> results identical to the unsharded run"

# A failing shard: the merge job must never run (afterok + --kill-on-invalid-dep).
out2=$work/out2
mkdir -p "$out2"
touch "$out2/shard-1"  # a file where shard 1's directory should be: that task exits 2
submitted=$("$src/scripts/slurm/submit.sh" "$work/spec.json" "$out2" --shards 3 --gradsweep "$bin" --seed-block 256 \
    --time=10) || fail "submit.sh (failing shard): $submitted"
source "$out2/jobs.env"
array_id=$ARRAY_JOB_ID merge_id=$MERGE_JOB_ID
wait_job "$merge_id"
[[ $state == CANCELLED ]] || fail "merge after a failed shard: '$state' (want CANCELLED)"
[[ ! -e $out2/merged ]] || fail "merge ran although a shard failed"
grep -q "exists and is not a directory" "$out2/logs/shard-1.out" || fail "shard 1 did not fail as arranged"
echo "slurm: a failed shard cancels the merge job"

# Paths full of shell and Slurm syntax (spaces, quotes, $(...), backticks, ;, |,
# >, a leading dash, Slurm's %-patterns, a newline): submitted by relative path
# from the scratch directory, nothing they spell runs (no MARKER_* file anywhere
# under it, where the submit script and the jobs run), the logs and results land
# in exactly that directory, and the results equal the reference.
nasty=$'-n $(touch MARKER_s1) `touch MARKER_s2`;touch MARKER_s3 |>MARKER_s4 "q" \'q\' %j %a %% \nline'
cd "$work" || fail "cd $work"
# A backslash, which Slurm drops from log paths, is refused before anything is
# submitted or created.
"$src/scripts/slurm/submit.sh" "$work/spec.json" 'back\slash' --shards 2 --gradsweep "$bin" > "$work/bs.out" 2>&1
rc=$?
[[ $rc == 2 && ! -e 'back\slash' ]] || fail "OUT with a backslash: exit $rc, $(cat "$work/bs.out")"
grep -q "must not contain a backslash" "$work/bs.out" || fail "OUT with a backslash: $(cat "$work/bs.out")"
cp -- "$work/spec.json" "$nasty.json" || fail "cannot create the spec file [$nasty.json]"
submitted=$("$src/scripts/slurm/submit.sh" "$nasty.json" "$nasty" --shards 2 --gradsweep "$bin" --seed-block 256 \
    --time=10 2>&1) || fail "submit.sh (nasty names): $submitted"
out3=$work/$nasty
[[ -f $out3/jobs.env ]] || fail "jobs.env not in [$out3]: $submitted"
source "$out3/jobs.env"
array_id=$ARRAY_JOB_ID merge_id=$MERGE_JOB_ID
for _ in $(seq 300); do
    state=$(scontrol show job "$merge_id" 2> /dev/null | grep -o 'JobState=[A-Z_]*' | cut -d= -f2)
    case $state in COMPLETED | FAILED | CANCELLED | TIMEOUT | NODE_FAIL | OUT_OF_MEMORY) break ;; esac
    sleep 0.5
done
[[ $state == COMPLETED ]] || { for f in "$out3"/logs/*; do echo "--- $f"; tail -5 -- "$f"; done >&2; fail "nasty names: merge job ended as '$state'"; }
for f in shard-0.out shard-1.out merge.out; do [[ -f $out3/logs/$f ]] || fail "nasty names: log $f not in [$out3/logs]: $(ls -- "$out3/logs")"; done
cmp -- "$out3/merged/results.csv" "$work/ref/results.csv" || fail "nasty names: merged results.csv differs from the unsharded run"
markers=$(find "$work" -type f -name 'MARKER_*' -print | head -5)
[[ -z $markers ]] || fail "shell syntax in a path was executed: $markers"
echo "slurm: spec and output paths with shell and Slurm syntax: logs and results in the directory given, nothing executed"
echo "slurm: 3 passed, 0 failed"

#!/usr/bin/env bash
# A real one-node Slurm cluster on this machine, for eg-slurm's tests.
#
#   plugins/eg_slurm/ci/setup.sh              install (if needed) and start munged, slurmctld, slurmd
#   plugins/eg_slurm/ci/setup.sh --teardown   stop them (by their recorded pids) and remove the run dir
#
# Idempotent: a cluster that answers `sinfo` with its node idle or mixed is left as it is.
#
# No systemd: munged runs as user munge, `slurmctld -D` and `slurmd -D` run as background
# processes (setsid) with their pids in $EG_SLURM_RUN. The node has NodeAddr=127.0.0.1, CPUs=8
# and SlurmdParameters=config_overrides, so several one-CPU kernel jobs share this machine's
# cores; MinJobAge=600 keeps ended jobs visible to `squeue --states=all` (there is no accounting
# storage, so no sacct). CommunicationParameters=NoCtldInAddrAny,NoInAddrAny makes the daemons
# bind 127.0.0.1 (the address their host name resolves to in slurm.conf), not every interface.
#
# The config goes to /etc/slurm/slurm.conf, where every Slurm command looks for it; an existing
# file that this script did not write is never replaced.
set -euo pipefail

RUN="${EG_SLURM_RUN:-/tmp/eg-slurm}"
CONF=/etc/slurm/slurm.conf
MARK="# written by eg-slurm ci/setup.sh"
NODE="$(hostname -s)"

say() { echo "eg-slurm setup: $*" >&2; }
die() { say "ERROR: $*"; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root (it installs packages and starts daemons)"

stop_pidfile() {
    local file="$1" pid
    [ -f "$file" ] || return 0
    pid="$(cat "$file")"
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$file"
}

teardown() {
    if command -v scancel >/dev/null && [ -f "$RUN/slurmctld.pid" ]; then
        timeout 20 scancel --full --quiet --user=root 2>/dev/null || true
    fi
    stop_pidfile "$RUN/slurmd.pid"
    stop_pidfile "$RUN/slurmctld.pid"
    stop_pidfile "$RUN/munged.pid"
    if [ -f "$CONF" ] && head -1 "$CONF" | grep -qF "$MARK"; then rm -f "$CONF"; fi
    rm -rf "$RUN"
    say "torn down"
}

if [ "${1:-}" = "--teardown" ]; then
    teardown
    exit 0
fi

# --- install ----------------------------------------------------------------------------------

missing=()
command -v slurmctld >/dev/null || missing+=(slurm-wlm)
command -v munged >/dev/null || missing+=(munge)
if [ ${#missing[@]} -gt 0 ]; then
    say "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # The packages must not start their system services: this script runs its own daemons.
    exec 7>/var/lock/eg-apt.lock; flock 7  # one apt at a time (scripts/test.sh runs eg-k8s's setup beside the others)
    guard=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && guard=1
    fi
    status=0
    { apt-get update -q && apt-get install -y -q "${missing[@]}"; } >&2 || status=$?
    [ -z "$guard" ] || rm -f /usr/sbin/policy-rc.d
    exec 7>&-
    [ "$status" = 0 ] || die "apt-get install ${missing[*]} failed"
fi

cluster_ready() {
    local state
    state="$(timeout 10 sinfo --noheader --nodes="$NODE" --format=%t 2>/dev/null || true)"
    case "$state" in idle|mix|alloc) return 0 ;; *) return 1 ;; esac
}

if [ -f "$RUN/slurmctld.pid" ] && kill -0 "$(cat "$RUN/slurmctld.pid")" 2>/dev/null \
    && [ -f "$RUN/slurmd.pid" ] && kill -0 "$(cat "$RUN/slurmd.pid")" 2>/dev/null && cluster_ready; then
    say "already running (node $NODE: $(sinfo --noheader --nodes="$NODE" --format=%t))"
    exit 0
fi

# --- munge ------------------------------------------------------------------------------------

mkdir -p /etc/munge /run/munge /var/log/munge /var/lib/munge "$RUN"
if [ ! -s /etc/munge/munge.key ]; then
    head -c 128 /dev/urandom > /etc/munge/munge.key
fi
chown munge:munge /etc/munge /etc/munge/munge.key /run/munge /var/log/munge /var/lib/munge
chmod 700 /etc/munge /var/log/munge
chmod 400 /etc/munge/munge.key
chmod 755 /run/munge
if ! timeout 5 munge -n </dev/null 2>/dev/null | timeout 5 unmunge >/dev/null 2>&1; then
    stop_pidfile "$RUN/munged.pid"
    say "starting munged"
    runuser -u munge -- /usr/sbin/munged --force
    for _ in $(seq 1 50); do [ -S /run/munge/munge.socket.2 ] && break; sleep 0.1; done
    pgrep -u munge -x munged | head -1 > "$RUN/munged.pid"
    munge -n </dev/null | unmunge >/dev/null || die "munged does not answer (see /var/log/munge/munged.log)"
fi

# --- slurm.conf ------------------------------------------------------------------------------

if [ -f "$CONF" ] && ! head -1 "$CONF" | grep -qF "$MARK"; then
    die "$CONF exists and was not written by this script; not replacing it"
fi
mkdir -p /etc/slurm "$RUN/state" "$RUN/spool"
cat > "$CONF.new" <<EOF
$MARK (EG_SLURM_RUN=$RUN)
ClusterName=eg
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CommunicationParameters=NoCtldInAddrAny,NoInAddrAny
StateSaveLocation=$RUN/state
SlurmdSpoolDir=$RUN/spool
SlurmctldPidFile=$RUN/slurmctld.daemon.pid
SlurmdPidFile=$RUN/slurmd.daemon.pid
SlurmctldLogFile=$RUN/slurmctld.log
SlurmdLogFile=$RUN/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
ReturnToService=2
SlurmdParameters=config_overrides
MinJobAge=600
KillWait=5
SchedulerParameters=sched_interval=2
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=8 RealMemory=8000 State=UNKNOWN
PartitionName=debug Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
mv "$CONF.new" "$CONF"

# --- daemons ----------------------------------------------------------------------------------

stop_pidfile "$RUN/slurmd.pid"
stop_pidfile "$RUN/slurmctld.pid"
say "starting slurmctld and slurmd (logs in $RUN)"
setsid /usr/sbin/slurmctld -D -i >"$RUN/slurmctld.out" 2>&1 < /dev/null &
echo $! > "$RUN/slurmctld.pid"
for _ in $(seq 1 100); do timeout 5 scontrol ping 2>/dev/null | grep -q UP && break; sleep 0.2; done
setsid /usr/sbin/slurmd -D >"$RUN/slurmd.out" 2>&1 < /dev/null &
echo $! > "$RUN/slurmd.pid"

for _ in $(seq 1 150); do
    cluster_ready && break
    state="$(timeout 10 sinfo --noheader --nodes="$NODE" --format=%t 2>/dev/null || true)"
    case "$state" in drain*|down*) scontrol update NodeName="$NODE" State=RESUME 2>/dev/null || true ;; esac
    sleep 0.2
done
cluster_ready || die "the node did not become idle: $(sinfo 2>&1); see $RUN/slurmctld.log and $RUN/slurmd.log"
say "ready (node $NODE idle; slurmctld pid $(cat "$RUN/slurmctld.pid"), slurmd pid $(cat "$RUN/slurmd.pid"))"

#!/usr/bin/env bash
# Bring up a one-node SLURM cluster on this machine (Debian 12, slurm 22.05) for the tests and CI:
# munged + slurmctld + slurmd, no systemd, no cgroups, no accounting. Run as root (or with sudo).
# Idempotent: if the cluster already answers with a usable node, it does nothing.
# Stop it with .ci/slurm-down.sh.
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
HOST="$(hostname -s)"
CONF=/etc/slurm/slurm.conf
MARK="# written by tbotan .ci/slurm-up.sh"

node_state() { timeout 10 sinfo -h -n "$HOST" -o %t 2>/dev/null | head -n1 || true; }
usable() { case "$(node_state)" in idle*|mix*|alloc*|comp*) return 0;; *) return 1;; esac; }

if command -v sinfo >/dev/null 2>&1 && [ -f "$CONF" ] && usable; then
    echo "slurm-up: already up ($(sinfo -h -o '%P %D %t' | head -n1))"
    exit 0
fi

# 1. packages
if ! command -v sinfo >/dev/null 2>&1; then
    echo "slurm-up: installing slurm and munge"
    $SUDO apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        slurmctld slurmd slurm-client munge
fi

# 2. munge (started by hand: no systemd here)
$SUDO mkdir -p /run/munge /etc/munge /var/lib/munge /var/log/munge
$SUDO chown munge:munge /run/munge /var/lib/munge /var/log/munge
$SUDO chmod 0755 /run/munge
if [ ! -s /etc/munge/munge.key ]; then
    $SUDO dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
fi
$SUDO chown munge:munge /etc/munge /etc/munge/munge.key
$SUDO chmod 0700 /etc/munge
$SUDO chmod 0400 /etc/munge/munge.key
alive() { [ -f "$1" ] && $SUDO kill -0 "$($SUDO cat "$1")" 2>/dev/null; }
if ! alive /run/munge/munged.pid; then
    $SUDO runuser -u munge -- /usr/sbin/munged
fi

# 3. slurm.conf (only ever overwrite a file this script wrote)
if [ -f "$CONF" ] && ! grep -qF "$MARK" "$CONF"; then
    echo "slurm-up: $CONF exists and was not written by this script; not touching it" >&2
    exit 1
fi
NCPU="$(nproc)"
MEM_MB="$(slurmd -C | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p')"
REAL_MB=$(( MEM_MB - 1024 ))
DEF_MB=$(( REAL_MB / NCPU ))
if [ "$DEF_MB" -gt 1024 ]; then DEF_MB=1024; fi
$SUDO mkdir -p /etc/slurm /var/lib/slurm/slurmctld /var/lib/slurm/slurmd /var/log/slurm
$SUDO chown -R slurm:slurm /var/lib/slurm/slurmctld /var/log/slurm
$SUDO tee "$CONF" >/dev/null <<CONFEOF
$MARK
ClusterName=tbotan-ci
SlurmctldHost=${HOST}(127.0.0.1)
SlurmUser=slurm
AuthType=auth/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=${DEF_MB}
ReturnToService=2
KillWait=5
MinJobAge=30
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
StateSaveLocation=/var/lib/slurm/slurmctld
SlurmdSpoolDir=/var/lib/slurm/slurmd
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
NodeName=${HOST} NodeAddr=127.0.0.1 CPUs=${NCPU} RealMemory=${REAL_MB} State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONFEOF

# 4. daemons (both daemonize and write their PID files)
alive /run/slurmctld.pid || $SUDO slurmctld
alive /run/slurmd.pid || $SUDO slurmd

# 5. wait for the node
for _ in $(seq 1 60); do
    state="$(node_state)"
    case "$state" in
        idle*|mix*|alloc*) echo "slurm-up: node $HOST is $state ($NCPU CPUs, ${REAL_MB} MB)"; exit 0;;
        down*|drain*|fail*) $SUDO scontrol update nodename="$HOST" state=resume 2>/dev/null || true;;
    esac
    sleep 1
done
echo "slurm-up: node $HOST did not become idle (state: '$(node_state)'); see /var/log/slurm/" >&2
exit 1

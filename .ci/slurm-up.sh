#!/usr/bin/env bash
# Bring up a one-node SLURM cluster on this machine (Debian 12, slurm 22.05) for the tests and CI:
# munged + slurmctld + slurmd, no systemd, no cgroups, no accounting. Run as root (or with sudo).
# The node declares two stand-in GPUs as generic resources (gres gpu:2 on the character devices
# /dev/tbotan-gpu0 and /dev/tbotan-gpu1, copies of /dev/null), so that jobs asking --gpus-per-task or
# --gres=gpu:N run and get CUDA_VISIBLE_DEVICES from SLURM as on a GPU cluster.
# Idempotent: if the cluster already answers with a usable node and its configuration is the one this script
# writes, it does nothing; a cluster up with another configuration (e.g. without the gres) is rewritten and its
# daemons restarted. Stop it with .ci/slurm-down.sh.
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
HOST="$(hostname -s)"
CONF=/etc/slurm/slurm.conf
GRES_CONF=/etc/slurm/gres.conf
MARK="# written by tbotan .ci/slurm-up.sh"
GPU_DEVICES="/dev/tbotan-gpu0 /dev/tbotan-gpu1"  # stand-in GPUs: character devices 1:3 (like /dev/null)

node_state() { timeout 10 sinfo -h -n "$HOST" -o %t 2>/dev/null | head -n1 || true; }
usable() { case "$(node_state)" in idle*|mix*|alloc*|comp*) return 0;; *) return 1;; esac; }
node_gres() { timeout 10 sinfo -h -n "$HOST" -o %G 2>/dev/null | head -n1 || true; }
devices_present() { local d; for d in $GPU_DEVICES; do [ -c "$d" ] || return 1; done; }

# 1. packages
if ! command -v sinfo >/dev/null 2>&1; then
    echo "slurm-up: installing slurm and munge"
    $SUDO apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        slurmctld slurmd slurm-client munge
fi

# 2. the configuration this script wants
NCPU="$(nproc)"
MEM_MB="$(slurmd -C | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p')"
REAL_MB=$(( MEM_MB - 1024 ))
DEF_MB=$(( REAL_MB / NCPU ))
if [ "$DEF_MB" -gt 1024 ]; then DEF_MB=1024; fi
SLURM_CONF_TEXT="$(cat <<CONFEOF
$MARK
ClusterName=tbotan-ci
SlurmctldHost=${HOST}(127.0.0.1)
SlurmUser=slurm
AuthType=auth/munge
MpiDefault=none
GresTypes=gpu
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
NodeName=${HOST} NodeAddr=127.0.0.1 CPUs=${NCPU} RealMemory=${REAL_MB} Gres=gpu:2 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONFEOF
)"
GRES_CONF_TEXT="$(cat <<GRESEOF
$MARK
AutoDetect=off
Name=gpu File=/dev/tbotan-gpu[0-1]
GRESEOF
)"
if command -v sinfo >/dev/null 2>&1 && usable && devices_present \
    && [ "$(cat "$CONF" 2>/dev/null || true)" = "$SLURM_CONF_TEXT" ] \
    && [ "$(cat "$GRES_CONF" 2>/dev/null || true)" = "$GRES_CONF_TEXT" ]; then
    echo "slurm-up: already up ($(sinfo -h -o '%P %D %t %G' | head -n1))"
    exit 0
fi

# 3. munge (started by hand: no systemd here)
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

# 4. slurm.conf and gres.conf (only ever overwrite files this script wrote)
for f in "$CONF" "$GRES_CONF"; do
    if [ -f "$f" ] && ! grep -qF "$MARK" "$f"; then
        echo "slurm-up: $f exists and was not written by this script; not touching it" >&2
        exit 1
    fi
done
for d in $GPU_DEVICES; do
    [ -c "$d" ] || { $SUDO rm -f "$d"; $SUDO mknod -m 0666 "$d" c 1 3; }
done
$SUDO mkdir -p /etc/slurm /var/lib/slurm/slurmctld /var/lib/slurm/slurmd /var/log/slurm
$SUDO chown -R slurm:slurm /var/lib/slurm/slurmctld /var/log/slurm
CHANGED=0
write_if_changed() {  # write_if_changed FILE TEXT: CHANGED=1 when FILE did not hold TEXT
    if [ "$($SUDO cat "$1" 2>/dev/null || true)" != "$2" ]; then
        printf '%s\n' "$2" | $SUDO tee "$1" >/dev/null
        echo "slurm-up: wrote $1"
        CHANGED=1
    fi
}
write_if_changed "$CONF" "$SLURM_CONF_TEXT"
write_if_changed "$GRES_CONF" "$GRES_CONF_TEXT"

# 5. daemons (both daemonize and write their PID files); restarted when the configuration changed
stop() {  # stop PIDFILE: TERM the daemon and wait for it
    local pid
    alive "$1" || return 0
    pid="$($SUDO cat "$1")"
    $SUDO kill -TERM "$pid"
    for _ in $(seq 1 40); do $SUDO kill -0 "$pid" 2>/dev/null || return 0; sleep 0.5; done
    echo "slurm-up: $1 ($pid) did not stop" >&2
    return 1
}
if [ "$CHANGED" = 1 ]; then
    if alive /run/slurmd.pid || alive /run/slurmctld.pid; then echo "slurm-up: configuration changed: restarting"; fi
    stop /run/slurmd.pid
    stop /run/slurmctld.pid
fi
alive /run/slurmctld.pid || $SUDO slurmctld
alive /run/slurmd.pid || $SUDO slurmd

# 6. wait for the node (and its gres: a node still registered without them is not ready)
for _ in $(seq 1 60); do
    state="$(node_state)"
    case "$state" in
        idle*|mix*|alloc*)
            gres="$(node_gres)"
            case "$gres" in
                *gpu:2*) echo "slurm-up: node $HOST is $state ($NCPU CPUs, ${REAL_MB} MB, gres $gres)"; exit 0;;
            esac;;
        down*|drain*|fail*) $SUDO scontrol update nodename="$HOST" state=resume 2>/dev/null || true;;
    esac
    sleep 1
done
echo "slurm-up: node $HOST did not become idle (state: '$(node_state)'); see /var/log/slurm/" >&2
exit 1

#!/usr/bin/env bash
# Stop the SLURM daemons and munged started by .ci/slurm-up.sh (by their PID files), and remove its stand-in GPU
# device files (slurm-up.sh makes them again; its configuration files stay).
set -uo pipefail
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
for pidfile in /run/slurmd.pid /run/slurmctld.pid /run/munge/munged.pid; do
    [ -f "$pidfile" ] || continue
    pid="$($SUDO cat "$pidfile")"
    if $SUDO kill -0 "$pid" 2>/dev/null; then
        $SUDO kill -TERM "$pid"
        for _ in $(seq 1 20); do $SUDO kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
        echo "slurm-down: stopped $(basename "$pidfile" .pid) ($pid)"
    fi
done
for dev in /dev/tbotan-gpu0 /dev/tbotan-gpu1; do
    if [ -c "$dev" ]; then $SUDO rm -f "$dev"; fi
done
exit 0

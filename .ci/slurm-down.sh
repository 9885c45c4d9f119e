#!/usr/bin/env bash
# Stop the SLURM daemons and munged started by .ci/slurm-up.sh (by their PID files).
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
exit 0

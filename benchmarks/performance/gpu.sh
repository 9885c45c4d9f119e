#!/usr/bin/env bash
# The acceptance check of a GPU node in under 8 minutes (benchmarks/performance/gpu.py's docstring says what it
# measures): OpenMM platforms, a 2-replica ensemble on the GPU against the CPU platform, a FIRE quench whose residual
# Reference measures, reused against fresh contexts, MD throughput with 1, 2, 4, 8 replicas at N = 4096 (with and
# without CUDA MPS where nvidia-cuda-mps-control exists), a training step eager / compiled / bf16, DDP over 2 ranks.
#     bash benchmarks/performance/gpu.sh [gpu.py options]   # e.g. --platform CUDA --out gpu.json --name gpu_h100
# Prints one JSON object (--out FILE: also there; --record: also benchmarks/results/gpu.json; --name NAME: also
# benchmarks/results/NAME.json); exits 1 when a check fails. Where the node's Python lacks tbotan's dependencies
# (OpenMM, dask, zarr), put their wheels in .whl/ (see docs/slurm.md, "Measuring a GPU node") and they are installed
# into /tmp/site first.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"  # the repository root
if ! python3 -c "import openmm, dask, zarr" 2>/dev/null && ls "$root"/.whl/*.whl >/dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
        "$root"/.whl/*.whl
    export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
exec timeout 480 python3 "$root/benchmarks/performance/gpu.py" "$@"

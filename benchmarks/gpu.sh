#!/usr/bin/env bash
# One GPU node in under 8 minutes: MD throughput with 1, 2, 4, 8 concurrent replicas at N = 4096, one FIRE quench
# in double, a training step eager / compiled / bf16 (benchmarks/gpu.py; JSON in benchmarks/results/gpu.json).
#     bash benchmarks/gpu.sh [gpu.py options]          # e.g. --N 4096 --concurrent 1 2 4 8
# Where the node's Python lacks tbotan's dependencies (OpenMM, dask, zarr), put their wheels in .whl/ (see
# docs/slurm.md, "Measuring a GPU node") and they are installed into /tmp/site first. With CUDA MPS running
# (hpc/slurm-gpu.yaml's `mps`), the concurrent replicas share the GPU as the workers of one job do.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! python3 -c "import openmm, dask, zarr" 2>/dev/null && ls .whl/*.whl >/dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH="/tmp/site:$(pwd)${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$(pwd)${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
cd benchmarks
exec timeout 480 python3 gpu.py "$@"

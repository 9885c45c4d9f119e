#!/usr/bin/env bash
#SBATCH --job-name=tbotan-pipeline
#SBATCH --ntasks=1
#SBATCH --cpus-per-task=1
#SBATCH --output=tbotan-pipeline-%j.out
# The whole T-BOTAN run on a SLURM cluster:
#     sbatch [sbatch options, e.g. -t 2-00:00:00 -p long] slurm/pipeline.sh SPEC [PROFILE] [STORE]
# This job is the small driver (one core): it makes the data with Dask workers that are SLURM jobs of their own
# (the profile, default hpc/slurm-cpu.yaml), then submits the training job (the profile's `training` section:
# train, evaluate and report as srun steps with torch.distributed) and ends. Everything resumes: if this job or
# the training job dies, submit the same command again. Watch with `tbotan status STORE` from a login node.
set -euo pipefail
SPEC="${1:?usage: sbatch slurm/pipeline.sh SPEC [PROFILE] [STORE]}"
PROFILE="${2:-hpc/slurm-cpu.yaml}"
STORE="${3:-storage/$(basename "${SPEC%.*}").zarr}"
PY="${TBOTAN_PYTHON:-python3}"
cd "${SLURM_SUBMIT_DIR:-.}"
for f in "$SPEC" "$PROFILE"; do
    [ -f "$f" ] || { echo "slurm/pipeline.sh: $f not found (relative paths are from $(pwd))" >&2; exit 2; }
done
command -v sbatch >/dev/null || { echo "slurm/pipeline.sh: sbatch is not on PATH" >&2; exit 2; }
"$PY" -c "import tbotan" 2>/dev/null || { echo "slurm/pipeline.sh: $PY cannot import tbotan (activate its environment before sbatch, or set TBOTAN_PYTHON)" >&2; exit 2; }
echo "tbotan pipeline on $(hostname) (job ${SLURM_JOB_ID:-none}): spec $SPEC, profile $PROFILE, store $STORE"
echo "the Dask dashboard is on this node (address below); from your laptop: ssh -L 8787:$(hostname):8787 <login node>"
"$PY" -m tbotan validate "$SPEC"
"$PY" -m tbotan plan "$SPEC" --cluster "$PROFILE" || echo "(no plan: $?; the run goes on)"
"$PY" -m tbotan simulate "$SPEC" --store "$STORE" --cluster "$PROFILE"
"$PY" -m tbotan.hpc.slurm "$SPEC" --store "$STORE" --cluster "$PROFILE"

"""The training job of ``sbatch slurm/pipeline.sh``: train, evaluate and report as ``srun`` steps.

slurm/pipeline.sh is a small one-core driver job: it makes the data with the profile's Dask workers (each a
SLURM job, tbotan.hpc.cluster), then calls ``python -m tbotan.hpc.slurm SPEC --store STORE --cluster PROFILE``, which
writes and submits this job (from the profile's ``training`` section) and exits; the GPUs are asked for only
once the data exist. The job script (kept as ``<store>.logs/train-job.sh``, output in
``<store>.logs/train-<jobid>.out``) does:

    #SBATCH --nodes=.. --ntasks-per-node=.. --cpus-per-task=.. [--gpus-per-task=..] --mem=.. -t .. [-p ..] [-A ..]
    <prologue lines: module load ..., source venv/bin/activate>
    export MASTER_ADDR=<first node of the job> MASTER_PORT=<from the job id> OMP_NUM_THREADS=<cpus per task>
    srun --cpus-per-task="$SLURM_CPUS_PER_TASK" python -m tbotan train SPEC --store STORE  # a rank per task
    srun --cpus-per-task="$SLURM_CPUS_PER_TASK" python -m tbotan evaluate SPEC --store STORE
    python -m tbotan report --store STORE

torch.distributed reads the ranks from SLURM (SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID; tbotan.learn.distributed),
so the same script runs on one node or many. With ``--gpus-per-task=1`` each rank sees only its own GPU
(CUDA_VISIBLE_DEVICES per task) and takes cuda:0 (``LOCAL_RANK % torch.cuda.device_count()``); the tasks run on nccl.
srun is given ``--cpus-per-task`` again: since Slurm 22.05 it no longer inherits sbatch's. Every stage resumes, so a
job that dies (walltime, node failure) is simply submitted again (rerun pipeline.sh, or
``sbatch <store>.logs/train-job.sh``).
"""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from ..errors import ProfileError, TbotanError
from .cluster import SlurmProfile, load_profile, logs_path

logger = logging.getLogger(__name__)


# Slurm >= 22.05 no longer hands sbatch's --cpus-per-task to srun (each rank would get one CPU): ask it again
SRUN = 'srun --kill-on-bad-exit=1 --cpus-per-task="$SLURM_CPUS_PER_TASK"'


def job_script(spec_path, store_path, profile: SlurmProfile, python: str | None = None) -> str:
    t = profile.training
    store = Path(store_path).resolve()
    logs = logs_path(store)
    py = shlex.quote(python or profile.python or sys.executable)
    spec, st = shlex.quote(str(Path(spec_path).resolve())), shlex.quote(str(store))
    lines = [
        "#!/usr/bin/env bash",
        "#SBATCH --job-name=tbotan-train",
        f"#SBATCH --output={logs}/train-%j.out",
        f"#SBATCH --nodes={t.nodes}",
        f"#SBATCH --ntasks-per-node={t.tasks_per_node}",
        f"#SBATCH --cpus-per-task={t.cpus_per_task}",
        f"#SBATCH --mem={t.memory}",
        f"#SBATCH --time={t.walltime}",
    ]
    if t.gpus_per_task:
        lines.append(f"#SBATCH --gpus-per-task={t.gpus_per_task}")
    if t.queue:
        lines.append(f"#SBATCH --partition={t.queue}")
    if t.account:
        lines.append(f"#SBATCH --account={t.account}")
    lines += [f"#SBATCH {d}" for d in t.job_extra_directives]
    lines += [
        "set -euo pipefail",
        *t.job_script_prologue,
        'export MASTER_ADDR="$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)"',
        'export MASTER_PORT="$((20000 + SLURM_JOB_ID % 20000))"',
        'export OMP_NUM_THREADS="${SLURM_CPUS_PER_TASK:-1}"',
        'echo "tbotan training job $SLURM_JOB_ID: $SLURM_NTASKS ranks on $SLURM_JOB_NODELIST, '
        'rendezvous $MASTER_ADDR:$MASTER_PORT"',
        f"{SRUN} {py} -m tbotan train {spec} --store {st}",
        f"{SRUN} {py} -m tbotan evaluate {spec} --store {st}",
        f"{py} -m tbotan report --store {st}",
        "",
    ]
    return "\n".join(lines)


def submit_training(spec_path, store_path, profile: SlurmProfile) -> str:
    """Write the training job script next to the store and sbatch it; returns the job id."""
    if shutil.which("sbatch") is None:
        raise ProfileError(
            "sbatch is not on PATH: the training job cannot be submitted from here (run on a "
            "SLURM login or compute node, or use `tbotan train` / `tbotan run` locally)"
        )
    store = Path(store_path).resolve()
    logs = logs_path(store)
    logs.mkdir(parents=True, exist_ok=True)
    script = logs / "train-job.sh"
    script.write_text(job_script(spec_path, store, profile))
    # submitted from inside the driver job: its SLURM_* variables (SLURM_MEM_PER_CPU, ...) must not leak into
    # the new job, where srun would mix them with the job's own settings
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    r = subprocess.run(["sbatch", "--parsable", str(script)], capture_output=True, text=True, timeout=120, env=env)
    if r.returncode:
        raise ProfileError(f"sbatch refused the training job ({script}): {r.stderr.strip() or r.stdout.strip()}")
    job = r.stdout.strip().split(";")[0]
    logger.info(
        f"submitted training job {job} ({profile.training.nodes} node(s) x {profile.training.tasks_per_node} "
        f"rank(s)); script {script}; its output: {logs}/train-{job}.out"
    )
    return job


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m tbotan.hpc.slurm", description="submit the training/evaluation/report job of slurm/pipeline.sh"
    )
    p.add_argument("spec")
    p.add_argument("--store", required=True)
    p.add_argument("--cluster", required=True, help="a SLURM cluster profile (its 'training' section)")
    p.add_argument("--print", action="store_true", help="print the job script instead of submitting it")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        profile = load_profile(a.cluster)
        if not isinstance(profile, SlurmProfile):
            raise ProfileError(f"{a.cluster}: kind is {profile.kind!r}; the training job needs a SLURM profile")
        if a.print:
            print(job_script(a.spec, a.store, profile))
        else:
            print(submit_training(a.spec, a.store, profile), flush=True)
    except TbotanError as e:
        print(f"tbotan.hpc.slurm: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

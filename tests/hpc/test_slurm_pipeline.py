"""`sbatch slurm/pipeline.sh` on a real SLURM (tests marked `slurm`; .ci/slurm-up.sh brings one up): the driver
job makes the data with Dask workers that are SLURM jobs, then submits the training job, whose srun steps train
(2 ranks, one seed each), evaluate and report."""

import re
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import zarr

from tbotan.data.runs import model_dir
from tbotan.data.spec import load_spec
from tbotan.hpc.cluster import load_profile
from tbotan.hpc.slurm import job_script
from tbotan.learn.checkpoints import load_checkpoint
from tbotan.learn.train import train

ROOT = Path(__file__).resolve().parents[2]
CI_SPEC = ROOT / "jobs" / "ci.yaml"
PROFILE = ROOT / "hpc" / "slurm-cpu.yaml"


def test_training_job_script_follows_the_profile(tmp_path):
    gpu = load_profile(ROOT / "hpc" / "slurm-gpu.yaml")
    text = job_script(CI_SPEC, tmp_path / "s.zarr", gpu, python="/venv/bin/python")
    for line in (
        "#SBATCH --nodes=1",
        "#SBATCH --ntasks-per-node=4",
        "#SBATCH --gpus-per-task=1",
        "#SBATCH --partition=gpu",
        "#SBATCH --mem=64GB",
        "#SBATCH --time=24:00:00",
        f"#SBATCH --output={tmp_path}/s.zarr.logs/train-%j.out",
        # srun does not inherit sbatch's --cpus-per-task since Slurm 22.05: each srun line asks it again
        'srun --kill-on-bad-exit=1 --cpus-per-task="$SLURM_CPUS_PER_TASK" /venv/bin/python -m tbotan train '
        f"{CI_SPEC} --store {tmp_path}/s.zarr",
        'srun --kill-on-bad-exit=1 --cpus-per-task="$SLURM_CPUS_PER_TASK" /venv/bin/python -m tbotan evaluate '
        f"{CI_SPEC} --store {tmp_path}/s.zarr",
        f"/venv/bin/python -m tbotan report --store {tmp_path}/s.zarr",
    ):
        assert line in text.splitlines(), line
    sruns = [line for line in text.splitlines() if line.startswith("srun ")]
    assert len(sruns) == 2 and all('--cpus-per-task="$SLURM_CPUS_PER_TASK"' in line for line in sruns)
    assert "--gpus-per-task" not in job_script(CI_SPEC, tmp_path / "s.zarr", load_profile(PROFILE))


def test_pipeline_script_refuses_a_missing_spec(tmp_path):
    r = subprocess.run(
        ["bash", str(ROOT / "slurm" / "pipeline.sh"), str(tmp_path / "none.yaml")],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert r.returncode == 2 and "none.yaml not found" in r.stderr


def _state(job: str) -> str | None:
    out = subprocess.run(["squeue", "-h", "-j", job, "-o", "%T"], capture_output=True, text=True, timeout=30)
    return out.stdout.strip() or None


def _wait(job: str, timeout: float) -> None:
    end = time.monotonic() + timeout
    while _state(job) and time.monotonic() < end:
        time.sleep(2)
    if _state(job):
        subprocess.run(["scancel", job], timeout=30)
        pytest.fail(f"job {job} still {_state(job)} after {timeout} s")


@pytest.mark.slurm
def test_sbatch_pipeline_runs_to_a_report(slurm_up, ci_store, tmp_path):
    store = tmp_path / "ci.zarr"
    driver_log = tmp_path / "driver-%j.out"
    r = subprocess.run(
        [
            "sbatch",
            "--parsable",
            f"--output={driver_log}",
            "--time=30",
            str(ROOT / "slurm" / "pipeline.sh"),
            str(CI_SPEC),
            str(PROFILE),
            str(store),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert r.returncode == 0, r.stderr
    driver = r.stdout.strip().split(";")[0]
    _wait(driver, 900)
    out = Path(str(driver_log).replace("%j", driver)).read_text()
    found = re.search(r"submitted training job (\d+)", out)
    assert found, out[-3000:]
    trainer = found.group(1)
    _wait(trainer, 900)
    train_out = store.with_name("ci.zarr.logs") / f"train-{trainer}.out"
    text = train_out.read_text()
    assert "2 ranks" in text and (store / "report" / "index.html").exists(), text[-3000:]
    # the data equal the LocalCluster run's; the models equal 1-process trainings of each seed
    a, b = zarr.open_group(str(store), mode="r"), zarr.open_group(str(ci_store), mode="r")
    for T in ("T0.800", "T2.000"):
        for name in ("cb", "inherent", "edge_targets"):
            np.testing.assert_array_equal(a[T][name][:], b[T][name][:])
    spec = load_spec(CI_SPEC)
    alone = tmp_path / "alone.zarr"
    shutil.copytree(ci_store, alone, ignore=shutil.ignore_patterns("models", "predictions", "report*"))
    torch.set_num_threads(1)
    for seed, result in train(spec, alone).items():
        srun_model = load_checkpoint(model_dir(store, spec, "both", seed=seed) / "last.pt")["model"]
        for k, v in result["model"].state_dict().items():
            torch.testing.assert_close(srun_model[k], v, atol=1e-6, rtol=0)
    assert a["predictions/both/seed1"].attrs["complete"]

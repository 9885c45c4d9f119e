"""GPUs under SLURM, without a GPU: the CI cluster (.ci/slurm-up.sh) declares two stand-in GPUs as generic resources
(gres gpu:2), so SLURM sets CUDA_VISIBLE_DEVICES for real; the tests check the device each training rank and each MD
worker computes from it. And the CUDA MPS prologue of GPU worker jobs (tbotan.hpc.cluster.MPS_PROLOGUE), run by
bash with and without an ``nvidia-cuda-mps-control`` on PATH (a stand-in script that records its calls)."""

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tbotan.hpc.cluster import MPS_PROLOGUE
from tbotan.hpc.slurm import SRUN

ROOT = Path(__file__).resolve().parents[2]
JOB = "4242"  # SLURM_JOB_ID of the prologue runs: their folder is $TMPDIR/tbotan-mps-4242

# -- the MPS prologue -----------------------------------------------------------------------------------------------


def _bin(tmp_path, mps_control: str | None = None) -> Path:
    """A PATH folder with only the commands the prologue needs (so no real nvidia-cuda-mps-control is found),
    plus a stand-in ``nvidia-cuda-mps-control`` with the given bash body."""
    folder = tmp_path / "bin"
    folder.mkdir()
    for tool in ("mkdir", "rm"):
        (folder / tool).symlink_to(shutil.which(tool))
    if mps_control is not None:
        tool = folder / "nvidia-cuda-mps-control"
        tool.write_text(f"#!{shutil.which('bash')}\n{mps_control}\n")
        tool.chmod(0o755)
    return folder


def _run_prologue(tmp_path, folder: Path, strict: bool) -> subprocess.CompletedProcess:
    """The prologue's lines joined as dask_jobqueue joins them, then what a worker would see; ``strict``: under
    ``set -euo pipefail`` (a user's prologue may set it)."""
    body = [
        *(["set -euo pipefail"] if strict else []),
        *MPS_PROLOGUE,
        'echo "pipe=$CUDA_MPS_PIPE_DIRECTORY"',
        '[ -d "$CUDA_MPS_PIPE_DIRECTORY" ] && [ -d "$CUDA_MPS_LOG_DIRECTORY" ] && echo "folders made"',
    ]
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {"PATH": str(folder), "TMPDIR": str(tmp), "SLURM_JOB_ID": JOB, "HOME": str(tmp_path)}
    return subprocess.run(
        [shutil.which("bash"), "-c", "\n".join(body)], capture_output=True, text=True, timeout=60, env=env
    )


@pytest.mark.parametrize("strict", [False, True])
def test_mps_prologue_without_the_control_command_warns_and_goes_on(tmp_path, strict):
    r = _run_prologue(tmp_path, _bin(tmp_path), strict)
    assert r.returncode == 0, r.stderr
    warnings = [line for line in r.stderr.splitlines() if line]
    assert len(warnings) == 1, r.stderr
    assert "nvidia-cuda-mps-control is not on PATH" in warnings[0] and "time-sliced" in warnings[0]
    assert f"pipe={tmp_path}/tmp/tbotan-mps-{JOB}/pipe" in r.stdout and "folders made" in r.stdout
    assert list((tmp_path / "tmp").iterdir()) == []  # the job's tbotan-mps folder removed at exit


@pytest.mark.parametrize("strict", [False, True])
def test_mps_prologue_starts_the_daemon_and_quits_it_at_exit(tmp_path, strict):
    calls = tmp_path / "calls.txt"
    stand_in = (
        f'echo "args=$* pipe=$CUDA_MPS_PIPE_DIRECTORY" >> {calls}\n'
        f'if [ "$*" != "-d" ]; then read -r line; echo "stdin=$line" >> {calls}; fi'
    )
    r = _run_prologue(tmp_path, _bin(tmp_path, stand_in), strict)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    assert "folders made" in r.stdout
    pipe = f"{tmp_path}/tmp/tbotan-mps-{JOB}/pipe"
    assert calls.read_text().splitlines() == [f"args=-d pipe={pipe}", f"args= pipe={pipe}", "stdin=quit"]
    assert list((tmp_path / "tmp").iterdir()) == []


def test_mps_prologue_warns_when_the_daemon_does_not_start(tmp_path):
    calls = tmp_path / "calls.txt"
    r = _run_prologue(tmp_path, _bin(tmp_path, f'echo "args=$*" >> {calls}; exit 7'), strict=True)
    assert r.returncode == 0, r.stderr
    warnings = [line for line in r.stderr.splitlines() if line]
    assert len(warnings) == 1 and "nvidia-cuda-mps-control -d failed (status 7)" in warnings[0], r.stderr
    assert calls.read_text().splitlines() == ["args=-d"]  # no quit for a daemon that never ran
    assert list((tmp_path / "tmp").iterdir()) == []


# -- GPUs as SLURM sets them ----------------------------------------------------------------------------------------


@pytest.fixture
def slurm_gpus(slurm_up):
    """SLURM answers and its node has the stand-in GPUs of .ci/slurm-up.sh (gres gpu:2)."""
    try:
        out = subprocess.run(["sinfo", "-h", "-o", "%G"], capture_output=True, text=True, timeout=15)
    except subprocess.TimeoutExpired:
        pytest.skip("SLURM is not responding (sinfo timed out)")
    if "gpu:" not in out.stdout:
        pytest.skip(f"the SLURM node declares no GPUs (gres {out.stdout.strip()!r}); rerun .ci/slurm-up.sh")


# what each task prints: its CUDA_VISIBLE_DEVICES, SLURM_LOCALID, and the training rank's CUDA index (torch sees no
# GPU here: the count is the number of entries SLURM put in CUDA_VISIBLE_DEVICES)
RANK_CODE = """
import json, os
from tbotan.learn.distributed import local_cuda_index
cvd = os.environ.get("CUDA_VISIBLE_DEVICES", "")
local = int(os.environ["SLURM_LOCALID"])
count = len([d for d in cvd.split(",") if d])
print(json.dumps({"cvd": cvd, "local": local, "index": local_cuda_index(local, count),
                  "cpus": os.environ.get("SLURM_CPUS_PER_TASK")}), flush=True)
"""


def _srun(*args: str, timeout: float = 120) -> list[dict]:
    cmd = ["srun", "--job-name=tbotan-test-gpus", "--time=2", *args]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    except subprocess.TimeoutExpired:
        subprocess.run(["scancel", "--name", "tbotan-test-gpus"], timeout=30)
        pytest.fail(f"{' '.join(cmd)} did not end in {timeout} s")
    assert r.returncode == 0, r.stderr
    return [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]


def _check_ranks(tasks: list[dict]) -> None:
    assert sorted(t["local"] for t in tasks) == [0, 1], tasks
    assert all(len(t["cvd"].split(",")) == 1 for t in tasks), tasks  # one GPU each
    assert tasks[0]["cvd"] != tasks[1]["cvd"], tasks  # not the same one
    assert [t["index"] for t in tasks] == [0, 0], tasks  # cuda:LOCAL_RANK would be cuda:1 for local rank 1


@pytest.mark.slurm
def test_each_srun_task_with_its_own_gpu_takes_cuda_0(slurm_gpus):
    tasks = _srun("-n", "2", "--gpus-per-task=1", "--cpus-per-task=1", sys.executable, "-c", RANK_CODE)
    _check_ranks(tasks)


@pytest.mark.slurm
def test_training_job_srun_line_gives_each_rank_its_gpu_and_cpus(slurm_gpus, tmp_path):
    """The layout of tbotan.hpc.slurm.job_script (#SBATCH --gpus-per-task, srun with --cpus-per-task again)."""
    out = tmp_path / "job.out"
    script = tmp_path / "job.sh"
    script.write_text(
        "\n".join(
            [
                "#!/usr/bin/env bash",
                "#SBATCH --job-name=tbotan-test-gpus",
                f"#SBATCH --output={out}",
                "#SBATCH --nodes=1",
                "#SBATCH --ntasks-per-node=2",
                "#SBATCH --cpus-per-task=1",
                "#SBATCH --gpus-per-task=1",
                "#SBATCH --time=2",
                "set -euo pipefail",
                f"cd {ROOT}",
                f"{SRUN} {shlex.quote(sys.executable)} -c {shlex.quote(RANK_CODE)}",
                "",
            ]
        )
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    try:
        r = subprocess.run(["sbatch", "--wait", str(script)], capture_output=True, text=True, timeout=180, env=env)
    except subprocess.TimeoutExpired:
        subprocess.run(["scancel", "--name", "tbotan-test-gpus"], timeout=30)
        pytest.fail("the job did not end in 180 s")
    text = out.read_text() if out.exists() else ""
    assert r.returncode == 0, r.stderr + text
    tasks = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    _check_ranks(tasks)
    assert [t["cpus"] for t in tasks] == ["1", "1"], tasks


# each "worker process" position of a job that sees both GPUs: the MD worker's device (tbotan.md.engine)
WORKER_CODE = """
import json, os
from tbotan.md.engine import device_index, visible_gpus
gpus = visible_gpus()
print(json.dumps({"cvd": os.environ.get("CUDA_VISIBLE_DEVICES"), "gpus": gpus,
                  "devices": [device_index(p, gpus) for p in (0, 1)]}), flush=True)
"""


@pytest.mark.slurm
def test_md_workers_of_a_two_gpu_task_take_one_gpu_each(slurm_gpus):
    (task,) = _srun("-n", "1", "--gres=gpu:2", sys.executable, "-c", WORKER_CODE)
    assert len(task["cvd"].split(",")) == 2 and task["gpus"] == 2, task
    assert task["devices"] == [0, 1], task

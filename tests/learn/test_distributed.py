"""Which CUDA device each training rank takes (tbotan.learn.distributed): under ``srun --gpus-per-task=1`` each
rank sees one GPU (SLURM sets CUDA_VISIBLE_DEVICES per task) and must take cuda:0 whatever its local rank; under
torchrun every rank of a node sees all of them and takes cuda:LOCAL_RANK."""

import os

import pytest

from tbotan.learn.distributed import launched, local_cuda_index, rank_cuda_index


def test_local_cuda_index_wraps_the_local_rank_over_the_visible_gpus():
    assert [local_cuda_index(r, 1) for r in range(4)] == [0, 0, 0, 0]  # srun --gpus-per-task=1
    assert [local_cuda_index(r, 4) for r in range(4)] == [0, 1, 2, 3]  # torchrun, 4 GPUs on the node
    assert [local_cuda_index(r, 2) for r in range(4)] == [0, 1, 0, 1]  # 2 GPUs per 2 tasks
    with pytest.raises(ValueError, match="no CUDA device"):
        local_cuda_index(1, 0)


@pytest.fixture
def clean_env(monkeypatch):
    # set then deleted, so that monkeypatch also removes what launched() adds to os.environ
    for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.setenv(var, "")
        monkeypatch.delenv(var)
    return monkeypatch


def test_second_srun_task_with_its_own_gpu_takes_cuda_0(clean_env):
    # what srun -n 2 --gpus-per-task=1 gives the second task, and the job script's MASTER_ADDR
    for var, value in {
        "SLURM_PROCID": "1",
        "SLURM_NTASKS": "2",
        "SLURM_LOCALID": "1",
        "MASTER_ADDR": "127.0.0.1",
        "CUDA_VISIBLE_DEVICES": "1",
    }.items():
        clean_env.setenv(var, value)
    assert launched()
    assert os.environ["LOCAL_RANK"] == "1"
    assert rank_cuda_index(count=1) == 0  # the old code took cuda:1: "invalid device ordinal"
    assert rank_cuda_index(count=2) == 1  # the same rank seeing both GPUs (torchrun-like)


def test_torchrun_rank_takes_its_local_rank(clean_env):
    for var, value in {"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "3"}.items():
        clean_env.setenv(var, value)
    assert launched()
    assert rank_cuda_index(count=4) == 3

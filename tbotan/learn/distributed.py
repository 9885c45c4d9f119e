"""torch.distributed for training and evaluation: who am I, on which device, and one process group.

Launched by ``torchrun`` (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR/PORT in the environment) or by ``srun``
(SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID, with MASTER_ADDR set by the job script): backend nccl when CUDA is
used, gloo on CPU. Without either, everything runs in one process and the collectives are skipped.
"""

from __future__ import annotations

import contextlib
import datetime
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass
class Layout:
    rank: int = 0
    world: int = 1
    device: torch.device = torch.device("cpu")
    initialized_here: bool = False
    final_group: object = None  # a gloo group with a long timeout for the last barrier


def launched() -> bool:
    """True when started by torchrun or as one of several srun tasks (fills RANK etc. from SLURM's variables)."""
    if "RANK" in os.environ and "WORLD_SIZE" in os.environ:
        return True
    if "SLURM_PROCID" in os.environ and int(os.environ.get("SLURM_NTASKS", "1")) > 1 and "MASTER_ADDR" in os.environ:
        os.environ.setdefault("RANK", os.environ["SLURM_PROCID"])
        os.environ.setdefault("WORLD_SIZE", os.environ["SLURM_NTASKS"])
        os.environ.setdefault("LOCAL_RANK", os.environ.get("SLURM_LOCALID", "0"))
        os.environ.setdefault("MASTER_PORT", "29500")
        return True
    return False


def wants_cuda(device) -> bool:
    return torch.cuda.is_available() and (device is None or str(device).startswith("cuda"))


def local_cuda_index(local_rank: int, count: int) -> int:
    """The CUDA device (an index among this process's visible ones) of the rank ``local_rank`` on its node.

    torchrun on a node shows every rank all the node's GPUs: rank k takes cuda:k. ``srun --gpus-per-task=1`` shows
    each rank only its own GPU (CUDA_VISIBLE_DEVICES per task), so every rank takes cuda:0; in general
    ``local_rank % count``."""
    if count < 1:
        raise ValueError(f"no CUDA device visible to local rank {local_rank}")
    return local_rank % count


def rank_cuda_index(count: int | None = None) -> int:
    """This rank's CUDA device from LOCAL_RANK (filled from SLURM_LOCALID by ``launched``) among ``count`` visible
    GPUs (default: torch.cuda.device_count())."""
    count = torch.cuda.device_count() if count is None else count
    return local_cuda_index(int(os.environ.get("LOCAL_RANK", "0")), count)


def init(device=None) -> bool:
    """init_process_group (nccl with CUDA, else gloo) when launched by torchrun/srun; True if it did."""
    if dist.is_initialized() or not launched():
        return False
    if wants_cuda(device):
        torch.cuda.set_device(rank_cuda_index())
    dist.init_process_group("nccl" if wants_cuda(device) else "gloo")
    return True


@contextlib.contextmanager
def session(device=None):
    """One process group for several ``train``/``evaluate`` calls (a sweep) when launched by torchrun/srun."""
    made = init(device)
    try:
        yield
    finally:
        if made:
            dist.destroy_process_group()


def setup(device=None) -> Layout:
    """This process's rank, world size and device; joins (or starts) the process group when launched."""
    lay = Layout()
    cuda = wants_cuda(device)
    if dist.is_initialized() or launched():
        lay.initialized_here = init(device)
        lay.rank, lay.world = dist.get_rank(), dist.get_world_size()
        lay.device = torch.device("cuda", rank_cuda_index()) if cuda else torch.device("cpu")
        if lay.world > 1:
            lay.final_group = dist.new_group(backend="gloo", timeout=datetime.timedelta(days=30))
    else:
        lay.device = torch.device(device) if device is not None else torch.device("cuda" if cuda else "cpu")
    return lay


def reduce_sum(values: torch.Tensor, group) -> torch.Tensor:
    """In-place all_reduce(SUM) over ``group`` (``dist.group.WORLD`` for every rank); None: this rank alone."""
    if group is not None:
        dist.all_reduce(values, group=group)
    return values

"""The MD platform of every Dask worker, set and checked when the worker starts (a worker plugin).

A cluster profile's ``platform`` (``auto``, ``CUDA``, ``HIP``, ``OpenCL``, ``CPU``) is resolved on each worker by
``tbotan.md.engine.resolve_platform``; a platform a worker lacks raises at once with the package to install. A
worker that sees several GPUs takes the one at its position among its job's (or LocalCluster's) processes, so that
the workers of a whole-node allocation or a multi-GPU workstation spread over the GPUs; one that sees a single
GPU (SLURM's ``--gres=gpu:1``) leaves the choice to the platform.
"""

from __future__ import annotations

import os
import re

from distributed import WorkerPlugin

from ..errors import PlatformError


def worker_position(name, kind: str, processes: int = 1) -> int:
    """A worker's index among the processes of its job (SLURM), its node (MPI) or its LocalCluster. dask-jobqueue
    names a job's workers ``<job>-<i>`` when it has several, else ``<job>``; LocalCluster names them 0, 1, ...;
    under MPI the launcher's node-local rank says it."""
    if kind == "mpi":
        for var in ("OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "SLURM_LOCALID", "PMI_LOCAL_RANK"):
            if var in os.environ:
                return int(os.environ[var])
    if kind == "slurm":
        match = re.fullmatch(r".*-(\d+)", str(name))
        return int(match.group(1)) if processes > 1 and match else 0
    try:
        return int(name)
    except (TypeError, ValueError):
        return 0


class MDPlatform(WorkerPlugin):
    """A Dask worker plugin: on every worker, at its start, set this process's MD platform (``TBOTAN_PLATFORM``)
    and, where it sees several GPUs, its device (``TBOTAN_DEVICE_INDEX``), then check that the platform runs.
    The requested name is set before the check, so a worker whose check failed still refuses MD work."""

    name = "tbotan-md-platform"

    def __init__(self, requested: str, kind: str, processes: int = 1):
        self.requested, self.kind, self.processes = requested, kind, processes

    def setup(self, worker):
        from ..md import engine

        gpus = engine.visible_gpus()
        index = engine.device_index(worker_position(worker.name, self.kind, self.processes), gpus)
        if index is not None:
            os.environ[engine.DEVICE_ENV] = str(index)
        os.environ[engine.PLATFORM_ENV] = self.requested
        os.environ[engine.PLATFORM_ENV] = engine.resolve_platform(self.requested)
        return {"platform": os.environ[engine.PLATFORM_ENV], "device": index, "gpus": gpus}


def check(client, profile) -> dict:
    """Install ``MDPlatform`` on every worker (and on every worker that joins later): the platform each reports,
    by worker. A worker without the requested platform raises PlatformError here, naming what to install."""
    processes = getattr(profile, "processes", 1) if profile.kind == "slurm" else 1
    plugin = MDPlatform(profile.platform, profile.kind, processes)
    try:
        client.register_plugin(plugin)
    except PlatformError as e:
        raise PlatformError(f"cluster profile platform {profile.platform!r}: {e}") from None
    return client.run(lambda: {k: os.environ.get(k) for k in ("TBOTAN_PLATFORM", "TBOTAN_DEVICE_INDEX")})

"""Where the Dask workers run, chosen by a cluster profile (YAML; docs/slurm.md); the same task graph on each.

kind: local  LocalCluster in this process (the default) | slurm  dask-jobqueue SLURMCluster, every worker a
SLURM job, adaptive between min_jobs and max_jobs | mpi  dask-mpi inside one allocation (mpirun).

    with open_cluster(load_profile("hpc/slurm-cpu.yaml"), logs=Path(f"{store}.logs")) as client: ...

Every worker resolves the profile's ``platform`` when it starts (tbotan.hpc.md_platform): ``auto`` is
CUDA, then HIP, then OpenCL on a GPU, else the CPU platform; a platform asked for that a worker does not have
stops the run at once with the package to install. A worker that sees several GPUs takes the one of its position
among its job's (or LocalCluster's) processes; one that sees one GPU leaves the choice to the platform.

Every worker gets OPENMM_CPU_THREADS=1: a worker runs as many tasks at once as it has threads, each an
OpenMM context on one thread, so the cores are used without oversubscription and every run is
bit-reproducible (several threads per context are not; docs/physics.md).
"""

from __future__ import annotations

import contextlib
import getpass
import importlib.util
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Literal, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator, model_validator

from ..errors import ProfileError
from . import md_platform


def logs_path(store: str | os.PathLike) -> Path:
    """The folder beside a store for its SLURM worker logs and training job: ``<store>.logs``."""
    store = Path(store)
    return store.with_name(store.name + ".logs")


def _cpu_count() -> int:
    from dask.system import CPU_COUNT  # respects CPU affinity and cgroup quotas

    return CPU_COUNT


class _Profile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    platform: Literal["auto", "CUDA", "HIP", "OpenCL", "CPU"] = "auto"  # the MD platform of every worker
    dashboard_address: Union[str, int, None] = ":8787"  # a random port if this one is busy
    worker_timeout: float = Field(900.0, gt=0)  # s without any worker (e.g. jobs pending) before giving up


class _Workers(_Profile):
    threads_per_worker: int = Field(1, ge=1)  # tasks at once per worker (each a one-thread OpenMM context)
    memory_limit: Union[str, int, float] = "auto"


class LocalProfile(_Workers):
    kind: Literal["local"] = "local"
    workers: int = Field(default_factory=_cpu_count, ge=1)


def _check_walltime(v):
    if isinstance(v, int):  # YAML 1.1 reads an unquoted 12:00:00 as the integer 43200
        raise ValueError("quote it, e.g. '12:00:00' (unquoted, YAML reads it as a number)")
    if isinstance(v, str) and not re.fullmatch(r"(\d+-\d{1,2}(:\d\d){0,2}|\d+(:\d\d){0,2})", v):
        raise ValueError("not a SLURM time (MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS)")
    return v


def walltime_seconds(v: str) -> int:
    """Seconds of a SLURM time limit as ``_check_walltime`` admits it: MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM or
    D-HH:MM:SS."""
    days, dash, rest = v.partition("-") if "-" in v else ("0", "", v)
    parts = [int(p) for p in rest.split(":")]
    if dash:  # D-HH[:MM[:SS]]
        hours, minutes, seconds = (parts + [0, 0])[:3]
    elif len(parts) == 3:  # HH:MM:SS
        hours, minutes, seconds = parts
    else:  # MM[:SS]
        hours, minutes, seconds = 0, parts[0], parts[1] if len(parts) == 2 else 0
    return ((int(days) * 24 + hours) * 60 + minutes) * 60 + seconds


def _check_memory(v: str) -> str:
    from dask.utils import parse_bytes

    try:
        parse_bytes(v)
    except (ValueError, TypeError):
        raise ValueError("not a memory size like '2GB' or '3.5GiB'") from None
    return v


class TrainingJob(BaseModel):
    """The SLURM job that trains, evaluates and reports after the data are made (tbotan.hpc.slurm): ``srun`` starts
    nodes x tasks_per_node torch.distributed ranks (one per GPU on GPU nodes)."""

    model_config = ConfigDict(extra="forbid")
    queue: str | None = None
    account: str | None = None
    nodes: int = Field(1, ge=1)
    tasks_per_node: int = Field(1, ge=1)
    cpus_per_task: int = Field(1, ge=1)
    gpus_per_task: int = Field(0, ge=0)
    memory: str = "4GB"  # per node
    walltime: str = "01:00:00"
    job_extra_directives: list[str] = []
    job_script_prologue: list[str] = []

    _walltime = field_validator("walltime", mode="before")(classmethod(lambda cls, v: _check_walltime(v)))
    _memory = field_validator("memory")(classmethod(lambda cls, v: _check_memory(v)))


class SlurmProfile(_Profile):
    kind: Literal["slurm"]
    queue: str | None = None
    account: str | None = None
    cores: int = Field(ge=1)
    memory: str
    walltime: str
    processes: int = Field(1, ge=1)
    mps: bool = False  # the job's `processes` workers share its GPU at once through a CUDA MPS daemon of the job
    job_extra_directives: list[str] = []
    job_script_prologue: list[str] = []
    max_jobs: int = Field(ge=1)
    min_jobs: int = Field(0, ge=0)
    log_directory: str | None = None
    interface: str | None = None
    local_directory: str | None = None
    python: str | None = None

    training: TrainingJob = Field(default_factory=TrainingJob)  # the job of `sbatch slurm/pipeline.sh` after the data

    _walltime = field_validator("walltime", mode="before")(classmethod(lambda cls, v: _check_walltime(v)))
    _memory = field_validator("memory")(classmethod(lambda cls, v: _check_memory(v)))

    @model_validator(mode="after")
    def _consistent(self):
        if self.processes > self.cores:
            raise ValueError(f"field 'processes': {self.processes} is more than cores ({self.cores})")
        if self.min_jobs > self.max_jobs:
            raise ValueError(f"field 'min_jobs': {self.min_jobs} is more than max_jobs ({self.max_jobs})")
        return self


class MpiProfile(_Workers):  # the number of workers is mpirun -n minus 2 (the scheduler and client ranks)
    kind: Literal["mpi"]
    interface: str | None = None
    local_directory: str | None = None


Profile = Union[LocalProfile, SlurmProfile, MpiProfile]
_ADAPTER: TypeAdapter = TypeAdapter(Annotated[Profile, Field(discriminator="kind")])


def _explain(error: dict) -> str:
    kind, field = error["type"], ".".join(str(x) for x in error["loc"][1:])  # loc[0] is the kind
    msg = error["msg"].removeprefix("Value error, ")
    if kind == "union_tag_invalid":
        return f"field 'kind': must be local, slurm or mpi (got {error['input'].get('kind')!r})"
    if kind == "union_tag_not_found":
        return "field 'kind' is missing (local, slurm or mpi)"
    if kind == "extra_forbidden":
        return f"unknown field '{field}'"
    if kind == "missing":
        return f"field '{field}' is required"
    return f"field '{field}': {msg} (got {error['input']!r})" if field else msg


def load_profile(path: str | os.PathLike | None) -> Profile:
    """Read a cluster profile; ``None`` gives the local default. Raises ProfileError naming file and field."""
    if path is None:
        return LocalProfile()
    try:
        data = yaml.safe_load(Path(path).read_text())
    except OSError as e:
        raise ProfileError(f"{path}: cannot read the cluster profile ({e.strerror})") from None
    except yaml.YAMLError as e:
        raise ProfileError(f"{path}: not valid YAML: {e}") from None
    if not isinstance(data, dict):
        raise ProfileError(f"{path}: a cluster profile is a mapping with at least 'kind' (got {type(data).__name__})")
    try:
        return _ADAPTER.validate_python(data)
    except ValidationError as e:
        raise ProfileError(f"{path}: " + "; ".join(_explain(err) for err in e.errors())) from None


def _dashboard(address):
    """``address`` if its port is free, else ':0' (a random port), so a second run does not fail or warn."""
    if address is None:
        return None
    host, _, port = str(address).rpartition(":")
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the dashboard's server does
        try:
            s.bind((host or "", int(port or 0)))
        except OSError:
            return f"{host}:0"
    return address


def _exit(signum, frame):
    from ..errors import Terminated

    raise Terminated(signum)


@contextlib.contextmanager
def _terminate_as_exit():
    """SIGTERM (scancel, a walltime, kill) raises Terminated (a SystemExit) here, so ``finally`` blocks close the
    cluster; the ``tbotan`` command prints its one line and exits 143 (tbotan.cli.main does the same outside)."""
    main = threading.current_thread() is threading.main_thread()  # only there can signals be handled
    previous = signal.signal(signal.SIGTERM, _exit) if main else None
    try:
        yield
    finally:
        if main:
            signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def open_cluster(
    profile: Profile, logs: str | os.PathLike | None = None, *, verbose: bool = True
) -> Iterator[distributed.Client]:  # noqa: F821
    """A ``distributed.Client`` on the workers ``profile`` describes; on exit (normal, exception, Ctrl-C,
    SIGTERM) the client and cluster are closed and, for SLURM, every worker job is cancelled.

    ``logs``: the folder for SLURM worker logs (e.g. ``<store>.logs``); ``profile.log_directory`` wins.
    ``verbose``: print ``describe(client)`` (with the dashboard link) to stderr once the cluster is up.

    This process's environment is restored on exit: Dask's nannies write their pre-spawn settings
    (``MALLOC_TRIM_THRESHOLD_=65536``, ``OMP_NUM_THREADS=1``, ...) into ``os.environ``, and a process this one
    starts later with them (the torchrun ranks of `tbotan run`) trains 1.7x slower.
    """
    from distributed import Client

    with contextlib.ExitStack() as stack:
        stack.callback(_restore_environment, dict(os.environ))
        stack.enter_context(_terminate_as_exit())
        if isinstance(profile, LocalProfile):
            from distributed import LocalCluster

            cluster = stack.enter_context(
                LocalCluster(  # env: set in each worker process before it starts
                    n_workers=profile.workers,
                    threads_per_worker=profile.threads_per_worker,
                    processes=True,
                    memory_limit=profile.memory_limit,
                    dashboard_address=_dashboard(profile.dashboard_address),
                    env={"OPENMM_CPU_THREADS": "1"},
                )
            )
        elif isinstance(profile, SlurmProfile):
            cluster = stack.enter_context(_slurm_cluster(profile, logs))
        elif isinstance(profile, MpiProfile):
            cluster = None
            _start_mpi(profile)
        else:
            raise TypeError(f"not a cluster profile: {profile!r}")
        client = stack.enter_context(Client(cluster) if cluster is not None else Client())
        if isinstance(profile, MpiProfile):  # every worker rank is already started: wait for them to connect
            from mpi4py import MPI

            with contextlib.suppress(TimeoutError):  # a slow start is reported by describe() and worker_timeout
                client.wait_for_workers(MPI.COMM_WORLD.Get_size() - 2, timeout=profile.worker_timeout or 60)
        platforms = md_platform.check(client, profile)
        if verbose:
            print(f"tbotan: dask {describe(client)}", file=sys.stderr, flush=True)
            used = sorted({v["TBOTAN_PLATFORM"] for v in platforms.values()})
            print(
                f"tbotan: MD platform {', '.join(used) or profile.platform} (profile: {profile.platform})",
                file=sys.stderr,
                flush=True,
            )
        yield client


def _restore_environment(saved: dict) -> None:
    for key in set(os.environ) - set(saved):
        del os.environ[key]
    os.environ.update(saved)


def _check_slurm(profile: SlurmProfile) -> None:
    """sbatch on PATH and the partition known to SLURM, before any job is submitted."""
    for tool in ("sbatch", "squeue", "scancel"):
        if shutil.which(tool) is None:
            raise ProfileError(
                f"cluster profile kind 'slurm' needs SLURM's {tool} on PATH; it is not (run on a "
                "login node of the cluster, or use the local profile)"
            )
    if profile.queue:
        out = subprocess.run(["sinfo", "-h", "-o", "%R"], capture_output=True, text=True, timeout=60)
        known = out.stdout.split()
        if out.returncode == 0 and profile.queue not in known:
            raise ProfileError(
                f"partition {profile.queue!r} (field 'queue') does not exist on this cluster; "
                f"sinfo lists: {', '.join(known) or 'none'}"
            )


# One CUDA MPS control daemon per worker job, so that the job's worker processes share its GPU at once; its pipe and
# log folders are private to the job. At the job's end (EXIT trap) the daemon is told to quit and the folders are
# removed. Without nvidia-cuda-mps-control on PATH, or if the daemon does not start, one warning line goes to the
# job's stderr and the workers run anyway, sharing the GPU time-sliced (slower). tests/hpc/test_slurm_gpus.py runs
# these lines with bash.
MPS_PROLOGUE = [
    'TBOTAN_MPS_DIR="${TMPDIR:-/tmp}/tbotan-mps-${SLURM_JOB_ID:-$$}"',
    'export CUDA_MPS_PIPE_DIRECTORY="$TBOTAN_MPS_DIR/pipe" CUDA_MPS_LOG_DIRECTORY="$TBOTAN_MPS_DIR/log"',
    'mkdir -p "$CUDA_MPS_PIPE_DIRECTORY" "$CUDA_MPS_LOG_DIRECTORY"',
    'trap \'[ -z "${TBOTAN_MPS_ON:-}" ] || echo quit | nvidia-cuda-mps-control; rm -rf "$TBOTAN_MPS_DIR"\' EXIT',
    "tbotan_mps_start() {",  # the daemon's start: a function, called as an `if` condition (set -e safe)
    "nvidia-cuda-mps-control -d",
    "}",
    "if ! command -v nvidia-cuda-mps-control >/dev/null 2>&1; then",
    '    echo "tbotan: warning: nvidia-cuda-mps-control is not on PATH, so no CUDA MPS: the worker processes of'
    ' this job share its GPU time-sliced, one at a time (slower)" >&2',
    "elif tbotan_mps_start; then",
    "    TBOTAN_MPS_ON=1",
    "else",
    '    echo "tbotan: warning: nvidia-cuda-mps-control -d failed (status $?), so no CUDA MPS: the worker processes'
    ' of this job share its GPU time-sliced, one at a time (slower)" >&2',
    "fi",
]


def worker_prologue(profile: SlurmProfile) -> list[str]:
    """The lines each worker job runs before its workers start: the profile's own, MPS where asked, and one
    OpenMM CPU thread per task."""
    return [*profile.job_script_prologue, *(MPS_PROLOGUE if profile.mps else []), "export OPENMM_CPU_THREADS=1"]


@contextlib.contextmanager
def _slurm_cluster(profile: SlurmProfile, logs):
    ctrl_c = signal.getsignal(signal.SIGINT)
    from dask_jobqueue import SLURMCluster

    if ctrl_c is not None and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, ctrl_c)  # undo dask_jobqueue's import-time `SIGINT -> sys.exit()` (status 0)

    _check_slurm(profile)
    folder = Path(profile.log_directory or logs or "dask-logs").resolve()
    folder.mkdir(parents=True, exist_ok=True)
    job_name = f"tbotan-{uuid.uuid4().hex[:8]}"  # unique, so leftovers can be found and cancelled by name
    cluster = SLURMCluster(
        queue=profile.queue,
        account=profile.account,
        cores=profile.cores,
        memory=profile.memory,
        processes=profile.processes,
        walltime=profile.walltime,
        job_name=job_name,
        job_extra_directives=profile.job_extra_directives,
        job_script_prologue=worker_prologue(profile),
        log_directory=str(folder),
        interface=profile.interface,
        local_directory=profile.local_directory,
        python=profile.python or sys.executable,
        scheduler_options={"dashboard_address": _dashboard(profile.dashboard_address)},
    )
    try:
        cluster.adapt(minimum=profile.min_jobs * profile.processes, maximum=profile.max_jobs * profile.processes)
        yield cluster
    finally:
        try:
            cluster.close(timeout=30)
        finally:  # a job submitted while closing is not tracked by the cluster: cancel by its unique name
            subprocess.run(
                ["scancel", "--name", job_name, "--user", getpass.getuser()],
                capture_output=True,
                timeout=30,
                check=False,
            )


def _start_mpi(profile: MpiProfile) -> None:
    try:
        import dask_mpi
        import mpi4py  # noqa: F401
    except ImportError as e:
        raise ProfileError(
            f"cluster profile kind 'mpi' needs mpi4py and dask-mpi ({e.name} is missing): "
            "pip install mpi4py dask-mpi, then start with `mpirun -n N python -m tbotan ...` "
            "(rank 0 runs the scheduler, rank 1 this program, the others are workers)"
        ) from None
    os.environ["OPENMM_CPU_THREADS"] = "1"  # every rank runs this line
    dask_mpi.initialize(  # the scheduler and worker ranks stay in here and exit when the client is done
        nthreads=profile.threads_per_worker,
        memory_limit=profile.memory_limit,
        interface=profile.interface,
        local_directory=profile.local_directory,
        dashboard=profile.dashboard_address is not None,
        dashboard_address=_dashboard(profile.dashboard_address) or ":8787",
    )


def waiting_reason(client) -> str:
    """Why there are no workers, as far as the cluster can tell (for SLURM: each job's state and reason)."""
    cluster = client.cluster
    if cluster is not None and type(cluster).__name__ == "SLURMCluster":
        try:
            out = subprocess.run(
                ["squeue", "-h", "-n", cluster.job_name, "-o", "%i %T %r"], capture_output=True, text=True, timeout=30
            )
            jobs = [line.split(maxsplit=2) for line in out.stdout.splitlines()]
        except (OSError, subprocess.TimeoutExpired) as e:
            return f"squeue failed ({e})"
        if not jobs:
            return (
                f"no worker job named {cluster.job_name} is queued; sbatch may have refused them (see the "
                f"worker logs and `sacct -n --name {cluster.job_name}`)"
            )
        return "worker jobs " + "; ".join(f"{j[0]} {j[1]} (reason: {j[2] if len(j) > 2 else '?'})" for j in jobs)
    return "the cluster has started no worker"


def describe(client) -> str:
    """One line: kind, workers (and SLURM jobs), dashboard."""
    cluster, workers = client.cluster, client.nthreads()
    line = f"{len(workers)} workers, {sum(workers.values())} threads"
    if cluster is None:
        kind = "mpi" if "dask_mpi" in sys.modules else "remote"
    elif type(cluster).__name__ == "SLURMCluster":
        kind, line = "slurm", f"{line} in {len(cluster.workers)} jobs named {cluster.job_name}"
    else:
        kind = "local"
    plots = "" if importlib.util.find_spec("bokeh") else " (pip install 'bokeh>=3.1' for its plots)"
    return f"{kind}: {line}; dashboard {client.dashboard_link}{plots}"

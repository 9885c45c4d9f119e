"""Cluster profiles: a real LocalCluster, and a real SLURM (tests marked `slurm`, skipped without one;
bring one up on this machine with .ci/slurm-up.sh)."""

import getpass
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tbotan.hpc.cluster import (
    LocalProfile,
    MpiProfile,
    ProfileError,
    SlurmProfile,
    describe,
    load_profile,
    open_cluster,
)
from tbotan.hpc.md_platform import check as check_platform
from tbotan.hpc.md_platform import worker_position

ROOT = Path(__file__).resolve().parents[2]
HPC = ROOT / "hpc"


def _by_value():
    """SLURM workers cannot import this test module (tbotan's own tasks they do import); a function local
    to another cannot be pickled by reference, so Dask sends it by value (cloudpickle)."""

    def worker_identity(_=None, delay=0.0):
        time.sleep(delay)
        return os.environ.get("OPENMM_CPU_THREADS"), os.getpid(), os.environ.get("SLURM_JOB_ID")

    return worker_identity


worker_identity = _by_value()


# -- profiles ---------------------------------------------------------------------------------------


def test_default_profile_is_local():
    profile = load_profile(None)
    assert isinstance(profile, LocalProfile)
    assert profile.workers >= 1 and profile.threads_per_worker == 1 and profile.memory_limit == "auto"


def test_shipped_profiles_load():
    assert isinstance(load_profile(HPC / "local.yaml"), LocalProfile)
    assert isinstance(load_profile(HPC / "mpi.yaml"), MpiProfile)
    gpu = load_profile(HPC / "slurm-gpu.yaml")
    assert isinstance(gpu, SlurmProfile) and "--gres=gpu:1" in gpu.job_extra_directives
    assert gpu.mps and gpu.processes == 4  # 4 replicas at once on each GPU, through one MPS daemon per job
    cpu = load_profile(str(HPC / "slurm-cpu.yaml"))
    assert (cpu.cores, cpu.processes, cpu.memory, cpu.walltime, cpu.max_jobs, cpu.min_jobs) == (
        1,
        1,
        "2GB",
        "00:30:00",
        2,
        0,
    )


def test_walltime_seconds_reads_every_slurm_form():
    from tbotan.hpc.cluster import walltime_seconds

    forms = {"30": 1800, "30:15": 1815, "04:00:00": 14400, "1-12": 129600, "1-12:30": 131400, "2-00:00:10": 172810}
    assert {v: walltime_seconds(v) for v in forms} == forms


def test_mps_prologue_starts_and_stops_a_daemon_per_job(tmp_path):
    from tbotan.hpc.cluster import worker_prologue

    gpu = load_profile(HPC / "slurm-gpu.yaml")
    lines = worker_prologue(gpu)
    assert lines[-1] == "export OPENMM_CPU_THREADS=1" and "nvidia-cuda-mps-control -d" in lines
    assert any(line.startswith("trap ") and "quit" in line for line in lines)
    script = tmp_path / "prologue.sh"
    script.write_text("\n".join(lines) + "\n")
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0  # valid shell
    plain = worker_prologue(load_profile(HPC / "slurm-cpu.yaml"))
    assert not any("mps" in line.lower() for line in plain)


@pytest.mark.parametrize(
    "text, field",
    [
        ("kind: local\nworkers: 2\ncolour: red\n", "colour"),  # unknown field
        ("kind: local\nworkers: two\n", "workers"),  # wrong type
        ("kind: slurm\ncores: 1\nmemory: 2GB\nwalltime: '1:00:00'\nmax_jobs: 1\nqueues: a\n", "queues"),
        ("kind: slurm\ncores: [1]\nmemory: 2GB\nwalltime: '1:00:00'\nmax_jobs: 1\n", "cores"),
        ("kind: slurm\ncores: 1\nmemory: lots\nwalltime: '1:00:00'\nmax_jobs: 1\n", "memory"),
        ("kind: slurm\ncores: 1\nmemory: 2GB\nwalltime: 12:00:00\nmax_jobs: 1\n", "walltime"),  # YAML: 43200
        ("kind: slurm\ncores: 1\nmemory: 2GB\nwalltime: '1:00:00'\n", "max_jobs"),  # missing
        ("kind: slurm\ncores: 1\nprocesses: 2\nmemory: 2GB\nwalltime: '1:00'\nmax_jobs: 1\n", "processes"),
        ("kind: slurm\ncores: 1\nmemory: 2GB\nwalltime: '1:00'\nmax_jobs: 1\nmin_jobs: 2\n", "min_jobs"),
        ("kind: pbs\n", "kind"),
        ("workers: 2\n", "kind"),
    ],
)
def test_bad_profile_names_file_and_field(tmp_path, text, field):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ProfileError, match=rf"bad\.yaml: .*'{field}'") as info:
        load_profile(path)
    assert isinstance(info.value, ValueError)


def test_missing_or_malformed_file(tmp_path):
    with pytest.raises(ProfileError, match="nope.yaml"):
        load_profile(tmp_path / "nope.yaml")
    (tmp_path / "list.yaml").write_text("- kind: local\n")
    with pytest.raises(ProfileError, match="list.yaml: .*mapping"):
        load_profile(tmp_path / "list.yaml")


def test_mpi_without_dask_mpi_says_what_to_install():
    try:
        import dask_mpi  # noqa: F401
        import mpi4py  # noqa: F401

        pytest.skip("dask_mpi and mpi4py are installed")
    except ImportError:
        pass
    with pytest.raises(ProfileError, match="mpi4py and dask-mpi"):
        with open_cluster(load_profile(HPC / "mpi.yaml")):
            pass


# -- local ------------------------------------------------------------------------------------------


def test_local_cluster_two_worker_processes(capsys, monkeypatch):
    profile = load_profile(HPC / "local.yaml").model_copy(update={"workers": 2})
    before = os.environ.get("OPENMM_CPU_THREADS")
    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_", raising=False)
    environment = dict(os.environ)
    with open_cluster(profile) as client:
        client.wait_for_workers(2, timeout=60)
        seen = client.run(worker_identity)
        summary = describe(client)
        leaked = os.environ.get("MALLOC_TRIM_THRESHOLD_")
    assert len(seen) == 2
    assert {threads for threads, _, _ in seen.values()} == {"1"}
    pids = {pid for _, pid, _ in seen.values()}
    assert len(pids) == 2 and os.getpid() not in pids
    assert summary.startswith("local: 2 workers") and "dashboard http" in summary
    assert "dashboard http" in capsys.readouterr().err
    assert os.environ.get("OPENMM_CPU_THREADS") == before  # set in the workers, not in this process
    # Dask's nannies write their pre-spawn settings into this process's environment; open_cluster puts it
    # back, so processes started after the cluster (torchrun ranks) do not run with them (1.7x slower)
    assert leaked is not None and dict(os.environ) == environment


def test_a_platform_the_workers_lack_stops_the_run_at_once(tmp_path):
    """``platform: CUDA`` where OpenMM has no CUDA plugin: open_cluster fails on the workers' start with one line
    naming the package, before any work (never a silent CPU run)."""
    from tbotan.errors import PlatformError
    from tbotan.md import engine

    if "CUDA" in engine.available_platforms():
        pytest.skip("CUDA is installed here")
    path = tmp_path / "cuda.yaml"
    path.write_text("kind: local\nworkers: 1\nplatform: CUDA\ndashboard_address: null\n")
    with pytest.raises(PlatformError, match=r"platform 'CUDA'.*pip install 'tbotan\[cuda12\]'"):
        with open_cluster(load_profile(path), verbose=False):
            pass


def test_workers_that_see_several_gpus_take_one_each_by_position(monkeypatch):
    """Two LocalCluster workers that both see GPUs 0 and 1 (as on a 2-GPU workstation) take device 0 and 1; with
    one visible GPU neither sets a device. The platform (CPU here) is what the profile says, on every worker."""
    profile = LocalProfile(workers=2, platform="CPU", dashboard_address=None)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    with open_cluster(profile, verbose=False) as client:
        client.wait_for_workers(2, timeout=60)
        seen = check_platform(client, profile)
    assert sorted(v["TBOTAN_DEVICE_INDEX"] for v in seen.values()) == ["0", "1"]
    assert {v["TBOTAN_PLATFORM"] for v in seen.values()} == {"CPU"}
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    with open_cluster(profile, verbose=False) as client:
        client.wait_for_workers(2, timeout=60)
        seen = check_platform(client, profile)
    assert [v["TBOTAN_DEVICE_INDEX"] for v in seen.values()] == [None, None]


def test_worker_position_among_its_jobs_processes(monkeypatch):
    assert worker_position(3, "local") == 3
    assert worker_position("SLURMCluster-4-2", "slurm", processes=4) == 2
    assert worker_position("SLURMCluster-4", "slurm", processes=1) == 0
    monkeypatch.setenv("OMPI_COMM_WORLD_LOCAL_RANK", "5")
    assert worker_position(17, "mpi") == 5


# -- SLURM ------------------------------------------------------------------------------------------

slurm = pytest.mark.slurm


def our_jobs(name: str) -> list[str]:
    """Jobs of this user named ``name`` that squeue still lists (pending, running or completing)."""
    out = subprocess.run(
        ["squeue", "-h", "-u", getpass.getuser(), "-n", name, "-o", "%i %T"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return out.stdout.splitlines()


def wait_until_gone(name: str, timeout: float = 20.0) -> list[str]:
    end = time.monotonic() + timeout
    while (left := our_jobs(name)) and time.monotonic() < end:
        time.sleep(0.5)
    return left


@slurm
def test_slurm_runs_tasks_in_worker_jobs_and_cancels_them(slurm_up, tmp_path):
    from distributed import wait

    logs = tmp_path / "store.logs"
    start = time.monotonic()
    with open_cluster(load_profile(HPC / "slurm-cpu.yaml"), logs=logs) as client:
        name = client.cluster.job_name
        script = client.cluster.job_script()
        assert "export OPENMM_CPU_THREADS=1" in script and "--mem=" in script and "-t 00:30:00" in script
        futures = client.map(worker_identity, range(6), delay=2.0)
        client.wait_for_workers(1, timeout=45)
        first_worker = time.monotonic() - start
        names = subprocess.run(
            ["squeue", "-h", "-u", getpass.getuser(), "-o", "%j"], capture_output=True, text=True, check=True
        ).stdout.split()
        assert name in names, f"worker job {name} not in squeue: {names}"
        wait(futures, timeout=45)
        results = client.gather(futures)
        assert "slurm:" in describe(client) and name in describe(client)
        assert 1 <= len(our_jobs(name)) <= 2  # max_jobs
    assert {threads for threads, _, _ in results} == {"1"}
    assert all(job for _, _, job in results), "tasks did not run inside SLURM jobs"
    assert wait_until_gone(name) == [], "worker jobs left in squeue after the cluster was closed"
    assert list(logs.glob(f"{name}-*.err")), "no worker log in the logs folder"
    print(f"first SLURM worker connected {first_worker:.1f} s after open_cluster")


@slurm
def test_slurm_jobs_cancelled_on_exception(slurm_up, tmp_path):
    with pytest.raises(ZeroDivisionError):
        with open_cluster(load_profile(HPC / "slurm-cpu.yaml"), logs=tmp_path, verbose=False) as client:
            name = client.cluster.job_name
            future = client.submit(time.sleep, 300)
            client.wait_for_workers(1, timeout=45)
            assert our_jobs(name)
            raise ZeroDivisionError("the driver fails inside the cluster context")
    assert future.status != "finished"
    assert wait_until_gone(name) == []


CHILD = textwrap.dedent("""
    import signal, sys, time
    signal.signal(signal.SIGINT, signal.default_int_handler)  # Ctrl-C as in a terminal, even when this test
                                                              # runs in the background (started with SIGINT ignored)
    from tbotan.hpc.cluster import load_profile, open_cluster
    with open_cluster(load_profile(sys.argv[1]), logs=sys.argv[2], verbose=False) as client:
        future = client.submit(time.sleep, 300)
        client.wait_for_workers(1, timeout=45)
        print(client.cluster.job_name, flush=True)
        future.result()
""")


@slurm
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_slurm_jobs_cancelled_when_client_is_killed(slurm_up, tmp_path, sig):
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(HPC / "slurm-cpu.yaml"), str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        name = child.stdout.readline().strip()
        assert name.startswith("tbotan-"), child.stderr.read() if child.poll() is not None else name
        assert our_jobs(name)
        child.send_signal(sig)
        start = time.monotonic()
        try:
            child.wait(timeout=40)
        except subprocess.TimeoutExpired:
            child.kill()
            pytest.fail(f"the client did not exit within 40 s of {sig.name}; its stderr:\n{child.stderr.read()}")
        print(f"{sig.name}: the client exited {time.monotonic() - start:.1f} s after the signal")
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode != 0
    assert wait_until_gone(name) == [], f"worker jobs left after {sig.name}: {our_jobs(name)}"


def test_slurm_profile_without_sbatch_on_path_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder: no SLURM tools
    with pytest.raises(ProfileError, match="sbatch on PATH"):
        with open_cluster(load_profile(HPC / "slurm-cpu.yaml"), logs=tmp_path, verbose=False):
            pass


@slurm
def test_unknown_partition_is_refused_before_any_job(slurm_up, tmp_path):
    profile = load_profile(HPC / "slurm-cpu.yaml").model_copy(update={"queue": "no-such-partition"})
    with pytest.raises(ProfileError, match="'no-such-partition'.*does not exist.*sinfo lists: debug"):
        with open_cluster(profile, logs=tmp_path, verbose=False):
            pass


@slurm
def test_worker_jobs_pending_forever_end_in_a_clear_error(slurm_up, tmp_path):
    """Worker jobs that cannot start (here: held until an hour from now) stop the run after worker_timeout with
    each job's state and reason, and leave no job behind."""
    from tbotan.data import pipeline
    from tbotan.data.spec import load_spec
    from tbotan.errors import NoWorkers

    profile = load_profile(HPC / "slurm-cpu.yaml").model_copy(
        update={"job_extra_directives": ["--begin=now+3600"], "worker_timeout": 15.0}
    )
    with pytest.raises(NoWorkers, match=r"no Dask worker connected for \d+ s.*PENDING \(reason: BeginTime\)"):
        with open_cluster(profile, logs=tmp_path, verbose=False) as client:
            name = client.cluster.job_name
            pipeline.simulate(
                load_spec(ROOT / "jobs" / "ci.yaml"),
                tmp_path / "ci.zarr",
                client,
                worker_timeout=profile.worker_timeout,
            )
    assert wait_until_gone(name) == []

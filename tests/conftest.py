import functools
import shutil
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from tbotan import dynamics, kalj  # noqa: E402


@lru_cache(maxsize=None)
def liquid(n: int, temperature: float, duration: float = 5.0, seed: int = 0):
    """A KA liquid of ``n`` particles after a short NVT run at ``temperature``: (types, positions, box)."""
    types = kalj.species(n)
    box = kalj.box_length(n)
    x = dynamics.random_configuration(types, box, seed)
    eq = dynamics.equilibrate(types, x, box, temperature, duration, seed=seed)
    return types, eq.positions, box


@pytest.fixture(scope="session")
def liquid_500():
    return liquid(500, 0.8)


@pytest.fixture(scope="session")
def ci_store(tmp_path_factory):
    """The store of jobs/ci.yaml, made once per test session by the real pipeline on a LocalCluster.
    Tests that change it work on a copy."""
    from distributed import Client, LocalCluster

    from tbotan import pipeline
    from tbotan.spec import load_spec

    path = tmp_path_factory.mktemp("ci") / "ci.zarr"
    with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=":0") as cluster, Client(cluster) as c:
        pipeline.simulate(load_spec(Path(__file__).resolve().parents[1] / "jobs" / "ci.yaml"), path, c,
                          log=lambda line: None)
    return path


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


@functools.lru_cache(maxsize=None)
def slurm_missing() -> str | None:
    """Why SLURM cannot be used here (None when a node answers); .ci/slurm-up.sh brings one up."""
    if shutil.which("sinfo") is None:
        return "no SLURM here (sinfo is not on PATH; .ci/slurm-up.sh brings one up)"
    try:
        out = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True, timeout=15)
    except subprocess.TimeoutExpired:
        return "SLURM is not responding (sinfo timed out)"
    states = out.stdout.split()
    if out.returncode or not any(s.rstrip("*~#") in ("idle", "mix", "alloc") for s in states):
        return f"SLURM is not responding or has no usable node (sinfo: {(out.stdout + out.stderr).strip()!r})"
    return None


@pytest.fixture
def slurm_up():
    if reason := slurm_missing():
        pytest.skip(reason)

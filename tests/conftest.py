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

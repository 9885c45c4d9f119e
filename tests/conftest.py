import numpy as np
import pytest

from tests.helpers import ROOT, liquid, slurm_missing


@pytest.fixture(scope="session")
def liquid_500():
    return liquid(500, 0.8)


@pytest.fixture(scope="session")
def ci_store(tmp_path_factory):
    """The store of jobs/ci.yaml, made once per test session by the real pipeline on a LocalCluster.
    Tests that change it work on a copy."""
    from distributed import Client, LocalCluster

    from tbotan.data import pipeline
    from tbotan.data.spec import load_spec

    path = tmp_path_factory.mktemp("ci") / "ci.zarr"
    with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=":0") as cluster, Client(cluster) as c:
        pipeline.simulate(load_spec(ROOT / "jobs" / "ci.yaml"), path, c)
    return path


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


@pytest.fixture
def slurm_up():
    if reason := slurm_missing():
        pytest.skip(reason)

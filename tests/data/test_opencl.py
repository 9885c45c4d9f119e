"""`tbotan simulate` on a local profile with ``platform: OpenCL`` (POCL runs it on this CPU; Debian's
pocl-opencl-icd, which .ci/run installs): the GPU-shaped path of FIRE and the replicas, against the CPU run."""

import shutil
import subprocess

import numpy as np
import pytest
import zarr

from tbotan.md import engine
from tests.helpers import ROOT, TBOTAN

pytestmark = pytest.mark.skipif(
    "OpenCL" not in engine.available_platforms(), reason="no OpenCL driver here (Debian: pocl-opencl-icd)"
)


def test_simulate_on_opencl_matches_the_cpu_run(ci_store, tmp_path):
    """The CPU store of jobs/ci.yaml with its quenches and replicas undone (its equilibrated thermal states kept, as
    after an interruption) is finished on OpenCL: FIRE there in double, then on Reference; replicas in mixed
    precision. Measured (N = 256, 3 configurations at T = 0.8 and 2.0): IS energies equal to 3e-14 and IS positions
    to 2.3e-8 (the same minima), every residual by Reference below the spec's 1e-10; the replicas part by float
    rounding grown over 540 steps at T = 0.8 (positions 5e-3, one bond of 14 flipping: max |dC_B| 0.07,
    mean 1.5e-4; E_jk 4e-3), at T = 2.0 by 1e-6. The tolerances below are a few times those."""
    store = tmp_path / "opencl.zarr"
    shutil.copytree(ci_store, store)
    root = zarr.open_group(str(store), mode="r+")
    for _, g in root.groups():
        g["done"][:] = False
        g["replica_done"][:] = False
    profile = tmp_path / "opencl.yaml"
    profile.write_text("kind: local\nworkers: 2\nplatform: OpenCL\ndashboard_address: null\n")
    run = subprocess.run(
        [*TBOTAN, "simulate", str(ROOT / "jobs" / "ci.yaml"), "--store", str(store), "--cluster", str(profile)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert "MD platform OpenCL" in run.stderr
    cpu, gpu = zarr.open_group(str(ci_store), mode="r"), zarr.open_group(str(store), mode="r")
    for name, _ in cpu.groups():
        a, b = cpu[name], gpu[name]
        assert b["done"][:].all()
        assert np.abs(a["energy_inherent"][:] - b["energy_inherent"][:]).max() < 1e-12, name
        assert np.abs(a["inherent"][:] - b["inherent"][:]).max() < 1e-6, name
        assert (b["fire_residual"][:] < 1e-10).all() and (b["fire_residual"][:] > 0).all(), name
        assert np.array_equal(a["edges"][:], b["edges"][:]), name
        dcb = np.abs(a["cb"][:] - b["cb"][:])
        assert dcb.mean() < 0.01 and dcb.max() < 0.25, name
        assert np.nanmax(np.abs(a["edge_targets"][:] - b["edge_targets"][:])) < 0.05, name

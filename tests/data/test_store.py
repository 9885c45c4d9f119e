"""The store's layout upgrade (propensity as the mean absolute displacement, msd, fs_A) on a real store of
jobs/ci.yaml, against the targets computed from the replica positions it holds."""

import shutil

import numpy as np
import pytest
import zarr

from tbotan.data import store, targets
from tbotan.data.spec import load_spec
from tbotan.errors import StoreError
from tbotan.learn.graphs import load_graphs
from tests.helpers import ROOT

CI_SPEC = ROOT / "jobs" / "ci.yaml"


def _as_first_layout(path):
    """What a store made before layout 2 looked like: propensity = msd, no msd, no fs_A, no layout attribute."""
    root = zarr.open_group(str(path), mode="r+")
    for name, g in root.groups():
        if name.startswith("T"):
            g["propensity"][:] = g["msd"][:]
            del g["msd"], g["fs_A"], g["replica_done"]
    del root.attrs["layout"]


def test_a_first_layout_store_is_upgraded_from_its_replica_positions(ci_store, tmp_path):
    old = tmp_path / "old.zarr"
    shutil.copytree(ci_store, old)
    _as_first_layout(old)
    with pytest.raises(StoreError, match="first store layout.*tbotan simulate"):
        load_graphs(old, [0.8], split=0, target="propensity")
    # a killed upgrade left configuration 0 at T = 0.8 done: it must not be recomputed
    root = zarr.open_group(str(old), mode="r+")
    g = root["T0.800"]
    g.create_array(
        "msd",
        shape=g["cb"].shape,
        chunks=(1, *g["cb"].shape[1:]),
        dtype=float,
        fill_value=np.nan,
        dimension_names=("configuration", "time", "particle"),
    )
    g["msd"][0] = 7.0
    root, created = store.open_or_create(old, load_spec(CI_SPEC))
    assert not created and store.layout(root) == store.LAYOUT
    for T in ("T0.800", "T2.000"):  # replicas of done configurations are all written
        assert (root[T]["replica_done"][:] == root[T]["done"][:][:, None]).all()
    new = zarr.open_group(str(ci_store), mode="r")
    for T in ("T0.800", "T2.000"):
        a, b = root[T], new[T]
        for c in range(a["done"].shape[0]):
            if T == "T0.800" and c == 0:
                assert (a["msd"][0] == 7.0).all()
                continue
            frames = a["replica_positions"][c].astype(np.float64)
            np.testing.assert_allclose(a["propensity"][c], targets.propensity(a["thermal"][c], frames), rtol=1e-12)
            # the store's float32 replica positions against the float64 ones of the original run
            np.testing.assert_allclose(a["propensity"][c], b["propensity"][c], rtol=0, atol=1e-5)
            np.testing.assert_allclose(a["msd"][c], b["msd"][c], rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(a["fs_A"][c], b["fs_A"][c], atol=1e-6)
    assert len(load_graphs(old, [0.8], split=0, target="propensity")) == 1


def test_propensity_target_reads_the_mean_absolute_displacement(ci_store):
    g = zarr.open_group(str(ci_store), mode="r")["T0.800"]
    (graph,) = load_graphs(ci_store, [0.8], split=0, target="propensity")
    np.testing.assert_array_equal(graph.node_target.numpy(), g["propensity"][graph.c, 0].astype(np.float32))
    assert float(graph.node_target.mean()) > 0.1 and not np.allclose(graph.node_target, g["cb"][graph.c, 0])
    with pytest.raises(StoreError, match="unknown node target 'speed'"):
        load_graphs(ci_store, [0.8], split=0, target="speed")


def test_a_store_made_before_the_dynamics_field_reads_as_nve(ci_store, tmp_path):
    """Its data_spec has no `dynamics`: its replicas were NVE, so an NVE spec reopens it and another is refused
    with the dynamics it was made with."""
    import json

    from tbotan.data.spec import parse_spec

    old = tmp_path / "old.zarr"
    shutil.copytree(ci_store, old)
    root = zarr.open_group(str(old), mode="r+")
    data_spec = dict(root.attrs["data_spec"])
    del data_spec["dynamics"]
    root.attrs["data_spec"] = data_spec
    spec = load_spec(CI_SPEC)
    assert spec.dynamics.kind == "nve"
    store.record_spec(old, spec)  # reopens
    langevin = parse_spec({**json.loads(spec.to_json()), "dynamics": "langevin"})
    with pytest.raises(StoreError, match=r"fields that differ: dynamics.*`dynamics: nve`"):
        store.record_spec(old, langevin)


def test_status_shows_fs_at_tau_alpha_and_flags_a_wrong_alpha_time(ci_store, tmp_path):
    """Per T, F_s^A(7.25) at the time called tau_alpha: recomputed here with NumPy from the stored replica
    positions; a temperature whose ensembles are observed far past their alpha time is flagged with the fix."""
    import subprocess
    import sys

    copy = tmp_path / "s.zarr"
    shutil.copytree(ci_store, copy)
    root = zarr.open_group(str(copy), mode="r+")
    g = root["T0.800"]
    done = np.flatnonzero(g["done"][:])
    a = g["types"][0] == 0
    fs = []
    for c in done:
        dr = np.linalg.norm(g["replica_positions"][c, :, 0][:, a].astype(float) - g["thermal"][c][a], axis=-1)
        fs.append(np.mean(np.sin(7.25 * dr) / (7.25 * dr)))
    check = store.alpha_time_check(g)
    assert check["fs_at_tau"] == pytest.approx(np.mean(fs), abs=1e-6)
    assert check["configurations"] == len(done)
    g["fs_A"][:] = 0.2  # as if observed at ~1.7 alpha times
    bad = store.alpha_time_check(g)
    assert not bad["ok"] and "T=0.8: F_s^A(7.25) = 0.200" in bad["message"] and "tau_alpha: measure" in bad["message"]
    assert bad["ratio"] == pytest.approx((-np.log(0.2)) ** (1 / 0.8))
    out = subprocess.run([sys.executable, "-m", "tbotan", "status", str(copy)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "F_s(tau)" in out.stdout and "0.200 !" in out.stdout and "! T=0.8: F_s^A(7.25) = 0.200" in out.stdout

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
            del g["msd"], g["fs_A"]
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

"""`tbotan import botan` on small files written in exactly BOTAN's layout (real MD of a 256-particle liquid, its
particles shuffled so that the species are not in the store's usual order), on a real LocalCluster; every target
against a brute-force computation from the files' own arrays."""

import shutil
import subprocess

import numpy as np
import pytest
import zarr
from distributed import Client, LocalCluster

from tbotan import core
from tbotan.data import datasets, importers
from tbotan.data.spec import parse_spec
from tbotan.errors import DataSetError, SimulationFailed, StoreError
from tbotan.md import dynamics, engine
from tests import reference as ref
from tests.helpers import ROOT, TBOTAN, liquid

T, N, K = 0.8, 256, 3
TRAIN, TEST = (1, 2, 3), (401, 402)


def write_botan_file(folder, i, types, x0, frames, tc=7, n=N, t=T, **extra):
    path = folder / f"T{t}" / ("train" if i < 400 else "test") / f"isoconfig_N{n}T{t}_{i}_tc{tc:02d}.npz"
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {"types": types, "initial_positions": x0, "positions": frames, **extra}
    np.savez(path, **{k: v for k, v in arrays.items() if v is not None})
    return path


@pytest.fixture(scope="module")
def botan_dir(tmp_path_factory):
    """Five configurations (3 train, 2 test) at T = 0.8: K = 3 NVE runs to Table I's tau_alpha (3.42)."""
    folder = tmp_path_factory.mktemp("botan")
    types0, x, box = liquid(N, T)
    rng = np.random.default_rng(7)
    for k, i in enumerate(TRAIN + TEST):
        eq = dynamics.equilibrate(types0, x, box, T, 2.0, seed=k)
        x = eq.positions
        order = rng.permutation(N)  # the file's particle order: species interleaved
        types, x0 = types0[order], core.wrap(x, box)[order]
        runs = dynamics.iso_configurational(types, x0, box, T, [core.TABLE_I[0.8]], dynamics.replica_seeds(k, K))
        frames = np.stack([r.positions[0] for r in runs])  # (K, N, 3) unwrapped, continuing x0
        write_botan_file(folder, i, types.astype(np.int8), x0, frames)
    return folder


@pytest.fixture(scope="module")
def client():
    with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=":0") as c, Client(c) as cl:
        yield cl


def spec_for(folder, **source):
    return parse_spec(
        {
            "N": N,
            "temperatures": [T],
            "source": {"format": "botan", "path": str(folder), **source},
            "fire": {"tolerance": 1e-10},
            "training": {"epochs": 2, "switch_epoch": 1},
        }
    )


@pytest.fixture(scope="module")
def imported(botan_dir, client, tmp_path_factory):
    path = tmp_path_factory.mktemp("imp") / "botan.zarr"
    importers.import_data(spec_for(botan_dir, validation=1), path, client)
    return path


def test_every_target_equals_a_brute_force_computation_from_the_files(botan_dir, imported):
    g = zarr.open_group(str(imported), mode="r")["T0.800"]
    box = core.box_length(N)
    assert g["done"][:].all() and g.attrs["times"] == [core.TABLE_I[0.8]] and g.attrs["time_indices"] == [7]
    for c, i in enumerate(TRAIN + TEST):
        (path,) = sorted((botan_dir / "T0.8").glob(f"*/isoconfig_N{N}T0.8_{i}_tc07.npz"))
        d = np.load(path)
        types, x0, frames = d["types"], d["initial_positions"], list(d["positions"])
        assert g["source"][c] == str(path.relative_to(botan_dir))
        np.testing.assert_array_equal(g["types"][c], types)
        np.testing.assert_array_equal(g["thermal"][c], x0)
        np.testing.assert_allclose(g["cb"][c, 0], ref.bond_breaking_brute(types, x0, frames, box), atol=1e-14)
        disp = np.linalg.norm(np.array(frames) - x0, axis=-1)
        np.testing.assert_allclose(g["propensity"][c, 0], disp.mean(0), rtol=1e-13)
        np.testing.assert_allclose(g["msd"][c, 0], (disp**2).mean(0), rtol=1e-13)
        a = types == 0
        np.testing.assert_allclose(g["fs_A"][c, 0], np.mean(np.sin(7.25 * disp[:, a]) / (7.25 * disp[:, a])))
        n_e = g["n_edges"][c]
        edges, e = ref.edge_targets_brute(g["inherent"][c], x0, frames, box)
        np.testing.assert_array_equal(g["edges"][c, :n_e], edges)
        np.testing.assert_allclose(g["edge_targets"][c, 0, :n_e], e, atol=1e-12)
        # the inherent structure is a minimum of the file's configuration, with the file's species
        _, f = engine.energy_and_forces(types, g["inherent"][c], box)
        assert engine.mean_force(f) < 1e-10 and g["fire_residual"][c] < 1e-10
        e0, _ = ref.energy_forces(types, x0, box)
        assert g["energy_thermal"][c] == pytest.approx(e0 / N, rel=1e-10)
        assert g["pressure_thermal"][c] == pytest.approx(ref.pressure(types, x0, box, g.attrs["T"]), rel=1e-7)
    assert g["split"][:].tolist() == [0, 1, 0, 2, 2]  # the files' test split kept; 1 of 3 train -> validation


def test_a_rerun_finishes_what_is_missing_and_nothing_else(botan_dir, imported, client, tmp_path):
    path = tmp_path / "botan.zarr"
    shutil.copytree(imported, path)
    g = zarr.open_group(str(path), mode="r+")["T0.800"]
    g["done"][3] = False
    g["cb"][3] = 0.0
    before = g["inherent"][0]
    importers.import_data(spec_for(botan_dir, validation=1), path, client)
    ref_g = zarr.open_group(str(imported), mode="r")["T0.800"]
    assert g["done"][:].all()
    np.testing.assert_array_equal(g["cb"][3], ref_g["cb"][3])
    np.testing.assert_array_equal(g["inherent"][0], before)


def test_the_cli_imports_and_status_shows_it(botan_dir, tmp_path):
    store = tmp_path / "cli.zarr"
    r = subprocess.run(
        [*TBOTAN, "import", "botan", str(botan_dir), "--store", str(store), "--validation", "1"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    status = subprocess.run([*TBOTAN, "status", str(store)], capture_output=True, text=True, cwd=ROOT)
    assert "5/5" in status.stdout and "complete" in status.stdout


def _copy_with(botan_dir, tmp_path, name):
    folder = tmp_path / name
    shutil.copytree(botan_dir, folder)
    with np.load(next((folder / "T0.8" / "train").glob("*_1_tc07.npz"))) as d:
        return folder, dict(d)


def test_bad_data_sets_are_refused_naming_the_file_and_the_cause(botan_dir, client, tmp_path):
    with pytest.raises(DataSetError, match="no file matches the botan layout"):
        datasets.scan("botan", tmp_path)
    folder, d = _copy_with(botan_dir, tmp_path, "n")
    write_botan_file(folder, 4, d["types"][:200], d["initial_positions"][:200], d["positions"][:, :200], n=200)
    with pytest.raises(DataSetError, match=r"isoconfig_N200T0.8_4_tc07.npz: N=200, but other files .* N=256"):
        datasets.scan("botan", folder)
    folder, d = _copy_with(botan_dir, tmp_path, "key")
    write_botan_file(folder, 4, d["types"], d["initial_positions"], None)
    with pytest.raises(DataSetError, match=r"_4_tc07.npz: no array 'positions'"):
        datasets.scan("botan", folder)
    folder, d = _copy_with(botan_dir, tmp_path, "twice")
    path = write_botan_file(folder, 1, d["types"], d["initial_positions"], d["positions"])
    shutil.copy(path, folder / "T0.8" / "test" / path.name)
    with pytest.raises(DataSetError, match="both claim configuration 1 at T=0.8"):
        datasets.scan("botan", folder)
    folder, d = _copy_with(botan_dir, tmp_path, "times")
    write_botan_file(folder, 1, d["types"], d["initial_positions"], d["positions"], tc=5)
    with pytest.raises(DataSetError, match=r"configuration 2 at T=0.8 \(train\) has no file for time index \[5\]"):
        datasets.scan("botan", folder)
    # content problems fail their configuration (named in the store's errors) and only that one
    folder, d = _copy_with(botan_dir, tmp_path, "nan")
    x = d["positions"].copy()
    x[1, 17, 2] = np.nan
    write_botan_file(folder, 1, d["types"], d["initial_positions"], x)
    types = d["types"].copy()
    types[:] = 0
    write_botan_file(folder, 2, types, d["initial_positions"], d["positions"])
    path = tmp_path / "nan.zarr"
    with pytest.raises(SimulationFailed, match="2 configurations failed to import"):
        importers.import_data(spec_for(folder), path, client)
    g = zarr.open_group(str(path), mode="r")["T0.800"]
    assert g["done"][:].tolist() == [False, False, True, True, True]
    assert "_1_tc07.npz: 1 non-finite values in positions" in g.attrs["errors"]["0"]
    assert "_2_tc07.npz: types [0]; expected the two species" in g.attrs["errors"]["1"]
    # the same store, asked to import other files, is refused
    other, _ = _copy_with(botan_dir, tmp_path, "other")
    (other / "T0.8" / "test" / f"isoconfig_N{N}T0.8_402_tc07.npz").rename(
        other / "T0.8" / "test" / f"isoconfig_N{N}T0.8_403_tc07.npz"
    )
    with pytest.raises(StoreError, match="not those this store was imported from"):
        importers.import_data(spec_for(other), path, client)


# --- GlassBench ----------------------------------------------------------------------------------------------
N_T = 10


@pytest.fixture(scope="module")
def glassbench_dir(tmp_path_factory):
    """Three train and two test files at T = 0.8 in GlassBench's layout: species 1/2, positions in [-L/2, L/2),
    a given inherent structure (one of them not a minimum), md_prop / bb_prop at 10 times, and in the test
    files two published models' predictions, one at every time, one at tau_alpha only."""
    from tbotan.md import fire

    folder = tmp_path_factory.mktemp("glassbench")
    types, x, box = liquid(N, T)
    rng = np.random.default_rng(3)
    for k, i in enumerate((1, 2, 3, 4, 5)):
        x = dynamics.equilibrate(types, x, box, T, 1.0, seed=10 + k).positions
        inherent = fire.quench(types, core.wrap(x, box), box, fire.FireParameters(tolerance=1e-12)).positions
        if i == 2:
            inherent = inherent + rng.normal(0, 0.02, inherent.shape)  # not a minimum: must be re-quenched
        half = lambda y: core.wrap(y + box / 2, box) - box / 2  # noqa: E731 - GlassBench's [-L/2, L/2)
        arrays = {
            "types": types.astype(np.int64) + 1,
            "initial_positions": half(x),
            "initial_positions_inherent": half(inherent),
            "initial_positions_cage": half(x),
            "md_prop": rng.random((N_T, N)),
            "bb_prop": 0.8 + 0.2 * rng.random((N_T, N)),
        }
        split = "train" if i <= 3 else "test"
        if split == "test":
            arrays["BOTAN"] = rng.random((N_T, N))
            arrays["GlassMLP"] = rng.random(N)
        path = folder / "T0.8" / split / f"N{N}T0.8_{i}.npz"
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, **arrays)
    return folder


def test_glassbench_import_keeps_its_targets_and_published_predictions(glassbench_dir, client, tmp_path):
    path = tmp_path / "gb.zarr"
    spec = parse_spec(
        {
            "N": N,
            "temperatures": [T],
            "source": {"format": "glassbench", "path": str(glassbench_dir), "validation": 1},
            "fire": {"tolerance": 1e-10},
        }
    )
    importers.import_data(spec, path, client)
    root = zarr.open_group(str(path), mode="r")
    g = root["T0.800"]
    box = core.box_length(N)
    assert g["done"][:].all() and g["split"][:].tolist() == [0, 1, 0, 2, 2]
    assert g.attrs["times_tau"][6] == 1.0 and len(g.attrs["times"]) == N_T
    assert g["inherent_requenched"][:].tolist() == [False, True, False, False, False]
    for c, i in enumerate((1, 2, 3, 4, 5)):
        d = np.load(next(glassbench_dir.glob(f"T0.8/*/N{N}T0.8_{i}.npz")))
        np.testing.assert_array_equal(g["types"][c], d["types"] - 1)
        np.testing.assert_allclose(g["thermal"][c], core.wrap(d["initial_positions"], box), atol=1e-12)
        np.testing.assert_array_equal(g["propensity"][c], d["md_prop"])
        np.testing.assert_array_equal(g["cb"][c], d["bb_prop"])
        _, f = engine.energy_and_forces(g["types"][c], g["inherent"][c], box)
        assert engine.mean_force(f) == pytest.approx(g["fire_residual"][c], rel=1e-6) and g["fire_residual"][c] < 1e-10
        assert np.isnan(g["edge_targets"][c]).all() and g["n_edges"][c] > 0
        if i >= 4:
            row = i - 4
            np.testing.assert_array_equal(root["published/BOTAN/T0.800/node"][row], d["BOTAN"])
            mlp = root["published/GlassMLP/T0.800/node"][row]
            np.testing.assert_array_equal(mlp[6], d["GlassMLP"])
            assert np.isnan(np.delete(mlp, 6, axis=0)).all()
    assert root["published/BOTAN/T0.800/configurations"][:].tolist() == [3, 4]


def test_a_store_without_edge_targets_trains_node_only_and_is_refused_otherwise(glassbench_dir, client, tmp_path):
    from tbotan.errors import TrainingError
    from tbotan.learn.train import train

    path = tmp_path / "gb.zarr"
    data = {
        "N": N,
        "temperatures": [T],
        "source": {"format": "glassbench", "path": str(glassbench_dir), "validation": 1},
        "training": {"epochs": 2, "switch_epoch": 1, "seeds": 1, "hidden": 8, "steps": 1, "target": "propensity"},
    }
    importers.import_data(parse_spec(data), path, client)
    with pytest.raises(TrainingError, match="no edge targets.*training.lambda_edge: 0"):
        train(parse_spec(data), path)
    data["training"]["lambda_edge"] = 0.0
    (result,) = train(parse_spec(data), path).values()
    assert result["epochs"] == 2 and np.isfinite(result["best_validation"])
    # evaluation and the report put T-BOTAN beside the published models, recomputably from the stored arrays
    import json

    from tbotan.analysis.report import write_report
    from tbotan.learn.evaluate import evaluate

    spec = parse_spec(data)
    evaluate(spec, path)
    index = write_report(path)
    rows = json.loads((index.parent / "published_comparison.json").read_text())["rows"]
    assert {r["model"] for r in rows} == {"BOTAN", "GlassMLP", "T-BOTAN/both"}
    assert (index.parent / "published_comparison.csv").exists() and (index.parent / "published_comparison.png").exists()
    root = zarr.open_group(str(path), mode="r")
    g, pub = root["T0.800"], root["published/BOTAN/T0.800"]
    row = next(
        r for r in rows if r["model"] == "BOTAN" and r["target"] == "propensity" and r["time"] == g.attrs["times"][6]
    )
    expected = []
    for k, c in enumerate(pub["configurations"][:]):
        a = g["types"][c] == 0
        expected.append(np.corrcoef(pub["node"][k, 6][a], g["propensity"][c, 6][a])[0, 1])
    assert row["pearson_A"] == pytest.approx(np.mean(expected), rel=1e-12) and row["configurations"] == 2
    assert len([r for r in rows if r["model"] == "GlassMLP"]) == 2  # tau_alpha only, against both targets
    mine = next(r for r in rows if r["model"] == "T-BOTAN/both")
    pred = root["predictions/both/seed0/T0.800"]
    assert mine["target"] == "propensity" and mine["pearson_A"] == pytest.approx(np.nanmean(pred["pearson_node_A"][:]))


def test_a_store_exported_to_glassbench_imports_back_to_the_same_targets(ci_store, client, tmp_path):
    out = tmp_path / "KA_models"
    r = subprocess.run(
        [*TBOTAN, "export", "glassbench", str(ci_store), str(out)], capture_output=True, text=True, cwd=ROOT
    )
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in (out / "T0.8" / "train").iterdir()) == ["N256T0.8_1.npz", "N256T0.8_2.npz"]
    spec = parse_spec(
        {
            "N": 256,
            "temperatures": [0.8, 2.0],
            "tau_alpha": {0.8: 2.7, 2.0: 0.25},
            "source": {"format": "glassbench", "path": str(out), "validation": 1, "times": {0: 1.0}},
            "fire": {"tolerance": 1e-10},
        }
    )
    back = tmp_path / "back.zarr"
    importers.import_data(spec, back, client)
    a, b = zarr.open_group(str(ci_store), mode="r"), zarr.open_group(str(back), mode="r")
    for T in ("T0.800", "T2.000"):
        ga, gb = a[T], b[T]
        order = [*np.flatnonzero(ga["split"][:] < 2), *np.flatnonzero(ga["split"][:] == 2)]
        assert gb["split"][:].tolist() == [
            min(int(ga["split"][c]), 2) if ga["split"][c] == 2 else gb["split"][k] for k, c in enumerate(order)
        ]
        assert not gb["inherent_requenched"][:].any()  # the store's own minima are minima
        for k, c in enumerate(order):
            np.testing.assert_array_equal(gb["cb"][k], ga["cb"][c])
            np.testing.assert_array_equal(gb["propensity"][k], ga["propensity"][c])
            np.testing.assert_array_equal(gb["types"][k], ga["types"][c])
            np.testing.assert_allclose(gb["thermal"][k], ga["thermal"][c], atol=1e-12)
            np.testing.assert_allclose(gb["inherent"][k], ga["inherent"][c], atol=1e-12)
            n = ga["n_edges"][c]
            np.testing.assert_array_equal(gb["edges"][k, :n], ga["edges"][c, :n])


def test_run_on_an_import_spec_imports_trains_evaluates_and_reports(botan_dir, tmp_path):
    spec = tmp_path / "botan.yaml"
    spec.write_text(
        f"N: {N}\ntemperatures: [{T}]\nsource:\n  format: botan\n  path: {botan_dir}\n  validation: 1\n"
        "fire:\n  tolerance: 1.0e-10\ntraining:\n  epochs: 2\n  switch_epoch: 1\n  seeds: 1\n"
        "  hidden: 8\n  steps: 1\n  target: propensity\n"
    )
    store = tmp_path / "run.zarr"
    command = [*TBOTAN, "run", str(spec), "--store", str(store), "--ranks", "1"]
    r = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=900)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    assert (store / "report" / "index.html").exists()
    root = zarr.open_group(str(store), mode="r")
    assert root["T0.800"]["done"][:].all() and root["predictions/both/seed0/T0.800/node"].shape == (2, N)
    again = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=900)
    assert again.returncode == 0 and "is complete" in again.stdout


# --- Bapst et al. 2020 (DeepMind's glassy_dynamics pickles) -----------------------------------------------------
BAPST_TIME = [0.0, 0.1, 0.2, 0.5, 1.0, 2.0, 3.42, 5.0]  # the file's grid; run set i at BAPST_TIME[BAPST_INDICES[i]]
BAPST_INDICES = [3, 5, 7, 6]  # like DeepMind's, the 1/e set (3.42) last but not latest
BAPST_IS = [0.9, 0.6, 0.2, float(np.exp(-1))]
BAPST_ORDER = [0, 1, 3, 2]  # the run sets in time order


def write_bapst_file(path, types, x0, sets, length, /, **change):
    """A pickle in exactly the layout of Bapst et al.'s files; ``sets`` (n_runs, K, N, 3) in time_indices order."""
    import pickle

    data = {
        "positions": x0,
        "types": types.astype(np.int32),
        "box": np.full(3, length),
        "time": list(BAPST_TIME),
        "is_values": np.array(BAPST_IS),
        "time_indices": list(BAPST_INDICES),
        "targets": [np.linalg.norm(s - x0, axis=-1).mean(0) for s in sets],
        "metadata": {"temperature": T, "pressure": 2.0, "fluid": "Kob Andersen"},
        "trajectory_target_positions": [np.asarray(s) for s in sets],
        **change,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        pickle.dump(data, f, protocol=3)
    return path


@pytest.fixture(scope="module")
def bapst_dir(tmp_path_factory):
    """Two train and one test file at T = 0.8: K = 3 NVE runs to the four times of BAPST_INDICES."""
    folder = tmp_path_factory.mktemp("bapst")
    types, x, box = liquid(N, T)
    times = sorted(BAPST_TIME[i] for i in BAPST_INDICES)
    for k, name in enumerate(("train/aggregated-0", "train/aggregated-1", "test/aggregated-0")):
        x = dynamics.equilibrate(types, x, box, T, 2.0, seed=20 + k).positions
        x0 = core.wrap(x, box)
        runs = dynamics.iso_configurational(types, x0, box, T, times, dynamics.replica_seeds(20 + k, K))
        by_time = np.stack([r.positions for r in runs], axis=1)  # (n_t, K, N, 3) in time order
        sets = [by_time[times.index(BAPST_TIME[i])] for i in BAPST_INDICES]
        write_bapst_file(folder / f"{name}.pickle", types, x0, sets, box)
    return folder


def test_bapst_files_import_to_targets_computed_from_their_own_runs(bapst_dir):
    import pickle

    from tbotan.md.fire import FireParameters

    catalogue = datasets.scan("bapst", bapst_dir)
    box = core.box_length(N)
    assert catalogue.N == N and catalogue.replicas == K and catalogue.time_indices == BAPST_ORDER
    assert [len(catalogue.configurations[T])] == [3] and catalogue.box == pytest.approx(box, rel=1e-15)
    times, _ = datasets.times_tau(catalogue, None)
    assert times == pytest.approx([BAPST_TIME[BAPST_INDICES[i]] / 3.42 for i in BAPST_ORDER], rel=1e-15)
    assert catalogue.file_times[T]["file_tau_alpha"] == 3.42
    assert [c.split for c in catalogue.configurations[T]] == ["train", "train", "test"]
    for conf in catalogue.configurations[T]:
        path = conf.files[0]
        r = importers.import_bapst(
            [str(path)], N, box, FireParameters(tolerance=1e-12), "c", "float64", catalogue.time_indices, T
        )
        with open(path, "rb") as f:
            d = pickle.load(f)
        types, x0 = d["types"], d["positions"]
        np.testing.assert_array_equal(r["types"], types)
        np.testing.assert_array_equal(r["thermal"], x0)
        for k, i in enumerate(BAPST_ORDER):
            frames = list(d["trajectory_target_positions"][i])
            np.testing.assert_array_equal(r["replica_positions"][:, k], np.array(frames))
            disp = np.linalg.norm(np.array(frames) - x0, axis=-1)
            np.testing.assert_allclose(r["propensity"][k], d["targets"][i], rtol=1e-13)
            np.testing.assert_allclose(r["msd"][k], (disp**2).mean(0), rtol=1e-13)
            a = types == 0
            np.testing.assert_allclose(r["fs_A"][k], np.mean(np.sin(7.25 * disp[:, a]) / (7.25 * disp[:, a])))
            np.testing.assert_allclose(r["cb"][k], ref.bond_breaking_brute(types, x0, frames, box), atol=1e-14)
            edges, e = ref.edge_targets_brute(r["inherent"], x0, frames, box)
            np.testing.assert_array_equal(r["edges"], edges)
            np.testing.assert_allclose(r["edge_targets"][k], e, atol=1e-12)
        _, f = engine.energy_and_forces(types, r["inherent"], box)
        assert engine.mean_force(f) < 1e-12 and r["fire_residual"] < 1e-12


def test_bapst_import_fills_a_store_with_the_files_own_times_and_density(bapst_dir, client, tmp_path):
    path = tmp_path / "bapst.zarr"
    spec = parse_spec(
        {"N": N, "temperatures": [T], "source": {"format": "bapst", "path": str(bapst_dir), "validation": 1}}
    )
    importers.import_data(spec, path, client)
    root = zarr.open_group(str(path), mode="r")
    g = root["T0.800"]
    assert g["done"][:].all() and g["split"][:].tolist() == [0, 1, 2]
    assert g.attrs["times"] == pytest.approx([BAPST_TIME[BAPST_INDICES[i]] for i in BAPST_ORDER], rel=1e-12)
    assert g.attrs["time_indices"] == BAPST_ORDER and g.attrs["file_tau_alpha"] == 3.42
    assert g.attrs["L"] == pytest.approx(core.box_length(N), rel=1e-14)


def test_bad_bapst_files_are_refused_naming_the_file_and_the_cause(bapst_dir, tmp_path):
    import pickle

    from tbotan.md.fire import FireParameters

    with open(next(bapst_dir.glob("train/*-0.pickle")), "rb") as f:
        d = pickle.load(f)
    types, x0, sets, box = d["types"], d["positions"], d["trajectory_target_positions"], core.box_length(N)

    def folder_with(name, **change):
        folder = tmp_path / name
        shutil.copytree(bapst_dir, folder)
        return folder, write_bapst_file(folder / "test" / "bad.pickle", types, x0, sets, box, **change)

    folder, path = folder_with("key")
    with open(path, "rb") as f:
        data = pickle.load(f)
    del data["targets"]
    path.write_bytes(pickle.dumps(data))
    with pytest.raises(DataSetError, match=r"bad.pickle: no 'targets'"):
        datasets.scan("bapst", folder)
    folder, _ = folder_with("box", box=np.array([box, box, box + 1]))
    with pytest.raises(DataSetError, match=r"bad.pickle: box .* only a cubic box"):
        datasets.scan("bapst", folder)
    folder, _ = folder_with("n", positions=x0[:200], types=types[:200].astype(np.int32))
    with pytest.raises(DataSetError, match=r"bad.pickle: positions \(200, 3\)"):
        datasets.scan("bapst", folder)
    folder, path = folder_with("code")
    path.write_bytes(pickle.dumps({"positions": __import__("os").getcwd}))
    with pytest.raises(DataSetError, match=r"bad.pickle: not a readable .* refused global"):
        datasets.scan("bapst", folder)
    (tmp_path / "flat").mkdir()
    write_bapst_file(tmp_path / "flat" / "a.pickle", types, x0, sets, box)
    with pytest.raises(DataSetError, match="in a folder 'flat'; the bapst layout has train/ and test/"):
        datasets.scan("bapst", tmp_path / "flat")
    # run sets that do not line up with time_indices fail their configuration before any FIRE
    _, path = folder_with("swapped", trajectory_target_positions=[sets[1], sets[0], *sets[2:]], targets=d["targets"])
    with pytest.raises(DataSetError, match=r"trajectory_target_positions\[0\] differs from targets\[0\]"):
        importers.import_bapst([str(path)], N, box, FireParameters(), "c", "float64", BAPST_ORDER, T)

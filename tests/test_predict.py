"""`tbotan export model|xyz` and `tbotan predict` (tbotan.predict, tbotan.learn.portable, tbotan.learn.inference,
tbotan.data.configurations) on a real trained and evaluated store of jobs/ci.yaml; every command runs as a real
process (`python -m tbotan`) on a real LocalCluster."""

import json
import pickle
import shutil
import subprocess

import numpy as np
import pytest
import torch
import zarr

from tbotan import core
from tbotan.data.export_xyz import export_xyz
from tbotan.learn.portable import FORMAT
from tbotan.md import xyz
from tests.helpers import ROOT, TBOTAN, trained_copy

CI_SPEC = ROOT / "jobs" / "ci.yaml"


def tbotan(*args, cwd=ROOT, timeout=600):
    return subprocess.run([*TBOTAN, *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=timeout)


def profile(tmp_path):
    path = tmp_path / "local.yaml"
    path.write_text('kind: local\nworkers: 2\nthreads_per_worker: 1\ndashboard_address: ":0"\n')
    return path


def write_dump(path, types, x, box):
    """A LAMMPS text dump (types 1 = A, 2 = B), positions with 17 significant digits."""
    lines = ["ITEM: TIMESTEP", "0", "ITEM: NUMBER OF ATOMS", str(len(types)), "ITEM: BOX BOUNDS pp pp pp"]
    lines += [f"0 {box[k]!r}" for k in range(3)]
    lines.append("ITEM: ATOMS id type x y z")
    lines += [f"{i + 1} {int(t) + 1} {a:.17g} {b:.17g} {c:.17g}" for i, (t, (a, b, c)) in enumerate(zip(types, x))]
    path.write_text("\n".join(lines) + "\n")


def half_box(x, L):
    """Positions folded into GlassBench's [-L/2, L/2)."""
    return (x + L / 2) % L - L / 2


@pytest.fixture(scope="module")
def run(ci_store, tmp_path_factory):
    """A copy of the ci store trained (4 epochs, 2 seeds) and evaluated; its model exported; every test
    configuration written as extended XYZ (inherent structure as a column), as a LAMMPS dump with its inherent
    structure in a second dump, and as a GlassBench .npz."""
    base = tmp_path_factory.mktemp("predict")
    spec, store = trained_copy(ci_store, base)
    r = tbotan("export", "model", store, base / "model.pt")
    assert r.returncode == 0, r.stderr
    root = zarr.open_group(str(store), mode="r")
    files = {"xyz": [], "dump": [], "dump_is": [], "npz": []}
    tests = []
    for T in spec.temperatures:
        g = root[f"T{T:.3f}"]
        L = float(g.attrs["L"])
        for i, c in enumerate(root[f"predictions/both/seed0/T{T:.3f}/configurations"][:]):
            name = f"T{T:g}_c{c}"
            if not tests:  # the command once, the function behind it for the others
                r = tbotan("export", "xyz", store, T, c, base / "xyz" / f"{name}.xyz")
                assert r.returncode == 0, r.stderr
            else:
                export_xyz(store, T, int(c), base / "xyz" / f"{name}.xyz")
            files["xyz"].append(base / "xyz" / f"{name}.xyz")
            (base / "dump").mkdir(exist_ok=True)
            write_dump(base / "dump" / f"{name}.dump", g["types"][c], g["thermal"][c], [L] * 3)
            write_dump(base / "dump" / f"{name}.is.dump", g["types"][c], g["inherent"][c], [L] * 3)
            files["dump"].append(base / "dump" / f"{name}.dump")
            files["dump_is"].append(base / "dump" / f"{name}.is.dump")
            (base / "npz").mkdir(exist_ok=True)
            np.savez(
                base / "npz" / f"gb_{name}.npz",
                types=g["types"][c].astype(np.int64) + 1,
                initial_positions=half_box(g["thermal"][c], L),
                initial_positions_inherent=half_box(g["inherent"][c], L),
            )
            files["npz"].append(base / "npz" / f"gb_{name}.npz")
            tests.append((T, i, int(c), name))
    return {"spec": spec, "store": store, "base": base, "model": base / "model.pt", "files": files, "tests": tests}


def assert_matches_evaluate(run, out, names=None):
    """Every test configuration's per-seed node, edge and T_pred in ``out`` equal the store's predictions."""
    root = zarr.open_group(str(run["store"]), mode="r")
    for T, i, c, name in run["tests"]:
        name = names(name) if names else name
        rec = json.loads((out / f"{name}.json").read_text())
        npz = np.load(out / f"{name}.edges.npz")
        n = int(root[f"T{T:.3f}/n_edges"][c])
        np.testing.assert_array_equal(npz["edges"], root[f"T{T:.3f}/edges"][c, :n])
        assert list(npz["seeds"]) == rec["seeds"] == [0, 1]
        for s in (0, 1):
            tg = root[f"predictions/both/seed{s}/T{T:.3f}"]
            np.testing.assert_allclose(npz["cb_pred_seeds"][s], tg["node"][i], rtol=0, atol=2e-6)
            np.testing.assert_allclose(npz["e_pred_seeds"][s], tg["edge"][i, :n], rtol=0, atol=2e-6)
            assert rec["t_pred"][s] == pytest.approx(tg["t_pred"][i], abs=2e-6)
        assert rec["t_pred_mean"] == pytest.approx(np.mean(rec["t_pred"]), rel=1e-12)
        np.testing.assert_allclose(npz["e_pred"], npz["e_pred_seeds"].astype(np.float64).mean(0), rtol=1e-12)
        conf, columns = xyz.read_columns(out / f"{name}.xyz")
        np.testing.assert_allclose(columns["cb_pred"], npz["cb_pred_seeds"].astype(np.float64).mean(0), rtol=1e-12)
        assert np.array_equal(conf.positions, root[f"T{T:.3f}/thermal"][c])  # 17 digits: exact
        assert rec["N"] == 256 and rec["fire_residual"] <= 1e-10 and (out / f"{name}.png").stat().st_size > 0


def test_the_store_predicts_its_own_test_configurations_from_xyz_and_npz_as_evaluate_did(run, tmp_path):
    files = run["files"]["xyz"] + run["files"]["npz"][:1]
    out = tmp_path / "out"
    # the ci store's inherent structures were quenched to 1e-10: that tolerance keeps them as they are
    r = tbotan("predict", run["store"], *files, "--out", out, "--cluster", profile(tmp_path), "--tolerance", "1e-10")
    assert r.returncode == 0, r.stdout + r.stderr
    assert_matches_evaluate(run, out)
    first = run["tests"][0][3]
    a, b = np.load(out / f"{first}.edges.npz"), np.load(out / f"gb_{first}.edges.npz")  # GlassBench's box: implied
    np.testing.assert_allclose(a["cb_pred_seeds"], b["cb_pred_seeds"], rtol=0, atol=2e-6)
    assert "density 1.2 of GlassBench" in r.stdout
    import ase.io

    atoms = ase.io.read(out / f"{first}.xyz")  # ASE reads the output, columns included
    assert atoms.arrays["cb_pred"].shape == (256,) and list(atoms.numbers[:1]) in ([1], [2])


def test_the_exported_file_predicts_lammps_dumps_in_a_fresh_process_as_the_checkpoints_and_bit_for_bit(run, tmp_path):
    model = tmp_path / "elsewhere" / "model.pt"
    model.parent.mkdir()
    shutil.copy(run["model"], model)
    loaded = torch.load(model, weights_only=True)
    assert loaded["format"] == FORMAT and sorted(loaded["seeds"]) == [0, 1] and loaded["variant"] == "both"
    assert loaded["training_temperatures"] == [0.8] and json.loads(loaded["spec"])["N"] == 256
    dumps, inherent = run["files"]["dump"], run["files"]["dump_is"]
    args = [a for d in inherent for a in ("--inherent", d)]
    outs = [tmp_path / "a", tmp_path / "b"]
    for out in outs:
        r = tbotan(
            "predict", model, *dumps, *args, "--out", out, "--cluster", profile(tmp_path), "--tolerance", "1e-10"
        )
        assert r.returncode == 0, r.stdout + r.stderr
    assert_matches_evaluate(run, outs[0])
    names = sorted(p.name for p in outs[0].iterdir())
    assert names == sorted(p.name for p in outs[1].iterdir()) and len(names) == 4 * len(dumps)
    for name in names:
        assert (outs[0] / name).read_bytes() == (outs[1] / name).read_bytes(), name
    again = tbotan("predict", model, *dumps, *args, "--out", outs[0], "--tolerance", "1e-10")
    assert again.returncode == 0 and again.stdout.count("up to date") == len(dumps), again.stdout + again.stderr
    assert "dask" not in again.stderr  # nothing to do: no cluster started


def test_bad_inputs_each_get_one_line_and_the_others_go_on(run, tmp_path):
    good = run["files"]["xyz"][0]
    conf, columns = xyz.read_columns(good)
    t, x, L = conf.types, conf.positions, conf.box
    bad = tmp_path / "bad"
    bad.mkdir()
    write_dump(bad / "noncubic.dump", t, x, [L, L, 1.1 * L])
    with open(bad / "nobox.pkl", "wb") as f:
        pickle.dump({"positions": x, "types": t, "box": None}, f)
    (bad / "argon.xyz").write_text(
        f'{len(t)}\nLattice="{L} 0 0 0 {L} 0 0 0 {L}" Properties=species:S:1:pos:R:3 pbc="T T T"\n'
        + "".join(f"{'Ar' if k == 0 else 'Kr'} {a} {b} {c}\n" for k, (a, b, c) in zip(t, x))
    )
    y = x.copy()
    y[3] = np.nan
    xyz.write(bad / "nan.xyz", t, y, L)
    y = x.copy()
    y[5] = y[4]
    xyz.write(bad / "duplicate.xyz", t, y, L)
    mixed = t.copy()
    mixed[: len(t) // 2] = 1 - mixed[: len(t) // 2]  # about 30:70
    xyz.write_columns(bad / "mixed.xyz", mixed, x, L, {"inherent": columns["inherent"]})
    xyz.write_columns(bad / "dense.xyz", t, x * 0.99, L * 0.99, {"inherent": columns["inherent"] * 0.99})  # 3 % denser
    files = [bad / f for f in ("noncubic.dump", "nobox.pkl", "argon.xyz", "nan.xyz", "duplicate.xyz")]
    files += [good, bad / "mixed.xyz", bad / "dense.xyz"]
    out = tmp_path / "out"
    r = tbotan("predict", run["model"], *files, "--out", out, "--cluster", profile(tmp_path), "--tolerance", "1e-10")
    text = r.stdout + r.stderr
    assert r.returncode == 1, text
    for name, cause in [
        ("noncubic.dump", "not cubic"),
        ("nobox.pkl", "no periodic box"),
        ("argon.xyz", "the model does not know"),
        ("nan.xyz", "NaN"),
        ("duplicate.xyz", "duplicate positions"),
    ]:
        lines = [line for line in text.splitlines() if name in line and cause in line]
        assert lines, f"no line naming {name} and {cause!r}:\n{text}"
        assert not list(out.glob(f"{name.split('.')[0]}.*")), name
    assert any("mixed.xyz" in line and "A:B = 30:70" in line and "80:20" in line for line in text.splitlines()), text
    assert any("dense.xyz" in line and "density" in line for line in text.splitlines()), text
    for stem in (good.stem, "mixed", "dense"):
        assert (out / f"{stem}.json").exists() and (out / f"{stem}.xyz").exists(), stem
    assert "5 of 8 configuration file(s) failed" in r.stderr


def test_a_model_file_of_another_format_and_a_store_without_models_are_refused(run, ci_store, tmp_path):
    model = torch.load(run["model"], weights_only=True)
    model["format"] = FORMAT + 98
    torch.save(model, tmp_path / "future.pt")
    good = run["files"]["xyz"][0]
    r = tbotan("predict", tmp_path / "future.pt", good, "--out", tmp_path / "out")
    assert r.returncode == 1 and f"format version {FORMAT + 98}" in r.stderr, r.stderr
    r = tbotan("predict", ci_store, good, "--out", tmp_path / "out")
    assert r.returncode == 1 and "no trained model" in r.stderr, r.stderr
    r = tbotan("export", "model", ci_store, tmp_path / "m.pt")
    assert r.returncode == 1 and "no trained model" in r.stderr, r.stderr
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_every_format_reads_the_same_configuration_and_species(run, tmp_path):
    from tbotan.data.configurations import parse_types, read_configuration

    conf, columns = xyz.read_columns(run["files"]["xyz"][0])
    t, x, L = conf.types, conf.positions, conf.box
    with open(tmp_path / "dm.pkl", "wb") as f:
        pickle.dump({"positions": x, "types": t.astype(np.int64), "box": np.array([L, L, L])}, f)
    np.savez(tmp_path / "botan.npz", types=t, initial_positions=x, positions=np.stack([x, x]))
    lines = ["data", "", f"{len(t)} atoms", "2 atom types", ""] + [f"0 {L!r} {a}lo {a}hi" for a in "xyz"]
    lines += ["", "Masses", "", "1 1.0", "2 1.0", "", "Atoms # atomic", ""]
    lines += [f"{i + 1} {k + 1} {a:.17g} {b:.17g} {c:.17g}" for i, (k, (a, b, c)) in enumerate(zip(t, x))]
    (tmp_path / "conf.data").write_text("\n".join(lines) + "\n")
    for name in ("dm.pkl", "botan.npz", "conf.data"):
        got = read_configuration(tmp_path / name)
        assert np.array_equal(got.types, t) and got.box == L, name
        np.testing.assert_allclose(got.positions, x, rtol=0, atol=1e-12)  # ASE's LAMMPS reader: not bit for bit
    swapped = read_configuration(tmp_path / "conf.data", parse_types("1=B,2=A"))
    assert np.array_equal(swapped.types, 1 - t)
    gb = read_configuration(run["files"]["npz"][0])
    assert np.allclose(core.wrap(gb.inherent, L), columns["inherent"], rtol=0, atol=1e-12)

"""`tbotan predict` on BOTAN's real test files gives the numbers `tbotan evaluate` stored for them (N = 4096, T = 0.44).

    python benchmarks/experiments/predict_botan.py PYG_BOTAN [--store storage/botan_sample.zarr] [--work DIR]
                                                   [--workers 2] [--out FILE] [--record | --name NAME]

PYG_BOTAN is a checkout of github.com/h3-Open-BDEC/pyg_botan, or a bare git mirror of it (its small_data/ is then
extracted with `git archive HEAD small_data` into --work; the files are never committed here). The script
1. imports small_data/ with `tbotan import botan ... --validation 2` on a LocalCluster of --workers one-thread
   workers (a local profile written into --work) unless --store exists, and reports the import cost per
   configuration (botan_sample.py makes the same store);
2. copies the store without models or predictions and trains a small T-BOTAN on the copy in minutes (the store's
   recorded spec with --epochs, switch_epoch = epochs - 1, --seeds, hidden 16, 2 steps): `tbotan train` and
   `tbotan evaluate` of that spec file, so that predictions/both/seed<s>/T<T>/ holds every test configuration;
3. `tbotan export model` and, per test configuration c (split 2), `tbotan export xyz STORE T c` (the inherent
   structure as a column) and two LAMMPS text dumps written here (thermal, and inherent for `--inherent`; types
   1 = A, 2 = B, 17 significant digits);
4. `tbotan predict model.pt *.xyz` and `tbotan predict model.pt *.dump --types 1=A,2=B --inherent ...`, both with
   the store's FIRE tolerance, so that the stored inherent structures are used as they are;
5. compares, per test configuration, each seed's node (C_B), edge (E_jk) and T predictions of `predict`
   (X.edges.npz, X.json) with evaluate's (predictions/both/seed<s>/T<T>/node, edge, t_pred), the seed mean of
   X.xyz's cb_pred with the mean of evaluate's nodes, and X.edges.npz's edge list with the store's; prints one JSON
   object (``--out FILE``: also there; ``--record``: also benchmarks/results/predict_botan.json). ``ok``: every
   edge list equal, every inherent structure taken as given, and every node and edge difference within --tolerance
   times the spread (standard deviation) of evaluate's values of that configuration and seed, or within --ulps
   float32 ulps of the value (both forward passes are float32, and evaluate's does not run in predict's one-thread
   deterministic mode, so a value may round differently; a barely trained seed's near-constant edge outputs have
   a spread of 2e-4, of which one ulp, 3.7e-9, is 1.8e-5); every T difference within --tolerance times T or
   --ulps ulps.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml
import zarr

from tbotan.data import runs
from tbotan.md import xyz

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: record.py
from record import add_arguments, emit

ROOT = Path(__file__).resolve().parents[2]


def tbotan(*args, log: Path) -> float:
    """Run ``python -m tbotan ARGS`` from the repository root, its output appended to ``log``; its wall time."""
    t0 = time.perf_counter()
    with open(log, "a") as f:
        f.write(f"$ tbotan {' '.join(map(str, args))}\n")
        f.flush()
        r = subprocess.run([sys.executable, "-m", "tbotan", *map(str, args)], cwd=ROOT, stdout=f, stderr=f)
    if r.returncode:
        raise SystemExit(f"tbotan {args[0]} failed (exit {r.returncode}): see {log}")
    return time.perf_counter() - t0


def small_data(source: Path, work: Path) -> Path:
    """BOTAN's small_data/: the checkout's, or extracted from a bare git mirror into ``work``."""
    if (source / "small_data").is_dir():
        return source / "small_data"
    data = work / "pyg_botan" / "small_data"
    if not data.is_dir():
        data.parent.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(
            ["git", "-C", str(source), "archive", "HEAD", "small_data"], capture_output=True, check=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(data.parent)], input=archive, check=True)
    return data


def import_store(data: Path, store: Path, profile: Path, log: Path) -> dict:
    wall = None
    if not store.exists():
        wall = tbotan("import", "botan", data, "--store", store, "--validation", 2, "--cluster", profile, log=log)
    root = zarr.open_group(str(store), mode="r")
    out = {"wall_s": wall, "per_temperature": {}}
    for name, g in sorted(root.groups()):
        if not name.startswith("T"):
            continue
        done = g["done"][:]
        per = g["wall_time"][:][done]
        out["per_temperature"][name] = {
            "configurations": int(done.sum()),
            "test_configurations": int((done & (g["split"][:] == 2)).sum()),
            "unit_s_mean": float(per.mean()),
            "unit_s_min": float(per.min()),
            "unit_s_max": float(per.max()),
            "fire_steps_mean": float(g["fire_steps"][:][done].mean()),
            "worst_fire_residual": float(g["fire_residual"][:][done].max()),
        }
    if wall is not None:
        out["wall_s_per_configuration"] = wall / sum(t["configurations"] for t in out["per_temperature"].values())
    return out


def train_and_evaluate(store: Path, trained: Path, work: Path, training: dict, log: Path) -> dict:
    """A copy of ``store`` without models and predictions, trained and evaluated with the store's spec changed by
    ``training``; the spec file is work/train.yaml."""
    shutil.rmtree(trained, ignore_errors=True)
    shutil.copytree(store, trained, ignore=shutil.ignore_patterns(runs.MODELS, runs.PREDICTIONS, "report*"))
    spec = dict(zarr.open_group(str(store), mode="r").attrs["spec"])
    spec["training"] = {**(spec.get("training") or {}), **training}
    path = work / "train.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    t_train = tbotan("train", path, "--store", trained, log=log)
    t_eval = tbotan("evaluate", path, "--store", trained, log=log)
    return {"spec": str(path), "training": training, "train_s": t_train, "evaluate_s": t_eval}


def write_dump(path: Path, types, x, box: float) -> None:
    """A LAMMPS text dump: types 1 = A, 2 = B, box [0, L)^3, positions with 17 significant digits."""
    lines = ["ITEM: TIMESTEP", "0", "ITEM: NUMBER OF ATOMS", str(len(types)), "ITEM: BOX BOUNDS pp pp pp"]
    lines += [f"0 {box!r}"] * 3
    lines.append("ITEM: ATOMS id type x y z")
    lines += [f"{i + 1} {int(t) + 1} {a:.17g} {b:.17g} {c:.17g}" for i, (t, (a, b, c)) in enumerate(zip(types, x))]
    path.write_text("\n".join(lines) + "\n")


def export_tests(trained: Path, work: Path, log: Path) -> tuple[list[tuple], dict]:
    """The model file and every test configuration as XYZ and as LAMMPS dumps; [(T, i, c, stem)], times."""
    root = zarr.open_group(str(trained), mode="r")
    t_model = tbotan("export", "model", trained, work / "model.pt", log=log)
    tests, t_xyz = [], 0.0
    for name, tg in sorted(root[runs.predictions_path("both", 0)].groups()):
        g = root[name]
        T, L = float(name[1:]), float(g.attrs["L"])
        for i, c in enumerate(tg["configurations"][:]):
            c = int(c)
            stem = f"{name}_c{c}"
            t_xyz += tbotan("export", "xyz", trained, T, c, work / "xyz" / f"{stem}.xyz", log=log)
            (work / "dump").mkdir(exist_ok=True)
            write_dump(work / "dump" / f"{stem}.dump", g["types"][c], g["thermal"][c], L)
            write_dump(work / "dump" / f"{stem}.inherent.dump", g["types"][c], g["inherent"][c], L)
            tests.append((name, i, c, stem))
    return tests, {"export_model_s": t_model, "export_xyz_s_each": t_xyz / len(tests)}


def differences(got, want, tolerance: float, ulps: float) -> dict:
    """How ``got`` (predict's float32) differs from ``want`` (evaluate's float32): the largest difference, alone
    and over the spread of ``want``, in float32 ulps of ``want``, how many values differ, and whether each
    difference is within ``tolerance`` x the spread or ``ulps`` float32 ulps of its value."""
    want32 = np.asarray(want, dtype=np.float32)
    d = np.abs(np.asarray(got, dtype=np.float64) - want32.astype(np.float64))
    spacing = np.spacing(np.abs(want32)).astype(np.float64)
    std = float(want32.astype(np.float64).std())
    return {
        "max_abs_diff": float(d.max()),
        "std": std,
        "max_rel_to_std": float(d.max() / std) if std > 0 else float("nan"),
        "max_ulps": float((d / spacing).max()),
        "differing": int(np.count_nonzero(d)),
        "of": int(d.size),
        "within": bool(np.all(d <= np.maximum(tolerance * std, ulps * spacing))),
    }


def compare(trained: Path, out: Path, tests: list[tuple], seeds: list[int], tolerance: float, ulps: float) -> dict:
    """Per test configuration: predict's outputs in ``out`` against evaluate's predictions in ``trained``."""
    root = zarr.open_group(str(trained), mode="r")
    per, ok = {}, True
    for name, i, c, stem in tests:
        rec = json.loads((out / f"{stem}.json").read_text())
        npz = np.load(out / f"{stem}.edges.npz")
        _, columns = xyz.read_columns(out / f"{stem}.xyz")
        n = int(root[name]["n_edges"][c])
        same_edges = bool(np.array_equal(npz["edges"], root[name]["edges"][c, :n]))
        row = {
            "configuration": c,
            "source": str(root[name]["source"][c]) if "source" in root[name] else None,
            "inherent": rec["inherent"],
            "fire_residual": rec["fire_residual"],
            "fire_steps": rec["fire_steps"],
            "n_edges": n,
            "edges_equal": same_edges,
            "seeds": {},
        }
        ok &= same_edges and rec["inherent"] == "given"
        nodes = []
        for k, s in enumerate(seeds):
            tg = root[f"{runs.predictions_path('both', s)}/{name}"]
            node, t = tg["node"][i], float(tg["t_pred"][i])
            nodes.append(node.astype(np.float64))
            seed = {
                "node": differences(npz["cb_pred_seeds"][k], node, tolerance, ulps),
                "edge": differences(npz["e_pred_seeds"][k], tg["edge"][i, :n], tolerance, ulps) if same_edges else None,
                "t_pred": {"evaluate": t, "predict": rec["t_pred"][k], "abs_diff": abs(rec["t_pred"][k] - t)},
                "pearson_node_A_evaluate": float(tg["pearson_node_A"][i]),
            }
            seed["t_pred"]["within"] = seed["t_pred"]["abs_diff"] <= max(
                tolerance * float(name[1:]), ulps * float(np.spacing(np.float32(abs(t))))
            )
            ok &= seed["node"]["within"] and seed["t_pred"]["within"] and bool(seed["edge"] and seed["edge"]["within"])
            row["seeds"][s] = seed
        mean = np.mean(nodes, axis=0)  # X.xyz's cb_pred: the mean over seeds, in float64
        d = float(np.abs(columns["cb_pred"] - mean).max())
        row["cb_pred_mean"] = {"max_abs_diff": d, "max_rel_to_std": d / float(mean.std())}
        ok &= d <= max(tolerance * float(mean.std()), ulps * float(np.spacing(np.float32(np.abs(mean).max()))))
        per[stem] = row
    seeds_rows = [r["seeds"][s] for r in per.values() for s in r["seeds"]]
    worst = {
        f"{what}_{key}": max(x[what][key] for x in seeds_rows if x[what])
        for what in ("node", "edge")
        for key in ("max_abs_diff", "max_rel_to_std", "max_ulps", "differing")
    }
    worst["edge_values_compared"] = sum(x["edge"]["of"] for x in seeds_rows if x["edge"])
    worst["edge_values_differing"] = sum(x["edge"]["differing"] for x in seeds_rows if x["edge"])
    worst["t_pred_abs_diff"] = max(x["t_pred"]["abs_diff"] for x in seeds_rows)
    worst["cb_pred_mean_max_abs_diff"] = max(r["cb_pred_mean"]["max_abs_diff"] for r in per.values())
    worst["all_inherent_given"] = all(r["inherent"] == "given" for r in per.values())
    worst["all_edges_equal"] = all(r["edges_equal"] for r in per.values())
    return {"worst": worst, "ok": bool(ok), "per_file": per}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("pyg_botan", type=Path, help="a checkout (or bare git mirror) of github.com/h3-Open-BDEC/pyg_botan")
    p.add_argument(
        "--store", type=Path, default=ROOT / "storage" / "botan_sample.zarr", help="imported unless it exists"
    )
    p.add_argument(
        "--work",
        type=Path,
        default=Path(tempfile.gettempdir()) / "tbotan_predict_botan",
        help="the extracted data, the trained copy, the files, predict's outputs; tbotan.log: each command's output",
    )
    p.add_argument("--workers", type=int, default=2, help="LocalCluster workers of the import and of predict")
    p.add_argument("--epochs", type=int, default=3, help="training epochs (switch_epoch: one before the end)")
    p.add_argument("--seeds", type=int, default=2, help="seeds trained")
    p.add_argument("--tolerance", type=float, default=1e-5, help="a difference allowed, relative to the spread")
    p.add_argument("--ulps", type=float, default=2, help="or in float32 ulps of the value (the outputs are float32)")
    add_arguments(p, "predict_botan")
    a = p.parse_args()
    work = a.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    for old in ("trained.zarr", "xyz", "dump", "out_xyz", "out_dump"):  # an earlier run's (the data stay)
        shutil.rmtree(work / old, ignore_errors=True)
    for old in ("model.pt", "tbotan.log"):
        (work / old).unlink(missing_ok=True)
    log = work / "tbotan.log"
    profile = work / "local.yaml"
    profile.write_text(yaml.safe_dump({"kind": "local", "workers": a.workers, "dashboard_address": None}))
    os.environ.setdefault("OMP_NUM_THREADS", str(os.cpu_count()))
    store = a.store.resolve()
    data = small_data(a.pyg_botan.resolve(), work)
    result = {"data": str(data), "store": str(store), "work": str(work), "workers": a.workers}
    result["import"] = import_store(data, store, profile, log)
    training = {"epochs": a.epochs, "switch_epoch": a.epochs - 1, "seeds": a.seeds, "hidden": 16, "steps": 2}
    trained = work / "trained.zarr"
    result["train"] = train_and_evaluate(store, trained, work, training, log)
    tests, result["export"] = export_tests(trained, work, log)
    tolerance = zarr.open_group(str(trained), mode="r").attrs["spec"]["fire"]["tolerance"]
    common = ["--cluster", profile, "--tolerance", tolerance]
    xyzs = [work / "xyz" / f"{stem}.xyz" for *_, stem in tests]
    dumps = [work / "dump" / f"{stem}.dump" for *_, stem in tests]
    inherent = [x for *_, stem in tests for x in ("--inherent", work / "dump" / f"{stem}.inherent.dump")]
    result["predict"] = {
        "fire_tolerance": tolerance,
        "xyz_s": tbotan("predict", work / "model.pt", *xyzs, "--out", work / "out_xyz", *common, log=log),
        "dump_s": tbotan(
            "predict",
            work / "model.pt",
            *dumps,
            *inherent,
            "--types",
            "1=A,2=B",
            "--out",
            work / "out_dump",
            *common,
            log=log,
        ),
    }
    seeds = list(range(a.seeds))
    result["tolerance"] = {"relative_to_std": a.tolerance, "float32_ulps": a.ulps}
    result["xyz"] = compare(trained, work / "out_xyz", tests, seeds, a.tolerance, a.ulps)
    result["dump"] = compare(trained, work / "out_dump", tests, seeds, a.tolerance, a.ulps)
    result["ok"] = result["xyz"]["ok"] and result["dump"]["ok"]
    emit("predict_botan", result, a)


if __name__ == "__main__":
    main()

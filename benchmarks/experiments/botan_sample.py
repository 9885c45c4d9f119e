"""T-BOTAN beside BOTAN's own code on the 15 real files BOTAN's repository ships (T = 0.44, N = 4096, tc07).

    python benchmarks/experiments/botan_sample.py PYG_BOTAN_CHECKOUT [--epochs 10] [--store storage/botan_sample.zarr]
                                                  [--out FILE] [--record | --name NAME]

PYG_BOTAN_CHECKOUT is a checkout of github.com/h3-Open-BDEC/pyg_botan (its small_data/ holds the files; they are
never committed here). The script
1. imports small_data/ with `tbotan import botan` (FIRE inherent structures; 2 of the 10 train files kept for
   validation) unless the store exists, and reports the import cost per configuration;
2. trains T-BOTAN (the paper's 64 x 7 network, one seed, from scratch) for --epochs on the train files, once on
   the propensity (BOTAN's node target) and once on C_B (the paper's), and evaluates the 5 test files;
3. runs BOTAN's own `train.train_model` from the checkout on the same files for the same epochs, from scratch
   (p_frac = 1: its node-only mode; its other modes start from its pre-trained models), with
   `torch_geometric.utils.scatter` standing in for `torch_scatter.scatter`, and reads the per-file node Pearson of
   its last evaluation (its own code computes them; they are recorded as it calls np.corrcoef);
4. prints one JSON object: node Pearson over A particles per test file (``--out FILE``: also there; ``--record``:
   also benchmarks/results/botan_sample.json; ``--name NAME``: NAME.json).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path

import numpy as np
import yaml
import zarr

from tbotan.data import runs

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: record.py
from record import add_arguments, emit, result_name

ROOT = Path(__file__).resolve().parents[2]


def import_sample(data: Path, store: Path) -> dict:
    if not store.exists():
        t0 = time.perf_counter()
        r = subprocess.run(
            [sys.executable, "-m", "tbotan", "import", "botan", str(data), "--store", str(store), "--validation", "2"],
            cwd=ROOT,
        )
        if r.returncode:
            raise SystemExit("import failed")
        wall = time.perf_counter() - t0
    else:
        wall = None
    g = zarr.open_group(str(store), mode="r")["T0.440"]
    per = g["wall_time"][:]
    return {
        "configurations": int(g["done"][:].sum()),
        "wall_s": wall,
        "unit_s_mean": float(per.mean()),
        "unit_s_min": float(per.min()),
        "unit_s_max": float(per.max()),
        "fire_steps_mean": float(g["fire_steps"][:].mean()),
        "worst_fire_residual": float(g["fire_residual"][:].max()),
        "fs_A_per_file": g["fs_A"][:, 0].round(3).tolist(),
        "energy_thermal_mean": float(g["energy_thermal"][:].mean()),
    }


def train_tbotan(data: Path, store: Path, target: str, epochs: int, recipe: dict) -> dict:
    from tbotan.data.spec import parse_spec
    from tbotan.learn.evaluate import evaluate
    from tbotan.learn.train import train

    spec = parse_spec(
        {
            "N": 4096,
            "temperatures": [0.44],
            "source": {"format": "botan", "path": str(data), "validation": 2},
            "training": {
                "temperatures": [0.44],
                "epochs": epochs,
                "switch_epoch": epochs // 2,
                "seeds": 1,
                "target": target,
                **recipe,
            },
        }
    )
    t0 = time.perf_counter()
    train(spec, store)
    t_train = time.perf_counter() - t0
    evaluate(spec, store, force=True)
    p = zarr.open_group(str(store), mode="r")[f"{runs.predictions_path('both', 0)}/T0.440"]
    g = zarr.open_group(str(store), mode="r")["T0.440"]
    files = [str(g["source"][int(c)]) for c in p["configurations"][:]]
    rho = p["pearson_node_A"][:]
    return {
        "target": target,
        "recipe": recipe,
        "train_s": t_train,
        "per_file": dict(zip(files, rho.round(4).tolist())),
        "mean": float(rho.mean()),
    }


@contextlib.contextmanager
def _recording_corrcoef(calls: list):
    real = np.corrcoef

    def recorder(*a, **k):
        out = real(*a, **k)
        calls.append(float(out[0, 1]))
        return out

    np.corrcoef = recorder
    try:
        yield
    finally:
        np.corrcoef = real


def train_peer(checkout: Path, data: Path, epochs: int) -> dict:
    import torch_geometric.utils

    sys.modules.setdefault("torch_scatter", types.SimpleNamespace(scatter=torch_geometric.utils.scatter))
    sys.path.insert(0, str(checkout))
    import train as botan_train  # the peer's own module, from its checkout

    calls: list[float] = []
    pattern = str(data / "T0.44" / "{}" / "*tc07*.npz")
    tests = sorted((data / "T0.44" / "test").glob("*tc07*.npz"), key=lambda p: int(p.name.split("_")[2]))
    with tempfile.TemporaryDirectory() as tmp, contextlib.chdir(tmp), _recording_corrcoef(calls):
        t0 = time.perf_counter()
        # its loop runs n_epochs + 1 epochs and evaluates every 5th: n_epochs = epochs - 1 ends on an evaluation
        botan_train.train_model(
            p_frac=1.0,
            temperature=0.44,
            train_file_pattern=pattern.format("train"),
            test_file_pattern=pattern.format("test"),
            n_epochs=epochs - 1,
            seed=0,
        )
        wall = time.perf_counter() - t0
        log = next(Path(tmp).glob("loss_*.dat")).read_text().splitlines()
    last = calls[-2 * len(tests) :]  # its last evaluation: (node, edge) per test file, in file order
    node = last[0::2]
    return {
        "target": "propensity",
        "train_s": wall,
        "epochs_run": epochs,
        "graphs_per_step": 5,
        "per_file": {str(p.relative_to(data)): round(r, 4) for p, r in zip(tests, node)},
        "mean": float(np.mean(node)),
        "its_log_last_line": log[-1],
    }


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("checkout", type=Path, help="a checkout of github.com/h3-Open-BDEC/pyg_botan")
    p.add_argument("--epochs", type=int, default=11, help="epochs of each training (epochs - 1 divisible by 5)")
    p.add_argument("--store", type=Path, default=ROOT / "storage" / "botan_sample.zarr")
    p.add_argument("--targets", nargs="+", default=["propensity", "cb"], choices=["propensity", "cb"])
    p.add_argument("--set", nargs="*", default=[], metavar="FIELD=VALUE", help="T-BOTAN training fields (a recipe)")
    add_arguments(p, "botan_sample")
    a = p.parse_args()
    recipe = {k: yaml.safe_load(v) for k, v in (s.split("=", 1) for s in a.set)}
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)  # progress of each stage
    if (a.epochs - 1) % 5:
        p.error("--epochs - 1 must be divisible by 5 (BOTAN's code evaluates every 5th epoch)")
    data = a.checkout.resolve() / "small_data"
    os.environ.setdefault("OMP_NUM_THREADS", str(os.cpu_count()))
    result = {
        "data": "pyg_botan small_data: T = 0.44, N = 4096, 10 train + 5 test files, tc07",
        "epochs": a.epochs,
        "import": import_sample(data, a.store),
    }
    result["tbotan"] = []
    for target in a.targets:  # a fresh copy each: a model folder holds one target's and one recipe's checkpoints
        store = a.store.with_name(f"{a.store.stem}_{result_name('botan_sample', a)}_{target}.zarr")
        shutil.rmtree(store, ignore_errors=True)
        shutil.copytree(a.store, store, ignore=shutil.ignore_patterns(runs.MODELS, runs.PREDICTIONS, "report*"))
        result["tbotan"].append(train_tbotan(data, store, target, a.epochs, recipe))
        shutil.rmtree(store)
    result["botan_peer"] = train_peer(a.checkout.resolve(), data, a.epochs)
    emit("botan_sample", result, a)


if __name__ == "__main__":
    main()

"""How to spend the quickstart's training time: the paper's network for the epochs that fit, or a narrower,
shallower network for about 4x the epochs, on the same data and the same wall time.

    tbotan run jobs/quickstart.yaml                    # first: the data (any finished quickstart store)
    python benchmarks/experiments/quickstart_sizing.py [--store storage/quickstart.zarr] [--seeds 0 1] [--out FILE]
                                                       [--record]

Each (setting, seed) trains on one thread on its own copy of the store's data (models/, predictions/ and
report/ are not copied), two side by side (one per core), with `tbotan train` and `tbotan evaluate`; all
other training settings are the store's spec's. Reports the training wall time and the node Pearson rho
over A particles on the test configurations (best-validation checkpoint) per T. Prints one JSON object
(``--out FILE``: also there; ``--record``: also benchmarks/results/quickstart_sizing.json).
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml
import zarr

from tbotan.data import runs

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: record.py
from quickstart import prediction_rows  # the same per-T numbers as the quickstart benchmark
from record import add_arguments, emit  # prints the result with its command (and writes it where asked)

SETTINGS = {  # each takes about 6-7 min per seed on one thread of this project's CPU
    "paper_network": {"hidden": 64, "steps": 7, "epochs": 40, "switch_epoch": 20, "lr": 3e-3},
    "quickstart_network": {"hidden": 32, "steps": 4, "epochs": 150, "switch_epoch": 75, "lr": 3e-3},
}


def run_one(store: str, spec: dict, setting: str, seed: int, work: Path) -> dict:
    here = work / f"{setting}_seed{seed}"
    shutil.copytree(store, here / "store.zarr", ignore=shutil.ignore_patterns(runs.MODELS, runs.PREDICTIONS, "report"))
    spec = {**spec, "training": {**spec["training"], **SETTINGS[setting]}}
    (here / "spec.yaml").write_text(yaml.safe_dump(spec))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    lambda_g = spec["training"]["lambda_g"]
    args = [
        str(here / "spec.yaml"),
        "--store",
        str(here / "store.zarr"),
        "--seeds",
        str(seed),
        "--variant",
        "both",
        "--lambda-g",
        str(lambda_g[0] if isinstance(lambda_g, list) else lambda_g),
    ]
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "tbotan", "train", *args], env=env, check=True, capture_output=True)
    train_s = time.perf_counter() - start
    subprocess.run([sys.executable, "-m", "tbotan", "evaluate", *args], env=env, check=True, capture_output=True)
    root = zarr.open_group(str(here / "store.zarr"), mode="r")
    keep = ("T", "trained", "pearson_node_A", "pearson_node_A_sem", "test_configurations")
    rows = [{k: r[k] for k in keep} for r in prediction_rows(root[f"{runs.PREDICTIONS}/both"])]
    return {"setting": setting, "seed": seed, **SETTINGS[setting], "train_s": round(train_s, 1), "rows": rows}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--store", default="storage/quickstart.zarr")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    add_arguments(p, "quickstart_sizing")
    args = p.parse_args()
    spec = zarr.open_group(args.store, mode="r").attrs["spec"]
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(max_workers=2) as pool:
        jobs = [pool.submit(run_one, args.store, spec, s, seed, Path(tmp)) for s in SETTINGS for seed in args.seeds]
        results = [j.result() for j in jobs]
    emit("quickstart_sizing", {"store": args.store, "N": spec["N"], "threads_per_training": 1, "runs": results}, args)


if __name__ == "__main__":
    main()

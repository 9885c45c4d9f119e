"""Data-generation cost of a job spec: wall time per stage and per unit, bytes per configuration,
and the parallel efficiency of 2 LocalCluster workers against 1, in one run.

    python benchmarks/performance/pipeline.py [--spec jobs/quickstart.yaml] [--workers 1 2] [--out FILE] [--record]

Prints one JSON object (``--out FILE``: also there; ``--record``: also benchmarks/results/pipeline_<spec stem>.json).
"""

import argparse
import logging
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
from distributed import Client, LocalCluster

from tbotan.data import pipeline
from tbotan.data.spec import load_spec

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: record.py
from record import add_arguments, emit  # prints the result with its command (and writes it where asked)


def store_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--spec", default="jobs/quickstart.yaml")
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    add_arguments(p, "pipeline_<spec stem>")
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)  # progress lines on stderr
    spec = load_spec(args.spec)
    runs = {}
    for w in args.workers:
        tmp = Path(tempfile.mkdtemp(prefix="tbotan-bench-"))
        path = tmp / "store.zarr"
        with LocalCluster(n_workers=w, threads_per_worker=1, dashboard_address=":0") as cl, Client(cl) as c:
            result = pipeline.simulate(spec, path, c)
        n_conf = sum(r["configurations"] for r in result["summary"])
        units = {
            k: {"count": len(v), "total_s": float(np.sum(v)), "mean_s": float(np.mean(v)) if v else None}
            for k, v in result["unit_times"].items()
        }
        runs[w] = {
            "workers": w,
            "wall_s": result["wall_time"],
            "units": units,
            "bytes_per_configuration": store_bytes(path) / n_conf,
            "configurations": n_conf,
        }
        shutil.rmtree(tmp)
    out = {
        "spec": args.spec,
        "N": spec.N,
        "temperatures": spec.temperatures,
        "replicas": spec.replicas,
        "cpu_count": os.cpu_count(),
        "runs": list(runs.values()),
    }
    if 1 in runs and 2 in runs:
        out["parallel_efficiency_2_vs_1"] = runs[1]["wall_s"] / (2 * runs[2]["wall_s"])
    emit(f"pipeline_{Path(args.spec).stem}", out, args)


if __name__ == "__main__":
    main()

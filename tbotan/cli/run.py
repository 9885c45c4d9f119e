"""``tbotan run``: simulate -> train -> evaluate -> report, each stage resuming what is unfinished.

    tbotan run jobs/quickstart.yaml                     # the embedded default: LocalCluster, OpenMM CPU
    tbotan run jobs/ci.yaml --store /tmp/ci.zarr --ranks 1

* simulate: skipped (no cluster started) when every configuration is done; otherwise the Dask cluster of the
  profile (default LocalCluster) fills the store (tbotan.data.pipeline).
* train: every variant and lambda_g of the spec. With ``ranks`` > 1 (default: one per seed, at most one per CPU
  core) it runs as ``python -m torch.distributed.run --standalone --nproc_per_node P -m tbotan train ...`` (gloo
  on CPU, nccl on GPUs), each process with cores / P threads; checkpoints make a rerun continue where it stopped.
* evaluate: every variant; up-to-date predictions are kept.
* report: ``<store>/report/index.html``.
The time of each stage is printed at the end and appended to the store's root attribute ``run_times``.
"""

from __future__ import annotations

import datetime
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

from ..errors import TrainingError

logger = logging.getLogger(__name__)


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _verbosity() -> list[str]:
    """The --quiet / --verbose flag that gives a child ``tbotan`` this process's log level."""
    level = logging.getLogger("tbotan").getEffectiveLevel()
    return ["--quiet"] if level > logging.INFO else ["--verbose"] if level < logging.INFO else []


def _print_plan(spec, cluster_profile) -> None:
    """What `tbotan plan` predicts for this run, logged first (a plan that cannot be made is one line, not an
    error: the run does not depend on it)."""
    from .. import plan
    from ..hpc.cluster import load_profile

    if spec.source is not None:  # an import: the files, not the spec, set the work
        return
    try:
        profile = load_profile(cluster_profile) if cluster_profile else None
        p = plan.plan(spec, profile)
        logger.info(plan.describe(p, warnings=False))
        for w in p["warnings"]:
            logger.warning(w)
    except Exception as e:  # a plan is advice; the run goes on without it
        logger.warning(f"no plan ({type(e).__name__}: {e})")


def make_data(spec, store_path, cluster_profile=None) -> dict:
    """The data stage of a spec on the profile's cluster: the simulation, or for a spec with a ``source`` (a
    published data set) its import; returns the stage's summary."""
    from ..data import importers, pipeline
    from ..data.driver import on_cluster

    work = importers.import_data if spec.source is not None else pipeline.simulate
    return on_cluster(work, spec, store_path, cluster_profile)


def run(spec_path, store_path, cluster_profile=None, ranks: int | None = None) -> dict:
    from ..analysis.report import write_report
    from ..data import store
    from ..data.runs import runs
    from ..data.spec import load_spec
    from ..learn.evaluate import evaluate
    from ..learn.train import train

    spec = load_spec(spec_path)  # a bad spec fails before anything starts
    store_path = Path(store_path)
    times = {}
    _print_plan(spec, cluster_profile)

    t0 = time.perf_counter()
    left = None
    if store_path.exists():
        try:
            left = sum(r["left"] for r in store.summary(store.open_store(store_path)))
        except store.StoreError:
            left = None  # let simulate explain what is wrong with it
    if left == 0:
        store.upgrade(store.record_spec(store_path, spec), store_path)  # refuses a store of another spec
        logger.info(f"simulate: {store_path} is complete")
    else:
        make_data(spec, store_path, cluster_profile)
    times["simulate"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    cores = _cores()
    ranks = ranks or max(1, min(spec.training.seeds, cores))
    if ranks > 1:
        env = {**os.environ, "OMP_NUM_THREADS": str(max(1, cores // ranks))}
        cmd = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            f"--nproc_per_node={ranks}",
            "-m",
            "tbotan",
            "train",
            str(spec_path),
            "--store",
            str(store_path),
            *_verbosity(),
        ]
        logger.info(f"train: {' '.join(cmd[2:])}")
        done = subprocess.run(cmd, env=env)
        if done.returncode:
            raise TrainingError(
                f"training failed (exit status {done.returncode}; its messages are above); rerun "
                f"`tbotan run {spec_path}` to continue from the last checkpoints"
            )
    else:
        import torch

        torch.set_num_threads(cores)
        for v, lam in runs(spec):
            train(spec, store_path, variant=v, lambda_g=lam)
    times["train"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    for v, lam in runs(spec):
        evaluate(spec, store_path, variant=v, lambda_g=lam)
    times["evaluate"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    index = write_report(store_path)
    times["report"] = time.perf_counter() - t0
    times["total"] = sum(times.values())
    root = store.open_store(store_path, mode="r+")
    root.attrs["run_times"] = [
        *root.attrs.get("run_times", []),
        {
            **{k: round(v, 1) for k, v in times.items()},
            "ranks": ranks,
            "cores": cores,
            "finished": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        },
    ]
    logger.info("stage times: " + ", ".join(f"{k} {v:.0f} s" for k, v in times.items()))
    logger.info(f"open {index} in a browser")
    return {"index": index, "times": times}

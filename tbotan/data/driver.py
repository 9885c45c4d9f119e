"""The driver's side of filling a store, shared by ``pipeline.simulate`` (MD) and ``importers.import_data``.

A driver is the process that submits the units of work to Dask and is the store's only writer. What both drivers
do the same way lives here:

    on_cluster(work, spec, path, cluster_profile)
                                            run ``work`` (``pipeline.simulate`` or ``importers.import_data``) on the
                                            Dask cluster of a profile file, closed on return
    Progress                                units done / total per stage, with rate and ETA, as log lines
    completed(futures, ...)                 futures as they finish; NoWorkers when no worker is connected for the
                                            profile's ``worker_timeout``
    write_replica, write_configuration      one replica / one configuration's data into its T group, the flag that
                                            vouches for it (``replica_done[c, r]``, ``done[c]``) written last
    record_error                            a failed configuration's message in the group's ``errors`` attribute

The caller chooses the work: a spec with a ``source`` is imported, any other is simulated.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np
from distributed import Client, wait

from ..errors import NoWorkers, StoreError

logger = logging.getLogger(__name__)


def on_cluster(work, spec, path, cluster_profile=None) -> dict:
    """``work(spec, path, client, worker_timeout=...)`` on the Dask cluster of a profile file.

    Args:
        work: ``pipeline.simulate`` or ``importers.import_data``.
        spec: the job spec.
        path: the store.
        cluster_profile: a profile file (default: a LocalCluster); its ``worker_timeout`` is passed on, and SLURM
            workers log to ``<store>.logs``.

    Returns:
        What ``work`` returns (its summary). The cluster is closed on return.
    """
    from ..hpc import cluster

    profile = cluster.load_profile(cluster_profile)
    with cluster.open_cluster(profile, logs=cluster.logs_path(path)) as client:
        return work(spec, path, client, worker_timeout=profile.worker_timeout)


@dataclass
class Progress:
    """Units done / total per stage, with rate and ETA, printed as lines at most every ``every`` s."""

    totals: dict
    every: float = 10.0
    done: dict = field(default_factory=dict)
    start: float = field(default_factory=time.perf_counter)
    last: float = 0.0

    def tick(self, stage: str, force: bool = False) -> None:
        self.done[stage] = self.done.get(stage, 0) + 1
        now = time.perf_counter()
        if force or now - self.last >= self.every or self.done[stage] == self.totals[stage]:
            self.last = now
            logger.info(self.line(now))

    def line(self, now: float) -> str:
        parts = []
        for stage, total in self.totals.items():
            d = self.done.get(stage, 0)
            rate = d / max(now - self.start, 1e-9)
            eta = (total - d) / rate if rate > 0 else float("inf")
            parts.append(f"{stage} {d}/{total}" + (f" ({rate:.2f}/s, ETA {eta:.0f} s)" if d < total and d else ""))
        return f"[{now - self.start:7.1f} s] " + " | ".join(parts)


def completed(futures, progress: Progress, client: Client, worker_timeout: float | None):
    """Yield futures as they finish; print a progress line every ``progress.every`` s while none does.

    With no worker connected for ``worker_timeout`` s (jobs pending forever, a partition that does not run them,
    every worker dead), stop with NoWorkers saying why, instead of waiting without end."""
    pending = set(futures)
    alone_since = None
    while pending:
        try:
            finished, pending = wait(pending, timeout=progress.every, return_when="FIRST_COMPLETED")
        except TimeoutError:
            logger.info(progress.line(time.perf_counter()))
            if worker_timeout is not None:
                now = time.monotonic()
                if client.scheduler_info().get("workers"):
                    alone_since = None
                elif alone_since is None:
                    alone_since = now
                elif now - alone_since > worker_timeout:
                    from ..hpc.cluster import waiting_reason

                    raise NoWorkers(
                        f"no Dask worker connected for {now - alone_since:.0f} s (worker_timeout "
                        f"{worker_timeout:g} s): {waiting_reason(client)}. Everything finished so far "
                        f"is in the store; rerun the same command to go on"
                    ) from None
            continue
        alone_since = None
        yield from finished


def write_replica(g, c: int, r: int, result: dict) -> None:
    """Replica ``r`` of configuration ``c`` (positions, seed) into the T group ``g``; ``replica_done[c, r]`` last."""
    g["replica_positions"][c, r] = result["positions"]
    g["replica_seeds"][c, r] = result["seed"]
    g["replica_done"][c, r] = True  # last


def write_configuration(g, c: int, r: dict) -> None:
    """Configuration ``c``'s inherent structure and targets (``r``: a ``reduce`` or import unit's result) into the
    T group ``g``, edges padded to the store's width; clears its recorded error, then ``done[c]`` last."""
    n_e = len(r["edges"])
    width = g["edges"].shape[1]
    if n_e > width:
        raise StoreError(f"configuration {c} has {n_e} edges, more than the store's {width}")
    edges = np.full((width, 2), -1, dtype=np.int32)
    edges[:n_e] = r["edges"]
    et = np.full((r["edge_targets"].shape[0], width), np.nan)
    et[:, :n_e] = r["edge_targets"]
    g["inherent"][c] = r["inherent"]
    g["fire_residual"][c] = r["fire_residual"]
    g["fire_steps"][c] = r["fire_steps"]
    g["energy_inherent"][c] = r["energy_inherent"]
    if "replica_positions" in r:  # an import; the pipeline writes each replica as it finishes (write_replica)
        g["replica_positions"][c] = r["replica_positions"]
        g["replica_seeds"][c] = r["replica_seeds"]
        g["replica_done"][c] = True
    g["cb"][c] = r["cb"]
    g["propensity"][c] = r["propensity"]
    g["msd"][c] = r["msd"]
    g["fs_A"][c] = r["fs_A"]
    g["edges"][c] = edges
    g["n_edges"][c] = n_e
    g["edge_targets"][c] = et
    g["wall_time"][c] = r["wall_time"]
    errors = dict(g.attrs.get("errors", {}))
    if errors.pop(str(c), None) is not None:
        g.attrs["errors"] = errors
    g["done"][c] = True  # last


def record_error(g, c: int, message: str) -> None:
    """Configuration ``c``'s failure in ``g.attrs["errors"]`` (its first message is kept)."""
    errors = dict(g.attrs.get("errors", {}))
    errors.setdefault(str(c), message)
    g.attrs["errors"] = errors

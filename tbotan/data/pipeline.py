"""Data generation as a Dask task graph over (temperature, configuration, replica), docs/method.md §2–§3.

Units of work (plain functions, run on any Dask worker; they never touch the store):
    measure_tau(T)                     tau_alpha from F_s, when the spec says ``tau_alpha: measure``
    segment(T, c)                      one stretch of a Langevin chain: configuration c's thermal state
    quench(T, c)                       FIRE inherent structure
    replica(T, c, r)  x K              a run in the spec's ``dynamics`` from Maxwell–Boltzmann velocities of a
                                       recorded seed
    reduce(T, c)                       C_B, E_jk, propensity, edges
The driver (the process running ``simulate``) submits them, writes each result as it arrives — it is
the store's only writer — and marks ``equilibrated[c]`` / ``replica_done[c, r]`` / ``done[c]`` after the data
they vouch for (progress, waiting and the writes it shares with the importer: ``tbotan.data.driver``). A replica
is kept the moment it finishes: a driver killed with 3 of 16 replicas of a configuration done reruns only the
other 13. Every target is computed from the replica positions as stored (``store_dtype``), so a resumed
configuration equals an uninterrupted one bit for bit.

Configurations at one T come from ``chains`` independent Langevin trajectories: configuration c is on
chain c % chains at position c // chains; the first segment of a chain starts from random positions
and lasts ``equilibration`` tau_alpha, each later one continues the previous configuration's stored
state (wrapped positions and velocities) for ``decorrelation`` tau_alpha. Every segment has its own
thermostat seed, so a chain resumed from the store is bit-identical to an uninterrupted one.
"""

from __future__ import annotations

import logging
import time

import numpy as np
from distributed import Client

from .. import core
from ..errors import SimulationFailed, SpecError
from ..md import dynamics, engine, fire, relaxation
from ..md.dynamics import derive_seeds as seeds
from . import lock, store, targets
from .driver import Progress, completed, record_error, write_configuration, write_replica

logger = logging.getLogger(__name__)


def temperature_key(t: float) -> int:
    return int(round(t * 1_000_000))


# ---------------------------------------------------------------- units (run on workers)


def measure_tau(temperature: float, n: int, seed: int, dt: float, dynamics: dict | None = None) -> dict:
    r = relaxation.measure_tau_alpha(temperature, n, seed=seed, dt=dt, dynamics=dynamics)
    return {k: v for k, v in r.items() if k not in ("fs", "fs_times")}


def segment(
    temperature: float, n: int, box: float, duration: float, dt: float, seed: int, previous: dict | None
) -> dict:
    """Configuration state after one chain segment: wrapped ``thermal``, ``velocities``, energy, wall time."""
    start = time.perf_counter()
    types = core.species(n)
    s_start, s_thermo = seeds(seed, count=2)
    if previous is None:
        x, v = dynamics.random_configuration(types, box, int(s_start)), None
    else:
        x, v = previous["thermal"], previous["velocities"]
    eq = dynamics.equilibrate(types, x, box, temperature, duration, dt=dt, seed=int(s_thermo), velocities=v)
    return {
        "thermal": core.wrap(eq.positions, box),
        "velocities": eq.velocities,
        "energy_thermal": float(eq.potential_energy[-1]),
        "pressure_thermal": engine.pressure(types, eq.positions, box, temperature),
        "wall_time": time.perf_counter() - start,
    }


def quench(state: dict, n: int, box: float, params: fire.FireParameters, label: str) -> dict:
    start = time.perf_counter()
    try:
        r = fire.quench(core.species(n), state["thermal"], box, params)
    except (fire.FireNotConverged, FloatingPointError) as e:
        raise type(e)(f"{label}: {e}") from None
    return {
        "inherent": core.wrap(r.positions, box),
        "fire_residual": r.mean_force,
        "fire_steps": r.steps,
        "energy_inherent": r.energy_per_particle,
        "fire_platform": r.platform,
        "wall_time": time.perf_counter() - start,
    }


def replica(
    state: dict, n: int, box: float, temperature: float, times: list, seed: int, dt: float, label: str, motion: dict
) -> dict:
    start = time.perf_counter()
    types = core.species(n)
    r = dynamics.run_replica(types, state["thermal"], box, temperature, times, seed, dt, label=label, dynamics=motion)
    return {"positions": r.positions, "seed": r.seed, "wall_time": time.perf_counter() - start}


def reduce(state: dict, quenched: dict, replicas: list, n: int, box: float, dtype: str) -> dict:
    """Targets of one configuration from its K replicas (run now, or read back from the store), each taken at
    the precision it is stored in."""
    start = time.perf_counter()
    types = core.species(n)
    frames = np.stack([np.asarray(r["positions"]).astype(dtype).astype(np.float64) for r in replicas])
    edges = targets.graph_edges(quenched["inherent"], box)
    return {
        **quenched,
        "cb": targets.bond_breaking(types, state["thermal"], frames, box),
        "propensity": targets.propensity(state["thermal"], frames),
        "msd": targets.msd(state["thermal"], frames),
        "fs_A": targets.self_intermediate_a(types, state["thermal"], frames),
        "edges": edges.astype(np.int32),
        "edge_targets": targets.edge_targets(edges, state["thermal"], frames, box),
        "wall_time": quenched["wall_time"] + sum(r["wall_time"] for r in replicas) + time.perf_counter() - start,
        "unit_times": {
            "quench": quenched["wall_time"],
            "replica": [r["wall_time"] for r in replicas],
            "reduce": time.perf_counter() - start,
        },
    }


# ---------------------------------------------------------------- the driver


def _write_tau(g, result: dict, spec) -> None:
    g.attrs.update(
        {
            **store.tau_attributes(spec, result["tau_alpha"]),
            "tau_alpha_source": "measured",
            "tau_alpha_measurement": result,
        }
    )


def _write_segment(g, c: int, r: dict) -> None:
    g["thermal"][c] = r["thermal"]
    g["velocities"][c] = r["velocities"]
    g["energy_thermal"][c] = r["energy_thermal"]
    if "pressure_thermal" in g:  # stores made before it have none
        g["pressure_thermal"][c] = r["pressure_thermal"]
    g["equilibrated"][c] = True  # last


def simulate(spec, path, client: Client, worker_timeout: float | None = None) -> dict:
    """Generate (or finish) the store at ``path`` for ``spec`` on ``client``'s cluster; returns the summary.
    ``worker_timeout``: give up (NoWorkers) when no worker has been connected for that many seconds. A spec with a
    ``source`` is refused: its data set is imported (``importers.import_data``, ``tbotan import``), not simulated."""
    if spec.source is not None:
        raise SpecError(
            [
                (
                    "source",
                    f"a published data set ({spec.source.format} at {spec.source.path}) is imported, not simulated: "
                    f"`tbotan import {spec.source.format} DIR --store PATH` or `tbotan run SPEC` "
                    "(tbotan.data.importers.import_data)",
                )
            ],
            "pipeline.simulate",
        )
    root, created = store.open_or_create(path, spec)
    with lock.writer(path, "tbotan simulate"):
        return _simulate(spec, path, client, worker_timeout, root, created)


def _simulate(spec, path, client, worker_timeout, root, created) -> dict:
    groups = {t: root[store.group_name(t)] for t in spec.temperatures}
    left = {t: ~g["done"][:] for t, g in groups.items()}
    if not any(v.any() for v in left.values()):
        logger.info(f"{path}: every configuration is already done; nothing to do")
        return {"status": "complete", "summary": store.summary(root)}
    logger.info(
        f"{'created' if created else 'resuming'} {path}: "
        + ", ".join(f"T={t}: {int(v.sum())}/{len(v)} left" for t, v in left.items())
    )
    n, box, dt = spec.N, core.box_length(spec.N, spec.density), spec.dt
    params = spec.fire.parameters()

    # tau_alpha first, where it is to be measured (all temperatures in parallel)
    to_measure = [t for t, g in groups.items() if g.attrs.get("tau_alpha") is None and left[t].any()]
    if to_measure:
        logger.info(f"measuring tau_alpha at T = {', '.join(map(str, to_measure))}")
        futures = {
            t: client.submit(
                measure_tau,
                t,
                n,
                int(seeds(spec.seed, temperature_key(t), 0)[0]),
                dt,
                spec.dynamics.parameters(),
                key=f"tau-T{t:.3f}",
                pure=False,
            )
            for t in to_measure
        }
        for t, f in futures.items():
            _write_tau(groups[t], f.result(), spec)
            logger.info(f"T={t}: tau_alpha = {groups[t].attrs['tau_alpha']:.4g} (measured)")

    totals = {"segments": 0, "configurations": 0, "replicas": 0}
    kinds, replicas_of = {}, {}
    for t, g in groups.items():
        times = g.attrs["times"]
        eq, done = g["equilibrated"][:], g["done"][:]
        for chain in range(spec.chains):
            previous = None
            for k, c in enumerate(range(chain, len(done), spec.chains)):
                label = f"T={t} configuration {c}"
                if eq[c]:
                    state = None  # loaded below only if someone needs it
                    if not done[c] or (c + spec.chains < len(done) and not eq[c + spec.chains]):
                        state = {"thermal": g["thermal"][c], "velocities": g["velocities"][c]}
                else:
                    duration = g.attrs["equilibration_time" if k == 0 else "decorrelation_time"]
                    state = client.submit(
                        segment,
                        t,
                        n,
                        box,
                        duration,
                        dt,
                        int(seeds(spec.seed, temperature_key(t), chain, k)[0]),
                        previous,
                        key=f"segment-T{t:.3f}-c{c}",
                        pure=False,
                    )
                    kinds[state] = ("segment", t, c)
                    totals["segments"] += 1
                previous = state
                if done[c]:
                    continue
                q = client.submit(quench, state, n, box, params, label, key=f"quench-T{t:.3f}-c{c}", pure=False)
                reps = []
                kept = g["replica_done"][c]
                for r, s in enumerate(seeds(spec.seed, temperature_key(t), c, 1, count=spec.replicas)):
                    if kept[r]:  # finished before an interruption
                        reps.append({"positions": g["replica_positions"][c, r], "seed": int(s), "wall_time": 0.0})
                        continue
                    f = client.submit(
                        replica,
                        state,
                        n,
                        box,
                        t,
                        times,
                        int(s),
                        dt,
                        f"{label} replica {r}",
                        spec.dynamics.parameters(),
                        key=f"replica-T{t:.3f}-c{c}-r{r}",
                        pure=False,
                    )
                    kinds[f] = ("replica", t, c, r)
                    replicas_of.setdefault((t, c), []).append((r, f))
                    reps.append(f)
                if kept.any():
                    logger.info(f"{label}: {int(kept.sum())} of {spec.replicas} replicas kept from before")
                red = client.submit(
                    reduce, state, q, reps, n, box, spec.store_dtype, key=f"reduce-T{t:.3f}-c{c}", pure=False
                )
                kinds[red] = ("configuration", t, c)
                totals["configurations"] += 1
                totals["replicas"] += spec.replicas - int(kept.sum())
    progress = Progress({k: v for k, v in totals.items() if v})
    timings = {"segment": [], "quench": [], "replica": [], "reduce": []}
    failed = 0
    for f in completed(list(kinds), progress, client, worker_timeout):
        if f not in kinds:
            continue  # a replica already written before its configuration's reduction (below)
        kind, t, c, *replica_index = kinds.pop(f)
        g = groups[t]
        if f.status == "error":
            err = f.exception()
            if kind == "configuration":
                failed += 1
                record_error(g, c, f"{type(err).__name__}: {err}")
                logger.warning(f"FAILED T={t} configuration {c}: {err}")
            continue
        with store.writing(path, f"T={t} configuration {c}"):
            if kind == "segment":
                result = f.result()
                timings["segment"].append(result["wall_time"])
                _write_segment(g, c, result)
            elif kind == "replica":
                write_replica(g, c, replica_index[0], f.result())
            elif kind == "configuration":
                for r, rf in replicas_of.pop((t, c), []):  # every replica is in the store before done[c]
                    if kinds.pop(rf, None) is not None:
                        write_replica(g, c, r, rf.result())
                        rf.release()
                        progress.tick("replicas")
                result = f.result()
                for unit, value in result["unit_times"].items():
                    timings[unit] += value if isinstance(value, list) else [value]
                write_configuration(g, c, result)
        f.release()
        progress.tick(kind + "s")
    summary = store.summary(root)
    for row in summary:
        if row["alpha_time"] and not row["alpha_time"]["ok"]:
            logger.warning(row["alpha_time"]["message"])
    if failed:
        raise SimulationFailed(
            f"{failed} configurations failed (see `tbotan status {path}`); "
            "the rest of the store is complete and a rerun retries only what is missing"
        )
    return {
        "status": "complete",
        "summary": summary,
        "unit_times": timings,
        "wall_time": time.perf_counter() - progress.start,
    }

"""Published data sets into a tbotan store (docs/method.md §7), through the same Dask machinery as ``simulate``.

    tbotan import botan DIR --store storage/botan.zarr [--cluster PROFILE]
    tbotan import glassbench DIR --store storage/glassbench.zarr
    tbotan import bapst DIR --store storage/bapst.zarr

Splits: the files' own train/test split is kept (test -> 2); ``source.validation`` of each temperature's train
files, spread evenly over them, become validation (1). ``source`` (C,) records the file(s) of every
configuration, relative to DIR.

Every unit reads its own files (on a cluster, the workers read them from the shared file system); the driver
only reads the arrays' headers, so a file of another N, a missing key, or a file pattern that matches nothing
is refused before any work starts, and NaN positions or types that are not two species fail that
configuration with the file named. Resume: as for ``simulate``, ``done[c]`` is written last.

The files' layouts, and how a folder is scanned: ``tbotan.data.datasets``.
"""

from __future__ import annotations

import logging
import time

import numpy as np

from .. import core
from ..errors import DataSetError, SimulationFailed, StoreError
from ..md import engine, fire
from . import lock, store, targets
from .datasets import NAMES, Catalogue, read_bapst, scan, times_tau
from .driver import Progress, completed, record_error, write_configuration

logger = logging.getLogger(__name__)


def _validation(n_train: int, share) -> np.ndarray:
    """Positions of the validation files among ``n_train`` train files, spread evenly."""
    n_val = min(share, n_train) if isinstance(share, int) else int(np.floor(share * n_train + 0.5))
    if not n_train:
        return np.zeros(0, dtype=int)
    if n_val >= n_train and n_train:
        raise DataSetError(f"source.validation {share} takes all {n_train} train files; none would be left")
    return np.floor((np.arange(n_val) + 0.5) * n_train / max(n_val, 1)).astype(int)


def concrete_spec(spec, catalogue: Catalogue):
    """``spec`` with what the files set: configurations per T, replicas, times."""
    from .spec import parse_spec

    missing = [T for T in spec.temperatures if T not in catalogue.configurations]
    if missing:
        raise DataSetError(
            f"{catalogue.root} has no files at T = {missing} that the spec names (found "
            f"{sorted(catalogue.configurations)})"
        )
    times, _ = times_tau(catalogue, spec.source.times)
    data = spec.model_dump()
    data.update(
        configurations={T: len(catalogue.configurations[T]) for T in spec.temperatures},
        replicas=catalogue.replicas,
        times=times,
    )
    if catalogue.format == "bapst":  # the files' density, and their own tau_alpha: the time of is_value 1/e
        data.update(density=catalogue.N / catalogue.box**3)
        taus = {T: catalogue.file_times[T]["file_tau_alpha"] for T in spec.temperatures}
        if all(taus.values()):
            data.update(tau_alpha=taus)
    return parse_spec(data)


# ---------------------------------------------------------------- units (run on workers)


def read_botan(files: list[str], n: int, box: float) -> dict:
    """The arrays of one BOTAN configuration: types, wrapped thermal positions, frames (K, n_t, N, 3)."""
    frames, types, thermal = [], None, None
    for path in files:
        with np.load(path) as d:
            t, x0, x = d["types"], d["initial_positions"].astype(np.float64), d["positions"].astype(np.float64)
        if not np.isin(t, (0, 1)).all() or len(np.unique(t)) != 2:
            raise DataSetError(f"{path}: types {sorted(np.unique(t).tolist())}; expected the two species 0 (A), 1 (B)")
        for name, a in (("initial_positions", x0), ("positions", x)):
            if not np.isfinite(a).all():
                raise DataSetError(f"{path}: {int((~np.isfinite(a)).sum())} non-finite values in {name}")
        if x0.min() < 0 or x0.max() >= box:
            raise DataSetError(
                f"{path}: initial_positions span [{x0.min():.6g}, {x0.max():.6g}], not the box [0, {box:.6g}) of "
                f"N={n} at density {core.DENSITY} (a file of another box?)"
            )
        if types is not None and (not np.array_equal(t, types) or not np.array_equal(x0, thermal)):
            raise DataSetError(f"{path}: another initial configuration than {files[0]} (same configuration index)")
        types, thermal = t, x0
        frames.append(x)
    return {"types": types.astype(np.int8), "thermal": thermal, "frames": np.stack(frames, axis=1)}


def import_botan(files: list[str], n: int, box: float, params, label: str, dtype: str, temperature: float) -> dict:
    """One BOTAN configuration: FIRE inherent structure and every target, as ``pipeline.reduce`` gives them."""
    start = time.perf_counter()
    d = read_botan(files, n, box)
    return _from_runs(d["types"], d["thermal"], d["frames"], box, params, label, dtype, temperature, start)


def import_bapst(
    files: list[str], n: int, box: float, params, label: str, dtype: str, runs: list[int], temperature: float
) -> dict:
    """One Bapst et al. configuration: the run sets ``runs`` (in time order) as the frames, FIRE inherent
    structure and every target as for BOTAN; the propensity must reproduce the file's own ``targets``."""
    start = time.perf_counter()
    (path,) = files
    d = read_bapst(path)
    t = d["types"]
    if not np.isin(t, (0, 1)).all() or len(np.unique(t)) != 2:
        raise DataSetError(f"{path}: types {sorted(np.unique(t).tolist())}; expected the two species 0 (A), 1 (B)")
    x0 = d["positions"].astype(np.float64)
    frames = d["trajectory_target_positions"][runs].astype(np.float64).transpose(1, 0, 2, 3)  # (K, n_t, N, 3)
    for name, a in (("positions", x0), ("trajectory_target_positions", frames)):
        if not np.isfinite(a).all():
            raise DataSetError(f"{path}: {int((~np.isfinite(a)).sum())} non-finite values in {name}")
    if len(t) != n or abs(float(d["box"][0]) - box) > 1e-9 * box:
        raise DataSetError(f"{path}: N={len(t)}, box {float(d['box'][0]):.10g}; the store has N={n}, L={box:.10g}")
    if x0.min() < 0 or x0.max() >= box:
        raise DataSetError(f"{path}: positions span [{x0.min():.6g}, {x0.max():.6g}], not the box [0, {box:.6g})")
    propensity = targets.propensity(x0, frames)  # checked before the minutes of FIRE
    for k, i in enumerate(runs):
        off = np.abs(propensity[k] - d["targets"][i]).max()
        if not off <= 1e-6 * (1 + np.abs(d["targets"][i]).max()):
            raise DataSetError(
                f"{path}: the mean |displacement| of trajectory_target_positions[{i}] differs from targets[{i}] by "
                f"up to {off:.3g}: the run sets do not line up with the time indices"
            )
    return _from_runs(t.astype(np.int8), x0, frames, box, params, label, dtype, temperature, start)


def _from_runs(types, x0, frames, box, params, label, dtype, temperature, start) -> dict:
    """FIRE inherent structure of ``x0`` and every target from the runs, as ``pipeline.reduce`` gives them.

    Args:
        types: (N,) int8 species, 0 = A.
        x0: (N, 3) float64 t = 0 positions in [0, L).
        frames: (K, n_t, N, 3) the runs' positions, unwrapped and continuing ``x0``.
        box, params, label, dtype, temperature: box length, FIRE parameters, the unit's name in errors, the
            store's dtype of the runs, T (for the pressure).
        start: ``time.perf_counter()`` at the unit's start (its wall time).
    """
    n = len(types)
    energy, _ = engine.energy_and_forces(types, x0, box)
    pressure = engine.pressure(types, x0, box, temperature)
    try:
        r = fire.quench(types, x0, box, params)
    except (fire.FireNotConverged, FloatingPointError) as e:
        raise type(e)(f"{label}: {e}") from None
    quenched = time.perf_counter()
    inherent = core.wrap(r.positions, box)
    edges = targets.graph_edges(inherent, box)
    return {
        "types": types,
        "thermal": x0,
        "energy_thermal": energy / n,
        "pressure_thermal": pressure,
        "inherent": inherent,
        "fire_residual": r.mean_force,
        "fire_steps": r.steps,
        "energy_inherent": r.energy_per_particle,
        "replica_positions": frames.astype(dtype),
        "replica_seeds": np.full(frames.shape[0], -1),  # the data set does not record them
        "cb": targets.bond_breaking(types, x0, frames, box),
        "propensity": targets.propensity(x0, frames),
        "msd": targets.msd(x0, frames),
        "fs_A": targets.self_intermediate_a(types, x0, frames),
        "edges": edges.astype(np.int32),
        "edge_targets": targets.edge_targets(edges, x0, frames, box),
        "wall_time": time.perf_counter() - start,
        "unit_times": {"quench": quenched - start, "reduce": time.perf_counter() - quenched},
    }


def import_glassbench(
    files: list[str],
    n: int,
    box: float,
    params,
    label: str,
    dtype: str,
    models: list[str],
    tau_index: int,
    temperature: float,
) -> dict:
    """One GlassBench configuration: its given inherent structure checked with our double-precision forces and
    re-quenched by FIRE where the mean force is above the tolerance; md_prop / bb_prop as the propensity / C_B
    targets at every time; the published models' predictions; no replicas, so no edge targets, msd or F_s."""
    start = time.perf_counter()
    (path,) = files
    with np.load(path) as d:
        arrays = {k: d[k] for k in d.files}
    t = arrays["types"]
    if not np.isin(t, (1, 2)).all() or len(np.unique(t)) != 2:
        raise DataSetError(
            f"{path}: types {sorted(np.unique(t).tolist())}; expected GlassBench's two species 1 (A), 2 (B)"
        )
    for key in ("initial_positions", "initial_positions_inherent", "md_prop", "bb_prop"):
        if not np.isfinite(arrays[key]).all():
            raise DataSetError(f"{path}: {int((~np.isfinite(arrays[key])).sum())} non-finite values in {key}")
    x0 = arrays["initial_positions"].astype(np.float64)
    if x0.min() < -box / 2 - 1e-9 or x0.max() > box / 2 + 1e-9:
        raise DataSetError(
            f"{path}: initial_positions span [{x0.min():.6g}, {x0.max():.6g}], not GlassBench's box [-L/2, L/2) with "
            f"L = {box:.6g} (N={n} at density {core.DENSITY}; a file of another box?)"
        )
    types = (t - 1).astype(np.int8)
    thermal = core.wrap(x0, box)
    inherent = core.wrap(arrays["initial_positions_inherent"].astype(np.float64), box)
    energy, _ = engine.energy_and_forces(types, thermal, box)
    e_is, f_is = engine.energy_and_forces(types, inherent, box)
    residual, steps, requenched = engine.mean_force(f_is), 0, False
    if residual > params.tolerance:
        try:
            r = fire.quench(types, inherent, box, params)
        except (fire.FireNotConverged, FloatingPointError) as e:
            raise type(e)(
                f"{label} ({path}: the given inherent structure has mean force {residual:.3g}): {e}"
            ) from None
        inherent, residual, steps, requenched = core.wrap(r.positions, box), r.mean_force, r.steps, True
        e_is = r.energy_per_particle * n
    quenched = time.perf_counter()
    edges = targets.graph_edges(inherent, box)
    n_t = arrays["md_prop"].shape[0]
    published = {}
    for model in models:
        if model in arrays:
            p = np.asarray(arrays[model], dtype=np.float64)
            if p.shape == (n,):  # a prediction at tau_alpha only
                full = np.full((n_t, n), np.nan)
                full[tau_index] = p
                p = full
            published[model] = p
    return {
        "types": types,
        "thermal": thermal,
        "energy_thermal": energy / n,
        "pressure_thermal": engine.pressure(types, thermal, box, temperature),
        "inherent": inherent,
        "fire_residual": residual,
        "fire_steps": steps,
        "energy_inherent": e_is / n,
        "requenched": requenched,
        "replica_positions": np.zeros((0, n_t, n, 3), dtype=dtype),
        "replica_seeds": np.zeros(0, dtype=np.int64),
        "cb": arrays["bb_prop"].astype(np.float64),
        "propensity": arrays["md_prop"].astype(np.float64),
        "msd": np.full((n_t, n), np.nan),
        "fs_A": np.full(n_t, np.nan),
        "edges": edges.astype(np.int32),
        "edge_targets": np.full((n_t, len(edges)), np.nan),
        "published": published,
        "wall_time": time.perf_counter() - start,
        "unit_times": {"quench": quenched - start, "reduce": time.perf_counter() - quenched},
    }


UNITS = {"botan": import_botan, "glassbench": import_glassbench, "bapst": import_bapst}


# ---------------------------------------------------------------- the driver


def _annotate(root, spec, catalogue: Catalogue) -> None:
    """Write, once, what the files say beyond the spec: split, types, sources, times and their origin."""
    times, times_source = times_tau(catalogue, spec.source.times)
    for T in spec.temperatures:
        g = root[store.group_name(T)]
        confs = catalogue.configurations[T]
        sources = [c.source(catalogue.root) for c in confs]
        if g.attrs.get("import_annotated"):
            recorded = g["source"][:].tolist()
            if recorded != sources:
                changed = (
                    next(i for i, (a, b) in enumerate(zip(recorded, sources)) if a != b)
                    if len(recorded) == len(sources)
                    else None
                )
                raise StoreError(
                    f"{catalogue.root}: the files at T={T} are not those this store was imported from "
                    + (
                        f"(configuration {changed}: {recorded[changed]} then, {sources[changed]} now)"
                        if changed is not None
                        else f"({len(recorded)} configurations then, {len(sources)} now)"
                    )
                    + "; use another --store"
                )
            continue
        split = np.array([0 if c.split == "train" else 2 for c in confs], dtype=np.int8)
        train = np.flatnonzero(split == 0)
        split[train[_validation(len(train), spec.source.validation)]] = 1
        g["split"][:] = split
        g["source"][:] = np.array(sources, dtype=object)
        g.attrs.update(
            {
                "times": [x * spec.tau_for(T) for x in times],
                "times_tau": times,
                "times_source": times_source,
                "time_indices": catalogue.time_indices,
                "tau_alpha_source": "given",
                "tau_alpha_reference": "the files' time of is_value 1/e"
                if catalogue.format == "bapst" and catalogue.file_times[T]["file_tau_alpha"]
                else "Table I of the paper (or the spec's tau_alpha)",
                "equilibration_time": None,
                "decorrelation_time": None,
                "dt": None,
                "chains": None,
                "dynamics": f"as published in the {catalogue.format} data set; tbotan made only the inherent structures"
                + (" it had to re-quench (inherent_requenched)" if catalogue.format == "glassbench" else " (FIRE)"),
                "source": {
                    "format": catalogue.format,
                    "directory": str(catalogue.root.resolve()),
                    "pattern": NAMES[catalogue.format].pattern,
                },
            }
        )
        if catalogue.format == "bapst":  # this temperature's own times (the store's list is the lowest T's)
            g.attrs.update(catalogue.file_times[T])
        if catalogue.format == "glassbench":
            tests = np.flatnonzero(split == 2)
            for model in catalogue.models.get(T, []):
                pg = root.require_group(f"published/{model}").require_group(store.group_name(T))
                if "node" not in pg:
                    pg.create_array(
                        "configurations", data=tests.astype(np.int64), dimension_names=("test_configuration",)
                    )
                    n_t = len(catalogue.time_indices)
                    pg.create_array(
                        "node",
                        shape=(len(tests), n_t, catalogue.N),
                        chunks=(1, n_t, catalogue.N),
                        dtype=np.float64,
                        fill_value=np.nan,
                        dimension_names=("test_configuration", "time", "particle"),
                    )
                pg.attrs.update(
                    {
                        "source": {"pattern": f"T{T:g}/test/N{catalogue.N}T{T:g}_<i>.npz", "key": model},
                        "T": T,
                        "model": model,
                    }
                )
        g.attrs["import_annotated"] = True  # last


def import_data(spec, path, client, worker_timeout: float | None = None) -> dict:
    """Import (or finish importing) ``spec.source`` into the store at ``path`` on ``client``'s cluster; returns the
    summary. ``worker_timeout``: give up (NoWorkers) when no worker has been connected for that many seconds."""

    catalogue = scan(spec.source.format, spec.source.path)
    full = concrete_spec(spec, catalogue)
    root, created = store.open_or_create(path, full)
    with lock.writer(path, "tbotan import"):
        return _import(spec, path, client, worker_timeout, catalogue, full, root, created)


def _import(spec, path, client, worker_timeout, catalogue, full, root, created) -> dict:
    _annotate(root, full, catalogue)
    box = core.box_length(full.N, full.density)
    params = full.fire.parameters()
    futures, kinds, test_row = [], {}, {}
    for T in full.temperatures:
        g = root[store.group_name(T)]
        done = g["done"][:]
        test_row[T] = {int(c): k for k, c in enumerate(np.flatnonzero(g["split"][:] == 2))}  # rows of published/
        for c, conf in enumerate(catalogue.configurations[T]):
            if done[c]:
                continue
            files = [str(p) for _, p in sorted(conf.files.items())]
            extra = {
                "botan": (),
                "bapst": (catalogue.time_indices,),
                "glassbench": (catalogue.models.get(T, []), store.tau_alpha_index(full.times)),
            }[catalogue.format]
            args = (files, full.N, box, params, f"T={T} configuration {c}", full.store_dtype, *extra, T)
            f = client.submit(UNITS[catalogue.format], *args, key=f"import-T{T:.3f}-c{c}", pure=False)
            kinds[f] = (T, c)
            futures.append(f)
    left = len(futures)
    logger.info(
        f"{'created' if created else 'resuming'} {path}: {left} configurations to import from "
        f"{catalogue.root} ({catalogue.format}, N={catalogue.N}, K={catalogue.replicas}, "
        f"time indices {catalogue.time_indices})"
    )
    if not futures:
        return {"status": "complete", "summary": store.summary(root)}
    progress = Progress({"configurations": left})
    failed = 0
    for f in completed(futures, progress, client, worker_timeout):
        T, c = kinds.pop(f)
        g = root[store.group_name(T)]
        if f.status == "error":
            err = f.exception()
            failed += 1
            record_error(g, c, f"{type(err).__name__}: {err}")
            logger.warning(f"FAILED T={T} configuration {c}: {err}")
            continue
        r = f.result()
        with store.writing(path, f"T={T} configuration {c}"):
            g["types"][c] = r["types"]
            g["thermal"][c] = r["thermal"]
            g["energy_thermal"][c] = r["energy_thermal"]
            if "pressure_thermal" in g:  # stores made before it have none
                g["pressure_thermal"][c] = r["pressure_thermal"]
            g["equilibrated"][c] = True
            if "requenched" in r:
                g["inherent_requenched"][c] = r["requenched"]
            for model, p in r.get("published", {}).items():
                root[f"published/{model}/{store.group_name(T)}/node"][test_row[T][c]] = p
            write_configuration(g, c, r)  # done[c] last
        f.release()
        progress.tick("configurations")
    if failed:
        raise SimulationFailed(
            f"{failed} configurations failed to import (see `tbotan status {path}`); the rest is "
            "in the store and a rerun retries only what is missing"
        )
    return {"status": "complete", "summary": store.summary(root)}

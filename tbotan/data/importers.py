"""Published data sets into a tbotan store (docs/method.md §7), through the same Dask machinery as ``simulate``.

    tbotan import botan DIR --store storage/botan.zarr [--cluster PROFILE]
    tbotan import glassbench DIR --store storage/glassbench.zarr

BOTAN (Shiba et al. 2023): ``DIR/T{T}/{train,test}/isoconfig_N{N}T{T}_{i}_tc{k:02d}.npz``, one file per
configuration i and time index k, with ``types`` (N,) 0/1, ``initial_positions`` (N, 3) wrapped into [0, L) and
``positions`` (K, N, 3): the K iso-configurational runs at that time, unwrapped and continuous with
``initial_positions`` (so ``positions[r] - initial_positions`` is the displacement). The inherent structure is
made here by FIRE, and C_B, E_jk, propensity, msd and F_s^A come from the K runs exactly as for simulated data.

Times. Neither data set writes its times into its files: the time index k is mapped to a time in units of
tau_alpha(T) by a default table (``DEFAULT_TIMES``: BOTAN's ``tc07`` is Table I's tau_alpha), which a spec's
``source.times`` overrides; the group attributes record the times and where they came from. ``fs_A`` shows
where each file really sits (in BOTAN's sample at T = 0.44, tc07 has F_s between 0.12 and 0.42, not 1/e).

Splits: the files' own train/test split is kept (test -> 2); ``source.validation`` of each temperature's train
files, spread evenly over them, become validation (1). ``source`` (C,) records the file(s) of every
configuration, relative to DIR.

Every unit reads its own files (on a cluster, the workers read them from the shared file system); the driver
only reads the arrays' headers, so a file of another N, a missing key, or a file pattern that matches nothing
is refused before any work starts, and NaN positions or types that are not two species fail that
configuration with the file named. Resume: as for ``simulate``, ``done[c]`` is written last.
"""

from __future__ import annotations

import logging
import re
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import core
from ..errors import DataSetError, SimulationFailed, StoreError
from ..md import engine, fire
from . import lock, store, targets
from .driver import Progress, completed, record_error, write_configuration

logger = logging.getLogger(__name__)


NAMES = {
    "botan": re.compile(r"^isoconfig_N(?P<N>\d+)T(?P<T>\d+(?:\.\d+)?)_(?P<i>\d+)_tc(?P<k>\d+)\.npz$"),
    "glassbench": re.compile(r"^N(?P<N>\d+)T(?P<T>\d+(?:\.\d+)?)_(?P<i>\d+)\.npz$"),
}
KEYS = {  # key -> number of dimensions
    "botan": {"types": 1, "initial_positions": 2, "positions": 3},
    "glassbench": {"types": 1, "initial_positions": 2, "initial_positions_inherent": 2, "md_prop": 2, "bb_prop": 2},
}
GLASSBENCH_DATA = {
    "types",
    "initial_positions",
    "initial_positions_inherent",
    "initial_positions_cage",
    "md_prop",
    "bb_prop",
}  # every other key of a GlassBench test file is a published model's prediction
# time index -> units of tau_alpha. BOTAN: tc07 is Table I's tau_alpha. GlassBench: its grid at T = 0.44 (0.13, 1.3,
# 13, 130, 412, 1300, 4120; index 6 = tau_alpha) divided by tau_alpha(0.44) = 4120, the same at every T; indices
# 7-9 are not documented and are continued here by sqrt(10) per index, as the grid does from 130 on (overridable).
_GRID_044 = [0.13, 1.3, 13.0, 130.0, 412.0, 1300.0, 4120.0, 13000.0, 41200.0, 130000.0]
DEFAULT_TIMES = {"botan": {7: 1.0}, "glassbench": {i: t / 4120.0 for i, t in enumerate(_GRID_044)}}


@dataclass
class Configuration:
    """One configuration of a data set: its temperature, split, index and files (time index -> path)."""

    T: float
    split: str
    index: int
    files: dict[int, Path] = field(default_factory=dict)

    def source(self, root: Path) -> str:
        return ",".join(str(p.relative_to(root)) for _, p in sorted(self.files.items()))


@dataclass
class Catalogue:
    """What a folder holds: per temperature, the configurations (train files first, then test, by index)."""

    format: str
    root: Path
    N: int
    replicas: int
    time_indices: list[int]
    configurations: dict[float, list[Configuration]]
    models: dict[float, list[str]] = field(default_factory=dict)  # GlassBench: published predictions per T


def _header(path: Path) -> dict[str, tuple]:
    """Shapes of the arrays of an .npz, read from their headers only."""
    out = {}
    try:
        with zipfile.ZipFile(path) as z:
            for name in z.namelist():
                with z.open(name) as f:
                    version = np.lib.format.read_magic(f)
                    read = (
                        np.lib.format.read_array_header_1_0
                        if version == (1, 0)
                        else np.lib.format.read_array_header_2_0
                    )
                    shape, _, _ = read(f)
                out[name.removesuffix(".npy")] = shape
    except (OSError, zipfile.BadZipFile, ValueError) as e:
        raise DataSetError(f"{path}: not a readable .npz file ({e})") from None
    return out


def scan(fmt: str, directory) -> Catalogue:
    """The configurations of a BOTAN folder; every structural problem refused with the file named."""
    root = Path(directory)
    if not root.is_dir():
        raise DataSetError(f"{root}: no such folder (the {fmt} data set's root, holding T<T>/<split>/ folders)")
    pattern = NAMES[fmt]
    found: dict[tuple[float, int], Configuration] = {}
    n_seen, replicas, n_times = None, None, None
    models: dict[float, set[str]] = {}
    files = sorted(root.glob("T*/*/*.npz"))
    for path in files:
        m = pattern.match(path.name)
        if not m:
            continue
        split = path.parent.name
        if split not in ("train", "test"):
            raise DataSetError(f"{path}: in a folder {split!r}; the {fmt} layout has train/ and test/ only")
        T = round(float(m["T"]), 6)
        folder_T = path.parent.parent.name.removeprefix("T")
        if not re.fullmatch(r"\d+(\.\d+)?", folder_T) or abs(float(folder_T) - T) > 1e-9:
            raise DataSetError(f"{path}: the file says T={m['T']} but lies in folder {path.parent.parent.name}")
        n = int(m["N"])
        shapes = _header(path)
        for key, ndim in KEYS[fmt].items():
            if key not in shapes:
                raise DataSetError(f"{path}: no array {key!r} (has {', '.join(sorted(shapes)) or 'none'})")
            if len(shapes[key]) != ndim:
                raise DataSetError(f"{path}: {key!r} has shape {shapes[key]}, expected {ndim} dimensions")
        wrong = {
            key: shapes[key]
            for key in KEYS[fmt]
            if shapes[key][-1 if key in ("md_prop", "bb_prop", "types") else -2] != n
        }
        if wrong or any(shapes[k][-1] != 3 for k in KEYS[fmt] if "positions" in k):
            raise DataSetError(f"{path}: arrays of another size than N={n} of its name ({wrong or shapes})")
        if n_seen is not None and n != n_seen:
            raise DataSetError(f"{path}: N={n}, but other files of {root} have N={n_seen}")
        runs = shapes["positions"][0] if fmt == "botan" else 0
        times_here = shapes["md_prop"][0] if fmt == "glassbench" else None
        if fmt == "glassbench" and shapes["bb_prop"] != shapes["md_prop"]:
            raise DataSetError(f"{path}: bb_prop {shapes['bb_prop']} and md_prop {shapes['md_prop']} differ in shape")
        if replicas is not None and runs != replicas:
            raise DataSetError(f"{path}: {runs} runs, other files have {replicas}")
        if n_times is not None and times_here != n_times:
            raise DataSetError(f"{path}: {times_here} times in md_prop, other files have {n_times}")
        n_seen, replicas, n_times = n, runs, times_here
        if fmt == "glassbench" and split == "test":
            for key, shape in shapes.items():
                if key not in GLASSBENCH_DATA and shape in ((n_times, n), (n,)):
                    models.setdefault(T, set()).add(key)
        key = (T, int(m["i"]))
        conf = found.setdefault(key, Configuration(T, split, int(m["i"])))
        k = int(m["k"]) if fmt == "botan" else 0
        if conf.split != split or k in conf.files:
            other = conf.files.get(k) or next(iter(conf.files.values()))
            raise DataSetError(f"{path} and {other} both claim configuration {key[1]} at T={T} (time index {k})")
        conf.files[k] = path
    if not found:
        raise DataSetError(
            f"{root}: no file matches the {fmt} layout T<T>/{{train,test}}/{pattern.pattern.strip('^$')} "
            f"({len(files)} .npz files looked at)"
        )
    indices = sorted({k for c in found.values() for k in c.files})
    if fmt == "glassbench":  # one file per configuration, every time in it
        return Catalogue(
            fmt, root, n_seen, 0, list(range(n_times)), _by_T(found), {T: sorted(m) for T, m in models.items()}
        )
    for c in sorted(found.values(), key=lambda c: (c.T, c.split != "train", c.index)):
        if sorted(c.files) != indices:
            missing = sorted(set(indices) - set(c.files))
            raise DataSetError(
                f"configuration {c.index} at T={c.T} ({c.split}) has no file for time index {missing} "
                f"(others have {indices})"
            )
    return Catalogue(fmt, root, n_seen, replicas, indices, _by_T(found))


def _by_T(found: dict) -> dict[float, list[Configuration]]:
    by_T: dict[float, list[Configuration]] = {}
    for c in sorted(found.values(), key=lambda c: (c.T, c.split != "train", c.index)):
        by_T.setdefault(c.T, []).append(c)
    return by_T


def times_tau(catalogue: Catalogue, overrides: dict[int, float] | None) -> tuple[list[float], str]:
    """The times (units of tau_alpha) of the catalogue's time indices, and where they came from."""
    table = {**DEFAULT_TIMES[catalogue.format], **(overrides or {})}
    unknown = [k for k in catalogue.time_indices if k not in table]
    if unknown:
        raise DataSetError(
            f"{catalogue.root}: no time known for time index {unknown} of the {catalogue.format} files (the default "
            f"table knows {sorted(DEFAULT_TIMES[catalogue.format])}): give them in the spec's source.times, "
            "index -> time in units of tau_alpha"
        )
    out = [table[k] for k in catalogue.time_indices]
    if any(b <= a for a, b in zip(out, out[1:])):
        raise DataSetError(f"times {out} of time indices {catalogue.time_indices} do not increase with the index")
    given = sorted(k for k in catalogue.time_indices if k in (overrides or {}))
    source = "default table of tbotan.data.importers (tc07 = Table I's tau_alpha)" + (
        f"; indices {given} from the spec's source.times" if given else ""
    )
    return out, source


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
    types, x0, frames = d["types"], d["thermal"], d["frames"]  # x0 in [0, L): the frames continue it
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


UNITS = {"botan": import_botan, "glassbench": import_glassbench}


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
                "tau_alpha_reference": "Table I of the paper (or the spec's tau_alpha)",
                "equilibration_time": None,
                "decorrelation_time": None,
                "dt": None,
                "chains": None,
                "dynamics": f"as published in the {catalogue.format} data set; tbotan made only the inherent structures"
                + (" (FIRE)" if catalogue.format == "botan" else " it had to re-quench (inherent_requenched)"),
                "source": {
                    "format": catalogue.format,
                    "directory": str(catalogue.root.resolve()),
                    "pattern": NAMES[catalogue.format].pattern,
                },
            }
        )
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
            extra = (
                () if catalogue.format == "botan" else (catalogue.models.get(T, []), store.tau_alpha_index(full.times))
            )
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

"""The Zarr v3 store: its schema (docs/method.md §8.1, documented in storage/README.md) and safe access.

One store per run. Root attributes: ``spec`` (validated job spec, JSON), ``software``, ``created``,
``units``. One group per temperature, ``T{T:.3f}``, one configuration per chunk along the leading axis.
Only the pipeline's driver process writes (workers return results), so there is a single writer.

Completion flags, each written after the data it vouches for:
- ``equilibrated[c]``: ``thermal[c]`` and ``velocities[c]`` (the state at the end of the chain segment
  that made configuration c) are complete; later segments of the chain continue from it.
- ``done[c]``: every array of configuration c is complete. Readers use only configurations with
  ``done``; anything else is recomputed in full on resume.
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import importlib.metadata
import json
import logging
import os
import platform as _platform
from pathlib import Path

import numpy as np
import zarr

from .. import __version__, core
from ..errors import StoreError

logger = logging.getLogger(__name__)

UNITS = "reduced (sigma_AA, eps_AA, tau_LJ)"
# 3: `replica_done` (C, K) marks each replica written as it finished. 2: `propensity` is the mean absolute
# displacement, `msd` and `fs_A` exist. 1 (no `layout` attribute): the first stores, whose `propensity` was the
# mean squared displacement. `upgrade` brings any of them to the current layout.
LAYOUT = 3
# the data spec's `dynamics` of a store made before that field existed: its replicas were NVE
LEGACY_DYNAMICS = {"kind": "nve", "friction": None, "time_constant": None, "zero_sum_noise": None}
MAX_EDGES_PER_PARTICLE = 80  # the padded width of the edge arrays; ~40 edges per particle at density 1.2


@contextlib.contextmanager
def writing(path, what: str):
    """Turn a full disk, a quota or a file-size limit met while writing ``what`` into one StoreError. What is
    being written is never marked done (flags are written last, checkpoints renamed into place), so the store
    stays consistent and a rerun after freeing space redoes only what is missing."""
    try:
        yield
    except OSError as e:
        if e.errno not in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
            raise
        raise StoreError(
            f"{path}: writing {what} failed ({os.strerror(e.errno)}); it is not marked done and everything "
            "marked done is whole: free space (or raise the limit) and rerun the same command"
        ) from None


def atomic_write(path, write, what: str) -> None:
    """``write(tmp)`` to a temporary file beside ``path``, flushed to disk, then moved into place with
    ``os.replace``: a kill at any moment leaves the previous complete file (or none), never a half-written one; a
    full disk or a file-size limit is the one StoreError of ``writing`` naming ``what``, the temporary file
    removed. Checkpoints, histories and `tbotan predict`'s outputs are written this way."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with writing(path.parent, what):
        try:
            write(tmp)
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
        except OSError:
            tmp.unlink(missing_ok=True)
            raise
        os.replace(tmp, path)


def group_name(temperature: float) -> str:
    return f"T{temperature:.3f}"


def tau_alpha_index(times_tau) -> int:
    """The index of the observation time at tau_alpha (1.0 in units of tau_alpha), else 0 (the first)."""
    return next((i for i, t in enumerate(times_tau or []) if abs(t - 1.0) < 1e-9), 0)


def software_versions() -> dict:
    """Versions of what made the data, read from the installed distributions (nothing is imported)."""

    def version(name):
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            return None

    return {
        "tbotan": __version__,
        "openmm": version("openmm"),
        "zarr": zarr.__version__,
        "numpy": np.__version__,
        "python": _platform.python_version(),
        "torch": version("torch"),
    }


def _arrays(spec, temperature: float) -> dict:
    """name -> (shape, dtype, fill, dimension names) of one temperature group."""
    c = spec.configurations_for(temperature)
    n, k, nt = spec.N, spec.replicas, len(spec.times)
    e = n * MAX_EDGES_PER_PARTICLE
    pos = np.dtype(spec.store_dtype)
    return {
        "types": ((c, n), np.int8, 0, ("configuration", "particle")),
        "thermal": ((c, n, 3), np.float64, 0.0, ("configuration", "particle", "xyz")),
        "velocities": ((c, n, 3), np.float64, 0.0, ("configuration", "particle", "xyz")),
        "inherent": ((c, n, 3), np.float64, 0.0, ("configuration", "particle", "xyz")),
        "fire_residual": ((c,), np.float64, np.nan, ("configuration",)),
        "fire_steps": ((c,), np.int64, -1, ("configuration",)),
        "energy_thermal": ((c,), np.float64, np.nan, ("configuration",)),
        "pressure_thermal": ((c,), np.float64, np.nan, ("configuration",)),
        "energy_inherent": ((c,), np.float64, np.nan, ("configuration",)),
        "replica_positions": ((c, k, nt, n, 3), pos, 0.0, ("configuration", "replica", "time", "particle", "xyz")),
        "replica_seeds": ((c, k), np.int64, -1, ("configuration", "replica")),
        "replica_done": ((c, k), bool, False, ("configuration", "replica")),
        "cb": ((c, nt, n), np.float64, np.nan, ("configuration", "time", "particle")),
        "propensity": ((c, nt, n), np.float64, np.nan, ("configuration", "time", "particle")),
        "msd": ((c, nt, n), np.float64, np.nan, ("configuration", "time", "particle")),
        "fs_A": ((c, nt), np.float64, np.nan, ("configuration", "time")),
        "n_edges": ((c,), np.int64, 0, ("configuration",)),
        "edges": ((c, e, 2), np.int32, -1, ("configuration", "edge", "pair")),
        "edge_targets": ((c, nt, e), np.float64, np.nan, ("configuration", "time", "edge")),
        "wall_time": ((c,), np.float64, 0.0, ("configuration",)),
        "split": ((c,), np.int8, 0, ("configuration",)),
        "equilibrated": ((c,), bool, False, ("configuration",)),
        "done": ((c,), bool, False, ("configuration",)),
        **({"source": ((c,), str, "", ("configuration",))} if spec.source is not None else {}),
        **(
            {"inherent_requenched": ((c,), bool, False, ("configuration",))}
            if spec.source is not None and spec.source.format == "glassbench"
            else {}
        ),
    }


def tau_attributes(spec, tau: float | None) -> dict:
    """The group attributes that follow from tau_alpha: the value and the times in reduced units."""
    scale = (lambda x: x * tau) if tau is not None else (lambda x: None)
    return {
        "tau_alpha": tau,
        "times": [scale(x) for x in spec.times] if tau is not None else None,
        "equilibration_time": scale(spec.equilibration),
        "decorrelation_time": scale(spec.decorrelation),
    }


def create(path: str | Path, spec) -> zarr.Group:
    """A new, empty store for ``spec`` (refuses to overwrite anything)."""
    path = Path(path)
    if path.exists():
        raise StoreError(f"{path} already exists")
    root = zarr.open_group(str(path), mode="w-", zarr_format=3)
    root.attrs.update(
        {
            "spec": json.loads(spec.to_json()),
            "data_spec": json.loads(spec.data_json()),
            "software": software_versions(),
            "units": UNITS,
            "layout": LAYOUT,
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        }
    )
    for t in spec.temperatures:
        g = root.create_group(group_name(t))
        tau = spec.tau_for(t)
        g.attrs.update(
            {
                "T": t,
                "N": spec.N,
                "L": core.box_length(spec.N, spec.density),
                "density": spec.density,
                **tau_attributes(spec, tau),
                "tau_alpha_source": "given" if tau is not None else "measure (pending)",
                "times_tau": list(spec.times),
                "dt": spec.dt,
                "chains": spec.chains,
                "dynamics": "configurations: Langevin NVT (friction 1) chains; replicas and tau_alpha: "
                + spec.dynamics.describe()
                + " from Maxwell-Boltzmann velocities (rescaled to T, zero momentum)",
                "dynamics_parameters": spec.dynamics.parameters(),
                "errors": {},
            }
        )
        for name, (shape, dtype, fill, dims) in _arrays(spec, t).items():
            chunks = (1,) + tuple(max(s, 1) for s in shape[1:])  # GlassBench: K = 0 replicas
            g.create_array(name, shape=shape, chunks=chunks, dtype=dtype, fill_value=fill, dimension_names=dims)
        g["split"][:] = spec.split_for(t)
        g["types"][:] = np.broadcast_to(core.species(spec.N), g["types"].shape)
    root.attrs["complete_schema"] = True  # written last: a store without it was interrupted while being made
    return root


def open_store(path: str | Path, mode: str = "r") -> zarr.Group:
    """An existing store; a clear StoreError if it is missing, not a store, or was never finished being made."""
    path = Path(path)
    if not path.exists():
        raise StoreError(f"no store at {path}: run `tbotan simulate SPEC --store {path}` first")
    if path.is_file():
        raise StoreError(f"{path} is a file, not a Zarr store")
    try:
        root = zarr.open_group(str(path), mode=mode)
    except Exception as e:  # zarr raises several kinds for a folder that is not a group
        raise StoreError(f"{path} is not a Zarr store: {e}") from None
    if not root.attrs.get("complete_schema"):
        raise StoreError(f"{path} is a half-made store (its creation was interrupted): delete it and rerun")
    return root


def open_or_create(path: str | Path, spec) -> tuple[zarr.Group, bool]:
    """The store for ``spec`` at ``path``: created if absent, reopened if made by the same data spec.

    Returns (root, created). A store whose data-defining spec differs is refused."""
    path = Path(path)
    if path.exists() and path.is_file():
        raise StoreError(f"{path} is a file, not a Zarr store")
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        return create(path, spec), True
    root = record_spec(path, spec)
    upgrade(root, path)
    return root, False


def layout(root: zarr.Group) -> int:
    return int(root.attrs.get("layout", 1))


def old_layout_message(path) -> str:
    return (
        f"{path} has the first store layout (its `propensity` is the mean squared displacement; no `msd`, no "
        f"`fs_A`): run `tbotan simulate SPEC --store {path}` once to upgrade it from its stored replica positions "
        "(no MD is rerun)"
    )


def upgrade(root: zarr.Group, path="store") -> bool:
    """Bring a layout-1 store to the current layout from its stored replica positions: ``propensity`` becomes the
    mean absolute displacement, ``msd`` the mean squared one, ``fs_A`` F_s^A(7.25, t); per done configuration,
    ``msd[c]`` written last, so a killed upgrade resumes where it stopped. Returns whether anything was done."""
    if layout(root) >= LAYOUT:
        return False
    if layout(root) == 2:
        for t in temperatures(root):
            _add_replica_done(root[group_name(t)])
        root.attrs["layout"] = LAYOUT
        logger.info(f"{path}: upgraded to store layout {LAYOUT} (replica_done)")
        return True
    from . import targets

    for t in temperatures(root):
        g = root[group_name(t)]
        c_all, nt, n = g["cb"].shape
        for name, shape, dims in (
            ("msd", (c_all, nt, n), ("configuration", "time", "particle")),
            ("fs_A", (c_all, nt), ("configuration", "time")),
        ):
            if name not in g:
                g.create_array(
                    name, shape=shape, chunks=(1, *shape[1:]), dtype=np.float64, fill_value=np.nan, dimension_names=dims
                )
        for c in np.flatnonzero(g["done"][:]):
            if np.isfinite(g["msd"][c, 0, 0]):
                continue  # upgraded before an interruption
            thermal, types = g["thermal"][c], g["types"][c]
            frames = g["replica_positions"][c].astype(np.float64)
            g["propensity"][c] = targets.propensity(thermal, frames)
            g["fs_A"][c] = targets.self_intermediate_a(types, thermal, frames)
            g["msd"][c] = targets.msd(thermal, frames)  # last: vouches for the two above
        g.attrs["propensity_definition"] = (
            "mean absolute displacement, recomputed by the layout-2 upgrade from "
            f"replica_positions stored as {g['replica_positions'].dtype}"
        )
        _add_replica_done(g)
    root.attrs["layout"] = LAYOUT
    logger.info(f"{path}: upgraded to store layout {LAYOUT} (propensity, msd, fs_A from the stored replica positions)")
    return True


def _add_replica_done(g) -> None:
    """``replica_done`` for a group made before it: the replicas of done configurations are all written."""
    if "replica_done" in g:
        return
    c, k = g["replica_seeds"].shape
    a = g.create_array(
        "replica_done",
        shape=(c, k),
        chunks=(1, max(k, 1)),
        dtype=bool,
        fill_value=False,
        dimension_names=("configuration", "replica"),
    )
    a[:] = np.broadcast_to(g["done"][:][:, None], (c, k))


def record_spec(path: str | Path, spec) -> zarr.Group:
    """Reopen an existing store for ``spec``: refused if its data were made from another data spec; otherwise
    the root ``spec`` attribute becomes ``spec`` (training and evaluation settings may change between stages,
    and the report reads them from there)."""
    root = open_store(path, mode="r+")
    theirs = root.attrs.get("data_spec")
    if theirs is not None and "dynamics" not in theirs and "source" not in theirs:
        theirs = {**theirs, "dynamics": LEGACY_DYNAMICS}  # made before the field: NVE replicas
    ours = json.loads(spec.data_json())
    if theirs != ours:
        diff = sorted(k for k in set(theirs or {}) | set(ours) if (theirs or {}).get(k) != ours.get(k))
        raise StoreError(
            f"{path} was made from a different job spec (fields that differ: {', '.join(diff)}); use another --store"
            + (
                f" (its runs used `dynamics: {theirs['dynamics']['kind']}`)"
                if "dynamics" in diff and isinstance((theirs or {}).get("dynamics"), dict)
                else ""
            )
        )
    if json.loads(spec.to_json()) != root.attrs.get("spec"):
        root.attrs["spec"] = json.loads(spec.to_json())
    return root


FS_ALPHA_BAND = (0.30, 0.44)  # F_s^A(7.25) of an ensemble observed within ~15 % of its alpha time (1/e = 0.368)
STRETCH = 0.8  # a typical KA stretching exponent, for a rough t / tau_alpha from F_s = exp(-(t / tau)^beta)


def alpha_time_check(g) -> dict | None:
    """Is the time called tau_alpha the ensembles' own alpha time? F_s^A(7.25) there, mean and std over the done
    configurations, against ``FS_ALPHA_BAND``; None where nothing is done or the group has no F_s (an import
    without replicas). ``ratio`` is a rough estimate of t / tau_alpha(own), (-ln F_s)^(1 / 0.8)."""
    if "fs_A" not in g or g.attrs.get("tau_alpha") is None:
        return None
    done = g["done"][:]
    fs = g["fs_A"][:][done, tau_alpha_index(g.attrs.get("times_tau"))] if done.any() else np.array([])
    fs = fs[np.isfinite(fs)]
    if not len(fs):
        return None
    mean = float(fs.mean())
    ok = FS_ALPHA_BAND[0] <= mean <= FS_ALPHA_BAND[1]
    check = {"fs_at_tau": mean, "fs_std": float(fs.std()), "configurations": int(len(fs)), "ok": ok}
    check["ratio"] = float((-np.log(mean)) ** (1 / STRETCH)) if 0 < mean < 1 else None
    if not ok:
        T, tau = float(g.attrs["T"]), g.attrs["tau_alpha"]
        when = f"about {check['ratio']:.2g} of" if check["ratio"] is not None else "many times"
        check["message"] = (
            f"T={T:g}: F_s^A(7.25) = {mean:.3f} at the time called tau_alpha ({tau:.4g}), outside "
            f"[{FS_ALPHA_BAND[0]}, {FS_ALPHA_BAND[1]}]: the ensembles are observed at {when} "
            f"their own alpha time. Measure tau_alpha at this N with the spec's dynamics (`tau_alpha: measure`, or "
            f"`tbotan tau --temperature {T:g} --N {g.attrs['N']} --dynamics ...`) and use a new store"
        )
    return check


def _mean_of(g: zarr.Group, name: str, done: np.ndarray) -> float | None:
    v = g[name][:][done] if name in g and done.any() else np.array([])
    v = v[np.isfinite(v)]
    return float(v.mean()) if len(v) else None


def temperatures(root: zarr.Group) -> list[float]:
    return sorted(float(g.attrs["T"]) for name, g in root.groups() if name.startswith("T") and "T" in g.attrs)


def summary(root: zarr.Group) -> list[dict]:
    """Per temperature: what is done, what is left, tau_alpha used, worst FIRE residual, time spent, errors."""
    out = []
    for t in temperatures(root):
        g = root[group_name(t)]
        done = g["done"][:]
        eq = g["equilibrated"][:]
        res = g["fire_residual"][:][done]
        out.append(
            {
                "T": t,
                "configurations": int(len(done)),
                "done": int(done.sum()),
                "equilibrated": int(eq.sum()),
                "left": int((~done).sum()),
                "tau_alpha": g.attrs.get("tau_alpha"),
                "tau_alpha_source": g.attrs.get("tau_alpha_source"),
                "worst_fire_residual": float(res.max()) if len(res) else None,
                "wall_time_s": float(g["wall_time"][:].sum()),
                "errors": dict(g.attrs.get("errors", {})),
                "alpha_time": alpha_time_check(g),
                "energy": _mean_of(g, "energy_thermal", done),  # U/N of the thermal configurations
                "pressure": _mean_of(g, "pressure_thermal", done),  # absent in stores made before it
            }
        )
    return out

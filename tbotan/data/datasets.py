"""The published data sets' file layouts: find a data set's files in a folder (``scan``), read their headers and,
for DeepMind's pickles, their arrays; the times of their time indices (``times_tau``). ``tbotan.data.importers``
turns them into a store; ``tbotan.predict`` reads single configurations of the same formats.

BOTAN (Shiba et al. 2023): ``DIR/T{T}/{train,test}/isoconfig_N{N}T{T}_{i}_tc{k:02d}.npz``, one file per
configuration i and time index k, with ``types`` (N,) 0/1, ``initial_positions`` (N, 3) wrapped into [0, L) and
``positions`` (K, N, 3): the K iso-configurational runs at that time, unwrapped and continuous with
``initial_positions`` (so ``positions[r] - initial_positions`` is the displacement). The inherent structure is
made here by FIRE, and C_B, E_jk, propensity, msd and F_s^A come from the K runs exactly as for simulated data.

Bapst et al. 2020 (DeepMind's glassy_dynamics): ``DIR/**/{train,test}/*.pickle``, one pickle per configuration
(the split is the file's folder, the temperature its ``metadata['temperature']``) with ``positions`` (N, 3) in
[0, L), ``types`` (N,) 0/1, ``box`` (3,) cubic, ``time`` (the log grid), ``time_indices`` (n,) and ``is_values``
(n,) (the grid points where the mean F_s reaches each value; 1/e last), ``targets`` (n, N) (the mean absolute
displacement at each of them) and ``trajectory_target_positions`` (n_runs, K, N, 3), unwrapped and continuous
with ``positions``. Run set i is at ``time[time_indices[i]]``: DeepMind's ``train.py`` pairs
``trajectory_target_positions[time_index]`` with ``targets[time_index]`` (its ``time_index`` 0-9 indexes
``time_indices`` / ``is_values``, default 9 = 1/e), and in their ``testdata/test_large.pickle`` (n_runs = 1) the
mean |displacement| of set 0 equals ``targets[0]`` to 1e-14 and its F_s^A(7.25) is 0.894 for ``is_values[0]`` =
0.9. The "time index" of a Bapst store is i; the runs are stored in the order of their times (the 1/e set, i = 9,
lies between i = 5 and 6), and every unit checks that its propensity reproduces the file's ``targets[i]``. The
pickles are read by an unpickler that builds NumPy arrays and nothing else (a pickle can run code otherwise).

Times. Neither BOTAN nor GlassBench writes its times into its files: the time index k is mapped to a time in units of
tau_alpha(T) by a default table (``DEFAULT_TIMES``: BOTAN's ``tc07`` is Table I's tau_alpha); Bapst's files do:
their default is ``time[time_indices[i]]`` over the time of the 1/e set, at the lowest temperature (the store has
one time list; each T group's ``file_times`` / ``is_values`` keep that temperature's own). A spec's
``source.times`` overrides the defaults; the group attributes record the times and where they came from. ``fs_A`` shows
where each file really sits (in BOTAN's sample at T = 0.44, tc07 has F_s between 0.12 and 0.42, not 1/e).
"""

from __future__ import annotations

import pickle
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import DataSetError

NAMES = {
    "botan": re.compile(r"^isoconfig_N(?P<N>\d+)T(?P<T>\d+(?:\.\d+)?)_(?P<i>\d+)_tc(?P<k>\d+)\.npz$"),
    "glassbench": re.compile(r"^N(?P<N>\d+)T(?P<T>\d+(?:\.\d+)?)_(?P<i>\d+)\.npz$"),
    "bapst": re.compile(r"^.+\.pickle$"),  # in DIR/**/{train,test}/; DeepMind's are aggregated-<i>.pickle
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
    box: float | None = None  # Bapst: the files' box (its density is not 1.2)
    default_times: dict[int, float] = field(default_factory=dict)  # Bapst: time index -> units of tau, from the files
    file_times: dict[float, dict] = field(default_factory=dict)  # Bapst: per T, the files' times and is_values


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
    if fmt == "bapst":
        return _scan_bapst(root)
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


BAPST_KEYS = {  # key -> number of dimensions
    "positions": 2,
    "types": 1,
    "box": 1,
    "time": 1,
    "time_indices": 1,
    "is_values": 1,
    "targets": 2,
    "metadata": None,
    "trajectory_target_positions": 4,
}
_NUMPY_GLOBALS = {  # what a pickle of NumPy arrays needs, under NumPy 1's and NumPy 2's module names
    (module, name)
    for module in ("numpy.core.multiarray", "numpy._core.multiarray")
    for name in ("_reconstruct", "scalar")
} | {("numpy", "ndarray"), ("numpy", "dtype")}


class _ArraysOnly(pickle.Unpickler):
    """An unpickler that builds NumPy arrays, dicts, lists and numbers, and refuses every other global."""

    def find_class(self, module, name):
        if (module, name) in _NUMPY_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refused global {module}.{name} (a Bapst file holds NumPy arrays only)")


def load_pickle(path) -> object:
    """What a pickle holds, built by an unpickler that makes NumPy arrays, dicts, lists and numbers and nothing
    else (a pickle can run code otherwise); DataSetError naming the file when it is not such a pickle."""
    try:
        with open(path, "rb") as f:
            return _ArraysOnly(f).load()
    except (OSError, EOFError, pickle.UnpicklingError, ValueError, TypeError, AttributeError) as e:
        raise DataSetError(f"{path}: not a readable pickle of arrays ({type(e).__name__}: {e})") from None


def read_bapst(path) -> dict:
    """One Bapst et al. pickle as arrays (float64 / int64; ``trajectory_target_positions`` (n_runs, K, N, 3)),
    every key and shape checked; DataSetError naming the file otherwise."""
    path = Path(path)
    raw = load_pickle(path)
    if not isinstance(raw, dict):
        raise DataSetError(f"{path}: holds a {type(raw).__name__}, not the dict of Bapst et al.'s files")
    missing = [k for k in BAPST_KEYS if k not in raw]
    if missing:
        raise DataSetError(f"{path}: no {', '.join(map(repr, missing))} (has {', '.join(sorted(map(str, raw)))})")
    meta = raw["metadata"]
    if not isinstance(meta, dict) or "temperature" not in meta:
        raise DataSetError(f"{path}: metadata {meta!r} has no 'temperature'")
    try:
        d = {k: np.asarray(raw[k]) for k in BAPST_KEYS if k != "metadata"}
    except ValueError as e:  # ragged lists
        raise DataSetError(f"{path}: arrays of uneven shapes ({e})") from None
    for key, ndim in BAPST_KEYS.items():
        if ndim is not None and d[key].ndim != ndim:
            raise DataSetError(f"{path}: {key!r} has shape {d[key].shape}, expected {ndim} dimensions")
    n = len(d["positions"])
    n_idx, tp = len(d["time_indices"]), d["trajectory_target_positions"]
    if d["positions"].shape[1] != 3 or d["types"].shape != (n,) or tp.shape[2:] != (n, 3):
        raise DataSetError(
            f"{path}: positions {d['positions'].shape}, types {d['types'].shape}, trajectory_target_positions "
            f"{tp.shape}: expected (N, 3), (N,), (n_runs, K, N, 3)"
        )
    if d["is_values"].shape != (n_idx,) or d["targets"].shape != (n_idx, n) or not 0 < len(tp) <= n_idx:
        raise DataSetError(
            f"{path}: time_indices {d['time_indices'].shape}, is_values {d['is_values'].shape}, targets "
            f"{d['targets'].shape}, {len(tp)} run sets: expected (n,), (n,), (n, N) and 1 to n run sets"
        )
    if d["box"].shape != (3,) or not np.all(d["box"] == d["box"][0]) or not d["box"][0] > 0:
        raise DataSetError(f"{path}: box {d['box'].tolist()}; only a cubic box is supported")
    idx = d["time_indices"]
    if not np.issubdtype(idx.dtype, np.integer) or idx.min() < 0 or idx.max() >= len(d["time"]):
        raise DataSetError(f"{path}: time_indices {idx.tolist()} are not indices of its {len(d['time'])} times")
    d["metadata"] = dict(meta)
    d["temperature"] = round(float(meta["temperature"]), 6)
    return d


def _scan_bapst(root: Path) -> Catalogue:
    """The configurations of a folder of Bapst et al. pickles, read whole (a pickle has no header); files of
    another N, box, K, run count or time grid at the same T are refused with the file named."""
    if not root.is_dir():
        raise DataSetError(f"{root}: no such folder (Bapst et al.'s data, holding train/ and test/ folders)")
    files = sorted(root.rglob("*.pickle"))
    if not files:
        raise DataSetError(f"{root}: no file matches the bapst layout **/{{train,test}}/*.pickle")
    found: dict[tuple[float, str], list[Path]] = {}
    first: dict = {}  # what every file must share, from the first file
    per_T: dict[float, dict] = {}
    for path in files:
        split = path.parent.name
        if split not in ("train", "test"):
            raise DataSetError(f"{path}: in a folder {split!r}; the bapst layout has train/ and test/ folders")
        d = read_bapst(path)
        shape = {
            "N": len(d["types"]),
            "box": float(d["box"][0]),
            "K": d["trajectory_target_positions"].shape[1],
            "runs": len(d["trajectory_target_positions"]),
        }
        if not first:
            first = {**shape, "path": path}
        other = [f"{k}={shape[k]:g} (others {first[k]:g})" for k in shape if shape[k] != first[k]]
        if other:
            raise DataSetError(f"{path}: {', '.join(other)}, unlike {first['path']}")
        T = d["temperature"]
        grid = {
            "time": d["time"].astype(np.float64).tolist(),
            "time_indices": d["time_indices"].astype(int).tolist(),
            "is_values": d["is_values"].astype(np.float64).tolist(),
        }
        ref = per_T.setdefault(T, {**grid, "path": path})
        if any(grid[k] != ref[k] for k in grid):
            raise DataSetError(f"{path}: another time grid / time_indices / is_values than {ref['path']} at T={T}")
        found.setdefault((T, split), []).append(path)
    configurations: dict[float, list[Configuration]] = {}
    for T in sorted(per_T):
        confs = [
            Configuration(T, split, i, {0: p})
            for split in ("train", "test")
            for i, p in enumerate(found.get((T, split), []))
        ]
        configurations[T] = confs
    low = per_T[min(per_T)]
    order = sorted(range(first["runs"]), key=lambda i: low["time"][low["time_indices"][i]])
    file_times, default_times = {}, {}
    for T, g in sorted(per_T.items(), reverse=True):  # the lowest T last: its ratios are the defaults
        times = np.asarray(g["time"])[g["time_indices"]]
        is_values = np.asarray(g["is_values"])
        k = int(np.argmin(np.abs(is_values - np.exp(-1))))
        tau = float(times[k]) if abs(is_values[k] - np.exp(-1)) < 1e-3 else None
        file_times[T] = {
            "file_times": [float(times[i]) for i in order],
            "is_values": [float(is_values[i]) for i in order],
            "file_tau_alpha": tau,
        }
        default_times = {i: float(times[i]) / tau for i in order} if tau else {}
    return Catalogue(
        "bapst",
        root,
        first["N"],
        first["K"],
        order,
        configurations,
        box=first["box"],
        default_times=default_times,
        file_times=file_times,
    )


def times_tau(catalogue: Catalogue, overrides: dict[int, float] | None) -> tuple[list[float], str]:
    """The times (units of tau_alpha) of the catalogue's time indices, and where they came from."""
    defaults = {**DEFAULT_TIMES.get(catalogue.format, {}), **catalogue.default_times}
    table = {**defaults, **(overrides or {})}
    unknown = [k for k in catalogue.time_indices if k not in table]
    if unknown:
        raise DataSetError(
            f"{catalogue.root}: no time known for time index {unknown} of the {catalogue.format} files (the default "
            f"table knows {sorted(defaults)}): give them in the spec's source.times, "
            "index -> time in units of tau_alpha"
        )
    out = [table[k] for k in catalogue.time_indices]
    if any(b <= a for a, b in zip(out, out[1:])):
        raise DataSetError(f"times {out} of time indices {catalogue.time_indices} do not increase with the index")
    given = sorted(k for k in catalogue.time_indices if k in (overrides or {}))
    source = (
        "the files' time[time_indices[i]] over the time of their is_value 1/e, at the lowest temperature"
        if catalogue.format == "bapst"
        else "default table of tbotan.data.importers (tc07 = Table I's tau_alpha)"
    ) + (f"; indices {given} from the spec's source.times" if given else "")
    return out, source

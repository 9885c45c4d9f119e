"""One configuration from a file of any common format, its species mapped to A/B and checked for a trained model
(``tbotan predict``, docs/predict.md).

    conf = read_configuration("run.dump", types={1: "A", 2: "B"})
    warnings = check_configuration(conf, density=1.2)           # ConfigurationError on what cannot be used

Formats, chosen by the file name:

* ``.npz``: GlassBench (``types`` 1/2, ``initial_positions`` in [-L/2, L/2), ``initial_positions_inherent``) and
  BOTAN (``types`` 0/1, ``initial_positions`` in [0, L)); neither stores its box, which is the KA density's
  (1.2); a ``box`` array, where there is one, wins;
* ``.pkl`` / ``.pickle``: DeepMind's glassy_dynamics (a dict with ``positions``, ``types``, ``box``);
* extended XYZ with the species A and B (tbotan's own files, which ASE cannot read) through tbotan.md.xyz, with an
  ``inherent:R:3`` column taken as the inherent structure;
* anything else through ``ase.io.read``: extended XYZ, LAMMPS dump (``.dump``, ``.lammpstrj``:
  ``lammps-dump-text``) and LAMMPS data files (``.data``, ``.lmp``: ``lammps-data``, atom style atomic).

Species: the symbols A and B; or two integer types 0/1 or 1/2 (LAMMPS types, atomic numbers), the more numerous
being A; or an explicit map (``--types 1=A,2=B``, keys a type number or a symbol).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import core
from ..errors import ConfigurationError, DataSetError

NPZ = (".npz",)
PICKLE = (".pkl", ".pickle")
LAMMPS_DUMP = (".dump", ".lammpstrj")
LAMMPS_DATA = (".data", ".lmp")
COMPOSITION = 0.8  # the model's share of A particles
COMPOSITION_TOLERANCE = 0.05  # a share of A further from 0.8 than this is warned about
DENSITY_TOLERANCE = 0.01  # relative density difference warned about
DUPLICATE = 1e-6  # sigma_AA: particles closer than this are duplicates


@dataclass
class Loaded:
    """A configuration read from ``source``: species 0 = A, 1 = B, positions as in the file (not wrapped)."""

    source: str
    types: np.ndarray  # (N,) int8
    positions: np.ndarray  # (N, 3) float64
    box: float | None
    inherent: np.ndarray | None = None  # (N, 3) the file's inherent structure, if it gives one
    notes: list[str] = field(default_factory=list)


def parse_types(text: str | None) -> dict[str, str] | None:
    """``"1=A,2=B"`` -> {"1": "A", "2": "B"} (the ``--types`` option)."""
    if not text:
        return None
    out = {}
    for part in text.split(","):
        key, _, value = part.partition("=")
        if value.strip() not in ("A", "B") or not key.strip():
            raise ConfigurationError(f"--types {text!r}: expected entries TYPE=A or TYPE=B, comma-separated")
        out[key.strip()] = value.strip()
    return out


def map_species(labels, path, types: dict[str, str] | None = None) -> np.ndarray:
    """Species labels (symbols or integers) of a file -> 0 (A) / 1 (B); a ConfigurationError for what the model
    does not know."""
    labels = np.asarray(labels)
    keys = np.array([str(v) for v in labels.tolist()])
    found = sorted(set(keys.tolist()), key=lambda k: (len(k), k))
    if types:
        unknown = [k for k in found if k not in types]
        if unknown:
            raise ConfigurationError(f"{path}: species {unknown} not in --types {types}")
        return np.array([0 if types[k] == "A" else 1 for k in keys], dtype=np.int8)
    if set(found) <= {"A", "B"}:
        return (keys == "B").astype(np.int8)
    if set(found) <= {"0", "1"} or set(found) <= {"1", "2"}:
        if len(found) == 1:
            return np.zeros(len(keys), dtype=np.int8)
        counts = {k: int((keys == k).sum()) for k in found}
        a = max(found, key=lambda k: (counts[k], -int(k)))
        return (keys != a).astype(np.int8)
    raise ConfigurationError(
        f"{path}: species {found} the model does not know (it knows A and B, or types 0/1 or 1/2): "
        "map them with --types, e.g. --types 1=A,2=B"
    )


def _cubic(cell, path) -> float | None:
    cell = np.asarray(cell, dtype=np.float64)
    if cell.shape == (3,):
        cell = np.diag(cell)
    if cell.shape == ():
        cell = np.eye(3) * cell
    if not np.any(cell):
        return None
    L = cell[0, 0]
    if L <= 0 or not np.allclose(cell, np.eye(3) * L, rtol=1e-9, atol=1e-12):
        raise ConfigurationError(
            f"{path}: the box is not cubic (cell {np.round(cell, 6).tolist()}); the model knows cubic periodic boxes"
        )
    return float(L)


def _npz(path: Path, types) -> Loaded:
    try:
        with np.load(path) as d:
            arrays = {k: d[k] for k in d.files}
    except (OSError, ValueError) as e:
        raise ConfigurationError(f"{path}: not a readable .npz file ({e})") from None
    x = arrays.get("initial_positions", arrays.get("positions"))
    if x is None or "types" not in arrays or np.ndim(x) != 2:
        raise ConfigurationError(
            f"{path}: an .npz needs 'types' and 'initial_positions' (N, 3) (GlassBench, BOTAN); has {sorted(arrays)}"
        )
    x = x.astype(np.float64)
    notes = []
    if "box" in arrays:
        box = _cubic(arrays["box"], path)
    else:
        box = core.box_length(len(x))
        notes.append(f"no box in the file: L = {box:.6g}, the KA density 1.2 of GlassBench and BOTAN")
    inherent = arrays.get("initial_positions_inherent")
    return Loaded(str(path), map_species(arrays["types"], path, types), x, box, _f64(inherent), notes)


def _f64(x):
    return None if x is None else np.asarray(x, dtype=np.float64)


def _pickle(path: Path, types) -> Loaded:
    from .datasets import load_pickle

    try:
        d = load_pickle(path)
    except DataSetError as e:
        raise ConfigurationError(str(e)) from None
    if not isinstance(d, dict) or not {"positions", "types"} <= set(d):
        raise ConfigurationError(f"{path}: a glassy_dynamics pickle is a dict with 'positions', 'types' and 'box'")
    box = _cubic(d["box"], path) if d.get("box") is not None else None
    x = np.asarray(d["positions"], dtype=np.float64)
    return Loaded(str(path), map_species(d["types"], path, types), x, box, _f64(d.get("inherent_positions")))


def _tbotan_xyz(path: Path, types) -> Loaded | None:
    """tbotan's extended XYZ (species A/B), or None when the file is not that."""
    from ..md import xyz

    try:
        head = path.read_text().splitlines()[2:3]
    except (OSError, UnicodeDecodeError):
        return None
    if not head or head[0].split()[0] not in ("A", "B"):
        return None
    conf, columns = xyz.read_columns(path)
    labels = np.array(xyz.SPECIES)[conf.types]
    return Loaded(str(path), map_species(labels, path, types), conf.positions, conf.box, columns.get("inherent"))


def _ase(path: Path, types) -> Loaded:
    import ase.io

    suffix = path.suffix.lower()
    options = {}
    if suffix in LAMMPS_DUMP:
        options = {"format": "lammps-dump-text", "index": -1}
    elif suffix in LAMMPS_DATA:
        options = {"format": "lammps-data", "atom_style": "atomic"}
    try:
        atoms = ase.io.read(path, **options)
    except Exception as e:  # noqa: BLE001 - ASE raises many kinds; each is this file's
        raise ConfigurationError(f"{path}: ASE cannot read it ({type(e).__name__}: {e})") from None
    if isinstance(atoms, list):
        atoms = atoms[-1]
    labels = atoms.arrays["type"] if "type" in atoms.arrays else atoms.numbers
    if types and not all(str(v) in types for v in set(np.asarray(labels).tolist())):
        symbols = np.array(atoms.get_chemical_symbols())
        if all(s in types for s in set(symbols.tolist())):
            labels = symbols
    box = _cubic(atoms.cell.array, path)  # a Lattice is taken as periodic, as the model's boxes are
    inherent = atoms.arrays.get("inherent")
    return Loaded(str(path), map_species(labels, path, types), atoms.positions.copy(), box, _f64(inherent))


def read_configuration(path, types: dict[str, str] | None = None) -> Loaded:
    """The configuration in ``path`` (module doc for the formats); species through ``types`` where given."""
    path = Path(path)
    if not path.is_file():
        raise ConfigurationError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix in NPZ:
        return _npz(path, types)
    if suffix in PICKLE:
        return _pickle(path, types)
    if suffix in (".xyz", ".extxyz"):
        conf = _tbotan_xyz(path, types)
        if conf is not None:
            return conf
    return _ase(path, types)


def check_configuration(conf: Loaded, density: float) -> list[str]:
    """What stops a prediction (a ConfigurationError naming the file and the cause) and what only weakens it (the
    returned warnings): a missing or too small box, NaN or duplicate positions; a composition far from 80:20, a
    density more than 1 % off the model's."""
    path, x, n = conf.source, conf.positions, len(conf.types)
    if conf.box is None:
        raise ConfigurationError(f"{path}: no periodic box in the file (the model needs a cubic periodic box)")
    if conf.box <= 2 * core.CUTOFF_AA:
        raise ConfigurationError(
            f"{path}: box {conf.box:g} is shorter than twice the A-A cutoff ({2 * core.CUTOFF_AA})"
        )
    if x.shape != (n, 3) or n < 2:
        raise ConfigurationError(f"{path}: positions of shape {x.shape} for {n} particles")
    for name, a in (("positions", x), ("inherent-structure positions", conf.inherent)):
        if a is None:
            continue
        if a.shape != x.shape:
            raise ConfigurationError(f"{path}: {name} of shape {a.shape}, the configuration has {x.shape}")
        bad = np.flatnonzero(~np.isfinite(a).all(axis=1))
        if len(bad):
            raise ConfigurationError(f"{path}: NaN or infinite {name} for {len(bad)} particles (first: {bad[0]})")
    from scipy.spatial import cKDTree

    wrapped = core.wrap(x, conf.box) % conf.box  # cKDTree wants [0, L) strictly
    pairs = cKDTree(wrapped, boxsize=conf.box).query_pairs(DUPLICATE, output_type="ndarray")
    if len(pairs):
        i, j = sorted(pairs[0])
        raise ConfigurationError(
            f"{path}: duplicate positions: particles {i} and {j} (and {len(pairs) - 1} more pairs)"
        )
    warnings = list(conf.notes)
    share = float(np.mean(conf.types == 0))
    if abs(share - COMPOSITION) > COMPOSITION_TOLERANCE:
        warnings.append(
            f"{path}: composition A:B = {100 * share:.0f}:{100 * (1 - share):.0f}, far from the model's 80:20"
        )
    rho = n / conf.box**3
    if abs(rho / density - 1) > DENSITY_TOLERANCE:
        warnings.append(
            f"{path}: density {rho:.4g}, {100 * (rho / density - 1):+.1f} % off the model's {density:g} "
            "(the model was trained at its density)"
        )
    return warnings

"""Extended XYZ configurations (the format OVITO and ASE read), read by ASE and written with 17 significant digits.

4096
Lattice="15.06 0 0 0 15.06 0 0 0 15.06" Properties=species:S:1:pos:R:3 pbc="T T T"
A 0.12345678901234567 ...

The species are the Kob–Andersen labels A (type 0) and B (type 1); the box must be cubic. ``read`` parses with
``ase.io.read(format="extxyz")``: A is no chemical element, so its ``properties_parser`` hook renames the species
column to a plain string column (``ka_species``) that ASE keeps as an array beside the positions.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ConfigurationError

SPECIES = ("A", "B")
_COLUMN = "ka_species"  # the species column's name while ASE parses (A and B are not elements)
_PROPERTIES = "species:s:1:pos:r:3"


@dataclass
class Configuration:
    types: np.ndarray  # (N,) int8, 0 = A, 1 = B
    positions: np.ndarray  # (N, 3) float64
    box: float


def _comment_parser(line: str) -> dict:
    """ASE's comment-line parser, with the species column renamed so that A / B stay strings; no Properties
    means the default ``species:S:1:pos:R:3``. The original Properties is kept under ``_tbotan_properties``."""
    from ase.io.extxyz import key_val_str_to_dict

    info = key_val_str_to_dict(line)
    props = str(info.get("Properties", "species:S:1:pos:R:3"))
    info["_tbotan_properties"] = props
    if props.lower().startswith(_PROPERTIES):
        info["Properties"] = _COLUMN + props[len("species") :]
    return info


def read(path: str | Path) -> Configuration:
    """The configuration in the extended XYZ file ``path`` (its first frame); ConfigurationError naming the file
    and the cause for anything that is not N particles A / B in a cubic periodic box."""
    from ase.io import read as ase_read

    path = Path(path)

    def fail(why):
        raise ConfigurationError(f"{path}: {why}")

    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as e:
        fail(f"cannot read: {e}")
    if len(lines) < 2:
        fail("not an extended XYZ file (needs a count line and a comment line)")
    try:
        n = int(lines[0].split()[0])
    except (ValueError, IndexError):
        fail(f"first line must be the particle count, got {lines[0]!r}")
    if n <= 0:
        fail(f"particle count must be positive, got {n}")
    body = [line for line in lines[2 : 2 + n] if line.strip()]
    if len(body) < n:
        fail(f"expected {n} particle lines, found {len(body)}")
    try:
        info = _comment_parser(lines[1])
    except Exception as e:  # noqa: BLE001 - ASE's parser raises several kinds
        fail(f"unreadable comment line {lines[1]!r} ({type(e).__name__}: {e})")
    if "Lattice" not in info:
        fail('no Lattice="L 0 0 0 L 0 0 0 L" on the comment line')
    props = info["_tbotan_properties"]
    if not props.lower().startswith(_PROPERTIES):
        fail(f"Properties must start with species:S:1:pos:R:3, got {props!r}")
    try:
        atoms = ase_read(path, index=0, format="extxyz", properties_parser=_comment_parser)
    except Exception as e:  # noqa: BLE001 - ASE raises XYZError, ValueError, KeyError, ... for a malformed file
        fail(f"not a readable extended XYZ file ({type(e).__name__}: {e})")
    cell = np.asarray(atoms.cell[:], dtype=np.float64)
    box = cell[0, 0]
    if not np.isfinite(cell).all():
        fail(f"Lattice must be nine finite numbers, got {cell.ravel().tolist()}")
    if box <= 0 or not np.allclose(cell, np.eye(3) * box, rtol=1e-12, atol=0):
        fail(f'only a cubic box is supported (Lattice="L 0 0 0 L 0 0 0 L"), got {cell.ravel().tolist()}')
    labels = np.asarray(atoms.arrays[_COLUMN])
    unknown = ~np.isin(labels, SPECIES)
    if unknown.any():
        k = int(np.argmax(unknown))
        fail(f"line {k + 3}: unknown species {str(labels[k])!r} (expected A or B)")
    types = (labels == "B").astype(np.int8)
    x = np.asarray(atoms.positions, dtype=np.float64)
    if not np.isfinite(x).all():
        bad = np.nonzero(~np.isfinite(x).all(1))[0]
        fail(f"NaN or infinite position for {len(bad)} particles (first: particle {bad[0]}, line {bad[0] + 3})")
    return Configuration(types, x, float(box))


def write(path: str | Path, types: np.ndarray, positions: np.ndarray, box: float, comment: str = "") -> None:
    """Write an extended XYZ file with 17 significant digits, so that a double-precision configuration (an inherent
    structure of mean force 1e-12) reads back bit for bit. Hand-written because ``ase.io.write(format="extxyz")``
    (ASE 3.29) prints positions with a fixed ``%16.8f``: 8 decimals, which moves a minimum off its minimum."""
    n = len(types)
    out = [
        str(n),
        f'Lattice="{box!r} 0 0 0 {box!r} 0 0 0 {box!r}" Properties=species:S:1:pos:R:3 pbc="T T T" {comment}'.rstrip(),
    ]
    for t, (a, b, c) in zip(types, np.asarray(positions, dtype=np.float64)):
        out.append(f"{SPECIES[int(t)]} {a:.17g} {b:.17g} {c:.17g}")
    Path(path).write_text("\n".join(out) + "\n")


# ---------------------------------------------------------------- extra per-particle columns (tbotan predict)

Z = (1, 2)  # the Z column written beside the species: ASE reads Z (A and B are not elements)


def write_columns(
    path: str | Path,
    types: np.ndarray,
    positions: np.ndarray,
    box: float,
    columns: dict[str, np.ndarray],
    comment: str = "",
) -> None:
    """``write`` with a ``Z`` column (1 = A, 2 = B, so that plain ``ase.io.read`` reads the file) and extra
    per-particle ``columns`` after it: name -> (N,) or (N, k) floats, written with 17 significant digits as
    ``name:R:1`` / ``name:R:k`` properties (OVITO and ASE read them by name)."""
    n = len(types)
    props = ["species:S:1", "pos:R:3", "Z:I:1"]
    blocks = []
    for name, values in columns.items():
        a = np.asarray(values, dtype=np.float64).reshape(n, -1)
        props.append(f"{name}:R:{a.shape[1]}")
        blocks.append(a)
    extra = np.concatenate(blocks, axis=1) if blocks else np.zeros((n, 0))
    header = f'Lattice="{box!r} 0 0 0 {box!r} 0 0 0 {box!r}" Properties={":".join(props)} pbc="T T T" {comment}'
    out = [str(n), header.rstrip()]
    for t, x, e in zip(types, np.asarray(positions, dtype=np.float64), extra):
        rest = "".join(f" {v:.17g}" for v in e)
        out.append(f"{SPECIES[int(t)]} {x[0]:.17g} {x[1]:.17g} {x[2]:.17g} {Z[int(t)]}{rest}")
    Path(path).write_text("\n".join(out) + "\n")


def read_columns(path: str | Path) -> tuple[Configuration, dict[str, np.ndarray]]:
    """``read``, plus every real-valued column other than the positions (``name:R:k``), as name -> (N,) or
    (N, k) float64 parsed from the text (all 17 digits)."""
    conf = read(path)
    lines = Path(path).read_text().splitlines()
    fields = _comment_parser(lines[1])["_tbotan_properties"].split(":")
    n = len(conf.types)
    table = [line.split() for line in lines[2:] if line.strip()][:n]
    out, col = {}, 0
    for name, kind, width in zip(fields[0::3], fields[1::3], fields[2::3]):
        width = int(width)
        if kind.upper() == "R" and name.lower() != "pos":
            try:
                a = np.array([row[col : col + width] for row in table], dtype=np.float64)
            except ValueError:
                raise ConfigurationError(f"{path}: column {name} is not {width} number(s) on every line") from None
            out[name] = a[:, 0] if width == 1 else a
        col += width
    return conf, out

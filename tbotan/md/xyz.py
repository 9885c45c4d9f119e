"""Extended XYZ configurations (the format OVITO and ASE read), with 17 significant digits.

4096
Lattice="15.06 0 0 0 15.06 0 0 0 15.06" Properties=species:S:1:pos:R:3 pbc="T T T"
A 0.12345678901234567 ...
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ConfigurationError

SPECIES = ("A", "B")


@dataclass
class Configuration:
    types: np.ndarray  # (N,) int8, 0 = A, 1 = B
    positions: np.ndarray  # (N, 3) float64
    box: float


def read(path: str | Path) -> Configuration:
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
    m = re.search(r'Lattice="([^"]*)"', lines[1])
    if not m:
        fail('no Lattice="L 0 0 0 L 0 0 0 L" on the comment line')
    try:
        cell = np.array(m.group(1).split(), dtype=np.float64)
    except ValueError:
        fail(f"Lattice is not nine numbers: {m.group(1)!r}")
    if cell.shape != (9,) or not np.isfinite(cell).all():
        fail(f"Lattice must be nine finite numbers, got {m.group(1)!r}")
    cell = cell.reshape(3, 3)
    box = cell[0, 0]
    if box <= 0 or not np.allclose(cell, np.eye(3) * box, rtol=1e-12, atol=0):
        fail(f'only a cubic box is supported (Lattice="L 0 0 0 L 0 0 0 L"), got {m.group(1)!r}')
    props = re.search(r"Properties=(\S+)", lines[1])
    if props and not props.group(1).lower().startswith("species:s:1:pos:r:3"):
        fail(f"Properties must start with species:S:1:pos:R:3, got {props.group(1)!r}")
    body = lines[2 : 2 + n]
    if len(body) < n:
        fail(f"expected {n} particle lines, found {len(body)}")
    types = np.empty(n, dtype=np.int8)
    x = np.empty((n, 3))
    for k, line in enumerate(body):
        parts = line.split()
        if len(parts) < 4:
            fail(f"line {k + 3}: expected 'species x y z', got {line!r}")
        if parts[0] not in SPECIES:
            fail(f"line {k + 3}: unknown species {parts[0]!r} (expected A or B)")
        types[k] = SPECIES.index(parts[0])
        try:
            x[k] = [float(v) for v in parts[1:4]]
        except ValueError:
            fail(f"line {k + 3}: positions are not numbers: {line!r}")
    if not np.isfinite(x).all():
        bad = np.nonzero(~np.isfinite(x).all(1))[0]
        fail(f"NaN or infinite position for {len(bad)} particles (first: particle {bad[0]}, line {bad[0] + 3})")
    return Configuration(types, x, float(box))


def write(path: str | Path, types: np.ndarray, positions: np.ndarray, box: float, comment: str = "") -> None:
    n = len(types)
    out = [
        str(n),
        f'Lattice="{box!r} 0 0 0 {box!r} 0 0 0 {box!r}" Properties=species:S:1:pos:R:3 pbc="T T T" {comment}'.rstrip(),
    ]
    for t, (a, b, c) in zip(types, np.asarray(positions, dtype=np.float64)):
        out.append(f"{SPECIES[int(t)]} {a:.17g} {b:.17g} {c:.17g}")
    Path(path).write_text("\n".join(out) + "\n")

"""Minimal LAMMPS driver for cross-checking tbotan against an independent MD code.

Writes a data file (types 0/1 -> LAMMPS types 1/2, masses 1, cubic box [0, L)^3 with image flags
so that unwrapped coordinates survive the round trip), writes input scripts for the Kob–Andersen
mixture, runs the Debian ``lmp`` binary in a directory, and reads back text dumps and thermo output.

Potentials (cutoff 2.5 sigma_ab per pair, as in tbotan.md.potential):
- ``"sf"``: ``lj/smooth/linear`` = shifted-force LJ, U = u(r) - u(rc) - (r - rc) u'(rc) (tbotan's);
- ``"ts"``: ``lj/cut`` + ``pair_modify shift yes`` = truncated-and-shifted LJ, U = u(r) - u(rc);
- ``"sf-global"``, ``"ts-global"``: the same with one cutoff 2.5 (= 2.5 sigma_AA) for every pair.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np

from tbotan import core

LMP = shutil.which("lmp") or "/usr/bin/lmp"
# (type_i, type_j, epsilon, sigma) for LAMMPS types 1 = A, 2 = B, from tbotan's one table
KA_PAIRS = tuple(
    (i + 1, j + 1, float(core.EPSILON[i + j]), float(core.SIGMA[i + j])) for i, j in ((0, 0), (0, 1), (1, 1))
)
CUTOFF_RATIO = core.CUTOFF_RATIO


def write_data(path, types, positions, box, velocities=None) -> None:
    """LAMMPS ``atomic`` data file; positions are wrapped into [0, box) and the image flags recorded."""
    x = np.asarray(positions, dtype=np.float64)
    image = np.floor(x / box).astype(np.int64)
    x = x - image * box
    x[x >= box] -= box  # guard against x/box rounding to exactly 1
    lines = [
        "KA mixture written by benchmarks/lammps_runner.py",
        "",
        f"{len(x)} atoms",
        "2 atom types",
        "",
        f"0.0 {box:.17g} xlo xhi",
        f"0.0 {box:.17g} ylo yhi",
        f"0.0 {box:.17g} zlo zhi",
        "",
        "Masses",
        "",
        "1 1.0",
        "2 1.0",
        "",
        "Atoms # atomic",
        "",
    ]
    for i, (t, r, n) in enumerate(zip(np.asarray(types), x, image), start=1):
        lines.append(f"{i} {int(t) + 1} {r[0]:.17g} {r[1]:.17g} {r[2]:.17g} {n[0]} {n[1]} {n[2]}")
    if velocities is not None:
        lines += ["", "Velocities", ""]
        for i, v in enumerate(np.asarray(velocities, dtype=np.float64), start=1):
            lines.append(f"{i} {v[0]:.17g} {v[1]:.17g} {v[2]:.17g}")
    Path(path).write_text("\n".join(lines) + "\n")


def pair_lines(potential: str = "sf") -> str:
    """``pair_style``/``pair_coeff`` lines of the KA mixture ("sf": shifted force, "ts": truncated-shifted;
    a suffix "-global" puts every pair's cutoff at 2.5 sigma_AA = 2.5 instead of 2.5 sigma_ab)."""
    potential, _, scope = potential.partition("-")
    if scope not in ("", "global"):
        raise ValueError(f"unknown cutoff scope {scope!r}")
    if potential == "sf":
        head = [f"pair_style lj/smooth/linear {CUTOFF_RATIO}"]
    elif potential == "ts":
        head = [f"pair_style lj/cut {CUTOFF_RATIO}", "pair_modify shift yes"]
    else:
        raise ValueError(f"potential must be 'sf' or 'ts', not {potential!r}")
    coeffs = [
        f"pair_coeff {i} {j} {eps} {sig} {CUTOFF_RATIO * (1.0 if scope else sig):.17g}" for i, j, eps, sig in KA_PAIRS
    ]
    # pair_modify must follow pair_style; coefficients after both
    return "\n".join(head + coeffs) + "\n"


def header(data_file: str = "start.data", potential: str = "sf", skin: float = 0.3) -> str:
    """Common start of every input script: units, box and atoms from ``data_file``, the potential."""
    return (
        "units lj\natom_style atomic\nboundary p p p\n"
        f"read_data {data_file}\n"
        + pair_lines(potential)
        + f"neighbor {skin} bin\nneigh_modify every 1 delay 0 check yes\n"
    )


def run(script: str, workdir, nprocs: int = 1, extra_args=(), timeout: float | None = None) -> str:
    """Run ``script`` with ``lmp`` in ``workdir`` (serial, or ``mpirun -np nprocs``); returns log.lammps."""
    workdir = Path(workdir)
    (workdir / "in.lammps").write_text(script)
    cmd = [LMP, "-in", "in.lammps", "-log", "log.lammps", "-screen", "none", "-nocite", *extra_args]
    if nprocs > 1:
        cmd = ["mpirun", "--allow-run-as-root", "--oversubscribe", "-np", str(nprocs), *cmd]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=timeout, env=env)
    log = (workdir / "log.lammps").read_text() if (workdir / "log.lammps").exists() else ""
    if proc.returncode != 0 or "ERROR" in log:
        tail = "\n".join((log or proc.stdout + proc.stderr).splitlines()[-20:])
        raise RuntimeError(f"lmp failed (rc={proc.returncode}) in {workdir}:\n{tail}")
    return log


def read_dump(path) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Text ``dump custom`` file -> (timesteps, {column: (frames, N) array}), rows sorted by atom id."""
    lines = Path(path).read_text().splitlines()
    steps, blocks, columns = [], [], None
    k = 0
    while k < len(lines):
        if lines[k].startswith("ITEM: TIMESTEP"):
            steps.append(int(lines[k + 1]))
            n = int(lines[k + 3])
            columns = lines[k + 8].split()[2:]
            body = np.array(" ".join(lines[k + 9 : k + 9 + n]).split(), dtype=np.float64).reshape(n, -1)
            blocks.append(body[np.argsort(body[:, columns.index("id")])])
            k += 9 + n
        else:
            k += 1
    data = np.array(blocks)
    return np.array(steps), {c: data[:, :, j] for j, c in enumerate(columns)}


def dump_positions(path, column=("xu", "yu", "zu")) -> tuple[np.ndarray, np.ndarray]:
    """(timesteps, positions (frames, N, 3)) from a dump with unwrapped coordinates."""
    steps, cols = read_dump(path)
    return steps, np.stack([cols[c] for c in column], axis=-1)


def read_thermo(log: str) -> list[dict[str, np.ndarray]]:
    """Every thermo table of a log (one per run/minimize) as {column: values}."""
    tables = []
    for block in re.findall(r"^\s*Step\s.*?(?=^Loop time)", log, flags=re.M | re.S):
        rows = block.strip().splitlines()
        names = rows[0].split()
        values = []
        for row in rows[1:]:
            parts = row.split()
            if len(parts) != len(names):
                continue  # warnings interleaved with the table
            try:
                values.append([float(p) for p in parts])
            except ValueError:
                continue
        arr = np.array(values).reshape(-1, len(names))
        tables.append({name: arr[:, j] for j, name in enumerate(names)})
    return tables


def performance(log: str) -> list[float]:
    """The ``timesteps/s`` LAMMPS reports after each run (its own timer: the run loop only)."""
    return [float(v) for v in re.findall(r"([0-9.eE+-]+) timesteps/s", log)]


def loop_times(log: str) -> list[float]:
    """Wall seconds of each run's loop ("Loop time of T on P procs ...")."""
    return [float(v) for v in re.findall(r"^Loop time of ([0-9.eE+-]+)", log, flags=re.M)]

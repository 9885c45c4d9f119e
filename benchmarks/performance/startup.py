"""Start-up cost of the physics tools: wall time of `tbotan energy FILE --json` and what it imports.

    python benchmarks/performance/startup.py [--compare DIR ...] [--repeats 15] [--out FILE] [--record]

Each checkout (this one, and every --compare DIR, e.g. an older commit made with `git worktree add DIR
<commit>`) runs `python -m tbotan energy` on the same 500-particle liquid from its own directory, the runs
interleaved so that load on the machine hits every checkout alike; the median and the quartiles of the wall
time are reported, with the heavy packages the command imported (`python -X importtime`). Prints one JSON object
(``--out FILE``: also there; ``--record``: also benchmarks/results/startup.json).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from tbotan import core
from tbotan.md import dynamics, xyz

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: record.py
from record import add_arguments, emit

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "dask", "distributed", "zarr", "openmm", "scipy", "vesin")


def _run(checkout: Path, args: list[str]) -> float:
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "tbotan", *args], cwd=checkout, capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"{checkout}: {out.stderr}")
    return time.perf_counter() - t0


def _imports(checkout: Path, args: list[str]) -> dict:
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "tbotan", *args], cwd=checkout, capture_output=True, text=True
    )
    cumulative = {}
    for line in out.stderr.splitlines():
        if line.startswith("import time:") and line.count("|") == 2:
            _, cum, name = line.split("|")
            if name.strip() in HEAVY:  # a top-level import of the package (its line is not indented)
                cumulative[name.strip()] = int(cum) / 1e6
    return cumulative


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--compare", nargs="*", default=[], help="other checkouts to measure beside this one")
    p.add_argument("--repeats", type=int, default=15)
    add_arguments(p, "startup")
    a = p.parse_args()
    checkouts = [ROOT, *[Path(d).resolve() for d in a.compare]]
    with tempfile.TemporaryDirectory() as tmp:
        types, box = core.species(500), core.box_length(500)
        x = dynamics.random_configuration(types, box, seed=0)
        conf = Path(tmp) / "liquid.xyz"
        xyz.write(conf, types, x, box)
        args = ["energy", str(conf), "--json"]
        for c in checkouts:
            _run(c, args)  # warm the file cache and the bytecode
        times = {str(c): [] for c in checkouts}
        for _ in range(a.repeats):
            for c in checkouts:
                times[str(c)].append(_run(c, args))
        rows = {}
        for c in checkouts:
            git = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=c, capture_output=True, text=True)
            t = np.array(times[str(c)])
            rows[str(c)] = {
                "commit": git.stdout.strip(),
                "median_s": float(np.median(t)),
                "quartiles_s": [float(np.quantile(t, 0.25)), float(np.quantile(t, 0.75))],
                "imports_s": _imports(c, args),
            }
    result = {
        "command_measured": "python -m tbotan energy liquid.xyz --json (N = 500)",
        "repeats": a.repeats,
        "checkouts": rows,
    }
    if len(checkouts) > 1:
        result["ratio_to_this_checkout"] = {k: v["median_s"] / rows[str(ROOT)]["median_s"] for k, v in rows.items()}
    emit("startup", result, a)


if __name__ == "__main__":
    main()

"""`tbotan import bapst` on one real file of Bapst et al. (2020)'s data: the unit's targets against the file's own
runs and ``targets``, the inherent structure's residual by double-precision forces, and the file's state point
beside BOTAN's at T = 0.44.

    python benchmarks/physics/bapst_import.py FILE.pickle [--out FILE] [--record]

FILE is one of DeepMind's glassy_dynamics pickles, e.g. their testdata/test_large.pickle (N = 4096, T = 0.44,
30 runs, one run set: ``trajectory_target_positions[0]`` at ``time[time_indices[0]]``). The file is laid into a
temporary ``test/`` folder, scanned by ``tbotan.data.datasets.scan`` and imported by the store's unit
(``importers.import_bapst``: FIRE to mean force < 1e-12, then C_B, E_jk, propensity, msd, F_s^A from the runs)
with the pipeline's default FIRE settings, on one core. Checks, each recomputed here from the file's arrays:

- propensity = <|r_j(t) - r_j(0)|>_iso of each run set, against the file's ``targets[i]``;
- F_s^A(q = 7.25) = <sin(q r) / (q r)> over the A particles and the runs, against the file's ``is_values[i]``
  (the mean over their systems, so one file scatters about it);
- C_B from the runs by an all-pairs brute force (tests/reference.py: bonds r < 1.3 sigma at t = 0 kept below
  1.6 sigma at t);
- the inherent structure's mean force by ``tbotan.md.engine.energy_and_forces`` + ``mean_force`` (double).

State point: density N / L^3, pressure P = rho T + W / 3V by ``tbotan.md.engine.pressure`` at the file's T, U/N of
``positions`` and of the inherent structure; BOTAN's files at T = 0.44 (docs/tau_alpha.md: U/N = -6.212, P = 3.92,
density 1.2) beside them. Prints one JSON object (``--record``: also benchmarks/results/bapst_import.json).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from tbotan.data import datasets, importers
from tbotan.data.spec import Fire
from tbotan.md import engine

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))  # record.py
sys.path.insert(0, str(ROOT))  # tests/reference.py: the brute-force C_B
from record import add_arguments, emit  # noqa: E402

from tests.reference import bond_breaking_brute  # noqa: E402

BOTAN_044 = {"T": 0.44, "density": 1.2, "U_per_N": -6.212, "pressure": 3.92, "source": "docs/tau_alpha.md"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("file", help="one Bapst et al. pickle")
    add_arguments(parser, "bapst_import")
    args = parser.parse_args()
    path = Path(args.file).resolve()
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "test").mkdir()
        (Path(tmp) / "test" / path.name).symlink_to(path)
        catalogue = datasets.scan("bapst", tmp)
        (T,) = catalogue.configurations
        (conf,) = catalogue.configurations[T]
        d = datasets.read_bapst(path)
        start = time.perf_counter()
        r = importers.import_bapst(
            [str(conf.files[0])], catalogue.N, catalogue.box, Fire().parameters(), "bapst", "float64",
            catalogue.time_indices, T,
        )  # fmt: skip
        wall = time.perf_counter() - start
    n, box, types, x0 = catalogue.N, catalogue.box, d["types"], d["positions"]
    runs = []
    for k, i in enumerate(catalogue.time_indices):
        frames = d["trajectory_target_positions"][i]  # (K, N, 3)
        disp = np.linalg.norm(frames - x0, axis=-1)
        a = disp[:, types == 0]
        fs = float(np.mean(np.sin(7.25 * a) / (7.25 * a)))
        cb = bond_breaking_brute(types, x0, list(frames), box)
        runs.append(
            {
                "run_set": i,
                "time": float(d["time"][d["time_indices"][i]]),
                "is_value": float(d["is_values"][i]),
                "propensity_vs_file_targets_max_abs": float(np.abs(r["propensity"][k] - d["targets"][i]).max()),
                "propensity_vs_runs_max_abs": float(np.abs(r["propensity"][k] - disp.mean(0)).max()),
                "fs_A": float(r["fs_A"][k]),
                "fs_A_from_runs": fs,
                "cb_vs_brute_force_max_abs": float(np.abs(r["cb"][k] - cb).max()),
                "cb_mean": float(r["cb"][k].mean()),
                "propensity_mean": float(r["propensity"][k].mean()),
            }
        )
    e_is, f_is = engine.energy_and_forces(types, r["inherent"], box)
    result = {
        "file": str(path),
        "N": n,
        "K": catalogue.replicas,
        "T": T,
        "metadata": {k: (v if isinstance(v, (str, int, float)) else str(v)) for k, v in d["metadata"].items()},
        "box": box,
        "run_sets": runs,
        "fire_steps": int(r["fire_steps"]),
        "fire_residual_unit": float(r["fire_residual"]),
        "inherent_mean_force_double": float(engine.mean_force(f_is)),
        "unit_wall_s": wall,
        "unit_times_s": r["unit_times"],
        "state_point": {
            "density": n / box**3,
            "pressure": float(r["pressure_thermal"]),
            "pressure_metadata": d["metadata"].get("pressure"),
            "U_per_N": float(r["energy_thermal"]),
            "U_per_N_inherent": float(e_is / n),
        },
        "botan_T044": BOTAN_044,
    }
    emit("bapst_import", result, args)


if __name__ == "__main__":
    main()

"""Energy, forces and virial pressure of one KA configuration: tbotan (OpenMM, double) vs LAMMPS lj/smooth/linear.

    python benchmarks/physics/lammps_energy.py [--N 1000] [--temperature 0.8] [--seed 7] [--out FILE] [--record]

The configuration: tbotan.md.dynamics.random_configuration + a short Langevin equilibration. LAMMPS
evaluates it with ``run 0``, energy from thermo (17 digits), forces from a dump (``%.17g``), and the pressure
with zero velocities, i.e. its virial part, against tbotan.md.engine.pressure at T = 0. Prints one JSON object
(``--out FILE``: also there; ``--record``: also benchmarks/results/lammps_energy.json).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from tbotan import core
from tbotan.md import dynamics, engine

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: record.py, lammps_runner.py
import lammps_runner
from record import add_arguments, emit


def lammps_energy_forces(types, positions, box, potential="sf"):
    with tempfile.TemporaryDirectory(prefix="ka_energy_") as tmp:
        lammps_runner.write_data(f"{tmp}/start.data", types, positions, box)
        script = (
            lammps_runner.header("start.data", potential)
            + "thermo_style custom step pe press\nthermo_modify norm no format float %.17g\n"
            + "dump f all custom 1 forces.dump id type xu yu zu fx fy fz\n"
            + "dump_modify f sort id format float %.17g\n"
            + "run 0\n"
        )
        log = lammps_runner.run(script, tmp)
        thermo = lammps_runner.read_thermo(log)[-1]
        energy, virial_pressure = float(thermo["PotEng"][-1]), float(thermo["Press"][-1])  # no velocities: virial
        _, cols = lammps_runner.read_dump(f"{tmp}/forces.dump")
        forces = np.stack([cols["fx"][0], cols["fy"][0], cols["fz"][0]], axis=-1)
        unwrapped = np.stack([cols["xu"][0], cols["yu"][0], cols["zu"][0]], axis=-1)
    return energy, forces, unwrapped, virial_pressure


def compare(e_ref, f_ref, e, f):
    df = np.linalg.norm(f - f_ref, axis=1)
    fn = np.linalg.norm(f_ref, axis=1)
    return {
        "energy_per_particle": e / len(f),
        "relative_energy_difference": abs(e - e_ref) / abs(e_ref),
        "max_relative_force_difference": float(np.max(df / fn)),  # max_i |dF_i| / |F_i|
        "max_force_difference_over_rms_force": float(df.max() / np.sqrt(np.mean(fn**2))),
    }


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--N", type=int, default=1000)
    p.add_argument("--temperature", type=float, default=0.8)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--equilibration", type=float, default=10.0, help="Langevin NVT time (reduced units)")
    add_arguments(p, "lammps_energy")
    a = p.parse_args()

    types, box = core.species(a.N), core.box_length(a.N)
    t0 = time.perf_counter()
    x = dynamics.random_configuration(types, box, a.seed)
    x = dynamics.equilibrate(types, x, box, a.temperature, a.equilibration, seed=a.seed).positions
    t_eq = time.perf_counter() - t0

    e_omm, f_omm = engine.energy_and_forces(types, x, box)  # Reference platform, double
    e_lmp, f_lmp, x_lmp, p_lmp = lammps_energy_forces(types, x, box, "sf")
    e_ts, f_ts, _, _ = lammps_energy_forces(types, x, box, "ts")  # for scale: a different potential
    p_omm = engine.pressure(types, x, box, 0.0)  # the virial part
    result = {
        "N": a.N,
        "temperature": a.temperature,
        "seed": a.seed,
        "equilibration_time": a.equilibration,
        "equilibration_wall_s": t_eq,
        "openmm_platform": engine.choose_platform("double").describe(),
        "openmm_energy_per_particle": e_omm / a.N,
        "lammps_sf": compare(e_omm, f_omm, e_lmp, f_lmp),
        "positions_round_trip_max_abs": float(np.abs(x_lmp - x).max()),
        "lammps_ts_for_scale": compare(e_omm, f_omm, e_ts, f_ts),
        "virial_pressure": {"openmm": p_omm, "lammps": p_lmp, "relative_difference": abs(p_omm - p_lmp) / abs(p_lmp)},
        "pressure_at_temperature": p_omm + a.N / box**3 * a.temperature,  # + rho T
        "lammps_pair_style": "lj/smooth/linear 2.5, pair_coeff cutoffs 2.5 sigma_ab",
    }
    try:  # the tests' independent NumPy reference, if it is importable (read-only use)
        sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository root: tests is a package
        from tests import reference

        e_np, f_np = reference.energy_forces(types, x, box)
        result["numpy_reference"] = compare(e_omm, f_omm, e_np, f_np)
        result["lammps_vs_numpy_reference"] = compare(e_np, f_np, e_lmp, f_lmp)
    except Exception as exc:  # noqa: BLE001 - optional third opinion
        result["numpy_reference"] = f"not available: {exc!r}"
    emit("lammps_energy", result, a)


if __name__ == "__main__":
    main()

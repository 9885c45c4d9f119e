"""NVE throughput of the KA mixture: OpenMM CPU platform (as tbotan sets it up) vs LAMMPS, same system.

    python benchmarks/performance/md_throughput.py [--sizes 1000,4096] [--tag run1] [--skip-split] [--out FILE]
                                                   [--record]

For each N: one liquid configuration (random start + short Langevin NVT at T=0.8), Maxwell-Boltzmann
velocities at T=0.8, velocity Verlet with dt=0.005 for the same number of steps in every engine, after a
warm-up that is not timed. Engines/variants (OpenMM: tbotan.md.potential.make_system on the CPU platform):
  openmm_default          choose_platform('mixed', 'CPU') as tbotan uses it (DeterministicForces, 1 thread)
  openmm_{det,nondet}_1thread / _2threads   DeterministicForces true/false at Threads = 1 and 2
  openmm_split3_1thread   alternative potential layout: three CustomNonbondedForces (AA, AB, BB) with
                          interaction groups, own cutoffs (2.5, 2.0, 2.2), constant eps/sigma; timed over
                          steps/10 (it is slow)
  lammps_serial           lmp, lj/smooth/linear, neighbor 0.3 bin, every 1 check yes
  lammps_mpi2             mpirun -np 2 lmp (Debian's lammps has OpenMPI but no OPENMP package: no -sf omp)
LAMMPS times are its own "Loop time" of the timed run (the warm-up is a separate run command). Prints one JSON
object (``--out FILE``: also there; ``--record``: also benchmarks/results/md_throughput[_<tag>].json).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import openmm

from tbotan import core
from tbotan.md import dynamics, engine, potential

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: record.py, lammps_runner.py
import lammps_runner
from record import add_arguments, emit

DT = 0.005
T = 0.8


def split_system(types: np.ndarray, box: float) -> openmm.System:
    """The same potential.make_system, as three forces restricted by interaction groups."""
    system = openmm.System()
    system.setDefaultPeriodicBoxVectors(openmm.Vec3(box, 0, 0), openmm.Vec3(0, box, 0), openmm.Vec3(0, 0, box))
    for _ in types:
        system.addParticle(1.0)
    a = [int(i) for i in np.nonzero(types == 0)[0]]
    b = [int(i) for i in np.nonzero(types == 1)[0]]
    for s, (g1, g2) in enumerate(((a, a), (a, b), (b, b))):
        eps, sig = float(core.EPSILON[s]), float(core.SIGMA[s])
        rc = core.CUTOFF_RATIO * sig
        expr = (
            f"4*{eps!r}*(x^2 - x) - {float(eps * potential.U_RC)!r} - "
            f"(r - {rc!r})*{float(eps / sig * potential.DU_RC)!r};"
            f"x = ({sig!r}/r)^6"
        )
        f = openmm.CustomNonbondedForce(expr)
        f.setNonbondedMethod(openmm.CustomNonbondedForce.CutoffPeriodic)
        f.setCutoffDistance(rc)
        f.setUseSwitchingFunction(False)
        f.setUseLongRangeCorrection(False)
        for _ in types:
            f.addParticle([])
        f.addInteractionGroup(g1, g2)
        system.addForce(f)
    return system


def openmm_rate(system, choice, x, v, steps, warmup):
    integrator = openmm.VerletIntegrator(DT)
    context = engine.make_context(system, integrator, choice, x, v)
    e0 = context.getState(getEnergy=True).getPotentialEnergy().value_in_unit(openmm.unit.kilojoule_per_mole)
    integrator.step(warmup)
    context.getState(getPositions=True)
    t0 = time.perf_counter()
    integrator.step(steps)
    context.getState(getPositions=True)  # synchronise
    wall = time.perf_counter() - t0
    return {
        "steps": steps,
        "wall_s": wall,
        "steps_per_s": steps / wall,
        "initial_potential_energy": e0,
        "platform": choice.describe(),
        "threads": context.getPlatform().getPropertyValue(context, "Threads"),
    }


def lammps_rate(types, x, v, box, steps, warmup, nprocs):
    with tempfile.TemporaryDirectory(prefix="ka_speed_") as tmp:
        lammps_runner.write_data(f"{tmp}/start.data", types, x, box, velocities=v)
        script = (
            lammps_runner.header("start.data", "sf")
            + f"timestep {DT}\nfix 1 all nve\n"
            + f"thermo {steps}\nrun {warmup}\nrun {steps}\n"
        )
        t0 = time.perf_counter()
        log = lammps_runner.run(script, tmp, nprocs=nprocs)
        total = time.perf_counter() - t0
    loop = lammps_runner.loop_times(log)[-1]
    return {
        "steps": steps,
        "wall_s": loop,
        "steps_per_s": steps / loop,
        "process_wall_s": total,
        "nprocs": nprocs,
        "lammps_reported_timesteps_per_s": lammps_runner.performance(log)[-1],
    }


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="1000,4096")
    p.add_argument("--steps", default="", help="comma list per size (default 4000 for N<=1000, else 1000)")
    p.add_argument("--warmup", type=int, default=200)
    p.add_argument("--tag", default="", help="suffix of the results file name")
    p.add_argument("--skip-split", action="store_true", help="leave out the (slow) three-force variant")
    add_arguments(p, "md_throughput[_<tag>]")
    a = p.parse_args()
    sizes = [int(s) for s in a.sizes.split(",")]
    steps_list = [int(s) for s in a.steps.split(",")] if a.steps else [4000 if n <= 1000 else 1000 for n in sizes]

    result = {
        "dt": DT,
        "temperature": T,
        "cpu_count": os.cpu_count(),
        "warmup_steps": a.warmup,
        "load_average_start": os.getloadavg(),
        "sizes": {},
    }
    for n, steps in zip(sizes, steps_list):
        types, box = core.species(n), core.box_length(n)
        x = dynamics.random_configuration(types, box, seed=11)
        x = dynamics.equilibrate(types, x, box, T, 5.0, seed=11).positions
        v = dynamics.maxwell_boltzmann(n, T, seed=12)

        def cpu(det, threads=None):
            return engine.choose_platform("mixed", "CPU", threads=threads, deterministic=det)

        system = potential.make_system(types, box)
        rows = {
            "openmm_default": openmm_rate(system, cpu(True), x, v, steps, a.warmup),
            "openmm_det_1thread": openmm_rate(system, cpu(True, 1), x, v, steps, a.warmup),
            "openmm_nondet_1thread": openmm_rate(system, cpu(False, 1), x, v, steps, a.warmup),
            "openmm_det_2threads": openmm_rate(system, cpu(True, 2), x, v, steps, a.warmup),
            "openmm_nondet_2threads": openmm_rate(system, cpu(False, 2), x, v, steps, a.warmup),
        }
        if not a.skip_split:
            rows["openmm_split3_1thread"] = openmm_rate(
                split_system(types, box), cpu(True, 1), x, v, max(50, steps // 10), a.warmup // 4
            )
        rows["lammps_serial"] = lammps_rate(types, x, v, box, steps, a.warmup, 1)
        rows["lammps_mpi2"] = lammps_rate(types, x, v, box, steps, a.warmup, 2)
        for r in rows.values():
            r["particle_steps_per_s"] = r["steps_per_s"] * n
        sps = {k: r["steps_per_s"] for k, r in rows.items()}
        entry = {
            "N": n,
            "steps": steps,
            "engines": rows,
            "ratio_openmm_default_over_lammps_serial": sps["openmm_default"] / sps["lammps_serial"],
            "ratio_openmm_best2threads_over_lammps_mpi2": max(sps["openmm_det_2threads"], sps["openmm_nondet_2threads"])
            / sps["lammps_mpi2"],
            "nondet_over_det_1thread": sps["openmm_nondet_1thread"] / sps["openmm_det_1thread"],
            "nondet_over_det_2threads": sps["openmm_nondet_2threads"] / sps["openmm_det_2threads"],
            "two_threads_over_one_det": sps["openmm_det_2threads"] / sps["openmm_det_1thread"],
        }
        if "openmm_split3_1thread" in rows:
            e_ref = rows["openmm_default"]["initial_potential_energy"]
            entry["split3_over_det_1thread"] = sps["openmm_split3_1thread"] / sps["openmm_det_1thread"]
            entry["split3_energy_relative_difference"] = abs(
                rows["openmm_split3_1thread"]["initial_potential_energy"] - e_ref
            ) / abs(e_ref)
        result["sizes"][str(n)] = entry
    result["load_average_end"] = os.getloadavg()
    emit("md_throughput" + (f"_{a.tag}" if a.tag else ""), result, a)


if __name__ == "__main__":
    main()

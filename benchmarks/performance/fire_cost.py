"""Where a FIRE quench's time goes, on one CPU thread at N = 500 (docs/quickstart.md, "Time").

    python benchmarks/performance/fire_cost.py [--N 500] [--steps 300] [--record | --name NAME]

One quench of a liquid at T = 0.8 as the pipeline runs it (the CPU platform in mixed precision to the hand-off,
then Reference in double to the tolerance), with the steps of each stage and its wall time; then FIRE steps per
second on each of the two platforms from the inherent structure it found. The stage's share of the quench is its
steps over that rate. Prints one JSON object (``--out FILE``: also there; ``--record``: also
benchmarks/results/fire_cost.json).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import openmm

from tbotan import core
from tbotan.md import engine, fire, potential

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: record.py
from record import add_arguments, emit


def liquid(types: np.ndarray, box: float, temperature: float = 0.8) -> np.ndarray:
    """Positions after 2000 Verlet steps from a relaxed cubic lattice (CPU platform, one thread)."""
    n = int(np.ceil(len(types) ** (1 / 3)))
    lattice = (np.indices((n, n, n)).reshape(3, -1).T[: len(types)] + 0.5) * box / n
    integrator = openmm.VerletIntegrator(0.005)
    context = openmm.Context(
        potential.make_system(types, box), integrator, openmm.Platform.getPlatformByName("CPU"), {"Threads": "1"}
    )
    context.setPositions(lattice)
    openmm.LocalEnergyMinimizer.minimize(context, 1e-3, 200)
    context.setVelocitiesToTemperature(potential.temperature_kelvin(temperature), 1)
    integrator.step(2000)
    return context.getState(getPositions=True).getPositions(asNumpy=True)._value


def fire_cost(types: np.ndarray, box: float, x: np.ndarray, steps: int) -> dict:
    params = fire.FireParameters()
    t0 = time.perf_counter()
    quench = fire.quench(types, x, box, params, platform="CPU")
    out = {"quench_stages": quench.platform, "quench_s": time.perf_counter() - t0}
    out |= {"quench_mean_force": quench.mean_force, "handoff": params.handoff, "tolerance": params.tolerance}
    system, rates = potential.make_system(types, box), {}
    for choice in (engine.choose_platform("mixed", name="CPU"), engine.choose_platform("double")):
        integrator = fire.fire_integrator(params)
        context = engine.make_context(system, integrator, choice, quench.positions, np.zeros_like(x))
        integrator.step(10)
        t0 = time.perf_counter()
        integrator.step(steps)
        rates[choice.describe()] = steps / (time.perf_counter() - t0)
        del context
    return {**out, "fire_steps_per_s": rates}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--N", type=int, default=500)
    p.add_argument("--steps", type=int, default=300, help="FIRE steps per rate measurement")
    add_arguments(p, "fire_cost")
    a = p.parse_args()
    types, box = core.species(a.N), core.box_length(a.N)
    emit("fire_cost", {"N": a.N, "threads": 1, **fire_cost(types, box, liquid(types, box), a.steps)}, a)


if __name__ == "__main__":
    main()

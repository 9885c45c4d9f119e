"""OpenMM platforms and contexts: which platform runs what, at which precision.

Two precisions are asked for:
- ``"mixed"`` for molecular dynamics: CUDA (mixed) on a GPU, else the CPU platform (single-precision
  forces, which is what MD needs and is fast);
- ``"double"`` for energies, forces and the end of the FIRE quench: CUDA with Precision=double on a GPU,
  else the Reference platform (double precision, ~6x slower than CPU).

The CPU platform has no Precision property: its forces carry single-precision error (measured in
docs/physics.md), so it never serves a ``"double"`` request.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import openmm
from openmm import unit

from ..errors import BlowUp, PlatformError
from . import potential


@contextmanager
def blowup_guard(what: str):
    """Turn OpenMM's NaN exceptions inside the block into a BlowUp naming ``what``."""
    try:
        yield
    except openmm.OpenMMException as e:
        if "nan" in str(e).lower():
            raise BlowUp(f"{what}: {e} (a blow-up: time step too large or overlapping particles)") from None
        raise


@dataclass(frozen=True)
class PlatformChoice:
    name: str
    properties: dict

    def describe(self) -> str:
        extra = ",".join(f"{k}={v}" for k, v in sorted(self.properties.items()))
        return f"{self.name}({extra})" if extra else self.name


def available_platforms() -> list[str]:
    return [openmm.Platform.getPlatform(i).getName() for i in range(openmm.Platform.getNumPlatforms())]


def choose_platform(
    precision: str = "mixed", name: str | None = None, threads: int | None = None, deterministic: bool = True
) -> PlatformChoice:
    """The platform for ``precision`` ("mixed" or "double"); ``name`` forces one ("CPU", "CUDA", ...).

    ``threads`` sets the CPU platform's thread count (default: OPENMM_CPU_THREADS, else one thread when
    ``deterministic``, else all cores). ``deterministic`` (default) asks for bit-identical re-runs:
    DeterministicForces on and, on the CPU, one thread (several threads are not bit-identical even
    with DeterministicForces).
    """
    if precision not in ("mixed", "double"):
        raise PlatformError(f"precision must be 'mixed' or 'double', not {precision!r}")
    have = available_platforms()
    if name is None:
        if "CUDA" in have:
            name = "CUDA"
        elif precision == "double":
            name = "Reference"
        else:
            name = "CPU"
    if name not in have:
        raise PlatformError(f"OpenMM platform {name!r} is not available here (have: {', '.join(have)})")
    props: dict = {}
    if name in ("CUDA", "OpenCL"):
        props["Precision"] = precision
        if name == "CUDA":
            props["DeterministicForces"] = "true" if deterministic else "false"
    elif name == "CPU":
        if precision == "double":
            raise PlatformError("the CPU platform has no double precision: use Reference (or CUDA) for 'double'")
        # Measured here: with several threads, DeterministicForces=true still lets two runs from the
        # same state part by ~1e-5 within 200 steps; one thread per context is bit-identical.
        # Parallelism comes from running many contexts (replicas, configurations) side by side.
        threads = threads or int(os.environ.get("OPENMM_CPU_THREADS", 0)) or (1 if deterministic else None)
        if threads:
            props["Threads"] = str(threads)
        props["DeterministicForces"] = "true" if deterministic else "false"
    return PlatformChoice(name, props)


def make_context(
    system: openmm.System,
    integrator: openmm.Integrator,
    choice: PlatformChoice,
    positions: np.ndarray,
    velocities: np.ndarray | None = None,
) -> openmm.Context:
    platform = openmm.Platform.getPlatformByName(choice.name)
    context = openmm.Context(system, integrator, platform, dict(choice.properties))
    context.setPositions(np.ascontiguousarray(positions, dtype=np.float64))
    if velocities is not None:
        context.setVelocities(np.ascontiguousarray(velocities, dtype=np.float64))
    return context


def read_state(context: openmm.Context, positions=True, velocities=False, forces=False, energy=False) -> dict:
    """Plain NumPy arrays (reduced units) of what is asked; positions are not wrapped (continuous).
    OpenMM's nm, ps, kJ/mol are sigma_AA, tau_LJ, eps_AA (``tbotan.md.potential``), so each is read in those."""
    state = context.getState(getPositions=positions, getVelocities=velocities, getForces=forces, getEnergy=energy)
    out = {}
    if positions:
        out["positions"] = state.getPositions(asNumpy=True).value_in_unit(unit.nanometer)
    if velocities:
        out["velocities"] = state.getVelocities(asNumpy=True).value_in_unit(unit.nanometer / unit.picosecond)
    if forces:
        out["forces"] = state.getForces(asNumpy=True).value_in_unit(unit.kilojoule_per_mole / unit.nanometer)
    if energy:
        out["potential_energy"] = state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)
        out["kinetic_energy"] = state.getKineticEnergy().value_in_unit(unit.kilojoule_per_mole)
    return out


def energy_and_forces(
    types: np.ndarray, positions: np.ndarray, box: float, choice: PlatformChoice | None = None
) -> tuple[float, np.ndarray]:
    """Total potential energy and forces (N, 3) of a configuration, in double precision by default."""
    choice = choice or choose_platform("double")
    context = make_context(potential.make_system(types, box), openmm.VerletIntegrator(0.001), choice, positions)
    s = read_state(context, positions=False, forces=True, energy=True)
    return s["potential_energy"], s["forces"]


def pressure(
    types: np.ndarray, positions: np.ndarray, box: float, temperature: float, choice: PlatformChoice | None = None
) -> float:
    """The pressure rho T - dU/dV of a configuration at ``temperature`` (reduced units), with the virial part from
    the energies of the configuration scaled affinely by 1 +- 1e-6 (a central difference; OpenMM has no virial).
    For a pair potential this is rho T + sum_ij r_ij . f_ij / (3V), LAMMPS' `compute pressure` with that T."""
    x = np.asarray(positions, dtype=np.float64)
    h = 1e-6
    up, _ = energy_and_forces(types, x * (1 + h), box * (1 + h), choice)
    down, _ = energy_and_forces(types, x * (1 - h), box * (1 - h), choice)
    volume = box**3
    return len(x) / volume * temperature - (up - down) / (volume * ((1 + h) ** 3 - (1 - h) ** 3))


def md_context(
    types,
    box: float,
    integrator: openmm.Integrator,
    positions,
    velocities=None,
    platform: str | None = None,
    remove_cm_motion: bool = False,
) -> openmm.Context:
    """A context of the KA system for dynamics: mixed precision on ``platform`` (default: CUDA if present, else CPU).
    ``remove_cm_motion`` adds a CMMotionRemover (a thermostat then counts 3N - 3 degrees of freedom)."""
    system = potential.make_system(types, box)
    if remove_cm_motion:
        system.addForce(openmm.CMMotionRemover(1000))
    return make_context(system, integrator, choose_platform("mixed", name=platform), positions, velocities)


def mean_force(forces: np.ndarray) -> float:
    """Mean force magnitude per particle, the FIRE convergence measure of SPEC §2.2."""
    return float(np.linalg.norm(forces, axis=1).mean())

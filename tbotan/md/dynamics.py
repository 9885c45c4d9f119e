"""Molecular dynamics: initial states, NVT equilibration, and iso-configurational NVE runs.

Choice of dynamics (docs/physics.md says why):
- equilibration samples the canonical ensemble with a Langevin thermostat (LangevinMiddleIntegrator,
  friction ``friction`` per tau_LJ): robust from any start, and only the configurations it produces
  are used, not its dynamics;
- every run whose dynamics is measured (iso-configurational replicas, the tau_alpha trajectory) is
  Newtonian NVE (velocity Verlet), started from Maxwell–Boltzmann velocities drawn from a recorded
  seed. The initial velocities are then the only randomness: the same seed gives the same trajectory
  (bit-identical on the CPU platform with DeterministicForces, the default here).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import openmm

from . import engine, potential

BlowUp = engine.BlowUp


def random_configuration(types: np.ndarray, box: float, seed: int, platform: str | None = None) -> np.ndarray:
    """Uniformly random positions relaxed by OpenMM's minimiser until no pair overlaps (a start for equilibration)."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.0, box, size=(len(types), 3))
    context = engine.md_context(types, box, openmm.VerletIntegrator(0.001), x, platform=platform)
    openmm.LocalEnergyMinimizer.minimize(context, 10.0, 2000)
    return engine.read_state(context)["positions"]


def maxwell_boltzmann(n: int, temperature: float, seed: int) -> np.ndarray:
    """Velocities (m = 1) drawn at ``temperature``, total momentum removed, then rescaled so the
    kinetic temperature with 3N - 3 degrees of freedom is exactly ``temperature``."""
    rng = np.random.default_rng(seed)
    v = rng.normal(0.0, np.sqrt(temperature), size=(n, 3))
    v -= v.mean(axis=0)
    return v * np.sqrt(temperature / kinetic_temperature(v))


def kinetic_temperature(velocities: np.ndarray) -> float:
    """2 K / (3N - 3), m = 1, k_B = 1: the temperature of a zero-momentum state."""
    v = np.asarray(velocities)
    return float(np.sum(v * v) / (3 * len(v) - 3))


def derive_seeds(*key: int, count: int = 1) -> np.ndarray:
    """``count`` independent non-negative 63-bit seeds for the unit identified by the integers ``key``
    (numpy SeedSequence): the one way every seed of a run is derived from the spec's seed."""
    state = np.random.SeedSequence([int(k) for k in key]).generate_state(count, dtype=np.uint64)
    return (state >> np.uint64(1)).astype(np.int64)


def replica_seeds(seed: int, count: int) -> np.ndarray:
    """``count`` independent seeds derived from one ``seed``."""
    return derive_seeds(seed, count=count)


def _check(s: dict, what: str) -> None:
    if not np.isfinite(s["positions"]).all() or not np.isfinite(s.get("potential_energy", 0.0)):
        raise BlowUp(
            f"{what}: non-finite energy or positions (a blow-up: time step too large or overlapping particles)"
        )


@dataclass
class Equilibrated:
    positions: np.ndarray  # (N, 3) continuous (unwrapped) positions at the end
    velocities: np.ndarray
    times: np.ndarray  # sampling times of the energy trace
    potential_energy: np.ndarray  # per particle, along the run


def equilibrate(
    types,
    positions,
    box,
    temperature,
    duration,
    dt=0.005,
    seed=0,
    friction=1.0,
    samples=100,
    platform: str | None = None,
    velocities=None,
) -> Equilibrated:
    """NVT (Langevin) run of ``duration`` reduced time units; returns the end state and an energy trace."""
    n_steps = int(round(duration / dt))
    integrator = openmm.LangevinMiddleIntegrator(potential.temperature_kelvin(temperature), friction, dt)
    integrator.setRandomNumberSeed(int(seed) % (2**31 - 1) + 1)  # 0 would mean "pick one at random"
    if velocities is None:
        velocities = maxwell_boltzmann(len(types), temperature, seed)
    context = engine.md_context(types, box, integrator, positions, velocities, platform=platform)
    chunk = max(1, n_steps // samples)
    times, energies, done = [], [], 0
    while done < n_steps:
        k = min(chunk, n_steps - done)
        with engine.blowup_guard(f"equilibration at T={temperature}"):
            integrator.step(k)
        done += k
        s = engine.read_state(context, energy=True)
        _check(s, f"equilibration at T={temperature}")
        times.append(done * dt)
        energies.append(s["potential_energy"] / len(types))
    s = engine.read_state(context, velocities=True)
    return Equilibrated(s["positions"], s["velocities"], np.array(times), np.array(energies))


@dataclass
class Replica:
    seed: int
    times: np.ndarray  # observation times actually reached (multiples of dt)
    positions: np.ndarray  # (n_t, N, 3) unwrapped: positions[i] - start is the true displacement
    initial_temperature: float  # kinetic temperature of the drawn velocities
    energy: np.ndarray  # total energy per particle at t = 0 and at each time (NVE drift)


def observation_steps(times, dt) -> np.ndarray:
    steps = np.rint(np.asarray(times, dtype=np.float64) / dt).astype(np.int64)
    if (steps <= 0).any() or (np.diff(steps) <= 0).any():
        raise ValueError(f"observation times must be positive and increasing in steps of dt={dt}: {list(times)}")
    return steps


def run_replica(
    types, positions, box, temperature, times, seed, dt=0.005, platform: str | None = None, label: str = "replica"
) -> Replica:
    """One iso-configurational run: NVE from ``positions`` with velocities drawn from ``seed``."""
    steps = observation_steps(times, dt)
    v0 = maxwell_boltzmann(len(types), temperature, seed)
    integrator = openmm.VerletIntegrator(dt)
    context = engine.md_context(types, box, integrator, positions, v0, platform=platform)
    s = engine.read_state(context, energy=True)
    _check(s, label)
    n = len(types)
    energy = [(s["potential_energy"] + s["kinetic_energy"]) / n]
    frames, done = [], 0
    for target in steps:
        with engine.blowup_guard(label):
            integrator.step(int(target - done))
        done = int(target)
        s = engine.read_state(context, energy=True)
        _check(s, f"{label} at t={done * dt:g}")
        frames.append(s["positions"])
        energy.append((s["potential_energy"] + s["kinetic_energy"]) / n)
    return Replica(
        seed=int(seed),
        times=steps * dt,
        positions=np.array(frames),
        initial_temperature=kinetic_temperature(v0),
        energy=np.array(energy),
    )


def iso_configurational(
    types, positions, box, temperature, times, seeds, dt=0.005, platform: str | None = None
) -> list[Replica]:
    """K runs (one per seed) from the same positions; see ``run_replica``."""
    return [
        run_replica(types, positions, box, temperature, times, s, dt, platform, label=f"replica {r}")
        for r, s in enumerate(seeds)
    ]

"""Molecular dynamics: initial states, NVT equilibration, and the measured runs (replicas, tau_alpha).

Two kinds of run (docs/physics.md, docs/tau_alpha.md say why):
- equilibration samples the canonical ensemble with a Langevin thermostat (LangevinMiddleIntegrator,
  friction ``friction`` per tau_LJ): robust from any start, and only the configurations it produces
  are used, not its dynamics;
- every run whose dynamics is measured (iso-configurational replicas, the tau_alpha trajectory) uses the
  job's ``dynamics`` (``KINDS``; ``integrator`` builds it), started from Maxwell–Boltzmann velocities
  (zero total momentum) drawn from a recorded seed:
    nve          velocity Verlet (Newtonian; conserves energy and momentum)
    nose-hoover  OpenMM's Nosé–Hoover chain, thermostat time constant ``time_constant`` (tau_LJ)
    langevin     BAOAB Langevin ("middle" scheme, as LangevinMiddleIntegrator), friction ``friction`` per
                 tau_LJ; with ``zero_sum_noise`` the random kicks of a step sum to zero over the particles
                 (mass-weighted), so the total momentum is conserved (a CustomIntegrator: OpenMM's own
                 Langevin integrators do not conserve it)
  The thermostat's random numbers are seeded from the same recorded seed, so one seed gives one
  trajectory (bit-identical on the CPU platform with DeterministicForces, the default here).

Every replica gets a fresh context by default. ``reuse=True`` (NVE only) lets a worker's tasks borrow contexts from a
per-process pool instead, each context held by one task at a time (a worker runs several tasks at once, in
threads). Measured at N = 500, T = 0.8, after 200 steps: on the CPU platform a borrowed context repeats a fresh one's
trajectory bit for bit; on OpenCL it leaves it by 1e-5 (the platform keeps its atom order from earlier runs, and
``Context.reinitialize`` does not reset it), so a replica would depend on what its worker ran before, and a resumed
store would not equal an uninterrupted one. A fresh OpenCL context costs 0.11 s there against 0.8 s for 1000 steps.
Thermostatted replicas never reuse: OpenMM seeds an integrator's random stream when its context is created.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import openmm

from . import engine, potential

BlowUp = engine.BlowUp
KINDS = ("nve", "nose-hoover", "langevin")
PARAMETERS = {"nve": (), "nose-hoover": ("time_constant",), "langevin": ("friction", "zero_sum_noise")}


def _zero_sum_langevin(temperature: float, friction: float, dt: float) -> openmm.CustomIntegrator:
    """BAOAB with mass-weighted zero-sum noise: v += dt f/m; x += dt/2 v; v = a v + b sqrt(kT/m) R'; x += dt/2 v,
    with R' = R - sqrt(m) sum_i sqrt(m_i) R_i / sum_i m_i per Cartesian component (so sum m v is unchanged).
    The per-DOF masks ex, ey, ez pick one component for the sums; ``_set_masks`` sets them once the context
    exists."""
    a = float(np.exp(-friction * dt))
    ci = openmm.CustomIntegrator(dt)
    ci.addGlobalVariable("a", a)
    ci.addGlobalVariable("b", float(np.sqrt(1 - a * a)))
    ci.addGlobalVariable("kT", float(temperature))  # reduced units: eps_AA = 1 kJ/mol, so kT is T in kJ/mol
    ci.addGlobalVariable("mtot", 0.0)
    for name in ("sx", "sy", "sz"):
        ci.addGlobalVariable(name, 0.0)
    for name in ("noise", "ex", "ey", "ez"):
        ci.addPerDofVariable(name, 0.0)
    ci.addComputeSum("mtot", "m*ex")  # sum of the masses (each particle once, through its x component)
    ci.addUpdateContextState()
    ci.addComputePerDof("v", "v + dt*f/m")
    ci.addComputePerDof("x", "x + 0.5*dt*v")
    ci.addComputePerDof("noise", "gaussian")
    for name, mask in (("sx", "ex"), ("sy", "ey"), ("sz", "ez")):
        ci.addComputeSum(name, f"{mask}*sqrt(m)*noise")
    ci.addComputePerDof("v", "a*v + b*sqrt(kT/m)*(noise - sqrt(m)*(ex*sx + ey*sy + ez*sz)/mtot)")
    ci.addComputePerDof("x", "x + 0.5*dt*v")
    return ci


def integrator(kind: str, temperature: float, dt: float, seed: int, **parameters) -> openmm.Integrator:
    """The OpenMM integrator of one measured run: ``kind`` in ``KINDS`` with its ``PARAMETERS`` (all of them; the
    job spec's ``dynamics`` field fills the defaults). ``dynamics_context`` builds its context; use that."""
    if kind not in KINDS:
        raise ValueError(f"unknown dynamics {kind!r} (one of {', '.join(KINDS)})")
    p = {k: v for k, v in parameters.items() if v is not None}
    missing = [k for k in PARAMETERS[kind] if k not in p]
    if missing or set(p) - set(PARAMETERS[kind]):
        raise ValueError(f"{kind} dynamics takes exactly {PARAMETERS[kind]}, got {sorted(p)}")
    if kind == "nve":
        return openmm.VerletIntegrator(dt)
    if kind == "nose-hoover":
        return openmm.NoseHooverIntegrator(potential.temperature_kelvin(temperature), 1.0 / p["time_constant"], dt)
    if p["zero_sum_noise"]:
        ci = _zero_sum_langevin(temperature, p["friction"], dt)
    else:
        ci = openmm.LangevinMiddleIntegrator(potential.temperature_kelvin(temperature), p["friction"], dt)
    ci.setRandomNumberSeed(int(seed) % (2**31 - 1) + 1)  # 0 would mean "pick one at random"
    return ci


def _set_masks(integrator_: openmm.Integrator, n: int) -> None:
    """The zero-sum integrator's per-DOF masks, which need its context to exist."""
    if isinstance(integrator_, openmm.CustomIntegrator) and integrator_.getNumPerDofVariables():
        for i, name in enumerate(("ex", "ey", "ez")):
            mask = np.zeros((n, 3))
            mask[:, i] = 1.0
            integrator_.setPerDofVariableByName(name, [openmm.Vec3(*row) for row in mask])


def dynamics_context(types, box, positions, velocities, temperature, dt, seed, dynamics=None, platform=None):
    """(context, integrator) of one measured run with the ``dynamics`` mapping (kind and parameters; None: NVE).
    Nose-Hoover gets a CMMotionRemover so that its thermostat counts 3N - 3 degrees of freedom (the momentum is
    zero and conserved)."""
    d = dict(dynamics or {"kind": "nve"})
    kind = d.pop("kind")
    integ = integrator(kind, temperature, dt, seed, **d)
    context = engine.md_context(types, box, integ, positions, velocities, platform, kind == "nose-hoover")
    _set_masks(integ, len(types))
    return context, integ


_POOL: OrderedDict = OrderedDict()  # this process's idle NVE contexts, most recently returned last
_POOL_LOCK = threading.Lock()  # a worker runs several tasks at once, each in a thread of this process
POOL_MAX = 4  # idle contexts kept per process (a worker meets one N and a few temperatures)


@contextmanager
def replica_context(
    types, box, positions, velocities, temperature, dt, seed, dynamics=None, platform=None, reuse: bool = False
):
    """``dynamics_context`` for the block; with ``reuse`` (NVE only) a context of this process is borrowed and
    returned after the block, so no two tasks ever hold one context at once. A block that raises discards it
    (its state is not to be trusted). Off by default: a reused context does not repeat a fresh one's trajectory
    on OpenCL (module doc)."""
    kind = dict(dynamics or {"kind": "nve"})["kind"]
    if kind != "nve" or not reuse:
        yield dynamics_context(types, box, positions, velocities, temperature, dt, seed, dynamics, platform)
        return
    types = np.asarray(types)
    key = (types.tobytes(), float(box), float(dt), platform)
    with _POOL_LOCK:
        borrowed = _POOL.pop(key, None)
    if borrowed is None:
        borrowed = dynamics_context(types, box, positions, velocities, temperature, dt, seed, None, platform)
    else:
        context = borrowed[0]
        context.setPositions(np.ascontiguousarray(positions, dtype=np.float64))
        context.setVelocities(np.ascontiguousarray(velocities, dtype=np.float64))
        context.setTime(0.0)
        context.setStepCount(0)
    yield borrowed
    with _POOL_LOCK:
        _POOL[key] = borrowed
        while len(_POOL) > POOL_MAX:
            _POOL.popitem(last=False)


OVERLAP = 0.6  # sigma_AA: a start with a pair closer than this is not relaxed yet (the KA liquid's nearest is ~0.9)


def random_configuration(types: np.ndarray, box: float, seed: int, platform: str | None = None) -> np.ndarray:
    """Uniformly random positions relaxed by OpenMM's minimiser until no pair overlaps (a start for equilibration).

    The minimiser can stop with a pair still almost on top of each other (its single-precision energy of r^-12
    at r ~ 0.05 overflows its line search: seen at N = 4096, seed 1); then one particle of each pair closer than
    OVERLAP is moved to a new random place and the minimiser runs again, up to 20 times. It runs on the CPU
    platform whatever ``platform`` says (kept for callers): on OpenCL through POCL the minimiser segfaults, and
    a start only seeds an equilibration."""
    from scipy.spatial import cKDTree

    rng = np.random.default_rng(seed)
    x = rng.uniform(0.0, box, size=(len(types), 3))
    context = engine.md_context(types, box, openmm.VerletIntegrator(0.001), x, platform="CPU")
    for _ in range(20):
        openmm.LocalEnergyMinimizer.minimize(context, 10.0, 2000)
        x = engine.read_state(context)["positions"]
        close = cKDTree(np.mod(x, box), boxsize=box).query_pairs(OVERLAP, output_type="ndarray")
        if len(close) == 0:
            return x
        moved = np.unique(close[:, 1])
        x[moved] = rng.uniform(0.0, box, size=(len(moved), 3))
        context.setPositions(x)
    raise BlowUp(f"random start of N = {len(types)} in a box of {box:.3g}: pairs closer than {OVERLAP} remain")


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
    energy: np.ndarray  # total energy per particle at t = 0 and at each time (NVE: its drift)


def observation_steps(times, dt) -> np.ndarray:
    steps = np.rint(np.asarray(times, dtype=np.float64) / dt).astype(np.int64)
    if (steps <= 0).any() or (np.diff(steps) <= 0).any():
        raise ValueError(f"observation times must be positive and increasing in steps of dt={dt}: {list(times)}")
    return steps


def run_replica(
    types,
    positions,
    box,
    temperature,
    times,
    seed,
    dt=0.005,
    platform: str | None = None,
    label: str = "replica",
    dynamics: dict | None = None,
    reuse: bool = False,
) -> Replica:
    """One iso-configurational run from ``positions`` with velocities drawn from ``seed`` (which also seeds a
    thermostat's noise), with ``dynamics`` (a mapping: ``kind`` and its parameters; None: NVE); ``reuse``: this
    process's context (``replica_context``)."""
    steps = observation_steps(times, dt)
    v0 = maxwell_boltzmann(len(types), temperature, seed)
    n = len(types)
    with replica_context(types, box, positions, v0, temperature, dt, seed, dynamics, platform, reuse) as (
        context,
        integrator,
    ):
        s = engine.read_state(context, energy=True)
        _check(s, label)
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
    types, positions, box, temperature, times, seeds, dt=0.005, platform: str | None = None, dynamics=None
) -> list[Replica]:
    """K runs (one per seed) from the same positions; see ``run_replica``."""
    return [
        run_replica(types, positions, box, temperature, times, s, dt, platform, f"replica {r}", dynamics)
        for r, s in enumerate(seeds)
    ]

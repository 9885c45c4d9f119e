"""FIRE energy minimisation to the inherent structure, inside OpenMM (a CustomIntegrator).

The algorithm (Bitzek et al. 2006 parameters, dt_init 0.002, dt_max 0.02 as in the paper), with the
semi-implicit Euler MD step recommended by Shuang et al. 2019; one step from (x, v, F(x)) is

    P = F . v
    P > 0:  n_pos += 1; if n_pos > N_min: dt = min(dt f_inc, dt_max), alpha *= f_alpha
    P <= 0: n_pos = 0; dt *= f_dec; alpha = alpha_start; v = 0
    v += dt F                                    (m = 1)
    v  = (1 - alpha) v + alpha |v| F / |F|       (norms over all 3N components)
    x += dt v

Convergence: mean force magnitude per particle < ``tolerance`` (paper: 1e-12), checked every
``check_every`` steps. That needs forces summed in double precision, which only the Reference platform
has, so every quench ends there and its residual (the stored ``fire_residual``) is Reference's. The bulk runs
where the process's MD runs: on the CPU platform (single-precision forces) down to ``handoff`` (or until it
stalls: single-precision forces floor near 1e-4); on a GPU platform (CUDA, HIP, OpenCL) in its double mode down
to ``gpu_handoff`` (or until it stalls: those platforms sum forces in 64-bit fixed point scaled by 2^32, and a
mean force below ~1e-9 is not resolved there; OpenCL has reported 0.0 at positions where Reference measures
5e-10). ``QuenchResult.platform`` records the path taken. ``tests/reference.py`` holds an independent NumPy
version of the same loop.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import openmm

from ..errors import FireNotConverged
from . import engine, potential


@dataclass(frozen=True)
class FireParameters:
    dt_init: float = 0.002
    dt_max: float = 0.02
    alpha_start: float = 0.1
    f_alpha: float = 0.99
    f_inc: float = 1.1
    f_dec: float = 0.5
    n_min: int = 5
    tolerance: float = 1e-12
    max_steps: int = 500_000
    check_every: int = 100
    handoff: float = 1e-3  # mean force at which a single-precision stage hands over to double
    gpu_handoff: float = 1e-8  # ... at which a GPU platform's double (fixed-point sums) hands over to Reference
    stall_steps: int = 5000  # ... or after this many steps without halving the mean force


@dataclass
class QuenchResult:
    positions: np.ndarray  # (N, 3), continuous with the input (not wrapped)
    energy_per_particle: float
    mean_force: float
    steps: int
    platform: str

    def summary(self) -> dict:
        return {
            "energy_per_particle": self.energy_per_particle,
            "mean_force": self.mean_force,
            "steps": self.steps,
            "platform": self.platform,
        }


def fire_integrator(p: FireParameters) -> openmm.CustomIntegrator:
    """One FIRE step per ``step()`` call; state in the globals dt, alpha, npos."""
    ig = openmm.CustomIntegrator(p.dt_init)
    for name, value in [
        ("alpha", p.alpha_start),
        ("npos", 0),
        ("P", 0),
        ("vv", 0),
        ("ff", 0),
        ("alpha0", p.alpha_start),
        ("falpha", p.f_alpha),
        ("finc", p.f_inc),
        ("fdec", p.f_dec),
        ("nmin", p.n_min),
        ("dtmax", p.dt_max),
    ]:
        ig.addGlobalVariable(name, value)
    ig.addComputeSum("P", "f*v")
    ig.beginIfBlock("P > 0")
    ig.addComputeGlobal("npos", "npos + 1")
    ig.beginIfBlock("npos > nmin")
    ig.addComputeGlobal("dt", "min(dt*finc, dtmax)")
    ig.addComputeGlobal("alpha", "alpha*falpha")
    ig.endBlock()
    ig.endBlock()
    ig.beginIfBlock("P <= 0")
    ig.addComputeGlobal("npos", "0")
    ig.addComputeGlobal("dt", "dt*fdec")
    ig.addComputeGlobal("alpha", "alpha0")
    ig.addComputePerDof("v", "0")
    ig.endBlock()
    ig.addComputePerDof("v", "v + dt*f/m")
    ig.addComputeSum("vv", "v*v")
    ig.addComputeSum("ff", "f*f")
    ig.addComputePerDof("v", "(1 - alpha)*v + alpha*sqrt(vv)*f/sqrt(max(ff, 1e-300))")
    ig.addComputePerDof("x", "x + dt*v")
    return ig


def _fire_stage(system, p, choice, positions, velocities, globals_, target, steps_left):
    """Run FIRE on one platform until the mean force < ``target``; return the state and steps."""
    ig = fire_integrator(p)
    context = engine.make_context(system, ig, choice, positions, velocities)
    ig.setStepSize(globals_["dt"])
    for name in ("alpha", "npos"):
        ig.setGlobalVariableByName(name, globals_[name])
    steps, best, best_at = 0, np.inf, 0
    while True:
        s = engine.read_state(context, positions=True, velocities=True, forces=True, energy=True)
        residual = engine.mean_force(s["forces"])
        if not np.isfinite(s["potential_energy"]) or not np.isfinite(residual):
            raise engine.BlowUp(
                f"FIRE blew up on {choice.describe()} after {steps} steps "
                f"(energy {s['potential_energy']}): overlapping particles?"
            )
        if residual < 0.5 * best:
            best, best_at = residual, steps
        stalled = steps - best_at >= p.stall_steps
        if residual < target or steps >= steps_left or (stalled and target > p.tolerance):
            globals_ = {n: ig.getGlobalVariableByName(n) for n in ("alpha", "npos")}
            globals_["dt"] = ig.getStepSize()
            return s, residual, steps, globals_
        n = min(p.check_every, steps_left - steps)
        with engine.blowup_guard(f"FIRE on {choice.describe()} after {steps} steps"):
            ig.step(n)
        steps += n


def quench(
    types: np.ndarray,
    positions: np.ndarray,
    box: float,
    params: FireParameters = FireParameters(),
    platform: str | None = None,
) -> QuenchResult:
    """The FIRE inherent structure of ``positions``; raises FireNotConverged past ``max_steps``.

    ``platform`` runs the bulk of the quench ("CPU", "CUDA", "HIP", "OpenCL"; default: this process's MD
    platform); "Reference" runs all of it in double. The last stage is always Reference (module doc).
    """
    types = np.asarray(types)
    system = potential.make_system(types, box)
    double = engine.choose_platform("double")
    bulk = None if platform == "Reference" else engine.choose_platform("mixed", name=platform).name
    stages = [(double, params.tolerance)]
    if bulk == "CPU":
        stages.insert(0, (engine.choose_platform("mixed", name="CPU"), params.handoff))
    elif bulk in engine.GPU_PLATFORMS:
        stages.insert(0, (engine.choose_platform("double", name=bulk), params.gpu_handoff))
    x, v = np.asarray(positions, dtype=np.float64), np.zeros_like(positions, dtype=np.float64)
    state = {"dt": params.dt_init, "alpha": params.alpha_start, "npos": 0}
    steps, used = 0, []
    for choice, target in stages:
        s, residual, n, state = _fire_stage(system, params, choice, x, v, state, target, params.max_steps - steps)
        x, v, steps = s["positions"], s["velocities"], steps + n
        used.append(f"{choice.describe()}:{n}")
    if residual >= params.tolerance:
        raise FireNotConverged(
            f"FIRE did not converge in {steps} steps ({'+'.join(used)}): mean force {residual:.3e} by Reference >= "
            f"tolerance {params.tolerance:.1e}; raise fire.max_steps in the spec, or look for overlapping particles"
        )
    return QuenchResult(
        positions=x,
        energy_per_particle=s["potential_energy"] / len(types),
        mean_force=residual,
        steps=steps,
        platform="+".join(used),
    )

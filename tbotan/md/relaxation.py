"""Structural relaxation time tau_alpha from the self-intermediate scattering function (docs/method.md §2.4).

F_s(q, t) = < (1/N_A) sum_{j in A} sin(q |dr_j(t)|) / (q |dr_j(t)|) >_origins   (isotropic average),
with q at the first peak of S_AA(q), and tau_alpha the first time with F_s = 1/e (linear
interpolation in log t). ``measure_tau_alpha`` runs the whole protocol and checks it:
equilibrate (Langevin NVT) -> production with frames, in the job's ``dynamics`` (the replicas' own, so the
two agree by construction; default NVE) -> F_s; the energy must have reached a
plateau, and the equilibration must have lasted at least ``min_equilibration`` tau_alpha (it is
extended until it has).
"""

from __future__ import annotations

import logging

import numpy as np

from .. import core
from ..errors import TauAlphaError
from . import engine
from .dynamics import BlowUp, dynamics_context, equilibrate, maxwell_boltzmann, random_configuration


def structure_factor(positions: np.ndarray, box: float, q_max: float = 10.0) -> tuple[np.ndarray, np.ndarray]:
    """S(q) = |sum_j exp(i q.r_j)|^2 / n on the box's reciprocal lattice, one value per |q| shell, 0 < |q| <= q_max.

    ``positions`` is (n, 3) or (frames, n, 3) (averaged over frames)."""
    x = np.asarray(positions, dtype=np.float64)
    x = x[None] if x.ndim == 2 else x
    dq = 2 * np.pi / box
    n2_max = int(np.floor((q_max / dq) ** 2))
    n2_max += (n2_max + 1) * dq**2 <= q_max**2  # floor in floating point may be one short or over
    n2_max -= n2_max * dq**2 > q_max**2
    shells = np.arange(n2_max + 1)
    s = np.zeros(n2_max + 1)
    for frame in x:
        sums, counts, _ = core.lattice_sum(frame, np.ones(len(frame)), box, n2_max, shells)
        with np.errstate(invalid="ignore", divide="ignore"):
            s += sums / counts / len(frame)
    populated = counts > 0
    populated[0] = False
    return np.sqrt(shells[populated]) * dq, s[populated] / len(x)


def first_peak(q: np.ndarray, s: np.ndarray, window: float = 1.0) -> float:
    """Position of the main peak of S(q): a parabola through the shells within ``window`` of the largest."""
    top = q[np.argmax(s)]
    near = np.abs(q - top) <= window
    a, b, _ = np.polyfit(q[near], s[near], 2)
    peak = -b / (2 * a)
    return float(peak) if a < 0 and abs(peak - top) < window else float(top)


def self_intermediate(frames: np.ndarray, q: float, max_lag: int | None = None) -> np.ndarray:
    """F_s(q, lag) for lag = 0..max_lag frames, averaged over every time origin; ``frames`` (n_f, n, 3) unwrapped."""
    frames = np.asarray(frames, dtype=np.float64)
    max_lag = max_lag or len(frames) // 2
    out = np.ones(max_lag + 1)
    for lag in range(1, max_lag + 1):
        dr = np.linalg.norm(frames[lag:] - frames[:-lag], axis=-1)
        out[lag] = np.mean(np.sinc(q * dr / np.pi))  # np.sinc(x) = sin(pi x) / (pi x)
    return out


def crossing_time(times: np.ndarray, fs: np.ndarray, level: float = np.exp(-1.0)) -> float:
    """First time where ``fs`` drops below ``level``, interpolated linearly in log t; NaN if never."""
    below = np.nonzero(fs < level)[0]
    if len(below) == 0 or below[0] == 0:
        return float("nan")
    k = below[0]
    t0, t1, f0, f1 = times[k - 1], times[k], fs[k - 1], fs[k]
    if t0 <= 0:
        return float(t1 - (level - f1) * (t1 - t0) / (f0 - f1))
    w = (f0 - level) / (f0 - f1)
    return float(np.exp(np.log(t0) + w * (np.log(t1) - np.log(t0))))


def statistical_inefficiency(series: np.ndarray) -> float:
    """g = 1 + 2 sum_t (1 - t/n) C(t): how many successive samples of a correlated series count as one
    independent one (pymbar's ``timeseries.statistical_inefficiency``, Chodera et al. 2007; at least 1)."""
    logging.getLogger("pymbar").setLevel(logging.ERROR)  # its import warns about JAX and about long timescales
    from pymbar import timeseries

    x = np.asarray(series, dtype=np.float64)
    if len(x) < 3 or np.ptp(x) == 0:
        return 1.0
    return max(1.0, float(timeseries.statistical_inefficiency(x)))


def plateau_samples(duration: float, dt: float) -> int:
    """Energies recorded per equilibration run for the plateau check: one every 20 steps (0.1 time units at dt =
    0.005; closer samples add no information, and make g's estimate from one block unstable), between 100 and
    1000 (250 per block of the check: enough for its statistical inefficiency)."""
    return max(100, min(1000, int(round(duration / dt)) // 20))


def energy_plateau(energies: np.ndarray, blocks: int = 4) -> dict:
    """Compare the means of the last two of ``blocks`` blocks of an energy trace: their difference (drift) and its
    standard error sqrt(g s^2 (1/n_a + 1/n_b)). The fluctuations s^2 and the statistical inefficiency g are those of
    the two blocks together less one straight line fitted through them, so that a drift, which is what is tested,
    does not count as noise, while fluctuations slower than a block still do. Successive energies of an MD trace
    are correlated: taken as independent (g = 1) the error is several times too small, and a stationary trace
    reads as drifting. A plateau: |drift| <= 4 standard errors (+ 1e-3 for traces with almost no noise)."""
    parts = np.array_split(np.asarray(energies, dtype=np.float64), blocks)
    a, b = parts[-2], parts[-1]
    both = np.concatenate([a, b])
    t = np.arange(len(both))
    residual = both - np.polyval(np.polyfit(t, both, 1), t) if len(both) >= 3 else both - both.mean()
    g = statistical_inefficiency(residual)
    drift = float(b.mean() - a.mean())
    err = float(np.sqrt(g * residual.var() * (1 / max(len(a), 1) + 1 / max(len(b), 1))))
    return {"drift": drift, "stderr": err, "inefficiency": g, "plateau": abs(drift) <= 4 * err + 1e-3}


def production_frames(
    types,
    positions,
    velocities,
    box,
    duration,
    interval,
    dt=0.005,
    platform=None,
    temperature=None,
    dynamics=None,
    seed=0,
):
    """A run in ``dynamics`` (None: NVE; a thermostat needs ``temperature``, its noise is seeded by ``seed``)
    keeping positions (unwrapped) every ``interval`` time units.

    Returns (frames [n_frames, N, 3], total energy per particle [n_frames], the frame interval actually used:
    ``interval`` rounded to a whole number of steps)."""
    every = max(1, int(round(interval / dt)))
    n_frames = int(round(duration / (every * dt))) + 1
    context, integrator = dynamics_context(types, box, positions, velocities, temperature, dt, seed, dynamics, platform)
    frames, energies = [], []
    for f in range(n_frames):
        if f:
            with engine.blowup_guard("tau_alpha production run"):
                integrator.step(every)
        s = engine.read_state(context, energy=True)
        if not np.isfinite(s["potential_energy"]):
            raise BlowUp(f"tau_alpha production run blew up at t={f * every * dt:g}")
        frames.append(s["positions"])
        energies.append((s["potential_energy"] + s["kinetic_energy"]) / len(types))
    return np.array(frames), np.array(energies), every * dt


def guess_tau(temperature: float) -> float:
    """A rough prior from the paper's Table I (log tau vs 1/T, interpolated); only sizes the first run."""
    t = np.array(list(core.TABLE_I))
    tau = np.array(list(core.TABLE_I.values()))
    return float(np.exp(np.interp(1 / temperature, (1 / t)[::-1], np.log(tau)[::-1])))


def measure_tau_alpha(temperature: float, n_particles: int, dynamics: dict | None = None, **protocol) -> dict:
    """Equilibrate at ``temperature`` and measure tau_alpha (reduced units) in ``dynamics`` (None: NVE), with the
    checks described above; ``protocol``: the keywords of ``measure_tau_alphas`` (seed, dt, min_equilibration,
    production, ...)."""
    return measure_tau_alphas(temperature, n_particles, [dynamics], **protocol)[0]


def measure_tau_alphas(
    temperature: float,
    n_particles: int,
    dynamics: list,
    seed: int = 0,
    dt: float = 0.005,
    min_equilibration: float = 30.0,
    production: float = 10.0,
    frames_per_tau: int = 40,
    q: float | None = None,
    platform: str | None = None,
    max_rounds: int = 4,
    guess: float | None = None,
) -> list[dict]:
    """tau_alpha (reduced units) for each of several ``dynamics`` (None: NVE) from one equilibration: every
    production run starts from the same equilibrated state with the same velocities, so the runs are a paired
    comparison and the equilibration is paid once. Each result is what ``measure_tau_alpha`` with that
    dynamics and seed gives (the same state, velocities and noise seed).

    ``min_equilibration`` and ``production`` are in units of tau_alpha. The first estimate of tau_alpha,
    ``guess`` or else ``guess_tau``, sizes the runs; it is replaced by the measured one, extending the runs,
    until both hold for every dynamics."""
    types = core.species(n_particles)
    box = core.box_length(n_particles)
    x = random_configuration(types, box, seed, platform)
    tau = guess or guess_tau(temperature)
    eq_time, eq_energy, v = 0.0, [], None
    for round_ in range(max_rounds):
        need = min_equilibration * tau - eq_time
        if need > 0:
            eq = equilibrate(
                types,
                x,
                box,
                temperature,
                need,
                dt=dt,
                seed=seed + round_,
                platform=platform,
                velocities=v,
                samples=plateau_samples(need, dt),
            )
            x, v, eq_time = eq.positions, eq.velocities, eq_time + need
            eq_energy.extend(eq.potential_energy)
        v0 = maxwell_boltzmann(n_particles, temperature, seed + 1000 + round_)
        runs = [
            _production_tau(
                types,
                x,
                v0,
                box,
                tau,
                production,
                frames_per_tau,
                dt,
                platform,
                temperature,
                d,
                q,
                seed + 2000 + round_,
            )
            for d in dynamics
        ]
        measured = [r["tau_alpha"] for r in runs]
        if all(
            np.isfinite(m) and eq_time >= min_equilibration * m and r["lags"][-1] >= 2 * m
            for m, r in zip(measured, runs)
        ):
            plateau = energy_plateau(eq_energy)
            if not plateau["plateau"]:
                raise TauAlphaError(
                    f"potential energy still drifting at T={temperature} after {eq_time:g} time units: {plateau}"
                )
            common = {
                "temperature": temperature,
                "N": n_particles,
                "seed": seed,
                "dt": dt,
                "equilibration_time": eq_time,
                "energy_plateau": plateau,
                "mean_potential_energy": float(np.mean(eq_energy[len(eq_energy) // 2 :])),
                "pressure": engine.pressure(types, x, box, temperature),  # of the equilibrated state
                "equilibration": "Langevin NVT (LangevinMiddleIntegrator, friction 1)",
                "platform": engine.choose_platform("mixed", name=platform).describe(),
            }
            out = []
            for d, r in zip(dynamics, runs):
                lags = r.pop("lags")
                out.append(
                    {
                        **r,
                        **common,
                        "equilibration_tau": eq_time / r["tau_alpha"],
                        "production_time": float(lags[-1] * 2),
                        "fs_times": lags.tolist(),
                        "dynamics": dict(d or {"kind": "nve"}),  # of the production run
                    }
                )
            return out
        finite = [m for m in measured if np.isfinite(m)]
        tau = max(finite) if len(finite) == len(measured) else 4 * tau
    raise TauAlphaError(
        f"tau_alpha at T={temperature} not settled after {max_rounds} rounds "
        f"(last estimates {measured}, equilibrated {eq_time:g})"
    )


def _production_tau(types, x, v0, box, tau, production, frames_per_tau, dt, platform, temperature, dynamics, q, seed):
    """One production run of ``production`` x ``tau`` in ``dynamics`` and its F_s of the A particles."""
    frames, energies, interval = production_frames(
        types, x, v0, box, production * tau, tau / frames_per_tau, dt, platform, temperature, dynamics, seed
    )
    a = types == 0
    if q is None:
        q_lat, s_aa = structure_factor(frames[:: max(1, len(frames) // 5), a], box, q_max=10.0)
        q = first_peak(q_lat, s_aa)
    fs = self_intermediate(frames[:, a], q)
    lags = np.arange(len(fs)) * interval
    return {
        "tau_alpha": crossing_time(lags, fs),
        "q": q,
        "tau_alpha_q7.25": crossing_time(lags, self_intermediate(frames[:, a], core.Q_FS)),
        "lags": lags,
        "frame_interval": interval,
        "n_frames": len(frames),
        "energy_drift": float(energies[-1] - energies[0]),  # NVE: should be ~0
        "fs": fs.tolist(),
    }

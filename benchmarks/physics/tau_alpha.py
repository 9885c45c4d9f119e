"""tau_alpha of the KA mixture measured with the same protocol in OpenMM (tbotan) and in LAMMPS.

    python benchmarks/physics/tau_alpha.py [--seeds 3] [--N 1000] [--temperature 0.8] [--engines openmm,lammps]
                                           [--first-seed 1] [--tag X] [--out FILE] [--record]

OpenMM: tbotan.md.relaxation.measure_tau_alpha (random start, minimise, Langevin NVT equilibration,
NVE production, F_s of the A particles at the first peak of S_AA(q), tau = 1/e crossing).
LAMMPS: the same steps -- random start (own seed), ``minimize``, ``fix nve`` + ``fix langevin`` (damp
1.0 = OpenMM's friction 1) for OpenMM's ``equilibration_time``, fresh Maxwell-Boltzmann velocities,
NVE production for the same length with unwrapped positions dumped at the same interval -- and the
frames go through the same tbotan.md.relaxation functions. ``lammps_tau`` also serves
benchmarks/physics/tau_alpha_variants.py (other potentials, thermostats, sizes). Prints one JSON object (``--out
FILE``: also there; ``--record``: also benchmarks/results/tau_alpha_T<T>_N<N>[_<tag>].json).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from tbotan import core
from tbotan.md import relaxation

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: record.py, lammps_runner.py
import lammps_runner
from record import add_arguments, emit

DT = 0.005


def protocol(
    temperature: float,
    dt: float = DT,
    min_equilibration: float = 30.0,
    production: float = 10.0,
    frames_per_tau: int = 40,
    guess: float | None = None,
) -> dict:
    """The first-round protocol of measure_tau_alpha (it is final whenever the measured tau_alpha <=
    the prior guess_tau): equilibration and production lengths, and the frame interval."""
    tau = guess or relaxation.guess_tau(temperature)
    every = max(1, int(round(tau / frames_per_tau / dt)))
    n_frames = int(round(production * tau / (every * dt))) + 1
    return {
        "equilibration_time": min_equilibration * tau,
        "every": every,
        "interval": every * dt,
        "n_frames": n_frames,
        "dt": dt,
    }


def analyse(frames: np.ndarray, types: np.ndarray, box: float, interval: float) -> dict:
    """tau_alpha from unwrapped frames exactly as measure_tau_alpha does, plus definition variants:
    q = 7.25 fixed, single time origin (t = 0 only), and all particles instead of A only."""
    a = types == 0
    q_lat, s_aa = relaxation.structure_factor(frames[:: max(1, len(frames) // 5), a], box, q_max=10.0)
    q = relaxation.first_peak(q_lat, s_aa)
    fs = relaxation.self_intermediate(frames[:, a], q)
    lags = np.arange(len(fs)) * interval
    fs_725 = relaxation.self_intermediate(frames[:, a], 7.25)
    fs_all = relaxation.self_intermediate(frames, q)
    dr = np.linalg.norm(frames[: len(fs), a] - frames[0, a], axis=-1)
    fs_single = np.mean(np.sinc(q * dr / np.pi), axis=1)
    return {
        "tau_alpha": relaxation.crossing_time(lags, fs),
        "q": q,
        "tau_alpha_q7.25": relaxation.crossing_time(lags, fs_725),
        "tau_alpha_single_origin": relaxation.crossing_time(lags, fs_single),
        "tau_alpha_all_particles": relaxation.crossing_time(lags, fs_all),
        "fs_times": lags.tolist(),
        "fs": fs.tolist(),
    }


def lammps_tau(*args, production_thermostat: str = "nve", **kwargs) -> dict:
    """One LAMMPS run of the protocol above; ``production_thermostat`` is "nve" (the protocol), "nvt"
    (Nose-Hoover, Tdamp ``nh_damp``) or "langevin" (fix nve + fix langevin, damp ``damp``); the other arguments
    are ``lammps_taus``'."""
    return lammps_taus(*args, production_thermostats=[production_thermostat], **kwargs)[0]


def lammps_taus(
    temperature: float,
    n_particles: int,
    seed: int,
    equilibration_time: float,
    every: int,
    n_frames: int,
    production_thermostats: list,
    dt: float = DT,
    potential: str = "sf",
    damp: float = 1.0,
    nh_damp: float = 0.5,
    nprocs: int = 1,
) -> list[dict]:
    """``lammps_tau`` for several production thermostats from one equilibration: the equilibrated state is
    written once (write_data) and every production run restarts from it with the same fresh velocities, as
    separate ``lammps_tau`` calls with this seed would (they equilibrate identically)."""
    types, box = core.species(n_particles), core.box_length(n_particles)
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.0, box, size=(n_particles, 3))
    eq_steps = int(round(equilibration_time / dt))
    prod_steps = (n_frames - 1) * every
    seeds = [int(s) for s in rng.integers(1, 900_000_000, size=4)]  # Marsaglia RNG needs seed <= 9e8
    T = temperature
    production = {
        "nve": "fix 1 all nve\n",
        "nvt": f"fix 1 all nvt temp {T} {T} {nh_damp}\n",
        "langevin": f"fix 1 all nve\nfix 2 all langevin {T} {T} {damp} {seeds[3]} zero yes\n",
    }
    script = (
        lammps_runner.header("start.data", potential)
        + f"timestep {dt}\n"
        + "min_style cg\nmin_modify dmax 0.1\nminimize 0.0 1.0e-4 2000 20000\nreset_timestep 0\n"
        + f"velocity all create {T} {seeds[0]} dist gaussian mom yes rot no\n"
        + f"fix 1 all nve\nfix 2 all langevin {T} {T} {damp} {seeds[1]} zero yes\n"
        + f"thermo_style custom step temp pe etotal press\nthermo {max(1, eq_steps // 100)}\n"
        + f"run {eq_steps}\n"
        + "write_data eq.data nocoeff\n"
    )
    for k, thermostat in enumerate(production_thermostats):
        script += (
            "clear\n"
            + lammps_runner.header("eq.data", potential)
            + f"timestep {dt}\nthermo_style custom step temp pe etotal\n"
            + f"velocity all create {T} {seeds[2]} dist gaussian mom yes rot no\n"
            + production[thermostat]
            + f"thermo {max(1, prod_steps // 20)}\n"
            + f"dump p all custom {every} prod{k}.dump id type xu yu zu\n"
            + "dump_modify p sort id format float %.10g\n"
            + f"run {prod_steps}\n"
        )
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="ka_tau_") as tmp:
        lammps_runner.write_data(f"{tmp}/start.data", types, x, box)
        log = lammps_runner.run(script, tmp, nprocs=nprocs)
        dumps = [lammps_runner.dump_positions(f"{tmp}/prod{k}.dump")[1] for k in range(len(production_thermostats))]
    wall = time.perf_counter() - t0
    thermo = lammps_runner.read_thermo(log)
    eq, prods = thermo[-1 - len(dumps)], thermo[-len(dumps) :]
    plateau = relaxation.energy_plateau(eq["PotEng"])
    half = len(eq["PotEng"]) // 2
    out = []
    for thermostat, frames, prod in zip(production_thermostats, dumps, prods):
        r = analyse(frames, types, box, every * dt)
        r.update(
            {
                "engine": "lammps",
                "temperature": T,
                "N": n_particles,
                "seed": seed,
                "dt": dt,
                "potential": potential,
                "production_thermostat": thermostat,
                "equilibration_time": eq_steps * dt,
                "production_time": prod_steps * dt,
                "frame_interval": every * dt,
                "n_frames": int(len(frames)),
                "mean_potential_energy": float(np.mean(eq["PotEng"][half:])),
                "mean_pressure": float(np.mean(eq["Press"][half:])),  # of the Langevin equilibration's second half
                "energy_plateau": plateau,
                "production_mean_temperature": float(np.mean(prod["Temp"][1:])),
                "nve_energy_drift": float(prod["TotEng"][-1] - prod["TotEng"][0]),
                "wall_s": wall / len(dumps),  # the run's wall time shared among its productions
                "nprocs": nprocs,
            }
        )
        out.append(r)
    return out


def summary(values) -> dict:
    v = np.asarray([x for x in values if np.isfinite(x)], dtype=np.float64)
    if len(v) == 0:
        return {"mean": float("nan"), "stderr": float("nan"), "n": 0, "values": []}
    se = float(v.std(ddof=1) / np.sqrt(len(v))) if len(v) > 1 else float("nan")
    return {"mean": float(v.mean()), "stderr": se, "n": int(len(v)), "values": v.tolist()}


def ratio(a: dict, b: dict) -> dict:
    r = a["mean"] / b["mean"]
    return {"value": r, "stderr": abs(r) * float(np.hypot(a["stderr"] / a["mean"], b["stderr"] / b["mean"]))}


KEYS = ("tau_alpha", "tau_alpha_q7.25", "q", "mean_potential_energy")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=3, help="independent runs per engine")
    p.add_argument("--N", type=int, default=1000)
    p.add_argument("--temperature", type=float, default=0.8)
    p.add_argument("--first-seed", type=int, default=1)
    p.add_argument("--engines", default="openmm,lammps")
    p.add_argument("--keep-fs", action="store_true", help="keep F_s(t) of every run in the JSON")
    p.add_argument("--tag", default="", help="suffix of the results file name")
    add_arguments(p, "tau_alpha_T<T>_N<N>[_<tag>]")
    a = p.parse_args()
    engines = a.engines.split(",")

    runs = {e: [] for e in engines}
    proto = protocol(a.temperature)
    for k in range(a.seeds):
        seed = a.first_seed + k
        if "openmm" in engines:
            t0 = time.perf_counter()
            r = relaxation.measure_tau_alpha(a.temperature, a.N, seed=seed)
            r.update(engine="openmm", wall_s=time.perf_counter() - t0)
            runs["openmm"].append(r)
            if abs(r["equilibration_time"] - proto["equilibration_time"]) > 1e-9:
                proto["equilibration_time"] = r["equilibration_time"]  # OpenMM needed more rounds
        if "lammps" in engines:
            runs["lammps"].append(
                lammps_tau(
                    a.temperature, a.N, 1000 + seed, proto["equilibration_time"], proto["every"], proto["n_frames"]
                )
            )
    result = {"temperature": a.temperature, "N": a.N, "protocol": proto, "per_engine": {}}
    for e, rs in runs.items():
        result["per_engine"][e] = {key: summary([r[key] for r in rs]) for key in KEYS}
        result["per_engine"][e]["runs"] = [
            {k: v for k, v in r.items() if a.keep_fs or k not in ("fs", "fs_times")} for r in rs
        ]
    if len(engines) == 2:
        pe = result["per_engine"]
        result["ratio_openmm_over_lammps"] = {
            key: ratio(pe["openmm"][key], pe["lammps"][key]) for key in ("tau_alpha", "tau_alpha_q7.25")
        }
        result["paper_table_I_tau_alpha"] = (
            relaxation.guess_tau(a.temperature) if a.temperature in (0.44, 0.47, 0.50, 0.56, 0.64, 0.80) else None
        )
    name = f"tau_alpha_T{a.temperature:g}_N{a.N}" + (f"_{a.tag}" if a.tag else "")
    emit(name, result, a)


if __name__ == "__main__":
    main()

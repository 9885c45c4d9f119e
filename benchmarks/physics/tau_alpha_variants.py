"""Which protocol choice moves tau_alpha(T) of the KA mixture? Short LAMMPS runs, one factor at a time.

    python benchmarks/physics/tau_alpha_variants.py [--seeds 3] [--temperature 0.8]
                                                    [--variants base,ts,nvt,langevin,n4096] [--out FILE] [--record]

Every variant runs the protocol of benchmarks/physics/tau_alpha.py (LAMMPS side: random start, minimise,
Langevin NVT equilibration for 30 x the Table-I tau, fresh Maxwell-Boltzmann velocities, production of
10 x that tau with frames every tau/40) and changes one thing:
  base      shifted-force LJ (lj/smooth/linear), NVE production, N = 1000     (tbotan's choice)
  ts        truncated-and-shifted LJ (lj/cut + pair_modify shift yes), cutoffs 2.5 sigma_ab
  nvt       Nose-Hoover NVT production (fix nvt, Tdamp 0.5 = 100 steps) instead of NVE
  langevin  Langevin production (fix nve + fix langevin, damp 1.0, as in equilibration) instead of NVE
  n4096     N = 4096 instead of 1000
  ts4096    truncated-and-shifted LJ and N = 4096 together
  sf_global shifted-force LJ with one cutoff 2.5 sigma_AA for every pair (not 2.5 sigma_ab)
  ts_global truncated-and-shifted LJ with one cutoff 2.5 sigma_AA for every pair
Definition variants (q = 7.25 instead of the measured peak, a single time origin instead of all,
all particles instead of A only) are evaluated on every run's frames. Prints one JSON object (``--out FILE``: also
there; ``--record``: also benchmarks/results/tau_alpha_variants_T<T>[_<tag>].json).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: record.py
from record import add_arguments, emit
from tau_alpha import lammps_tau, protocol, summary

VARIANTS = {
    "base": {},
    "ts": {"potential": "ts"},
    "nvt": {"production_thermostat": "nvt"},
    "langevin": {"production_thermostat": "langevin"},
    "n4096": {"n_particles": 4096},
    "ts4096": {"potential": "ts", "n_particles": 4096},
    "sf_global": {"potential": "sf-global"},
    "ts_global": {"potential": "ts-global"},
}
KEYS = (
    "tau_alpha",
    "tau_alpha_q7.25",
    "tau_alpha_single_origin",
    "tau_alpha_all_particles",
    "q",
    "mean_potential_energy",
    "production_mean_temperature",
)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--first-seed", type=int, default=2001)
    p.add_argument("--temperature", type=float, default=0.8)
    p.add_argument("--variants", default="base,ts,nvt,langevin,n4096")
    p.add_argument("--nprocs", type=int, default=1, help="MPI ranks for LAMMPS")
    p.add_argument("--tag", default="")
    add_arguments(p, "tau_alpha_variants_T<T>[_<tag>]")
    a = p.parse_args()
    proto = protocol(a.temperature)
    table, runs = {}, {}
    for name in a.variants.split(","):
        opts = {"n_particles": 1000, **VARIANTS[name]}
        rs = [
            lammps_tau(
                a.temperature,
                seed=a.first_seed + k,
                equilibration_time=proto["equilibration_time"],
                every=proto["every"],
                n_frames=proto["n_frames"],
                nprocs=a.nprocs,
                **opts,
            )
            for k in range(a.seeds)
        ]
        table[name] = {key: summary([r[key] for r in rs]) for key in KEYS}
        table[name]["wall_s"] = float(sum(r["wall_s"] for r in rs))
        runs[name] = [{k: v for k, v in r.items() if k not in ("fs", "fs_times")} for r in rs]
    if "base" in table:
        b = table["base"]["tau_alpha"]
        for row in table.values():
            m = row["tau_alpha"]
            r = m["mean"] / b["mean"]
            row["tau_ratio_to_base"] = {
                "value": r,
                "stderr": r * float(np.hypot(m["stderr"] / m["mean"], b["stderr"] / b["mean"])),
            }
    emit(
        f"tau_alpha_variants_T{a.temperature:g}" + (f"_{a.tag}" if a.tag else ""),
        {"temperature": a.temperature, "protocol": proto, "seeds": a.seeds, "table": table, "runs": runs},
        a,
    )


if __name__ == "__main__":
    main()

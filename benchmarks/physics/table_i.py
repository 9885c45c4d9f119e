"""Table I of the paper against each dynamics: tau_alpha(T, N) for NVE, Nose-Hoover and momentum-conserving
Langevin, in OpenMM (tbotan) and LAMMPS, many independent runs (docs/tau_alpha.md).

    python benchmarks/physics/table_i.py --temperature 0.8 --N 1000 --seeds 8 [--dynamics nve,nose-hoover,langevin]
                                         [--engines openmm,lammps] [--workers 2] [--tag X] [--out FILE] [--record]

Every run: random start, minimisation, Langevin NVT equilibration of 30 x tau (the prior: Table I's, or --prior;
extended by OpenMM when its measured tau is longer), fresh Maxwell-Boltzmann velocities (zero momentum), then the
production run in the dynamics under test, with frames every tau/40 for 10 tau; F_s of the A particles at the
first peak of S_AA(q) over all time origins; tau_alpha = its 1/e crossing (tbotan.md.relaxation, the same
functions for both engines). The dynamics as the spec's field names it (tbotan.md.dynamics):
  nve          OpenMM VerletIntegrator                 | LAMMPS fix nve
  nose-hoover  OpenMM NoseHooverIntegrator, tau 0.5    | LAMMPS fix nvt, Tdamp 0.5
  langevin     tbotan's zero-sum BAOAB, friction 1     | LAMMPS fix nve + fix langevin damp 1.0 zero yes
The dynamics of one (engine, seed) share one equilibration: each production run starts from its state with the
same velocities (a paired comparison; the same runs as separate calls with that seed, for a third of the cost).
Runs go ``--workers`` at a time (one thread each) and are appended to <name>.jsonl as they finish, <name> being
table_i_T<T>_N<N>[_<tag>]: in benchmarks/results/ with ``--record``, beside ``--out FILE``, else in a scratch
folder (record.log_path); a rerun skips the (engine, dynamics, seed) already there, so a long table can be made in
several sittings. The summary (mean, standard error, ratio to Table I) is printed (``--out FILE``: also there;
``--record``: also benchmarks/results/<name>.json).

    python benchmarks/physics/table_i.py --table   # every (T, N) recorded, as the markdown table of docs/tau_alpha.md
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

from tbotan import core
from tbotan.md import relaxation

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: record.py
from record import RESULTS, add_arguments, emit, log_path
from tau_alpha import lammps_taus, protocol, summary

DYNAMICS = {
    "nve": {"kind": "nve"},
    "nose-hoover": {"kind": "nose-hoover", "time_constant": 0.5},
    "langevin": {"kind": "langevin", "friction": 1.0, "zero_sum_noise": True},
}
LAMMPS = {"nve": "nve", "nose-hoover": "nvt", "langevin": "langevin"}  # Tdamp 0.5; damp = 1 / friction, `zero yes`
KEEP = ("tau_alpha", "tau_alpha_q7.25", "q", "mean_potential_energy", "pressure", "mean_pressure", "equilibration_time")


def one_seed(engine: str, dynamics: list[str], temperature: float, n: int, seed: int, guess=None) -> list[dict]:
    """The runs of one seed: one equilibration, then a production run per dynamics from its state."""
    os.environ["OPENMM_CPU_THREADS"] = "1"
    start = time.perf_counter()
    if engine == "openmm":
        rs = relaxation.measure_tau_alphas(temperature, n, [DYNAMICS[d] for d in dynamics], seed=seed, guess=guess)
    else:
        p = protocol(temperature, guess=guess)
        p = (p["equilibration_time"], p["every"], p["n_frames"])
        thermostats = [LAMMPS[d] for d in dynamics]
        rs = lammps_taus(temperature, n, 1000 + seed, *p, thermostats, damp=1.0, nh_damp=0.5)
    wall = time.perf_counter() - start
    return [
        {
            "engine": engine,
            "dynamics": d,
            "seed": seed,
            "paired": len(dynamics),
            **{k: r.get(k) for k in KEEP},
            "wall_s": wall / len(dynamics),
            "prior": guess or relaxation.guess_tau(temperature),
            "equilibration_tau": r["equilibration_time"] / r["tau_alpha"],  # >= 30 where the prior was long enough
        }
        for d, r in zip(dynamics, rs)
    ]


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--temperature", type=float, default=0.8)
    p.add_argument("--N", type=int, default=1000)
    p.add_argument("--seeds", type=int, default=8, help="independent runs per (engine, dynamics)")
    p.add_argument("--first-seed", type=int, default=1)
    p.add_argument("--dynamics", default="nve,nose-hoover,langevin")
    p.add_argument("--engines", default="openmm,lammps")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--tag", default="")
    p.add_argument("--prior", type=float, help="the tau that sizes the runs (default: Table I's, interpolated)")
    p.add_argument("--table", action="store_true", help="print the table of the recorded table_i_T*_N*.jsonl")
    add_arguments(p, "table_i_T<T>_N<N>[_<tag>]")
    a = p.parse_args()
    if a.table:
        print(markdown_table())
        return
    name = f"table_i_T{a.temperature:g}_N{a.N}" + (f"_{a.tag}" if a.tag else "")
    log = log_path(name, a)
    done = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    have = {(r["engine"], r["dynamics"], r["seed"]) for r in done}
    jobs = [  # per (engine, seed): the dynamics still missing, run from one equilibration
        (e, [d for d in a.dynamics.split(",") if (e, d, s) not in have], s)
        for s in range(a.first_seed, a.first_seed + a.seeds)
        for e in a.engines.split(",")
    ]
    with ProcessPoolExecutor(a.workers) as pool:
        futures = [pool.submit(one_seed, e, ds, a.temperature, a.N, s, a.prior) for e, ds, s in jobs if ds]
        for f in as_completed(futures):
            for r in f.result():
                done.append(r)
                with log.open("a") as out:
                    out.write(json.dumps(r) + "\n")
                print(json.dumps(r), flush=True)
    table_i = table_i_tau(a.temperature)
    rows = []
    for d in a.dynamics.split(","):
        for e in a.engines.split(","):
            s = summary([r["tau_alpha"] for r in done if r["engine"] == e and r["dynamics"] == d])
            u = summary([r["mean_potential_energy"] for r in done if r["engine"] == e and r["dynamics"] == d])
            rows.append(
                {
                    "dynamics": d,
                    "parameters": DYNAMICS[d],
                    "engine": e,
                    "tau_alpha": s,
                    "relative_error": s["stderr"] / s["mean"] if s["n"] > 1 else None,
                    "over_table_i": s["mean"] / table_i if table_i else None,
                    "mean_potential_energy": u["mean"],
                }
            )
    emit(name, {"temperature": a.temperature, "N": a.N, "table_i": table_i, "rows": rows, "runs": len(done)}, a)


def table_i_tau(temperature: float) -> float | None:
    return next((tau for t, tau in core.TABLE_I.items() if abs(t - temperature) < 1e-9), None)


def measured(n: int | None = None) -> list[tuple[float, int, list[dict]]]:
    """(T, N, runs) of every untagged benchmarks/results/table_i_T<T>_N<N>.jsonl (at N = ``n`` only, if given), by T
    falling."""
    out = []
    for path in RESULTS.glob("table_i_T*_N*.jsonl"):
        if path.stem.count("_") > 3:  # a tagged table (e.g. the quickstart's N = 500)
            continue
        T, N = float(path.stem.split("_T")[1].split("_N")[0]), int(path.stem.split("_N")[1])
        if n is None or N == n:
            out.append((T, N, [json.loads(line) for line in path.read_text().splitlines()]))
    return sorted(out, key=lambda x: (-x[0], x[1]))


def _cell(values) -> str:
    s = summary(values)
    if s["n"] < 2:
        return f"{s['mean']:.2f} (1)" if s["n"] else "-"
    return f"{s['mean']:.2f} ± {s['stderr']:.2f} ({s['n']})"


def markdown_table() -> str:
    """tau_alpha per (T, N, dynamics): each engine, both pooled, the ratio to Table I, and the paired ratio to NVE
    (the same equilibrated state and velocities: mean and standard error over the seeds that have both)."""
    lines = [
        "| T | N | dynamics | OpenMM | LAMMPS | both | / Table I | / NVE (paired) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for T, n, runs in measured():
        table_i = table_i_tau(T)
        nve = {(r["engine"], r["seed"]): r["tau_alpha"] for r in runs if r["dynamics"] == "nve"}
        for d in DYNAMICS:
            mine = [r for r in runs if r["dynamics"] == d]
            if not mine:
                continue
            both = [r["tau_alpha"] for r in mine]
            ratio = [r["tau_alpha"] / nve[(r["engine"], r["seed"])] for r in mine if (r["engine"], r["seed"]) in nve]
            paired = "1" if d == "nve" else (_cell(ratio) if ratio else "-")
            lines.append(
                f"| {T:g} | {n} | {d} | {_cell([r['tau_alpha'] for r in mine if r['engine'] == 'openmm'])} | "
                f"{_cell([r['tau_alpha'] for r in mine if r['engine'] == 'lammps'])} | {_cell(both)} | "
                f"{summary(both)['mean'] / table_i:.2f} | {paired} |"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    main()

"""`tau_alpha: measure` of a job spec, as `tbotan simulate` runs it, for several values of the spec's ``seed``:
does the measurement succeed (energy plateau, run lengths), and how do the alpha times scatter?

    python benchmarks/physics/tau_measure.py jobs/quickstart.yaml [--spec-seeds 0 1 2 3 4] [--workers 2]
                                             [--out FILE | --record | --name NAME]

Each (spec seed, T) calls the pipeline's own unit (tbotan.data.pipeline.measure_tau) with the seed the pipeline
derives for it, the spec's N, dt and dynamics, one per process (``--workers`` side by side, one thread each). A
failure is recorded with its message (TauAlphaError: the energy still drifting, or a run too short), not raised.
Prints one JSON object: per T the alpha time of each seed, their mean and standard deviation, the energy-plateau
check of each (drift, standard error, statistical inefficiency) and the failures.
"""

import argparse
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

os.environ.setdefault("OPENMM_CPU_THREADS", "1")

from tbotan.data.pipeline import measure_tau, seeds, temperature_key  # noqa: E402
from tbotan.data.spec import load_spec  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: record.py
from record import add_arguments, emit  # noqa: E402  (prints the result with its command, writes it where asked)


def one(spec_path: str, spec_seed: int, temperature: float) -> dict:
    spec = load_spec(spec_path)
    seed = int(seeds(spec_seed, temperature_key(temperature), 0)[0])  # as tbotan.data.pipeline derives it
    start = time.perf_counter()
    try:
        r = measure_tau(temperature, spec.N, seed, spec.dt, spec.dynamics.parameters())
        out = {"tau_alpha": r["tau_alpha"], "energy_plateau": r["energy_plateau"], "ok": True}
        out["equilibration_time"] = r["equilibration_time"]
    except Exception as e:  # noqa: BLE001  (a failure is the measurement's result here)
        out = {"ok": False, "error": f"{type(e).__name__}: {e}"}
    wall = round(time.perf_counter() - start, 1)
    return {"spec_seed": spec_seed, "T": temperature, "seed": seed, "wall_s": wall, **out}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("spec")
    p.add_argument("--spec-seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--workers", type=int, default=2)
    add_arguments(p, "tau_measure")
    args = p.parse_args()
    spec = load_spec(args.spec)
    temps = [float(t) for t in spec.temperatures]
    with ProcessPoolExecutor(args.workers) as pool:
        jobs = [pool.submit(one, args.spec, s, T) for T in sorted(temps) for s in args.spec_seeds]
        runs = [j.result() for j in jobs]
    rows = []
    for T in sorted(temps):
        mine = [r for r in runs if r["T"] == T]
        taus = [r["tau_alpha"] for r in mine if r["ok"]]
        rows.append(
            {
                "T": T,
                "succeeded": len(taus),
                "of": len(mine),
                "tau_alpha_mean": float(np.mean(taus)) if taus else None,
                "tau_alpha_std": float(np.std(taus)) if taus else None,
                "max_drift_over_stderr": max(
                    (abs(r["energy_plateau"]["drift"]) / r["energy_plateau"]["stderr"] for r in mine if r["ok"]),
                    default=None,
                ),
            }
        )
    emit(
        "tau_measure",
        {"spec": args.spec, "N": spec.N, "dynamics": spec.dynamics.parameters(), "rows": rows, "runs": runs},
        args,
    )


if __name__ == "__main__":
    main()

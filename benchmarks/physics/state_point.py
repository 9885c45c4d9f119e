"""Is BOTAN's T = 0.44 state point this code's? The potential energy per particle of tbotan's equilibrated states
at higher T, extrapolated to 0.44 with the Rosenfeld-Tarazona law, beside the U/N (and P) of BOTAN's real files.

    python benchmarks/physics/state_point.py [--store storage/botan_sample.zarr] [--N 1000] [--out FILE] [--record]

The equilibrated states are those of `benchmarks/physics/table_i.py` (benchmarks/results/table_i_T<T>_N<N>.jsonl:
every run's Langevin NVT equilibration, 30 tau long; the runs of one (engine, seed) share one equilibration and count
once). The law: U/N = a + b T^(3/5) at fixed density (Rosenfeld & Tarazona 1998; it holds for the supercooled KA
liquid), fitted by weighted least squares with each T's standard error; the extrapolation's error from the fit's
covariance. The pressure P = rho T + W/3V is fitted the same way (W/3V = c + d T^(3/5): the virial follows U in a
Lennard-Jones liquid) where at least two temperatures recorded it. The store is `tbotan import botan` of
pyg_botan's small_data/ (docs/import.md); its `energy_thermal` and `pressure_thermal` (computed here with
tbotan.md.engine.pressure where the store predates it) are the files' t = 0 configurations. Prints one JSON
object (``--out FILE``: also there; ``--record``: also benchmarks/results/state_point.json).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import zarr

from tbotan import core
from tbotan.md import engine

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: record.py
from record import add_arguments, emit
from table_i import measured
from tau_alpha import summary

EXPONENT = 3 / 5


def equilibrated_states(n: int) -> dict[float, dict]:
    """Per T: U/N (and P where recorded) of every independent equilibration at N = ``n``."""
    out = {}
    for T, _, rows in measured(n):
        runs = {(r["engine"], r["seed"]): r for r in rows}  # the dynamics of one (engine, seed) share a state
        u = [r["mean_potential_energy"] for r in runs.values()]
        p = [r.get("pressure") or r.get("mean_pressure") for r in runs.values()]
        p = [x for x in p if x is not None]
        out[T] = {"runs": len(u), "U": _mean(u), "P": _mean(p) if len(p) > 1 else None}
    return out


def _mean(v) -> dict:
    s = summary(v)
    return {"mean": s["mean"], "stderr": s["stderr"], "n": s["n"]}


def extrapolate(ts, values, errors, target: float) -> dict:
    """Weighted least squares of values = a + b T^(3/5); the value at ``target`` and its standard error."""
    x = np.asarray(ts) ** EXPONENT
    design = np.stack([np.ones_like(x), x], axis=1)
    w = 1 / np.maximum(np.asarray(errors), 1e-6) ** 2
    cov = np.linalg.inv(design.T @ (w[:, None] * design))
    coef = cov @ design.T @ (w * np.asarray(values))
    at = np.array([1.0, target**EXPONENT])
    residuals = np.asarray(values) - design @ coef
    return {
        "a": float(coef[0]),
        "b": float(coef[1]),
        "at": target,
        "value": float(at @ coef),
        "stderr": float(np.sqrt(at @ cov @ at)),
        "chi2": float(np.sum(w * residuals**2)),
        "dof": len(ts) - 2,
    }


def botan(store: Path) -> dict:
    g = zarr.open_group(str(store), mode="r")["T0.440"]
    done = g["done"][:]
    u = g["energy_thermal"][:][done]
    if "pressure_thermal" in g:
        p = g["pressure_thermal"][:][done]
    else:
        box = core.box_length(g["types"].shape[1])
        p = np.array([engine.pressure(g["types"][c], g["thermal"][c], box, 0.44) for c in np.flatnonzero(done)])
    return {
        "files": int(done.sum()),
        "U": {"mean": float(u.mean()), "std": float(u.std(ddof=1)), "stderr": float(u.std(ddof=1) / np.sqrt(len(u)))},
        "P": {"mean": float(p.mean()), "std": float(p.std(ddof=1)), "stderr": float(p.std(ddof=1) / np.sqrt(len(p)))},
    }


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--store", default=str(Path(__file__).resolve().parents[2] / "storage" / "botan_sample.zarr"))
    p.add_argument("--N", type=int, default=1000)
    add_arguments(p, "state_point")
    a = p.parse_args()
    states = equilibrated_states(a.N)
    ts = sorted(states)
    result = {"N": a.N, "states": {f"{t:g}": states[t] for t in ts}}
    result["U_extrapolated"] = extrapolate(
        ts, [states[t]["U"]["mean"] for t in ts], [states[t]["U"]["stderr"] for t in ts], 0.44
    )
    with_p = [t for t in ts if states[t]["P"] is not None]
    if len(with_p) >= 2:
        rho = core.DENSITY
        virial = [states[t]["P"]["mean"] - rho * t for t in with_p]
        fit = extrapolate(with_p, virial, [states[t]["P"]["stderr"] for t in with_p], 0.44)
        fit["value"] += rho * 0.44  # back to P
        result["P_extrapolated"] = fit
    if Path(a.store).exists():
        b = result["botan"] = botan(Path(a.store))
        u = result["U_extrapolated"]
        result["U_difference_in_sigma"] = (b["U"]["mean"] - u["value"]) / np.hypot(b["U"]["stderr"], u["stderr"])
        if "P_extrapolated" in result:
            pe = result["P_extrapolated"]
            result["P_difference_in_sigma"] = (b["P"]["mean"] - pe["value"]) / np.hypot(b["P"]["stderr"], pe["stderr"])
    emit("state_point", result, a)


if __name__ == "__main__":
    main()

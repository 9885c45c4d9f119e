"""Where a FIRE quench's time goes, on one CPU thread (docs/quickstart.md, "Time").

    tbotan run jobs/quickstart.yaml                         # first: a store (any finished one)
    python benchmarks/performance/fire_cost.py --store storage/quickstart.zarr [--temperature 0.64]
                                               [--configurations 4] [--steps 300] [--record | --name NAME]

The store's own thermal configurations at one temperature, each quenched as the pipeline quenches it (the CPU
platform in mixed precision to the hand-off, then Reference in double to the tolerance), with the steps of each
stage and the wall time; then FIRE steps per second on each of the two platforms from the first inherent structure.
A stage's share of a quench is its steps over that rate. Prints one JSON object (``--out FILE``: also there;
``--record``: also benchmarks/results/fire_cost.json).
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

import numpy as np
import zarr

from tbotan.data.store import group_name
from tbotan.md import engine, fire, potential

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: record.py
from record import add_arguments, emit


def stage_steps(platform: str) -> dict:
    """{platform: steps} of a QuenchResult's ``platform`` ("CPU(...):800+Reference:800")."""
    return {name: int(n) for name, n in re.findall(r"([^+:]+(?:\([^)]*\))?):(\d+)", platform)}


def fire_cost(group, configurations: int, steps: int) -> dict:
    types = group["types"][0]  # (C, N) in every store; the species are the same in each configuration
    box, params = float(group.attrs["L"]), fire.FireParameters()
    quenches = []
    for c in range(configurations):
        t0 = time.perf_counter()
        q = fire.quench(types, group["thermal"][c].astype(np.float64), box, params, platform="CPU")
        quenches.append({"stages": stage_steps(q.platform), "s": time.perf_counter() - t0, "mean_force": q.mean_force})
        if c == 0:
            first = q.positions
    system, rates = potential.make_system(types, box), {}
    for choice in (engine.choose_platform("mixed", name="CPU"), engine.choose_platform("double")):
        integrator = fire.fire_integrator(params)
        context = engine.make_context(system, integrator, choice, first, np.zeros_like(first))
        integrator.step(10)
        t0 = time.perf_counter()
        integrator.step(steps)
        rates[choice.describe()] = steps / (time.perf_counter() - t0)
        del context
    return {"handoff": params.handoff, "tolerance": params.tolerance, "quenches": quenches, "fire_steps_per_s": rates}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--store", required=True, help="a store made by `tbotan run` (its thermal configurations)")
    p.add_argument("--temperature", type=float, default=0.64)
    p.add_argument("--configurations", type=int, default=4)
    p.add_argument("--steps", type=int, default=300, help="FIRE steps per rate measurement")
    add_arguments(p, "fire_cost")
    a = p.parse_args()
    group = zarr.open_group(a.store, mode="r")[group_name(a.temperature)]
    result = {"store": a.store, "T": a.temperature, "N": int(group["thermal"].shape[1]), "threads": 1}
    emit("fire_cost", {**result, **fire_cost(group, a.configurations, a.steps)}, a)


if __name__ == "__main__":
    main()

"""One GPU in a few minutes: MD throughput with concurrent replicas, FIRE in double, a training step.

    python benchmarks/gpu.py [--N 4096] [--concurrent 1 2 4 8] [--steps 2000] [--platform CUDA]
    bash benchmarks/gpu.sh                      # the same, with the wheel set-up of a bare GPU node

1. MD: P processes at once (P in --concurrent), each with its own OpenMM context of the KA system at N (NVE,
   dt = 0.005, mixed precision) on the platform, all stepping at the same time as the replicas of one GPU worker
   job do (under CUDA MPS when the node runs it: hpc/slurm-gpu.yaml's ``mps``). Reported: steps/s of each,
   and the aggregate particle-steps/s = P N steps / wall.
2. FIRE: one quench of a thermal configuration to the inherent structure, in double on the platform
   (tbotan.md.fire: a GPU runs the whole quench in double).
3. A training step of the paper's 64 x 7 network at N: eager, compiled and compiled under bf16 autocast (scatter in
   fp32) where CUDA is present, eager and compiled otherwise (benchmarks/training.py).
Without a GPU (``--platform CPU``, what CI runs with a small N) every path but CUDA's runs. Prints one JSON
object and writes benchmarks/results/<name>.json.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import time

import numpy as np
from record import emit

from tbotan import core

T, DT = 0.8, 0.005


def _replica(n: int, steps: int, platform: str, start_at, out, i: int) -> None:
    """One process: build a context, warm it up, wait for the others, time ``steps`` steps."""
    from tbotan.md import dynamics, engine

    types, box = core.species(n), core.box_length(n)
    x = np.load(_liquid_path(n))
    v = dynamics.maxwell_boltzmann(n, T, i)
    t0 = time.perf_counter()
    context, integ = dynamics.dynamics_context(types, box, x, v, T, DT, seed=i, platform=platform)
    integ.step(50)
    engine.read_state(context, positions=False, energy=True)
    context_s = time.perf_counter() - t0
    start_at.wait()
    t0 = time.perf_counter()
    integ.step(steps)
    engine.read_state(context, positions=False, energy=True)  # forces the queue to drain
    out.put((i, time.perf_counter() - t0, context_s))


def _liquid_path(n: int) -> str:
    return os.path.join(os.environ.get("TMPDIR", "/tmp"), f"tbotan_gpu_liquid_{n}.npy")


def liquid(n: int, platform: str) -> np.ndarray:
    """A KA liquid of N particles at T = 0.8 (random start, 2 tau_LJ of Langevin), kept for the processes."""
    from tbotan.md import dynamics

    path = _liquid_path(n)
    if not os.path.exists(path):
        types, box = core.species(n), core.box_length(n)
        x = dynamics.random_configuration(types, box, seed=0, platform=platform)
        np.save(path, dynamics.equilibrate(types, x, box, T, 2.0, seed=0, platform=platform).positions)
    return np.load(path)


def concurrent_md(n: int, processes: int, steps: int, platform: str) -> dict:
    ctx = mp.get_context("spawn")
    start_at, out = ctx.Barrier(processes + 1), ctx.Queue()
    procs = [ctx.Process(target=_replica, args=(n, steps, platform, start_at, out, i)) for i in range(processes)]
    for p in procs:
        p.start()
    start_at.wait()
    t0 = time.perf_counter()
    results = [out.get() for _ in procs]
    wall = time.perf_counter() - t0
    for p in procs:
        p.join()
    per = [s for _, s, _ in results]
    return {
        "processes": processes,
        "steps_per_s_each": float(np.mean([steps / s for s in per])),
        "aggregate_particle_steps_per_s": processes * n * steps / wall,
        "context_s": float(np.mean([c for _, _, c in results])),
        "wall_s": wall,
    }


def fire_quench(n: int, platform: str) -> dict:
    from tbotan.md import fire

    types, box = core.species(n), core.box_length(n)
    x = liquid(n, platform)
    t0 = time.perf_counter()
    q = fire.quench(types, x, box, platform=None if platform == "CPU" else platform)
    return {
        "seconds": time.perf_counter() - t0,
        "steps": q.steps,
        "platform": q.platform,
        "mean_force": q.mean_force,
        "energy_per_particle": q.energy_per_particle,
    }


def training_step(n: int, steps: int, compile_: bool) -> list[dict]:
    import torch
    from training import graph_from_arrays, time_steps

    from tbotan.md import fire

    types, box = core.species(n), core.box_length(n)
    x = liquid(n, "CPU")
    graph = graph_from_arrays(types, x, fire.quench(types, x, box, fire.FireParameters(tolerance=1e-6)).positions, box)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    modes = [("off", False)] + ([("on", False)] if compile_ else [])
    if device == "cuda":
        modes.append(("on", True))
    rows = []
    for mode, bf16 in modes:
        r = time_steps(graph, device, steps, mode, bf16)
        rows.append({"device": device, "compile": mode, "bf16": bf16, **r})
    return rows


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--N", type=int, default=4096)
    p.add_argument("--concurrent", type=int, nargs="+", default=[1, 2, 4, 8])
    p.add_argument("--steps", type=int, default=2000, help="MD steps each process times")
    p.add_argument("--platform", default=None, help="OpenMM platform (default: CUDA where present, else CPU)")
    p.add_argument("--train-steps", type=int, default=5)
    p.add_argument("--no-compile", action="store_true", help="skip torch.compile (it takes tens of seconds)")
    p.add_argument("--name", default="gpu")
    args = p.parse_args()
    from tbotan.md import engine

    platform = args.platform or ("CUDA" if "CUDA" in engine.available_platforms() else "CPU")
    liquid(args.N, platform)
    md = [concurrent_md(args.N, k, args.steps, platform) for k in args.concurrent]
    emit(
        args.name,
        {
            "N": args.N,
            "platform": platform,
            "gpu": _gpu_name(),
            "md": md,
            "best_aggregate_particle_steps_per_s": max(r["aggregate_particle_steps_per_s"] for r in md),
            "fire": fire_quench(args.N, platform),
            "training": training_step(args.N, args.train_steps, not args.no_compile),
        },
    )


def _gpu_name() -> str | None:
    try:
        import torch

        return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except ImportError:
        return None


if __name__ == "__main__":
    main()

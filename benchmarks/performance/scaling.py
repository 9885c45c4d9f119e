"""Cost of every stage against N, with the fitted exponent: t ~ N^a (least squares in log-log).

    python benchmarks/performance/scaling.py [--sizes 1000 4096 16384] [--f-sizes 32768 65536] [--threads 2]
                                             [--out FILE] [--record | --name NAME]

Stages, each timed in its own process (so that its peak resident memory is its own):
  md_step      one NVE step (OpenMM CPU platform as tbotan sets it up), median of 3 blocks after a warm-up
  fire         FIRE per step, on the mixed CPU platform and on the double platform (below)
  targets      C_B and E_jk of one configuration from K = 8 frames (tbotan.data.targets)
  graph        the IS graph's edges and edge features (tbotan.data.targets.graph_edges)
  train_step   one training step of the paper's 64 x 7 network, full loss, eager (benchmarks/performance/training.py)
  train_step_checkpoint   the same with ``training.checkpoint`` (each message-passing step recomputed)
  f            the loss's F(X, d) and its gradient alone (tbotan.learn.loss)
  sb           S_B(q) of one configuration up to q = 10 (tbotan.analysis.fourpoint)
The prepared configuration's inherent structure is 500 FIRE steps from it (enough for a graph). The fire stage
times the two stages of a CPU quench per step: 1000 steps on the mixed-precision CPU platform and 200 on the
double-precision one (Reference on a CPU), each from the thermal configuration. How many steps a quench takes
grows with N too (to 1e-3 from T = 0.8: 1500 at N = 1000, 4800 at 4096; not timed here).
``--f-sizes`` adds larger N for F alone, where its
cells make it linear (L > 25.7), and ``--train-sizes`` for the training step (its memory at N = 32768).
The configuration of each N is made once (random start, short Langevin NVT at
T = 0.8, FIRE; 8 frames of NVE from it), kept in --work, and read by every stage. Prints one JSON object
(``--out FILE``: also there; ``--record``: also benchmarks/results/scaling.json; ``--name NAME``: NAME.json); each
row also goes to a .jsonl as it is measured (beside that file, or in a scratch folder: record.log_path), and a
rerun of the same command skips the rows already there (delete the .jsonl to measure again).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: record.py
from record import add_arguments, emit, log_path

STAGES = ("md_step", "fire", "targets", "graph", "train_step", "train_step_checkpoint", "f", "sb")
T = 0.8
DT = 0.005


def prepare(n: int, work: Path) -> Path:
    """The configuration of N particles: thermal, inherent, 8 NVE frames 0.1 apart (npz in ``work``)."""
    from tbotan import core
    from tbotan.md import dynamics, engine, fire, potential

    path = work / f"ka_{n}.npz"
    if path.exists():
        return path
    types, box = core.species(n), core.box_length(n)
    x = dynamics.random_configuration(types, box, seed=1)
    eq = dynamics.equilibrate(types, x, box, T, 1.0, seed=1)
    # 500 FIRE steps: near enough to the inherent structure for its graph (~41 edges per particle); a quench to
    # convergence takes ~10^4 steps at N = 16384
    p = fire.FireParameters()
    state = {"dt": p.dt_init, "alpha": p.alpha_start, "npos": 0}
    mixed = engine.choose_platform("mixed", name="CPU")
    zero = np.zeros_like(eq.positions)
    inherent = fire._fire_stage(potential.make_system(types, box), p, mixed, eq.positions, zero, state, 0.0, 500)
    inherent = inherent[0]["positions"]
    context, integ = dynamics.dynamics_context(types, box, eq.positions, eq.velocities, T, DT, seed=1)
    frames = []
    for _ in range(8):
        integ.step(20)
        frames.append(engine.read_state(context)["positions"])
    np.savez(path, types=types, box=box, thermal=eq.positions, inherent=inherent, frames=np.array(frames)[:, None])
    return path


def median_time(fn, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def run_stage(stage: str, path: Path) -> dict:
    """Seconds (and the unit they are per) of ``stage`` on the configuration at ``path``."""
    import torch

    from tbotan.analysis import fourpoint
    from tbotan.data import targets
    from tbotan.learn import loss
    from tbotan.md import dynamics, fire

    c = np.load(path)
    types, box, thermal, inherent, frames = c["types"], float(c["box"]), c["thermal"], c["inherent"], c["frames"]
    if stage == "md_step":
        v = dynamics.maxwell_boltzmann(len(types), T, 1)
        _, integ = dynamics.dynamics_context(types, box, thermal, v, T, DT, seed=1)
        integ.step(20)
        return {"seconds": median_time(lambda: integ.step(50)) / 50, "per": "step"}
    if stage == "fire":  # the two stages of a CPU quench, each per step: 1000 steps mixed, then 200 in double
        from tbotan.md import engine, potential

        p = fire.FireParameters()
        system = potential.make_system(types, box)
        times = {}
        for name, choice, steps in (
            ("mixed", engine.choose_platform("mixed", name="CPU"), 1000),
            ("double", engine.choose_platform("double"), 200),
        ):
            state = {"dt": p.dt_init, "alpha": p.alpha_start, "npos": 0}
            start = time.perf_counter()
            fire._fire_stage(system, p, choice, thermal, np.zeros_like(thermal), state, 0.0, steps)
            times[name] = ((time.perf_counter() - start) / steps, choice.describe())
        return {
            "seconds": times["mixed"][0],
            "per": "FIRE step on the mixed CPU platform (1000 steps from the thermal configuration)",
            "double_step_s": times["double"][0],
            "double_platform": times["double"][1],
        }
    if stage == "targets":
        edges = targets.graph_edges(inherent, box)
        return {
            "seconds": median_time(
                lambda: (
                    targets.bond_breaking(types, thermal, frames, box),
                    targets.edge_targets(edges, thermal, frames, box),
                )
            ),
            "per": "configuration, K = 8",
        }
    if stage == "graph":
        return {"seconds": median_time(lambda: targets.graph_edges(inherent, box)), "per": "configuration"}
    if stage == "f":
        x = torch.tensor(np.random.default_rng(0).normal(size=len(types)), dtype=torch.float32, requires_grad=True)
        pos = torch.tensor(thermal, dtype=torch.float32)
        return {
            "seconds": median_time(lambda: loss.spatial_correlation(x, pos, box).sum().backward()),
            "per": "F and its gradient",
        }
    if stage == "sb":
        cb = targets.bond_breaking(types, thermal, frames, box)[0]
        return {"seconds": median_time(lambda: fourpoint.four_point(thermal, types, cb, box, 10.0)), "per": "S_B(q)"}
    if stage in ("train_step", "train_step_checkpoint"):
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from training import graph_from_arrays, time_steps

        graph = graph_from_arrays(types, thermal, inherent, box)
        r = time_steps(graph, "cpu", 2, "off", checkpoint=stage == "train_step_checkpoint")
        return {"seconds": r["seconds_per_step"], "per": "training step (eager, 64 x 7)", "edges": len(graph.edges)}
    raise ValueError(f"unknown stage {stage!r}")


def child(stage: str, n: int, work: Path, threads: int) -> dict:
    """``stage`` at ``n`` in a fresh process: its seconds and its peak resident memory."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "TBOTAN_SCALING_THREADS": str(threads)}
    out = subprocess.run(
        [sys.executable, __file__, "--one", stage, str(n), "--work", str(work)],
        env=env,
        capture_output=True,
        text=True,
    )
    if out.returncode:
        return {"stage": stage, "N": n, "error": out.stderr.strip().splitlines()[-1] if out.stderr else "failed"}
    return {"stage": stage, "N": n, **json.loads(out.stdout.strip().splitlines()[-1])}


def exponent(rows: list[dict]) -> float | None:
    ok = [r for r in rows if "seconds" in r]
    if len(ok) < 2:
        return None
    return float(np.polyfit(np.log([r["N"] for r in ok]), np.log([r["seconds"] for r in ok]), 1)[0])


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--sizes", type=int, nargs="+", default=[1000, 4096, 16384])
    p.add_argument("--f-sizes", type=int, nargs="*", default=[32768, 65536], help="extra N for F(X, d) alone")
    p.add_argument("--train-sizes", type=int, nargs="*", default=[32768], help="extra N for the training step")
    p.add_argument("--stages", nargs="+", default=list(STAGES), choices=STAGES)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--work", default="/tmp/tbotan_scaling", help="where the configurations are kept")
    add_arguments(p, "scaling")
    p.add_argument("--one", nargs=2, metavar=("STAGE", "N"), help=argparse.SUPPRESS)
    args = p.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    if args.one:
        import torch

        torch.set_num_threads(int(os.environ.get("TBOTAN_SCALING_THREADS", args.threads)))
        result = run_stage(args.one[0], prepare(int(args.one[1]), work))
        result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(result))
        return

    extra = {"f": args.f_sizes, "train_step": args.train_sizes, "train_step_checkpoint": args.train_sizes}
    log = log_path("scaling", args)  # every row as it is measured
    done = {}
    if log.exists():
        for line in log.read_text().splitlines():
            row = json.loads(line)
            if "error" not in row:
                done[(row["stage"], row["N"])] = row
    results = {}
    for stage in args.stages:
        rows = []
        for n in sorted(set(args.sizes) | set(extra.get(stage, []))):
            if (stage, n) in done:  # measured by an earlier, interrupted run of the same command
                rows.append(done[(stage, n)])
                continue
            prepare(n, work)
            rows.append(child(stage, n, work, args.threads))
            with log.open("a") as f:
                f.write(json.dumps(rows[-1]) + "\n")
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
        main_rows = [r for r in rows if r["N"] in args.sizes]
        results[stage] = {
            "exponent": exponent(main_rows),
            "exponent_largest_two": exponent(rows[-2:]),
            "rows": rows,
        }
    emit("scaling", {"threads": args.threads, "cpu_count": os.cpu_count(), "stages": results}, args)


if __name__ == "__main__":
    main()

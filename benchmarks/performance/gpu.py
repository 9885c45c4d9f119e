"""The acceptance check of a GPU node: is the platform right, does it agree with the CPU, how fast is it. At the
defaults it takes under 8 minutes on one GPU (gpu.sh stops it at 480 s; ``--out`` then holds the sections done).

    bash benchmarks/performance/gpu.sh [--platform auto] [--N 4096] [--concurrent 1 2 4 8] [--steps 2000] [--out FILE]
    bash benchmarks/performance/gpu.sh --platform CPU --N 300 --concurrent 1 2 --steps 200 --train-steps 1 --no-compile
    python3 benchmarks/performance/gpu.py ...          # the same without gpu.sh's wheel set-up of a bare GPU node

The second command is the one CI runs. Prints one JSON object (also written to ``--out FILE``; to
benchmarks/results/gpu.json with ``--record``, to benchmarks/results/<NAME>.json with ``--name NAME``) with one
entry per section; every section that checks something has ``ok``, and the process exits 1 when any ``ok`` is
false (the JSON is printed all the same; a section that raised carries its ``error``). P is the platform under
test (``--platform``, default ``auto``: tbotan.md.engine.resolve_platform, CUDA > HIP > OpenCL on a GPU > CPU).

platforms  the OpenMM platforms found, what ``auto`` picks, P's properties (DeviceName, Precision, ...).
ensemble   a 2-replica iso-configurational ensemble (one thermal start, seeds s0 and s1, NVE, 200 steps of
           dt = 0.005 at T = 0.8) on P and on the CPU platform: max |dx| of the positions and max |dC_B| of the
           bond-breaking targets per particle, within ``TOLERANCE`` (trajectories that differ by rounding only).
fire       one FIRE quench with P running the bulk (in double on a GPU) and Reference the end; its mean force
           re-measured by Reference in double must be < 1e-12.
reuse      replicas A then B in one pooled context (``run_replica(reuse=True)``) against B in a fresh context:
           max |dx| after 200 steps (0 on the CPU platform; rounding-level on OpenCL), and the time to create a
           context against the time of one replica (what not reusing costs).
md         aggregate particle-steps/s at N with 1, 2, 4, 8 replica processes at once on P, each with its own
           context; on a node with ``nvidia-cuda-mps-control`` and P = CUDA, without and with a private MPS daemon.
training   a training step of the paper's 64 x 7 network at N: eager, compiled, and compiled under bf16 on CUDA.
ddp        DistributedDataParallel over 2 ranks (torch.distributed.run): nccl with one GPU per rank where there
           are 2 GPUs, else gloo on the CPU; seconds per step, and that both ranks hold equal parameters after a step.

Absolute times are only meaningful from a GPU node; on a CPU (what CI runs, ``--platform CPU`` or ``OpenCL``
through POCL, with a small N) the checks are the point.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing as mp
import os
import queue
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # training.py (also when this file is imported from elsewhere)
sys.path.insert(0, str(HERE.parent))  # benchmarks/: record.py

from record import add_arguments, recording, result_name, write  # noqa: E402

from tbotan import core  # noqa: E402

T, DT = 0.8, 0.005
SEEDS = (11, 12)  # s0, s1 of the ensemble and of the reuse check
CHECK_STEPS = 200  # the ensemble and reuse runs: TOLERANCE holds for this length (differences grow ~e^(3t))
FRAMES = 4  # observation times of those runs: CHECK_STEPS / 4, ..., CHECK_STEPS
# Measured (OpenCL on POCL in mixed precision against the CPU platform, 200 steps, 4 frames, 2 replicas, T = 0.8):
# max |dx| 1.3e-5 at N = 300; 3.4e-5, 5.7e-5, 5.9e-5 at N = 4096 (three liquids/seed pairs). max |dC_B| 0.0 at
# N = 300 and in two of the N = 4096 runs; in the third 0.05 on 2 particles of 4096 (one bond crossing 1.6 sigma in
# one replica moves a particle's C_B by 1 / (K n_j) ~ 0.04-0.1), |d mean C_B| 5.8e-6. The tolerance is ~8x the
# largest |dx|, allows a bond or two per particle, and ~170x the mean's shift: a wrong force moves them all.
TOLERANCE = {"max_abs_dx": 5e-4, "max_abs_dC_B": 0.15, "abs_d_mean_C_B": 1e-3}
FIRE_RESIDUAL = 1e-12  # mean force of the quenched structure, measured by Reference in double


# --- the configuration ---------------------------------------------------------------------------------------------
def _liquid_path(n: int) -> str:
    return os.path.join(os.environ.get("TMPDIR", "/tmp"), f"tbotan_gpu_liquid_{n}.npy")


def liquid(n: int) -> np.ndarray:
    """A KA liquid of N particles at T = 0.8 (random start, 2 tau_LJ of Langevin), kept on disk for the replica
    processes. Made on the CPU platform whatever is under test (OpenMM's minimiser crashes on POCL's OpenCL)."""
    from tbotan.md import dynamics

    path = _liquid_path(n)
    if not os.path.exists(path):
        types, box = core.species(n), core.box_length(n)
        x = dynamics.random_configuration(types, box, seed=0, platform="CPU")
        x = dynamics.equilibrate(types, x, box, T, 2.0, seed=0, platform="CPU").positions
        np.save(path + ".tmp.npy", x)
        os.replace(path + ".tmp.npy", path)
    return np.load(path)


def _times(steps: int) -> np.ndarray:
    return np.arange(1, FRAMES + 1) * (steps // FRAMES) * DT


# --- sections ------------------------------------------------------------------------------------------------------
def platforms(requested: str) -> tuple[dict, str]:
    import openmm

    from tbotan.md import engine

    auto = engine.resolve_platform("auto")
    chosen = auto if requested == "auto" else engine.resolve_platform(requested)
    return {
        "openmm": openmm.__version__,
        "available": engine.available_platforms(),
        "auto": auto,
        "requested": requested,
        "under_test": chosen,
        "properties": engine.probe(chosen),  # a one-particle context's: DeviceName, Precision (its default), ...
        "md_context": engine.choose_platform("mixed", name=chosen).describe(),  # what the MD runs ask for
        "ok": True,
    }, chosen


def ensemble(n: int, platform: str) -> dict:
    from tbotan.data import targets
    from tbotan.md import dynamics

    types, box, x = core.species(n), core.box_length(n), liquid(n)
    times, frames, seconds = _times(CHECK_STEPS), {}, {}
    for p in dict.fromkeys([platform, "CPU"]):
        t0 = time.perf_counter()
        runs = [dynamics.run_replica(types, x, box, T, times, s, DT, platform=p, reuse=False) for s in SEEDS]
        seconds[p] = time.perf_counter() - t0
        frames[p] = np.stack([r.positions for r in runs])  # (K, n_t, N, 3)
    cb = {p: targets.bond_breaking(types, x, f, box) for p, f in frames.items()}  # (n_t, N)
    dx = np.abs(frames[platform] - frames["CPU"])
    dcb = np.abs(cb[platform] - cb["CPU"])
    measured = {
        "max_abs_dx": float(dx[:, -1].max()),
        "max_abs_dC_B": float(dcb.max()),
        "abs_d_mean_C_B": abs(float(cb[platform].mean() - cb["CPU"].mean())),
    }
    return {
        "platform": platform,
        "against": "CPU",
        "N": n,
        "seeds": list(SEEDS),
        "steps": CHECK_STEPS,
        "dt": DT,
        "T": T,
        **measured,
        "max_abs_dx_per_frame": [float(v) for v in dx.max(axis=(0, 2, 3))],
        "particles_with_dC_B": int((dcb > 0).any(axis=0).sum()),
        "mean_C_B": {p: float(c.mean()) for p, c in cb.items()},
        "mean_C_B_last_frame": {p: float(c[-1].mean()) for p, c in cb.items()},
        "seconds": seconds,
        "tolerance": TOLERANCE,
        "ok": all(np.isfinite(v) and v <= TOLERANCE[k] for k, v in measured.items()),
    }


def fire_quench(n: int, platform: str) -> tuple[dict, np.ndarray]:
    from tbotan.md import engine, fire

    types, box = core.species(n), core.box_length(n)
    x = liquid(n)
    t0 = time.perf_counter()
    q = fire.quench(types, x, box, platform=platform)
    seconds = time.perf_counter() - t0
    _, forces = engine.energy_and_forces(types, q.positions, box)  # Reference, double
    residual = engine.mean_force(forces)
    return {
        "platform": platform,
        "path": q.platform,
        "steps": q.steps,
        "seconds": seconds,
        "mean_force_at_end": q.mean_force,
        "residual_reference": residual,
        "energy_per_particle": q.energy_per_particle,
        "tolerance": FIRE_RESIDUAL,
        "ok": bool(residual < FIRE_RESIDUAL),
    }, q.positions


def reuse(n: int, platform: str) -> dict:
    from tbotan.md import dynamics, engine

    types, box, x = core.species(n), core.box_length(n), liquid(n)
    times = _times(CHECK_STEPS)
    s0, s1 = SEEDS
    v0 = dynamics.maxwell_boltzmann(n, T, s0)
    t0 = time.perf_counter()
    ctx, _ = dynamics.dynamics_context(types, box, x, v0, T, DT, s0, platform=platform)
    engine.read_state(ctx, energy=True)
    context_s = time.perf_counter() - t0
    del ctx
    dynamics._POOL.clear()
    try:
        t0 = time.perf_counter()
        dynamics.run_replica(types, x, box, T, times, s0, DT, platform=platform, reuse=True)  # makes the context
        first_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        b = dynamics.run_replica(types, x, box, T, times, s1, DT, platform=platform, reuse=True)  # borrows it
        reused_s = time.perf_counter() - t0
    finally:
        dynamics._POOL.clear()
    t0 = time.perf_counter()
    fresh = dynamics.run_replica(types, x, box, T, times, s1, DT, platform=platform, reuse=False)
    fresh_s = time.perf_counter() - t0
    dx = float(np.abs(b.positions[-1] - fresh.positions[-1]).max())
    return {
        "platform": platform,
        "steps": CHECK_STEPS,
        "max_abs_dx": dx,
        "tolerance": TOLERANCE["max_abs_dx"],
        "context_s": context_s,
        "replica_reused_s": reused_s,
        "replica_fresh_s": fresh_s,
        "first_replica_s": first_s,
        "cost_of_not_reusing_s": fresh_s - reused_s,
        "context_over_replica": context_s / reused_s,
        "ok": bool(np.isfinite(dx) and dx <= TOLERANCE["max_abs_dx"]),
    }


def _replica(n: int, steps: int, platform: str, start_at, out, i: int) -> None:
    """One process: build a context, warm it up, wait for the others, time ``steps`` steps. An error is sent to
    the parent and breaks the barrier (so that nobody waits for this process)."""
    try:
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
        s = engine.read_state(context, positions=False, energy=True)  # forces the queue to drain
        out.put((i, time.perf_counter() - t0, context_s, s["potential_energy"] / n))
    except BaseException as e:
        out.put((i, f"{type(e).__name__}: {e}"))
        start_at.abort()
        raise


def concurrent_md(n: int, processes: int, steps: int, platform: str, timeout: float = 300) -> dict:
    ctx = mp.get_context("spawn")
    start_at, out = ctx.Barrier(processes + 1), ctx.Queue()
    procs = [ctx.Process(target=_replica, args=(n, steps, platform, start_at, out, i)) for i in range(processes)]
    for p in procs:
        p.start()
    waiting = threading.Event()

    def watch():  # a process that dies before the barrier (a crash, no Python exception) breaks it
        while not waiting.is_set():
            if any(p.exitcode not in (None, 0) for p in procs):
                start_at.abort()
                return
            time.sleep(0.2)

    threading.Thread(target=watch, daemon=True).start()
    results, errors = [], []
    try:
        try:
            start_at.wait(timeout=timeout)
        finally:
            waiting.set()
        t0 = time.perf_counter()
        while len(results) < processes:
            try:
                r = out.get(timeout=1)
            except queue.Empty:
                if any(p.exitcode not in (None, 0) for p in procs) or time.perf_counter() - t0 > timeout:
                    break
                continue
            (errors if isinstance(r[1], str) else results).append(r)
        wall = time.perf_counter() - t0
    except threading.BrokenBarrierError:
        pass
    finally:
        for p in procs:
            p.join(timeout=10)
            if p.is_alive():
                p.terminate()
                p.join()
    if len(results) < processes:
        while not out.empty():
            r = out.get()
            if isinstance(r[1], str):
                errors.append(r)
        codes = [p.exitcode for p in procs]
        raise RuntimeError(f"{processes} replica processes on {platform}: exit codes {codes}; errors {errors}")
    per = [s for _, s, _, _ in results]
    return {
        "processes": processes,
        "steps_per_s_each": float(np.mean([steps / s for s in per])),
        "aggregate_particle_steps_per_s": processes * n * steps / wall,
        "context_s": float(np.mean([c for _, _, c, _ in results])),
        "wall_s": wall,
        "energy_per_particle": [float(e) for *_, e in sorted(results)],
    }


@contextlib.contextmanager
def _environ(**values):
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextlib.contextmanager
def mps_daemon(folder: Path):
    """A private CUDA MPS daemon (its pipe and log under ``folder``) for the processes spawned inside the block."""
    pipe, log = folder / "pipe", folder / "log"
    pipe.mkdir(parents=True)
    log.mkdir(parents=True)
    env = {"CUDA_MPS_PIPE_DIRECTORY": str(pipe), "CUDA_MPS_LOG_DIRECTORY": str(log)}
    subprocess.run(["nvidia-cuda-mps-control", "-d"], env={**os.environ, **env}, check=True, timeout=60)
    try:
        with _environ(**env):
            yield
    finally:
        subprocess.run(
            ["nvidia-cuda-mps-control"], input="quit\n", text=True, env={**os.environ, **env}, timeout=60, check=False
        )


def md(n: int, concurrent: list[int], steps: int, platform: str) -> dict:
    liquid(n)
    runs = []
    if shutil.which("nvidia-cuda-mps-control") is None:
        mps = "not available"
    elif platform != "CUDA":
        mps = f"not used: MPS serves CUDA contexts, the platform is {platform}"
    else:
        mps = "used"
    with tempfile.TemporaryDirectory(prefix="tbotan_mps_") as tmp:
        # without MPS: an empty private pipe directory, so that no daemon of the node's serves these processes
        no_daemon = Path(tmp) / "none"
        no_daemon.mkdir()
        with _environ(CUDA_MPS_PIPE_DIRECTORY=str(no_daemon)) if mps == "used" else contextlib.nullcontext():
            runs += [{"mps": False, **concurrent_md(n, k, steps, platform)} for k in concurrent]
        if mps == "used":
            try:
                with mps_daemon(Path(tmp) / "daemon"):
                    runs += [{"mps": True, **concurrent_md(n, k, steps, platform)} for k in concurrent]
            except (OSError, subprocess.SubprocessError) as e:
                mps = f"failed: {type(e).__name__}: {e}"
    rates = [r["aggregate_particle_steps_per_s"] for r in runs]
    sane = all(
        0 < r["aggregate_particle_steps_per_s"] <= r["processes"] * n * r["steps_per_s_each"] * 1.05
        and np.isfinite(r["energy_per_particle"]).all()
        for r in runs
    )
    return {
        "platform": platform,
        "N": n,
        "steps": steps,
        "mps": mps,
        "runs": runs,
        "best_aggregate_particle_steps_per_s": max(rates),
        "ok": bool(sane and not mps.startswith("failed")),
    }


def training_step(graph, steps: int, compile_: bool) -> list[dict]:
    import torch
    from training import time_steps

    device = "cuda" if torch.cuda.is_available() else "cpu"
    modes = [("off", False)] + ([("on", False)] if compile_ else [])
    if device == "cuda":
        modes.append(("on", True))
    rows = []
    for mode, bf16 in modes:
        r = time_steps(graph, device, steps, mode, bf16)
        rows.append({"device": device, "compile": mode, "bf16": bf16, **r})
    return rows


def ddp(graph, steps: int) -> dict:
    """2 ranks of ``ddp_worker`` under torch.distributed.run."""
    import torch

    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    backend = "nccl" if gpus >= 2 else "gloo"
    note = None
    if gpus == 1:
        note = "nccl with 2 ranks needs 2 GPUs (one per rank); this node has 1: gloo with 2 ranks on the CPU instead"
    with tempfile.TemporaryDirectory(prefix="tbotan_ddp_") as tmp:
        graph_path, out_path = os.path.join(tmp, "graph.pt"), os.path.join(tmp, "ddp.json")
        torch.save(graph, graph_path)
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
        command += [str(Path(__file__).resolve()), "--ddp-worker", graph_path, "--out", out_path]
        command += ["--ddp-backend", backend, "--train-steps", str(steps)]
        root = str(HERE.parents[1])  # the repository root
        path = os.environ.get("PYTHONPATH")
        env = {**os.environ, "PYTHONPATH": root + (os.pathsep + path if path else ""), "OMP_NUM_THREADS": "1"}
        t0 = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
        wall = time.perf_counter() - t0
        if done.returncode != 0 or not os.path.exists(out_path):
            raise RuntimeError(f"torch.distributed.run exited {done.returncode}: {done.stderr[-3000:]}")
        r = json.loads(Path(out_path).read_text())
    return {
        "backend": backend,
        "gpus": gpus,
        **({"note": note} if note else {}),
        **r,
        "launch_wall_s": wall,
        "ok": bool(r["world_size"] == 2 and r["parameters_equal_after_one_step"] and r["parameters_equal_at_end"]),
    }


def ddp_worker(graph_path: str, out_path: str, backend: str, steps: int) -> None:
    """One rank: DDP forward/backward/Adam of the paper's network on one graph, each rank with its own augmentation
    and node targets (so the ranks' gradients differ until DDP averages them) and its own initial parameters."""
    import torch
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    from tbotan.learn.graphs import edge_features
    from tbotan.learn.model import TBotan

    dist.init_process_group(backend)
    rank, world = dist.get_rank(), dist.get_world_size()
    if backend == "nccl":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", rank)))
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
        torch.set_num_threads(max(1, (os.cpu_count() or world) // world))
    graph = torch.load(graph_path, weights_only=False).to(device)
    torch.manual_seed(rank)
    model = TBotan().to(device)

    def spread() -> float:
        """max over parameters of (largest - smallest value across the ranks)."""
        flat = torch.nn.utils.parameters_to_vector(model.parameters()).detach()
        hi, lo = flat.clone(), flat.clone()
        dist.all_reduce(hi, op=dist.ReduceOp.MAX)
        dist.all_reduce(lo, op=dist.ReduceOp.MIN)
        return float((hi - lo).max())

    initial = spread()
    net = DistributedDataParallel(model, device_ids=[device] if device.type == "cuda" else None)
    gen = torch.Generator().manual_seed(1000 + rank)
    feats = edge_features(graph, "both", generator=gen)
    node_target = (graph.node_target.cpu() + 0.1 * torch.randn(len(graph.species), generator=gen)).to(device)
    temperature = torch.tensor(graph.temperature, device=device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step() -> float:
        opt.zero_grad()
        out = net(graph.species, graph.edges, feats)
        loss = (
            torch.nn.functional.mse_loss(out.node, node_target)
            + torch.nn.functional.mse_loss(out.edge, graph.edge_target)
            + (out.t - temperature) ** 2
        )
        loss.backward()
        opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        return float(loss.detach())

    t0 = time.perf_counter()
    first_loss = step()
    first_s = time.perf_counter() - t0
    after_one = spread()
    times = []
    for _ in range(max(1, steps)):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    at_end = spread()
    losses = [torch.zeros(1, device=device) for _ in range(world)]
    dist.all_gather(losses, torch.tensor([first_loss], device=device))
    if rank == 0:
        r = {
            "world_size": world,
            "device": str(device),
            "N": len(graph.species),
            "edges": len(graph.edges),
            "first_step_s": first_s,
            "seconds_per_step": float(np.median(times)),
            "first_loss_per_rank": [float(v) for v in losses],
            "initial_parameter_spread": initial,  # > 0: the ranks started apart, DDP's broadcast joined them
            "parameter_spread_after_one_step": after_one,
            "parameter_spread_at_end": at_end,
            "parameters_equal_after_one_step": after_one == 0.0,
            "parameters_equal_at_end": at_end == 0.0,
        }
        Path(out_path).write_text(json.dumps(r))
    # a rank that tore its group down while its peer was still in the last collective aborted at exit under gloo
    # ("terminate called without an active exception", 2 runs in 17 here): DDP's reducer goes first, then all
    # ranks meet, then the group goes (tbotan.learn.train ends the same way)
    net = None  # step() holds it: the DDP wrapper is released here
    dist.barrier()
    dist.destroy_process_group()


# --- the run -------------------------------------------------------------------------------------------------------
def _gpu_name() -> str | None:
    try:
        import torch

        return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except ImportError:
        return None


@contextlib.contextmanager
def _stdout_to_stderr():
    """File descriptor 1 onto 2 for the block (and the processes it starts), so that stdout carries the JSON alone:
    OpenMM's OpenCL platform prints its warnings (POCL: "unsupported OpenCL implementation") to stdout."""
    import ctypes

    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        yield
    finally:
        sys.stdout.flush()
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None).fflush(None)  # what C and C++ code buffered goes to stderr too
        os.dup2(saved, 1)
        os.close(saved)


def _failed(e: BaseException) -> dict:
    return {"ok": False, "error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()[-2000:]}


def _write(doc: dict, out: str | None, name: str | None) -> None:
    write(json.dumps(doc, indent=1, default=float), out, name)


def run(args) -> dict:
    """Every section in turn (a section that raises is reported, the others still run); the JSON so far is
    rewritten to ``--out`` after each, with ``complete`` false until the end."""
    argv = getattr(sys, "orig_argv", None) or [sys.executable, *sys.argv]
    doc = {"command": " ".join(shlex.quote(a) for a in argv), "complete": False, "N": args.N}
    started = time.perf_counter()
    state: dict = {"platform": args.platform if args.platform != "auto" else "CPU"}

    def section(key, fn):
        t0 = time.perf_counter()
        try:
            doc[key] = fn()
        except Exception as e:  # noqa: BLE001 (reported in the JSON, the exit status says it failed)
            doc[key] = _failed(e)
        if isinstance(doc[key], dict):
            doc[key]["section_s"] = time.perf_counter() - t0
        print(f"gpu.py: {key} done in {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
        _write(doc, args.out, None)

    def find_platform():
        r, state["platform"] = platforms(args.platform)
        return r

    def do_fire():
        r, state["inherent"] = fire_quench(args.N, state["platform"])
        return r

    def graph():
        if "graph" not in state:
            from training import graph_from_arrays

            from tbotan.md import fire

            types, box, x = core.species(args.N), core.box_length(args.N), liquid(args.N)
            inherent = state.get("inherent")
            if inherent is None:
                inherent = fire.quench(types, x, box, fire.FireParameters(tolerance=1e-6), platform="CPU").positions
            state["graph"] = graph_from_arrays(types, x, inherent, box)
        return state["graph"]

    section("platforms", find_platform)
    doc["platform"] = state["platform"]
    section("ensemble", lambda: ensemble(args.N, state["platform"]))
    section("fire", do_fire)
    section("reuse", lambda: reuse(args.N, state["platform"]))
    section("md", lambda: md(args.N, args.concurrent, args.steps, state["platform"]))
    section("training", lambda: training_step(graph(), args.train_steps, not args.no_compile))
    section("ddp", lambda: ddp(graph(), args.train_steps))
    doc["gpu"] = _gpu_name()
    checked = {k: v["ok"] for k, v in doc.items() if isinstance(v, dict) and "ok" in v}
    if isinstance(doc["training"], list):
        checked["training"] = all(r["seconds_per_step"] > 0 for r in doc["training"])
    doc["checks"] = checked
    doc["ok"] = all(checked.values())
    doc["wall_s"] = time.perf_counter() - started
    doc["complete"] = True
    return doc


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--platform", default="auto", help="OpenMM platform under test (default: auto resolution)")
    p.add_argument("--N", type=int, default=4096)
    p.add_argument("--concurrent", type=int, nargs="+", default=[1, 2, 4, 8], help="replica processes at once")
    p.add_argument("--steps", type=int, default=2000, help="MD steps each replica process times")
    p.add_argument("--train-steps", type=int, default=5, help="timed training (and DDP) steps")
    p.add_argument("--no-compile", action="store_true", help="skip torch.compile (it takes tens of seconds)")
    add_arguments(p, "gpu")  # --out FILE, --record, --name NAME
    p.add_argument("--ddp-worker", metavar="GRAPH", help=argparse.SUPPRESS)  # one rank of the ddp section
    p.add_argument("--ddp-backend", default="gloo", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.ddp_worker:
        ddp_worker(args.ddp_worker, args.out, args.ddp_backend, args.train_steps)
        return
    with _stdout_to_stderr():
        doc = run(args)
    print(json.dumps(doc, indent=1, default=float), flush=True)
    _write(doc, args.out, result_name("gpu", args) if recording(args) else None)
    sys.exit(0 if doc["ok"] else 1)


if __name__ == "__main__":
    main()

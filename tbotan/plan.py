"""What a job will cost before it runs: `tbotan plan SPEC [--cluster PROFILE] [--json] [--calibrate]`.

    rates = load_rates()                       # measured here by `tbotan plan --calibrate` (about a minute)
    p = plan(spec, profile, rates)             # work, worker-seconds and wall time per stage, store, memory
    print(describe(p))

The work of each stage follows from the spec alone (docs/method.md §2-§5, the pipeline's task graph):
  tau_alpha   ``tau_alpha: measure``: one run of 40 guessed tau_alpha per T (more rounds if the guess is short)
  segments    Langevin chains: ``equilibration`` tau_alpha, then ``decorrelation`` per further configuration
  quench      one FIRE quench per configuration
  replicas    K runs of max(times) tau_alpha per configuration, each with a context of its own
  reduce      C_B, E_jk, propensity from K x len(times) frames
  train       seeds x variants x lambda_g x epochs x training graphs graph steps, plus validation each epoch
The rates are seconds per unit of work on one worker thread of the machine that calibrated: MD and FIRE as
particle-steps per second, a context's creation, targets per particle-frame, a training graph step per edge x
hidden^2 x message-passing step plus a fixed part (eager, and compiled) plus F(X, d) per pair (tbotan.learn.loss
evaluates N^2 / 2 pairs below L = 25.7 and ~N x 3000 beyond), torch.compile's one-off compilation and its speed-up,
and bf16's speed-up of the network's part (``training.precision``; measured where the CPU has bf16 hardware or on a
GPU, else 1). The wall time spreads the simulation's worker-seconds over the profile's task slots, bounded below by
the longest chain (its segments run in turn), and the training over its ranks (seeds side by side). MD rates are per
particle-step, measured at N = 1000. The FIRE quench's step count is the calibration's; it grows with N (to a mean
force of 1e-3 from T = 0.8: 1500 steps at N = 1000, 4800 at 4096, benchmarks/performance/scaling.py), so at large N the
quench is underestimated (by ~3x at N = 4096; at the paper's scale FIRE is 9 of 12,800 worker-hours). No GPU rates are
built in: on GPU nodes calibrate there (``tbotan plan --calibrate`` on a GPU node) and pass ``--rates``. The store size
is an upper bound (uncompressed arrays; Zarr's compression gives ~0.7 of it for the quickstart)."""

from __future__ import annotations

import json
import math
import os
import platform as _platform
import resource
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from . import core
from .errors import PlanError
from .hpc.cluster import walltime_seconds

EDGES_PER_PARTICLE = 41.0  # IS graph edges (r < 2.0) per particle of the KA liquid at density 1.2 (measured)
# Memory is the code's, not the machine's: peak RSS of each stage's process in benchmarks/performance/scaling.py
# (N = 1000 to 16384): an MD worker ~1.05 kB per particle over its base; a training step of the 64 x 7 network,
# eager, ~5.4 kB per edge over ~750 MB (torch and the model), in proportion to hidden x steps; with
# ``training.checkpoint`` 3.9 kB (N = 32768: 7.4 GiB, 5.4 GiB checkpointed).
MD_BYTES_PER_PARTICLE = 1.05e3
TRAIN_BASE_MB = 750.0
TRAIN_BYTES_PER_EDGE = {False: 5.4e3, True: 3.9e3}
TAU_RUN = 40.0  # tau_alpha: measure runs 30 tau of equilibration and 10 of production (one round)
BYTES = {"float32": 4, "float64": 8}
CALIBRATION_N = 1000


@dataclass
class Rates:
    """Measured on one worker thread of ``machine`` (``tbotan plan --calibrate``)."""

    md_particle_steps_per_s: float
    context_s: float  # creating one OpenMM context at N = 1000 (every replica makes one)
    fire_particle_steps_per_s: float
    fire_steps_per_quench: float
    reduce_s_per_particle_frame: float
    train_s_per_edge_unit: float  # one graph step per edge x hidden^2 x message-passing step (eager)
    train_s_per_step: float  # one graph step's part that does not grow with the network (Python, Adam, clip)
    train_start_s: float  # a training process's start (its imports)
    f_s_per_pair: float  # F(X, d) and its gradient per pair evaluated
    compiled_speedup: float  # eager / compiled step time (1.0 where torch.compile is not available)
    compile_s: float  # the first compiled step's extra time
    rss_base_mb: float  # a worker's memory before any system
    bf16_speedup: float = 1.0  # compiled float32 / compiled bf16 step (training.precision); 1.0 without bf16 hardware
    train_s_per_step_compiled: float | None = None  # the fixed part of a compiled step (None: as eager; older files)
    machine: str = ""
    measured: str = ""
    gpu: str = ""  # the GPU the training step was timed on (and OpenMM's platform there), "" for a CPU

    def to_json(self) -> dict:
        return asdict(self)


def rates_path() -> Path:
    """Where ``--calibrate`` keeps the rates of this machine: $TBOTAN_RATES, or ~/.cache/tbotan/rates-<host>.json."""
    if os.environ.get("TBOTAN_RATES"):
        return Path(os.environ["TBOTAN_RATES"])
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "tbotan" / f"rates-{_platform.node() or 'local'}.json"


REFERENCE_RATES = Path(__file__).with_name("reference_rates.json")  # the 2-core machine the README's numbers are from
# the slowest machine of the same kind measured (2 cores, same VM type): its --calibrate rates relative to the
# reference's (MD and FIRE per thread, the compiled step, bf16's gain); machines of one kind differ by 2-4x in MD
SLOWEST_RATES = Path(__file__).with_name("slowest_rates.json")


def load_rates(path: str | os.PathLike | None = None) -> Rates:
    """The rates at ``path``; by default this machine's (``--calibrate``), else the reference machine's."""
    if path is None:
        path = rates_path() if rates_path().exists() else REFERENCE_RATES
    path = Path(path)
    if not path.exists():
        raise PlanError(
            f"no rates at {path}: run `tbotan plan --calibrate` on a machine like the workers (about a minute) "
            "and pass its file with --rates"
        )
    try:
        data = json.loads(path.read_text())
        rates = Rates(**{k: data[k] for k in Rates.__dataclass_fields__ if k in data})
        if path in (REFERENCE_RATES, SLOWEST_RATES):
            which = "reference" if path == REFERENCE_RATES else "slowest measured"
            rates.machine = f"the {which} machine {rates.machine}, not this one: `tbotan plan --calibrate`"
        return rates
    except (json.JSONDecodeError, TypeError) as e:
        raise PlanError(f"{path}: not a rates file ({e}); rerun `tbotan plan --calibrate`") from e


# --- calibration ----------------------------------------------------------------------------------------
SIMD_FLAGS = ("sse4_1", "avx", "avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16")  # what OpenMM's and torch's CPU
# kernels pick by (OpenMM's CPU platform runs the potential 8 wide with AVX, 4 wide without)


def cpu_description(cpuinfo: str | os.PathLike = "/proc/cpuinfo") -> str:
    """This CPU's model and the SIMD extensions of ``SIMD_FLAGS`` it has (Linux), else what ``platform`` knows."""
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return _platform.processor() or _platform.machine()
    fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    fields = {k.strip(): v.strip() for k, v in fields.items()}
    flags = set(fields.get("flags", "").split())
    model = fields.get("model name", _platform.machine())
    return f"{model}; {' '.join(f for f in SIMD_FLAGS if f in flags) or 'no SIMD flags listed'}"


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def calibrate(path: str | os.PathLike | None = None, log=print) -> Rates:
    """Measure every rate on this machine, one thread (about a minute), and keep them at ``path``."""
    import torch

    from .data import targets
    from .learn import loss
    from .learn.compiled import compiled
    from .learn.graphs import cost_graph
    from .learn.model import TBotan
    from .learn.precision import cpu_has_bf16
    from .learn.scoring import graph_terms, objective
    from .md import dynamics, engine, fire

    torch.set_num_threads(1)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    base = _rss_mb()
    n, T, dt = CALIBRATION_N, 0.8, 0.005
    types, box = core.species(n), core.box_length(n)
    log(f"calibrating on one thread: MD at N = {n}")
    x = dynamics.random_configuration(types, box, seed=1)
    eq = dynamics.equilibrate(types, x, box, T, 1.0, dt=dt, seed=1)
    start = time.perf_counter()
    context, integ = dynamics.dynamics_context(types, box, eq.positions, eq.velocities, T, dt, seed=1)
    engine.read_state(context)
    context_s = time.perf_counter() - start
    integ.step(100)
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < 3.0:
        integ.step(100)
        steps += 100
    md_rate = n * steps / (time.perf_counter() - start)
    frames = []
    for _ in range(8):
        integ.step(20)
        frames.append(engine.read_state(context)["positions"])
    frames = np.array(frames)[:, None]
    del context, integ

    log("FIRE quench")
    start = time.perf_counter()
    q = fire.quench(types, eq.positions, box)
    fire_s = time.perf_counter() - start
    log("targets")
    edges = targets.graph_edges(q.positions, box)
    start = time.perf_counter()
    targets.bond_breaking(types, eq.positions, frames, box)
    targets.edge_targets(edges, eq.positions, frames, box)
    reduce_rate = (time.perf_counter() - start) / (n * frames.shape[0] * frames.shape[1])

    log("a training step, eager and compiled")
    graph = cost_graph(types, eq.positions, q.positions, edges, box, T)
    settings = {"lambda_node": 0.5, "lambda_edge": 0.5, "lambda_g": 1e-2, "w_v": 1.0, "w_c": 0.5}
    graph = graph.to(device)

    def sync():
        if device == "cuda":
            torch.cuda.synchronize()

    def step_time(mode: str, hidden: int = 64, mp: int = 7, repeats: int = 3, precision="float32"):
        torch.manual_seed(0)
        model = TBotan(hidden=hidden, steps=mp).to(device)
        forward, kernel = compiled(model, mode), compiled(loss.pair_block, mode)
        opt = torch.optim.Adam(model.parameters(), lr=1e-4)
        times = []
        for _ in range(repeats + 1):
            start = time.perf_counter()
            opt.zero_grad()
            terms = graph_terms(forward, graph, "both", kernel=kernel, precision=precision)
            objective(terms, True, settings).backward()
            opt.step()
            sync()
            times.append(time.perf_counter() - start)
        return times[0], float(np.median(times[1:]))

    _, eager = step_time("off")
    _, small = step_time("off", 16, 2, repeats=5)
    units, small_units = len(edges) * 64**2 * 7, len(edges) * 16**2 * 2
    per_unit = max(eager - small, 1e-9) / (units - small_units)  # t = overhead + per_unit x units, two shapes
    overhead = max(small - per_unit * small_units, 0.0)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import tbotan.learn.train, torch.distributed"], check=True)
    start_s = time.perf_counter() - start
    pos, xg = graph.positions.float(), graph.node_target.clone().requires_grad_()
    start = time.perf_counter()
    for _ in range(3):
        loss.spatial_correlation(xg, pos, box).sum().backward()
    sync()
    f_rate = (time.perf_counter() - start) / 3 / (n * n / 2)
    try:
        first, compiled_step = step_time("on")
        _, small_compiled = step_time("on", 16, 2, repeats=5)  # compilation shrinks the fixed part too
        overhead_c = min(max(small_compiled - per_unit * small_units / (eager / compiled_step), 0.0), overhead)
        speedup = per_unit * units / max(compiled_step - overhead_c, 1e-9)  # and speeds up the network part
        compile_s = max(first - compiled_step, 0.0)
    except Exception as e:  # no compiler here: plan eager
        log(f"torch.compile unavailable ({type(e).__name__}); planning compiled training as eager")
        speedup, compile_s, overhead_c = 1.0, 0.0, overhead
    bf16_speedup = 1.0
    if device == "cuda" or cpu_has_bf16():
        log("a training step in bf16 (training.precision)")
        mode = "on" if compile_s > 0 else "off"
        fp32, fixed = (compiled_step, overhead_c) if compile_s > 0 else (eager, overhead)
        bf16 = step_time(mode, precision="bfloat16")[1]
        bf16_speedup = max(fp32 - fixed, 1e-9) / max(bf16 - fixed, 1e-9)
    rates = Rates(
        md_particle_steps_per_s=md_rate,
        context_s=context_s,
        fire_particle_steps_per_s=n * q.steps / fire_s,
        fire_steps_per_quench=float(q.steps),
        reduce_s_per_particle_frame=reduce_rate,
        train_s_per_edge_unit=per_unit,
        train_s_per_step=overhead,
        train_s_per_step_compiled=overhead_c,
        train_start_s=start_s,
        f_s_per_pair=f_rate,
        compiled_speedup=speedup,
        compile_s=compile_s,
        rss_base_mb=base,
        bf16_speedup=bf16_speedup,
        machine=f"{_platform.node()} ({os.cpu_count()} cores, {cpu_description()}, torch {torch.__version__})",
        measured=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        gpu=torch.cuda.get_device_name(0) if device == "cuda" else "",
    )
    path = Path(path) if path else rates_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rates.to_json(), indent=1) + "\n")
    log(f"rates kept in {path}")
    return rates


# --- the work -------------------------------------------------------------------------------------------
def pairs_evaluated(n: int, density: float) -> float:
    """Pairs F(X, d) evaluates for one graph (tbotan.learn.loss: every pair below L = 25.7, cells beyond)."""
    from .learn import loss

    box = core.box_length(n, density)
    n_c, offsets = loss.stencil(box, max(loss.DISTANCES) + 5.0)
    if offsets is None:
        return n * n / 2
    return n * (len(offsets) + 1) / 2 * density * (box / n_c) ** 3


def work(spec) -> dict:
    """The amount of each stage's work (spec units), per temperature where it differs."""
    n, dt = spec.N, spec.dt
    t_max = max(spec.times)
    from .md.relaxation import guess_tau

    per_T = {}
    for T in spec.temperatures:
        tau = spec.tau_for(T)
        tau_est = tau if tau is not None else guess_tau(T)
        c = spec.configurations_for(T)
        chain_lengths = [len(range(ch, c, spec.chains)) for ch in range(spec.chains)]
        chain_steps = [
            (spec.equilibration + (k - 1) * spec.decorrelation) * tau_est / dt if k else 0 for k in chain_lengths
        ]
        per_T[T] = {
            "tau_alpha": tau_est,
            "tau_measured_here": tau is None,
            "configurations": c,
            "tau_steps": TAU_RUN * tau_est / dt if tau is None else 0.0,
            "segment_steps": float(sum(chain_steps)),
            "longest_chain_steps": float(max(chain_steps)),
            "replica_steps": c * spec.replicas * t_max * tau_est / dt,
            "replica_steps_each": t_max * tau_est / dt,
            "replicas": c * spec.replicas,
            "frames": c * spec.replicas * len(spec.times),
        }
    tr = spec.training
    train_graphs = sum(spec.splits.counts(spec.configurations_for(T))[0] for T in spec.training_temperatures)
    val_graphs = sum(spec.splits.counts(spec.configurations_for(T))[1] for T in spec.training_temperatures)
    runs = tr.seeds * len(tr.variants) * len(tr.lambda_g_values)
    return {
        "N": n,
        "per_T": per_T,
        "training": {
            "runs": runs,
            "graph_steps_per_run": tr.epochs * train_graphs,
            "validation_graphs_per_run": tr.epochs * val_graphs,
            "edges": EDGES_PER_PARTICLE * n,
            "hidden": tr.hidden,
            "message_passing_steps": tr.steps,
            "compile": tr.compile != "off",
            "precision": tr.precision,
        },
    }


def store_bytes(spec) -> float:
    """Uncompressed bytes of the store: replica positions, the per-configuration states, targets and edges."""
    n, e, k, n_t = spec.N, EDGES_PER_PARTICLE * spec.N, spec.replicas, len(spec.times)
    per_config = (
        k * n_t * n * 3 * BYTES[spec.store_dtype]  # replica positions
        + 3 * n * 3 * 8  # thermal, velocities, inherent
        + 3 * n_t * n * 4  # C_B, propensity, msd
        + e * 2 * 4  # edges
        + n_t * e * 4  # E_jk
    )
    return per_config * sum(spec.configurations_for(T) for T in spec.temperatures)


# --- the plan -------------------------------------------------------------------------------------------
def _slots(profile, workers: int | None = None) -> tuple[int, float | None, float | None, str]:
    """(task slots, memory per worker in bytes, walltime per worker job in s, description) of a profile;
    ``workers`` overrides the number of workers (an MPI profile's is mpirun -n minus 2)."""
    from dask.utils import parse_bytes

    if profile is None or profile.kind == "local":
        workers = workers or (profile.workers if profile is not None else (os.cpu_count() or 1))
        threads = profile.threads_per_worker if profile is not None else 1
        limit = getattr(profile, "memory_limit", "auto") if profile is not None else "auto"
        mem = None if limit == "auto" else parse_bytes(limit) if isinstance(limit, str) else float(limit)
        return workers * threads, mem, None, f"local: {workers} workers x {threads} threads"
    if profile.kind == "slurm":
        slots = workers or profile.max_jobs * profile.processes
        mem = parse_bytes(profile.memory) / profile.processes
        wall = float(walltime_seconds(profile.walltime))
        return slots, mem, wall, f"slurm: {profile.max_jobs} jobs x {profile.processes} workers"
    workers = workers or 1
    return workers * profile.threads_per_worker, None, None, f"mpi: {workers} workers (--workers)"


def _has_gpus(profile) -> bool:
    if profile is None:
        return False
    if profile.platform in ("CUDA", "HIP", "OpenCL"):
        return True
    if profile.kind != "slurm":
        return False
    return profile.training.gpus_per_task > 0 or any("gpu" in d for d in profile.job_extra_directives)


def _training_ranks(profile, seeds: int) -> tuple[int, int, str]:
    """(ranks, threads per rank, description) the training uses on ``profile`` (`tbotan run`'s default here:
    one rank per seed, at most one per core)."""
    cores = os.cpu_count() or 1
    if profile is None or profile.kind != "slurm":
        ranks = max(1, min(seeds, cores))
        return ranks, max(1, cores // ranks), f"{ranks} ranks x {max(1, cores // ranks)} threads (this machine)"
    t = profile.training
    ranks = t.nodes * t.tasks_per_node
    return ranks, t.cpus_per_task, f"{ranks} ranks x {t.cpus_per_task} threads (CPU rates)"


def plan(spec, profile=None, rates: Rates | None = None, workers: int | None = None) -> dict:
    """Predicted cost of every stage of ``spec`` on ``profile`` (None: this machine) with ``rates``."""
    rates = rates or load_rates()
    w = work(spec)
    n = spec.N
    slots, mem_per_worker, walltime, where = _slots(profile, workers)
    stages = {}
    md = rates.md_particle_steps_per_s
    per_T = w["per_T"].values()
    stages["tau_alpha"] = sum(v["tau_steps"] for v in per_T) * n / md
    stages["segments"] = sum(v["segment_steps"] for v in per_T) * n / md
    stages["quench"] = (
        sum(v["configurations"] for v in per_T) * rates.fire_steps_per_quench * n / (rates.fire_particle_steps_per_s)
    )
    context = rates.context_s * n / CALIBRATION_N
    stages["replicas"] = sum(v["replica_steps"] * n / md + v["replicas"] * context for v in per_T)
    stages["reduce"] = sum(v["frames"] for v in per_T) * n * rates.reduce_s_per_particle_frame
    simulate_work = sum(stages.values())
    longest = max(v["longest_chain_steps"] * n / md for v in per_T)
    tau_wall = max((v["tau_steps"] * n / md for v in per_T), default=0.0)
    simulate_wall = tau_wall + max((simulate_work - stages["tau_alpha"]) / slots, longest)

    tr = w["training"]
    edge_unit = tr["edges"] * tr["hidden"] ** 2 * tr["message_passing_steps"] * rates.train_s_per_edge_unit
    speed = rates.compiled_speedup if tr["compile"] else 1.0
    speed *= rates.bf16_speedup if tr["precision"] in ("bfloat16", "auto") else 1.0  # auto: 1 where no bf16
    compiled_fixed = rates.train_s_per_step_compiled
    fixed = compiled_fixed if tr["compile"] and compiled_fixed is not None else rates.train_s_per_step
    step = edge_unit / speed + pairs_evaluated(n, spec.density) * rates.f_s_per_pair + fixed
    ranks, threads, ranks_where = _training_ranks(profile, spec.training.seeds)
    per_run = (tr["graph_steps_per_run"] + tr["validation_graphs_per_run"] / 3) * step / threads
    per_run += rates.train_start_s + (rates.compile_s if tr["compile"] else 0.0)
    train_work = tr["runs"] * per_run
    train_wall = math.ceil(tr["runs"] / ranks) * per_run if tr["runs"] <= ranks else train_work / ranks
    shape_factor = tr["hidden"] * tr["message_passing_steps"] / (64 * 7)
    memory = {
        "simulation_worker_bytes": rates.rss_base_mb * 2**20 + MD_BYTES_PER_PARTICLE * n,
        "training_rank_bytes": TRAIN_BASE_MB * 2**20
        + TRAIN_BYTES_PER_EDGE[spec.training.checkpoint] * shape_factor * tr["edges"],
    }
    warnings = []
    if _has_gpus(profile) and not rates.gpu:
        warnings.append(
            "this profile's jobs have GPUs but the rates are a CPU's: the MD and training times above are a CPU's "
            "(run `tbotan plan --calibrate --rates FILE` on a GPU node and pass --rates FILE)"
        )
    longest_task = max(
        max(spec.equilibration * v["tau_alpha"] / spec.dt, v["replica_steps_each"], v["tau_steps"]) * n / md
        for v in per_T
    )
    if walltime is not None and longest_task > walltime:
        warnings.append(
            f"the longest single task (an equilibration segment, a replica or the tau_alpha run: "
            f"{longest_task / 3600:.1f} h) is longer than a worker job's walltime ({walltime / 3600:.1f} h): "
            "it would never finish; raise the profile's walltime"
        )
    if mem_per_worker is not None and memory["simulation_worker_bytes"] > mem_per_worker:
        warnings.append(
            f"a simulation worker needs ~{memory['simulation_worker_bytes'] / 2**30:.1f} GiB, the profile gives "
            f"{mem_per_worker / 2**30:.1f} GiB per worker"
        )
    if profile is not None and profile.kind == "slurm":
        from dask.utils import parse_bytes

        node_mem = parse_bytes(profile.training.memory) / max(profile.training.tasks_per_node, 1)
        if memory["training_rank_bytes"] > node_mem:
            warnings.append(
                f"a training rank needs ~{memory['training_rank_bytes'] / 2**30:.1f} GiB, the training job gives "
                f"{node_mem / 2**30:.1f} GiB per rank"
            )
        t_wall = walltime_seconds(profile.training.walltime)
        if train_wall > t_wall:
            warnings.append(
                f"training needs ~{train_wall / 3600:.1f} h, the training job's walltime is {t_wall / 3600:.1f} h "
                "(it resumes from its checkpoints when resubmitted)"
            )
    return {
        "spec": {"N": n, "temperatures": spec.temperatures},
        "where": where,
        "training_ranks": ranks_where,
        "rates": {"machine": rates.machine, "measured": rates.measured},
        "work": w,
        "worker_seconds": {**stages, "train": train_work},
        "wall_seconds": {"simulate": simulate_wall, "train": train_wall, "total": simulate_wall + train_wall},
        "store_bytes": store_bytes(spec),
        "memory": memory,
        "warnings": warnings,
    }


def _h(s: float) -> str:
    return f"{s:.0f} s" if s < 120 else f"{s / 60:.1f} min" if s < 7200 else f"{s / 3600:.1f} h"


def describe(p: dict, warnings: bool = True) -> str:
    """The plan as the lines `tbotan plan` prints (with its warnings, unless ``warnings`` is False)."""
    ws, wall = p["worker_seconds"], p["wall_seconds"]
    lines = [f"plan for N = {p['spec']['N']} at T = {', '.join(map(str, p['spec']['temperatures']))} ({p['where']})"]
    for name, s in ws.items():
        lines.append(f"  {name:<10} {_h(s):>10} of worker time")
    lines += [
        f"  simulate   {_h(wall['simulate']):>10} wall; train {_h(wall['train'])} wall ({p['training_ranks']});"
        f" total {_h(wall['total'])}",
        f"  store      {p['store_bytes'] / 2**30:.2f} GiB at most (uncompressed)",
        f"  memory     {p['memory']['simulation_worker_bytes'] / 2**30:.2f} GiB per simulation worker, "
        f"{p['memory']['training_rank_bytes'] / 2**30:.2f} GiB per training rank",
        f"  rates      {p['rates']['machine']}, measured {p['rates']['measured']}",
    ]
    if "wall_seconds_slowest_machine" in p:
        lines.append(
            f"  slowest    {_h(p['wall_seconds_slowest_machine']['total'])} total at the rates of the slowest machine "
            "of this kind measured (tbotan/slowest_rates.json); `tbotan plan --calibrate` measures this one"
        )
    lines += [f"WARNING: {w}" for w in p["warnings"]] if warnings else []
    return "\n".join(lines)

"""One T-BOTAN training step (forward, the full loss with every term on, backward, clip, Adam), eager beside
torch.compile (``training.compile``) in the same run, with the loss's F(X, d) timed alone.

    python benchmarks/performance/training.py [--store storage/botan_sample.zarr] [--threads 2] [--steps 5]
    python benchmarks/performance/training.py --store storage/quickstart.zarr --temperature 0.64 --threads 1 \
        --hidden 32 --mp-steps 4 --name training_quickstart          # the quickstart's graphs and network

On the CPU each is timed twice: with glibc's allocator as it comes, then with freed memory kept in the process
(tbotan.learn.memory, which `tbotan train` turns on). The graph is a real one: the first training configuration of
the store (BOTAN's N = 4096 files imported with `tbotan import botan`, see docs/import.md); without a store, a KA
configuration of N = 4096 made here (random start, short NVT at T = 0.8, FIRE) with random targets (targets do not
change the cost). The paper's network (64 x 7). Where a GPU is present it is also timed there: eager, compiled,
and compiled under bf16 autocast (the scatter of messages stays in fp32); and the paper's 400 graphs x 2000 epochs
per seed are extrapolated from the step. Where the CPU multiplies bf16 in hardware (AVX512-BF16, AMX), the CPU
is also timed with ``training.precision: bfloat16`` (the forward pass under autocast, the outputs and the loss in
float32). Prints one JSON object (``--out FILE``: also there; ``--record``: also benchmarks/results/training.json;
``--name NAME``: benchmarks/results/NAME.json).
"""

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

from tbotan import core
from tbotan.data import targets
from tbotan.learn import loss
from tbotan.learn.compiled import compiled
from tbotan.learn.graphs import Graph, cost_graph, load_graphs
from tbotan.learn.memory import keep_freed_memory
from tbotan.learn.model import TBotan, parameter_count
from tbotan.learn.precision import cpu_has_bf16
from tbotan.learn.scoring import graph_terms, objective
from tbotan.md import dynamics, fire

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: record.py
from record import add_arguments, emit  # prints the result with its command (and writes it where asked)

SETTINGS = {"lambda_node": 0.5, "lambda_edge": 0.5, "lambda_g": 1e-2, "w_v": 1.0, "w_c": 0.5}
PAPER_STEPS_PER_SEED = 400 * 2000  # 400 training graphs, 2000 epochs, one graph per step


def ka_graph(n: int, seed: int = 0) -> Graph:
    types, box = core.species(n), core.box_length(n)
    x = dynamics.random_configuration(types, box, seed)
    thermal = core.wrap(dynamics.equilibrate(types, x, box, 0.8, 2.0, seed=seed).positions, box)
    inherent = fire.quench(types, thermal, box, fire.FireParameters(tolerance=1e-6)).positions
    return graph_from_arrays(types, thermal, inherent, box, seed)


def graph_from_arrays(types, thermal, inherent, box: float, seed: int = 0) -> Graph:
    """The graph of a configuration with random targets (targets do not change the cost)."""
    return cost_graph(types, thermal, inherent, targets.graph_edges(inherent, box), box, seed=seed)


def _sync(device):
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def time_steps(
    graph: Graph, device: str, steps: int, mode: str = "off", bf16: bool = False, shape=(64, 7), checkpoint=False
) -> dict:
    """Seconds of the first step (compilation included) and per step after it (median of ``steps``);
    ``checkpoint``: ``training.checkpoint`` (each message-passing step recomputed in the backward pass)."""
    torch.manual_seed(0)
    model = TBotan(hidden=shape[0], steps=shape[1]).to(device)
    model.checkpoint_steps = checkpoint
    forward, kernel = compiled(model, mode), compiled(loss.pair_block, mode)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    g = graph.to(device)
    g.f_md()

    def step():
        opt.zero_grad()
        precision = "bfloat16" if bf16 else "float32"  # training.precision: the forward pass under autocast
        total = objective(graph_terms(forward, g, "both", kernel=kernel, precision=precision), True, SETTINGS)
        total.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return float(total.detach())

    start = time.perf_counter()
    first_loss = step()
    _sync(device)
    first = time.perf_counter() - start
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        _sync(device)
        times.append(time.perf_counter() - start)
    return {"first_step_s": first, "seconds_per_step": float(np.median(times)), "first_loss": first_loss}


def time_f(graph: Graph, device: str, mode: str, repeats: int = 3) -> float:
    """Seconds of F(X, d) and its gradient alone (median, after one call that compiles)."""
    x = graph.node_target.to(device).clone().requires_grad_()
    pos = graph.positions.to(device)
    kernel = compiled(loss.pair_block, mode)
    loss.spatial_correlation(x, pos, graph.box, kernel=kernel)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        loss.spatial_correlation(x, pos, graph.box, kernel=kernel).sum().backward()
        _sync(device)
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--store", default=str(Path(__file__).resolve().parents[2] / "storage" / "botan_sample.zarr"))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--steps", type=int, default=5, help="timed training steps")
    p.add_argument("--temperature", type=float, default=0.44, help="the store's temperature to take the graph from")
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--mp-steps", type=int, default=7, help="message-passing steps")
    add_arguments(p, "training")
    args = p.parse_args()
    shape = (args.hidden, args.mp_steps)
    if Path(args.store).exists():
        graph = load_graphs(args.store, [args.temperature], split=0)[0]
        source = f"{args.store}: first training configuration (T = {args.temperature})"
    else:
        graph = ka_graph(4096)
        source = "KA configuration made here, random targets"
    torch.set_num_threads(args.threads)
    configs = [("cpu", "off", False, False), ("cpu", "on", False, False), ("cpu", "off", False, True)]
    configs += [("cpu", "on", False, True)]
    if cpu_has_bf16():
        configs += [("cpu", "off", True, True), ("cpu", "on", True, True)]
    if torch.cuda.is_available():
        configs += [("cuda", "off", False, True), ("cuda", "on", False, True), ("cuda", "on", True, True)]
    rows, kept = [], False
    for device, mode, bf16, keep in configs:
        if keep and not kept:
            kept = keep_freed_memory()  # for the rest of the run (tbotan.learn.memory; tbotan train does it)
        r = time_steps(graph, device, args.steps, mode, bf16, shape)
        rows.append(
            {
                "device": device,
                "threads": args.threads if device == "cpu" else None,
                "compile": mode,
                "bf16": bf16,
                "freed_memory_kept": keep and kept,
                **r,
                "f_seconds": time_f(graph, device, mode),
                "paper_training_per_seed_h": r["seconds_per_step"] * PAPER_STEPS_PER_SEED / 3600,
            }
        )
    eager = {}  # per device: the first eager row (on the CPU: glibc's allocator as it comes)
    for r in rows:
        if r["compile"] == "off":
            eager.setdefault(r["device"], r["seconds_per_step"])
    for r in rows:
        r["speedup_vs_eager"] = eager[r["device"]] / r["seconds_per_step"]
    emit(
        "training",
        {
            "torch": torch.__version__,
            "graph": source,
            "N": len(graph.species),
            "edges": len(graph.edges),
            "hidden": args.hidden,
            "message_passing_steps": args.mp_steps,
            "parameters": parameter_count(TBotan(hidden=args.hidden, steps=args.mp_steps)),
            "cpu_count": os.cpu_count(),
            "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            "rows": rows,
        },
        args,
    )


if __name__ == "__main__":
    main()

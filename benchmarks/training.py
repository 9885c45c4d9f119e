"""Training throughput: graphs per second of one T-BOTAN step (forward, loss with every term on,
backward, clip, Adam) for KA graphs of N = 1000 and 4096, on the CPU (1 and 2 threads) and, where a
GPU is present, on it with and without bf16 autocast; and the time per epoch of the paper's training
set (400 graphs of N = 4096) extrapolated from it. Each is measured beside its peer, the same network
evaluated with the plain concatenation of SPEC §4 (``Concatenation``), and the ratio is reported.

    python benchmarks/training.py [--N 1000 4096] [--steps 3]

Graphs are real KA configurations (random start, short NVT at T = 0.8, FIRE to 1e-6) with random
targets (targets do not change the cost). Prints one JSON object (and writes
benchmarks/results/training.json).
"""

import argparse
import os
import time

import numpy as np
import torch
from record import emit  # prints the result with its command, writes benchmarks/results/<name>.json

from tbotan import core
from tbotan.data import targets
from tbotan.learn.graphs import Graph
from tbotan.learn.model import TBotan, parameter_count
from tbotan.learn.train import graph_terms, objective
from tbotan.md import dynamics, fire

SETTINGS = {"lambda_node": 0.5, "lambda_edge": 0.5, "lambda_g": 1e-2, "w_v": 1.0, "w_c": 0.5}


class Concatenation(TBotan):
    """The peer: the same network evaluated as SPEC §4 writes it, the edge MLP on the concatenation
    [h_src, h_dst, e, e_enc] (tbotan.learn.model evaluates its first layer block-wise)."""

    def forward(self, species, edges, edge_features):
        src, dst = edges[:, 0], edges[:, 1]
        h_enc = self.node_encoder(torch.nn.functional.one_hot(species.long(), 2).to(edge_features.dtype))
        e_enc = self.edge_encoder(edge_features)
        h, e, g = h_enc, e_enc, h_enc.new_zeros(self.hidden)
        for _ in range(self.steps):
            e = self.edge_mlp(torch.cat([h[src], h[dst], e, e_enc], dim=1))
            h = self.node_mlp(torch.cat([h, h_enc, torch.zeros_like(h).index_add_(0, dst, e)], dim=1))
            g = self.global_mlp(torch.cat([g, h.mean(dim=0)]))
        return self.decode(h, e, g)


def ka_graph(n: int, seed: int = 0) -> Graph:
    types, box = core.species(n), core.box_length(n)
    x = dynamics.random_configuration(types, box, seed)
    thermal = core.wrap(dynamics.equilibrate(types, x, box, 0.8, 2.0, seed=seed).positions, box)
    inherent = fire.quench(types, thermal, box, fire.FireParameters(tolerance=1e-6)).positions
    edges = targets.graph_edges(inherent, box)
    j, k = edges[:, 0], edges[:, 1]

    def image(d):
        return d - box * np.round(d / box)

    rng = np.random.default_rng(seed)
    return Graph(
        species=torch.tensor(types, dtype=torch.long),
        edges=torch.tensor(edges, dtype=torch.long),
        is_vectors=torch.tensor(image(inherent[k] - inherent[j]), dtype=torch.float32),
        thermal_distance=torch.tensor(
            np.linalg.norm(image(thermal[k] - thermal[j]), axis=1)[:, None], dtype=torch.float32
        ),
        positions=torch.tensor(thermal),
        box=box,
        cb=torch.tensor(rng.uniform(0.3, 1.0, n), dtype=torch.float32),
        edge_target=torch.tensor(rng.normal(0, 0.1, len(edges)), dtype=torch.float32),
        temperature=0.8,
        c=0,
    )


def time_steps(graph: Graph, device: str, steps: int, bf16: bool = False, cls=TBotan) -> float:
    """Seconds per training step (mean over ``steps`` after one warm-up step)."""
    torch.manual_seed(0)
    model = cls().to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    g = graph.to(device)
    g.f_md()

    def step():
        opt.zero_grad()
        with torch.autocast(device_type=device.split(":")[0], dtype=torch.bfloat16, enabled=bf16):
            loss = objective(graph_terms(model, g, "both"), True, SETTINGS)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()

    step()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / steps


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--N", type=int, nargs="+", default=[1000, 4096])
    p.add_argument("--steps", type=int, default=3)
    args = p.parse_args()
    rows = []
    for n in args.N:
        graph = ka_graph(n)
        configs = [("cpu", t, False) for t in (1, 2)]
        if torch.cuda.is_available():
            configs += [("cuda", None, False), ("cuda", None, True)]
        for device, threads, bf16 in configs:
            if threads:
                torch.set_num_threads(threads)
            s = time_steps(graph, device, args.steps, bf16)
            peer = time_steps(graph, device, args.steps, bf16, cls=Concatenation)
            rows.append(
                {
                    "N": n,
                    "edges": len(graph.edges),
                    "device": device,
                    "threads": threads,
                    "bf16": bf16,
                    "seconds_per_step": s,
                    "graphs_per_second": 1 / s,
                    "paper_epoch_s_extrapolated": 400 * s * (4096 / n),
                    "concatenation_seconds_per_step": peer,
                    "speedup_vs_concatenation": peer / s,
                }
            )
    out = {
        "torch": torch.__version__,
        "parameters": parameter_count(TBotan()),
        "cpu_count": os.cpu_count(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "rows": rows,
    }
    emit("training", out)


if __name__ == "__main__":
    main()

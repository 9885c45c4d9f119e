"""T-BOTAN's predictions for one configuration, with every seed of a model (``tbotan predict``; no store).

    models = portable.build_models(model)                                # {seed: TBotan}
    out = predict(models, "both", types, thermal, inherent, box)        # node (S, N), edge (S, E), t (S,), edges

The graph is the one training uses (tbotan.learn.graphs, docs/method.md §4): directed edges (j, k) with
|r_k - r_j| < 2.0 sigma_AA in the inherent structure (tbotan.data.targets.graph_edges), each with the
minimum-image vector r_k - r_j of the inherent structure and the minimum-image distance |r_k - r_j| of the thermal
structure, in float32. The model's units (output, edge-input, message, global) are buffers of its state_dict and
act inside ``forward``, as in ``tbotan evaluate``.

Reproducible: the forward pass runs in float32 on the CPU on one thread with torch's deterministic algorithms,
so the same model and configuration give the same numbers bit for bit on one machine.
"""

from __future__ import annotations

import contextlib

import numpy as np
import torch

from .. import core
from ..data.targets import graph_edges
from .graphs import Graph, edge_features


def configuration_graph(types, thermal, inherent, box: float, edges: np.ndarray | None = None) -> Graph:
    """The graph of a configuration (targets zero: none is known); ``edges`` default: graph_edges(inherent)."""
    thermal = np.asarray(thermal, dtype=np.float64)
    inherent = np.asarray(inherent, dtype=np.float64)
    if edges is None:
        edges = graph_edges(core.wrap(inherent, box), box)
    edges = np.asarray(edges, dtype=np.int64)
    src, dst = edges[:, 0], edges[:, 1]
    vec = core.minimum_image(inherent[dst] - inherent[src], box)
    dist = np.linalg.norm(core.minimum_image(thermal[dst] - thermal[src], box), axis=1, keepdims=True)
    n = len(types)
    return Graph(
        species=torch.from_numpy(np.asarray(types, dtype=np.int64)),
        edges=torch.from_numpy(edges),
        is_vectors=torch.from_numpy(vec.astype(np.float32)),
        thermal_distance=torch.from_numpy(dist.astype(np.float32)),
        positions=torch.from_numpy(core.wrap(thermal, box)),
        box=float(box),
        node_target=torch.zeros(n),
        edge_target=torch.zeros(len(edges)),
        temperature=float("nan"),
        c=0,
    )


@contextlib.contextmanager
def deterministic():
    """One CPU thread and torch's deterministic algorithms, restored on exit."""
    threads, strict = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(strict)
        torch.set_num_threads(threads)


def predict(models: dict, variant: str, types, thermal, inherent, box: float, edges=None) -> dict:
    """Every seed's prediction: {"seeds": [s...], "node": (S, N), "edge": (S, E), "t": (S,), "edges": (E, 2)},
    float32 arrays (``edges`` int64)."""
    g = configuration_graph(types, thermal, inherent, box, edges)
    x = edge_features(g, variant)
    node, edge, t = [], [], []
    with deterministic(), torch.no_grad():
        for s in sorted(models):
            out = models[s](g.species, g.edges, x)
            node.append(out.node.float().numpy())
            edge.append(out.edge.float().numpy())
            t.append(float(out.t))
    return {
        "seeds": sorted(models),
        "node": np.stack(node),
        "edge": np.stack(edge),
        "t": np.array(t, dtype=np.float32),
        "edges": g.edges.numpy(),
    }

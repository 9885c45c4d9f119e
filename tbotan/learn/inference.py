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
import itertools

import numpy as np
import torch

from .. import core
from ..data.targets import graph_edges
from .graphs import Graph, configuration_graph, edge_features
from .model import Output

# the augmentation's group (tbotan.learn.graphs.random_orthogonal): every axis permutation with every reflection
CUBE_GROUP = tuple(
    (torch.tensor(perm), torch.tensor(signs))
    for perm in itertools.permutations(range(3))
    for signs in itertools.product((-1, 1), repeat=3)
)


def forward(model, graph: Graph, variant: str, symmetrize: bool = False) -> Output:
    """The model's outputs on ``graph``; with ``symmetrize`` (``evaluation.symmetrize``) each output averaged over
    the 48 orientations of the IS vectors in ``CUBE_GROUP``. The network reads those vectors, so its prediction
    depends a little on the frame while the physics does not; the average is the same in every frame."""
    if not symmetrize:
        return model(graph.species, graph.edges, edge_features(graph, variant))
    outs = [model(graph.species, graph.edges, edge_features(graph, variant, transform=t)) for t in CUBE_GROUP]
    return Output(*(torch.stack([getattr(o, f) for o in outs]).mean(dim=0) for f in Output.__dataclass_fields__))


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


def predict(
    models: dict, variant: str, types, thermal, inherent, box: float, edges=None, symmetrize: bool = False
) -> dict:
    """Every seed's prediction: {"seeds": [s...], "node": (S, N), "edge": (S, E), "t": (S,), "edges": (E, 2)},
    float32 arrays (``edges`` int64); with ``symmetrize`` each averaged over ``CUBE_GROUP`` (``forward``)."""
    if edges is None:
        edges = graph_edges(core.wrap(np.asarray(inherent, dtype=np.float64), box), box)
    g = configuration_graph(types, core.wrap(np.asarray(thermal, dtype=np.float64), box), inherent, edges, box)
    node, edge, t = [], [], []
    with deterministic(), torch.no_grad():
        for s in sorted(models):
            out = forward(models[s], g, variant, symmetrize)
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

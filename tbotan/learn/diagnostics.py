"""What a trained (or training) network does inside: dead ReLU units per layer, and its global embedding u.

    counts = dead_units(model, graphs, "both")     # {"edge_mlp.1": (dead, units), ...} over every call
    u = embeddings(model, graphs, "both")          # (len(graphs), hidden)

The spread of u across temperatures is ``tbotan.analysis.embedding.embedding_spread``.
A unit is dead when its ReLU output is zero for every row it ever sees: every node (or edge, or graph) of
every graph at every message-passing step (the edge and node MLPs are reused at each of them). A dead unit
gets no gradient and never fires again: capacity lost. benchmarks/experiments/learning.py counts them through training.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .graphs import Graph, edge_features


@torch.no_grad()
def run_with_hooks(model: nn.Module, graphs: list[Graph], variant: str, hooks: dict) -> None:
    """Every graph through ``model`` with forward hooks ``{module: hook}`` in place, removed afterwards whatever
    happens (what the hooks record is their business)."""
    handles = [module.register_forward_hook(hook) for module, hook in hooks.items()]
    try:
        for g in graphs:
            model(g.species, g.edges, edge_features(g, variant))
    finally:
        for h in handles:
            h.remove()


@torch.no_grad()
def dead_units(model: nn.Module, graphs: list[Graph], variant: str) -> dict[str, tuple[int, int]]:
    """{ReLU module name: (units zero on every row of every call, units)} over ``graphs``."""
    peak: dict[str, torch.Tensor] = {}
    hooks = {}
    for name, module in model.named_modules():
        if isinstance(module, nn.ReLU):

            def record(mod, args, out, name=name):
                top = out.reshape(-1, out.shape[-1]).amax(dim=0)
                peak[name] = top if name not in peak else torch.maximum(peak[name], top)

            hooks[module] = record
    run_with_hooks(model, graphs, variant, hooks)
    return {name: (int((p <= 0).sum()), len(p)) for name, p in peak.items()}


@torch.no_grad()
def embeddings(model: nn.Module, graphs: list[Graph], variant: str) -> np.ndarray:
    """The global embedding u of each graph, (len(graphs), hidden)."""
    return np.stack([model(g.species, g.edges, edge_features(g, variant)).u.cpu().numpy() for g in graphs])

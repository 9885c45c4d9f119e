"""Training graphs from the store (docs/method.md §4): one configuration at one observation time.

    graphs = load_graphs("storage/quickstart.zarr", [0.64, 0.8], split=0)      # 0 train, 1 validation, 2 test
    x = edge_features(graphs[0], "both")                                      # (E, 4): IS vector, thermal |r|
    x = edge_features(graphs[0], "both", generator=torch.Generator().manual_seed(1))   # augmented copy

Edge (j, k) = (src, dst) as stored; its vector is the minimum image of r_k - r_j in the inherent structure,
its distance the minimum image |r_k - r_j| in the thermal structure. The augmentation (as in the reference
codes) is a random permutation of the axes followed by a random reflection of each axis: an orthogonal map,
so every length and angle is kept. It returns a new tensor and never touches the graph, so augmentations do
not compound from one epoch to the next.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from .. import core
from ..data.store import StoreError, group_name, layout, old_layout_message, open_store, tau_alpha_index
from .loss import spatial_correlation
from .model import EDGE_FEATURES

SPLITS = {0: "train", 1: "validation", 2: "test"}
NODE_TARGETS = ("cb", "propensity")


@dataclass(eq=False)
class Graph:
    species: torch.Tensor  # (N,) long, 0 = A, 1 = B
    edges: torch.Tensor  # (E, 2) long, (src j, dst k)
    is_vectors: torch.Tensor  # (E, 3) float32, minimum-image r_k - r_j in the inherent structure
    thermal_distance: torch.Tensor  # (E, 1) float32, minimum-image |r_k - r_j| in the thermal structure
    positions: torch.Tensor  # (N, 3) float64 thermal positions (for the loss's F)
    box: float
    node_target: torch.Tensor  # (N,) float32 node target (C_B or propensity: training.target)
    edge_target: torch.Tensor  # (E,) float32 target E_jk
    temperature: float  # the label T_MD
    c: int  # configuration index in the store group
    _f_md: torch.Tensor | None = field(default=None, repr=False)

    @property
    def id(self) -> tuple[float, int]:
        return (self.temperature, self.c)

    def __repr__(self) -> str:
        return f"Graph(T={self.temperature:.3f}, c={self.c}, N={len(self.species)}, E={len(self.edges)})"

    def f_md(self) -> torch.Tensor:
        """F(md, d) for d in loss.DISTANCES, computed once (in float64, returned as float32)."""
        if self._f_md is None:
            self._f_md = spatial_correlation(self.node_target.double(), self.positions.double(), self.box).float()
        return self._f_md

    def to(self, device) -> Graph:
        """A copy on ``device`` (the cached F moves along)."""
        moved = {k: (v.to(device) if isinstance(v, torch.Tensor) else v) for k, v in self.__dict__.items()}
        return Graph(**moved)


def load_graphs(
    store_path, temperatures, split: int, time_index: int | None = None, allow_empty: bool = False, target: str = "cb"
) -> list[Graph]:
    """Every ``done`` configuration with ``split`` (0 train, 1 validation, 2 test) at each temperature.

    ``time_index`` (default: the group's time at tau_alpha, ``times_tau`` = 1, else its first) selects the
    observation time. ``target`` is the node target's array: ``cb`` (C_B, the paper's) or ``propensity`` (the
    mean absolute displacement). A temperature without any such configuration is an error naming it (unless
    ``allow_empty``)."""
    root = open_store(store_path)
    if target not in NODE_TARGETS:
        raise StoreError(f"unknown node target {target!r} (one of {', '.join(NODE_TARGETS)})")
    if target == "propensity" and layout(root) < 2:
        raise StoreError(old_layout_message(store_path))
    out = []
    for T in temperatures:
        name = group_name(float(T))
        if name not in root:
            raise StoreError(f"{store_path} has no group {name} (temperature {T}): it was made from another spec")
        g = root[name]
        n_t = g["cb"].shape[1]
        i_t = tau_alpha_index(g.attrs.get("times_tau")) if time_index is None else time_index
        if not -n_t <= i_t < n_t:
            raise IndexError(f"time_index {i_t} out of range: {name} has {n_t} observation time(s)")
        done, which = g["done"][:], g["split"][:]
        chosen = np.flatnonzero(done & (which == split))
        if not len(chosen):
            if allow_empty:
                continue
            n_split = int((which == split).sum())
            raise StoreError(
                f"{store_path}: no finished {SPLITS.get(split, split)} configuration at T={float(T):.3f} "
                f"({int(done.sum())} of {len(done)} done, {n_split} in the {SPLITS.get(split, split)} split): "
                f"run `tbotan simulate SPEC --store {store_path}` to finish the data first"
            )
        box = float(g.attrs["L"])
        label = float(g.attrs["T"])
        for c in chosen:
            c = int(c)
            n = int(g["n_edges"][c])
            edges = g["edges"][c, :n].astype(np.int64)
            out.append(
                configuration_graph(
                    g["types"][c],
                    g["thermal"][c],
                    g["inherent"][c],
                    edges,
                    box,
                    node_target=g[target][c, i_t],
                    edge_target=g["edge_targets"][c, i_t, :n],
                    temperature=label,
                    c=c,
                )
            )
    return out


def configuration_graph(
    types, thermal, inherent, edges, box: float, node_target=None, edge_target=None, temperature=float("nan"), c=0
) -> Graph:
    """The graph of one configuration: directed ``edges`` (E, 2), each with the minimum-image vector r_k - r_j of
    the inherent structure and the minimum-image distance |r_k - r_j| of the thermal one, in float32. Targets
    default to zeros (a configuration whose future is not known: ``tbotan predict``)."""
    edges = np.asarray(edges, dtype=np.int64)
    inherent = np.asarray(inherent, dtype=np.float64)
    thermal = np.ascontiguousarray(thermal, dtype=np.float64)
    src, dst = edges[:, 0], edges[:, 1]
    vec = core.minimum_image(inherent[dst] - inherent[src], box)
    dist = np.linalg.norm(core.minimum_image(thermal[dst] - thermal[src], box), axis=1, keepdims=True)
    return Graph(
        species=torch.from_numpy(np.asarray(types).astype(np.int64)),
        edges=torch.from_numpy(edges),
        is_vectors=torch.from_numpy(vec.astype(np.float32)),
        thermal_distance=torch.from_numpy(dist.astype(np.float32)),
        positions=torch.from_numpy(thermal),
        box=float(box),
        node_target=torch.zeros(len(types))
        if node_target is None
        else torch.from_numpy(node_target.astype(np.float32)),
        edge_target=torch.zeros(len(edges))
        if edge_target is None
        else torch.from_numpy(edge_target.astype(np.float32)),
        temperature=temperature,
        c=c,
    )


def cost_graph(types, thermal, inherent, edges, box: float, temperature: float = 0.8, seed: int = 0) -> Graph:
    """A graph of a real configuration with random targets, for measuring what a step costs (targets do not
    change it): ``edges`` (E, 2) from tbotan.data.targets.graph_edges of ``inherent``."""
    thermal, inherent = core.wrap(np.asarray(thermal), box), np.asarray(inherent)
    j, k = edges[:, 0], edges[:, 1]
    rng = np.random.default_rng(seed)
    return Graph(
        species=torch.tensor(types, dtype=torch.long),
        edges=torch.tensor(edges, dtype=torch.long),
        is_vectors=torch.tensor(core.minimum_image(inherent[k] - inherent[j], box), dtype=torch.float32),
        thermal_distance=torch.tensor(
            np.linalg.norm(core.minimum_image(thermal[k] - thermal[j], box), axis=1)[:, None], dtype=torch.float32
        ),
        positions=torch.tensor(thermal),
        box=box,
        node_target=torch.tensor(rng.uniform(0.3, 1.0, len(types)), dtype=torch.float32),
        edge_target=torch.tensor(rng.normal(0, 0.1, len(edges)), dtype=torch.float32),
        temperature=temperature,
        c=0,
    )


def random_orthogonal(generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """(axis permutation (3,), signs (3,)) drawn from ``generator`` (always the same number of draws)."""
    perm = torch.randperm(3, generator=generator)
    signs = torch.randint(0, 2, (3,), generator=generator) * 2 - 1
    return perm, signs


def edge_features(
    graph: Graph,
    variant: str,
    generator: torch.Generator | None = None,
    transform: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> torch.Tensor:
    """Edge features of ``variant``: 'both' (E, 4), 'inherent' (E, 3) or 'thermal' (E, 1).

    With a ``generator`` (or an explicit ``transform`` = (perm, signs)) the IS vectors are permuted and
    reflected axis-wise; the distances are invariant. Always a new tensor; the graph is never changed."""
    if variant not in EDGE_FEATURES:
        raise ValueError(f"unknown variant {variant!r} (one of {', '.join(EDGE_FEATURES)})")
    if transform is None and generator is not None:
        transform = random_orthogonal(generator)
    vec = graph.is_vectors
    if transform is not None:
        perm, signs = transform
        vec = vec[:, perm.to(vec.device)] * signs.to(device=vec.device, dtype=vec.dtype)  # a new tensor
    if variant == "both":
        return torch.cat([vec, graph.thermal_distance], dim=1)
    if variant == "inherent":
        return vec.clone() if vec is graph.is_vectors else vec
    return graph.thermal_distance.clone()

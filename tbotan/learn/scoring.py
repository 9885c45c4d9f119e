"""Scoring a model on graphs: one graph's loss terms, the objective a step minimises, the validation means a
checkpoint is selected on, and the temperature head's health over an epoch.

    terms = graph_terms(model, graph, "both")                      # L_MSE, L_Var, L_Corr, L_edge, L_global, ...
    loss = objective(terms, switched_on, settings)                  # L_all with the schedule
    val = validate(model, val_graphs, "both", settings)             # per-term means, objective, pearson_A
    head = temperature_head(t_pred, u_max, switched_on, hidden)     # slope of T_pred against the labels

The objective (docs/method.md §5, tbotan.learn.loss.combine):

    L_all = lambda_n (L_MSE + [switched] (w_v L_Var + w_c L_Corr)) + lambda_e L_edge + [switched] lambda_g L_global

Before the switch the global term enters times 0.0 (unless ``global_on``: lambda_g), so the global MLP and its
decoder take part in every backward pass (DDP needs a gradient for every parameter); while pre-training only
lambda_e L_edge (or lambda_n L_MSE) counts, the other terms entering times 0.0 for the same reason.

Validation is scored on the *full* objective (every term on, whatever the epoch), so a best checkpoint is
comparable before and after the switch. The temperature head is *dead* when, switched on, T_pred follows the
labels of the training graphs with a least-squares slope below ``DEAD_T_HEAD``.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.distributed as dist

from ..data.runs import TERMS
from . import loss as loss_mod
from .distributed import reduce_sum
from .graphs import Graph, edge_features

NODE_PHASE_TERMS = {
    "node": "mse",
    "deviation": "deviation",
    "pearson": "pearson",
    "anchored": "anchored",
}  # pretrain_target -> its term
DEAD_T_HEAD = 0.1  # the temperature head is dead when T_pred follows the labels with a slope below this


def graph_terms(
    model,
    graph: Graph,
    variant: str,
    transform=None,
    kernel=loss_mod.pair_block,
    precision: str = "float32",
    anchors=None,
    species_terms: bool = False,
) -> dict:
    """Every loss term of ``graph`` under ``model`` (tbotan.learn.loss.terms), with the prediction's ``t_pred``, ``u``
    and ``node`` (detached).

    Args:
        model: a TBotan (or its DDP or compiled wrapper).
        graph: the graph, with its targets and temperature label.
        variant: the edge features, ``both``, ``inherent`` or ``thermal``.
        transform: an augmentation of the IS vectors (tbotan.learn.graphs.random_orthogonal), or None.
        kernel: the pair kernel of L_Corr (tbotan.learn.loss.pair_block, or its compiled form).
        precision: "bfloat16" runs the forward pass under autocast (the outputs come out in float32, and the loss
            is computed in float32); "float32" does not.
        anchors: the training set's mean node target per species (tbotan.learn.recipe.species_means), for the
            ``anchored`` term; None leaves that term out.
        species_terms: also the node-phase terms blind to the species' means (tbotan.learn.loss.species_terms;
            only a pre-training on one of them needs them).
    """
    feats = edge_features(graph, variant, transform=transform)
    with torch.autocast(feats.device.type, dtype=torch.bfloat16, enabled=precision == "bfloat16"):
        out = model(graph.species, graph.edges, feats)
    md_t = torch.tensor(graph.temperature, dtype=out.t.dtype, device=out.t.device)
    terms = loss_mod.terms(
        out.node,
        graph.node_target,
        out.edge,
        graph.edge_target,
        out.t,
        md_t,
        graph.positions,
        graph.box,
        f_md=graph.f_md(),
        kernel=kernel,
        species=graph.species if species_terms else None,
        anchors=anchors,
    )
    return {**terms, "t_pred": out.t.detach(), "u": out.u.detach(), "node": out.node.detach()}


def pearson_a(pred: torch.Tensor, graph: Graph) -> float:
    """Pearson correlation of a node prediction with the graph's node target over its A particles."""
    a = graph.species == 0
    x, y = pred[a].double(), graph.node_target[a].double()
    x, y = x - x.mean(), y - y.mean()
    norm = float(x.norm() * y.norm())
    return float((x * y).sum()) / norm if norm > 0 else 0.0


def objective(
    t: dict, switched_on: bool, settings: dict, pretraining: bool = False, global_on: bool = False
) -> torch.Tensor:
    """L_all with the schedule; before the switch the global term enters times 0.0 (keeps its gradient path),
    unless ``global_on`` (``training.global_start_epoch`` before the switch epoch: then lambda_g L_global counts,
    during pre-training too). While ``pretraining`` (the first ``pretrain_epochs``) only the edge term
    (``pretrain_target`` edge), or one node term counts: L_MSE (node), L_dev (deviation), L_rho (pearson) or L_anc
    (anchored) (tbotan.learn.loss.species_terms), besides the global term where it is on; the others enter times
    0.0 for the same reason."""
    g = settings["lambda_g"] if global_on else 0.0
    if pretraining and settings["pretrain_target"] in NODE_PHASE_TERMS:
        own = t[NODE_PHASE_TERMS[settings["pretrain_target"]]]
        return settings["lambda_node"] * own + 0.0 * t["edge"] + g * t["global"]
    if pretraining:
        return settings["lambda_edge"] * t["edge"] + 0.0 * t["mse"] + g * t["global"]
    total = loss_mod.combine(
        t,
        switched_on,
        lambda_node=settings["lambda_node"],
        lambda_edge=settings["lambda_edge"],
        lambda_g=settings["lambda_g"],
        w_v=settings["w_v"],
        w_c=settings["w_c"],
    )
    if switched_on:
        return total
    return total + g * t["global"]


@torch.no_grad()
def validate(
    model, graphs: list[Graph], variant: str, settings: dict, group=None, group_rank: int = 0, group_size: int = 1
) -> dict:
    """Mean per-term losses over ``graphs`` plus ``objective`` (every term on) and ``pearson_A`` (of the node
    prediction over A particles, a diagnostic: the var and corr terms cannot tell a prediction from its mirror
    image); shared over a group's ranks.

    Args:
        model: the TBotan (unwrapped).
        graphs: the validation graphs; each rank of the group scores ``graphs[group_rank::group_size]``.
        variant: the edge features, ``both``, ``inherent`` or ``thermal``.
        settings: the run's settings (tbotan.learn.recipe.run_settings): the loss weights.
        group: the seed's process group, or None in one process.
        group_rank: this rank's place in the group.
        group_size: the group's number of ranks.
    """
    sums = torch.zeros(len(TERMS) + 3, dtype=torch.float64)
    for g in graphs[group_rank::group_size]:
        t = graph_terms(model, g, variant)
        extra = [pearson_a(t["node"], g), float(objective(t, True, settings)), 1.0]
        sums += torch.tensor([float(t[k]) for k in TERMS] + extra, dtype=torch.float64)
    dev = next(model.parameters()).device
    sums = reduce_sum(sums.to(dev), group).cpu()
    n = max(float(sums[-1]), 1.0)
    means = {k: float(sums[i]) / n for i, k in enumerate(TERMS)}
    return {**means, "pearson_A": float(sums[-3]) / n, "objective": float(sums[-2]) / n}


def temperature_head(t_pred: list, u_max, switched: bool, hidden: int, group=None) -> dict:
    """The temperature head over an epoch's training graphs: the spread (standard deviation) of T_pred beside that
    of the labels, the slope of T_pred against the labels (least squares; 1 when it follows them, 0 when it does
    not tell them apart, however much it scatters), and how many units of u were positive on at least one graph.
    ``dead``: switched on, yet the slope is below DEAD_T_HEAD."""
    u_max = torch.zeros(hidden) if u_max is None else u_max.detach().cpu().clone()
    if group is not None:
        everyone = [None] * dist.get_world_size(group)
        dist.all_gather_object(everyone, t_pred, group=group)
        t_pred = [x for part in everyone for x in part]
        nccl = dist.get_backend(group) == "nccl"
        u_max = u_max.to(torch.device("cuda", torch.cuda.current_device()) if nccl else "cpu")
        dist.all_reduce(u_max, op=dist.ReduceOp.MAX, group=group)
        u_max = u_max.cpu()
    pred = np.array([p for p, _ in t_pred], dtype=float)
    labels = np.array([T for _, T in t_pred], dtype=float)
    spread = float(pred.std()) if len(pred) else 0.0
    label_spread = float(labels.std()) if len(labels) else 0.0
    slope = float(np.mean((pred - pred.mean()) * (labels - labels.mean())) / label_spread**2) if label_spread else 0.0
    return {
        "spread": spread,
        "label_spread": label_spread,
        "slope": slope,
        "u_alive": int((u_max > 0).sum()),
        "hidden": hidden,
        "dead": bool(switched and label_spread > 0 and slope < DEAD_T_HEAD),
    }


def dead_head_message(head: dict) -> str:
    """The line the log and ``tbotan status`` give for a dead temperature head (``temperature_head``'s dict)."""
    return (
        f"temperature head dead: T_pred follows the labels of the training graphs with slope {head['slope']:.2g} "
        f"(1: perfect; spread {head['spread']:.2g} against the labels' {head['label_spread']:.2g}; u: "
        f"{head['u_alive']} of {head['hidden']} units alive): it does not tell the temperatures apart "
        "(docs/training.md: why, and what the training.scaling choices do)"
    )

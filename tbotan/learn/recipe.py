"""The training recipe (docs/training.md): the units of the network's inputs and outputs, Adam's parameter groups,
the learning-rate schedule, the ramp of w_v and w_c, and the settings a resumed run must share.

    shift, scale = output_units(train_graphs, "standard")          # model.set_output_units(shift, scale)
    lr = learning_rate(settings, epoch)                             # epoch 0-based
    settings_e = ramped(settings, epoch)                            # w_v, w_c of that epoch's loss

The paper leaves these choices open; the spec's ``training`` fields pick them (``RECIPE_DEFAULTS`` are the paper's
network and a constant step). Units are fixed (non-trained) buffers of the model (tbotan.learn.model): an output
y is read as ``shift + scale * y``, an input x enters as ``(x - shift) / scale``; each is computed once from the
training graphs.

Learning rate of epoch e (0-based), with W = ``warmup_epochs``, S = ``switch_epoch``, E = ``schedule_epochs``:

    lr(e) = lr * w(e) * s(e) * c(e)
    w(e)  = min(1, (e + 1) / W), 1 when W = 0                                        (warm-up)
    s(e)  = switch_lr_factor when e >= S, else 1
    c(e)  = 1 (constant), or 0.01 + 0.99 * (1 + cos(pi * min(max(e - W, 0) / max(E - 1 - W, 1), 1))) / 2 (cosine)

Ramp: from the switch epoch on, w_v and w_c are scaled by min(1, (e - S + 1) / ``switch_ramp_epochs``).
"""

from __future__ import annotations

import math

import torch

from .diagnostics import run_with_hooks
from .graphs import Graph, edge_features
from .model import TBotan

RECIPE_DEFAULTS = {
    "scaling": "none",
    "init": "torch",
    "pretrain_epochs": 0,
    "pretrain_target": "edge",
    "schedule": "constant",
    "warmup_epochs": 0,
    "global_input": "raw",
    "global_start_epoch": None,
    "global_lr_factor": 1.0,
    "switch_lr_factor": 1.0,
    "switch_ramp_epochs": 0,
    "switch_trunk_lr_factor": 1.0,
    "edge_input": "raw",
    "message_input": "raw",
    "pretrain_readout": "keep",
}

# training.scaling -> per output (node, edge, t): shifted by the training set's mean?, scaled by its spread?
SCALINGS = {
    "none": ((False, False, False), (False, False, False)),
    "temperature": ((False, False, True), (False, False, True)),
    "edge_temperature": ((False, True, True), (False, True, True)),
    "centered": ((True, True, True), (False, True, True)),
    "standard": ((True, True, True), (True, True, True)),
    "mobility": ((True, True, True), (True, True, True)),
}


# --- units -------------------------------------------------------------------------------------------------
def output_units(graphs: list[Graph], scaling: str = "standard", flip_node: bool = False):
    """(shift, scale) for (node, edge, t) under ``scaling`` (SCALINGS): the mean and standard deviation over the
    training graphs of the node target, the (finite) edge targets and the temperature labels where the mode says so,
    else 0 and 1; a spread of zero (one training temperature, no edge targets) reads as 1. ``flip_node``: the
    node's scale is minus its spread (``scaling: mobility``: C_B falls where E_jk grows, so a decoder shared by
    nodes and edges then reads mobility in both)."""
    node = torch.cat([g.node_target.double() for g in graphs])
    edge = torch.cat([g.edge_target.double() for g in graphs])
    edge = edge[torch.isfinite(edge)]
    t = torch.tensor([g.temperature for g in graphs], dtype=torch.float64)
    shifted, scaled = SCALINGS[scaling]
    shift, scale = [], []
    for x, do_shift, do_scale in zip((node, edge, t), shifted, scaled):
        mean = float(x.mean()) if len(x) else 0.0
        std = float(x.std(unbiased=False)) if len(x) > 1 else 0.0
        shift.append(mean if do_shift else 0.0)
        scale.append(std if do_scale and std > 0 else 1.0)
    if flip_node:
        scale[0] = -scale[0]
    return shift, scale


def species_means(graphs: list[Graph]) -> torch.Tensor:
    """The mean node target of each species (A, B) over the training graphs' nodes (the anchors of L_anc,
    tbotan.learn.loss.species_terms)."""
    species = torch.cat([g.species for g in graphs])
    target = torch.cat([g.node_target.double() for g in graphs])
    return torch.stack([target[species == s].mean() if (species == s).any() else target.mean() for s in (0, 1)]).float()


def edge_input_units(graphs: list[Graph], variant: str):
    """(shift, scale) of the edge features of ``variant`` (``training.edge_input: standardized``, model.py): the IS
    vector unshifted, in units of its root-mean-square component over the training graphs' edges (one scale for
    the three axes); the thermal distance shifted by its mean and scaled by its spread."""
    vec = torch.cat([g.is_vectors.double() for g in graphs])
    dist = torch.cat([g.thermal_distance.double() for g in graphs])
    rms, mean, std = float(vec.pow(2).mean().sqrt()), float(dist.mean()), float(dist.std(unbiased=False))
    vec_units, dist_units = ([0.0] * 3, [rms or 1.0] * 3), ([mean], [std or 1.0])
    parts = {"both": (vec_units, dist_units), "inherent": (vec_units,), "thermal": (dist_units,)}[variant]
    return [x for p in parts for x in p[0]], [x for p in parts for x in p[1]]


@torch.no_grad()
def message_input_units(model: TBotan, graphs: list[Graph], variant: str):
    """(shift, scale), each (hidden,): the mean and standard deviation of every feature of the sum of incoming
    messages, over the nodes of ``graphs`` and the message-passing steps of ``model`` (with its message units at
    the identity), plus 1e-3 of the root-mean-square mean as a floor (a feature constant to float noise stays
    near its size)."""
    model.set_message_input_units(torch.zeros(model.hidden), torch.ones(model.hidden))
    sums = []
    hook = model.node_mlp.register_forward_pre_hook(lambda _, args: sums.append(args[0][:, 2 * model.hidden :]))
    try:
        for g in graphs:
            model(g.species, g.edges, edge_features(g, variant))
    finally:
        hook.remove()
    x = torch.cat(sums).double()  # (nodes x steps, hidden)
    shift = x.mean(dim=0)
    floor = 1e-3 * float(shift.pow(2).mean().sqrt()) + 1e-12
    return shift.float(), (x.std(dim=0, unbiased=False) + floor).float()


@torch.no_grad()
def global_input_units(model: TBotan, graphs: list[Graph], variant: str):
    """(shift, scale), each (steps, hidden): the mean over ``graphs`` of mean_v h^m per step m and feature, and its
    graph-to-graph standard deviation plus 1e-3 of the step's root-mean-square mean (a floor that keeps a feature
    constant to float noise from being blown up to unit size)."""
    x = torch.stack(
        [model(g.species, g.edges, edge_features(g, variant)).global_inputs.double() for g in graphs]
    )  # (graphs, steps, hidden)
    shift = x.mean(dim=0)
    floor = 1e-3 * shift.pow(2).mean(dim=1, keepdim=True).sqrt() + 1e-12
    return shift.float(), (x.std(dim=0, unbiased=False) + floor).float()


def _with_intercept(z: torch.Tensor) -> torch.Tensor:
    """``z`` (rows, features) with a column of ones appended: the design matrix of a readout and its bias."""
    return torch.cat([z, torch.ones(len(z), 1, dtype=z.dtype, device=z.device)], dim=1)


def _set_readout(layer: torch.nn.Linear, w: torch.Tensor) -> None:
    """The one-output Linear ``layer`` set to the weights ``w[:-1]`` and the bias ``w[-1]`` of a fit."""
    layer.weight.copy_(w[:-1].to(layer.weight.dtype).unsqueeze(0))
    layer.bias.copy_(w[-1:].to(layer.bias.dtype))


@torch.no_grad()
def fit_readouts(model: TBotan, graphs: list[Graph], variant: str) -> dict:
    """``training.pretrain_readout: fit`` (when pre-training ends): the last Linear layer of the node and of the
    edge decoder set to the least squares fit of the training graphs' node and (finite) edge targets on the
    decoder's penultimate features, in the model's output units (a tiny ridge, 1e-8 of the features' mean square,
    keeps the solve well posed). The trunk and the rest of the decoders are unchanged. Returns per output the mean
    squared error before and after, in units of the target's variance."""
    if model.node_decoder is model.edge_decoder:
        raise ValueError("fitting the readouts needs separate node and edge decoders")
    feats = {"node": [], "edge": []}
    hooks = {
        model.node_decoder[0]: lambda m, i, o: feats["node"].append(o.double()),
        model.edge_decoder[0]: lambda m, i, o: feats["edge"].append(o.double()),
    }
    run_with_hooks(model, graphs, variant, hooks)
    report = {}
    for k, (name, layer) in enumerate((("node", model.node_decoder[1]), ("edge", model.edge_decoder[1]))):
        z = torch.cat(feats[name])
        y = torch.cat([(g.node_target if name == "node" else g.edge_target).double() for g in graphs])
        keep = torch.isfinite(y)
        z, y = z[keep], y[keep]
        if not len(y):
            continue
        y = (y - float(model.output_shift[k])) / float(model.output_scale[k])  # in the decoder's units
        a = _with_intercept(z)
        before = a @ torch.cat([layer.weight.double().squeeze(0), layer.bias.double()])
        ridge = 1e-8 * float(a.square().mean()) * len(a)
        eye = torch.eye(a.shape[1], dtype=a.dtype, device=a.device)
        w = torch.linalg.solve(a.T @ a + ridge * eye, a.T @ y)
        _set_readout(layer, w)
        var = float(y.var(unbiased=False)) or 1.0
        report[name] = {
            "before": float((before - y).square().mean()) / var,
            "after": float((a @ w - y).square().mean()) / var,
        }
    return report


@torch.no_grad()
def fit_temperature_readout(model: TBotan, graphs: list[Graph], variant: str) -> dict:
    """``training.pretrain_readout: fit`` at the switch epoch: the global decoder's last Linear layer set to the ridge
    regression of the training graphs' temperature labels on u's penultimate features (the intercept not
    penalised), the penalty chosen by leave-one-out error over a grid (closed form, n graphs), so that the
    temperature head starts at the best linear reading of what the global chain sees instead of at a random one.
    Returns the penalty and the leave-one-out root-mean-square error in temperature units."""
    feats = []
    run_with_hooks(model, graphs, variant, {model.global_decoder[0]: lambda m, i, o: feats.append(o.double())})
    layer = model.global_decoder[1]
    shift, scale = float(model.output_shift[2]), float(model.output_scale[2])
    z = torch.stack([f.reshape(-1) for f in feats])
    y = (torch.tensor([g.temperature for g in graphs], dtype=torch.float64, device=z.device) - shift) / scale
    a = _with_intercept(z)
    free = torch.ones(a.shape[1], dtype=z.dtype, device=z.device)
    free[-1] = 0.0  # the intercept
    base = float(z.square().mean()) * len(z) or 1.0
    best = None
    for k in range(-6, 5):
        ridge = base * 10.0**k
        inv = torch.linalg.inv(a.T @ a + ridge * torch.diag(free))
        w = inv @ a.T @ y
        leverage = ((a @ inv) * a).sum(dim=1)
        loo = float(((a @ w - y) / (1 - leverage).clamp_min(1e-9)).square().mean())
        if best is None or loo < best[0]:
            best = (loo, ridge, w)
    loo, ridge, w = best
    _set_readout(layer, w)
    return {"penalty": ridge / base, "loo_rmse": loo**0.5 * abs(scale)}


# --- the optimiser's steps -----------------------------------------------------------------------------------
def parameter_groups(model: TBotan, global_lr_factor: float = 1.0, switch_trunk_lr_factor: float = 1.0) -> list[dict]:
    """Adam's parameter groups: the global path (GlobalMLP and its decoder) at ``global_lr_factor`` times the
    learning rate, everything else at it (one group where the factors are 1). Where ``switch_trunk_lr_factor`` is
    not 1 the trunk (the encoders, the edge and node MLPs) is a group of its own, marked ``trunk``: its step is
    scaled by that factor from the switch epoch on (0 freezes it, and the terms that join then train only the
    decoders and the global path)."""
    modules = {"chain": (model.global_mlp, model.global_decoder)} if global_lr_factor != 1.0 else {}
    if switch_trunk_lr_factor != 1.0:
        modules["trunk"] = (model.node_encoder, model.edge_encoder, model.edge_mlp, model.node_mlp)
    own = {key: {id(p) for m in ms for p in m.parameters()} for key, ms in modules.items()}
    taken = set().union(*own.values())
    groups = [{"params": [p for p in model.parameters() if id(p) not in taken]}]
    if "chain" in own:
        groups.append(
            {"params": [p for p in model.parameters() if id(p) in own["chain"]], "lr_factor": global_lr_factor}
        )
    if "trunk" in own:
        groups.append({"params": [p for p in model.parameters() if id(p) in own["trunk"]], "trunk": True})
    return groups


def learning_rate(settings: dict, epoch: int) -> float:
    """The learning rate of (0-based) ``epoch``: linear warm-up over ``warmup_epochs``, then constant or a cosine
    decay to 1 % of ``lr`` at the spec's last epoch; times ``switch_lr_factor`` from the switch epoch on."""
    lr, warm = settings["lr"], settings["warmup_epochs"]
    factor = min(1.0, (epoch + 1) / warm) if warm else 1.0
    if epoch >= settings["switch_epoch"]:
        factor *= settings["switch_lr_factor"]
    if settings["schedule"] == "cosine":
        span = max(settings["schedule_epochs"] - 1 - warm, 1)
        x = min(max(epoch - warm, 0) / span, 1.0)
        factor *= 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * x))
    return lr * factor


def ramped(settings: dict, epoch: int) -> dict:
    """``settings`` for the loss of (0-based) ``epoch``: w_v and w_c times (epoch - switch + 1) / switch_ramp_epochs
    while that is below 1 (``training.switch_ramp_epochs``), as they are otherwise."""
    ramp, since = settings["switch_ramp_epochs"], epoch - settings["switch_epoch"] + 1
    if not ramp or since >= ramp or since < 1:
        return settings
    return {**settings, "w_v": settings["w_v"] * since / ramp, "w_c": settings["w_c"] * since / ramp}


# --- what a checkpoint records ---------------------------------------------------------------------------------
def run_settings(spec, lambda_g: float, graphs_per_step: int, group_size: int) -> dict:
    """What a resumed run must share with its checkpoint (everything that shapes the trajectory): the loss weights,
    the optimiser's, the recipe's fields, the step's graphs and ranks, the spec's seed and the precision."""
    t = spec.training
    return {
        "temperatures": [float(x) for x in t.temperatures],
        "switch_epoch": t.switch_epoch,
        "lambda_g": float(lambda_g),
        "target": t.target,
        "lambda_node": t.lambda_node,
        "lambda_edge": t.lambda_edge,
        "w_v": t.w_v,
        "w_c": t.w_c,
        "lr": t.lr,
        "clip": t.clip,
        "graphs_per_step": graphs_per_step,
        "ranks_per_seed": group_size,
        "spec_seed": spec.seed,
        "precision": t.precision,
        **{k: getattr(t, k) for k in RECIPE_DEFAULTS},
        **({"schedule_epochs": t.epochs} if t.schedule == "cosine" else {}),
    }

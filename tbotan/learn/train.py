"""Training T-BOTAN (SPEC §5): seeds side by side, checkpoints, resume, torch.distributed.

    from tbotan.data.spec import load_spec
    from tbotan.learn.train import train
    results = train(load_spec("jobs/quickstart.yaml"), "storage/quickstart.zarr")          # every seed
    results = train(spec, store, variant="inherent", lambda_g=0.1, seeds=[0])              # one of a sweep

What one seed does
------------------
* Data: the ``done`` configurations of split 0 (train) at every ``training.temperatures``, mixed in one
  list; validation = split 1 at the same temperatures. The test split is never read. No temperature is
  an input; it is only the label of the global term.
* Model: ``TBotan(variant, hidden, steps, decoder)``, initialised from a seed derived from (spec.seed,
  seed id); Adam(lr); gradient-norm clip ``clip``.
* Epoch e: a ``torch.Generator`` seeded from (spec.seed, seed id, e) draws the order of the training
  graphs and, for each position in that order, one augmentation (axis permutation + reflections,
  applied to a new feature tensor; the stored graph is never changed). Order and augmentation depend
  only on (seed, epoch): a resumed run repeats them exactly.
* A step takes ``graphs_per_step`` graphs per rank; its loss is the mean of L_all over the step's graphs.
  L_all = loss.combine(terms, switched_on=e >= switch_epoch): the switch turns on w_v, w_c and the
  global term together (SPEC §5, Fig. 6). Before the switch the global term is added times 0.0, so the
  global MLP and decoder take part in every backward pass (DDP needs every parameter to get a gradient).
* Epochs are counted from 1 in progress lines, errors, history and checkpoints (``epoch`` = epochs done);
  epoch e (0-based) is switched on when e >= switch_epoch.
* After each epoch: the validation loss. Checkpoints are selected on the *full* objective (the loss with
  every term switched on, whatever the epoch), so a best checkpoint is comparable before and after the
  switch. History (per-term train and validation means, times) goes to ``history.json`` and ``last.pt``.

Checkpoints: ``<store>/models/<variant name>/seed<s>/`` with ``last.pt`` (every epoch), ``best.pt`` (when
the validation objective improves) and ``history.json``; each written to a temporary file and moved into
place with ``os.replace``, so a kill at any moment leaves the previous complete file. The variant name is
the variant, plus ``_lambda<value>`` when lambda_g is not the spec's first value. ``models/`` is made a
(empty) Zarr group so that Zarr readers of the store do not warn about it.

Resume: when ``last.pt`` exists it is loaded and training continues at its epoch; the result is
bit-identical to an uninterrupted run on the same hardware and rank layout. A checkpoint of another
model shape (hidden, steps, decoder, variant) or other trajectory-defining settings (lr, clip, switch
epoch, loss weights, training temperatures, graphs per step and ranks per seed) is refused; ``epochs``
may grow (train longer).

Distributed (``torchrun``/``srun``; RANK and WORLD_SIZE in the environment, or SLURM_PROCID/SLURM_NTASKS
with MASTER_ADDR/MASTER_PORT): backend nccl with CUDA, gloo on CPU. With P ranks and S seeds: if P >= S,
seed i of the list gets the ranks r with r % S == i (a process group each; within it the model is wrapped
in DistributedDataParallel and a step of G graphs per rank takes G x group-size graphs, gradients averaged);
if P < S, rank r trains the seeds i with i % P == r on its own. The first rank of each group writes the
checkpoints (a shared file system is assumed). A step of n_b graphs (the last one of an epoch may be short)
gives the same gradient as one process taking all n_b graphs: each rank scales its graphs' summed loss by
group-size / n_b (DDP then averages); a rank left without a graph runs one with weight 0.
A seed whose loss turns NaN stops with an error naming seed, epoch and configuration (T, c); the other
seeds go on, and ``train`` raises ``TrainingError`` listing the failures at the end.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import zarr

from ..data import lock
from ..data.store import record_spec, writing
from ..errors import NonFiniteError, StoreLocked, TrainingError
from . import loss as loss_mod
from .compiled import compiled
from .distributed import Layout, reduce_sum, setup
from .graphs import Graph, edge_features, load_graphs, random_orthogonal
from .memory import keep_freed_memory
from .model import EDGE_FEATURES, TBotan

logger = logging.getLogger(__name__)

TERMS = ("mse", "var", "corr", "edge", "global")
_TAG = 0x7B07A  # separates the training's random streams from the data's (same spec.seed)
FORMAT = 1


# --- names, seeds, settings -------------------------------------------------------------------------
def variant_name(spec, variant: str, lambda_g: float | None = None) -> str:
    default = spec.training.lambda_g_values[0]
    if lambda_g is None or float(lambda_g) == float(default):
        return variant
    return f"{variant}_lambda{float(lambda_g):g}"


def runs(spec, variant: str | None = None, lambda_g: float | None = None) -> list[tuple[str, float]]:
    """Every (variant, lambda_g) the spec trains: its variants times its lambda_g values (a sweep); a given
    ``variant`` or ``lambda_g`` replaces the spec's list (`--variant`, `--lambda-g`)."""
    variants = [variant] if variant else spec.training.variants
    lambdas = [lambda_g] if lambda_g is not None else spec.training.lambda_g_values
    return [(v, lam) for v in variants for lam in lambdas]


def run_flags(spec, variant: str, lambda_g: float | None = None) -> str:
    """The `tbotan train/evaluate` options that select one run, e.g. ' --variant thermal --lambda-g 0.1'."""
    return ("" if variant == "both" else f" --variant {variant}") + (
        "" if variant_name(spec, variant, lambda_g) == variant else f" --lambda-g {float(lambda_g):g}"
    )


def model_dir(store_path, spec, variant: str = "both", lambda_g: float | None = None, seed: int = 0) -> Path:
    return Path(store_path) / "models" / variant_name(spec, variant, lambda_g) / f"seed{seed}"


def model_shape(spec, variant: str) -> dict:
    t = spec.training
    return {"variant": variant, "hidden": t.hidden, "steps": t.steps, "decoder": t.decoder}


def build_model(shape: dict, init: str = "torch") -> TBotan:
    return TBotan(
        shape["variant"], hidden=shape["hidden"], steps=shape["steps"], decoder_mode=shape["decoder"], init=init
    )


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
}
DEAD_T_HEAD = 0.1  # the temperature head is dead when T_pred follows the labels with a slope below this


# training.scaling -> per output (node, edge, t): shifted by the training set's mean?, scaled by its spread?
SCALINGS = {
    "none": ((False, False, False), (False, False, False)),
    "temperature": ((False, False, True), (False, False, True)),
    "edge_temperature": ((False, True, True), (False, True, True)),
    "centered": ((True, True, True), (False, True, True)),
    "standard": ((True, True, True), (True, True, True)),
    "mobility": ((True, True, True), (True, True, True)),
}


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


def _seed(spec_seed: int, *key: int) -> int:
    return int(np.random.SeedSequence([int(spec_seed), _TAG, *map(int, key)]).generate_state(1, dtype=np.uint64)[0])


def _settings(spec, lambda_g: float, graphs_per_step: int, group_size: int) -> dict:
    """What a resumed run must share with its checkpoint (everything that shapes the trajectory)."""
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


# --- seeds over ranks -----------------------------------------------------------------------------------
def _assign(seeds: list[int], lay: Layout):
    """[(seed, group, group ranks)] this rank trains; every rank creates every group in the same order."""
    P, S = lay.world, len(seeds)
    if P == 1:
        return [(s, None, [0]) for s in seeds]
    if P < S:
        return [(s, None, [lay.rank]) for i, s in enumerate(seeds) if i % P == lay.rank]
    mine = []
    for i, s in enumerate(seeds):
        ranks = [r for r in range(P) if r % S == i]
        group = dist.new_group(ranks)  # collective: called by every rank for every seed
        if lay.rank in ranks:
            mine.append((s, group if len(ranks) > 1 else None, ranks))
    return mine


# --- loss of one graph ---------------------------------------------------------------------------------
def graph_terms(
    model, graph: Graph, variant: str, transform=None, kernel=loss_mod.pair_block, precision: str = "float32"
) -> dict:
    """Every loss term of ``graph`` under ``model``; ``precision`` "bfloat16" runs the forward pass under autocast
    (the outputs come out in float32, and the loss is computed in float32)."""
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
    )
    return {**terms, "t_pred": out.t.detach(), "u": out.u.detach(), "node": out.node.detach()}


def cpu_has_bf16() -> bool:
    """Whether this CPU multiplies bf16 in hardware (AVX512-BF16 or AMX), as oneDNN reports it."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def resolve_precision(asked: str, device: torch.device) -> str:
    """``training.precision``: "auto" is bfloat16 on a GPU that has it and on a CPU with bf16 hardware, else
    float32; the others are themselves."""
    if asked != "auto":
        return asked
    if device.type == "cuda":
        return "bfloat16" if torch.cuda.is_bf16_supported() else "float32"
    return "bfloat16" if device.type == "cpu" and cpu_has_bf16() else "float32"


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
    unless ``global_on`` (``training.global_start_epoch`` before the switch epoch: then lambda_g L_global counts).
    While ``pretraining`` (the first ``pretrain_epochs``) only the edge term (``pretrain_target`` edge) or only
    L_MSE (node) counts; the others enter times 0.0 for the same reason."""
    if pretraining and settings["pretrain_target"] == "node":
        return settings["lambda_node"] * t["mse"] + 0.0 * (t["edge"] + t["global"])
    if pretraining:
        return settings["lambda_edge"] * t["edge"] + 0.0 * (t["mse"] + t["global"])
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
    return total + (settings["lambda_g"] if global_on else 0.0) * t["global"]


@torch.no_grad()
def evaluate(
    model, graphs: list[Graph], variant: str, settings: dict, group=None, group_rank: int = 0, group_size: int = 1
) -> dict:
    """Mean per-term losses over ``graphs`` plus ``objective`` (every term on) and ``pearson_A`` (of the node
    prediction over A particles, a diagnostic: the var and corr terms cannot tell a prediction from its mirror
    image); shared over a group's ranks."""
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
    return (
        f"temperature head dead: T_pred follows the labels of the training graphs with slope {head['slope']:.2g} "
        f"(1: perfect; spread {head['spread']:.2g} against the labels' {head['label_spread']:.2g}; u: "
        f"{head['u_alive']} of {head['hidden']} units alive): it does not tell the temperatures apart "
        "(docs/training.md: why, and what the training.scaling choices do)"
    )


# --- checkpoints ---------------------------------------------------------------------------------------
def _atomic(path: Path, write) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with writing(path.parent, path.name):
        try:
            with open(tmp, "wb") as f:
                write(f)
                f.flush()
                os.fsync(f.fileno())
        except OSError:
            tmp.unlink(missing_ok=True)
            raise
        os.replace(tmp, path)


def _save(obj, path: Path) -> None:
    _atomic(path, lambda f: torch.save(obj, f))


def _save_json(obj, path: Path) -> None:
    _atomic(path, lambda f: f.write(json.dumps(obj, indent=1).encode()))


def load_checkpoint(path, map_location="cpu") -> dict:
    return torch.load(path, map_location=map_location, weights_only=True)


def _check_compatible(ck: dict, shape: dict, settings: dict, path: Path) -> None:
    if ck.get("shape") != shape:
        diff = ", ".join(
            f"{k}: checkpoint {ck.get('shape', {}).get(k)!r}, spec {v!r}"
            for k, v in shape.items()
            if ck.get("shape", {}).get(k) != v
        )
        raise TrainingError(
            f"{path} holds a model of another shape ({diff}); it cannot be resumed with this "
            "spec: move that folder away or restore the spec's model settings"
        )
    old = ck.get("settings", {})
    old = {"target": "cb", "precision": "float32", **RECIPE_DEFAULTS, **old}  # older checkpoints: as it was then
    diff = [f"{k}: checkpoint {old.get(k)!r}, now {v!r}" for k, v in settings.items() if old.get(k) != v]
    if diff:
        raise TrainingError(
            f"{path} was trained with other settings ({'; '.join(diff)}); resuming would mix "
            "two trainings: restore them or move that folder away"
        )


def _ensure_models_group(root: zarr.Group) -> None:
    """``models/`` as an (empty) Zarr group, so that Zarr readers of the store list it as one."""
    models = root.require_group("models")
    if "content" not in models.attrs:
        models.attrs["content"] = "T-BOTAN checkpoints (torch files, see tbotan.learn.train), no arrays"


def _fmt_time(s: float) -> str:
    s = int(round(s))
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


# --- one seed ------------------------------------------------------------------------------------------
def _train_seed(
    spec,
    store_path: Path,
    variant: str,
    lambda_g: float,
    seed: int,
    group,
    ranks: list[int],
    lay: Layout,
    train_graphs,
    val_graphs,
    epochs: int,
    graphs_per_step: int,
) -> dict:
    t = spec.training
    W = len(ranks)
    grank = ranks.index(lay.rank) if lay.world > 1 else 0
    writer = grank == 0
    shape = model_shape(spec, variant)
    settings = _settings(spec, lambda_g, graphs_per_step, W)
    folder = model_dir(store_path, spec, variant, lambda_g, seed)
    last_path, best_path = folder / "last.pt", folder / "best.pt"
    say = (lambda line: logger.info(f"seed {seed}: {line}")) if writer else (lambda line: None)

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(_seed(spec.seed, seed))
        model = build_model(shape, init=t.init)
    if t.scaling != "none":
        model.set_output_units(
            *output_units(train_graphs, t.scaling, flip_node=t.scaling == "mobility" and t.target == "cb")
        )
    if t.edge_input == "standardized":
        model.set_edge_input_units(*edge_input_units(train_graphs, variant))
    model.to(lay.device)
    if t.message_input == "standardized":  # from the initial network (a resumed run loads them with the weights)
        model.set_message_input_units(*message_input_units(model, train_graphs, variant))
    model.checkpoint_steps = t.checkpoint
    opt = torch.optim.Adam(parameter_groups(model, t.global_lr_factor, t.switch_trunk_lr_factor), lr=t.lr)
    start, best, best_epoch, history = 0, math.inf, None, []
    if last_path.exists():
        ck = load_checkpoint(last_path, map_location=lay.device)
        _check_compatible(ck, shape, settings, last_path)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        start, best, best_epoch, history = ck["epoch"], ck["best_validation"], ck["best_epoch"], ck["history"]
        say(f"resuming {folder} at epoch {start}/{epochs} (best validation {best:.4g} at epoch {best_epoch})")
    if start >= epochs:
        say(f"already trained to epoch {start} (asked {epochs}); nothing to do")
        return {
            "seed": seed,
            "dir": str(folder),
            "epochs": start,
            "best_validation": best,
            "best_epoch": best_epoch,
            "model": model,
        }
    if writer:
        folder.mkdir(parents=True, exist_ok=True)

    net = model
    if group is not None:
        from torch.nn.parallel import DistributedDataParallel as DDP

        net = DDP(model, process_group=group, device_ids=[lay.device] if lay.device.type == "cuda" else None)
    forward, kernel = compiled(net, t.compile), compiled(loss_mod.pair_block, t.compile)

    n = len(train_graphs)
    per_step = graphs_per_step * W
    wall0 = history[-1]["wall_s"] if history else 0.0
    epoch_times = []
    for epoch in range(start, epochs):
        t0 = time.perf_counter()
        switched = epoch >= t.switch_epoch
        pretraining = epoch < t.pretrain_epochs
        global_on = t.global_start_epoch is not None and epoch >= t.global_start_epoch
        if epoch == t.switch_epoch and t.global_input == "standardized":
            model.set_global_input_units(*global_input_units(model, train_graphs, variant))
            say(f"global input standardised with the mean and spread of mean_v h^m over {n} training graphs")
        for param_group in opt.param_groups:
            factor = param_group.get("lr_factor", 1.0)
            if param_group.get("trunk") and switched:
                factor *= t.switch_trunk_lr_factor
            param_group["lr"] = learning_rate(settings, epoch) * factor
        epoch_settings = ramped(settings, epoch)  # the validation objective keeps the full weights (comparable)
        t_pred, u_max = [], None
        gen = torch.Generator().manual_seed(_seed(spec.seed, seed, epoch))
        order = torch.randperm(n, generator=gen).tolist()
        transforms = [random_orthogonal(gen) for _ in range(n)]
        sums = torch.zeros(len(TERMS) + 2, dtype=torch.float64)
        net.train()
        for step, first in enumerate(range(0, n, per_step)):
            positions = list(range(first, min(first + per_step, n)))
            n_b = len(positions)
            mine = positions[grank::W]
            weight = W / n_b
            work = [(p, weight) for p in mine] or [(positions[0], 0.0)]  # a rank without a graph: weight 0
            opt.zero_grad(set_to_none=True)
            bad = None
            for k, (p, w) in enumerate(work):
                g = train_graphs[order[p]]
                sync = net.no_sync() if group is not None and k < len(work) - 1 else contextlib.nullcontext()
                with sync:
                    terms = graph_terms(forward, g, variant, transforms[p], kernel, t.precision)
                    loss = objective(terms, switched, epoch_settings, pretraining, global_on)
                    if w and not torch.isfinite(loss).item() and bad is None:
                        bad = g
                    (loss * w).backward()
                if w:
                    t_pred.append((float(terms["t_pred"]), g.temperature))
                    u_max = terms["u"] if u_max is None else torch.maximum(u_max, terms["u"])
                    sums += torch.tensor(
                        [float(terms[k2].detach()) for k2 in TERMS] + [float(loss.detach()), 1.0], dtype=torch.float64
                    )
            gnorm = torch.nn.utils.clip_grad_norm_(model.parameters(), t.clip)
            flag = torch.tensor([0.0 if bad is None else 1.0], device=lay.device)
            if float(reduce_sum(flag, group)) > 0 or not torch.isfinite(gnorm).item():
                where = [bad.id] if bad is not None else []
                if group is not None:
                    everyone = [None] * W
                    dist.all_gather_object(everyone, where, group=group)
                    where = [x for ids in everyone for x in ids]
                if where:
                    what = ", ".join(f"(T={T:.3f}, c={c})" for T, c in where)
                    raise NonFiniteError(
                        f"seed {seed}: NaN/inf loss at epoch {epoch + 1} (step {step + 1}) on configuration "
                        f"{what}; last good checkpoint: {last_path if last_path.exists() else 'none'}"
                    )
                ids = ", ".join(
                    f"(T={train_graphs[order[p]].temperature:.3f}, c={train_graphs[order[p]].c})" for p in positions
                )
                raise NonFiniteError(
                    f"seed {seed}: non-finite gradient norm at epoch {epoch + 1} (step {step + 1}) on "
                    f"configurations {ids}; last good checkpoint: "
                    f"{last_path if last_path.exists() else 'none'}"
                )
            opt.step()
        sums = reduce_sum(sums.to(lay.device), group).cpu()
        count = max(float(sums[-1]), 1.0)
        train_means = {**{k: float(sums[i]) / count for i, k in enumerate(TERMS)}, "total": float(sums[-2]) / count}
        net.eval()
        val = evaluate(model, val_graphs, variant, settings, group, grank, W)
        if not math.isfinite(val["objective"]):
            raise NonFiniteError(
                f"seed {seed}: validation loss is {val['objective']} after epoch {epoch + 1}; "
                f"last good checkpoint: {last_path if last_path.exists() else 'none'}"
            )
        if not all(torch.isfinite(p).all() for p in model.parameters()):
            raise NonFiniteError(
                f"seed {seed}: non-finite parameters after epoch {epoch + 1}; checkpoints left as they were"
            )
        dt = time.perf_counter() - t0
        epoch_times.append(dt)
        improved = val["objective"] < best
        if improved:
            best, best_epoch = val["objective"], epoch + 1
        head = temperature_head(t_pred, u_max, switched, model.hidden, group)
        if head["dead"]:
            head["message"] = dead_head_message(head)
        history.append(
            {
                "epoch": epoch + 1,
                "switched_on": switched,
                "pretraining": pretraining,
                "lr": learning_rate(settings, epoch),
                "temperature_head": head,
                "train": train_means,
                "validation": val,
                "epoch_s": dt,
                "wall_s": wall0 + sum(epoch_times),
                "graphs_per_s": n / dt,
                "best": improved,
            }
        )
        if writer:
            state = {
                "format": FORMAT,
                "model": model.state_dict(),
                "optimizer": opt.state_dict(),
                "epoch": epoch + 1,
                "best_validation": best,
                "best_epoch": best_epoch,
                "history": history,
                "shape": shape,
                "settings": settings,
                "training": spec.training.model_dump(mode="json"),
                "seed": seed,
                "variant": variant,
                "lambda_g": float(lambda_g),
            }
            if improved:
                _save({**state, "history": history}, best_path)
            _save(state, last_path)
            _save_json(history, folder / "history.json")
        recent = epoch_times[-5:]
        eta = (epochs - epoch - 1) * sum(recent) / len(recent)
        if head["dead"] and epoch + 1 == epochs and writer:
            logger.warning(f"seed {seed}: {head['message']}")
        phase = " [all terms]" if switched else f" [{t.pretrain_target}s only]" if pretraining else ""
        say(
            f"epoch {epoch + 1}/{epochs}{phase} "
            f"loss {train_means['total']:.4g} "
            f"(mse {train_means['mse']:.3g} var {train_means['var']:.3g} corr {train_means['corr']:.3g} "
            f"edge {train_means['edge']:.3g} T {train_means['global']:.3g}) | validation {val['objective']:.4g} "
            f"(node rho_A {val['pearson_A']:.2f})"
            f"{' (best)' if improved else ''} | T slope {head['slope']:.2f}, "
            f"u {head['u_alive']}/{head['hidden']} alive | {n / dt:.2f} graphs/s | ETA {_fmt_time(eta)}"
        )
    return {
        "seed": seed,
        "dir": str(folder),
        "epochs": epochs,
        "best_validation": best,
        "best_epoch": best_epoch,
        "model": model,
    }


# --- entry point ---------------------------------------------------------------------------------------
def train(
    spec,
    store_path,
    variant: str = "both",
    lambda_g: float | None = None,
    seeds=None,
    graphs_per_step: int = 1,
    epochs: int | None = None,
    device=None,
    time_index: int | None = None,
) -> dict:
    """Train the seeds (default 0..training.seeds-1) of ``spec`` on the store; returns {seed: summary} for the
    seeds this rank trained (dir, epochs, best_validation, best_epoch, and ``model``: the final TBotan). Under
    torchrun/srun the seeds are spread over the ranks (module docstring).
    ``epochs`` overrides training.epochs (e.g. to stop early and resume later)."""
    if variant not in EDGE_FEATURES:
        raise TrainingError(f"unknown variant {variant!r} (one of {', '.join(EDGE_FEATURES)})")
    if graphs_per_step < 1:
        raise TrainingError(f"graphs_per_step must be at least 1, got {graphs_per_step}")
    store_path = Path(store_path)
    lambda_g = spec.training.lambda_g_values[0] if lambda_g is None else float(lambda_g)
    seeds = list(range(spec.training.seeds)) if seeds is None else [int(s) for s in seeds]
    if len(set(seeds)) != len(seeds) or any(s < 0 for s in seeds):
        raise TrainingError(f"seeds must be distinct non-negative integers, got {seeds}")
    epochs = spec.training.epochs if epochs is None else int(epochs)
    temps = spec.training_temperatures

    lay = setup(device)
    keep_freed_memory()  # large tensors reuse their pages from step to step (tbotan.learn.memory)
    held = contextlib.ExitStack()
    try:
        _lock_store(held, store_path, lay)
        target = spec.training.target
        train_graphs = load_graphs(store_path, temps, split=0, time_index=time_index, target=target)
        val_graphs = load_graphs(store_path, temps, split=1, time_index=time_index, allow_empty=True, target=target)
        no_edges = [g for g in train_graphs + val_graphs if not torch.isfinite(g.edge_target).any()]
        if no_edges and spec.training.lambda_edge > 0:
            raise TrainingError(
                f"{store_path}: {len(no_edges)} configurations have no edge targets (e.g. "
                f"T={no_edges[0].temperature:.3f} c={no_edges[0].c}; GlassBench ships none): "
                "set `training.lambda_edge: 0` to train on the nodes only"
            )
        if not val_graphs:
            raise TrainingError(
                f"{store_path}: no finished validation configuration (split 1) at any training "
                f"temperature {temps}; checkpoints are selected on it (spec splits.validation "
                f"must give at least one, and `tbotan simulate` must have finished it)"
            )
        train_graphs = [g.to(lay.device) for g in train_graphs]
        val_graphs = [g.to(lay.device) for g in val_graphs]
        precision = resolve_precision(spec.training.precision, lay.device)
        if lay.final_group is not None:  # rank 0's choice for every rank (a cluster's nodes may differ)
            box = [precision]
            dist.broadcast_object_list(box, src=0, group=lay.final_group)
            precision = box[0]
        if lay.rank == 0 and spec.training.precision == "auto":
            logger.info(f"training.precision auto: {precision} on {lay.device}")
        if precision == "bfloat16" and lay.device.type == "cpu" and not cpu_has_bf16() and lay.rank == 0:
            logger.warning(
                "training.precision is bfloat16 but this CPU has no bf16 hardware (AVX512-BF16 or AMX): torch "
                "emulates it, slower than float32; set `training.precision: float32` (or auto) here"
            )
        if lay.rank == 0:
            _ensure_models_group(record_spec(store_path, spec))
            logger.info(
                f"training {variant_name(spec, variant, lambda_g)} on T={temps}: {len(train_graphs)} train, "
                f"{len(val_graphs)} validation graphs; seeds {seeds}; {lay.world} rank(s) on {lay.device}; "
                f"{epochs} epochs, switch at {spec.training.switch_epoch}"
            )
        # the checkpoints record the precision the run used, so a resume on a machine that resolves auto otherwise
        # is refused, naming it (the store keeps the spec as written)
        spec = spec.model_copy(update={"training": spec.training.model_copy(update={"precision": precision})})
        results, failures = {}, {}
        for seed, group, ranks in _assign(seeds, lay):
            try:
                results[seed] = _train_seed(
                    spec,
                    store_path,
                    variant,
                    lambda_g,
                    seed,
                    group,
                    ranks,
                    lay,
                    train_graphs,
                    val_graphs,
                    epochs,
                    graphs_per_step,
                )
            except NonFiniteError as e:
                failures[seed] = str(e)
                if ranks.index(lay.rank) == 0:
                    logger.warning(f"seed {seed}: stopped: {e}")
        if lay.final_group is not None:
            dist.barrier(group=lay.final_group)  # the other seeds finish before anyone reports a failure
        if failures:
            raise TrainingError(
                "training failed for seed(s) " + ", ".join(map(str, failures)) + ":\n" + "\n".join(failures.values())
            )
        return results
    finally:
        held.close()
        if lay.initialized_here:
            dist.destroy_process_group()


def _lock_store(held: contextlib.ExitStack, store_path, lay: Layout) -> None:
    """Rank 0 takes the store's writer lock for the whole job (tbotan.data.lock) and tells every rank whether it
    got it, so that a refusal stops all of them with the holder named instead of leaving them waiting."""
    refusal = None
    if lay.rank == 0:
        try:
            held.enter_context(lock.writer(store_path, "tbotan train"))
        except StoreLocked as e:
            refusal = str(e)
    if lay.final_group is not None:
        box = [refusal]
        dist.broadcast_object_list(box, src=0, group=lay.final_group)
        refusal = box[0]
    if refusal:
        raise StoreLocked(refusal)

"""Training T-BOTAN (docs/method.md §5): the loop over seeds and epochs, side by side under torch.distributed, with
resume.

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
  seed id), its units set by the recipe (tbotan.learn.recipe); Adam(lr) over the recipe's parameter groups at
  the recipe's learning rate of the epoch; gradient-norm clip ``clip``.
* Epoch e: a ``torch.Generator`` seeded from (spec.seed, seed id, e) draws the order of the training
  graphs and, for each position in that order, one augmentation (axis permutation + reflections,
  applied to a new feature tensor; the stored graph is never changed). Order and augmentation depend
  only on (seed, epoch): a resumed run repeats them exactly.
* A step takes ``graphs_per_step`` graphs per rank; its loss is the mean of L_all over the step's graphs
  (tbotan.learn.scoring.objective, switched_on = e >= switch_epoch): the switch turns on w_v, w_c and the
  global term together (docs/method.md §5, Fig. 6). Before the switch the global term is added times 0.0, so the
  global MLP and decoder take part in every backward pass (DDP needs every parameter to get a gradient).
* Epochs are counted from 1 in progress lines, errors, history and checkpoints (``epoch`` = epochs done);
  epoch e (0-based) is switched on when e >= switch_epoch.
* After each epoch: the validation loss and rho_A (tbotan.learn.scoring.validate). ``best.pt`` is the epoch with
  the highest validation rho_A among the second half of the phase after the switch (``selection_start``): the
  node prediction is what the model is for, and by then the temperature head has trained for half of that phase.
  (The objective is no guide: after the switch it falls as L_Var and L_Corr shrink while rho_A falls; the
  objective's minimum picked checkpoints 0.04-0.06 below the best rho_A, docs/training.md.) A run whose validation
  rho_A is still below 0.1 half-way to the switch gets a warning (tbotan.data.runs.plateau_message). History
  (per-term train and validation means, the temperature head's health, times) goes to ``history.json`` and
  ``last.pt``.

Checkpoints: ``<store>/models/<variant name>/seed<s>/`` (tbotan.data.runs) with ``last.pt`` (every epoch),
``best.pt`` (the selected epoch, above) and ``history.json``; each written atomically
(tbotan.learn.checkpoints), so a kill at any moment leaves the previous complete file. ``models/`` is made a
(empty) Zarr group so that Zarr readers of the store do not warn about it.

Resume: when ``last.pt`` exists it is loaded and training continues at its epoch; the result is
bit-identical to an uninterrupted run on the same hardware and rank layout. A checkpoint of another
model shape (hidden, steps, decoder, variant) or other trajectory-defining settings (lr, clip, switch
epoch, loss weights, training temperatures, graphs per step and ranks per seed, the recipe, the precision;
tbotan.learn.recipe.run_settings) is refused; ``epochs`` may grow (train longer).

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
import logging
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from ..data import lock
from ..data.runs import BEST, HISTORY, LAST, TERMS, model_dir, plateau_message, variant_name
from ..data.store import record_spec
from ..errors import NonFiniteError, StoreLocked, TrainingError
from . import loss as loss_mod
from .checkpoints import (
    FORMAT,
    build_model,
    check_compatible,
    ensure_models_group,
    load_checkpoint,
    model_shape,
    save_checkpoint,
    save_json,
)
from .compiled import compiled
from .distributed import Layout, reduce_sum, setup
from .graphs import load_graphs, random_orthogonal
from .memory import keep_freed_memory
from .model import EDGE_FEATURES
from .precision import bf16_emulated, resolve_precision
from .recipe import (
    edge_input_units,
    fit_readouts,
    fit_temperature_readout,
    global_input_units,
    learning_rate,
    message_input_units,
    output_units,
    parameter_groups,
    ramped,
    run_settings,
    species_means,
)
from .scoring import dead_head_message, graph_terms, objective, temperature_head, validate

logger = logging.getLogger(__name__)

_TAG = 0x7B07A  # separates the training's random streams from the data's (same spec.seed)


# --- seeds: random streams, and which rank trains which ---------------------------------------------------
def _seed(spec_seed: int, *key: int) -> int:
    """The seed of one random stream of the training, keyed by (spec.seed, seed id[, epoch])."""
    return int(np.random.SeedSequence([int(spec_seed), _TAG, *map(int, key)]).generate_state(1, dtype=np.uint64)[0])


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


def _fmt_time(s: float) -> str:
    s = int(round(s))
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


# --- which checkpoint is kept --------------------------------------------------------------------------
def selection_start(switch_epoch: int, epochs: int) -> int:
    """Epochs after this one (1-based) compete for ``best.pt``: the second half of the phase after the switch (the
    temperature head has trained for at least half of it), or the second half of all epochs when there is no
    switch. Among them the best is the one with the highest validation rho_A."""
    return switch_epoch + (epochs - switch_epoch) // 2 if switch_epoch < epochs else epochs // 2


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
    """One seed on the ranks of ``group``: the model built (or resumed from ``last.pt``), the epochs from where it
    stands to ``epochs``, the checkpoints and history written by the group's first rank; returns its summary."""
    t = spec.training
    W = len(ranks)
    grank = ranks.index(lay.rank) if lay.world > 1 else 0
    writer = grank == 0
    shape = model_shape(spec, variant)
    settings = run_settings(spec, lambda_g, graphs_per_step, W)
    folder = model_dir(store_path, spec, variant, lambda_g, seed)
    last_path, best_path = folder / LAST, folder / BEST
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
    start, best, best_epoch, history = 0, -math.inf, None, []
    if last_path.exists():
        ck = load_checkpoint(last_path, map_location=lay.device)
        check_compatible(ck, shape, settings, last_path)
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
    blind = t.pretrain_target in ("deviation", "pearson", "anchored")  # node terms blind to the species' means
    anchors = species_means(train_graphs).to(lay.device) if t.pretrain_target == "anchored" else None
    per_step = graphs_per_step * W
    wall0 = history[-1]["wall_s"] if history else 0.0
    epoch_times = []
    for epoch in range(start, epochs):
        t0 = time.perf_counter()
        switched = epoch >= t.switch_epoch
        pretraining = epoch < t.pretrain_epochs
        global_on = t.global_start_epoch is not None and epoch >= t.global_start_epoch
        if t.pretrain_readout == "fit" and t.pretrain_epochs and epoch == t.pretrain_epochs:
            fit = fit_readouts(model, train_graphs, variant)
            say(
                "readouts fitted by least squares on the training graphs: "
                + ", ".join(f"{k} mse {v['before']:.3g} -> {v['after']:.3g}" for k, v in fit.items())
            )
        if epoch == t.switch_epoch and t.global_input == "standardized":
            model.set_global_input_units(*global_input_units(model, train_graphs, variant))
            say(f"global input standardised with the mean and spread of mean_v h^m over {n} training graphs")
        if epoch == t.switch_epoch and t.pretrain_readout == "fit":
            fit = fit_temperature_readout(model, train_graphs, variant)
            say(
                f"temperature readout fitted by ridge regression on {n} training graphs (penalty {fit['penalty']:.0e}"
                f" of the features' size, leave-one-out error {fit['loo_rmse']:.3g} in T)"
            )
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
                    terms = graph_terms(
                        forward, g, variant, transforms[p], kernel, t.precision, anchors, blind and pretraining
                    )
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
        val = validate(model, val_graphs, variant, settings, group, grank, W)
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
        start_window = selection_start(t.switch_epoch, epochs)
        improved = epoch + 1 > start_window and (
            best_epoch is None or best_epoch <= start_window or val["pearson_A"] > best
        )
        if improved:
            best, best_epoch = val["pearson_A"], epoch + 1
        plateau = plateau_message(seed, history + [{"epoch": epoch + 1, "validation": val}], t.switch_epoch)
        if plateau and epoch + 1 == t.switch_epoch // 2 and writer:
            logger.warning(plateau)
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
                save_checkpoint({**state, "history": history}, best_path)
            save_checkpoint(state, last_path)
            save_json(history, folder / HISTORY)
        recent = epoch_times[-5:]
        eta = (epochs - epoch - 1) * sum(recent) / len(recent)
        if head["dead"] and epoch + 1 == epochs and writer:
            logger.warning(f"seed {seed}: {head['message']}")
        phase = " [all terms]" if switched else f" [{t.pretrain_target} only]" if pretraining else ""
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
    """Train the seeds of one run of ``spec`` on the store, each resuming from its ``last.pt`` where there is one.
    Under torchrun/srun the seeds are spread over the ranks (module docstring).

    Args:
        spec: the job spec (its ``training`` section).
        store_path: the store, with the data of ``training.temperatures`` finished (splits 0 and 1).
        variant: the edge features, ``both``, ``inherent`` or ``thermal``.
        lambda_g: the global term's weight (default: the spec's first); another value is another run (a sweep).
        seeds: the seed ids (default 0..training.seeds-1).
        graphs_per_step: graphs per rank in one optimiser step.
        epochs: overrides training.epochs (e.g. to stop early and resume later).
        device: the torch device (default: CUDA where there is one, else the CPU; tbotan.learn.distributed).
        time_index: the observation time of the targets (default: the group's time at tau_alpha).

    Returns:
        {seed: summary} for the seeds this rank trained: ``dir``, ``epochs``, ``best_validation``, ``best_epoch``,
        and ``model`` (the final TBotan).
    """
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
        if bf16_emulated(precision, lay.device) and lay.rank == 0:
            logger.warning(
                "training.precision is bfloat16 but this CPU has no bf16 hardware (AVX512-BF16 or AMX): torch "
                "emulates it, slower than float32; set `training.precision: float32` (or auto) here"
            )
        if lay.rank == 0:
            ensure_models_group(record_spec(store_path, spec))
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

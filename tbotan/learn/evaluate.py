"""Predictions of trained models on the test configurations, and the numbers per configuration
(docs/method.md §6, §8.1).

    from tbotan.learn.evaluate import evaluate
    evaluate(load_spec("jobs/quickstart.yaml"), "storage/quickstart.zarr")                  # every seed of 'both'
    evaluate(spec, store, variant="inherent")                                               # an ablation

For each seed's validation-selected checkpoint (``models/<variant>/seed<s>/best.pt``) and every temperature of
the spec, trained or not, the test configurations (``done`` and ``split == 2``) are predicted. Written to
``predictions/<variant>/seed<s>/T<T>/`` (layout in storage/README.md):

* ``configurations`` (C_test,), ``node`` (C_test, N) predicted C_B, ``t_pred`` (C_test,), ``u`` (C_test, hidden);
* ``edge`` (C_test, E_max) predicted E_jk in the order of the T group's ``edges[c]``, with ``n_edges``;
* per configuration: ``pearson_node_A``, ``pearson_node_all``, ``pearson_edge_all``, ``pearson_edge_AA`` (A-A
  edges with thermal r_jk(0) < 1.35, as the reference code reports), and S_B(q) of MD and of the prediction
  (``sb_q``, ``sb_md``, ``sb_pred``; tbotan.analysis.fourpoint).

Distributed: the work items (seed, T, configuration) are dealt round-robin over the ranks (``torchrun``/``srun``,
see tbotan.learn.distributed). Each rank writes its items' ``node``/``edge`` chunks (one configuration per chunk) and
puts its items' numbers into its rows of one table; an all_reduce(SUM) of that table combines them (every row
is filled by exactly one rank and zero elsewhere, so the sum is exact and the numbers are the same on 1 or P
ranks). The first rank writes the small arrays and, last, ``complete = True`` with the checkpoint's SHA-256.
A rerun skips a seed whose predictions are complete for the same checkpoint and the same
``evaluation.symmetrize`` (the predictions averaged over the 48 orientations of the IS vectors, or not;
tbotan.learn.inference.forward), and recomputes it otherwise.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import zarr

from .. import core
from ..analysis import fourpoint
from ..data.runs import BEST, PREDICTIONS, model_dir, predictions_group, run_flags, variant_name
from ..data.store import group_name, open_store, record_spec
from ..errors import EvaluationError
from .checkpoints import build_model, load_checkpoint, model_shape
from .distributed import reduce_sum, setup
from .graphs import load_graphs
from .inference import forward

logger = logging.getLogger(__name__)

AA_CUTOFF = 1.35  # sigma_AA: the A-A edges the reference code evaluates (thermal distance at t = 0)


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    if len(x) < 2 or np.std(x) == 0 or np.std(y) == 0:
        return float("nan")
    return float(np.corrcoef(x, y)[0, 1])


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def test_configurations(store_path, spec) -> dict[float, np.ndarray]:
    """T -> indices of the finished test configurations; an error naming any T without one."""
    root = open_store(store_path)
    out, missing = {}, []
    for T in spec.temperatures:
        g = root[group_name(T)]
        chosen = np.flatnonzero(g["done"][:] & (g["split"][:] == 2))
        if not len(chosen):
            missing.append(
                f"T={T:.3f} ({int((g['split'][:] == 2).sum())} in the test split, "
                f"{int(g['done'][:].sum())} configurations done)"
            )
        out[T] = chosen
    if missing:
        raise EvaluationError(
            f"{store_path}: no finished test configuration at "
            + "; ".join(missing)
            + ": run `tbotan simulate` to finish the data (or give the spec a test split)"
        )
    return out


def _row(out, g, q_max: float) -> np.ndarray:
    """One configuration's numbers: [pearson_node_A, pearson_node_all, pearson_edge_all, pearson_edge_AA, t_pred,
    u.., sb_md.., sb_pred..] (the layout _finish reads)."""
    node, md = out.node.double().cpu().numpy(), g.node_target.double().cpu().numpy()
    edge, e_md = out.edge.double().cpu().numpy(), g.edge_target.double().cpu().numpy()
    types = g.species.cpu().numpy()
    a = types == 0
    src, dst = g.edges[:, 0].cpu().numpy(), g.edges[:, 1].cpu().numpy()
    aa = a[src] & a[dst] & (g.thermal_distance[:, 0].cpu().numpy() < AA_CUTOFF)
    pos = g.positions.cpu().numpy()
    _, sb_md = fourpoint.four_point(pos, types, md, g.box, q_max)
    _, sb_pred = fourpoint.four_point(pos, types, node, g.box, q_max)
    return np.concatenate(
        [
            [
                pearson(node[a], md[a]),
                pearson(node, md),
                pearson(edge, e_md),
                pearson(edge[aa], e_md[aa]),
                float(out.t),
            ],
            out.u.double().cpu().numpy(),
            sb_md,
            sb_pred,
        ]
    )


SCALARS = ("pearson_node_A", "pearson_node_all", "pearson_edge_all", "pearson_edge_AA", "t_pred")


def evaluate(
    spec, store_path, variant: str = "both", lambda_g: float | None = None, seeds=None, device=None, force: bool = False
) -> dict:
    """Predict every test configuration with each seed's best checkpoint; returns {seed: group path} written."""
    store_path = Path(store_path)
    seeds = list(range(spec.training.seeds)) if seeds is None else [int(s) for s in seeds]
    name = variant_name(spec, variant, lambda_g)
    checkpoints = {s: model_dir(store_path, spec, variant, lambda_g, s) / BEST for s in seeds}
    missing = [s for s, p in checkpoints.items() if not p.exists()]
    if missing:
        raise EvaluationError(
            f"no trained model for variant {name!r}, seed(s) {missing} ({checkpoints[missing[0]]} "
            f"is missing): run `tbotan train SPEC --store {store_path}"
            f"{run_flags(spec, variant, lambda_g)}` first"
        )
    tests = test_configurations(store_path, spec)
    lay = setup(device)
    world = dist.group.WORLD if lay.world > 1 else None
    try:
        shas = {s: file_sha256(p) for s, p in checkpoints.items()}
        root = open_store(store_path)
        todo = []
        for s in seeds:
            path = predictions_group(spec, variant, lambda_g, s)
            done = (
                path in root
                and root[path].attrs.get("complete")
                and root[path].attrs.get("checkpoint_sha256") == shas[s]
                and root[path].attrs.get("symmetrize", False) == spec.evaluation.symmetrize
            )
            if done and not force:
                if lay.rank == 0:
                    logger.info(f"{name} seed {s}: predictions up to date ({path})")
            else:
                todo.append(s)
        if not todo:
            return {}
        shape = model_shape(spec, variant)
        q_max = spec.evaluation.sq_q_max
        L = core.box_length(spec.N, spec.density)
        n_bins = len(fourpoint.shell_bins(L, q_max)[1])
        width = len(SCALARS) + shape["hidden"] + 2 * n_bins
        # (seed, T, position among T's test configurations, configuration); row k of the table is item k
        items = [(s, T, i, int(c)) for s in todo for T in spec.temperatures for i, c in enumerate(tests[T])]
        mine = list(enumerate(items))[lay.rank :: lay.world]
        checkpoint = {s: load_checkpoint(checkpoints[s]) for s in todo}
        if lay.rank == 0:
            logger.info(
                f"evaluating {name}: seeds {todo}, {len(items)} (seed, T, configuration) items on {lay.world} rank(s)"
            )
            _create(
                record_spec(store_path, spec), store_path, spec, variant, lambda_g, tests, shas, checkpoints, checkpoint
            )
        if world is not None:
            dist.barrier()
        root = zarr.open_group(str(store_path), mode="r+")
        table = torch.zeros(len(items), width, dtype=torch.float64)
        models = {}
        graphs = {}
        for row, (s, T, i, c) in mine:
            if s not in models:
                m = build_model(shape)
                m.load_state_dict(checkpoint[s]["model"])
                models[s] = m.to(lay.device).eval()
            if T not in graphs:
                graphs[T] = {g.c: g for g in load_graphs(store_path, [T], split=2, target=spec.training.target)}
            g = graphs[T][c].to(lay.device)
            with torch.no_grad():
                out = forward(models[s], g, variant, spec.evaluation.symmetrize)
            table[row] = torch.from_numpy(_row(out, g, q_max))
            grp = root[f"{predictions_group(spec, variant, lambda_g, s)}/{group_name(T)}"]
            grp["node"][i] = out.node.float().cpu().numpy()
            e = out.edge.float().cpu().numpy()
            grp["edge"][i, : len(e)] = e
        table = reduce_sum(table.to(lay.device), world).cpu().numpy()
        if lay.rank == 0:
            _finish(root, spec, variant, lambda_g, todo, tests, items, table, shape["hidden"], n_bins)
        if world is not None:
            dist.barrier()
        return {s: predictions_group(spec, variant, lambda_g, s) for s in todo}
    finally:
        if lay.initialized_here:
            dist.destroy_process_group()


def _create(root, store_path, spec, variant, lambda_g, tests, shas, paths, checkpoint) -> None:
    """Fresh (empty) prediction groups for the seeds of ``checkpoint``, marked incomplete until _finish."""
    base = root.require_group(PREDICTIONS)
    base.attrs["content"] = "T-BOTAN predictions on the test configurations (tbotan.learn.evaluate)"
    base.require_group(variant_name(spec, variant, lambda_g))
    for s, ck in checkpoint.items():
        grp = root.create_group(predictions_group(spec, variant, lambda_g, s), overwrite=True)
        grp.attrs.update(
            {
                "complete": False,
                "variant": variant,
                "lambda_g": ck.get("lambda_g"),
                "seed": s,
                "checkpoint": str(paths[s].relative_to(store_path)),
                "checkpoint_sha256": shas[s],
                "best_epoch": ck.get("best_epoch"),
                "epochs_trained": ck.get("epoch"),
                "training_temperatures": [float(t) for t in spec.training_temperatures],
                "symmetrize": spec.evaluation.symmetrize,
            }
        )
        for T, cs in tests.items():
            tg = grp.create_group(group_name(T))
            n_max = root[group_name(T)]["edges"].shape[1]
            tg.attrs.update({"T": T, "trained": T in spec.training_temperatures})
            tg.create_array(
                "node",
                shape=(len(cs), spec.N),
                chunks=(1, spec.N),
                dtype="float32",
                fill_value=np.nan,
                dimension_names=("test_configuration", "particle"),
            )
            tg.create_array(
                "edge",
                shape=(len(cs), n_max),
                chunks=(1, n_max),
                dtype="float32",
                fill_value=np.nan,
                dimension_names=("test_configuration", "edge"),
            )


def _finish(root, spec, variant, lambda_g, seeds, tests, items, table, hidden, n_bins) -> None:
    index = {(s, T, c): k for k, (s, T, _, c) in enumerate(items)}
    # the bins' mean |q| depends on the box only: any one particle gives it
    q = fourpoint.structure_factor_field(
        np.zeros((1, 3)), np.zeros(1), core.box_length(spec.N, spec.density), spec.evaluation.sq_q_max
    )[0]
    for s in seeds:
        grp = root[predictions_group(spec, variant, lambda_g, s)]
        for T, cs in tests.items():
            tg = grp[group_name(T)]
            rows = table[[index[(s, T, int(c))] for c in cs]]
            dims = ("test_configuration",)
            tg.create_array("configurations", data=cs.astype(np.int64), dimension_names=dims)
            tg.create_array("n_edges", data=root[group_name(T)]["n_edges"][:][cs], dimension_names=dims)
            for k, key in enumerate(SCALARS):
                tg.create_array(key, data=rows[:, k], dimension_names=dims)
            tg.create_array(
                "u",
                data=rows[:, len(SCALARS) : len(SCALARS) + hidden],
                dimension_names=("test_configuration", "embedding"),
            )
            start = len(SCALARS) + hidden
            tg.create_array("sb_q", data=q, dimension_names=("q_bin",))
            tg.create_array(
                "sb_md", data=rows[:, start : start + n_bins], dimension_names=("test_configuration", "q_bin")
            )
            tg.create_array("sb_pred", data=rows[:, start + n_bins :], dimension_names=("test_configuration", "q_bin"))
            logger.info(
                f"{variant_name(spec, variant, lambda_g)} seed {s} T={T:.3f}"
                f"{'' if T in spec.training_temperatures else ' (not trained on)'}: "
                f"{len(cs)} test configurations, node Pearson (A) {np.nanmean(rows[:, 0]):.3f}, "
                f"T_pred {np.mean(rows[:, 4]):.3f}"
            )
        grp.attrs["complete"] = True

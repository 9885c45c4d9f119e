"""The report (docs/method.md §6): the paper's figures for this store, and the numbers behind each.

    tbotan report --store storage/quickstart.zarr        # -> storage/quickstart.zarr/report/index.html

Reads only the store: the spec (root attribute), the data groups, ``models/*/seed*/history.json`` and
``predictions/`` (written by ``tbotan evaluate``). Writes ``report/`` beside them: one PNG per figure, and for
each a JSON (numbers + provenance: store, spec hash, variant, seeds, checkpoints, configurations) and a CSV,
plus ``key_numbers.json`` and ``index.html`` with every figure and a table of the key numbers. ``ceiling``
(JSON, CSV, PNG and a table on the page) puts the network's node rho_A beside the split-half ceiling of the stored
target and a descriptor regression on the same test configurations (tbotan.analysis.ceiling; computed from the
store alone, once per report). A training that sat on the plateau (tbotan.data.runs.plateau_message) is named
in a warning box on the page and in ``warnings`` of key_numbers.json.

This module orchestrates: tbotan.analysis.results reads, tbotan.analysis.numbers computes what each figure
shows, tbotan.analysis.figures draws it, tbotan.analysis.page lays out index.html. No torch is loaded.

The report is built in a temporary folder and moved into place only when complete, so a failed run never
leaves a half-written ``report/``. Missing predictions for a variant or seed of the spec are an error naming
the stage to run; ``allow_partial`` writes what exists to ``report_partial/`` and leaves ``report/`` alone.
"""

from __future__ import annotations

import csv
import datetime
import hashlib
import json
import logging
import os
import shutil
from pathlib import Path

import numpy as np
import zarr

from ..data.runs import plateau_message, runs, variant_name
from ..data.store import alpha_time_check, group_name, open_store, software_versions
from ..errors import ReportError
from . import ceiling as signal_ceiling
from . import figures as draw
from . import numbers as nb
from .page import index_html
from .results import load_results, read_histories, read_spec

logger = logging.getLogger(__name__)


def _jsonable(x):
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, np.generic):
        return x.item()
    raise TypeError(type(x))


def write_figure(folder: Path, stem: str, fig, numbers: nb.Numbers, provenance: dict) -> None:
    """``<stem>.png`` (the figure, then closed), ``<stem>.json`` (its values and provenance) and ``<stem>.csv``
    (its rows, when there are any) in ``folder``."""
    fig.savefig(folder / f"{stem}.png", dpi=120, bbox_inches="tight")
    draw.pyplot().close(fig)
    (folder / f"{stem}.json").write_text(
        json.dumps({"figure": f"{stem}.png", "provenance": provenance, **numbers.values}, indent=1, default=_jsonable)
    )
    if numbers.rows:
        with open(folder / f"{stem}.csv", "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(numbers.rows[0]))
            w.writeheader()
            w.writerows(numbers.rows)


def provenance(store_path: Path, root, spec, name: str, res: dict) -> dict:
    """Where a run's numbers come from: the store, the spec's hash, the run, its seeds' checkpoints (file, hash,
    best epoch), the test configurations per T, the training temperatures, the date and the software versions."""
    seeds = sorted(res)
    return {
        "store": str(store_path.resolve()),
        "spec_sha256": hashlib.sha256(json.dumps(root.attrs["spec"], sort_keys=True).encode()).hexdigest(),
        "variant": name,
        "seeds": seeds,
        "checkpoints": {
            s: {
                "file": res[s]["attrs"].get("checkpoint"),
                "sha256": res[s]["attrs"].get("checkpoint_sha256"),
                "best_epoch": res[s]["attrs"].get("best_epoch"),
            }
            for s in seeds
        },
        "test_configurations": {f"{T:.3f}": d["configurations"] for T, d in res[seeds[0]]["T"].items()},
        "training_temperatures": [float(t) for t in spec.training_temperatures],
        "made": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "software": software_versions(),
    }


def _figures(store_path: Path, root, spec, results: dict, main: str, prov: dict):
    """(stem, numbers, drawing function, caption, provenance) of every figure of the report, in its order, and
    the numbers of the headline table: (pearson, xi_4, T_pred, embedding distance)."""
    trained = [float(t) for t in spec.training_temperatures]
    res = results[main]
    pearson = nb.pearson_numbers(res, trained)
    sb, xi = nb.sb_numbers(res, trained, spec.evaluation.oz_fit_q_max)
    t_pred, ratio = nb.temperature_numbers(res, trained)
    distance = nb.distance_numbers(res, trained)
    out = [
        (
            "pearson_vs_T",
            pearson,
            draw.draw_pearson,
            "Pearson correlation of predicted and MD C_B (node) and E_jk (edge) vs T (paper Fig. 7).",
            prov,
        ),
        (
            "sb_q",
            sb,
            draw.draw_sb,
            "S_B(q, tau_alpha) of MD and prediction with Ornstein-Zernike fits (paper Figs. 3, 9).",
            prov,
        ),
        ("xi4_vs_T", xi, draw.draw_xi, "Dynamic correlation length xi_4 from the OZ fits (MD and prediction).", prov),
        (
            "t_pred_vs_T",
            t_pred,
            draw.draw_t_pred,
            "Temperature predicted from structure vs the MD temperature (paper Fig. 4).",
            prov,
        ),
        (
            "t_pred_ratio",
            ratio,
            draw.draw_t_ratio,
            "Distribution P(T_pred / T_MD), normalised to integral 1 (paper Fig. 10).",
            prov,
        ),
        (
            "embedding_distance",
            distance,
            draw.draw_distance,
            "Distance matrix D(T_i, T_j) of mean global embeddings u (paper Fig. 5).",
            prov,
        ),
        (
            "cb_maps",
            nb.maps_numbers(root, res, trained, spec.evaluation.slab),
            draw.draw_maps,
            "C_B(tau_alpha) maps in a slab, MD vs prediction (paper Figs. 2, 8).",
            prov,
        ),
    ]
    for name in results:
        histories = read_histories(store_path, name, sorted(results[name]))
        out.append(
            (
                f"loss_{name}",
                nb.loss_numbers(histories, name, spec.training.switch_epoch),
                draw.draw_loss,
                f"Training and validation losses of {name} (paper Fig. 6).",
                provenance(store_path, root, spec, name, results[name]),
            )
        )
    lam0 = spec.training.lambda_g_values[0]
    variants = [variant_name(spec, v, lam0) for v in spec.training.variants if variant_name(spec, v, lam0) in results]
    sweep = [variant_name(spec, spec.training.variants[0], lam) for lam in spec.training.lambda_g_values]
    sweep = [n for n in sweep if n in results]
    for stem, names, title, caption in (
        (
            "ablations",
            variants,
            "Edge-feature ablations",
            "Ablations: IS only / thermal only / both (paper Figs. 13-15).",
        ),
        ("lambda_sweep", sweep, r"$\lambda_g$ sweep", "lambda_g dependence (paper Figs. 11-12)."),
    ):
        if len(names) > 1:
            out.append(
                (
                    stem,
                    nb.comparison_numbers(results, names, trained, title),
                    draw.draw_comparison,
                    caption,
                    {n: provenance(store_path, root, spec, n, results[n]) for n in names},
                )
            )
    if "published" in root:
        out.append(
            (
                "published_comparison",
                nb.published_numbers(root, res, main, spec),
                draw.draw_published,
                "T-BOTAN beside the published models on the same test configurations: Pearson of the node "
                "prediction against MD over A particles, per configuration then averaged.",
                prov,
            )
        )
    return out, (pearson, xi, t_pred, distance)


def plateau_warnings(store_path: Path, spec, results: dict) -> list[str]:
    """``plateau_message`` of every seed of every reported run whose training sat on the plateau, each prefixed
    with the run's name (e.g. 'both seed 1: validation rho_A 0.03 at epoch 140, ...')."""
    out = []
    for name in results:
        for seed, history in read_histories(store_path, name, sorted(results[name])).items():
            message = plateau_message(seed, history, spec.training.switch_epoch)
            if message:
                out.append(f"{name} {message}")
    return out


def ceiling_figure(root, spec, res: dict) -> nb.Numbers:
    """The ceiling table's numbers (tbotan.analysis.numbers.ceiling_numbers) on the main run's test
    configurations; the ceiling itself is computed from the store (tbotan.analysis.ceiling.ceiling_rows)."""
    trained = [float(t) for t in spec.training_temperatures]
    first = res[sorted(res)[0]]["T"]
    configurations = {T: [int(c) for c in d["configurations"]] for T, d in first.items()}
    rows = signal_ceiling.ceiling_rows(root, trained, spec.training.target, configurations)
    return nb.ceiling_numbers(res, rows, trained)


def write_report(store_path, allow_partial: bool = False) -> Path:
    """Make ``report/`` (or ``report_partial/``) in the store; returns the path of its index.html."""
    store_path = Path(store_path)
    root = open_store(store_path)
    spec = read_spec(root)
    names = [variant_name(spec, v, lam) for v, lam in runs(spec)]
    seeds = list(range(spec.training.seeds))
    results, missing = load_results(store_path, spec, names, seeds)
    main = names[0]
    if missing and (not allow_partial or main not in results):
        raise ReportError(
            f"{store_path}: the report needs predictions of every variant and seed of the spec; missing:\n  "
            + "\n  ".join(missing)
            + ("\n(`tbotan report --partial` reports what exists in report_partial/)" if main in results else "")
        )
    prov = provenance(store_path, root, spec, main, results[main])
    target = store_path / ("report_partial" if missing else "report")
    tmp = store_path / f".{target.name}.tmp{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    # a Zarr group from the start, so Zarr readers of the store list it (a plain folder in a store warns them)
    report_group = zarr.open_group(str(tmp), mode="w-")
    try:
        made, (pearson, xi, t_pred, distance) = _figures(store_path, root, spec, results, main, prov)
        for stem, numbers, drawing, _, figure_prov in made:
            write_figure(tmp, stem, drawing(numbers), numbers, figure_prov)
        figures = [(stem, caption) for stem, _, _, caption, _ in made]
        ceiling = ceiling_figure(root, spec, results[main])
        write_figure(tmp, "ceiling", draw.draw_ceiling(ceiling), ceiling, prov)
        warnings = plateau_warnings(store_path, spec, results)
        alpha = {r["T"]: alpha_time_check(root[group_name(r["T"])]) for r in pearson.rows}
        key = nb.key_numbers(pearson.rows, xi.rows, t_pred.rows, alpha)
        health = distance.values["seeds"]
        (tmp / "key_numbers.json").write_text(
            json.dumps(
                {"provenance": prov, "rows": key, "embedding": health, "warnings": warnings, "data_seed": spec.seed},
                indent=1,
                default=_jsonable,
            )
        )
        (tmp / "index.html").write_text(index_html(spec, prov, key, figures, missing, health, ceiling.rows, warnings))
        report_group.attrs.update(
            {
                "content": "report of this store (PNG, JSON, CSV, index.html), made by `tbotan report`",
                "complete": not missing,
            }
        )
        old = store_path / f".{target.name}.old{os.getpid()}"
        if target.exists():
            os.replace(target, old)
        os.replace(tmp, target)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    for w in warnings:
        logger.warning(w)
    logger.info(
        f"report: {target / 'index.html'} ({len(figures) + 1} figures)"
        + (" PARTIAL: " + "; ".join(missing) if missing else "")
    )
    return target / "index.html"

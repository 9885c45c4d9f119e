"""The quickstart's numbers: stage times of `tbotan run` and the learned signal per temperature and seed.

    tbotan run jobs/quickstart.yaml                    # first (on a fresh store: rm -r storage/quickstart.zarr)
    python benchmarks/experiments/quickstart.py [--store storage/quickstart.zarr] [--out FILE] [--record]

Reads the store: the root attribute ``run_times`` (written by `tbotan run`) and ``predictions/`` (node
Pearson over A particles per test configuration, T_pred), per seed and temperature. And, per seed and
training configuration (``displacement`` rows), what its best model follows: Pearson rho over A particles of
the prediction and of the MD C_B with each particle's distance from its inherent-structure position
|r_thermal - r_IS|. Prints one JSON object (``--out FILE``: also there; ``--record``: also
benchmarks/results/quickstart.json).
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
import zarr

from tbotan.analysis.ceiling import mean_sem
from tbotan.data import runs
from tbotan.data.spec import parse_spec
from tbotan.learn.checkpoints import build_model, load_checkpoint, model_shape
from tbotan.learn.graphs import edge_features, load_graphs

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: record.py
from record import add_arguments, emit  # prints the result with its command (and writes it where asked)


def displacement_rows(store: str, variant: str, spec) -> list[dict]:
    root = zarr.open_group(store, mode="r")
    rows = []
    for seed in range(spec.training.seeds):
        model = build_model(model_shape(spec, variant))
        model.load_state_dict(load_checkpoint(runs.model_folder(store, variant, seed) / runs.BEST)["model"])
        model.eval()
        for T in spec.training_temperatures:
            group = root[f"T{float(T):.3f}"]
            L = float(group.attrs["L"])
            for g in load_graphs(store, [T], split=0):
                d = group["thermal"][g.c] - group["inherent"][g.c]
                dist = np.linalg.norm(d - L * np.round(d / L), axis=1)
                a = g.species.numpy() == 0
                with torch.no_grad():
                    pred = model(g.species, g.edges, edge_features(g, variant)).node.numpy()
                cb = g.node_target.numpy()
                rows.append(
                    {
                        "seed": seed,
                        "T": float(T),
                        "configuration": g.c,
                        "mean_distance_A": float(dist[a].mean()),
                        "mean_cb_A": float(cb[a].mean()),
                        "rho_cb_distance": float(np.corrcoef(cb[a], dist[a])[0, 1]),
                        "rho_prediction_distance": float(np.corrcoef(pred[a], dist[a])[0, 1]),
                        "rho_prediction_cb": float(np.corrcoef(pred[a], cb[a])[0, 1]),
                    }
                )
    return rows


def prediction_rows(variant_group) -> list[dict]:
    """Per seed and T of ``predictions/<variant>``: the test configurations' mean numbers (node rho with its s.e.m.)."""
    rows = []
    for seed_name, sg in sorted(variant_group.groups()):
        for _, tg in sorted(sg.groups()):
            rho = tg["pearson_node_A"][:]
            rows.append(
                {
                    "seed": int(seed_name.removeprefix("seed")),
                    "T": float(tg.attrs["T"]),
                    "trained": bool(tg.attrs["trained"]),
                    "test_configurations": len(rho),
                    "best_epoch": sg.attrs.get("best_epoch"),
                    "pearson_node_A": float(np.mean(rho)),
                    "pearson_node_A_sem": mean_sem(rho)[1],  # ddof 1, as the report
                    "pearson_node_all": float(np.mean(tg["pearson_node_all"][:])),
                    "pearson_edge_AA": float(np.mean(tg["pearson_edge_AA"][:])),
                    "T_pred": float(np.mean(tg["t_pred"][:])),
                    "T_pred_std": float(np.std(tg["t_pred"][:])),
                }
            )
    return rows


ESCAPE_RHO = 0.2  # the node signal is picked up at the first epoch whose validation rho_A reaches this


def escape_epoch(history: list[dict]) -> int | None:
    """The first epoch whose validation rho_A reaches ESCAPE_RHO (None: never)."""
    return next((h["epoch"] for h in history if h["validation"]["pearson_A"] >= ESCAPE_RHO), None)


def bars(runs_: list[dict], training: dict) -> dict:
    """Over every run (one data draw x one seed: ``rows`` by T, the draw's ``descriptor`` rho by T, ``escape``):
    how many meet each bar of the quickstart (docs/quickstart.md, "What it should give"):

    * picked up: validation rho_A reaches 0.2 before 40 % of the phase before the switch;
    * node: test rho_A >= 0.35 at every training T and above the descriptor regression's there;
    * temperature: T_pred within 5 % at the training T, and every held-out T strictly between them."""
    trained = sorted(float(x) for x in training["temperatures"])
    node_phase = training["switch_epoch"]
    counts = {"runs": len(runs_), "picked_up": 0, "node": 0, "temperature": 0}
    for r in runs_:
        rows, desc = r["rows"], r["descriptor"]
        counts["picked_up"] += r["escape"] is not None and r["escape"] <= 0.4 * node_phase
        counts["node"] += all(
            rows[T]["pearson_node_A"] >= 0.35 and rows[T]["pearson_node_A"] > desc[T] for T in trained
        )
        counts["temperature"] += temperature_bar({T: row["T_pred"] for T, row in rows.items()}, trained)
    return counts


def temperature_bar(t_pred: dict, trained: list[float]) -> bool:
    """The temperature bar on one run's mean T_pred per T: within 5 % at the training temperatures (sorted), and
    every held-out T between them read strictly between their readings."""
    lo, hi = trained[0], trained[-1]
    return all(abs(t_pred[T] - T) <= 0.05 * T for T in trained) and all(
        t_pred[lo] < t_pred[T] < t_pred[hi] for T in t_pred if lo < T < hi
    )


def spread(values_by_draw: list[list[float]]) -> dict:
    """Mean over every run, the standard deviation over every run, over the draws' means (between draws) and
    the mean over draws of the standard deviation over seeds (within a draw)."""
    every = np.concatenate([np.asarray(v, dtype=float) for v in values_by_draw])
    means = [np.mean(v) for v in values_by_draw]
    return {
        "mean": round(float(every.mean()), 4),
        "std": round(float(every.std()), 4),
        "std_between_draws": round(float(np.std(means)), 4),
        "std_within_draws": round(float(np.mean([np.std(v) for v in values_by_draw])), 4),
        "runs": len(every),
        "draws": len(values_by_draw),
    }


def draw_numbers(store: str, variant: str) -> dict:
    """One data draw (a store made by `tbotan run`): per seed and T its test numbers, the training history's
    escape epoch, and the ceiling and descriptor regression on the same test configurations."""
    from tbotan.analysis.ceiling import ceiling_rows

    root = zarr.open_group(store, mode="r")
    spec = root.attrs["spec"]
    rows = prediction_rows(root[f"{runs.PREDICTIONS}/{variant}"])
    ceiling = {r["T"]: r for r in ceiling_rows(root)}
    per_seed = []
    for seed in sorted({r["seed"] for r in rows}):
        history = json.loads((runs.model_folder(store, variant, seed) / runs.HISTORY).read_text())
        per_seed.append(
            {
                "seed": seed,
                "escape": escape_epoch(history),
                "rows": {r["T"]: r for r in rows if r["seed"] == seed},
                "descriptor": {T: c["descriptor_rho"] for T, c in ceiling.items()},
            }
        )
    return {
        "store": store,
        "data_seed": spec["seed"],
        "run_times_s": root.attrs.get("run_times", []),
        "ceiling": list(ceiling.values()),
        "seeds": per_seed,
    }


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--store", nargs="+", default=["storage/quickstart.zarr"], help="one store per data draw")
    p.add_argument("--variant", default="both")
    p.add_argument("--displacement", action="store_true", help="also what each best model follows (slow)")
    add_arguments(p, "quickstart")
    args = p.parse_args()
    draws = [draw_numbers(s, args.variant) for s in args.store]
    spec = zarr.open_group(args.store[0], mode="r").attrs["spec"]
    temps = sorted(draws[0]["seeds"][0]["rows"])
    summary = {}
    for T in temps:
        summary[f"{T:g}"] = {
            "node_rho_A": spread([[s["rows"][T]["pearson_node_A"] for s in d["seeds"]] for d in draws]),
            "node_rho_A_sem_configurations": round(
                float(np.mean([s["rows"][T]["pearson_node_A_sem"] for d in draws for s in d["seeds"]])), 4
            ),
            "T_pred": spread([[s["rows"][T]["T_pred"] for s in d["seeds"]] for d in draws]),
            "descriptor_rho_A": spread([[c["descriptor_rho"] for c in d["ceiling"] if c["T"] == T] for d in draws]),
            "ceiling_rho": spread([[c["ceiling_rho"] for c in d["ceiling"] if c["T"] == T] for d in draws]),
        }
    result = {
        "stores": args.store,
        "variant": args.variant,
        "N": spec["N"],
        "training": {k: spec["training"][k] for k in ("epochs", "switch_epoch", "seeds", "lr", "hidden", "steps")},
        "summary": summary,
        "bars": bars([s for d in draws for s in d["seeds"]], spec["training"]),
        "draws": draws,
    }
    if args.displacement:
        result["displacement"] = [
            displacement_rows(s, args.variant, parse_spec(d))
            for s, d in zip(args.store, [zarr.open_group(x, mode="r").attrs["spec"] for x in args.store])
        ]
    emit("quickstart", result, args)


if __name__ == "__main__":
    main()

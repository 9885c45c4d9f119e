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
import sys
from pathlib import Path

import numpy as np
import torch
import zarr

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
                    "pearson_node_A_sem": float(np.std(rho) / np.sqrt(len(rho))),
                    "pearson_node_all": float(np.mean(tg["pearson_node_all"][:])),
                    "pearson_edge_AA": float(np.mean(tg["pearson_edge_AA"][:])),
                    "T_pred": float(np.mean(tg["t_pred"][:])),
                    "T_pred_std": float(np.std(tg["t_pred"][:])),
                }
            )
    return rows


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--store", default="storage/quickstart.zarr")
    p.add_argument("--variant", default="both")
    add_arguments(p, "quickstart")
    args = p.parse_args()
    root = zarr.open_group(args.store, mode="r")
    spec = root.attrs["spec"]
    rows = prediction_rows(root[f"{runs.PREDICTIONS}/{args.variant}"])
    emit(
        "quickstart",
        {
            "store": args.store,
            "variant": args.variant,
            "N": spec["N"],
            "training": {k: spec["training"][k] for k in ("epochs", "switch_epoch", "seeds", "lr", "hidden", "steps")},
            "run_times_s": root.attrs.get("run_times", []),
            "rows": rows,
            "displacement": displacement_rows(args.store, args.variant, parse_spec(spec)),
        },
        args,
    )


if __name__ == "__main__":
    main()

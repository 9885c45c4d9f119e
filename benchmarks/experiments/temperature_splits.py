"""What the temperature head reads on each split: T_pred of every seed's best checkpoint on its own training graphs,
its validation graphs and its test graphs, per temperature (docs/quickstart.md, "What this shows").

    python benchmarks/experiments/temperature_splits.py --store D0 D1 D2 [--variant both] [--record | --name NAME]

A head that reads its training graphs right and the test graphs of the same chain off says the trunk carries the
temperature of configurations it was not fitted on with less precision than the training fit suggests. Where the
graphs sit in the global embedding u says which: ``u_position`` is each split's mean u projected on the line from
the training graphs' mean u at the lowest trained T (0) to that at the highest (1). Prints one JSON object: per
store and seed, per split and T, the mean T_pred, the T_pred of each configuration and ``u_position``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
import zarr

from tbotan.analysis.results import read_spec
from tbotan.data import runs
from tbotan.learn.checkpoints import build_model, load_checkpoint, model_shape
from tbotan.learn.graphs import edge_features, load_graphs

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: record.py
from record import add_arguments, emit

SPLITS = {0: "train", 1: "validation", 2: "test"}


def read_splits(store: str, variant: str) -> list[dict]:
    """Per seed of ``store``: {split: {T: {"mean", "each"}}} of its best checkpoint's T_pred."""
    spec = read_spec(zarr.open_group(store, mode="r"))
    temperatures = [float(t) for t in spec.temperatures]
    graphs = {s: {T: load_graphs(store, [T], split=s, allow_empty=True) for T in temperatures} for s in SPLITS}
    out = []
    for seed in range(spec.training.seeds):
        model = build_model(model_shape(spec, variant))
        model.load_state_dict(load_checkpoint(runs.model_folder(store, variant, seed) / runs.BEST)["model"])
        model.eval()
        t_pred, u = {}, {}
        with torch.no_grad():
            for s, name in SPLITS.items():
                for T in temperatures:
                    outs = [model(g.species, g.edges, edge_features(g, variant)) for g in graphs[s][T]]
                    if outs:
                        t_pred[(name, T)] = [float(o.t) for o in outs]
                        u[(name, T)] = torch.stack([o.u for o in outs]).double().mean(dim=0).numpy()
        trained = sorted(float(t) for t in spec.training.temperatures)
        low, high = u[("train", trained[0])], u[("train", trained[-1])]
        axis = (high - low) / float(np.dot(high - low, high - low))
        by_split = {}
        for (name, T), each in t_pred.items():
            by_split.setdefault(name, {})[f"{T:g}"] = {
                "mean": round(float(np.mean(each)), 4),
                "each": [round(x, 4) for x in each],
                "u_position": round(float(np.dot(u[(name, T)] - low, axis)), 3),
            }
        out.append({"store": store, "data_seed": spec.seed, "seed": seed, "T_pred": by_split})
    return out


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--store", nargs="+", required=True, help="one store per data draw (made by `tbotan run`)")
    p.add_argument("--variant", default="both")
    add_arguments(p, "temperature_splits")
    a = p.parse_args()
    torch.set_num_threads(1)
    emit("temperature_splits", {"runs": [r for s in a.store for r in read_splits(s, a.variant)]}, a)


if __name__ == "__main__":
    main()

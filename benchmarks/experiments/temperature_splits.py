"""What the temperature head reads on each split: T_pred of every seed's best checkpoint on its own training graphs,
its validation graphs and its test graphs, per temperature (docs/quickstart.md, "What this shows").

    python benchmarks/experiments/temperature_splits.py --store D0 D1 D2 [--variant both] [--record | --name NAME]

A head that reads its training graphs right and the test graphs of the same chain off says the trunk carries the
temperature of configurations it was not fitted on with less precision than the training fit suggests. Where the
graphs sit in the global embedding u says which: ``u_position`` is each split's mean u projected on the line from
the training graphs' mean u at the lowest trained T (0) to that at the highest (1). Prints one JSON object: per
store and seed, per split and T, the mean T_pred, the T_pred of each configuration and ``u_position``.

Two other readings of the same test configurations say where the head's misses come from:

* ``trunk_ridge`` (per run): a ridge regression of T on the trunk's graph means mean_v h^m of every step (the global
  chain's whole input), fitted on the run's training graphs, penalty by leave-one-out. A linear reading of what the
  trunk gives the head; if it misses as the head does, the head is not what limits the temperature.
* ``thermal_energy`` (per store): T as a straight line in the thermal potential energy per particle
  (``energy_thermal``), fitted on the same training configurations: what one configuration's structure carries
  about its temperature through a plain thermometer that the edges' thermal distances can express.

* ``unseen_ridge`` (per run): the same ridge fitted on graphs the trunk was not trained on (the validation graphs
  and half of the test graphs of the trained temperatures, two folds), read on the other test graphs: whether a
  head fitted where the trunk's features are as they are on new configurations reads them right.

``bars`` counts, for the head, ``trunk_ridge``, ``unseen_ridge`` and ``thermal_energy``, the runs (draws) whose
test T is within 5 % at the trained temperatures with the held-out ones strictly between (the quickstart's
temperature bar).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
import zarr

from tbotan.analysis.ceiling import energy_thermometer
from tbotan.analysis.results import read_spec
from tbotan.data import runs
from tbotan.learn.checkpoints import build_model, load_checkpoint, model_shape
from tbotan.learn.graphs import edge_features, load_graphs

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: record.py
from quickstart import temperature_bar  # the quickstart's temperature bar
from record import add_arguments, emit

SPLITS = {0: "train", 1: "validation", 2: "test"}


def ridge_loo(x: np.ndarray, y: np.ndarray):
    """A ridge regression of ``y`` on the standardised columns of ``x`` (the intercept not penalised), its penalty
    the best leave-one-out error over a grid; returns the fitted function of new rows."""
    mu, sd = x.mean(axis=0), x.std(axis=0) + 1e-12

    def design(rows):
        return np.hstack([(rows - mu) / sd, np.ones((len(rows), 1))])

    a = design(x)
    free = np.diag(np.r_[np.ones(x.shape[1]), 0.0])
    best = None
    for k in range(-4, 6):
        inv = np.linalg.inv(a.T @ a + len(x) * 10.0**k * free)
        w = inv @ a.T @ y
        loo = np.mean(((a @ w - y) / (1 - ((a @ inv) * a).sum(axis=1))) ** 2)
        if best is None or loo < best[0]:
            best = (loo, w)
    return lambda rows: design(rows) @ best[1]


def thermal_energy(store: str) -> dict:
    """T on the test configurations from a straight line in the thermal potential energy per particle, fitted on the
    training configurations of the trained temperatures (the report's thermometer, tbotan.analysis.ceiling)."""
    root = zarr.open_group(store, mode="r")
    trained = sorted(float(t) for t in read_spec(root).training.temperatures)
    test = {T: float(np.mean(each)) for T, each in energy_thermometer(root, trained).items()}
    return {
        "store": store,
        "T_pred_test": {f"{T:g}": round(v, 4) for T, v in test.items()},
        "meets_bar": temperature_bar(test, trained),
    }


def unseen_ridge(means: dict, trained: list[float], temperatures: list[float]) -> dict[float, float]:
    """The mean T per temperature of the same ridge as ``trunk_ridge``, fitted instead on graphs the trunk was not
    trained on: the validation graphs and every other test graph of the trained temperatures, read on the other
    test graphs (two folds, so each test graph is read once, by the fold that left it out); the held-out
    temperatures' test graphs are read by both folds."""
    reads = {T: [] for T in temperatures if ("test", T) in means}
    for fold in (0, 1):
        x, y = [], []
        for T in trained:
            test = means[("test", T)]
            fit = np.vstack([means.get(("validation", T), test[:0]), test[np.arange(len(test)) % 2 != fold]])
            x.append(fit)
            y.append(np.full(len(fit), T))
        read = ridge_loo(np.vstack(x), np.concatenate(y))
        for T in reads:
            test = means[("test", T)]
            reads[T].extend(read(test[np.arange(len(test)) % 2 == fold] if T in trained else test))
    return {T: float(np.mean(v)) for T, v in reads.items()}


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
        t_pred, u, means = {}, {}, {}
        with torch.no_grad():
            for s, name in SPLITS.items():
                for T in temperatures:
                    outs = [model(g.species, g.edges, edge_features(g, variant)) for g in graphs[s][T]]
                    if outs:
                        t_pred[(name, T)] = [float(o.t) for o in outs]
                        u[(name, T)] = torch.stack([o.u for o in outs]).double().mean(dim=0).numpy()
                        means[(name, T)] = torch.stack([o.global_inputs.reshape(-1) for o in outs]).double().numpy()
        trained = sorted(float(t) for t in spec.training.temperatures)
        x = np.vstack([means[("train", T)] for T in trained])
        y = np.concatenate([np.full(len(means[("train", T)]), T) for T in trained])
        read = ridge_loo(x, y)
        ridge = {T: float(np.mean(read(means[("test", T)]))) for T in temperatures if ("test", T) in means}
        unseen = unseen_ridge(means, trained, temperatures)
        low, high = u[("train", trained[0])], u[("train", trained[-1])]
        axis = (high - low) / float(np.dot(high - low, high - low))
        by_split = {}
        for (name, T), each in t_pred.items():
            by_split.setdefault(name, {})[f"{T:g}"] = {
                "mean": round(float(np.mean(each)), 4),
                "each": [round(x, 4) for x in each],
                "u_position": round(float(np.dot(u[(name, T)] - low, axis)), 3),
            }
        head = {T: float(np.mean(t_pred[("test", T)])) for T in temperatures if ("test", T) in t_pred}
        out.append(
            {
                "store": store,
                "data_seed": spec.seed,
                "seed": seed,
                "T_pred": by_split,
                "trunk_ridge": {f"{T:g}": round(v, 4) for T, v in ridge.items()},
                "unseen_ridge": {f"{T:g}": round(v, 4) for T, v in unseen.items()},
                "meets_bar": {
                    "head": temperature_bar(head, trained),
                    "trunk_ridge": temperature_bar(ridge, trained),
                    "unseen_ridge": temperature_bar(unseen, trained),
                },
            }
        )
    return out


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--store", nargs="+", required=True, help="one store per data draw (made by `tbotan run`)")
    p.add_argument("--variant", default="both")
    add_arguments(p, "temperature_splits")
    a = p.parse_args()
    torch.set_num_threads(1)
    rows = [r for s in a.store for r in read_splits(s, a.variant)]
    energy = [thermal_energy(s) for s in a.store]
    bars = {
        "runs": len(rows),
        "head": sum(r["meets_bar"]["head"] for r in rows),
        "trunk_ridge": sum(r["meets_bar"]["trunk_ridge"] for r in rows),
        "unseen_ridge": sum(r["meets_bar"]["unseen_ridge"] for r in rows),
        "draws": len(energy),
        "thermal_energy": sum(e["meets_bar"] for e in energy),
    }
    emit("temperature_splits", {"bars": bars, "thermal_energy": energy, "runs": rows}, a)


if __name__ == "__main__":
    main()

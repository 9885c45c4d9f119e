"""Is a learned signal visible? Node Pearson correlation between predicted and MD C_B on the *test*
configurations of every temperature of a store, for each trained seed's best (validation-selected)
checkpoint; over A particles (as the references report) and over all particles.

    tbotan train jobs/quickstart.yaml --epochs 20 --seeds 0 1      # first, train
    python benchmarks/learned_signal.py jobs/quickstart.yaml [--store storage/quickstart.zarr]

A stand-in for `tbotan evaluate` (issue 6) that reads only the store and the checkpoints. Prints one
JSON object (and writes benchmarks/results/learned_signal_<spec stem>.json).
"""
import argparse
from pathlib import Path

import numpy as np
import torch

from lammps import emit  # prints the result with its command, writes benchmarks/results/<name>.json
from tbotan.graphs import edge_features, load_graphs
from tbotan.spec import load_spec
from tbotan.train import build_model, load_checkpoint, model_dir, model_shape


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    return float(np.corrcoef(x, y)[0, 1])


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("spec")
    p.add_argument("--store")
    p.add_argument("--variant", default="both")
    args = p.parse_args()
    spec = load_spec(args.spec)
    store = args.store or f"storage/{Path(args.spec).stem}.zarr"
    rows = []
    for seed in range(spec.training.seeds):
        path = model_dir(store, spec, args.variant, seed=seed) / "best.pt"
        if not path.exists():
            continue
        ck = load_checkpoint(path)
        model = build_model(model_shape(spec, args.variant))
        model.load_state_dict(ck["model"])
        model.eval()
        for t in spec.temperatures:
            node_a, node_all, t_pred = [], [], []
            for g in load_graphs(store, [t], split=2):
                with torch.no_grad():
                    out = model(g.species, g.edges, edge_features(g, args.variant))
                pred, md = out.node.numpy(), g.cb.numpy()
                a = g.species.numpy() == 0
                node_a.append(pearson(pred[a], md[a]))
                node_all.append(pearson(pred, md))
                t_pred.append(float(out.t))
            rows.append({"seed": seed, "T": t, "trained": t in spec.training_temperatures,
                         "test_configurations": len(node_a), "best_epoch": ck.get("epoch"),
                         "pearson_node_A": float(np.mean(node_a)), "pearson_node_A_std": float(np.std(node_a)),
                         "pearson_node_all": float(np.mean(node_all)), "T_pred": float(np.mean(t_pred))})
    out = {"store": store,
           "variant": args.variant, "rows": rows}
    emit(f"learned_signal_{Path(args.spec).stem}", out)


if __name__ == "__main__":
    main()

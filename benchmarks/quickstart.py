"""The quickstart's numbers: stage times of `tbotan run` and the learned signal per temperature and seed.

    tbotan run jobs/quickstart.yaml                    # first (on a fresh store: rm -r storage/quickstart.zarr)
    python benchmarks/quickstart.py [--store storage/quickstart.zarr]

Reads only the store: the root attribute ``run_times`` (written by `tbotan run`) and ``predictions/`` (node
Pearson over A particles per test configuration, T_pred), per seed and temperature. Prints one JSON object
and writes benchmarks/results/quickstart.json.
"""
import argparse

import numpy as np
import zarr

from lammps import emit  # prints the result with its command, writes benchmarks/results/<name>.json


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--store", default="storage/quickstart.zarr")
    p.add_argument("--variant", default="both")
    args = p.parse_args()
    root = zarr.open_group(args.store, mode="r")
    spec = root.attrs["spec"]
    rows = []
    for seed_name, sg in sorted(root[f"predictions/{args.variant}"].groups()):
        for t_name, tg in sorted(sg.groups()):
            rho = tg["pearson_node_A"][:]
            rows.append({"seed": int(seed_name.removeprefix("seed")), "T": float(tg.attrs["T"]),
                         "trained": bool(tg.attrs["trained"]), "test_configurations": len(rho),
                         "best_epoch": sg.attrs.get("best_epoch"),
                         "pearson_node_A": float(np.mean(rho)),
                         "pearson_node_A_sem": float(np.std(rho) / np.sqrt(len(rho))),
                         "pearson_node_all": float(np.mean(tg["pearson_node_all"][:])),
                         "pearson_edge_AA": float(np.mean(tg["pearson_edge_AA"][:])),
                         "T_pred": float(np.mean(tg["t_pred"][:])), "T_pred_std": float(np.std(tg["t_pred"][:]))})
    emit("quickstart", {"store": args.store, "variant": args.variant, "N": spec["N"],
                        "training": {k: spec["training"][k] for k in ("epochs", "switch_epoch", "seeds", "lr")},
                        "run_times_s": root.attrs.get("run_times", []), "rows": rows})


if __name__ == "__main__":
    main()

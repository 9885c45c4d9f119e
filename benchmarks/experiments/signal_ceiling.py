"""How much of C_B can any model predict on a store, and what do simple descriptors reach?

    python benchmarks/experiments/signal_ceiling.py [--store storage/quickstart.zarr] [--out FILE]
                                                    [--record | --name NAME]

* Ceiling and descriptor regression: tbotan.analysis.ceiling (the report's ``ceiling`` table). C_B from the K
  iso-configurational runs is a noisy estimate of the true (K -> infinity) field. Split the runs in two halves,
  correlate the two half-estimates (r), extrapolate to K runs with Spearman-Brown (R = 2r / (1 + r)); no
  predictor can exceed rho = sqrt(R) against the stored C_B. A ridge regression on fixed structural descriptors,
  fitted on the train split of the training temperatures, says what a linear model on them reaches. Everything at
  the observation time at tau_alpha, with means and standard errors over the test configurations.
* Baselines: Pearson rho (A particles) of C_B with the per-particle potential energy in the inherent and in
  the thermal structure (shifted-force KA LJ in plain NumPy), with the coordination number (r < 1.4 in
  the IS), and with each particle's distance from its inherent-structure position, |r_thermal - r_IS|.
  Test configurations (split 2) of every temperature.
* Temperature readers: what a graph-level statistic of the input says about T. A linear fit on the train split
  (0) of the training temperatures, read on each test configuration, for three statistics: the potential
  energy per particle of the thermal structure (stored ``energy_thermal``; a line), the mean thermal length of
  the graph's edges (a line; the trunk sees those lengths, it is never given an energy), and the histogram of
  those lengths (12 bins, ridge with the penalty chosen on the validation split). With
  N = 500 one configuration's statistic scatters, so this says how far T can be read from one test
  configuration, and which test configurations look like another temperature (docs/training.md).
Prints one JSON object (``--out FILE``: also there; ``--record``: also benchmarks/results/signal_ceiling.json;
``--name NAME``: NAME.json).
"""

import argparse
import sys
from pathlib import Path

import numpy as np
import zarr

from tbotan.analysis import ceiling
from tbotan.core import minimum_image
from tbotan.data.store import group_name, tau_alpha_index, temperatures
from tbotan.data.targets import neighbour_pairs

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: record.py
from record import add_arguments, emit  # prints the result with its command (and writes it where asked)


def rho(x, y):
    return float(np.corrcoef(x, y)[0, 1])


def baselines(g, chosen) -> dict:
    """Per test configuration, the Pearson (A particles) of C_B at tau_alpha's time with single descriptors, and
    the mean and spread of C_B over the A particles; averaged over the configurations."""
    L, i_t = float(g.attrs["L"]), tau_alpha_index(g.attrs.get("times_tau"))
    e_is, e_th, coord, disp, mean, std = [], [], [], [], [], []
    for c in chosen:
        types, thermal, inherent, cb = g["types"][c], g["thermal"][c], g["inherent"][c], g["cb"][c, i_t]
        a = types == 0
        e_is.append(rho(ceiling.pair_energy(types, inherent, L)[a], cb[a]))
        e_th.append(rho(ceiling.pair_energy(types, thermal, L)[a], cb[a]))
        i, _, _ = neighbour_pairs(inherent, L, 1.4)
        coord.append(rho(np.bincount(i, minlength=len(types))[a].astype(float), cb[a]))
        disp.append(rho(ceiling.is_distance(thermal, inherent, L)[a], cb[a]))
        mean.append(cb[a].mean())
        std.append(cb[a].std())
    return {
        "rho_energy_inherent": float(np.mean(e_is)),
        "rho_energy_thermal": float(np.mean(e_th)),
        "rho_coordination": float(np.mean(coord)),
        "rho_thermal_to_inherent_distance": float(np.mean(disp)),
        "cb_mean_A": float(np.mean(mean)),
        "cb_std_A": float(np.mean(std)),
    }


def ridge_regression(root, train_temperatures) -> dict:
    """tbotan.analysis.ceiling.descriptor_regression of C_B, as this script printed it (alpha, features,
    train_particles, the mean Pearson per T under "<T:g>"), with the per-configuration values and their standard
    error under "per_T"."""
    ridge = ceiling.descriptor_regression(root, train_temperatures)
    out = {"alpha": ridge["penalty"], "features": ridge["features"], "train_particles": ridge["train_particles"]}
    out["features_used"] = ridge["features_used"]
    out["validation_rho"] = {f"{p:g}": v for p, v in ridge["validation_rho"].items()}
    out["per_T"] = {}
    for T, d in ridge["T"].items():
        mean, sem = ceiling.mean_sem(d["rho_each"])
        out[f"{T:g}"] = mean
        out["per_T"][f"{T:g}"] = {"mean": mean, "sem": sem, **d}
    return out


EDGE_BINS = np.linspace(0.8, 2.0, 13)  # the histogram reader's bins of thermal edge length


def linear_reader(x, y, alpha, xv, yv):
    """Ridge of y on standardised x (intercept not penalised): (alpha, predict, validation MSE)."""
    mu, sd = x.mean(0), x.std(0) + 1e-12

    def design(v):
        return np.c_[(v - mu) / sd, np.ones(len(v))]

    a = design(x)
    w = np.linalg.solve(a.T @ a + alpha * np.diag([1.0] * x.shape[1] + [0.0]), a.T @ y)
    return alpha, lambda v: design(v) @ w, float(np.mean((design(xv) @ w - yv) ** 2))


def temperature_readers(root, train_temperatures) -> dict:
    """T read from graph-level statistics of each test configuration by a linear fit on the train split: U/N and
    the mean thermal edge length (a line each), and the histogram of thermal edge lengths per particle (12 bins,
    ridge, the penalty chosen on the validation split). Per T: the readings (mean, standard deviation, each one)."""

    def statistics(g, split):
        box = float(g.attrs["L"])
        rows = []
        for c in np.flatnonzero(g["done"][:] & (g["split"][:] == split)):
            x, edges = g["thermal"][c], g["edges"][c][: int(g["n_edges"][c])]
            r = np.linalg.norm(minimum_image(x[edges[:, 0]] - x[edges[:, 1]], box), axis=1)
            rows.append([float(g["energy_thermal"][c]), r.mean(), *(np.histogram(r, EDGE_BINS)[0] / len(x))])
        return np.array(rows).reshape(-1, 2 + len(EDGE_BINS) - 1)

    if len(train_temperatures) < 2:
        return {"skipped": f"one training temperature ({train_temperatures}): no line through the labels"}
    groups = {float(g.attrs["T"]): g for name, g in sorted(root.groups()) if name.startswith("T")}
    split = {s: {T: statistics(groups[T], s) for T in train_temperatures} for s in (0, 1)}
    test = {T: statistics(g, 2) for T, g in groups.items()}
    labels = {s: np.concatenate([[T] * len(v) for T, v in split[s].items()]) for s in (0, 1)}
    readers = {"energy_per_particle": [0], "mean_edge_length": [1], "edge_length_histogram": list(range(2, 14))}
    out = {}
    for name, cols in readers.items():
        x, xv = (np.concatenate([v[:, cols] for v in split[s].values()]) for s in (0, 1))
        alphas = [0.0] if len(cols) == 1 else [10.0**k for k in range(-2, 4)]
        alpha, read = min((linear_reader(x, labels[0], al, xv, labels[1]) for al in alphas), key=lambda r: r[2])[:2]
        rows = {"penalty": alpha}
        for T, stats in test.items():
            reads = read(stats[:, cols])
            rows[f"{T:g}"] = {
                "T_read": float(reads.mean()),
                "T_read_std": float(reads.std()),
                "each": [round(float(r), 4) for r in reads],
            }
        out[name] = rows
    return out


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--store", default="storage/quickstart.zarr")
    add_arguments(p, "signal_ceiling")
    args = p.parse_args()
    root = zarr.open_group(args.store, mode="r")
    trained = root.attrs["spec"]["training"]["temperatures"]
    rows = []
    for row in ceiling.ceiling_rows(root, trained):
        g = root[group_name(row["T"])]
        rows.append(row | baselines(g, row["configurations"]))
    assert [r["T"] for r in rows] == temperatures(root)
    emit(
        "signal_ceiling",
        {
            "store": args.store,
            "rows": rows,
            "ridge_regression_pearson_A": ridge_regression(root, trained),
            "temperature_readers": temperature_readers(root, trained),
        },
        args,
    )


if __name__ == "__main__":
    main()

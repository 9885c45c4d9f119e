"""How much of C_B can any model predict on a store, and what do simple descriptors reach?

    python benchmarks/experiments/signal_ceiling.py [--store storage/quickstart.zarr] [--out FILE]
                                                    [--record | --name NAME]

* Ceiling: C_B from the K iso-configurational runs is a noisy estimate of the true (K -> infinity) field. Split
  the runs in two halves, correlate the two half-estimates (r), extrapolate to K runs with Spearman-Brown
  (R = 2r / (1 + r)); no predictor can exceed rho = sqrt(R) against the stored C_B.
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

from tbotan.core import minimum_image
from tbotan.data.targets import bond_breaking, neighbour_pairs

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: record.py
from record import add_arguments, emit  # prints the result with its command (and writes it where asked)

EPS = np.array([[1.0, 1.5], [1.5, 0.5]])
SIG = np.array([[1.0, 0.8], [0.8, 0.88]])


def pair_energy(types, x, box):
    """Per-particle potential energy (half of each pair to each particle), shifted-force LJ, rc = 2.5 sigma."""
    i, j, d = neighbour_pairs(x, box, 2.5)  # both directions
    s, e = SIG[types[i], types[j]], EPS[types[i], types[j]]
    rc = 2.5 * s
    keep = d < rc
    i, d, s, e, rc = i[keep], d[keep], s[keep], e[keep], rc[keep]
    u = lambda r: 4 * e * ((s / r) ** 12 - (s / r) ** 6)  # noqa: E731
    du = lambda r: 4 * e * (-12 * s**12 / r**13 + 6 * s**6 / r**7)  # noqa: E731
    return 0.5 * np.bincount(i, u(d) - u(rc) - (d - rc) * du(rc), len(types))


def rho(x, y):
    return float(np.corrcoef(x, y)[0, 1])


SHELLS = np.arange(0.7, 3.01, 0.2)  # radial shells for the structure functions


def descriptors(types, thermal, inherent, box) -> np.ndarray:
    """(N, F) per-particle structural descriptors, none of them learned: radial structure functions (counts of A
    and of B neighbours per shell, Schoenholz et al. 2016's G) in the IS and in the thermal structure, the
    particle's distance from its IS position and its energies, and the averages of those three over the particles
    within 2.0 sigma in the IS (local averages carry more of the dynamics than the particle's own values)."""
    n = len(types)
    cols = []
    for x in (inherent, thermal):
        i, j, d = neighbour_pairs(x, box, SHELLS[-1])
        shell = np.digitize(d, SHELLS) - 1
        for s in (0, 1):
            keep = (types[j] == s) & (shell >= 0) & (shell < len(SHELLS) - 1)
            counts = np.zeros((n, len(SHELLS) - 1))
            np.add.at(counts, (i[keep], shell[keep]), 1.0)
            cols.append(counts)
    d = thermal - inherent
    own = np.stack(
        [
            np.linalg.norm(d - box * np.round(d / box), axis=1),
            pair_energy(types, inherent, box),
            pair_energy(types, thermal, box),
        ],
        axis=1,
    )
    i, j, _ = neighbour_pairs(inherent, box, 2.0)
    local = np.zeros_like(own)
    np.add.at(local, i, own[j])
    local /= np.maximum(np.bincount(i, minlength=n), 1)[:, None]
    return np.concatenate([*cols, own, local, types[:, None].astype(float)], axis=1)


def ridge_regression(root, train_temperatures) -> dict:
    """A ridge regression of C_B on ``descriptors`` (A particles), fitted on the train split (0) of the training
    temperatures, its penalty chosen on the validation split (1); Pearson on each T's test split (2)."""

    def load(T, split):
        g = root[f"T{T:.3f}"]
        L = float(g.attrs["L"])
        xs, ys = [], []
        for c in np.flatnonzero(g["done"][:] & (g["split"][:] == split)):
            types = g["types"][c]
            a = types == 0
            xs.append(descriptors(types, g["thermal"][c], g["inherent"][c], L)[a])
            ys.append(g["cb"][c, 0][a])
        return xs, ys

    train = [load(T, 0) for T in train_temperatures]
    x = np.concatenate([v for xs, _ in train for v in xs])
    y = np.concatenate([v for _, ys in train for v in ys])
    mu, sd = x.mean(0), x.std(0) + 1e-12
    z = (x - mu) / sd
    val = [load(T, 1) for T in train_temperatures]

    def fit(alpha):
        a = np.concatenate([z, np.ones((len(z), 1))], axis=1)
        return np.linalg.solve(a.T @ a + alpha * np.eye(a.shape[1]), a.T @ y)

    def predict(w, xs):
        return [np.concatenate([(v - mu) / sd, np.ones((len(v), 1))], axis=1) @ w for v in xs]

    def score(w, sets):
        return np.mean([rho(p, t) for xs, ys in sets for p, t in zip(predict(w, xs), ys)])

    alphas = [10.0**k for k in range(-3, 6)]
    best = max(alphas, key=lambda al: score(fit(al), val))
    w = fit(best)
    out = {"alpha": best, "features": int(z.shape[1]), "train_particles": len(y)}
    for name, g in sorted(root.groups()):
        if name.startswith("T"):
            xs, ys = load(float(g.attrs["T"]), 2)
            out[f"{float(g.attrs['T']):g}"] = float(np.mean([rho(p, t) for p, t in zip(predict(w, xs), ys)]))
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
    rows = []
    for name, g in sorted(root.groups()):
        if not name.startswith("T"):
            continue
        L, K = float(g.attrs["L"]), g["replica_positions"].shape[1]
        chosen = np.flatnonzero(g["done"][:] & (g["split"][:] == 2))
        half, e_is, e_th, coord, disp, mean, std = [], [], [], [], [], [], []
        for c in chosen:
            types, thermal, cb = g["types"][c], g["thermal"][c], g["cb"][c, 0]
            frames = g["replica_positions"][c]
            a = types == 0
            first = bond_breaking(types, thermal, frames[: K // 2], L)[0]
            second = bond_breaking(types, thermal, frames[K // 2 :], L)[0]
            half.append(rho(first[a], second[a]))
            e_is.append(rho(pair_energy(types, g["inherent"][c], L)[a], cb[a]))
            e_th.append(rho(pair_energy(types, thermal, L)[a], cb[a]))
            i, _, _ = neighbour_pairs(g["inherent"][c], L, 1.4)
            coord.append(rho(np.bincount(i, minlength=len(types))[a].astype(float), cb[a]))
            d = thermal - g["inherent"][c]
            disp.append(rho(np.linalg.norm(d - L * np.round(d / L), axis=1)[a], cb[a]))
            mean.append(cb[a].mean())
            std.append(cb[a].std())
        r = float(np.mean(half))
        reliability = 2 * r / (1 + r)
        rows.append(
            {
                "T": float(g.attrs["T"]),
                "test_configurations": len(chosen),
                "replicas": K,
                "split_half_r": r,
                "reliability": reliability,
                "ceiling_rho": float(np.sqrt(reliability)),
                "rho_energy_inherent": float(np.mean(e_is)),
                "rho_energy_thermal": float(np.mean(e_th)),
                "rho_coordination": float(np.mean(coord)),
                "rho_thermal_to_inherent_distance": float(np.mean(disp)),
                "cb_mean_A": float(np.mean(mean)),
                "cb_std_A": float(np.mean(std)),
            }
        )
    trained = root.attrs["spec"]["training"]["temperatures"]
    ridge = ridge_regression(root, trained)
    emit(
        "signal_ceiling",
        {
            "store": args.store,
            "rows": rows,
            "ridge_regression_pearson_A": ridge,
            "temperature_readers": temperature_readers(root, trained),
        },
        args,
    )


if __name__ == "__main__":
    main()

"""How much of C_B can any model predict on a store, and what do simple descriptors reach?

    python benchmarks/signal_ceiling.py [--store storage/quickstart.zarr]

* Ceiling: C_B from the K iso-configurational runs is a noisy estimate of the true (K -> infinity) field. Split
  the runs in two halves, correlate the two half-estimates (r), extrapolate to K runs with Spearman-Brown
  (R = 2r / (1 + r)); no predictor can exceed rho = sqrt(R) against the stored C_B.
* Baselines: Pearson rho (A particles) of C_B with the per-particle potential energy in the inherent and in
  the thermal structure (shifted-force KA LJ in plain NumPy), with the coordination number (r < 1.4 in
  the IS), and with each particle's distance from its inherent-structure position, |r_thermal - r_IS|.
  Test configurations (split 2) of every temperature. Prints one JSON object and writes
  benchmarks/results/signal_ceiling.json.
"""

import argparse

import numpy as np
import zarr
from record import emit  # prints the result with its command, writes benchmarks/results/<name>.json

from tbotan.data.targets import bond_breaking, neighbour_pairs

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


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--store", default="storage/quickstart.zarr")
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
    emit("signal_ceiling", {"store": args.store, "rows": rows})


if __name__ == "__main__":
    main()

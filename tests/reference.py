"""Independent NumPy/SciPy references for the physics core: energy, forces, FIRE, targets.

Written from the formulas of docs/method.md §1–§3 directly, sharing no code with ``tbotan`` (the pair tables
are typed in again here on purpose).
"""

import numpy as np
from scipy.spatial import cKDTree

EPS = np.array([[1.0, 1.5], [1.5, 0.5]])
SIG = np.array([[1.0, 0.8], [0.8, 0.88]])


def _wrap(x, L):
    return x - L * np.floor(x / L)


def pairs(positions, L, cutoff):
    """All pairs i < j within ``cutoff`` (minimum image): (i, j, rij vector j - i)."""
    x = _wrap(np.asarray(positions, dtype=np.float64), L)
    tree = cKDTree(x, boxsize=L)
    ij = tree.query_pairs(cutoff, output_type="ndarray")
    i, j = ij[:, 0], ij[:, 1]
    d = x[j] - x[i]
    d -= L * np.round(d / L)
    return i, j, d


def _interacting(types, positions, L):
    """The pairs within their cutoff 2.5 sigma_ab: (i, j, d, r, rc), and u(x), u'(x) of each pair's LJ."""
    types = np.asarray(types)
    i, j, d = pairs(positions, L, 2.5)
    r = np.linalg.norm(d, axis=1)
    eps = EPS[types[i], types[j]]
    sig = SIG[types[i], types[j]]
    rc = 2.5 * sig
    keep = r < rc
    i, j, d, r, eps, sig, rc = i[keep], j[keep], d[keep], r[keep], eps[keep], sig[keep], rc[keep]

    def u(x):
        return 4 * eps * ((sig / x) ** 12 - (sig / x) ** 6)

    def du(x):
        return 4 * eps * (-12 * sig**12 / x**13 + 6 * sig**6 / x**7)

    return i, j, d, r, rc, u, du


def energy_forces(types, positions, L):
    """Total energy and forces of the shifted-force KA potential, pair by pair."""
    i, j, d, r, rc, u, du = _interacting(types, positions, L)

    energy = np.sum(u(r) - u(rc) - (r - rc) * du(rc))
    # F on j = -dU/dr * d/r ; F on i the opposite
    fmag = -(du(r) - du(rc))
    fj = (fmag / r)[:, None] * d
    forces = np.zeros((len(types), 3))
    np.add.at(forces, j, fj)
    np.add.at(forces, i, -fj)
    return energy, forces


def pressure(types, positions, L, temperature):
    """rho T + sum over pairs of r_ij . f_ij / (3V): the virial pressure, pair by pair."""
    _, _, _, r, rc, _, du = _interacting(types, positions, L)
    virial = np.sum(-r * (du(r) - du(rc)))  # r_ij . f_ij with f_ij = -u'_sf(r) r_ij / r
    volume = L**3
    return len(types) / volume * temperature + virial / (3 * volume)


def fire(
    types,
    positions,
    L,
    tolerance=1e-12,
    max_steps=500_000,
    dt_init=0.002,
    dt_max=0.02,
    alpha_start=0.1,
    f_alpha=0.99,
    f_inc=1.1,
    f_dec=0.5,
    n_min=5,
    check_every=100,
):
    """Plain FIRE (semi-implicit Euler, Bitzek parameters); returns positions, energy, mean force, steps."""
    x = np.array(positions, dtype=np.float64)
    v = np.zeros_like(x)
    dt, alpha, npos = dt_init, alpha_start, 0
    for step in range(max_steps + 1):
        e, f = energy_forces(types, x, L)
        if step % check_every == 0:
            mf = np.linalg.norm(f, axis=1).mean()
            if mf < tolerance:
                return x, e, mf, step
        P = np.sum(f * v)
        if P > 0:
            npos += 1
            if npos > n_min:
                dt = min(dt * f_inc, dt_max)
                alpha *= f_alpha
        else:
            npos = 0
            dt *= f_dec
            alpha = alpha_start
            v[:] = 0
        v = v + dt * f
        v = (1 - alpha) * v + alpha * np.sqrt(np.sum(v * v)) * f / np.sqrt(np.sum(f * f))
        x = x + dt * v
    raise RuntimeError(f"reference FIRE did not converge: {mf}")


def bond_breaking_brute(types, x0, xt_list, L):
    """C_B^j averaged over replicas, all pairs, minimum image (O(N^2) per replica)."""
    types = np.asarray(types)
    sig = SIG[types[:, None], types[None, :]]

    def dist(x):
        d = x[None, :, :] - x[:, None, :]
        d -= L * np.round(d / L)
        return np.linalg.norm(d, axis=2)

    r0 = dist(x0)
    bonded = (r0 < 1.3 * sig) & ~np.eye(len(types), dtype=bool)
    n0 = bonded.sum(1)
    cb = np.zeros(len(types))
    for xt in xt_list:
        kept = bonded & (dist(xt) < 1.6 * sig)
        cb += kept.sum(1) / n0
    return cb / len(xt_list)


def edge_targets_brute(x_is, x0, xt_list, L, cutoff=2.0):
    """Directed IS edges (r < cutoff, j != k) sorted by (j, k), and <r_jk(t) - r_jk(0)>_iso."""

    def dist(x):
        d = x[None, :, :] - x[:, None, :]
        d -= L * np.round(d / L)
        return np.linalg.norm(d, axis=2)

    ris = dist(x_is)
    mask = (ris < cutoff) & ~np.eye(len(x_is), dtype=bool)
    j, k = np.nonzero(mask)
    r0 = dist(x0)[j, k]
    e = np.mean([dist(xt)[j, k] - r0 for xt in xt_list], axis=0)
    return np.stack([j, k], 1), e

"""Learning targets from iso-configurational runs (docs/method.md §3) and the graph's edges (docs/method.md §4).

Shapes: ``frames`` is (K, n_t, N, 3), the unwrapped positions of K replicas at n_t times, each
continuous with ``thermal`` (N, 3), the t = 0 positions; so frames - thermal is the displacement.
Neighbour search uses vesin (a maintained library); distances at later times are minimum-image
differences of the already-known pairs.
"""

from __future__ import annotations

import numpy as np

from .. import core
from ..errors import ConfigurationError

BOND_RADIUS = 1.3  # n_j: neighbours with r_jk(0) < 1.3 sigma_jk
BROKEN_RADIUS = 1.6  # n_j(t|0): those still within 1.6 sigma_jk at t
EDGE_CUTOFF = 2.0  # graph edges: pairs within 2.0 sigma_AA in the inherent structure


def neighbour_pairs(positions: np.ndarray, box: float, cutoff: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every ordered pair (i, j), i != j, within ``cutoff`` (minimum image), sorted by (i, j); and its distance."""
    import vesin  # here: vesin loads torch where torch is installed, and the report runs without it

    nl = vesin.NeighborList(cutoff=cutoff, full_list=True)
    i, j, d = nl.compute(points=core.wrap(positions, box), box=np.eye(3) * box, periodic=True, quantities="ijd")
    order = np.lexsort((j, i))
    return i[order].astype(np.int64), j[order].astype(np.int64), d[order]


def distances(positions: np.ndarray, i: np.ndarray, j: np.ndarray, box: float) -> np.ndarray:
    """Minimum-image |r_j - r_i| for the given pairs; ``positions`` may be unwrapped or (..., N, 3)."""
    return np.linalg.norm(core.minimum_image(positions[..., j, :] - positions[..., i, :], box), axis=-1)


def graph_edges(inherent: np.ndarray, box: float, cutoff: float = EDGE_CUTOFF) -> np.ndarray:
    """(E, 2) directed edges (j, k) with |r_jk| < cutoff in the inherent structure, sorted by (j, k)."""
    i, j, _ = neighbour_pairs(inherent, box, cutoff)
    return np.stack([i, j], axis=1)


def bond_breaking(types: np.ndarray, thermal: np.ndarray, frames: np.ndarray, box: float, pairs=None) -> np.ndarray:
    """C_B^j(t) = < n_j(t|0) / n_j >_iso for every particle, shape (n_t, N). ``pairs``: the neighbour finder
    (default ``neighbour_pairs``; tbotan.analysis.ceiling passes a torch-free one that finds the same pairs)."""
    types = np.asarray(types)
    i, j, d0 = (pairs or neighbour_pairs)(thermal, box, BOND_RADIUS * core.SIGMA.max())
    sig = core.pair_sigma(types[i], types[j])
    bonded = d0 < BOND_RADIUS * sig
    i, j, sig = i[bonded], j[bonded], sig[bonded]
    n0 = np.bincount(i, minlength=len(types))
    if (n0 == 0).any():
        raise ConfigurationError(
            f"{int((n0 == 0).sum())} particles have no neighbour within 1.3 sigma: C_B undefined "
            "(not a dense liquid configuration?)"
        )
    kept = distances(frames, i, j, box) < BROKEN_RADIUS * sig  # (K, n_t, B)
    k, n_t = frames.shape[:2]
    counts = np.zeros((k, n_t, len(types)))
    np.add.at(counts, (slice(None), slice(None), i), kept)
    return (counts / n0).mean(axis=0)


def edge_targets(edges: np.ndarray, thermal: np.ndarray, frames: np.ndarray, box: float) -> np.ndarray:
    """E_jk(t) = < r_jk(t) - r_jk(0) >_iso on the given edges (thermal-structure distances), shape (n_t, E)."""
    j, k = edges[:, 0], edges[:, 1]
    r0 = distances(thermal, j, k, box)
    return (distances(frames, j, k, box) - r0).mean(axis=0)


def propensity(thermal: np.ndarray, frames: np.ndarray) -> np.ndarray:
    """< |r_j(t) - r_j(0)| >_iso, the mean absolute displacement (the "propensity" of BOTAN's code, Bapst et al.
    and GlassBench), shape (n_t, N); ``frames`` unwrapped and continuous with ``thermal``."""
    return np.linalg.norm(frames - thermal[None, None], axis=-1).mean(axis=0)


def msd(thermal: np.ndarray, frames: np.ndarray) -> np.ndarray:
    """< |r_j(t) - r_j(0)|^2 >_iso, the mean squared displacement (Widmer-Cooper's propensity), shape (n_t, N)."""
    disp = frames - thermal[None, None]
    return np.mean(np.sum(disp * disp, axis=-1), axis=0)


def self_intermediate_a(types: np.ndarray, thermal: np.ndarray, frames: np.ndarray, q: float = core.Q_FS) -> np.ndarray:
    """F_s^A(q, t) of one iso-configurational ensemble: the mean over its A particles and runs of
    sin(q dr) / (q dr), dr = |r_j(t) - r_j(0)|; shape (n_t,). It says whether a time called tau_alpha is the
    ensemble's alpha time (F_s = 1/e there on average)."""
    dr = np.linalg.norm(frames[:, :, np.asarray(types) == 0] - thermal[None, None, np.asarray(types) == 0], axis=-1)
    return np.sinc(q * dr / np.pi).mean(axis=(0, 2))  # np.sinc(x) = sin(pi x) / (pi x)

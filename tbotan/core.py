"""What every stack shares, with NumPy only: the Kob–Andersen system's numbers and the periodic box.

Constants (reduced units, sigma_AA = eps_AA = m = 1), each written once:
- the pair tables of Kob & Andersen (1995), indexed by s = type_i + type_j (0 = AA, 1 = AB, 2 = BB);
- the shifted-force cutoff rc = 2.5 sigma_ab per pair, so the longest one is the A–A cutoff 2.5, and a
  box shorter than twice it would let a particle see two images of another;
- the 80:20 composition at number density 1.2;
- the paper's Table I: tau_alpha at its six temperatures (N = 4096).

Geometry of the cubic periodic box of edge L: ``wrap`` into [0, L), ``minimum_image`` of a difference
vector (NumPy arrays and torch tensors alike), and ``lattice_sum``: |W(q)|^2 of a weighted density,
W(q) = sum_j w_j exp(i q . r_j), on the box's reciprocal lattice q = (2 pi / L) n, n an integer 3-vector,
collected into bins of |n|^2. Both S(q) of ``md.relaxation`` and S_B(q) of ``analysis.fourpoint`` are this
sum with their own weights and bins.
"""

from __future__ import annotations

import numpy as np

EPSILON = np.array([1.0, 1.5, 0.5])
SIGMA = np.array([1.0, 0.8, 0.88])
CUTOFF_RATIO = 2.5
CUTOFF_AA = CUTOFF_RATIO * SIGMA.max()  # the longest pair cutoff (A–A): the box must exceed twice it
FRACTION_A = 0.8
DENSITY = 1.2
Q_FS = 7.25  # the wavevector of F_s(q, t): the first peak of S_AA(q) of this system (docs/method.md §2.4)
TABLE_I = {0.44: 4120.0, 0.47: 616.0, 0.50: 217.0, 0.56: 52.0, 0.64: 16.5, 0.80: 3.42}  # the paper's tau_alpha


def box_length(n_particles: int, density: float = DENSITY) -> float:
    """Edge of the cubic box holding ``n_particles`` at number density ``density``."""
    return (n_particles / density) ** (1.0 / 3.0)


def species(n_particles: int) -> np.ndarray:
    """The standard 80:20 KA composition: the first round(0.8 N) particles are A (0), the rest B (1)."""
    if n_particles <= 0:
        raise ValueError(f"N must be positive, got {n_particles}")
    types = np.ones(n_particles, dtype=np.int8)
    types[: int(round(FRACTION_A * n_particles))] = 0
    return types


def pair_sigma(types_i: np.ndarray, types_j: np.ndarray) -> np.ndarray:
    """sigma of each pair (i, j) from the species arrays."""
    return SIGMA[np.asarray(types_i, dtype=np.int64) + np.asarray(types_j, dtype=np.int64)]


def wrap(positions: np.ndarray, box: float) -> np.ndarray:
    """Positions folded into [0, box)."""
    x = np.asarray(positions, dtype=np.float64)
    w = x - box * np.floor(x / box)
    return np.where(w >= box, w - box, w)


def minimum_image(d, box: float):
    """The minimum image of difference vectors ``d`` (..., 3) in a cubic box: each component in [-L/2, L/2].
    Works on NumPy arrays and torch tensors (both round half to even)."""
    return d - box * (d / box).round()


def lattice_sum(
    positions: np.ndarray, weights: np.ndarray, box: float, n2_max: int, bins: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sum of |W(q)|^2 over the lattice vectors of each bin, with W(q) = sum_j w_j exp(i q . r_j).

    Args:
        positions: [n, 3] positions (any image).
        weights: [n] the w_j (ones for the density; a centred field for S_B).
        box: the cubic box edge L; q = (2 pi / L) n.
        n2_max: every n with 0 < |n|^2 <= n2_max counts (the full sphere: +n and -n both).
        bins: [n2_max + 1] int, the bin of each |n|^2 (entry 0, the n = 0 vector, is dropped).
    Returns:
        (sums, counts, norms), each [bins.max() + 1]: the sum of |W|^2, the number of vectors, and the sum
        of |n| over the vectors of each bin (index 0 is the n = 0 vector's, always zero).

    Algorithm: the phase factorises, exp(i q . r_j) = a_j^{n_x} b_j^{n_y} c_j^{n_z} with a_j = exp(2 pi i x_j / L)
    etc., so for each n_x = 0..K (K = floor(sqrt(n2_max))) the whole (n_y, n_z) plane is one BLAS product,
    W[n_x] = ((w a^{n_x})[:, None] * B)^T @ C, with B_jl = b_j^l, C_jl = c_j^l (l = -r..r, r the sphere's
    half-width in that plane). Real weights give W(-q) = conj W(q), so only n_x >= 0 is computed: the n_x = 0
    plane whole (weight 1) and the planes n_x > 0 with weight 2, which is the full-sphere sum exactly.
    Cost <= (K+1)(2K+1)^2 n complex multiply-adds, memory O(n (2K+1)).
    """
    x = np.asarray(positions, dtype=np.float64)
    f = np.asarray(weights, dtype=np.float64)
    big_k = int(np.floor(np.sqrt(n2_max)))
    n_bins = int(bins.max()) + 1
    m = np.arange(-big_k, big_k + 1)
    ang = (2 * np.pi / box) * x
    a, b, c = (np.exp(1j * ang[:, d : d + 1] * m) for d in range(3))  # (n, 2K+1): column l is exp(2 pi i m_l x_j / L)
    sums, counts, norms = np.zeros(n_bins), np.zeros(n_bins), np.zeros(n_bins)
    for nx in range(big_k + 1):
        r = int(np.floor(np.sqrt(n2_max - nx**2)))
        sl = slice(big_k - r, big_k + r + 1)
        fb = (f * a[:, big_k + nx])[:, None] * b[:, sl]  # (n, 2r+1)
        w = fb.T @ c[:, sl]  # W[nx, ny, nz], (2r+1, 2r+1)
        n2 = nx**2 + m[sl, None] ** 2 + m[None, sl] ** 2
        inside = (n2 <= n2_max) & (n2 > 0)
        k = bins[n2[inside]]
        weight = 1.0 if nx == 0 else 2.0  # n_x > 0 stands for +q and -q
        sums += weight * np.bincount(k, (w.real[inside] ** 2 + w.imag[inside] ** 2), n_bins)
        counts += weight * np.bincount(k, minlength=n_bins)
        norms += weight * np.bincount(k, np.sqrt(n2[inside]), n_bins)
    return sums, counts, norms

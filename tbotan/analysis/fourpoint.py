"""Four-point dynamic structure factor S_B(q) of the bond-breaking field C_B, and its Ornstein–Zernike fit.

Definition (SPEC):

    S_B(q) = (1/N_A) < W(q) W(-q) >,   W(q) = sum_{j in A} (C_B^j - mean_A C_B) exp(i q . r_j(0)),

with r_j(0) the thermal t=0 positions and q on the reciprocal lattice of the cubic box, q = (2 pi / L) n,
n an integer 3-vector, n != 0. A constant field gives zero; a field uncorrelated with the positions gives
S_B = var_A(C_B) (population variance) at every q on average, and at large q for any configuration. A
growing dynamic length xi shows up as a low-q peak S_B(q) ~ S0 / (1 + (q xi)^2) (``ornstein_zernike``).

Binning: dq = 2 pi / L; bin k = 1..K, K = floor(q_max / dq), collects every lattice vector with
(k - 1/2) dq <= |q| < (k + 1/2) dq, i.e. k = round(|n|) (no ties: |n|^2 is an integer). The bins depend
only on the box, so every configuration of a box is averaged on the same bins. The value of a bin is the
plain average of |W(q)|^2 / N_A over all its vectors (full sphere, +q and -q both counted); its abscissa is
the mean |q| of those vectors.

Algorithm: ``tbotan.core.lattice_sum`` (the factorised sum over the n_x planes, each a BLAS product) with
the centred field as weights. Measured (2 CPU cores, OpenBLAS): N = 4096, L = 15.06, q_max = 10 (K = 23) takes
0.05 s with one BLAS thread, 0.06-0.12 s with two on an idle machine, up to ~1 s when other jobs load the cores
(the small products gain nothing from BLAS threads; OPENBLAS_NUM_THREADS=1 avoids the contention).
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy.optimize import OptimizeWarning, curve_fit

from ..core import lattice_sum


def _n_bins(box: float, q_max: float) -> int:
    """K = floor(q_max / dq), with a little slack so that q_max = K dq computed in floating point keeps bin K."""
    return max(int(np.floor(q_max * box / (2 * np.pi) + 1e-9)), 0)


def shell_bins(box: float, q_max: float) -> tuple[np.ndarray, np.ndarray]:
    """(edges, centres) of the |q| bins of a box: dq = 2 pi / L, bin k covers [(k - 0.5) dq, (k + 0.5) dq)
    for k = 1..floor(q_max / dq) (q_max inclusive of the last full bin); centres are k dq.
    Deterministic: every configuration of a box gets the same bins."""
    dq = 2 * np.pi / box
    k = np.arange(1, _n_bins(box, q_max) + 1)
    return (np.arange(len(k) + 1) + 0.5) * dq, k * dq


def structure_factor_field(
    positions: np.ndarray, values: np.ndarray, box: float, q_max: float, select: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """S(q) of a per-particle field: (q, s, counts).

    q: mean |q| of the lattice vectors in each bin; s: bin average of |W(q)|^2 / n with
    W(q) = sum_j (values_j - mean(values)) exp(i q.r_j) over the ``n`` selected particles (boolean mask
    ``select``, default all); counts: lattice vectors per bin (full sphere). Bins from ``shell_bins``;
    a bin without vectors gets nan."""
    x = np.asarray(positions, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    if select is not None:
        x, v = x[np.asarray(select, dtype=bool)], v[np.asarray(select, dtype=bool)]
    if x.ndim != 2 or x.shape[1] != 3 or len(x) != len(v):
        raise ValueError(f"positions must be (n, 3) matching values, got {x.shape} and {v.shape}")
    if len(x) == 0:
        raise ValueError("no particle selected")
    n_sel = len(x)
    big_k = _n_bins(box, q_max)
    n2_max = big_k * big_k + big_k  # |n|^2 < (K + 1/2)^2 <=> |n| rounds to a bin <= K
    bins = np.floor(np.sqrt(np.arange(n2_max + 1)) + 0.5).astype(int)
    sums, counts, qsum = lattice_sum(x, v - v.mean(), box, n2_max, bins)
    sums, counts, qsum = sums[1:], counts[1:], qsum[1:]
    with np.errstate(invalid="ignore", divide="ignore"):
        s = sums / counts / n_sel
        q = qsum / counts * (2 * np.pi / box)
    return q, s, counts.astype(np.int64)


def four_point(
    positions: np.ndarray, types: np.ndarray, cb: np.ndarray, box: float, q_max: float
) -> tuple[np.ndarray, np.ndarray]:
    """S_B(q) of the field ``cb`` over the A particles (types == 0): (q, S_B)."""
    q, s, _ = structure_factor_field(positions, cb, box, q_max, select=np.asarray(types) == 0)
    return q, s


def _oz(q: np.ndarray, s0: float, xi: float) -> np.ndarray:
    return s0 / (1.0 + (q * xi) ** 2)


def ornstein_zernike(q: np.ndarray, s: np.ndarray, q_fit_max: float, xi_max: float | None = None) -> dict:
    """Fit s = S0 / (1 + (q xi)^2) on the bins with q <= q_fit_max and finite s (curve_fit, S0, xi >= 0).

    Returns {"S0", "xi", "S0_err", "xi_err", "q_min", "q_max", "points"} (q_min, q_max: the range actually
    fitted); with fewer than 2 usable points, or a failed fit, the numbers are nan and "reason" says why.
    ``xi_max`` (e.g. L/2): a fitted xi beyond it says only that S_B(q) has not levelled off at the smallest q
    of the box, not what the length is; it is reported as nan with that reason, the raw fit kept as
    "xi_fit", "S0_fit"."""
    q = np.asarray(q, dtype=np.float64)
    s = np.asarray(s, dtype=np.float64)
    use = np.isfinite(q) & np.isfinite(s) & (q <= q_fit_max)
    qf, sf = q[use], s[use]
    out = {
        "S0": np.nan,
        "xi": np.nan,
        "S0_err": np.nan,
        "xi_err": np.nan,
        "q_min": float(qf.min()) if len(qf) else np.nan,
        "q_max": float(qf.max()) if len(qf) else np.nan,
        "points": int(len(qf)),
    }
    if len(qf) < 2:
        return {**out, "reason": f"{len(qf)} usable point(s) with q <= {q_fit_max:g}; need at least 2"}
    # start from the straight line 1/s = 1/S0 + (xi^2 / S0) q^2
    slope, icpt = np.polyfit(qf**2, 1.0 / sf, 1) if (sf > 0).all() else (0.0, 0.0)
    s0_guess = 1.0 / icpt if icpt > 0 else float(sf.max())
    xi_guess = np.sqrt(slope * s0_guess) if slope > 0 else 1.0 / qf.max()
    p0 = [max(s0_guess, 1e-12), max(xi_guess, 1e-12)]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", OptimizeWarning)
            popt, pcov = curve_fit(_oz, qf, sf, p0=p0, bounds=([0.0, 0.0], [np.inf, np.inf]))
    except (RuntimeError, ValueError) as err:
        return {**out, "reason": f"fit failed: {err}"}
    err = np.sqrt(np.abs(np.diag(pcov)))
    if xi_max is not None and popt[1] > xi_max:
        return {
            **out,
            "xi_fit": float(popt[1]),
            "S0_fit": float(popt[0]),
            "reason": f"fitted xi = {popt[1]:.3g} exceeds {xi_max:.3g}: S_B(q) does not level off at the "
            f"smallest q of this box, so the length is not measurable here",
        }
    return {**out, "S0": float(popt[0]), "xi": float(popt[1]), "S0_err": float(err[0]), "xi_err": float(err[1])}

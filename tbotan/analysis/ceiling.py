"""How much of the MD target any predictor can reach on a store, and what fixed structural descriptors reach.

No torch: C_B is tbotan.data.targets.bond_breaking with the neighbour pairs from SciPy's periodic k-d tree
(``neighbour_pairs``) instead of vesin, which imports torch when it is installed; the pairs are the same
(tests/analysis/test_ceiling.py).

* **Split-half reliability.** The stored target (C_B, or the propensity) of a configuration is the average over
  its K iso-configurational runs, a noisy estimate of the K -> infinity field. The runs are split in two halves of
  h = floor(K / 2) (the first h and the last h; with K odd the middle run is left out), the target is recomputed
  from each half at the observation time at tau_alpha, and the two half-estimates are correlated over the A
  particles (Pearson r, per test configuration, then the mean over configurations). Spearman–Brown extrapolates
  that to the K runs of the stored target: R = n r / (1 + (n - 1) r), n = K / h (R = 2r / (1 + r) for K even).
  No predictor can exceed rho = sqrt(R) against the stored target on average: the ceiling.
* **Descriptor regression.** A ridge regression of the target on ``descriptors`` (radial structure functions of
  the inherent and of the thermal structure, the distance from the inherent position, per-particle energies and
  their local averages; nothing learned), A particles, fitted on the train split (0) of the training
  temperatures, its penalty chosen on the validation split (1) by the mean Pearson there, and read on each test
  configuration (split 2) of every temperature: what a fixed-feature linear model reaches on the same
  configurations as the network.
* **One descriptor.** The Pearson of the target with each particle's distance from its inherent-structure
  position, |r_thermal - r_IS| (negative: particles far from their IS position move more).
* **A thermometer.** For the temperature head: T read off each test configuration's thermal potential energy per
  particle (``energy_thermal``) by a straight line fitted on the train split of the training temperatures (least
  squares; needs two or more of them): what one configuration's energy, a function of the thermal distances the
  network sees, tells of its temperature.

Everything is per test configuration, so a mean and its standard error over configurations (std with ddof 1 over
sqrt(n); NaN with fewer than 2) are reported. ``ceiling_rows`` gives the table the report shows
(tbotan.analysis.numbers.ceiling_numbers); benchmarks/experiments/signal_ceiling.py prints it with more baselines.
"""

from __future__ import annotations

import numpy as np

from .. import core
from ..core import minimum_image
from ..data import targets
from ..data.store import group_name, tau_alpha_index, temperatures

EPS = np.array([[1.0, 1.5], [1.5, 0.5]])  # KA epsilon_ab
SIG = np.array([[1.0, 0.8], [0.8, 0.88]])  # KA sigma_ab
SHELLS = np.arange(0.7, 3.01, 0.2)  # radial shells for the structure functions
PENALTIES = tuple(10.0**k for k in range(-3, 6))  # the ridge penalties tried on the validation split
TRAIN, VALIDATION, TEST = 0, 1, 2  # the store's split codes


# --- small statistics ------------------------------------------------------------------------------------------
def pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson coefficient of x and y where both are finite (NaN below 3 points or without spread)."""
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 3 or np.std(x[ok]) == 0 or np.std(y[ok]) == 0:
        return float("nan")
    return float(np.corrcoef(x[ok], y[ok])[0, 1])


def mean_sem(values) -> tuple[float, float]:
    """(mean, standard error of the mean) of the finite values: std with ddof 1 over sqrt(n); NaN where n < 2."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if not len(v):
        return float("nan"), float("nan")
    return float(v.mean()), float(v.std(ddof=1) / np.sqrt(len(v))) if len(v) > 1 else float("nan")


def spearman_brown(r: float, factor: float = 2.0) -> float:
    """The reliability of an average over ``factor`` times as many runs as the halves: n r / (1 + (n - 1) r)."""
    return float(factor * r / (1 + (factor - 1) * r))


# --- neighbours and targets, torch-free --------------------------------------------------------------------------


def neighbour_pairs(positions: np.ndarray, box: float, cutoff: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every ordered pair (i, j), i != j, within ``cutoff`` < box / 2 (minimum image), sorted by (i, j), and its
    distance: tbotan.data.targets.neighbour_pairs from SciPy's periodic k-d tree."""
    from scipy.spatial import cKDTree

    if cutoff >= box / 2:
        raise ValueError(f"cutoff {cutoff:g} is not below half the box ({box:g}): the minimum image is not unique")
    x = core.wrap(np.asarray(positions, dtype=np.float64), box) % box  # cKDTree wants [0, L) strictly
    pairs = cKDTree(x, boxsize=box).query_pairs(cutoff, output_type="ndarray").astype(np.int64)
    i, j = np.r_[pairs[:, 0], pairs[:, 1]], np.r_[pairs[:, 1], pairs[:, 0]]
    order = np.lexsort((j, i))
    i, j = i[order], j[order]
    return i, j, np.linalg.norm(minimum_image(x[j] - x[i], box), axis=1)


def _target(name: str, types, thermal, frames, box) -> np.ndarray:
    """The target ``name`` ("cb" or "propensity") of one ensemble ``frames`` (K', n_t, N, 3): shape (n_t, N)."""
    if name == "cb":
        return targets.bond_breaking(types, thermal, frames, box, pairs=neighbour_pairs)
    if name == "propensity":
        return targets.propensity(thermal, frames)
    raise ValueError(f"no split-half for target {name!r} (cb or propensity)")


# --- split-half reliability ------------------------------------------------------------------------------------
def halves(g, c: int, target: str = "cb") -> tuple[np.ndarray, np.ndarray]:
    """The target of configuration ``c`` of the temperature group ``g`` recomputed from the first and from the last
    floor(K / 2) of its runs, at the observation time at tau_alpha: two arrays of shape (N,).

    ``replica_positions`` is (configuration, replica, time, particle, xyz); only the time at tau_alpha is read."""
    i_t = tau_alpha_index(g.attrs.get("times_tau"))
    k = g["replica_positions"].shape[1]
    h = k // 2
    if h < 1:
        raise ValueError(f"{k} replica(s): no split half")
    frames = g["replica_positions"][c, :, i_t].astype(np.float64)[:, None]  # (K, 1, N, 3)
    types, thermal, box = g["types"][c], g["thermal"][c], float(g.attrs["L"])
    return _target(target, types, thermal, frames[:h], box)[0], _target(target, types, thermal, frames[k - h :], box)[0]


def split_configurations(g, split: int = TEST) -> np.ndarray:
    """The done configurations of one split (default the test split, 2) of a temperature group."""
    return np.flatnonzero(g["done"][:] & (g["split"][:] == split))


def split_half(g, configurations=None, target: str = "cb") -> dict:
    """Split-half reliability of the stored target of one temperature group over ``configurations`` (default:
    its done test configurations).

    Returns {"replicas": K, "split_half_r_each": [r per configuration], "split_half_r", "split_half_r_sem",
    "reliability" (Spearman–Brown R from the mean r), "reliability_sem", "ceiling_rho" (sqrt(R), 0 where R <= 0),
    "ceiling_rho_sem"}; the sems are the standard error of the mean r over configurations carried through R(r)
    and sqrt(R(r)) to first order (delta method). With fewer than 2 replicas every number is NaN."""
    cs = split_configurations(g) if configurations is None else np.asarray(configurations, dtype=int)
    k = int(g["replica_positions"].shape[1])
    nan = float("nan")
    out = {"replicas": k, "split_half_r_each": [], "split_half_r": nan, "split_half_r_sem": nan}
    out |= {"reliability": nan, "reliability_sem": nan, "ceiling_rho": nan, "ceiling_rho_sem": nan}
    if k < 2 or not len(cs):
        return out
    a_each = []
    for c in cs:
        first, second = halves(g, int(c), target)
        a = g["types"][int(c)] == 0
        a_each.append(pearson(first[a], second[a]))
    r, r_sem = mean_sem(a_each)
    n = k / (k // 2)
    R = spearman_brown(r, n)
    dR = n / (1 + (n - 1) * r) ** 2  # dR/dr
    ceiling = float(np.sqrt(max(R, 0.0)))
    out |= {"split_half_r_each": a_each, "split_half_r": r, "split_half_r_sem": r_sem}
    out |= {"reliability": R, "reliability_sem": r_sem * dR, "ceiling_rho": ceiling}
    out["ceiling_rho_sem"] = r_sem * dR / (2 * ceiling) if ceiling > 0 else nan
    return out


# --- descriptors -----------------------------------------------------------------------------------------------
def pair_energy(types: np.ndarray, x: np.ndarray, box: float) -> np.ndarray:
    """Per-particle potential energy (half of each pair to each particle) of the shifted-force KA LJ, rc = 2.5
    sigma_ab (docs/method.md §1): its sum is the configuration's potential energy."""
    i, j, d = neighbour_pairs(x, box, 2.5)  # both directions
    s, e = SIG[types[i], types[j]], EPS[types[i], types[j]]
    rc = 2.5 * s
    keep = d < rc
    i, d, s, e, rc = i[keep], d[keep], s[keep], e[keep], rc[keep]

    def u(r):
        return 4 * e * ((s / r) ** 12 - (s / r) ** 6)

    def du(r):
        return 4 * e * (-12 * s**12 / r**13 + 6 * s**6 / r**7)

    return 0.5 * np.bincount(i, u(d) - u(rc) - (d - rc) * du(rc), len(types))


def is_distance(thermal: np.ndarray, inherent: np.ndarray, box: float) -> np.ndarray:
    """Each particle's minimum-image distance from its inherent-structure position, |r_thermal - r_IS|."""
    return np.linalg.norm(minimum_image(thermal - inherent, box), axis=1)


def descriptors(types, thermal, inherent, box) -> np.ndarray:
    """(N, F) per-particle structural descriptors, none of them learned: radial structure functions (counts of A
    and of B neighbours per shell ``SHELLS``, Schoenholz et al. 2016's G) in the IS and in the thermal structure,
    the particle's distance from its IS position and its energies in both, and the averages of those three over
    the particles within 2.0 sigma in the IS (local averages carry more of the dynamics than the particle's own
    values), and the species."""
    types = np.asarray(types)
    n = len(types)
    cols = []
    for x in (inherent, thermal):
        i, j, d = neighbour_pairs(x, box, min(SHELLS[-1], box / 2 - 1e-9))  # a small box: its outer shells part-filled
        shell = np.digitize(d, SHELLS) - 1
        for s in (0, 1):
            keep = (types[j] == s) & (shell >= 0) & (shell < len(SHELLS) - 1)
            counts = np.zeros((n, len(SHELLS) - 1))
            np.add.at(counts, (i[keep], shell[keep]), 1.0)
            cols.append(counts)
    own = np.stack(
        [is_distance(thermal, inherent, box), pair_energy(types, inherent, box), pair_energy(types, thermal, box)],
        axis=1,
    )
    i, j, _ = neighbour_pairs(inherent, box, 2.0)
    local = np.zeros_like(own)
    np.add.at(local, i, own[j])
    local /= np.maximum(np.bincount(i, minlength=n), 1)[:, None]
    return np.concatenate([*cols, own, local, types[:, None].astype(float)], axis=1)


# --- ridge regression ------------------------------------------------------------------------------------------
def fit_ridge(x: np.ndarray, y: np.ndarray, penalty: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Ridge regression of y on the standardised columns of x with an unpenalised intercept: (keep, mu, sd, w)
    with the prediction ((x[:, keep] - mu) / sd, 1) @ w, where w minimises |A w - y|^2 + penalty |w[:-1]|^2.
    Columns constant on x are dropped (``keep``): nothing can be learned from them, and a value another set gives
    them would be divided by a zero spread."""
    sd = x.std(0)
    keep = sd > 1e-12 * np.maximum(1.0, np.abs(x.mean(0)))
    x = x[:, keep]
    mu, sd = x.mean(0), sd[keep]
    a = np.c_[(x - mu) / sd, np.ones(len(x))]
    w = np.linalg.solve(a.T @ a + penalty * np.diag([1.0] * x.shape[1] + [0.0]), a.T @ y)
    return keep, mu, sd, w


def predict_ridge(fit: tuple, x: np.ndarray) -> np.ndarray:
    """The prediction of a ``fit_ridge`` fit on the rows of x."""
    keep, mu, sd, w = fit
    return np.c_[(x[:, keep] - mu) / sd, np.ones(len(x))] @ w


def _rows(g, split: int, target: str, configurations=None) -> tuple[list[int], list[np.ndarray], list[np.ndarray]]:
    """(configurations, descriptors of their A particles, target of their A particles at tau_alpha's time)."""
    cs = split_configurations(g, split) if configurations is None else np.asarray(configurations, dtype=int)
    i_t = tau_alpha_index(g.attrs.get("times_tau"))
    box = float(g.attrs["L"])
    xs, ys = [], []
    for c in cs:
        types = g["types"][c]
        a = types == 0
        xs.append(descriptors(types, g["thermal"][c], g["inherent"][c], box)[a])
        ys.append(g[target][c, i_t][a])
    return [int(c) for c in cs], xs, ys


def descriptor_regression(root, train_temperatures, target: str = "cb", configurations: dict | None = None) -> dict:
    """The ridge regression of ``target`` (at tau_alpha's time) on ``descriptors`` over A particles: fitted on the
    train split of ``train_temperatures``, the penalty of ``PENALTIES`` with the highest mean Pearson on their
    validation split (the first where there is no validation configuration), read on the test configurations of
    every temperature (or ``configurations[T]`` where given).

    Returns {"penalty", "features", "features_used" (those not constant on the train set), "train_particles",
    "validation_rho" ({penalty: mean Pearson on the validation split}), "T": {T: {"configurations": [...],
    "rho_each": [Pearson per configuration]}}}; None where the train split of the training temperatures is empty.
    """
    train = [_rows(root[group_name(T)], TRAIN, target) for T in train_temperatures]
    xs = [v for _, x, _ in train for v in x]
    if not xs:
        return None
    x = np.concatenate(xs)
    y = np.concatenate([v for _, _, ys in train for v in ys])
    ok = np.isfinite(y) & np.isfinite(x).all(axis=1)
    x, y = x[ok], y[ok]
    val = []
    for T in train_temperatures:
        _, vxs, vys = _rows(root[group_name(T)], VALIDATION, target)
        val += list(zip(vxs, vys))

    def score(fit):
        return float(np.nanmean([pearson(predict_ridge(fit, vx), vy) for vx, vy in val]))

    scores = {p: score(fit_ridge(x, y, p)) for p in PENALTIES} if val else {}
    penalty = max(PENALTIES, key=lambda p: -np.inf if np.isnan(scores[p]) else scores[p]) if val else PENALTIES[0]
    fit = fit_ridge(x, y, penalty)
    out = {
        "penalty": penalty,
        "features": int(x.shape[1]),
        "features_used": int(fit[0].sum()),
        "train_particles": int(len(y)),
        "validation_rho": scores,
        "T": {},
    }
    for T in temperatures(root):
        cs = None if configurations is None else configurations.get(T)
        used, txs, tys = _rows(root[group_name(T)], TEST, target, cs)
        rho_each = [pearson(predict_ridge(fit, v), t) for v, t in zip(txs, tys)]
        out["T"][T] = {"configurations": used, "rho_each": rho_each}
    return out


# --- the table -------------------------------------------------------------------------------------------------
def is_distance_rho(g, configurations, target: str = "cb") -> list[float]:
    """Pearson over A of the target at tau_alpha's time with |r_thermal - r_IS|, per configuration."""
    i_t = tau_alpha_index(g.attrs.get("times_tau"))
    box = float(g.attrs["L"])
    out = []
    for c in configurations:
        a = g["types"][c] == 0
        out.append(pearson(is_distance(g["thermal"][c], g["inherent"][c], box)[a], g[target][c, i_t][a]))
    return out


def energy_thermometer(root, train_temperatures, configurations: dict | None = None) -> dict[float, list[float]]:
    """Per temperature of the store, T of each test configuration (or of ``configurations[T]``) from the straight
    line T = a U/N + b fitted on the train split of ``train_temperatures``; {} where fewer than two of them have
    train configurations with an energy (or the store has no ``energy_thermal``)."""
    if any("energy_thermal" not in root[group_name(T)] for T in temperatures(root)):
        return {}
    x, y = [], []
    for T in train_temperatures:
        g = root[group_name(T)]
        e = g["energy_thermal"][:][split_configurations(g, TRAIN)]
        e = e[np.isfinite(e)]
        x.append(e)
        y.append(np.full(len(e), float(T)))
    if sum(len(e) > 0 for e in x) < 2:
        return {}
    slope, intercept = np.polyfit(np.concatenate(x), np.concatenate(y), 1)
    out = {}
    for T in temperatures(root):
        g = root[group_name(T)]
        cs = split_configurations(g) if (configurations or {}).get(T) is None else np.asarray(configurations[T])
        out[T] = [float(slope * e + intercept) for e in g["energy_thermal"][:][np.asarray(cs, dtype=int)]]
    return out


def ceiling_rows(root, train_temperatures=None, target: str = "cb", configurations: dict | None = None) -> list[dict]:
    """Per temperature of the store, on its test configurations (or ``configurations[T]``): the split-half
    reliability and ceiling of the stored ``target`` at tau_alpha's time (``split_half``), the descriptor ridge
    regression (``descriptor_regression``) and the single descriptor |r_thermal - r_IS| (``is_distance_rho``).

    Each row: T, trained, time (tau_alpha's, in units of tau_alpha), target, test_configurations,
    configurations (their indices), replicas, split_half_r, split_half_r_sem, reliability, reliability_sem,
    ceiling_rho, ceiling_rho_sem, descriptor_rho, descriptor_rho_sem, descriptor_penalty, is_distance_rho,
    is_distance_rho_sem, energy_T, energy_T_sem (the thermometer's, ``energy_thermometer``) (means and standard
    errors over the configurations; NaN where not defined)."""
    spec = root.attrs.get("spec") or {}
    if train_temperatures is None:
        train_temperatures = spec.get("training", {}).get("temperatures") or temperatures(root)
    trained = [float(t) for t in train_temperatures]
    ridge = descriptor_regression(root, trained, target, configurations)
    thermometer = energy_thermometer(root, trained, configurations)
    rows = []
    for T in temperatures(root):
        g = root[group_name(T)]
        cs = split_configurations(g) if (configurations or {}).get(T) is None else np.asarray(configurations[T])
        cs = [int(c) for c in cs]
        half = split_half(g, cs, target)
        descriptor = mean_sem(ridge["T"][T]["rho_each"]) if ridge else (float("nan"), float("nan"))
        distance = mean_sem(is_distance_rho(g, cs, target))
        energy_t = mean_sem(thermometer.get(T, []))
        times = g.attrs.get("times_tau") or [1.0]
        rows.append(
            {
                "T": T,
                "trained": any(abs(T - t) < 1e-9 for t in trained),
                "time": float(times[tau_alpha_index(times)]),
                "target": target,
                "test_configurations": len(cs),
                "configurations": cs,
                "replicas": half["replicas"],
                "split_half_r": half["split_half_r"],
                "split_half_r_sem": half["split_half_r_sem"],
                "reliability": half["reliability"],
                "reliability_sem": half["reliability_sem"],
                "ceiling_rho": half["ceiling_rho"],
                "ceiling_rho_sem": half["ceiling_rho_sem"],
                "descriptor_rho": descriptor[0],
                "descriptor_rho_sem": descriptor[1],
                "descriptor_penalty": ridge["penalty"] if ridge else None,
                "is_distance_rho": distance[0],
                "is_distance_rho_sem": distance[1],
                "energy_T": energy_t[0],
                "energy_T_sem": energy_t[1],
            }
        )
    return rows

"""The numbers behind each figure of the report, computed from a run's predictions (tbotan.analysis.results), the
store's MD groups and the training histories; no drawing here (tbotan.analysis.figures draws them).

Averages follow the paper: a number per test configuration (Pearson rho, T_pred, S_B(q), u), averaged over
configurations for each seed; the value shown is the mean over seeds and the error bar the standard deviation
over seeds (with a single seed, over configurations; ``stat``). S_B(q) of MD is the same for every seed.

Besides that spread, the headline numbers carry their two error bars apart (``spread``): ``<x>_over_seeds``, the
std over seeds of the per-seed means (NaN with one seed: the training's spread), and ``<x>_sem``, the standard
error over the test configurations of the per-configuration mean over seeds (NaN with one configuration: the
spread of this data draw's configurations). Neither is the spread over data draws (other configurations and
replicas from another spec seed).

Each function returns a ``Numbers``: ``values`` is what ``<stem>.json`` holds beside its provenance, ``rows``
what ``<stem>.csv`` holds, ``plot`` what only the drawing needs (the training temperatures, a box length, a
colour range; never written). ``key_numbers`` builds the headline table from them.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

from ..data.runs import TERMS
from ..data.store import group_name, tau_alpha_index
from . import fourpoint
from .ceiling import mean_sem
from .embedding import embedding_health


@dataclass
class Numbers:
    """The numbers behind one figure: ``values`` (-> <stem>.json), ``rows`` (-> <stem>.csv) and ``plot``, what
    the drawing needs besides them (not written)."""

    values: dict
    rows: list[dict]
    plot: dict = field(default_factory=dict)


def stat(per_seed: list[np.ndarray]) -> tuple[float, float]:
    """Mean over seeds of the per-seed mean, and the spread: std over seeds (one seed: over configurations)."""
    with warnings.catch_warnings():  # all-NaN values (no edge targets, say) give NaN without a word, as in spread
        warnings.simplefilter("ignore", RuntimeWarning)
        means = np.array([np.nanmean(x) for x in per_seed])
        if len(per_seed) > 1:
            return float(np.mean(means)), float(np.std(means))
        return float(means[0]), float(np.nanstd(per_seed[0]))


def spread(per_seed: list[np.ndarray]) -> tuple[float, float]:
    """(std over seeds of the per-seed means, NaN with one seed; standard error over the test configurations of
    the per-configuration mean over seeds). Every seed's array holds the same configurations in the same order."""
    with warnings.catch_warnings():  # all-NaN values (no edge targets, say) give NaN without a word
        warnings.simplefilter("ignore", RuntimeWarning)
        means = [np.nanmean(x) for x in per_seed]
        per_configuration = np.nanmean(np.stack([np.asarray(x, dtype=float) for x in per_seed]), axis=0)
    over_seeds = float(np.std(means)) if len(per_seed) > 1 else float("nan")
    return over_seeds, mean_sem(per_configuration)[1]


def pearson_a(pred: np.ndarray, md: np.ndarray, types: np.ndarray) -> float:
    """Pearson coefficient of ``pred`` and ``md`` over the A particles where both are finite (NaN below 3)."""
    a = (types == 0) & np.isfinite(pred) & np.isfinite(md)
    return float(np.corrcoef(pred[a], md[a])[0, 1]) if a.sum() > 2 else float("nan")


def pearson_numbers(res: dict, trained: list[float]) -> Numbers:
    """Per T: node (A, all) and edge (A-A, all) Pearson coefficients, mean and spread over seeds (paper Fig. 7)."""
    seeds = sorted(res)
    temps = sorted(res[seeds[0]]["T"])
    rows = []
    for T in temps:
        row = {
            "T": T,
            "trained": T in trained,
            "seeds": len(seeds),
            "test_configurations": len(res[seeds[0]]["T"][T]["configurations"]),
        }
        for key in ("pearson_node_A", "pearson_node_all", "pearson_edge_all", "pearson_edge_AA"):
            row[key], row[key + "_std"] = stat([res[s]["T"][T][key] for s in seeds])
        for key in ("pearson_node_A", "pearson_edge_AA"):  # the headline's: both error bars apart
            row[key + "_over_seeds"], row[key + "_sem"] = spread([res[s]["T"][T][key] for s in seeds])
        rows.append(row)
    return Numbers({"rows": rows}, rows, {"trained": trained})


def _xi_sem(curves: np.ndarray, q: np.ndarray, q_fit_max: float, xi_max: float) -> float:
    """Jackknife standard error over configurations of the OZ xi fitted to the mean of ``curves`` (one S_B(q) per
    configuration): the fit repeated with each configuration left out; NaN below 2 configurations or where a
    fit gives no xi."""
    n = len(curves)
    if n < 2:
        return float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        xis = np.array(
            [
                fourpoint.ornstein_zernike(q, np.nanmean(np.delete(curves, i, axis=0), axis=0), q_fit_max, xi_max)["xi"]
                for i in range(n)
            ]
        )
    if not np.isfinite(xis).all():
        return float("nan")
    return float(np.sqrt((n - 1) / n * np.sum((xis - xis.mean()) ** 2)))


def sb_numbers(res: dict, trained: list[float], q_fit_max: float) -> tuple[Numbers, Numbers]:
    """S_B(q, tau_alpha) of MD and prediction per T with their Ornstein-Zernike fits S0 / (1 + (q xi)^2) up to
    ``q_fit_max`` (paper Figs. 3, 9), and the correlation lengths xi_4 of those fits (xi at most pi / q_1, about
    L/2: a longer one is not resolved by the box)."""
    seeds = sorted(res)
    temps = sorted(res[seeds[0]]["T"])
    fits, curves, rows = {}, {}, []
    for T in temps:
        first = res[seeds[0]]["T"][T]
        q = first["sb_q"]
        md = np.nanmean(first["sb_md"], axis=0)
        per_seed = np.array([np.nanmean(res[s]["T"][T]["sb_pred"], axis=0) for s in seeds])
        pred = per_seed.mean(axis=0)
        pred_err = per_seed.std(axis=0) if len(seeds) > 1 else np.nanstd(first["sb_pred"], axis=0)
        md_err = np.nanstd(first["sb_md"], axis=0) / np.sqrt(len(first["sb_md"]))
        xi_max = np.pi / q[0]  # about L/2: a longer length is not resolved by this box
        fit_md = fourpoint.ornstein_zernike(q, md, q_fit_max, xi_max=xi_max)
        fit_pred = fourpoint.ornstein_zernike(q, pred, q_fit_max, xi_max=xi_max)
        per_seed_xi = [fourpoint.ornstein_zernike(q, c, q_fit_max, xi_max=xi_max)["xi"] for c in per_seed]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            pred_each = np.nanmean(np.stack([res[s]["T"][T]["sb_pred"] for s in seeds]), axis=0)
        fit_md["over_seeds"] = float("nan")  # MD: the same for every seed
        fit_md["sem"] = _xi_sem(first["sb_md"], q, q_fit_max, xi_max)
        fit_pred["over_seeds"] = float(np.std(per_seed_xi)) if len(seeds) > 1 else float("nan")
        fit_pred["sem"] = _xi_sem(pred_each, q, q_fit_max, xi_max)
        fits[T] = {"md": fit_md, "prediction": fit_pred}
        curves[T] = {"q": q, "md": md, "md_err": md_err, "prediction": pred, "prediction_err": pred_err}
        for i in range(len(q)):
            rows.append(
                {
                    "T": T,
                    "q": q[i],
                    "S_B_md": md[i],
                    "S_B_md_err": md_err[i],
                    "S_B_pred": pred[i],
                    "S_B_pred_err": pred_err[i],
                }
            )
    xi_rows = [
        {
            "T": T,
            "trained": T in trained,
            "xi4_md": fits[T]["md"]["xi"],
            "xi4_md_note": fits[T]["md"].get("reason", ""),
            "xi4_pred_note": fits[T]["prediction"].get("reason", ""),
            "xi4_md_err": fits[T]["md"]["xi_err"],
            "xi4_pred": fits[T]["prediction"]["xi"],
            "xi4_pred_err": fits[T]["prediction"]["xi_err"],
            "xi4_md_sem": fits[T]["md"]["sem"],
            "xi4_pred_over_seeds": fits[T]["prediction"]["over_seeds"],
            "xi4_pred_sem": fits[T]["prediction"]["sem"],
            "fit_q_min": fits[T]["md"]["q_min"],
            "fit_q_max": fits[T]["md"]["q_max"],
            "fit_points": fits[T]["md"]["points"],
        }
        for T in temps
    ]
    sb = Numbers({"q_fit_max": q_fit_max, "curves": curves, "fits": fits}, rows, {"trained": trained})
    xi = Numbers({"q_fit_max": q_fit_max, "rows": xi_rows}, xi_rows, {"trained": trained})
    return sb, xi


def temperature_numbers(res: dict, trained: list[float]) -> tuple[Numbers, Numbers]:
    """The temperature inferred from structure per T (mean and std over configurations and seeds, paper Fig. 4),
    and the distribution P(T_pred / T_MD) per T on shared bins, normalised to integral 1 (paper Eq. B1, Fig. 10)."""
    seeds = sorted(res)
    temps = sorted(res[seeds[0]]["T"])
    rows, ratios = [], {}
    for T in temps:
        allp = np.concatenate([res[s]["T"][T]["t_pred"] for s in seeds])
        per_seed_mean, per_seed_std = stat([res[s]["T"][T]["t_pred"] for s in seeds])
        over_seeds, t_sem = spread([res[s]["T"][T]["t_pred"] for s in seeds])
        ratios[T] = allp / T
        rows.append(
            {
                "T_MD": T,
                "trained": T in trained,
                "T_pred": float(allp.mean()),
                "T_pred_std_samples": float(allp.std()),
                "T_pred_std_seeds": per_seed_std,
                "T_pred_over_seeds": over_seeds,
                "T_pred_sem": t_sem,
                "samples": len(allp),
            }
        )
    every = np.concatenate(list(ratios.values()))
    edges = np.linspace(min(0.5, every.min()), max(1.5, every.max()), 41)
    hist_rows = []
    for T in temps:
        p, _ = np.histogram(ratios[T], bins=edges, density=True)  # integral over T_pred/T_MD = 1 (paper Eq. B1)
        centres = 0.5 * (edges[1:] + edges[:-1])
        hist_rows += [{"T": T, "ratio": c, "P": v} for c, v in zip(centres, p)]
    ratio = Numbers({"bin_edges": edges, "rows": hist_rows}, hist_rows, {"trained": trained})
    return Numbers({"rows": rows}, rows), ratio


def distance_numbers(res: dict, trained: list[float]) -> Numbers:
    """D(T_i, T_j) = |<u(T_i)> - <u(T_j)>|, the distances between the mean global embeddings over every test
    configuration of every seed (paper Fig. 5), and the embedding's health per seed (tbotan.analysis.embedding)."""
    seeds = sorted(res)
    temps = sorted(res[seeds[0]]["T"])
    mean_u = np.array([np.concatenate([res[s]["T"][T]["u"] for s in seeds]).mean(axis=0) for T in temps])
    D = np.linalg.norm(mean_u[:, None] - mean_u[None], axis=-1)
    rows = [{"T_i": a, "T_j": b, "D": D[i, j]} for i, a in enumerate(temps) for j, b in enumerate(temps)]
    values = {"temperatures": temps, "D": D, "mean_u": mean_u, "seeds": embedding_health(res)}
    return Numbers(values, rows, {"trained": trained})


def maps_numbers(root, res: dict, trained: list[float], slab: list[float]) -> Numbers:
    """C_B(tau_alpha) of MD and of the prediction for the particles in the slab slab[0] L <= z < slab[1] L of the
    first test configuration of the first seed, per T (paper Figs. 2, 8); the colour range is MD's 5-95 %."""
    s0 = sorted(res)[0]
    temps = sorted(res[s0]["T"])
    rows, used, panels = [], {}, {}
    for T in temps:
        pr = res[s0]["T"][T]
        c = int(pr["configurations"][0])
        g = root[group_name(T)]
        L = float(g.attrs["L"])
        pos, types, md = g["thermal"][c], g["types"][c], g["cb"][c, 0]
        pred = pr["node"][0]
        lo, hi = slab[0] * L, slab[1] * L
        sel = (pos[:, 2] >= lo) & (pos[:, 2] < hi)
        vmin, vmax = (float(v) for v in np.percentile(md, [5, 95]))  # MD's range, the same for both rows
        used[T] = {"configuration": c, "seed": s0, "z_range": [lo, hi], "particles": int(sel.sum())}
        panels[T] = {"L": L, "vmin": vmin, "vmax": vmax, "x": pos[sel, 0], "y": pos[sel, 1], "types": types[sel]}
        panels[T] |= {"md": md[sel], "pred": pred[sel]}
        rows += [
            {
                "T": T,
                "configuration": c,
                "particle": int(j),
                "type": int(types[j]),
                "x": pos[j, 0],
                "y": pos[j, 1],
                "z": pos[j, 2],
                "cb_md": md[j],
                "cb_pred": pred[j],
            }
            for j in np.flatnonzero(sel)
        ]
    return Numbers({"maps": used}, rows, {"trained": trained, "slab": slab, "seed": s0, "panels": panels})


def loss_numbers(histories: dict[int, list[dict]], name: str, switch_epoch: int) -> Numbers:
    """One row per seed and epoch of a run's training history (tbotan.analysis.results.read_histories): the
    training total and the validation objective, and each loss term ``TERMS`` on both (paper Fig. 6)."""
    rows = []
    for s, hist in histories.items():
        rows += [
            {
                "seed": s,
                "epoch": h["epoch"],
                "train_total": h["train"]["total"],
                "validation_objective": h["validation"]["objective"],
                **{f"train_{t}": h["train"][t] for t in TERMS},
                **{f"validation_{t}": h["validation"][t] for t in TERMS},
            }
            for h in hist
        ]
    return Numbers({"switch_epoch": switch_epoch}, rows, {"name": name, "seeds": list(histories)})


def comparison_numbers(results: dict, names: list[str], trained: list[float], title: str) -> Numbers:
    """Node Pearson (A) and T_pred per T for several runs side by side: variants or lambda_g values (Figs. 12-15)."""
    rows = []
    for name in names:
        res = results[name]
        seeds = sorted(res)
        for T in sorted(res[seeds[0]]["T"]):
            rho, rho_err = stat([res[s]["T"][T]["pearson_node_A"] for s in seeds])
            tp = np.concatenate([res[s]["T"][T]["t_pred"] for s in seeds])
            rows.append(
                {
                    "variant": name,
                    "T": T,
                    "trained": T in trained,
                    "pearson_node_A": rho,
                    "pearson_node_A_std": rho_err,
                    "T_pred": float(tp.mean()),
                    "T_pred_std": float(tp.std()),
                    "seeds": len(seeds),
                }
            )
    return Numbers({"rows": rows}, rows, {"trained": trained, "names": names, "title": title})


def published_numbers(root, res: dict, name: str, spec) -> Numbers:
    """T-BOTAN beside every published model on the same test configurations (docs/method.md §8.1): per temperature,
    time, model and MD target, the Pearson coefficient over A particles, per configuration then averaged."""
    rows = []
    for model, mg in sorted(root["published"].groups()):
        for _, pg in sorted(mg.groups()):
            T = float(pg.attrs["T"])
            g = root[group_name(T)]
            cs, node = pg["configurations"][:], pg["node"][:]
            for i_t, time in enumerate(g.attrs["times"]):
                if not np.isfinite(node[:, i_t]).any():
                    continue
                for target in ("propensity", "cb"):
                    rho = [pearson_a(node[k, i_t], g[target][c, i_t], g["types"][c]) for k, c in enumerate(cs)]
                    rows.append(
                        {
                            "T": T,
                            "time": time,
                            "model": model,
                            "target": target,
                            "pearson_A": float(np.nanmean(rho)),
                            "configurations": len(cs),
                        }
                    )
    for T in sorted(res[sorted(res)[0]]["T"]):
        g = root[group_name(T)]
        i_t = tau_alpha_index(g.attrs.get("times_tau"))
        per_seed = [float(np.nanmean(res[s]["T"][T]["pearson_node_A"])) for s in sorted(res)]
        rows.append(
            {
                "T": T,
                "time": g.attrs["times"][i_t],
                "model": f"T-BOTAN/{name}",
                "target": spec.training.target,
                "pearson_A": float(np.mean(per_seed)),
                "configurations": len(res[sorted(res)[0]]["T"][T]["configurations"]),
            }
        )
    return Numbers({"rows": rows}, rows, {"name": name, "target": spec.training.target})


def key_numbers(pearson_rows, xi_rows, t_rows, alpha=None) -> list[dict]:
    """Per T: the headline numbers, and F_s^A(7.25) of the MD ensembles at the time called tau_alpha (with
    ``fs_ok`` false outside tbotan.data.store.FS_ALPHA_BAND: then the target is not C_B at the alpha time).

    Args:
        pearson_rows: ``pearson_numbers(...).rows``.
        xi_rows: the rows of the second result of ``sb_numbers``.
        t_rows: the rows of the first result of ``temperature_numbers``.
        alpha: {T: tbotan.data.store.alpha_time_check of its group}; None or a missing T: no F_s check.
    """
    alpha = alpha or {}
    xi = {r["T"]: r for r in xi_rows}
    tp = {r["T_MD"]: r for r in t_rows}
    return [
        {
            "T": r["T"],
            "trained": r["trained"],
            "test_configurations": r["test_configurations"],
            "pearson_node_A": r["pearson_node_A"],
            "pearson_node_A_std": r["pearson_node_A_std"],
            "pearson_node_A_over_seeds": r.get("pearson_node_A_over_seeds"),
            "pearson_node_A_sem": r.get("pearson_node_A_sem"),
            "pearson_edge_AA": r["pearson_edge_AA"],
            "pearson_edge_AA_over_seeds": r.get("pearson_edge_AA_over_seeds"),
            "pearson_edge_AA_sem": r.get("pearson_edge_AA_sem"),
            "T_pred": tp[r["T"]]["T_pred"],
            "T_pred_std": tp[r["T"]]["T_pred_std_samples"],
            "T_pred_over_seeds": tp[r["T"]].get("T_pred_over_seeds"),
            "T_pred_sem": tp[r["T"]].get("T_pred_sem"),
            "xi4_md": xi[r["T"]]["xi4_md"],
            "xi4_md_sem": xi[r["T"]].get("xi4_md_sem"),
            "xi4_pred": xi[r["T"]]["xi4_pred"],
            "xi4_pred_over_seeds": xi[r["T"]].get("xi4_pred_over_seeds"),
            "xi4_pred_sem": xi[r["T"]].get("xi4_pred_sem"),
            "fs_at_tau": (alpha.get(r["T"]) or {}).get("fs_at_tau"),
            "fs_sem": _fs_sem(alpha.get(r["T"])),
            "fs_ok": (alpha.get(r["T"]) or {}).get("ok"),
        }
        for r in pearson_rows
    ]


def _fs_sem(check: dict | None) -> float | None:
    """Standard error of F_s^A at tau_alpha over the done configurations (tbotan.data.store.alpha_time_check)."""
    if not check or "fs_std" not in check:
        return None
    n = check["configurations"]
    return float(check["fs_std"] * np.sqrt(n / (n - 1)) / np.sqrt(n)) if n > 1 else float("nan")


def ceiling_numbers(res: dict, ceiling_rows: list[dict], trained: list[float]) -> Numbers:
    """Per T, what the network reaches beside what the data allow, on the same test configurations: the network's
    node rho_A (mean over seeds, std over seeds, standard error over configurations), the descriptor ridge
    regression's and |r_thermal - r_IS|'s rho_A, and the split-half reliability R of the stored target with the
    ceiling sqrt(R) (tbotan.analysis.ceiling.ceiling_rows, computed from the store alone), and the network's
    fraction of the ceiling; and the network's T_pred beside the thermal-energy thermometer's T. ``values`` also
    holds the configurations of each T and whether the network's are the ceiling's."""
    seeds = sorted(res)
    ceil = {r["T"]: r for r in ceiling_rows}
    rows, used = [], {}
    for T in sorted(res[seeds[0]]["T"]):
        if T not in ceil:
            continue
        per_seed = [res[s]["T"][T]["pearson_node_A"] for s in seeds]
        mine = [int(c) for c in res[seeds[0]]["T"][T]["configurations"]]
        c = ceil[T]
        net = stat(per_seed)[0]
        over_seeds, net_sem = spread(per_seed)
        t_pred = [res[s]["T"][T]["t_pred"] for s in seeds]
        t_over_seeds, t_sem = spread(t_pred)
        used[f"{T:g}"] = c["configurations"]
        rows.append(
            {
                "T": T,
                "trained": T in trained,
                "test_configurations": c["test_configurations"],
                "same_configurations": sorted(mine) == sorted(c["configurations"]),
                "seeds": len(seeds),
                "replicas": c["replicas"],
                "target": c["target"],
                "network_rho_A": net,
                "network_rho_A_over_seeds": over_seeds,
                "network_rho_A_sem": net_sem,
                "descriptor_rho_A": c["descriptor_rho"],
                "descriptor_rho_A_sem": c["descriptor_rho_sem"],
                "is_distance_rho_A": c["is_distance_rho"],
                "is_distance_rho_A_sem": c["is_distance_rho_sem"],
                "split_half_r": c["split_half_r"],
                "split_half_r_sem": c["split_half_r_sem"],
                "reliability": c["reliability"],
                "reliability_sem": c["reliability_sem"],
                "ceiling_rho": c["ceiling_rho"],
                "ceiling_rho_sem": c["ceiling_rho_sem"],
                "fraction_of_ceiling": net / c["ceiling_rho"] if c["ceiling_rho"] > 0 else float("nan"),
                "descriptor_penalty": c["descriptor_penalty"],
                "network_T_pred": stat(t_pred)[0],
                "network_T_pred_over_seeds": t_over_seeds,
                "network_T_pred_sem": t_sem,
                "energy_T": c["energy_T"],
                "energy_T_sem": c["energy_T_sem"],
            }
        )
    return Numbers({"rows": rows, "configurations": used}, rows, {"trained": trained})

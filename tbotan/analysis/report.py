"""The report (SPEC §6): the paper's figures for this store, and the numbers behind each.

    tbotan report --store storage/quickstart.zarr        # -> storage/quickstart.zarr/report/index.html

Reads only the store: the spec (root attribute), the data groups, ``models/*/seed*/history.json`` and
``predictions/`` (written by ``tbotan evaluate``). Writes ``report/`` beside them: one PNG per figure, and for
each a JSON (numbers + provenance: store, spec hash, variant, seeds, checkpoints, configurations) and a CSV,
plus ``index.html`` with every figure and a table of the key numbers.

Averages follow the paper: a number per test configuration (Pearson rho, T_pred, S_B(q), u), averaged over
configurations for each seed; the value shown is the mean over seeds and the error bar the standard deviation
over seeds (with a single seed, over configurations). S_B(q) of MD is the same for every seed.

The report is built in a temporary folder and moved into place only when complete, so a failed run never
leaves a half-written ``report/``. Missing predictions for a variant or seed of the spec are an error naming
the stage to run; ``allow_partial`` writes what exists to ``report_partial/`` and leaves ``report/`` alone.
"""

from __future__ import annotations

import csv
import datetime
import hashlib
import html
import json
import logging
import os
import shutil
from pathlib import Path

import numpy as np
import zarr

from ..data.spec import parse_spec
from ..data.store import StoreError, alpha_time_check, group_name, open_store, software_versions, tau_alpha_index
from ..errors import ReportError
from ..learn.diagnostics import embedding_spread
from ..learn.train import TERMS, run_flags, runs, variant_name
from . import fourpoint

logger = logging.getLogger(__name__)

T_LABEL = r"$T$ ($\epsilon_{AA}/k_B$)"
Q_LABEL = r"$q$ ($\sigma_{AA}^{-1}$)"


# --- reading -----------------------------------------------------------------------------------------------
def _spec(root):
    text = root.attrs.get("spec")
    if text is None:
        raise StoreError("the store has no 'spec' attribute: it was not made by `tbotan simulate`")
    return parse_spec(text, source="the store's spec")


def _seed_predictions(grp) -> dict:
    out = {}
    for name, tg in grp.groups():
        if not name.startswith("T"):
            continue
        out[float(tg.attrs["T"])] = {k: tg[k][:] for k in tg.array_keys()} | {"trained": bool(tg.attrs["trained"])}
    return dict(sorted(out.items()))


def load_results(store_path, spec, names: list[str], seeds: list[int]) -> tuple[dict, list[str]]:
    """{name: {seed: {T: arrays}}} of complete predictions, and a list of what is missing (as commands)."""
    root = open_store(store_path)
    results, missing = {}, []
    flags = {variant_name(spec, v, lam): run_flags(spec, v, lam) for v, lam in runs(spec)}
    for name in names:
        base = flags.get(name, "")
        for s in seeds:
            path = f"predictions/{name}/seed{s}"
            ck = Path(store_path) / "models" / name / f"seed{s}" / "best.pt"
            if path in root and root[path].attrs.get("complete"):
                results.setdefault(name, {})[s] = {"attrs": dict(root[path].attrs), "T": _seed_predictions(root[path])}
            elif not ck.exists():
                missing.append(f"{name} seed {s}: not trained (run `tbotan train SPEC --store {store_path}{base}`)")
            else:
                missing.append(
                    f"{name} seed {s}: trained but not evaluated (run `tbotan evaluate SPEC --store "
                    f"{store_path}{base}`)"
                )
    return results, missing


def _stat(per_seed: list[np.ndarray]) -> tuple[float, float]:
    """Mean over seeds of the per-seed mean, and the spread: std over seeds (one seed: over configurations)."""
    means = np.array([np.nanmean(x) for x in per_seed])
    if len(per_seed) > 1:
        return float(np.mean(means)), float(np.std(means))
    return float(means[0]), float(np.nanstd(per_seed[0]))


# --- output helpers -----------------------------------------------------------------------------------------
def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _write(folder: Path, stem: str, fig, numbers: dict, rows: list[dict], provenance: dict) -> None:
    fig.savefig(folder / f"{stem}.png", dpi=120, bbox_inches="tight")
    _plt().close(fig)
    (folder / f"{stem}.json").write_text(
        json.dumps({"figure": f"{stem}.png", "provenance": provenance, **numbers}, indent=1, default=_jsonable)
    )
    if rows:
        with open(folder / f"{stem}.csv", "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)


def _jsonable(x):
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, np.generic):
        return x.item()
    raise TypeError(type(x))


def _mark_trained(ax, temps, trained):
    for T in temps:
        if T not in trained:
            ax.axvspan(T - 0.004, T + 0.004, color="tab:red", alpha=0.12, lw=0)


# --- the figures ----------------------------------------------------------------------------------------------
def _pearson_a(pred: np.ndarray, md: np.ndarray, types: np.ndarray) -> float:
    a = (types == 0) & np.isfinite(pred) & np.isfinite(md)
    return float(np.corrcoef(pred[a], md[a])[0, 1]) if a.sum() > 2 else float("nan")


def published_comparison(root, res: dict, name: str, spec):
    """T-BOTAN beside every published model on the same test configurations (SPEC §8.1): per temperature, time,
    model and MD target, the Pearson coefficient over A particles, per configuration then averaged."""
    plt = _plt()
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
                    rho = [_pearson_a(node[k, i_t], g[target][c, i_t], g["types"][c]) for k, c in enumerate(cs)]
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
    tau_time = {r["T"]: r["time"] for r in rows if r["model"] == f"T-BOTAN/{name}"}  # the figure: at tau_alpha
    at_tau = [
        r for r in rows if r["target"] == spec.training.target and abs(r["time"] - tau_time.get(r["T"], -1)) < 1e-9
    ]
    models = sorted({r["model"] for r in at_tau})
    temps = sorted({r["T"] for r in at_tau})
    fig, ax = plt.subplots(figsize=(2 + 1.5 * len(temps), 4))
    width = 0.8 / max(len(models), 1)
    for k, model in enumerate(models):
        ys = [next((r["pearson_A"] for r in at_tau if r["model"] == model and r["T"] == T), np.nan) for T in temps]
        ax.bar(np.arange(len(temps)) + k * width, ys, width, label=model)
    ax.set_xticks(np.arange(len(temps)) + 0.4 - width / 2, [f"{T:g}" for T in temps])
    ax.set_xlabel(T_LABEL)
    ax.set_ylabel(f"Pearson (A particles), target {spec.training.target} at $\\tau_\\alpha$")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig, {"rows": rows}, rows


def pearson_figure(res: dict, trained: list[float]):
    plt = _plt()
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
            row[key], row[key + "_std"] = _stat([res[s]["T"][T][key] for s in seeds])
        rows.append(row)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for ax, keys, title in (
        (axes[0], ("pearson_node_A", "pearson_node_all"), r"node: $C_B^j(\tau_\alpha)$"),
        (axes[1], ("pearson_edge_AA", "pearson_edge_all"), r"edge: $E_{jk}(\tau_\alpha)$"),
    ):
        for key, marker in zip(keys, ("o", "s")):
            label = (
                ("A particles" if key.endswith("A") else "all particles")
                if "node" in key
                else ("A-A pairs, $r_{jk}(0)<1.35$" if key.endswith("AA") else "all edges")
            )
            for trained_flag in (True, False):
                sel = [r for r in rows if r["trained"] == trained_flag]
                if not sel:
                    continue
                ax.errorbar(
                    [r["T"] for r in sel],
                    [r[key] for r in sel],
                    [r[key + "_std"] for r in sel],
                    fmt=marker,
                    color="k" if trained_flag else "tab:red",
                    capsize=3,
                    mfc=None if key.endswith(("A", "AA")) else "none",
                    label=f"{label} ({'trained' if trained_flag else 'not trained on'})",
                )
        _mark_trained(ax, temps, trained)
        ax.axhline(0, color="grey", lw=0.5)
        ax.set_xlabel(T_LABEL)
        ax.set_title(title)
        ax.legend(fontsize=7)
    axes[0].set_ylabel(r"Pearson $\rho$ (prediction vs MD)")
    fig.suptitle("Pearson correlation vs temperature (mean ± std over seeds; red: not trained on)", fontsize=10)
    return fig, {"rows": rows}, rows


def sb_figure(res: dict, trained: list[float], q_fit_max: float):
    plt = _plt()
    seeds = sorted(res)
    temps = sorted(res[seeds[0]]["T"])
    fits, curves, rows = {}, {}, []
    fig, axes = plt.subplots(1, len(temps), figsize=(3.3 * len(temps), 3.4), squeeze=False)
    for ax, T in zip(axes[0], temps):
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
        ax.errorbar(q, md, md_err, fmt="o", ms=4, color="k", label="MD")
        ax.errorbar(q, pred, pred_err, fmt="s", ms=4, mfc="none", color="tab:blue", label="T-BOTAN")
        qq = np.linspace(q[0] * 0.8, max(q_fit_max, q[0]) * 1.2, 50)
        for fit, color in ((fit_md, "k"), (fit_pred, "tab:blue")):
            if np.isfinite(fit["xi"]):
                ax.plot(
                    qq,
                    fit["S0"] / (1 + (qq * fit["xi"]) ** 2),
                    "--",
                    color=color,
                    lw=1,
                    label=rf"OZ fit, $\xi_4$={fit['xi']:.2f}",
                )
        ax.set_yscale("log")
        ax.set_xlabel(Q_LABEL)
        ax.set_title(
            f"T = {T:g}" + ("" if T in trained else " (not trained on)"),
            color="k" if T in trained else "tab:red",
            fontsize=10,
        )
        ax.legend(fontsize=6)
    axes[0][0].set_ylabel(r"$S_B(q, \tau_\alpha)$")
    fig.suptitle(r"Four-point structure factor $S_B(q,\tau_\alpha)$, A particles, MD vs prediction", fontsize=10)

    fig2, ax = plt.subplots(figsize=(4.5, 3.5))
    xi_rows = []
    for key, marker, color in (("md", "o", "k"), ("prediction", "s", "tab:blue")):
        xs = [(T, fits[T][key]["xi"], fits[T][key]["xi_err"]) for T in temps]
        ax.errorbar(
            [x[0] for x in xs],
            [x[1] for x in xs],
            [x[2] for x in xs],
            fmt=marker,
            color=color,
            mfc="none" if key == "prediction" else None,
            capsize=3,
            label="MD" if key == "md" else "T-BOTAN",
        )
    for T in temps:
        xi_rows.append(
            {
                "T": T,
                "trained": T in trained,
                "xi4_md": fits[T]["md"]["xi"],
                "xi4_md_note": fits[T]["md"].get("reason", ""),
                "xi4_pred_note": fits[T]["prediction"].get("reason", ""),
                "xi4_md_err": fits[T]["md"]["xi_err"],
                "xi4_pred": fits[T]["prediction"]["xi"],
                "xi4_pred_err": fits[T]["prediction"]["xi_err"],
                "fit_q_min": fits[T]["md"]["q_min"],
                "fit_q_max": fits[T]["md"]["q_max"],
                "fit_points": fits[T]["md"]["points"],
            }
        )
    _mark_trained(ax, temps, trained)
    pad = 0.05 * (max(temps) - min(temps) or 1.0)
    ax.set_xlim(min(temps) - pad, max(temps) + pad)
    missing = [
        f"{T:g} ({'MD' if not np.isfinite(fits[T]['md']['xi']) else ''}"
        f"{'+' if not np.isfinite(fits[T]['md']['xi']) and not np.isfinite(fits[T]['prediction']['xi']) else ''}"
        f"{'T-BOTAN' if not np.isfinite(fits[T]['prediction']['xi']) else ''})"
        for T in temps
        if not (np.isfinite(fits[T]["md"]["xi"]) and np.isfinite(fits[T]["prediction"]["xi"]))
    ]
    if missing:
        ax.text(
            0.02,
            0.02,
            "not measurable in this box (fit xi > L/2): T = " + ", ".join(missing),
            transform=ax.transAxes,
            fontsize=6,
            va="bottom",
        )
    ax.set_xlabel(T_LABEL)
    ax.set_ylabel(r"$\xi_4$ ($\sigma_{AA}$), OZ fit for $q \leq$" + f" {q_fit_max:g}")
    ax.set_title("Dynamic correlation length (red band: not trained on)", fontsize=9)
    ax.legend(fontsize=8)
    return (fig, {"q_fit_max": q_fit_max, "curves": curves, "fits": fits}, rows), (
        fig2,
        {"q_fit_max": q_fit_max, "rows": xi_rows},
        xi_rows,
    )


def temperature_figures(res: dict, trained: list[float]):
    plt = _plt()
    seeds = sorted(res)
    temps = sorted(res[seeds[0]]["T"])
    rows, ratios = [], {}
    for T in temps:
        allp = np.concatenate([res[s]["T"][T]["t_pred"] for s in seeds])
        per_seed_mean, per_seed_std = _stat([res[s]["T"][T]["t_pred"] for s in seeds])
        ratios[T] = allp / T
        rows.append(
            {
                "T_MD": T,
                "trained": T in trained,
                "T_pred": float(allp.mean()),
                "T_pred_std_samples": float(allp.std()),
                "T_pred_std_seeds": per_seed_std,
                "samples": len(allp),
            }
        )
    fig, ax = plt.subplots(figsize=(4.5, 4))
    lo, hi = min(temps) * 0.9, max(temps) * 1.1
    ax.plot([lo, hi], [lo, hi], "--", color="grey", label=r"$T_{pred} = T_{MD}$")
    for flag in (True, False):
        sel = [r for r in rows if r["trained"] == flag]
        if sel:
            ax.errorbar(
                [r["T_MD"] for r in sel],
                [r["T_pred"] for r in sel],
                [r["T_pred_std_samples"] for r in sel],
                fmt="o",
                color="k" if flag else "tab:red",
                capsize=3,
                label="trained" if flag else "not trained on",
            )
    ax.set_xlabel(r"$T_{MD}$ ($\epsilon_{AA}/k_B$)")
    ax.set_ylabel(r"$T_{pred}$ ($\epsilon_{AA}/k_B$)")
    ax.set_title("Temperature inferred from structure\n(error bars: std over configurations and seeds)", fontsize=9)
    ax.legend(fontsize=8)

    fig2, ax = plt.subplots(figsize=(5, 3.6))
    every = np.concatenate(list(ratios.values()))
    edges = np.linspace(min(0.5, every.min()), max(1.5, every.max()), 41)
    hist_rows = []
    for T in temps:
        p, _ = np.histogram(ratios[T], bins=edges, density=True)  # integral over T_pred/T_MD = 1 (paper Eq. B1)
        centres = 0.5 * (edges[1:] + edges[:-1])
        ax.plot(
            centres,
            p,
            drawstyle="steps-mid",
            ls="-" if T in trained else "--",
            label=f"T = {T:g}" + ("" if T in trained else " (not trained on)"),
        )
        hist_rows += [{"T": T, "ratio": c, "P": v} for c, v in zip(centres, p)]
    ax.axvline(1, color="grey", lw=0.5)
    ax.set_xlabel(r"$T_{pred}/T_{MD}$")
    ax.set_ylabel(r"$P(T_{pred}/T_{MD})$ (integral 1)")
    ax.legend(fontsize=7)
    return (fig, {"rows": rows}, rows), (fig2, {"bin_edges": edges, "rows": hist_rows}, hist_rows)


def distance_figure(res: dict, trained: list[float]):
    plt = _plt()
    seeds = sorted(res)
    temps = sorted(res[seeds[0]]["T"])
    mean_u = np.array([np.concatenate([res[s]["T"][T]["u"] for s in seeds]).mean(axis=0) for T in temps])
    D = np.linalg.norm(mean_u[:, None] - mean_u[None], axis=-1)
    fig, ax = plt.subplots(figsize=(4.6, 4))
    im = ax.imshow(D, cmap="viridis")
    labels = [f"{T:g}" + ("" if T in trained else "*") for T in temps]
    ax.set_xticks(range(len(temps)), labels)
    ax.set_yticks(range(len(temps)), labels)
    for i in range(len(temps)):
        for j in range(len(temps)):
            ax.text(
                j,
                i,
                f"{D[i, j]:.2g}",
                ha="center",
                va="center",
                fontsize=7,
                color="w" if D[i, j] < D.max() / 2 else "k",
            )
    fig.colorbar(im, ax=ax, label=r"$D(T_i,T_j)=|\langle u(T_i)\rangle-\langle u(T_j)\rangle|$")
    ax.set_xlabel(r"$T_j$ (* not trained on)")
    ax.set_ylabel(r"$T_i$")
    health = embedding_health(res)
    alive = ", ".join(f"{h['u_alive']}/{h['hidden']}" for h in health)
    spread = ", ".join(f"{h['spread_across_T']:.2g}" for h in health)
    ax.set_title(f"Distances between mean global embeddings\nu alive per seed: {alive}; spread: {spread}", fontsize=8)
    rows = [{"T_i": a, "T_j": b, "D": D[i, j]} for i, a in enumerate(temps) for j, b in enumerate(temps)]
    return fig, {"temperatures": temps, "D": D, "mean_u": mean_u, "seeds": health}, rows


def embedding_health(res: dict) -> list[dict]:
    """Per seed: units of u positive on at least one test configuration, and the spread of u across temperatures
    (between-temperature over within-temperature standard deviation; tbotan.learn.diagnostics.embedding_spread)."""
    out = []
    for s in sorted(res):
        temps = sorted(res[s]["T"])
        u = np.concatenate([res[s]["T"][T]["u"] for T in temps])
        labels = np.concatenate([np.full(len(res[s]["T"][T]["u"]), T) for T in temps])
        alive, spread = embedding_spread(u, labels)
        out.append({"seed": s, "u_alive": alive, "hidden": u.shape[1], "spread_across_T": spread})
    return out


def maps_figure(root, res: dict, trained: list[float], slab: list[float]):
    plt = _plt()
    seeds = sorted(res)
    s0 = seeds[0]
    temps = sorted(res[s0]["T"])
    fig, axes = plt.subplots(2, len(temps), figsize=(3.6 * len(temps), 6.6), squeeze=False, layout="constrained")
    rows, used = [], {}
    for k, T in enumerate(temps):
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
        for row, (values, what) in enumerate(((md, "MD"), (pred, "T-BOTAN"))):
            ax = axes[row][k]
            sc = ax.scatter(
                pos[sel, 0],
                pos[sel, 1],
                c=values[sel],
                s=np.where(types[sel] == 0, 60, 35) * (7.5 / L) ** 2,
                cmap="coolwarm_r",
                vmin=vmin,
                vmax=vmax,
                edgecolors="k",
                linewidths=0.2,
            )
            ax.set_xlim(0, L)
            ax.set_ylim(0, L)
            ax.set_aspect("equal")
            ax.set_title(
                f"{what}, T = {T:g}" + ("" if T in trained else " (not trained)"),
                fontsize=9,
                color="k" if T in trained else "tab:red",
            )
            ax.set_xlabel(r"$x$ ($\sigma_{AA}$)")
            ax.set_ylabel(r"$y$ ($\sigma_{AA}$)")
            fig.colorbar(sc, ax=ax, label=r"$C_B(\tau_\alpha)$", shrink=0.8)
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
    fig.suptitle(
        f"$C_B(\\tau_\\alpha)$ in the slab {slab[0]:.3f} L < z < {slab[1]:.3f} L (first test configuration, "
        f"seed {s0}; large: A, small: B;\ncolour scale: 5-95 % range of MD, shared by MD and prediction)",
        fontsize=10,
    )
    return fig, {"maps": used}, rows


def loss_figure(store_path: Path, name: str, seeds: list[int], switch_epoch: int):
    plt = _plt()
    terms = TERMS  # mse, var, corr, edge, global: the panels after L_all, in this order
    from matplotlib.ticker import NullFormatter

    fig, axes = plt.subplots(2, 3, figsize=(11, 6.5), layout="constrained")
    axes = axes.ravel()
    rows = []
    for s in seeds:
        path = store_path / "models" / name / f"seed{s}" / "history.json"
        if not path.exists():
            continue
        hist = json.loads(path.read_text())
        ep = [h["epoch"] for h in hist]
        axes[0].plot(ep, [h["train"]["total"] for h in hist], label=f"seed {s} train")
        axes[0].plot(ep, [h["validation"]["objective"] for h in hist], "--", label=f"seed {s} validation (all terms)")
        for ax, t in zip(axes[1:], terms):
            ax.plot(ep, [h["train"][t] for h in hist], label=f"seed {s} train")
            ax.plot(ep, [h["validation"][t] for h in hist], "--", label=f"seed {s} validation")
        rows += [
            {
                "seed": s,
                "epoch": h["epoch"],
                "train_total": h["train"]["total"],
                "validation_objective": h["validation"]["objective"],
                **{f"train_{t}": h["train"][t] for t in terms},
                **{f"validation_{t}": h["validation"][t] for t in terms},
            }
            for h in hist
        ]
    titles = ["$L_{all}$", "$L_{MSE}$", "$L_{Var}$", "$L_{Corr}$", "$L_{edge}$", "$L_{global}$"]
    columns = [("train_total", "validation_objective")] + [(f"train_{t}", f"validation_{t}") for t in terms]
    for ax, title, keys in zip(axes, titles, columns):
        ax.axvline(switch_epoch, color="grey", ls=":", lw=1)
        values = np.array([r[k] for r in rows for k in keys], dtype=float)
        if not (values > 0).any():  # a term that is off or NaN (no edge targets), or zero before the switch
            ax.set_title(title + " (no positive values)", fontsize=9)
            continue
        ax.set_yscale("log")
        ax.yaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("epoch")
        ax.set_title(title, fontsize=9)
    axes[0].legend(fontsize=6)
    fig.suptitle(f"Losses ({name}); dotted: switch epoch {switch_epoch} (w_v, w_c, global term on)", fontsize=10)
    return fig, {"switch_epoch": switch_epoch}, rows


def comparison_figure(results: dict, names: list[str], trained: list[float], title: str):
    """Node Pearson (A) and T_pred vs T for several variants or lambda_g values (Figs. 12-15)."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.8))
    rows = []
    for name in names:
        res = results[name]
        seeds = sorted(res)
        temps = sorted(res[seeds[0]]["T"])
        for T in temps:
            rho, rho_err = _stat([res[s]["T"][T]["pearson_node_A"] for s in seeds])
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
        sel = [r for r in rows if r["variant"] == name]
        for ax, key in zip(axes, ("pearson_node_A", "T_pred")):
            T, y, err = ([r[k] for r in sel] for k in ("T", key, key + "_std"))
            ax.errorbar(T, y, err, fmt="o-", capsize=3, label=name)
    temps = sorted({r["T"] for r in rows})
    for ax in axes:
        _mark_trained(ax, temps, trained)
        ax.set_xlabel(T_LABEL)
        ax.legend(fontsize=7)
    axes[1].plot([min(temps), max(temps)], [min(temps), max(temps)], "--", color="grey")
    axes[0].set_ylabel(r"node Pearson $\rho$ (A particles)")
    axes[1].set_ylabel(r"$T_{pred}$")
    fig.suptitle(title + " (red bands: not trained on)", fontsize=10)
    return fig, {"rows": rows}, rows


# --- the whole report --------------------------------------------------------------------------------------
def _provenance(store_path: Path, root, spec, name: str, res: dict) -> dict:
    seeds = sorted(res)
    return {
        "store": str(store_path.resolve()),
        "spec_sha256": hashlib.sha256(json.dumps(root.attrs["spec"], sort_keys=True).encode()).hexdigest(),
        "variant": name,
        "seeds": seeds,
        "checkpoints": {
            s: {
                "file": res[s]["attrs"].get("checkpoint"),
                "sha256": res[s]["attrs"].get("checkpoint_sha256"),
                "best_epoch": res[s]["attrs"].get("best_epoch"),
            }
            for s in seeds
        },
        "test_configurations": {f"{T:.3f}": d["configurations"] for T, d in res[seeds[0]]["T"].items()},
        "training_temperatures": [float(t) for t in spec.training_temperatures],
        "made": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "software": software_versions(),
    }


def write_report(store_path, allow_partial: bool = False) -> Path:
    """Make ``report/`` (or ``report_partial/``) in the store; returns the path of its index.html."""
    store_path = Path(store_path)
    root = open_store(store_path)
    spec = _spec(root)
    names = [variant_name(spec, v, lam) for v, lam in runs(spec)]
    seeds = list(range(spec.training.seeds))
    results, missing = load_results(store_path, spec, names, seeds)
    main = names[0]
    if missing and (not allow_partial or main not in results):
        raise ReportError(
            f"{store_path}: the report needs predictions of every variant and seed of the spec; missing:\n  "
            + "\n  ".join(missing)
            + ("\n(`tbotan report --partial` reports what exists in report_partial/)" if main in results else "")
        )
    trained = [float(t) for t in spec.training_temperatures]
    res = results[main]
    prov = _provenance(store_path, root, spec, main, res)
    target = store_path / ("report_partial" if missing else "report")
    tmp = store_path / f".{target.name}.tmp{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        figures = []  # (stem, caption)

        def put(stem, made, caption, prov=prov):
            fig, numbers, rows = made
            _write(tmp, stem, fig, numbers, rows, prov)
            figures.append((stem, caption))

        pear = pearson_figure(res, trained)
        put(
            "pearson_vs_T",
            pear,
            "Pearson correlation of predicted and MD C_B (node) and E_jk (edge) vs T (paper Fig. 7).",
        )
        sb, xi = sb_figure(res, trained, spec.evaluation.oz_fit_q_max)
        put("sb_q", sb, "S_B(q, tau_alpha) of MD and prediction with Ornstein-Zernike fits (paper Figs. 3, 9).")
        put("xi4_vs_T", xi, "Dynamic correlation length xi_4 from the OZ fits (MD and prediction).")
        tp, ratio = temperature_figures(res, trained)
        put("t_pred_vs_T", tp, "Temperature predicted from structure vs the MD temperature (paper Fig. 4).")
        put("t_pred_ratio", ratio, "Distribution P(T_pred / T_MD), normalised to integral 1 (paper Fig. 10).")
        put(
            "embedding_distance",
            distance_figure(res, trained),
            "Distance matrix D(T_i, T_j) of mean global embeddings u (paper Fig. 5).",
        )
        put(
            "cb_maps",
            maps_figure(root, res, trained, spec.evaluation.slab),
            "C_B(tau_alpha) maps in a slab, MD vs prediction (paper Figs. 2, 8).",
        )
        for name in results:
            put(
                f"loss_{name}",
                loss_figure(store_path, name, sorted(results[name]), spec.training.switch_epoch),
                f"Training and validation losses of {name} (paper Fig. 6).",
                prov=_provenance(store_path, root, spec, name, results[name]),
            )
        lam0 = spec.training.lambda_g_values[0]
        variants = [
            variant_name(spec, v, lam0) for v in spec.training.variants if variant_name(spec, v, lam0) in results
        ]
        if len(variants) > 1:
            put(
                "ablations",
                comparison_figure(results, variants, trained, "Edge-feature ablations"),
                "Ablations: IS only / thermal only / both (paper Figs. 13-15).",
                prov={n: _provenance(store_path, root, spec, n, results[n]) for n in variants},
            )
        sweep = [variant_name(spec, spec.training.variants[0], lam) for lam in spec.training.lambda_g_values]
        sweep = [n for n in sweep if n in results]
        if len(sweep) > 1:
            put(
                "lambda_sweep",
                comparison_figure(results, sweep, trained, r"$\lambda_g$ sweep"),
                "lambda_g dependence (paper Figs. 11-12).",
                prov={n: _provenance(store_path, root, spec, n, results[n]) for n in sweep},
            )
        if "published" in root:
            put(
                "published_comparison",
                published_comparison(root, res, main, spec),
                "T-BOTAN beside the published models on the same test configurations: Pearson of the node "
                "prediction against MD over A particles, per configuration then averaged.",
            )
        alpha = {r["T"]: alpha_time_check(root[group_name(r["T"])]) for r in pear[2]}
        key = _key_numbers(pear[2], xi[2], tp[2], alpha)
        health = embedding_health(res)
        (tmp / "key_numbers.json").write_text(
            json.dumps({"provenance": prov, "rows": key, "embedding": health}, indent=1, default=_jsonable)
        )
        (tmp / "index.html").write_text(_html(spec, prov, key, figures, missing, health))
        zarr.open_group(str(tmp), mode="a").attrs.update(
            {  # a Zarr group, so Zarr readers of the store list it
                "content": "report of this store (PNG, JSON, CSV, index.html), made by `tbotan report`",
                "complete": not missing,
            }
        )
        old = store_path / f".{target.name}.old{os.getpid()}"
        if target.exists():
            os.replace(target, old)
        os.replace(tmp, target)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    logger.info(
        f"report: {target / 'index.html'} ({len(figures)} figures)"
        + (" PARTIAL: " + "; ".join(missing) if missing else "")
    )
    return target / "index.html"


def _key_numbers(pearson_rows, xi_rows, t_rows, alpha=None) -> list[dict]:
    """Per T: the headline numbers, and F_s^A(7.25) of the MD ensembles at the time called tau_alpha (with
    ``fs_ok`` false outside tbotan.data.store.FS_ALPHA_BAND: then the target is not C_B at the alpha time)."""
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
            "pearson_edge_AA": r["pearson_edge_AA"],
            "T_pred": tp[r["T"]]["T_pred"],
            "T_pred_std": tp[r["T"]]["T_pred_std_samples"],
            "xi4_md": xi[r["T"]]["xi4_md"],
            "xi4_pred": xi[r["T"]]["xi4_pred"],
            "fs_at_tau": (alpha.get(r["T"]) or {}).get("fs_at_tau"),
            "fs_ok": (alpha.get(r["T"]) or {}).get("ok"),
        }
        for r in pearson_rows
    ]


def _html(spec, prov, key, figures, missing, health=()) -> str:
    e = html.escape
    head = (
        "<tr><th>T</th><th>trained</th><th>test configs</th><th>node &rho; (A)</th><th>edge &rho; (A-A)</th>"
        "<th>T<sub>pred</sub></th><th>&xi;<sub>4</sub> MD</th><th>&xi;<sub>4</sub> pred</th>"
        "<th>F<sub>s</sub><sup>A</sup>(7.25) at &tau;<sub>&alpha;</sub></th></tr>"
    )

    def fs(r):
        if r.get("fs_at_tau") is None:
            return "-"
        return f"{r['fs_at_tau']:.3f}" + ("" if r["fs_ok"] else " <b style='color:red'>(not the alpha time)</b>")

    body = "".join(
        f"<tr><td>{r['T']:g}</td><td>{'yes' if r['trained'] else '<b>no</b>'}</td><td>{r['test_configurations']}</td>"
        f"<td>{r['pearson_node_A']:.3f} &plusmn; {r['pearson_node_A_std']:.3f}</td><td>{r['pearson_edge_AA']:.3f}</td>"
        f"<td>{r['T_pred']:.3f} &plusmn; {r['T_pred_std']:.3f}</td><td>{r['xi4_md']:.2f}</td>"
        f"<td>{r['xi4_pred']:.2f}</td><td>{fs(r)}</td></tr>"
        for r in key
    )
    figs = "".join(
        f"<h2>{e(stem)}</h2><p>{e(cap)} Numbers: <a href='{stem}.json'>{stem}.json</a>, "
        f"<a href='{stem}.csv'>{stem}.csv</a></p><img src='{stem}.png' style='max-width:100%'>"
        for stem, cap in figures
    )
    warn = ("<p style='color:red'><b>PARTIAL report</b>: " + e("; ".join(missing)) + "</p>") if missing else ""
    flat = " <b>(u does not tell the temperatures apart)</b>"
    embedding = "".join(
        f"<li>seed {h['seed']}: {h['u_alive']} of {h['hidden']} units of u alive; spread across T "
        f"{h['spread_across_T']:.3g}{'' if h['spread_across_T'] > 1 else flat}</li>"
        for h in health
    )
    embedding = f"<p>Global embedding u on the test configurations:</p><ul>{embedding}</ul>" if embedding else ""
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>T-BOTAN report</title></head><body "
        f"style='font-family:sans-serif;max-width:1200px;margin:auto'><h1>T-BOTAN report</h1>{warn}"
        f"<p>Store <code>{e(prov['store'])}</code>, variant <code>{e(prov['variant'])}</code>, "
        f"seeds {prov['seeds']}, N = {spec.N}, trained on T = {prov['training_temperatures']}; made {e(prov['made'])}. "
        f"Reduced LJ units (&sigma;<sub>AA</sub>, &epsilon;<sub>AA</sub>, &tau;<sub>LJ</sub>). Values: mean over seeds "
        f"&plusmn; std over seeds; T<sub>pred</sub> &plusmn; std over configurations and seeds. F<sub>s</sub> at "
        f"the time called &tau;<sub>&alpha;</sub> should be near 1/e = 0.368 (flagged outside [0.30, 0.44]).</p>"
        f"<table border='1' cellpadding='4' style='border-collapse:collapse'>{head}{body}</table>{embedding}{figs}"
        "</body></html>"
    )

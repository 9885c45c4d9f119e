"""The report's figures, drawn from their numbers (tbotan.analysis.numbers): each function takes one ``Numbers``
and returns a matplotlib figure (Agg backend); nothing is computed here beyond what a plot needs (a fitted
curve, bar positions). Temperatures the run did not train on are drawn in red or behind a red band.
"""

from __future__ import annotations

import numpy as np

from ..data.runs import TERMS
from .numbers import Numbers

T_LABEL = r"$T$ ($\epsilon_{AA}/k_B$)"
Q_LABEL = r"$q$ ($\sigma_{AA}^{-1}$)"


def pyplot():
    """matplotlib.pyplot on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _mark_trained(ax, temps, trained):
    for T in temps:
        if T not in trained:
            ax.axvspan(T - 0.004, T + 0.004, color="tab:red", alpha=0.12, lw=0)


def draw_published(n: Numbers):
    """Bars of the Pearson coefficient at tau_alpha per T and model, for the run's target."""
    plt = pyplot()
    rows, name, target = n.rows, n.plot["name"], n.plot["target"]
    tau_time = {r["T"]: r["time"] for r in rows if r["model"] == f"T-BOTAN/{name}"}  # the figure: at tau_alpha
    at_tau = [r for r in rows if r["target"] == target and abs(r["time"] - tau_time.get(r["T"], -1)) < 1e-9]
    models = sorted({r["model"] for r in at_tau})
    temps = sorted({r["T"] for r in at_tau})
    fig, ax = plt.subplots(figsize=(2 + 1.5 * len(temps), 4))
    width = 0.8 / max(len(models), 1)
    for k, model in enumerate(models):
        ys = [next((r["pearson_A"] for r in at_tau if r["model"] == model and r["T"] == T), np.nan) for T in temps]
        ax.bar(np.arange(len(temps)) + k * width, ys, width, label=model)
    ax.set_xticks(np.arange(len(temps)) + 0.4 - width / 2, [f"{T:g}" for T in temps])
    ax.set_xlabel(T_LABEL)
    ax.set_ylabel(f"Pearson (A particles), target {target} at $\\tau_\\alpha$")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def draw_pearson(n: Numbers):
    """Node and edge Pearson coefficients vs T, trained and not trained on apart."""
    plt = pyplot()
    rows, trained = n.rows, n.plot["trained"]
    temps = [r["T"] for r in rows]
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
    return fig


def draw_sb(n: Numbers):
    """S_B(q) of MD and prediction, one panel per T, with the Ornstein-Zernike fits, on a log scale."""
    plt = pyplot()
    curves, fits, q_fit_max, trained = n.values["curves"], n.values["fits"], n.values["q_fit_max"], n.plot["trained"]
    temps = list(curves)
    fig, axes = plt.subplots(1, len(temps), figsize=(3.3 * len(temps), 3.4), squeeze=False)
    for ax, T in zip(axes[0], temps):
        c = curves[T]
        q = c["q"]
        ax.errorbar(q, c["md"], c["md_err"], fmt="o", ms=4, color="k", label="MD")
        ax.errorbar(
            q, c["prediction"], c["prediction_err"], fmt="s", ms=4, mfc="none", color="tab:blue", label="T-BOTAN"
        )
        qq = np.linspace(q[0] * 0.8, max(q_fit_max, q[0]) * 1.2, 50)
        for fit, color in ((fits[T]["md"], "k"), (fits[T]["prediction"], "tab:blue")):
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
    return fig


def draw_xi(n: Numbers):
    """xi_4 of MD and prediction vs T; the temperatures where a fit gave none are named."""
    plt = pyplot()
    rows, q_fit_max, trained = n.rows, n.values["q_fit_max"], n.plot["trained"]
    temps = [r["T"] for r in rows]
    fig, ax = plt.subplots(figsize=(4.5, 3.5))
    for key, marker, color in (("md", "o", "k"), ("pred", "s", "tab:blue")):
        ax.errorbar(
            temps,
            [r[f"xi4_{key}"] for r in rows],
            [r[f"xi4_{key}_err"] for r in rows],
            fmt=marker,
            color=color,
            mfc="none" if key == "pred" else None,
            capsize=3,
            label="MD" if key == "md" else "T-BOTAN",
        )
    _mark_trained(ax, temps, trained)
    pad = 0.05 * (max(temps) - min(temps) or 1.0)
    ax.set_xlim(min(temps) - pad, max(temps) + pad)
    missing = []
    for r in rows:
        md, pred = np.isfinite(r["xi4_md"]), np.isfinite(r["xi4_pred"])
        if not (md and pred):
            missing.append(
                f"{r['T']:g} ({'' if md else 'MD'}{'+' if not md and not pred else ''}{'' if pred else 'T-BOTAN'})"
            )
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
    return fig


def draw_t_pred(n: Numbers):
    """T_pred vs T_MD with the diagonal; error bars: std over configurations and seeds."""
    plt = pyplot()
    rows = n.rows
    temps = [r["T_MD"] for r in rows]
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
    return fig


def draw_t_ratio(n: Numbers):
    """The histograms P(T_pred / T_MD), one step line per T (dashed: not trained on)."""
    plt = pyplot()
    trained = n.plot["trained"]
    fig, ax = plt.subplots(figsize=(5, 3.6))
    for T in dict.fromkeys(r["T"] for r in n.rows):
        sel = [r for r in n.rows if r["T"] == T]
        ax.plot(
            [r["ratio"] for r in sel],
            [r["P"] for r in sel],
            drawstyle="steps-mid",
            ls="-" if T in trained else "--",
            label=f"T = {T:g}" + ("" if T in trained else " (not trained on)"),
        )
    ax.axvline(1, color="grey", lw=0.5)
    ax.set_xlabel(r"$T_{pred}/T_{MD}$")
    ax.set_ylabel(r"$P(T_{pred}/T_{MD})$ (integral 1)")
    ax.legend(fontsize=7)
    return fig


def draw_distance(n: Numbers):
    """The matrix D(T_i, T_j) with its values, and the embedding's health per seed in the title."""
    plt = pyplot()
    temps, D, health, trained = n.values["temperatures"], n.values["D"], n.values["seeds"], n.plot["trained"]
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
    alive = ", ".join(f"{h['u_alive']}/{h['hidden']}" for h in health)
    spread = ", ".join(f"{h['spread_across_T']:.2g}" for h in health)
    ax.set_title(f"Distances between mean global embeddings\nu alive per seed: {alive}; spread: {spread}", fontsize=8)
    return fig


def draw_maps(n: Numbers):
    """C_B in the slab, MD (top row) and prediction (bottom row) per T, on MD's colour range; A large, B small."""
    plt = pyplot()
    panels, trained, slab = n.plot["panels"], n.plot["trained"], n.plot["slab"]
    fig, axes = plt.subplots(2, len(panels), figsize=(3.6 * len(panels), 6.6), squeeze=False, layout="constrained")
    for k, (T, p) in enumerate(panels.items()):
        L = p["L"]
        for row, (values, what) in enumerate(((p["md"], "MD"), (p["pred"], "T-BOTAN"))):
            ax = axes[row][k]
            sc = ax.scatter(
                p["x"],
                p["y"],
                c=values,
                s=np.where(p["types"] == 0, 60, 35) * (7.5 / L) ** 2,
                cmap="coolwarm_r",
                vmin=p["vmin"],
                vmax=p["vmax"],
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
    fig.suptitle(
        f"$C_B(\\tau_\\alpha)$ in the slab {slab[0]:.3f} L < z < {slab[1]:.3f} L (first test configuration, "
        f"seed {n.plot['seed']}; large: A, small: B;\ncolour scale: 5-95 % range of MD, shared by MD and prediction)",
        fontsize=10,
    )
    return fig


def draw_loss(n: Numbers):
    """L_all and each loss term vs epoch, train and validation per seed, log scale; dotted: the switch epoch."""
    plt = pyplot()
    from matplotlib.ticker import NullFormatter

    rows, switch_epoch, name = n.rows, n.values["switch_epoch"], n.plot["name"]
    fig, axes = plt.subplots(2, 3, figsize=(11, 6.5), layout="constrained")
    axes = axes.ravel()
    for s in n.plot["seeds"]:
        hist = [r for r in rows if r["seed"] == s]
        ep = [r["epoch"] for r in hist]
        axes[0].plot(ep, [r["train_total"] for r in hist], label=f"seed {s} train")
        axes[0].plot(ep, [r["validation_objective"] for r in hist], "--", label=f"seed {s} validation (all terms)")
        for ax, t in zip(axes[1:], TERMS):
            ax.plot(ep, [r[f"train_{t}"] for r in hist], label=f"seed {s} train")
            ax.plot(ep, [r[f"validation_{t}"] for r in hist], "--", label=f"seed {s} validation")
    titles = ["$L_{all}$", "$L_{MSE}$", "$L_{Var}$", "$L_{Corr}$", "$L_{edge}$", "$L_{global}$"]
    columns = [("train_total", "validation_objective")] + [(f"train_{t}", f"validation_{t}") for t in TERMS]
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
    return fig


def draw_comparison(n: Numbers):
    """Node Pearson (A) and T_pred vs T, one line per run."""
    plt = pyplot()
    rows, trained = n.rows, n.plot["trained"]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.8))
    for name in n.plot["names"]:
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
    fig.suptitle(n.plot["title"] + " (red bands: not trained on)", fontsize=10)
    return fig


def draw_ceiling(n: Numbers):
    """The network's node rho_A beside the descriptor regression's and the split-half ceiling sqrt(R), vs T:
    error bars the standard error over the test configurations."""
    plt = pyplot()
    rows, trained = n.rows, n.plot["trained"]
    temps = [r["T"] for r in rows]
    fig, ax = plt.subplots(figsize=(5, 3.8))
    for key, label, marker, color in (
        ("ceiling_rho", r"ceiling $\sqrt{R}$ (split-half)", "_", "k"),
        ("network_rho_A", "T-BOTAN", "o", "tab:blue"),
        ("descriptor_rho_A", "descriptor ridge regression", "s", "tab:orange"),
    ):
        ax.errorbar(
            temps,
            [r[key] for r in rows],
            [r[key + "_sem"] for r in rows],
            fmt=marker,
            ms=14 if marker == "_" else 6,
            color=color,
            capsize=3,
            label=label,
        )
    _mark_trained(ax, temps, trained)
    pad = 0.05 * (max(temps) - min(temps) or 1.0)
    ax.set_xlim(min(temps) - pad, max(temps) + pad)
    ax.set_xlabel(T_LABEL)
    ax.set_ylabel(r"Pearson $\rho$ (A particles)")
    ax.axhline(0, color="0.8", lw=0.8)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig

"""The predicted C_B map of one configuration (``tbotan predict``'s ``X.png``), drawn as the report's maps
(tbotan.analysis.figures.draw_maps): the particles in the slab slab[0] L <= z < slab[1] L, coloured by C_B on the
5-95 % range of the prediction, A large and B small.
"""

from __future__ import annotations

import numpy as np

from .figures import pyplot


def draw_prediction_map(positions, types, values, box: float, slab, title: str):
    """A matplotlib figure of ``values`` (N,) for the particles of wrapped ``positions`` (N, 3) in ``slab``."""
    plt = pyplot()
    x = np.asarray(positions) % box
    lo, hi = slab[0] * box, slab[1] * box
    sel = (x[:, 2] >= lo) & (x[:, 2] < hi)
    vmin, vmax = (float(v) for v in np.percentile(values, [5, 95]))
    fig, ax = plt.subplots(figsize=(4.6, 4.0), layout="constrained")
    sc = ax.scatter(
        x[sel, 0],
        x[sel, 1],
        c=np.asarray(values)[sel],
        s=np.where(np.asarray(types)[sel] == 0, 60, 35) * (7.5 / box) ** 2,
        cmap="coolwarm_r",
        vmin=vmin,
        vmax=vmax,
        edgecolors="k",
        linewidths=0.2,
    )
    ax.set_xlim(0, box)
    ax.set_ylim(0, box)
    ax.set_aspect("equal")
    ax.set_xlabel(r"$x$ ($\sigma_{AA}$)")
    ax.set_ylabel(r"$y$ ($\sigma_{AA}$)")
    ax.set_title(f"{title}\n{slab[0]:.3f} L <= z < {slab[1]:.3f} L ({int(sel.sum())} particles)", fontsize=8)
    fig.colorbar(sc, ax=ax, label=r"predicted $C_B(\tau_\alpha)$", shrink=0.8)
    return fig

"""A tbotan store written in GlassBench's layout, so that every model that reads GlassBench trains on it.

    tbotan export glassbench STORE DIR

``DIR/T{T:g}/{train,test}/N{N}T{T:g}_{i}.npz`` (DIR plays the part of GlassBench's ``KA_models/``), one file per
finished configuration, numbered from 1: the train and validation configurations first (GlassBench has no
validation split), then the test ones. Keys as in GlassBench: ``types`` (1 = A, 2 = B), ``initial_positions``
and ``initial_positions_inherent`` wrapped into [-L/2, L/2), ``md_prop`` (the propensity, the mean absolute
displacement) and ``bb_prop`` (C_B), both (n_t, N) at the store's times. GlassBench's ``initial_positions_cage``
(cage-averaged positions) is not made by tbotan and is left out. GlassBench files carry no times: they are written
to ``DIR/tbotan_export.json`` (and a later `tbotan import glassbench` needs them as ``source.times``).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np

from .. import core
from . import store

logger = logging.getLogger(__name__)


def _half_box(x: np.ndarray, box: float) -> np.ndarray:
    """Positions folded into GlassBench's [-L/2, L/2)."""
    return core.wrap(x + box / 2, box) - box / 2


def export_glassbench(store_path, directory) -> dict:
    """Write every done configuration of the store; returns {T: {"train": n, "test": n}}. Each file is written
    to a temporary name and moved into place, so a killed export never leaves a half-written .npz."""
    root = store.open_store(store_path)
    out_dir = Path(directory)
    counts, times = {}, {}
    for T in store.temperatures(root):
        g = root[store.group_name(T)]
        box, n = float(g.attrs["L"]), int(g.attrs["N"])
        done, split = g["done"][:], g["split"][:]
        order = [*np.flatnonzero(done & (split < 2)), *np.flatnonzero(done & (split == 2))]
        counts[T] = {"train": int((done & (split < 2)).sum()), "test": int((done & (split == 2)).sum())}
        times[f"{T:g}"] = {"times": g.attrs.get("times"), "times_tau": g.attrs.get("times_tau")}
        for i, c in enumerate(order, start=1):
            folder = out_dir / f"T{T:g}" / ("test" if split[c] == 2 else "train")
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"N{n}T{T:g}_{i}.npz"
            tmp = path.with_name(f".{path.stem}.tmp{os.getpid()}.npz")
            np.savez(
                tmp,
                types=g["types"][c].astype(np.int64) + 1,
                initial_positions=_half_box(g["thermal"][c], box),
                initial_positions_inherent=_half_box(g["inherent"][c], box),
                md_prop=g["propensity"][c],
                bb_prop=g["cb"][c],
            )
            os.replace(tmp, path)
    (out_dir / "tbotan_export.json").write_text(
        json.dumps(
            {
                "store": str(Path(store_path).resolve()),
                "layout": "GlassBench KA_models",
                "counts": counts,
                "times": times,
                "note": "md_prop = propensity (mean absolute displacement), bb_prop = C_B; file i = the "
                "i-th done configuration, train and validation first, then test",
            },
            indent=1,
        )
    )
    logger.info(
        f"exported {sum(v['train'] + v['test'] for v in counts.values())} configurations of {store_path} "
        f"to {out_dir} (GlassBench layout)"
    )
    return counts

"""Health of the global embedding u (NumPy only): how many of its units are alive, and whether the temperatures
sit apart in it.

For embeddings u_c (one row per configuration c, one column per unit) labelled by temperature T:

    alive  = number of units with u > 0 on at least one configuration (a ReLU unit zero everywhere is dead)
    spread = | std_T( <u>_T ) | / mean_T | std_{c in T}( u_c ) |

with <u>_T the mean embedding at T, std taken per unit (population) and |.| the Euclidean norm over units; the
mean in the denominator runs over the temperatures with more than one configuration. spread >> 1: the
temperatures sit apart in u; about 1 or below: u does not tell them apart. One temperature: NaN; no spread
within any temperature: inf (or NaN when the means coincide too).
"""

from __future__ import annotations

import numpy as np


def embedding_spread(u: np.ndarray, temperatures) -> tuple[int, float]:
    """(units of u positive on at least one row, spread of u across temperatures) of ``u`` (rows, hidden) whose
    rows are labelled by ``temperatures``; the formula is in the module docstring."""
    u = np.asarray(u, dtype=float)
    temperatures = np.asarray(temperatures, dtype=float)
    alive = int((u > 0).any(axis=0).sum())
    groups = [u[temperatures == T] for T in np.unique(temperatures)]
    if len(groups) < 2:
        return alive, float("nan")
    between = np.linalg.norm(np.std([x.mean(axis=0) for x in groups], axis=0))
    within = np.mean([np.linalg.norm(x.std(axis=0)) for x in groups if len(x) > 1] or [0.0])
    return alive, float(between / within) if within > 0 else float("inf") if between > 0 else float("nan")


def embedding_health(res: dict) -> list[dict]:
    """Per seed of one run's predictions (tbotan.analysis.results): units of u alive on the test configurations,
    the width of u, and the spread of u across temperatures (``embedding_spread``)."""
    out = []
    for s in sorted(res):
        temps = sorted(res[s]["T"])
        u = np.concatenate([res[s]["T"][T]["u"] for T in temps])
        labels = np.concatenate([np.full(len(res[s]["T"][T]["u"]), T) for T in temps])
        alive, spread = embedding_spread(u, labels)
        out.append({"seed": s, "u_alive": alive, "hidden": u.shape[1], "spread_across_T": spread})
    return out

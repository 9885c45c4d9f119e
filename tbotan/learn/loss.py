"""The T-BOTAN loss (docs/method.md §5), per configuration (graph).

    L_all  = lambda_n L_node + lambda_e L_edge + [epoch >= switch] lambda_g L_global
    L_node = L_MSE + [epoch >= switch] (w_v L_Var + w_c L_Corr)
    L_MSE  = mean_j (pred_j - md_j)^2 / Var(md)
    L_Var  = |Var(pred) - Var(md)| / Var(md)
    L_Corr = sum_{d in 2,4,6} |F(pred, d) - F(md, d)| / F_N,     F_N = |F(md, 2) - F(md, 6)|
    F(X, d) = sum_{j,k} dX_j dX_k exp(-(r_jk - d)^2 / 2) / sum_j dX_j^2,   dX = X - mean(X)
    L_edge = mean (pred_e - md_e)^2 / Var(md C_B);   L_global = (T_pred - T)^2

The double sum in F runs over all ordered pairs j, k *including j = k* (as written; the diagonal adds
exp(-d^2/2) sum dX^2), with minimum-image distances in the thermal structure, cut at d_max + 5 where
the Gaussian is below 4e-6. It never holds an N x N matrix: ``_weighted`` works in row blocks of at most
``block`` particles (memory O(block N)), and the quadratic form's gradient, 2 W dX, is the matvec already made
in the forward pass.

Cost. Each row block pairs with the particles it can reach, each pair once (W is symmetric). The particles
are sorted into cubic cells of side >= cutoff / REACH; a block of one cell reaches the cells up to REACH cells
away in each direction. Where those cover the whole box in one direction (L < (2 REACH + 1) x cutoff / REACH,
25.7 sigma for the cutoff of 11: N < 20,000 at density 1.2) there is one cell, every pair is reached, and the
cost is N^2 / 2 pair evaluations (N = 4096: 8.4 M). Beyond, it is ~ 6 N (cutoff + cutoff / REACH)^3 rho:
linear in N (benchmarks/performance/scaling.py). The cells only choose which pairs are evaluated; the pairs within the
cutoff and their weights are the same, so the result is the all-pairs one to float rounding
(tests/learn/test_model.py).
"""

from __future__ import annotations

import torch

from ..core import minimum_image

DISTANCES = (2.0, 4.0, 6.0)
REACH = 3  # cells per cutoff: a row block of one cell reaches REACH cells in each direction


def pair_block(rows, right, x_right, x_rows, d, box: float, cutoff: float):
    """One row block of W_d x: ``rows`` (b, 3) positions of the block, ``right`` (M, 3) positions from the block's
    first row on, ``d`` (D, 1, 1). Returns (W[rows, right] x_right (D, b), W[rows, right beyond the block]^T x_rows
    (D, M - b)). The hot loop of F; ``training.compile`` compiles it (tbotan.learn.compiled)."""
    r = minimum_image(rows[:, None, :] - right[None, :, :], box).norm(dim=-1)  # (b, M)
    w = torch.exp(-0.5 * (r[None] - d) ** 2) * (r < cutoff)
    return w @ x_right, torch.einsum("dbk,b->dk", w[:, :, rows.shape[0] :], x_rows)


def stencil(box: float, cutoff: float, reach: int | None = REACH) -> tuple[int, torch.Tensor | None]:
    """(cells per axis, the cell offsets within reach and within the cutoff): one cell (offsets None) where
    ``reach`` cells each way cover the box or ``reach`` is None."""
    n_c = 0 if reach is None else int(box // (cutoff / reach))
    if n_c < 2 * (reach or 0) + 1:
        return 1, None
    shifts = torch.arange(-reach, reach + 1)
    offsets = torch.cartesian_prod(shifts, shifts, shifts)  # ((2 reach + 1)^3, 3)
    gap = (offsets.abs() - 1).clamp(min=0) * (box / n_c)  # the least separation of two cells, per axis
    return n_c, offsets[gap.norm(dim=1) < cutoff]  # the corners of the cube are out of reach


def cells(positions: torch.Tensor, box: float, cutoff: float, reach: int | None = REACH):
    """(order, first, above): the particles sorted by cell (``order``), the start of each cell in that order
    (``first``, one more entry than cells), and for each cell the cells above it (higher index) within ``reach``
    cells and within the cutoff of it, as lists. One cell (and ``order`` the identity) where ``reach`` cells each
    way cover the box, or ``reach`` is None (every pair)."""
    n_c, offsets = stencil(box, cutoff, reach)
    if n_c == 1:
        return torch.arange(len(positions)), [0, len(positions)], [[]]
    idx = torch.clamp((torch.remainder(positions, box) * (n_c / box)).long(), max=n_c - 1)
    cell = (idx[:, 0] * n_c + idx[:, 1]) * n_c + idx[:, 2]
    order = torch.sort(cell, stable=True).indices
    first = [0] + torch.bincount(cell, minlength=n_c**3).cumsum(0).tolist()
    grid = torch.cartesian_prod(*[torch.arange(n_c)] * 3)  # (n_c^3, 3), row c is cell c
    near = torch.remainder(grid[:, None, :] + offsets[None], n_c)
    near = (near[..., 0] * n_c + near[..., 1]) * n_c + near[..., 2]  # (cells, stencil)
    above = [sorted({int(b) for b in row if b > a}) for a, row in enumerate(near.tolist())]
    return order, first, above


def _weighted(x: torch.Tensor, positions: torch.Tensor, box: float, distances, block: int, kernel, reach):
    """(len(distances), N): W_d x with W_d[j, k] = exp(-(r_jk - d)^2 / 2) for r_jk < max(d) + 5.

    W_d is symmetric, so each row block evaluates only the columns after it: the rest of its own cell from its
    first row on (its square diagonal block in full) and the cells above its own within reach, the part beyond
    the block used twice (as W[rows, right] and its transpose). With one cell that is every column from the
    block's first row on: N^2 / 2 pairs."""
    cutoff = max(distances) + 5.0
    order, first, reach = cells(positions, box, cutoff, reach)
    one_cell = len(reach) == 1
    if one_cell:  # order is the identity: no sorting, no unsorting
        x_s, pos_s = x, positions
    else:
        order = order.to(x.device)
        x_s, pos_s = x[order], positions[order]
    out = x.new_zeros(len(distances), len(x))
    d = torch.tensor(distances, dtype=x.dtype, device=x.device)[:, None, None]
    for a, above in enumerate(reach):
        end = first[a + 1]
        others = torch.cat([torch.arange(0)] + [torch.arange(first[b], first[b + 1]) for b in above]).to(x.device)
        for start in range(first[a], end, block):
            stop = min(start + block, end)
            if one_cell:  # columns start..N: contiguous, no gather
                right, x_right = pos_s[start:], x_s[start:]
            else:
                right = torch.cat([pos_s[start:end], pos_s[others]])
                x_right = torch.cat([x_s[start:end], x_s[others]])
            mine, beyond = kernel(pos_s[start:stop], right, x_right, x_s[start:stop], d, box, cutoff)
            out[:, start:stop] += mine
            if one_cell:
                out[:, stop:] += beyond
            else:
                out[:, stop:end] += beyond[:, : end - stop]
                out.index_add_(1, others, beyond[:, end - stop :])
    return out if one_cell else torch.empty_like(out).index_copy_(1, order, out)


class _QuadraticForm(torch.autograd.Function):
    """x^T W_d x for each d, with W_d built block by block and never stored."""

    @staticmethod
    def forward(ctx, x, positions, box, distances, block, kernel, reach):
        wx = _weighted(x.detach(), positions, box, distances, block, kernel, reach)
        ctx.save_for_backward(wx)
        return wx @ x

    @staticmethod
    def backward(ctx, grad):
        (wx,) = ctx.saved_tensors
        return 2 * grad @ wx, None, None, None, None, None, None


def spatial_correlation(
    x: torch.Tensor,
    positions: torch.Tensor,
    box: float,
    distances=DISTANCES,
    block: int = 256,
    kernel=pair_block,
    reach: int | None = REACH,
) -> torch.Tensor:
    """F(X, d) for each d in ``distances``: shape (len(distances),); differentiable in ``x``. ``kernel``: the
    row-block function (``pair_block`` or a compiled copy of it); ``reach``: cells per cutoff (None: every pair
    evaluated, the reference the cells are tested against)."""
    dx = x - x.mean()
    args = (positions.to(x.dtype), float(box), tuple(distances), block, kernel, reach)
    return _QuadraticForm.apply(dx, *args) / (dx * dx).sum()


def terms(
    pred_node,
    md_node,
    pred_edge,
    md_edge,
    pred_t,
    md_t,
    positions,
    box,
    f_md=None,
    kernel=pair_block,
    species=None,
    anchors=None,
) -> dict:
    """Every loss term of one graph (tensors); ``f_md`` = F(md, d) may be passed in when cached. With ``species``
    (0/1 per node) also the node-phase terms that do not chase the graph's own species means (``species_terms``;
    ``anchors``: the training set's mean C_B per species, for ``anchored``)."""
    var_md = md_node.var(unbiased=False)
    f_md = spatial_correlation(md_node, positions, box) if f_md is None else f_md
    f_pred = spatial_correlation(pred_node, positions, box, kernel=kernel)
    f_norm = (f_md[0] - f_md[-1]).abs()
    out = {
        "mse": ((pred_node - md_node) ** 2).mean() / var_md,
        "var": (pred_node.var(unbiased=False) - var_md).abs() / var_md,
        "corr": ((f_pred - f_md).abs() / f_norm).sum(),
        "edge": ((pred_edge - md_edge) ** 2).mean() / var_md,
        "global": (pred_t - md_t) ** 2,
    }
    if species is not None:
        out.update(species_terms(pred_node, md_node, species, anchors))
    return out


def species_terms(pred, md, species, anchors=None) -> dict:
    """The node terms blind to each species' mean in the graph:

        L_dev  = mean_j ((pred_j - <pred>_s(j)) - (md_j - <md>_s(j)))^2 / Var(md)
        L_rho  = 1 - sum_s n_s rho_s / N,      rho_s = Pearson(pred, md) over the particles of species s

        L_anc  = L_dev + sum_s (n_s / N) (<pred>_s - a_s)^2 / Var(md),   a_s: ``anchors[s]``

    L_MSE = L_dev + sum_s (n_s / N) (<pred>_s - <md>_s)^2 / Var(md): its second part asks each graph's species means
    for the graph's own, which differ from graph to graph with the temperature (no input carries it). A prediction
    constant within each species scores L_dev = (within-species variance) / Var(md) and L_rho = 1 whatever the
    constants: neither term rewards fitting them, and their gradients have no part along the directions that move
    a species' prediction as a whole. L_anc holds each species' mean at the training set's mean ``a_s`` instead of
    the graph's (docs/training.md, "The plateau")."""
    dev = torch.zeros_like(md)
    rho = md.new_zeros(())
    for s in (0, 1):
        mask = species == s
        n = int(mask.sum())
        if n < 2:
            continue
        p, m = pred[mask] - pred[mask].mean(), md[mask] - md[mask].mean()
        dev = dev.index_put((mask.nonzero().squeeze(1),), p - m)
        norm = (p.square().sum() * m.square().sum()).sqrt()
        rho = rho + n * (p * m).sum() / norm.clamp_min(1e-30)
    var = md.var(unbiased=False)
    out = {"deviation": dev.square().mean() / var, "pearson": 1.0 - rho / len(md)}
    if anchors is not None:
        means = sum(
            (species == s).sum() * (pred[species == s].mean() - anchors[s]).square()
            for s in (0, 1)
            if (species == s).any()
        )
        out["anchored"] = out["deviation"] + means / len(md) / var
    return out


def combine(
    t: dict, switched_on: bool, lambda_node=0.5, lambda_edge=0.5, lambda_g=1e-2, w_v=1.0, w_c=0.5
) -> torch.Tensor:
    """L_all from the terms; before the switch epoch only L_MSE, L_edge count (w_v = w_c = lambda_g = 0).
    ``lambda_edge = 0`` leaves the edge term out altogether (node-only training on data without edge targets,
    where that term is NaN)."""
    node = t["mse"] + (w_v * t["var"] + w_c * t["corr"] if switched_on else 0.0)
    total = lambda_node * node + (lambda_edge * t["edge"] if lambda_edge else 0.0)
    return total + lambda_g * t["global"] if switched_on else total

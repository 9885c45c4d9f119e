"""The T-BOTAN loss (SPEC §5), per configuration (graph).

    L_all  = lambda_n L_node + lambda_e L_edge + [epoch >= switch] lambda_g L_global
    L_node = L_MSE + [epoch >= switch] (w_v L_Var + w_c L_Corr)
    L_MSE  = mean_j (pred_j - md_j)^2 / Var(md)
    L_Var  = |Var(pred) - Var(md)| / Var(md)
    L_Corr = sum_{d in 2,4,6} |F(pred, d) - F(md, d)| / F_N,     F_N = |F(md, 2) - F(md, 6)|
    F(X, d) = sum_{j,k} dX_j dX_k exp(-(r_jk - d)^2 / 2) / sum_j dX_j^2,   dX = X - mean(X)
    L_edge = mean (pred_e - md_e)^2 / Var(md C_B);   L_global = (T_pred - T)^2

The double sum in F runs over all ordered pairs j, k *including j = k* (as written; the diagonal adds
exp(-d^2/2) sum dX^2), with minimum-image distances in the thermal structure, cut at d_max + 5 where
the Gaussian is below 4e-6. It never holds an N x N matrix: ``pair_weights`` works in row blocks of
``block`` particles (memory O(block N)), and the quadratic form's gradient, 2 W dX, is the matvec
already made in the forward pass. Cost: N^2 / 2 distance evaluations per graph and step (W is symmetric;
N = 4096: 8.4 M pairs).
"""

from __future__ import annotations

import torch

from ..core import minimum_image

DISTANCES = (2.0, 4.0, 6.0)


def pair_block(rows, right, x_right, x_rows, d, box: float, cutoff: float):
    """One row block of W_d x: ``rows`` (b, 3) positions of the block, ``right`` (M, 3) positions from the block's
    first row on, ``d`` (D, 1, 1). Returns (W[rows, right] x_right (D, b), W[rows, right beyond the block]^T x_rows
    (D, M - b)). The hot loop of F; ``training.compile`` compiles it (tbotan.learn.compiled)."""
    r = minimum_image(rows[:, None, :] - right[None, :, :], box).norm(dim=-1)  # (b, M)
    w = torch.exp(-0.5 * (r[None] - d) ** 2) * (r < cutoff)
    return w @ x_right, torch.einsum("dbk,b->dk", w[:, :, rows.shape[0] :], x_rows)


def _weighted(x: torch.Tensor, positions: torch.Tensor, box: float, distances, block: int, kernel) -> torch.Tensor:
    """(len(distances), N): W_d x with W_d[j, k] = exp(-(r_jk - d)^2 / 2) for r_jk < max(d) + 5.

    W_d is symmetric, so each row block evaluates only the columns from its own first row on: its square
    diagonal block in full, and the block to its right used twice (as W[rows, right] and its transpose): about
    N^2 / 2 pairs instead of N^2."""
    cutoff = max(distances) + 5.0
    n = len(x)
    out = x.new_zeros(len(distances), n)
    d = torch.tensor(distances, dtype=x.dtype, device=x.device)[:, None, None]
    for start in range(0, n, block):
        stop = min(start + block, n)
        mine, beyond = kernel(positions[start:stop], positions[start:], x[start:], x[start:stop], d, box, cutoff)
        out[:, start:stop] += mine
        out[:, stop:] += beyond
    return out


class _QuadraticForm(torch.autograd.Function):
    """x^T W_d x for each d, with W_d built block by block and never stored."""

    @staticmethod
    def forward(ctx, x, positions, box, distances, block, kernel):
        wx = _weighted(x.detach(), positions, box, distances, block, kernel)
        ctx.save_for_backward(wx)
        return wx @ x

    @staticmethod
    def backward(ctx, grad):
        (wx,) = ctx.saved_tensors
        return 2 * grad @ wx, None, None, None, None, None


def spatial_correlation(
    x: torch.Tensor, positions: torch.Tensor, box: float, distances=DISTANCES, block: int = 256, kernel=pair_block
) -> torch.Tensor:
    """F(X, d) for each d in ``distances``: shape (len(distances),); differentiable in ``x``. ``kernel``: the
    row-block function (``pair_block`` or a compiled copy of it)."""
    dx = x - x.mean()
    args = (positions.to(x.dtype), float(box), tuple(distances), block, kernel)
    return _QuadraticForm.apply(dx, *args) / (dx * dx).sum()


def terms(pred_node, md_node, pred_edge, md_edge, pred_t, md_t, positions, box, f_md=None, kernel=pair_block) -> dict:
    """Every loss term of one graph (tensors); ``f_md`` = F(md, d) may be passed in when cached."""
    var_md = md_node.var(unbiased=False)
    f_md = spatial_correlation(md_node, positions, box) if f_md is None else f_md
    f_pred = spatial_correlation(pred_node, positions, box, kernel=kernel)
    f_norm = (f_md[0] - f_md[-1]).abs()
    return {
        "mse": ((pred_node - md_node) ** 2).mean() / var_md,
        "var": (pred_node.var(unbiased=False) - var_md).abs() / var_md,
        "corr": ((f_pred - f_md).abs() / f_norm).sum(),
        "edge": ((pred_edge - md_edge) ** 2).mean() / var_md,
        "global": (pred_t - md_t) ** 2,
    }


def combine(
    t: dict, switched_on: bool, lambda_node=0.5, lambda_edge=0.5, lambda_g=1e-2, w_v=1.0, w_c=0.5
) -> torch.Tensor:
    """L_all from the terms; before the switch epoch only L_MSE, L_edge count (w_v = w_c = lambda_g = 0).
    ``lambda_edge = 0`` leaves the edge term out altogether (node-only training on data without edge targets,
    where that term is NaN)."""
    node = t["mse"] + (w_v * t["var"] + w_c * t["corr"] if switched_on else 0.0)
    total = lambda_node * node + (lambda_edge * t["edge"] if lambda_edge else 0.0)
    return total + lambda_g * t["global"] if switched_on else total

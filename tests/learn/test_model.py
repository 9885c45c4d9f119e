"""T-BOTAN architecture and loss against docs/method.md §4-§5 (NumPy double sums as the reference)."""

import numpy as np
import pytest
import torch

from tbotan.learn import loss
from tbotan.learn.model import TBotan, parameter_count


def random_graph(n=50, e=400, features=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    species = (torch.rand(n, generator=g) < 0.2).long()
    edges = torch.randint(0, n, (e, 2), generator=g)
    return species, edges, torch.randn(e, features, generator=g)


def test_architecture_matches_the_spec():
    m = TBotan()
    linear = [mod for mod in m.modules() if isinstance(mod, torch.nn.Linear)]
    # encoders 2x2, edge/node/global MLPs 3x2, shared decoder 3, global decoder 3: no per-step copies
    assert len(linear) == 4 + 6 + 3 + 3
    assert m.edge_mlp[0].in_features == 256 and m.node_mlp[0].in_features == 192
    assert m.global_mlp[0].in_features == 128 and m.edge_decoder is m.node_decoder
    assert parameter_count(m) == 75138  # documented in docs/model.md
    assert parameter_count(TBotan(decoder_mode="separate")) == 75138 + 8385
    assert TBotan(variant="thermal").edge_encoder[0].in_features == 1


def test_global_feature_is_never_fed_back():
    torch.manual_seed(0)
    m = TBotan(steps=3)
    species, edges, feats = random_graph()
    a = m(species, edges, feats)
    with torch.no_grad():
        for p in m.global_mlp.parameters():
            p.add_(torch.randn_like(p))
    b = m(species, edges, feats)
    assert torch.equal(a.node, b.node) and torch.equal(a.edge, b.edge)
    assert not torch.equal(a.u, b.u) and a.u.shape == (64,)


def test_relabelling_particles_permutes_the_predictions():
    torch.manual_seed(1)
    m = TBotan(steps=2).double()
    species, edges, feats = random_graph()
    perm = torch.randperm(len(species))
    inverse = torch.argsort(perm)
    a = m(species, edges, feats.double())
    b = m(species[perm], inverse[edges], feats.double())
    torch.testing.assert_close(b.node, a.node[perm])
    torch.testing.assert_close(b.edge, a.edge)
    torch.testing.assert_close(b.t, a.t)


def numpy_f(x, pos, box, d):
    dx = x - x.mean()
    diff = pos[:, None] - pos[None]
    diff -= box * np.round(diff / box)
    r = np.linalg.norm(diff, axis=-1)
    total = 0.0
    for j in range(len(x)):  # the double sum, j = k included, as written
        for k in range(len(x)):
            if r[j, k] < 11.0:
                total += dx[j] * dx[k] * np.exp(-((r[j, k] - d) ** 2) / 2)
    return total / np.sum(dx**2)


def test_spatial_correlation_equals_the_double_sum_and_its_gradient_is_right():
    rng = np.random.default_rng(0)
    box, n = 9.0, 70
    pos = rng.uniform(0, box, (n, 3))
    x = rng.normal(size=n)
    f = loss.spatial_correlation(torch.tensor(x), torch.tensor(pos), box, block=16)
    for i, d in enumerate(loss.DISTANCES):
        assert f[i].item() == pytest.approx(numpy_f(x, pos, box, d), rel=1e-12)
    xt = torch.tensor(x, requires_grad=True)
    assert torch.autograd.gradcheck(lambda v: loss.spatial_correlation(v, torch.tensor(pos), box, block=16), (xt,))


def test_spatial_correlation_with_cells_equals_every_pair():
    """Beyond L = 25.7 the pairs are found through cells (loss.REACH); the sum is the same to float rounding."""
    rng = np.random.default_rng(3)
    box, n = 34.0, 900  # 9 cells of 3.8 per axis; a low density keeps the reference quick
    pos = rng.uniform(0, box, (n, 3))
    x = rng.normal(size=n)
    order, first, above = loss.cells(torch.tensor(pos), box, 11.0)
    assert len(first) == 9**3 + 1 and sorted(order.tolist()) == list(range(n))
    diff = pos[:, None, :] - pos[None, :, :]
    r = np.linalg.norm(diff - box * np.round(diff / box), axis=-1)
    dx = x - x.mean()
    for blocks in (256, 3):  # a cell in one block, and split over several
        f = loss.spatial_correlation(torch.tensor(x), torch.tensor(pos), box, block=blocks)
        every = loss.spatial_correlation(torch.tensor(x), torch.tensor(pos), box, block=blocks, reach=None)
        for i, d in enumerate(loss.DISTANCES):
            w = np.exp(-((r - d) ** 2) / 2) * (r < 11.0)
            assert f[i].item() == pytest.approx(dx @ w @ dx / (dx @ dx), rel=1e-12)
        torch.testing.assert_close(f, every, rtol=1e-12, atol=0)
    xt = torch.tensor(x, requires_grad=True)
    loss.spatial_correlation(xt, torch.tensor(pos), box).sum().backward()
    xe = torch.tensor(x, requires_grad=True)
    loss.spatial_correlation(xe, torch.tensor(pos), box, reach=None).sum().backward()
    torch.testing.assert_close(xt.grad, xe.grad, rtol=1e-10, atol=1e-14)


def test_loss_terms_and_the_switch():
    rng = np.random.default_rng(1)
    n, e = 40, 100
    md, pred = torch.tensor(rng.uniform(0.3, 1, n)), torch.tensor(rng.uniform(0.3, 1, n))
    md_e, pred_e = torch.tensor(rng.normal(size=e)), torch.tensor(rng.normal(size=e))
    pos = torch.tensor(rng.uniform(0, 8, (n, 3)))
    t = loss.terms(pred, md, pred_e, md_e, torch.tensor(0.5), torch.tensor(0.44), pos, 8.0)
    var = md.var(unbiased=False)
    assert t["mse"].item() == pytest.approx((((pred - md) ** 2).mean() / var).item())
    assert t["var"].item() == pytest.approx(abs(pred.var(unbiased=False) - var).item() / var.item())
    assert t["edge"].item() == pytest.approx((((pred_e - md_e) ** 2).mean() / var).item())
    assert t["global"].item() == pytest.approx(0.06**2)
    off = loss.combine(t, switched_on=False)
    on = loss.combine(t, switched_on=True)
    assert off.item() == pytest.approx(0.5 * t["mse"].item() + 0.5 * t["edge"].item())
    assert on.item() == pytest.approx(
        off.item() + 0.5 * (t["var"] + 0.5 * t["corr"]).item() + 1e-2 * t["global"].item()
    )
    # the prediction equal to MD has zero loss in every term but the global one
    z = loss.terms(md, md, md_e, md_e, torch.tensor(0.44), torch.tensor(0.44), pos, 8.0)
    assert all(v.item() == pytest.approx(0.0, abs=1e-12) for v in z.values())


def test_factorised_edge_update_equals_the_concatenation():
    """The forward pass evaluates the edge MLP's first layer block-wise; a plain implementation of docs/method.md §4
    with the concatenation, written here with the same weights, gives the same outputs."""
    torch.manual_seed(3)
    m = TBotan("both", hidden=16, steps=3).double()
    n, n_e = 40, 300
    species = torch.randint(0, 2, (n,))
    edges = torch.randint(0, n, (n_e, 2))
    feats = torch.randn(n_e, 4, dtype=torch.float64)
    out = m(species, edges, feats)
    src, dst = edges[:, 0], edges[:, 1]
    h_enc = m.node_encoder(torch.nn.functional.one_hot(species, 2).double())
    e_enc = m.edge_encoder(feats)
    h, e, g = h_enc, e_enc, torch.zeros(16, dtype=torch.float64)
    for _ in range(3):
        e = m.edge_mlp(torch.cat([h[src], h[dst], e, e_enc], dim=1))
        h = m.node_mlp(torch.cat([h, h_enc, torch.zeros_like(h).index_add_(0, dst, e)], dim=1))
        g = m.global_mlp(torch.cat([g, h.mean(0)]))
    torch.testing.assert_close(out.node, m.node_decoder(h).squeeze(-1), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(out.edge, m.edge_decoder(e).squeeze(-1), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(out.u, g, rtol=1e-12, atol=1e-12)


def test_checkpointed_steps_give_the_same_gradients():
    """``training.checkpoint`` recomputes each message-passing step in the backward pass: same outputs, same
    gradients (bit for bit: the recomputation is the same arithmetic)."""
    torch.manual_seed(4)
    n, n_e = 50, 400
    species = torch.randint(0, 2, (n,))
    edges = torch.randint(0, n, (n_e, 2))
    feats = torch.randn(n_e, 4)
    grads = []
    for checkpoint in (False, True):
        torch.manual_seed(5)
        m = TBotan("both", hidden=16, steps=3)
        m.checkpoint_steps = checkpoint
        out = m(species, edges, feats)
        (out.node.square().sum() + out.edge.sum() + out.t).backward()
        grads.append([p.grad.clone() for p in m.parameters()])
    for a, b in zip(*grads):
        assert torch.equal(a, b)


def test_he_init_has_the_variance_it_claims():
    torch.manual_seed(0)
    model = TBotan(hidden=64, steps=2, init="he")
    w = model.node_mlp[0].weight
    assert w.var().item() == pytest.approx(2 / w.shape[1], rel=0.05)
    assert not model.node_mlp[0].bias.any()
    with pytest.raises(ValueError, match="unknown init 'xavier'"):
        TBotan(init="xavier")

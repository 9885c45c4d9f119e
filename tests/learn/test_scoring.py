"""Scoring (tbotan.learn.scoring): one graph's loss terms in float32 or bfloat16, the objective with its schedule,
the validation means, and the temperature head's health; on the real store of jobs/ci.yaml (test_train.py's
``wide``)."""

import numpy as np
import pytest
import torch

from tbotan.data.runs import TERMS
from tbotan.learn import loss
from tbotan.learn.graphs import load_graphs
from tbotan.learn.model import TBotan
from tbotan.learn.recipe import output_units
from tbotan.learn.scoring import graph_terms, objective, pearson_a, temperature_head, validate
from tests.learn.test_train import wide  # noqa: F401  (the fixture)


def test_bfloat16_forward_keeps_outputs_and_loss_in_float32(wide):  # noqa: F811
    """``training.precision: bfloat16``: the products run in bf16, C_B comes out in fp32 around its training mean
    (in bf16, 0.9 would be resolved to 0.004, a tenth of C_B's spread), and L_MSE and L_edge are the fp32 ones
    to a few per cent."""
    _, spec, store = wide
    graphs = load_graphs(store, [0.8, 2.0], split=0)
    torch.manual_seed(0)
    model = TBotan(hidden=16, steps=2)
    model.set_output_units(*output_units(graphs, "centered"))
    g = graphs[0]
    full, half = graph_terms(model, g, "both"), graph_terms(model, g, "both", precision="bfloat16")
    assert full["node"].dtype == half["node"].dtype == torch.float32 and half["mse"].dtype == torch.float32
    assert not torch.equal(half["node"], full["node"])  # the products did run in bf16
    # the same function to bf16's rounding of the node-to-node deviations (at initialisation 1e-3 of the mean)
    assert float(torch.corrcoef(torch.stack([half["node"], full["node"]]))[0, 1]) > 0.95
    assert half["node"].unique().numel() > 0.9 * full["node"].unique().numel()  # not quantised around the shift
    for k in ("mse", "edge"):
        assert float(half[k]) == pytest.approx(float(full[k]), rel=0.05), k
    # L_Corr reads the spatial pattern of deviations that are 1e-3 of the mean here: bf16's rounding, white in
    # space, moves it by tens of per cent at initialisation (not asserted; docs/training.md measures training)
    assert torch.isfinite(half["corr"])
    # the gradient flows to every parameter through the autocast region
    model.zero_grad()
    (half["mse"] + half["edge"] + half["corr"] + half["global"]).backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


def test_pretraining_counts_only_the_edge_term():
    values = {"mse": 2.0, "var": 3.0, "corr": 5.0, "edge": 7.0, "global": 1.0}
    t = {k: torch.tensor(v, requires_grad=True) for k, v in values.items()}
    s = {"lambda_node": 0.5, "lambda_edge": 0.5, "lambda_g": 0.01, "w_v": 1.0, "w_c": 0.5, "pretrain_target": "edge"}
    loss = objective(t, False, s, pretraining=True)
    loss.backward()
    assert float(loss.detach()) == 3.5 and t["edge"].grad == 0.5 and t["mse"].grad == 0.0 and t["global"].grad == 0.0
    assert float(objective(t, False, s)) == 0.5 * 2.0 + 0.5 * 7.0
    node_first = objective(t, False, {**s, "pretrain_target": "node"}, pretraining=True)
    assert float(node_first.detach()) == 1.0


def test_global_start_epoch_counts_the_global_term_before_the_switch():
    values = {"mse": 2.0, "var": 3.0, "corr": 5.0, "edge": 7.0, "global": 1.0}
    t = {k: torch.tensor(v) for k, v in values.items()}
    s = {"lambda_node": 0.5, "lambda_edge": 0.5, "lambda_g": 0.01, "w_v": 1.0, "w_c": 0.5, "pretrain_target": "edge"}
    assert float(objective(t, False, s, global_on=True)) == pytest.approx(0.5 * 2.0 + 0.5 * 7.0 + 0.01)
    # during pre-training it counts beside the one pre-training target, with its gradient
    t = {k: torch.tensor(v, requires_grad=True) for k, v in values.items()}
    loss = objective(t, False, {**s, "pretrain_target": "node"}, pretraining=True, global_on=True)
    loss.backward()
    assert float(loss.detach()) == pytest.approx(0.5 * 2.0 + 0.01)
    assert t["global"].grad == pytest.approx(0.01) and t["edge"].grad == 0.0 and t["mse"].grad == 0.5


def test_validation_is_the_mean_of_each_graphs_terms_with_every_term_on(wide):  # noqa: F811
    _, spec, store = wide
    graphs = load_graphs(store, [0.8, 2.0], split=0)
    torch.manual_seed(0)
    model = TBotan(hidden=8, steps=2)
    s = {"lambda_node": 0.5, "lambda_edge": 0.5, "lambda_g": 0.01, "w_v": 1.0, "w_c": 0.5, "pretrain_target": "edge"}
    val = validate(model, graphs, "both", s)
    with torch.no_grad():
        terms = [graph_terms(model, g, "both") for g in graphs]
    for k in TERMS:
        assert val[k] == pytest.approx(np.mean([float(t[k]) for t in terms]), rel=1e-6), k
    assert val["objective"] == pytest.approx(np.mean([float(objective(t, True, s)) for t in terms]), rel=1e-6)
    assert val["pearson_A"] == pytest.approx(np.mean([pearson_a(t["node"], g) for t, g in zip(terms, graphs)]))
    # pearson_a is the Pearson correlation over the A particles
    g, node = graphs[0], terms[0]["node"]
    a = (g.species == 0).numpy()
    expected = np.corrcoef(node.numpy()[a].astype(float), g.node_target.numpy()[a].astype(float))[0, 1]
    assert pearson_a(node, g) == pytest.approx(expected, rel=1e-6)


def test_temperature_head_dead_or_alive():
    labels = [0.64, 0.8, 0.64, 0.8]
    dead = temperature_head([(0.72, T) for T in labels], torch.tensor([0.0, 0.3, 0.0]), True, 3)
    assert dead["dead"] and dead["u_alive"] == 1 and dead["label_spread"] == pytest.approx(0.08)
    alive = temperature_head([(T + 0.01, T) for T in labels], torch.tensor([0.1, 0.3, 0.0]), True, 3)
    assert not alive["dead"] and alive["spread"] == pytest.approx(0.08) and alive["slope"] == pytest.approx(1.0)
    scatter = temperature_head([(p, T) for p, T in zip([0.70, 0.74, 0.74, 0.70], labels)], None, True, 3)
    assert scatter["dead"] and scatter["slope"] == pytest.approx(0.0) and scatter["spread"] > 0.01  # noise, not T
    assert not temperature_head([(0.72, T) for T in labels], None, False, 3)["dead"]  # not switched on yet


def test_species_terms_against_numpy_and_blind_to_each_species_mean():
    rng = np.random.default_rng(3)
    species = torch.tensor(rng.permutation([0] * 40 + [1] * 10))
    md = torch.tensor(0.9 + 0.05 * rng.standard_normal(50), dtype=torch.float64)
    pred = torch.tensor(0.9 + 0.02 * rng.standard_normal(50), dtype=torch.float64)
    s, m, p = species.numpy(), md.numpy(), pred.numpy()
    dev = np.zeros(50)
    rho = 0.0
    for k in (0, 1):
        sel = s == k
        dev[sel] = (p[sel] - p[sel].mean()) - (m[sel] - m[sel].mean())
        rho += sel.sum() * np.corrcoef(p[sel], m[sel])[0, 1]
    got = loss.species_terms(pred, md, species)
    assert float(got["deviation"]) == pytest.approx(np.mean(dev**2) / m.var(), rel=1e-12)
    assert float(got["pearson"]) == pytest.approx(1 - rho / 50, rel=1e-12)
    # a constant per species, whatever the constants, scores the same; moving a species as a whole changes nothing
    for a, b in ((0.0, 0.0), (0.9, 0.7), (-3.0, 5.0)):
        const = torch.where(species == 0, a, b).double()
        t = loss.species_terms(const, md, species)
        within = sum((s == k).sum() * m[s == k].var() for k in (0, 1)) / 50 / m.var()
        assert float(t["deviation"]) == pytest.approx(within, rel=1e-12) and float(t["pearson"]) == 1.0
    shifted = loss.species_terms(pred + torch.where(species == 0, 0.3, -0.2).double(), md, species)
    assert float(shifted["deviation"]) == pytest.approx(float(got["deviation"]), rel=1e-9)
    # L_anc: L_dev plus each species' mean against its anchor (0 when the means sit on the anchors)
    anchors = torch.tensor([0.95, 0.85], dtype=torch.float64)
    anc = float(loss.species_terms(pred, md, species, anchors)["anchored"])
    held = sum((s == k).sum() * (p[s == k].mean() - anchors[k].item()) ** 2 for k in (0, 1)) / 50 / m.var()
    assert anc == pytest.approx(float(got["deviation"]) + held, rel=1e-12)
    on_anchors = pred - torch.where(species == 0, pred[species == 0].mean() - 0.95, pred[species == 1].mean() - 0.85)
    assert float(loss.species_terms(on_anchors, md, species, anchors)["anchored"]) == pytest.approx(
        float(got["deviation"]), rel=1e-9
    )
    # L_MSE = L_dev + the species means' part: the decomposition the node phase's choice rests on
    mse = float(((pred - md) ** 2).mean() / md.var(unbiased=False))
    means = sum((s == k).sum() * (p[s == k].mean() - m[s == k].mean()) ** 2 for k in (0, 1)) / 50 / m.var()
    assert mse == pytest.approx(float(got["deviation"]) + means, rel=1e-12)


@pytest.mark.parametrize(
    "target, term", [("node", "mse"), ("deviation", "deviation"), ("pearson", "pearson"), ("anchored", "anchored")]
)
def test_the_node_phase_counts_only_its_term(target, term):
    names = TERMS + ("deviation", "pearson", "anchored")
    terms = {k: torch.tensor(float(i + 1), requires_grad=True) for i, k in enumerate(names)}
    settings = {"pretrain_target": target, "lambda_node": 0.5}
    total = objective(terms, False, settings, pretraining=True)
    total.backward()
    assert float(total.detach()) == 0.5 * float(terms[term].detach())
    assert terms["edge"].grad is not None and terms["global"].grad is not None  # kept in the graph for DDP

"""The training recipe (tbotan.learn.recipe, docs/training.md): the units of inputs and outputs, Adam's parameter
groups, the learning-rate schedule, the ramp, the settings a checkpoint records, and the spec's refusal of impossible
recipes; on the real store of jobs/ci.yaml (test_train.py's ``wide``). Training with each recipe: test_train.py."""

import math

import numpy as np
import pytest
import torch
import yaml

from tbotan.data.spec import SpecError, load_spec
from tbotan.learn.graphs import edge_features, load_graphs
from tbotan.learn.model import TBotan
from tbotan.learn.recipe import (
    RECIPE_DEFAULTS,
    edge_input_units,
    fit_readouts,
    fit_temperature_readout,
    learning_rate,
    message_input_units,
    output_units,
    parameter_groups,
    ramped,
    run_settings,
)
from tbotan.learn.scoring import objective
from tests.learn.test_train import CI_SPEC, recipe, wide  # noqa: F401  (the fixture)


def test_output_units_are_the_training_sets_mean_and_spread(wide):  # noqa: F811
    _, spec, store = wide
    graphs = load_graphs(store, [0.8, 2.0], split=0)
    shift, scale = output_units(graphs)
    node = np.concatenate([g.node_target.numpy() for g in graphs]).astype(float)
    temps = np.array([g.temperature for g in graphs])
    assert shift[0] == pytest.approx(node.mean()) and scale[0] == pytest.approx(node.std())
    assert shift[2] == pytest.approx(temps.mean()) and scale[2] == pytest.approx(temps.std())
    one_t = [g for g in graphs if g.temperature == 0.8]
    assert output_units(one_t)[1][2] == 1.0  # one temperature: no spread, unit scale

    torch.manual_seed(0)
    model = TBotan(hidden=8, steps=2)
    g = graphs[0]
    raw = model(g.species, g.edges, edge_features(g, "both"))
    model.set_output_units(shift, scale)
    scaled = model(g.species, g.edges, edge_features(g, "both"))
    for k, (a, b) in enumerate(zip(shift, scale)):
        name = ("node", "edge", "t")[k]
        torch.testing.assert_close(getattr(scaled, name), a + b * getattr(raw, name))
    # the units travel with the state dict; a state dict made before they existed reads as the identity
    other = TBotan(hidden=8, steps=2)
    other.load_state_dict(model.state_dict())
    assert torch.equal(other.output_scale, model.output_scale)
    old = {k: v for k, v in model.state_dict().items() if not k.startswith("output_")}
    other.load_state_dict(old)
    assert torch.equal(other.output_scale, torch.ones(3)) and torch.equal(other.output_shift, torch.zeros(3))


def test_standardized_edge_input_is_the_paper_network_reparametrised(wide):  # noqa: F811
    _, spec, store = wide
    graphs = load_graphs(store, [0.8, 2.0], split=0)
    shift, scale = edge_input_units(graphs, "both")
    vec = np.concatenate([g.is_vectors.numpy() for g in graphs]).astype(float)
    dist = np.concatenate([g.thermal_distance.numpy()[:, 0] for g in graphs]).astype(float)
    assert shift == pytest.approx([0, 0, 0, dist.mean()]) and scale[3] == pytest.approx(dist.std())
    assert scale[:3] == pytest.approx([np.sqrt((vec**2).mean())] * 3)  # one scale: the augmentation commutes with it
    assert edge_input_units(graphs, "thermal") == ([shift[3]], [scale[3]])

    torch.manual_seed(0)
    units = TBotan(hidden=8, steps=2)
    units.set_edge_input_units(shift, scale)
    raw = TBotan(hidden=8, steps=2)
    state = dict(units.state_dict())
    first = units.edge_encoder[0]  # W (f - s) / c + b = (W / c) f + (b - W s / c)
    s, c = torch.tensor(shift), torch.tensor(scale)
    state["edge_encoder.0.weight"] = first.weight / c
    state["edge_encoder.0.bias"] = first.bias - (first.weight * (s / c)).sum(dim=1)
    state["edge_shift"], state["edge_scale"] = torch.zeros(4), torch.ones(4)
    assert_reparametrised(units, raw, state, graphs[0], "edge")


def assert_reparametrised(units: TBotan, raw: TBotan, state: dict, g, name: str) -> None:
    """``raw`` with ``state`` (``units``' weights with the first layer reparametrised, the ``name`` units at the
    identity) computes what ``units`` computes; a state dict without the ``name`` units (a checkpoint made before
    they existed) loads them as the identity."""
    raw.load_state_dict(state)
    a, b = units(g.species, g.edges, edge_features(g, "both")), raw(g.species, g.edges, edge_features(g, "both"))
    assert a.node.std() > 0
    for out in ("node", "edge", "t"):
        torch.testing.assert_close(getattr(a, out), getattr(b, out), rtol=1e-4, atol=1e-5)
    raw.load_state_dict({k: v for k, v in units.state_dict().items() if not k.startswith(f"{name}_s")})
    shift, scale = getattr(raw, f"{name}_shift"), getattr(raw, f"{name}_scale")
    assert torch.equal(scale, torch.ones_like(scale)) and torch.equal(shift, torch.zeros_like(shift))


def test_standardized_message_input_is_the_paper_network_reparametrised(wide):  # noqa: F811
    _, spec, store = wide
    graphs = load_graphs(store, [0.8, 2.0], split=0)
    torch.manual_seed(0)
    units = TBotan(hidden=8, steps=2)
    shift, scale = message_input_units(units, graphs, "both")
    # the reference: the sums of incoming messages of each step, summed edge by edge in NumPy from the edge MLP
    sums = []
    units.edge_mlp[-1].register_forward_hook(lambda mod, args, out: sums.append(out.detach().double().numpy()))
    for g in graphs:
        with torch.no_grad():
            units(g.species, g.edges, edge_features(g, "both"))
    per_node = []
    for k, e in enumerate(sums):
        dst = graphs[k // 2].edges[:, 1].numpy()
        acc = np.zeros((len(graphs[k // 2].species), 8))
        np.add.at(acc, dst, e)
        per_node.append(acc)
    x = np.concatenate(per_node)
    assert shift.numpy() == pytest.approx(x.mean(axis=0), rel=1e-4, abs=1e-6)
    floor = 1e-3 * np.sqrt((x.mean(axis=0) ** 2).mean())
    assert scale.numpy() == pytest.approx(x.std(axis=0) + floor, rel=1e-4)
    spread = x.std(axis=0) / np.abs(x.mean(axis=0)).clip(1e-12)
    assert np.median(spread) < 0.5  # the sum's node-to-node spread is small against its common part

    units.set_message_input_units(shift, scale)
    raw = TBotan(hidden=8, steps=2)
    state = dict(units.state_dict())
    first = units.node_mlp[0]  # the third block of the input, (m - s) / c: W3 / c and b - W3 s / c
    w = first.weight.detach().clone()
    w[:, 16:] = w[:, 16:] / scale
    state["node_mlp.0.weight"] = w
    state["node_mlp.0.bias"] = first.bias - (first.weight[:, 16:] * (shift / scale)).sum(dim=1)
    state["message_shift"], state["message_scale"] = torch.zeros(8), torch.ones(8)
    assert_reparametrised(units, raw, state, graphs[0], "message")


def test_switch_trunk_lr_factor_puts_the_trunk_in_a_group_of_its_own():
    model = TBotan(hidden=8, steps=2)
    rest, trunk = parameter_groups(model, 1.0, 0.0)
    trunk_modules = (model.node_encoder, model.edge_encoder, model.edge_mlp, model.node_mlp)
    assert trunk["trunk"] and {id(p) for p in trunk["params"]} == {id(p) for m in trunk_modules for p in m.parameters()}
    assert len(rest["params"]) + len(trunk["params"]) == len(list(model.parameters()))
    assert len(parameter_groups(model, 0.5, 0.0)) == 3


def test_global_lr_factor_puts_the_global_path_in_a_group_of_its_own():
    model = TBotan(hidden=8, steps=2)
    chain, rest = parameter_groups(model, 0.1)[::-1]
    assert chain["lr_factor"] == 0.1 and len(parameter_groups(model)) == 1
    assert {id(p) for p in chain["params"]} == {
        id(p) for m in (model.global_mlp, model.global_decoder) for p in m.parameters()
    }
    assert len(chain["params"]) + len(rest["params"]) == len(list(model.parameters()))


def test_learning_rate_schedule():
    s = {"lr": 1e-3, "warmup_epochs": 4, "schedule": "constant", "switch_epoch": 100, "switch_lr_factor": 1.0}
    assert [learning_rate(s, e) for e in range(6)] == pytest.approx([2.5e-4, 5e-4, 7.5e-4, 1e-3, 1e-3, 1e-3])
    s = {**s, "switch_epoch": 5, "switch_lr_factor": 0.1}  # a tenth of the step from the switch epoch (0-based) on
    assert [learning_rate(s, e) for e in range(7)] == pytest.approx([2.5e-4, 5e-4, 7.5e-4, 1e-3, 1e-3, 1e-4, 1e-4])
    s = {"lr": 1e-3, "warmup_epochs": 0, "schedule": "cosine", "schedule_epochs": 11, "switch_epoch": 100}
    s["switch_lr_factor"] = 1.0
    lrs = [learning_rate(s, e) for e in range(12)]
    assert lrs[0] == pytest.approx(1e-3) and lrs[-1] == pytest.approx(1e-5)
    assert lrs[5] == pytest.approx(1e-5 + 0.99e-3 * 0.5 * (1 + math.cos(math.pi / 2)))
    assert all(a > b for a, b in zip(lrs[:11], lrs[1:11]))


def test_switch_ramp_eases_w_v_and_w_c_in():
    s = {"switch_epoch": 3, "switch_ramp_epochs": 4, "w_v": 1.0, "w_c": 0.5, "lr": 1e-3}
    w = [(ramped(s, e)["w_v"], ramped(s, e)["w_c"]) for e in range(9)]
    # before the switch the weights do not count (objective's switched_on); from it on a quarter per epoch
    assert w[3:] == [(0.25, 0.125), (0.5, 0.25), (0.75, 0.375), (1.0, 0.5), (1.0, 0.5), (1.0, 0.5)]
    assert ramped({**s, "switch_ramp_epochs": 0}, 3) == {**s, "switch_ramp_epochs": 0}
    values = {"mse": 2.0, "var": 3.0, "corr": 5.0, "edge": 7.0, "global": 1.0}
    t = {k: torch.tensor(v) for k, v in values.items()}
    full = {"lambda_node": 0.5, "lambda_edge": 0.5, "lambda_g": 0.01, "pretrain_target": "node", **s}
    half = float(objective(t, True, ramped(full, 4)))  # w_v = 0.5, w_c = 0.25
    assert half == pytest.approx(0.5 * (2.0 + 0.5 * 3.0 + 0.25 * 5.0) + 0.5 * 7.0 + 0.01 * 1.0)


def test_run_settings_record_every_recipe_field_and_the_cosine_span(wide):  # noqa: F811
    _, spec, _ = wide
    s = run_settings(spec, 0.1, 2, 3)
    assert set(RECIPE_DEFAULTS) <= set(s) and "schedule_epochs" not in s
    assert (s["lambda_g"], s["graphs_per_step"], s["ranks_per_seed"], s["spec_seed"]) == (0.1, 2, 3, spec.seed)
    assert s["temperatures"] == [0.8, 2.0] and s["precision"] == spec.training.precision
    cosine = run_settings(recipe(spec, schedule="cosine", warmup_epochs=1), 0.1, 2, 3)
    assert cosine["schedule_epochs"] == spec.training.epochs and cosine["warmup_epochs"] == 1


def test_spec_refuses_impossible_recipes(tmp_path):
    from tests.helpers import ROOT

    text = (ROOT / "jobs" / "ci.yaml").read_text()
    for extra, match in [
        ("  scaling: robust\n", r"training\.scaling"),
        ("  pretrain_epochs: 3\n", r"training\.pretrain_epochs.*past the switch epoch 2"),
        ("  compile: maybe\n", r"training\.compile"),
        ("  precision: float16\n", r"training\.precision"),
        ("  recipe: fast\n", r"training\.recipe"),
    ]:
        path = tmp_path / "bad.yaml"
        path.write_text(text + extra)
        with pytest.raises(SpecError, match=match):
            load_spec(path)


def test_fit_readouts_is_the_least_squares_readout(wide):  # noqa: F811
    _, spec, store = wide
    graphs = load_graphs(store, [0.8, 2.0], split=0)
    torch.manual_seed(0)
    model = TBotan("both", hidden=16, steps=2, decoder_mode="separate")
    model.set_output_units(*output_units(graphs, "centered"))
    before = [model(g.species, g.edges, edge_features(g, "both")) for g in graphs]
    report = fit_readouts(model, graphs, "both")
    after = [model(g.species, g.edges, edge_features(g, "both")) for g in graphs]
    # the trunk is untouched: the temperature output (no readout of its own fitted) is the same
    assert all(torch.equal(a.t, b.t) for a, b in zip(after, before))
    for name, target in (("node", "node_target"), ("edge", "edge_target")):
        pred = torch.cat([getattr(o, name) for o in after]).double().detach().numpy()
        y = torch.cat([getattr(g, target) for g in graphs]).double().numpy()
        ok = np.isfinite(y)
        # NumPy: the best affine map of the decoder's features, refit independently with lstsq
        model_feats = []
        hook = getattr(model, f"{name}_decoder")[0].register_forward_hook(
            lambda m, i, o, out=model_feats: out.append(o)
        )
        with torch.no_grad():
            for g in graphs:
                model(g.species, g.edges, edge_features(g, "both"))
        hook.remove()
        z = torch.cat(model_feats).double().numpy()[ok]
        a = np.c_[z, np.ones(len(z))]
        w, *_ = np.linalg.lstsq(a, y[ok], rcond=None)
        best = np.mean((a @ w - y[ok]) ** 2)
        # to the rounding of the fitted weights to float32 (the features are nearly collinear)
        assert np.mean((pred[ok] - y[ok]) ** 2) == pytest.approx(best, rel=2e-3)
        assert report[name]["after"] <= report[name]["before"]
    with pytest.raises(ValueError, match="separate"):
        fit_readouts(TBotan("both", hidden=16, steps=2), graphs, "both")


def test_pretrain_readout_fit_needs_separate_decoders(tmp_path):
    data = yaml.safe_load(CI_SPEC.read_text())
    data["training"].update(pretrain_readout="fit", decoder="shared")
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(data))
    with pytest.raises(SpecError, match="pretrain_readout"):
        load_spec(tmp_path / "s.yaml")


def test_temperature_readout_is_the_leave_one_out_ridge(wide):  # noqa: F811
    _, spec, store = wide
    graphs = load_graphs(store, [0.8, 2.0], split=0) + load_graphs(store, [0.8, 2.0], split=1)
    torch.manual_seed(1)
    model = TBotan("both", hidden=8, steps=2, decoder_mode="separate")
    model.set_output_units(*output_units(graphs, "centered"))
    fit = fit_temperature_readout(model, graphs, "both")
    feats = []
    hook = model.global_decoder[0].register_forward_hook(lambda m, i, o: feats.append(o.double().numpy()))
    with torch.no_grad():
        t_pred = [float(model(g.species, g.edges, edge_features(g, "both")).t) for g in graphs]
    hook.remove()
    z = np.stack([f.reshape(-1) for f in feats])
    y = np.array([g.temperature for g in graphs])
    shift, scale = float(model.output_shift[2]), float(model.output_scale[2])
    a = np.c_[z, np.ones(len(z))]
    base = np.mean(z**2) * len(z)

    def solve(rows, ridge):  # the ridge fit on some rows (intercept free), in the decoder's units
        pen = ridge * np.diag([1.0] * z.shape[1] + [0.0])
        return np.linalg.solve(a[rows].T @ a[rows] + pen, a[rows].T @ ((y[rows] - shift) / scale))

    def loo(ridge):  # brute force: refit without each graph in turn
        out = [
            a[i] @ solve([j for j in range(len(y)) if j != i], ridge) - (y[i] - shift) / scale for i in range(len(y))
        ]
        return np.mean(np.square(out))

    best = min((10.0**k for k in range(-6, 5)), key=lambda f: loo(base * f))
    assert fit["penalty"] == pytest.approx(best)
    assert fit["loo_rmse"] == pytest.approx(np.sqrt(loo(base * best)) * abs(scale), rel=1e-6)
    want = shift + scale * (a @ solve(list(range(len(y))), base * best))
    np.testing.assert_allclose(t_pred, want, rtol=0, atol=1e-5)

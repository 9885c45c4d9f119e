"""Evaluation (tbotan.learn.evaluate) and the report (tbotan.analysis.report) on a real store of jobs/ci.yaml with
real trained models. The 2-rank test launches real processes (``python -m torch.distributed.run``, gloo)."""

import dataclasses
import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import zarr

from tbotan.analysis import fourpoint
from tbotan.analysis.report import ReportError, write_report
from tbotan.data.runs import model_dir
from tbotan.data.spec import load_spec
from tbotan.learn.checkpoints import build_model, load_checkpoint, model_shape
from tbotan.learn.evaluate import EvaluationError, evaluate
from tbotan.learn.graphs import edge_features, load_graphs
from tbotan.learn.inference import CUBE_GROUP, forward, predict
from tbotan.learn.portable import model_from_store
from tbotan.learn.train import train
from tests.helpers import torchrun, trained_copy

ROOT = Path(__file__).resolve().parents[2]
CI_SPEC = ROOT / "jobs" / "ci.yaml"
quiet = lambda line: None  # noqa: E731


@pytest.fixture(scope="module")
def trained(ci_store, tmp_path_factory):
    """A copy of the ci store with both seeds trained (4 epochs of the tiny ci model) and evaluated."""
    return trained_copy(ci_store, tmp_path_factory.mktemp("evaluate"))


def arrays(store, path="predictions"):
    root = zarr.open_group(str(store), mode="r")
    out = {}

    def walk(g, prefix):
        for name, a in g.arrays():
            out[f"{prefix}/{name}"] = a[:]
        for name, sub in g.groups():
            walk(sub, f"{prefix}/{name}")

    walk(root[path], path)
    return out


def test_predictions_follow_the_model_and_the_store(trained):
    spec, store = trained
    root = zarr.open_group(str(store), mode="r")
    for seed in range(spec.training.seeds):
        grp = root[f"predictions/both/seed{seed}"]
        ck_path = model_dir(store, spec, "both", seed=seed) / "best.pt"
        assert grp.attrs["complete"] and grp.attrs["checkpoint"] == str(ck_path.relative_to(store))
        model = build_model(model_shape(spec, "both"))
        model.load_state_dict(load_checkpoint(ck_path)["model"])
        model.eval()
        for T, tests in ((0.8, [1]), (2.0, [0, 1, 2])):  # ci spec: one test configuration at 0.8, all at 2.0
            tg = grp[f"T{T:.3f}"]
            assert list(tg["configurations"][:]) == tests and tg.attrs["trained"] == (T == 0.8)
            for i, g in enumerate(load_graphs(store, [T], split=2)):
                with torch.no_grad():
                    out = model(g.species, g.edges, edge_features(g, "both"))
                n = len(g.edges)
                assert tg["n_edges"][i] == n
                np.testing.assert_allclose(tg["node"][i], out.node.numpy(), rtol=0, atol=1e-6)
                np.testing.assert_allclose(tg["edge"][i, :n], out.edge.numpy(), rtol=0, atol=1e-6)
                assert np.isnan(tg["edge"][i, n:]).all()
                np.testing.assert_allclose(tg["t_pred"][i], float(out.t), rtol=1e-6)
                np.testing.assert_allclose(tg["u"][i], out.u.numpy(), rtol=0, atol=1e-6)
                a = g.species.numpy() == 0
                md, pred = g.node_target.numpy().astype(float), out.node.numpy().astype(float)
                np.testing.assert_allclose(tg["pearson_node_A"][i], np.corrcoef(pred[a], md[a])[0, 1], atol=1e-6)
                np.testing.assert_allclose(tg["pearson_node_all"][i], np.corrcoef(pred, md)[0, 1], atol=1e-6)
                q, sb = fourpoint.four_point(
                    g.positions.numpy(), g.species.numpy(), md, g.box, spec.evaluation.sq_q_max
                )
                np.testing.assert_allclose(tg["sb_q"][:], q)
                np.testing.assert_allclose(tg["sb_md"][i], sb, rtol=1e-10)


def test_same_numbers_on_one_and_two_ranks(trained, tmp_path):
    spec, store = trained
    copy = tmp_path / "ci.zarr"
    shutil.copytree(store, copy, ignore=shutil.ignore_patterns("predictions"))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = torchrun(2, "-m", "tbotan", "evaluate", CI_SPEC, "--store", copy)
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env, cwd=ROOT)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    one, two = arrays(store), arrays(copy)
    assert one.keys() == two.keys() and len(one) > 20
    for k in one:
        if k.rsplit("/", 1)[1] in ("sb_md", "sb_pred"):
            # numpy's BLAS sums in another order with another thread count (OMP_NUM_THREADS=1 under torchrun)
            np.testing.assert_allclose(one[k], two[k], rtol=1e-12, atol=0, err_msg=k)
        else:
            np.testing.assert_array_equal(one[k], two[k], err_msg=k)


def test_rerun_keeps_up_to_date_predictions_and_redoes_changed_ones(trained, tmp_path, caplog):
    spec, store = trained
    copy = tmp_path / "ci.zarr"
    shutil.copytree(store, copy)
    caplog.set_level(logging.INFO, logger="tbotan")
    assert evaluate(spec, copy) == {}
    assert caplog.messages and all("up to date" in line for line in caplog.messages)
    train(spec, copy, seeds=[1], epochs=6)  # a longer training changes seed 1's best checkpoint?
    sha = zarr.open_group(str(copy), mode="r")["predictions/both/seed1"].attrs["checkpoint_sha256"]
    redo = evaluate(spec, copy)
    from tbotan.learn.evaluate import file_sha256

    now = file_sha256(model_dir(copy, spec, "both", seed=1) / "best.pt")
    assert (list(redo) == [1]) == (now != sha)
    assert zarr.open_group(str(copy), mode="r")["predictions/both/seed1"].attrs["checkpoint_sha256"] == now


def test_evaluate_before_training_names_the_stage(ci_store, tmp_path):
    copy = tmp_path / "ci.zarr"
    shutil.copytree(ci_store, copy, ignore=shutil.ignore_patterns("models", "predictions"))
    with pytest.raises(EvaluationError, match="tbotan train"):
        evaluate(load_spec(CI_SPEC), copy)
    with pytest.raises(ReportError, match="tbotan train"):
        write_report(copy)


def test_temperature_without_test_configuration_is_named(trained, tmp_path):
    spec, store = trained
    copy = tmp_path / "ci.zarr"
    shutil.copytree(store, copy, ignore=shutil.ignore_patterns("predictions"))
    zarr.open_group(str(copy), mode="r+")["T2.000"]["split"][:] = 1
    with pytest.raises(EvaluationError, match="T=2.000"):
        evaluate(spec, copy)


# --- report --------------------------------------------------------------------------------------------
def test_report_numbers_are_traceable_and_recomputable(trained):
    spec, store = trained
    index = write_report(store)
    folder = index.parent
    assert folder.name == "report"
    for stem in (
        "pearson_vs_T",
        "sb_q",
        "xi4_vs_T",
        "t_pred_vs_T",
        "t_pred_ratio",
        "embedding_distance",
        "cb_maps",
        "loss_both",
    ):
        assert (folder / f"{stem}.png").stat().st_size > 10_000, stem
        data = json.loads((folder / f"{stem}.json").read_text())
        prov = data["provenance"]
        assert prov["store"] == str(store.resolve()) and prov["seeds"] == [0, 1] and prov["variant"] == "both"
        assert prov["test_configurations"] == {"0.800": [1], "2.000": [0, 1, 2]}
        assert (folder / f"{stem}.csv").read_text().count("\n") > 1
        assert f"{stem}.png" in index.read_text()
    root = zarr.open_group(str(store), mode="r")
    rows = {r["T"]: r for r in json.loads((folder / "pearson_vs_T.json").read_text())["rows"]}
    per_seed = [np.mean(root[f"predictions/both/seed{s}/T2.000/pearson_node_A"][:]) for s in (0, 1)]
    assert rows[2.0]["pearson_node_A"] == pytest.approx(np.mean(per_seed))
    assert rows[2.0]["pearson_node_A_std"] == pytest.approx(np.std(per_seed))
    assert rows[0.8]["trained"] and not rows[2.0]["trained"]
    t_rows = {r["T_MD"]: r for r in json.loads((folder / "t_pred_vs_T.json").read_text())["rows"]}
    allp = np.concatenate([root[f"predictions/both/seed{s}/T0.800/t_pred"][:] for s in (0, 1)])
    assert t_rows[0.8]["T_pred"] == pytest.approx(allp.mean())
    hist = json.loads((folder / "t_pred_ratio.json").read_text())
    widths = np.diff(hist["bin_edges"])
    for T in (0.8, 2.0):
        p = np.array([r["P"] for r in hist["rows"] if r["T"] == T])
        assert np.sum(p * widths) == pytest.approx(1.0)  # normalised as the paper's Eq. (B1)
    d = json.loads((folder / "embedding_distance.json").read_text())
    D = np.array(d["D"])
    u = {
        T: np.concatenate([root[f"predictions/both/seed{s}/T{T:.3f}/u"][:] for s in (0, 1)]).mean(0) for T in (0.8, 2.0)
    }
    assert D[0, 1] == pytest.approx(np.linalg.norm(u[0.8] - u[2.0])) and D[0, 0] == 0
    for h in d["seeds"]:  # units of u alive and its spread across T, recomputed from the stored u
        u_s = {T: root[f"predictions/both/seed{h['seed']}/T{T:.3f}/u"][:] for T in (0.8, 2.0)}
        assert h["u_alive"] == int((np.concatenate(list(u_s.values())) > 0).any(axis=0).sum())
        between = np.linalg.norm(np.std([u_s[0.8].mean(0), u_s[2.0].mean(0)], axis=0))
        within = np.linalg.norm(u_s[2.0].std(0))  # T = 0.8 has one test configuration: no within-T spread
        assert h["spread_across_T"] == pytest.approx(between / within)
    assert "units of u alive" in index.read_text()


def test_partial_report_never_replaces_a_complete_one(trained, tmp_path):
    spec, store = trained
    copy = tmp_path / "ci.zarr"
    shutil.copytree(store, copy)
    write_report(copy)
    before = (copy / "report" / "pearson_vs_T.json").read_text()
    shutil.rmtree(copy / "predictions" / "both" / "seed1")
    with pytest.raises(ReportError, match="seed 1: trained but not evaluated.*tbotan evaluate"):
        write_report(copy)
    index = write_report(copy, allow_partial=True)
    assert index.parent.name == "report_partial" and "PARTIAL" in index.read_text()
    assert (copy / "report" / "pearson_vs_T.json").read_text() == before
    assert not list(copy.glob(".report*"))  # no temporary folder left behind


# --- the whole pipeline ----------------------------------------------------------------------------------
def test_run_goes_from_nothing_to_a_report_and_resumes(tmp_path):
    store = tmp_path / "ci.zarr"
    cmd = [sys.executable, "-m", "tbotan", "run", str(CI_SPEC), "--store", str(store), "--ranks", "2"]
    first = subprocess.run(cmd, capture_output=True, text=True, timeout=900, cwd=ROOT)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert (store / "report" / "index.html").exists() and "stage times" in first.stdout
    assert "plan for N = 256" in first.stdout  # `tbotan plan`'s lines come first
    status = subprocess.run(
        [sys.executable, "-m", "tbotan", "status", str(store), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    state = json.loads(status.stdout)
    assert all(r["left"] == 0 for r in state["simulate"])
    assert [(m["seed"], m["epochs"]) for m in state["models"]] == [("seed0", 4), ("seed1", 4)]
    assert all(p["complete"] for p in state["predictions"]) and len(state["predictions"]) == 2
    assert state["report"].endswith("report/index.html")
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert "is complete" in again.stdout and "already trained" in again.stdout and "up to date" in again.stdout


def test_ablations_and_lambda_sweep_are_reported(ci_store, tmp_path):
    import yaml

    data = yaml.safe_load(CI_SPEC.read_text())
    data["training"].update(
        {"variants": ["both", "thermal"], "lambda_g": [0.01, 0.1], "seeds": 1, "epochs": 2, "switch_epoch": 1}
    )
    spec_path = tmp_path / "sweep.yaml"
    spec_path.write_text(yaml.safe_dump(data))
    spec = load_spec(spec_path)
    store = tmp_path / "ci.zarr"
    shutil.copytree(ci_store, store)
    for variant in ("both", "thermal"):
        for lam in (0.01, 0.1):
            train(spec, store, variant=variant, lambda_g=lam)
            if (variant, lam) != ("thermal", 0.1):
                evaluate(spec, store, variant=variant, lambda_g=lam)
    with pytest.raises(
        ReportError, match="thermal_lambda0.1 seed 0: trained but not evaluated.*--variant thermal --lambda-g 0.1"
    ):
        write_report(store)
    evaluate(spec, store, variant="thermal", lambda_g=0.1)
    folder = write_report(store).parent
    ablation = json.loads((folder / "ablations.json").read_text())
    assert {r["variant"] for r in ablation["rows"]} == {"both", "thermal"}
    sweep = json.loads((folder / "lambda_sweep.json").read_text())
    assert {r["variant"] for r in sweep["rows"]} == {"both", "both_lambda0.1"}
    row = next(r for r in sweep["rows"] if r["variant"] == "both_lambda0.1" and r["T"] == 2.0)
    pearson = zarr.open_group(str(store), mode="r")["predictions/both_lambda0.1/seed0/T2.000/pearson_node_A"][:]
    assert row["pearson_node_A"] == pytest.approx(pearson.mean())
    for stem in ("ablations", "lambda_sweep", "loss_thermal_lambda0.1"):
        assert (folder / f"{stem}.png").exists()


def test_symmetrized_predictions_are_the_mean_over_the_48_orientations_and_frame_free(trained, tmp_path):
    spec, store = trained
    model = build_model(model_shape(spec, "both"))
    model.load_state_dict(load_checkpoint(model_dir(store, spec, "both", seed=0) / "best.pt")["model"])
    model.eval()
    g = load_graphs(store, [2.0], split=2)[0]
    assert len({(tuple(p.tolist()), tuple(s.tolist())) for p, s in CUBE_GROUP}) == 48
    with torch.no_grad():
        sym = forward(model, g, "both", symmetrize=True)
        each = [model(g.species, g.edges, edge_features(g, "both", transform=t)) for t in CUBE_GROUP]
        plain = forward(model, g, "both")
        # the same configuration seen in another frame (a permutation of the axes with reflections): the average
        # over the group is the same, the plain prediction is not
        perm, signs = torch.tensor([2, 0, 1]), torch.tensor([-1, 1, -1])
        turned = dataclasses.replace(g, is_vectors=g.is_vectors[:, perm] * signs)
        sym_turned = forward(model, turned, "both", symmetrize=True)
        plain_turned = forward(model, turned, "both")
    for field in ("node", "edge", "t", "u"):
        mean = torch.stack([getattr(o, field) for o in each]).mean(dim=0)
        torch.testing.assert_close(getattr(sym, field), mean, rtol=0, atol=1e-6)
        torch.testing.assert_close(getattr(sym_turned, field), getattr(sym, field), rtol=0, atol=1e-5)
    assert not torch.allclose(plain.node, plain_turned.node, atol=1e-5)
    torch.testing.assert_close(plain.node, model(g.species, g.edges, edge_features(g, "both")).node)
    # evaluate with evaluation.symmetrize rewrites the plain predictions and records it; a rerun keeps them
    copy = tmp_path / "ci.zarr"
    shutil.copytree(store, copy)
    sym_spec = spec.model_copy(update={"evaluation": spec.evaluation.model_copy(update={"symmetrize": True})})
    assert sorted(evaluate(sym_spec, copy)) == list(range(spec.training.seeds))
    tg = zarr.open_group(str(copy), mode="r")["predictions/both/seed0"]
    assert tg.attrs["symmetrize"] is True
    np.testing.assert_allclose(tg["T2.000/node"][0], sym.node.numpy(), rtol=0, atol=1e-6)
    assert evaluate(sym_spec, copy) == {}
    # `tbotan predict` predicts as evaluate did: the exported model carries the setting, predict() applies it
    assert model_from_store(copy, sym_spec)["symmetrize"] is True
    group = zarr.open_group(str(store), mode="r")["T2.000"]
    c = g.c
    pred = predict(
        {0: model}, "both", group["types"][c], group["thermal"][c], group["inherent"][c], g.box, symmetrize=True
    )
    np.testing.assert_allclose(pred["node"][0], sym.node.numpy(), rtol=0, atol=1e-5)
    assert pred["t"][0] == pytest.approx(float(sym.t), abs=1e-5)

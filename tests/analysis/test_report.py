"""The report's parts: the embedding's health against its formula, the numbers of each figure against a direct
computation on hand-made predictions, the drawings from those numbers alone, and the whole report on a real
trained store of jobs/ci.yaml, written in a fresh process that never loads torch, holding exactly the numbers
that tbotan.analysis.numbers computes."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from tbotan.analysis import figures, numbers
from tbotan.analysis.embedding import embedding_health, embedding_spread
from tbotan.analysis.results import load_results, read_histories, read_spec
from tbotan.data.store import open_store
from tests.helpers import ROOT, TBOTAN

CI_SPEC = ROOT / "jobs" / "ci.yaml"


def hand_made(seeds=(0, 1), temps=(0.8, 2.0), configurations=3, hidden=4, seed=0) -> dict:
    """Predictions of one run in the layout tbotan.analysis.results reads, filled with random numbers."""
    rng = np.random.default_rng(seed)
    q = np.linspace(1.0, 5.0, 6)
    res = {}
    for s in seeds:
        res[s] = {"attrs": {}, "T": {}}
        for T in temps:
            res[s]["T"][T] = {
                "configurations": np.arange(configurations),
                "pearson_node_A": rng.random(configurations),
                "pearson_node_all": rng.random(configurations),
                "pearson_edge_all": rng.random(configurations),
                "pearson_edge_AA": rng.random(configurations),
                "t_pred": T + 0.1 * rng.standard_normal(configurations),
                "u": rng.standard_normal((configurations, hidden)) + T,
                "sb_q": q,
                "sb_md": 2.0 / (1 + q**2) + 0.01 * rng.random((configurations, len(q))),
                "sb_pred": 1.5 / (1 + q**2) + 0.01 * rng.random((configurations, len(q))),
                "trained": T == temps[0],
            }
    return res


def test_embedding_spread_is_the_between_temperature_over_the_within_temperature_deviation():
    u = np.array([[1.0, 0.0], [3.0, 0.0], [0.0, 5.0], [0.0, 7.0]])
    alive, spread = embedding_spread(u, [0.5, 0.5, 1.0, 1.0])
    between = np.linalg.norm(np.std([[2.0, 0.0], [0.0, 6.0]], axis=0))  # the per-T means (2, 0) and (0, 6)
    assert alive == 2 and spread == pytest.approx(between / 1.0)  # each T: std 1 along one unit
    assert embedding_spread(np.array([[0.0, -1.0], [0.0, 2.0]]), [0.5, 1.0])[0] == 1
    assert np.isnan(embedding_spread(u, [0.5] * 4)[1])  # one temperature: no spread to measure
    assert embedding_spread(np.array([[1.0], [2.0]]), [0.5, 1.0])[1] == np.inf  # one row per T, apart


def test_pearson_numbers_average_per_seed_then_over_seeds_and_over_configurations_with_one_seed():
    res = hand_made()
    n = numbers.pearson_numbers(res, [0.8])
    per_seed = [res[s]["T"][2.0]["pearson_edge_AA"].mean() for s in (0, 1)]
    row = n.rows[1]
    assert row["T"] == 2.0 and not row["trained"] and row["seeds"] == 2 and row["test_configurations"] == 3
    assert row["pearson_edge_AA"] == pytest.approx(np.mean(per_seed))
    assert row["pearson_edge_AA_std"] == pytest.approx(np.std(per_seed))
    assert n.values == {"rows": n.rows}
    one = numbers.pearson_numbers({0: res[0]}, [0.8]).rows[0]
    assert one["pearson_node_A_std"] == pytest.approx(np.std(res[0]["T"][0.8]["pearson_node_A"]))


def test_temperature_numbers_pool_every_seed_and_normalise_each_histogram_to_one():
    res = hand_made()
    t_pred, ratio = numbers.temperature_numbers(res, [0.8])
    allp = np.concatenate([res[s]["T"][0.8]["t_pred"] for s in (0, 1)])
    assert t_pred.rows[0]["T_pred"] == pytest.approx(allp.mean()) and t_pred.rows[0]["samples"] == 6
    assert t_pred.rows[0]["T_pred_std_samples"] == pytest.approx(allp.std())
    widths = np.diff(ratio.values["bin_edges"])
    for T in (0.8, 2.0):
        p = np.array([r["P"] for r in ratio.rows if r["T"] == T])
        assert np.sum(p * widths) == pytest.approx(1.0)


def test_key_numbers_are_built_from_the_numbers_of_three_figures():
    res = hand_made()
    pearson = numbers.pearson_numbers(res, [0.8])
    _, xi = numbers.sb_numbers(res, [0.8], q_fit_max=3.0)
    t_pred, _ = numbers.temperature_numbers(res, [0.8])
    key = numbers.key_numbers(pearson.rows, xi.rows, t_pred.rows, {2.0: {"fs_at_tau": 0.37, "ok": True}})
    assert [r["T"] for r in key] == [0.8, 2.0]
    assert key[1]["pearson_node_A"] == pearson.rows[1]["pearson_node_A"]
    assert key[1]["T_pred_std"] == t_pred.rows[1]["T_pred_std_samples"]
    assert key[0]["xi4_md"] == xi.rows[0]["xi4_md"] or np.isnan(key[0]["xi4_md"])
    assert key[1]["fs_at_tau"] == 0.37 and key[0]["fs_at_tau"] is None and key[0]["fs_ok"] is None


def test_every_figure_is_drawn_from_its_numbers_alone():
    res = hand_made()
    plt = figures.pyplot()
    sb, xi = numbers.sb_numbers(res, [0.8], q_fit_max=3.0)
    t_pred, ratio = numbers.temperature_numbers(res, [0.8])
    results = {"both": res, "thermal": hand_made(seed=1)}
    made = [
        (figures.draw_pearson(numbers.pearson_numbers(res, [0.8])), 2),
        (figures.draw_sb(sb), 2),
        (figures.draw_xi(xi), 1),
        (figures.draw_t_pred(t_pred), 1),
        (figures.draw_t_ratio(ratio), 1),
        (figures.draw_distance(numbers.distance_numbers(res, [0.8])), 2),  # the matrix and its colour bar
        (figures.draw_comparison(numbers.comparison_numbers(results, ["both", "thermal"], [0.8], "ablations")), 2),
    ]
    for fig, axes in made:
        assert len(fig.axes) == axes
        plt.close(fig)
    fig = figures.draw_comparison(numbers.comparison_numbers(results, ["both", "thermal"], [0.8], "ablations"))
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["both", "thermal"]
    plt.close(fig)


def test_the_embedding_health_of_each_seed_pools_its_temperatures():
    res = hand_made()
    health = embedding_health(res)
    u = np.concatenate([res[1]["T"][T]["u"] for T in (0.8, 2.0)])
    assert health[1]["seed"] == 1 and health[1]["hidden"] == 4
    assert (health[1]["u_alive"], health[1]["spread_across_T"]) == embedding_spread(u, [0.8] * 3 + [2.0] * 3)


# --- the whole report on a real store ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def trained_store(ci_store, tmp_path_factory):
    """A copy of the ci store trained (both seeds, 4 epochs of the tiny ci model) and evaluated by the CLI."""
    store = tmp_path_factory.mktemp("report") / "ci.zarr"
    shutil.copytree(ci_store, store)
    for stage in ("train", "evaluate"):
        out = subprocess.run([*TBOTAN, stage, str(CI_SPEC), "--store", str(store)], capture_output=True, text=True)
        assert out.returncode == 0, out.stderr[-3000:]
    return store


def test_the_report_runs_without_torch_and_writes_the_numbers_it_computes(trained_store):
    code = (
        "import sys\nfrom tbotan.analysis.report import write_report\n"
        f"write_report({str(trained_store)!r})\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'torch' or m.startswith('tbotan.learn')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().splitlines()[-1] == "[]", "the report loaded torch or tbotan.learn"
    folder = trained_store / "report"
    stems = ["pearson_vs_T", "sb_q", "xi4_vs_T", "t_pred_vs_T", "t_pred_ratio", "embedding_distance", "cb_maps"]
    stems.append("loss_both")
    expected = {f"{s}.{ext}" for s in stems for ext in ("png", "json", "csv")}
    assert {p.name for p in folder.iterdir()} == expected | {"key_numbers.json", "index.html", "zarr.json"}

    root = open_store(trained_store)
    spec = read_spec(root)
    results, missing = load_results(trained_store, spec, ["both"], [0, 1])
    assert not missing
    res, trained = results["both"], [0.8]
    pearson = numbers.pearson_numbers(res, trained)
    sb, xi = numbers.sb_numbers(res, trained, spec.evaluation.oz_fit_q_max)
    t_pred, ratio = numbers.temperature_numbers(res, trained)
    loss = numbers.loss_numbers(read_histories(trained_store, "both", [0, 1]), "both", spec.training.switch_epoch)
    assert len(loss.rows) == 8  # 2 seeds x 4 epochs
    mine = {
        "pearson_vs_T": pearson,
        "xi4_vs_T": xi,
        "t_pred_vs_T": t_pred,
        "t_pred_ratio": ratio,
        "embedding_distance": numbers.distance_numbers(res, trained),
        "cb_maps": numbers.maps_numbers(root, res, trained, spec.evaluation.slab),
        "loss_both": loss,
        "sb_q": sb,
    }
    for stem, n in mine.items():
        data = json.loads((folder / f"{stem}.json").read_text())
        assert data["provenance"]["variant"] == "both" and data["figure"] == f"{stem}.png"
        assert json.dumps({k: data[k] for k in n.values}, sort_keys=True) == json.dumps(
            n.values, sort_keys=True, default=lambda x: x.tolist() if hasattr(x, "tolist") else x
        ), stem
        with open(folder / f"{stem}.csv", newline="") as f:
            rows = list(csv.DictReader(f))
        assert rows == [{k: str(v) for k, v in r.items()} for r in n.rows], stem
    key = json.loads((folder / "key_numbers.json").read_text())
    assert key["rows"][1]["pearson_node_A"] == pearson.rows[1]["pearson_node_A"]
    assert key["rows"][1]["T_pred"] == t_pred.rows[1]["T_pred"]
    assert [h["seed"] for h in key["embedding"]] == [0, 1]
    assert "units of u alive" in (folder / "index.html").read_text()

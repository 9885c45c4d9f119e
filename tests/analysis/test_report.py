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

from tbotan.analysis import ceiling, figures, numbers
from tbotan.analysis.embedding import embedding_health, embedding_spread
from tbotan.analysis.results import load_results, read_histories, read_spec
from tbotan.data.runs import model_folder, plateau_message
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


def test_the_headline_spreads_are_the_std_over_seeds_and_the_standard_error_over_configurations():
    res = hand_made()
    row = numbers.pearson_numbers(res, [0.8]).rows[1]
    per_seed = [res[s]["T"][2.0]["pearson_node_A"] for s in (0, 1)]
    per_configuration = (per_seed[0] + per_seed[1]) / 2
    assert row["pearson_node_A_over_seeds"] == pytest.approx(np.std([x.mean() for x in per_seed]))
    assert row["pearson_node_A_sem"] == pytest.approx(np.std(per_configuration, ddof=1) / np.sqrt(3))
    edge = [res[s]["T"][2.0]["pearson_edge_AA"] for s in (0, 1)]
    assert row["pearson_edge_AA_sem"] == pytest.approx(np.std((edge[0] + edge[1]) / 2, ddof=1) / np.sqrt(3))
    one = numbers.pearson_numbers({0: res[0]}, [0.8]).rows[1]  # one seed: no spread over seeds
    assert np.isnan(one["pearson_node_A_over_seeds"])
    assert one["pearson_node_A_sem"] == pytest.approx(np.std(per_seed[0], ddof=1) / np.sqrt(3))
    t_row = numbers.temperature_numbers(res, [0.8])[0].rows[0]
    tp = [res[s]["T"][0.8]["t_pred"] for s in (0, 1)]
    assert t_row["T_pred_over_seeds"] == pytest.approx(np.std([x.mean() for x in tp]))
    assert t_row["T_pred_sem"] == pytest.approx(np.std((tp[0] + tp[1]) / 2, ddof=1) / np.sqrt(3))
    _, xi = numbers.sb_numbers(res, [0.8], q_fit_max=3.0)
    assert all(np.isnan(r["xi4_md_sem"]) or r["xi4_md_sem"] >= 0 for r in xi.rows)
    same = hand_made(configurations=4)  # every configuration the same S_B(q): the jackknife sees no scatter
    for s in same:
        for d in same[s]["T"].values():
            d["sb_md"][:] = d["sb_md"][0]
    _, xi = numbers.sb_numbers(same, [0.8], q_fit_max=3.0)
    assert [r["xi4_md_sem"] for r in xi.rows] == pytest.approx([0.0, 0.0], abs=1e-9)
    _, xi = numbers.sb_numbers(hand_made(configurations=1), [0.8], q_fit_max=3.0)
    assert np.isnan(xi.rows[0]["xi4_md_sem"]) and np.isnan(xi.rows[0]["xi4_pred_sem"])


def ceiling_row(T, configurations, rho=0.3, ceiling_rho=0.6) -> dict:
    """A row of tbotan.analysis.ceiling.ceiling_rows with made-up numbers."""
    return {
        "T": T,
        "trained": T == 0.8,
        "time": 1.0,
        "target": "cb",
        "test_configurations": len(configurations),
        "configurations": configurations,
        "replicas": 8,
        "split_half_r": 0.2,
        "split_half_r_sem": 0.01,
        "reliability": 0.33,
        "reliability_sem": 0.02,
        "ceiling_rho": ceiling_rho,
        "ceiling_rho_sem": 0.03,
        "descriptor_rho": rho,
        "descriptor_rho_sem": 0.04,
        "descriptor_penalty": 10.0,
        "is_distance_rho": -0.2,
        "is_distance_rho_sem": 0.05,
        "energy_T": T + 0.01,
        "energy_T_sem": 0.006,
    }


def test_ceiling_numbers_put_the_network_beside_the_ceiling_on_the_same_configurations():
    res = hand_made()
    n = numbers.ceiling_numbers(res, [ceiling_row(0.8, [0, 1, 2]), ceiling_row(2.0, [0, 1, 5])], [0.8])
    per_seed = [res[s]["T"][0.8]["pearson_node_A"] for s in (0, 1)]
    row = n.rows[0]
    assert row["network_rho_A"] == pytest.approx(np.mean([x.mean() for x in per_seed]))
    assert row["network_rho_A_over_seeds"] == pytest.approx(np.std([x.mean() for x in per_seed]))
    assert row["network_rho_A_sem"] == pytest.approx(np.std((per_seed[0] + per_seed[1]) / 2, ddof=1) / np.sqrt(3))
    assert row["fraction_of_ceiling"] == pytest.approx(row["network_rho_A"] / 0.6)
    assert row["ceiling_rho"] == 0.6 and row["descriptor_rho_A_sem"] == 0.04 and row["reliability"] == 0.33
    assert row["same_configurations"] and not n.rows[1]["same_configurations"]
    assert n.values["configurations"] == {"0.8": [0, 1, 2], "2": [0, 1, 5]}
    t_pred = [res[s]["T"][0.8]["t_pred"] for s in (0, 1)]  # the network's T beside the thermometer's
    assert row["network_T_pred"] == pytest.approx(np.mean([x.mean() for x in t_pred]))
    assert row["network_T_pred_sem"] == pytest.approx(np.std((t_pred[0] + t_pred[1]) / 2, ddof=1) / np.sqrt(3))
    assert row["energy_T"] == pytest.approx(0.81) and row["energy_T_sem"] == 0.006
    page = index_html_of(n.rows)
    assert "ceiling &radic;R" in page and "(not the network&#39;s)" in page and "T from U/N" in page
    assert "0.810 [0.006]" in page


def index_html_of(ceiling_rows, warnings=()):
    from types import SimpleNamespace

    from tbotan.analysis.page import index_html

    res = hand_made()
    pearson = numbers.pearson_numbers(res, [0.8])
    _, xi = numbers.sb_numbers(res, [0.8], q_fit_max=3.0)
    t_pred, _ = numbers.temperature_numbers(res, [0.8])
    key = numbers.key_numbers(pearson.rows, xi.rows, t_pred.rows)
    prov = {"store": "s", "variant": "both", "seeds": [0, 1], "training_temperatures": [0.8], "made": "now"}
    spec = SimpleNamespace(N=256, seed=7)
    return index_html(spec, prov, key, [], [], (), ceiling_rows, warnings)


def test_the_page_shows_both_error_bars_the_data_draw_and_the_warnings():
    page = index_html_of([], ["both seed 1: on the plateau"])
    assert "one data draw (spec seed 7" in page and "spread over draws: README" in page
    assert "<li>both seed 1: on the plateau</li>" in page and "<b>Warning</b>" in page
    assert "<h2>ceiling</h2>" not in page
    key = numbers.key_numbers(
        numbers.pearson_numbers(hand_made(), [0.8]).rows,
        numbers.sb_numbers(hand_made(), [0.8], q_fit_max=3.0)[1].rows,
        numbers.temperature_numbers(hand_made(), [0.8])[0].rows,
    )
    r = key[0]
    cell = f"{r['pearson_node_A']:.3f} &plusmn; {r['pearson_node_A_over_seeds']:.3f} [{r['pearson_node_A_sem']:.3f}]"
    assert cell in page
    assert "<b>Warning</b>" not in index_html_of([])


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
        (figures.draw_ceiling(numbers.ceiling_numbers(res, [ceiling_row(0.8, [0, 1, 2])], [0.8])), 1),
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
    stems += ["loss_both", "ceiling"]
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
        "ceiling": numbers.ceiling_numbers(
            res,
            ceiling.ceiling_rows(root, trained, "cb", {T: list(d["configurations"]) for T, d in res[0]["T"].items()}),
            trained,
        ),
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
    page = (folder / "index.html").read_text()
    assert "units of u alive" in page and "<h2>ceiling</h2>" in page and "one data draw (spec seed 0" in page
    assert all(r["same_configurations"] for r in mine["ceiling"].rows)
    assert key["rows"][1]["pearson_node_A_sem"] == pearson.rows[1]["pearson_node_A_sem"]
    # the plateau warnings: every seed whose history sat on the plateau, named, on the page and in the JSON
    histories = read_histories(trained_store, "both", [0, 1])
    expected = [f"both {m}" for s, h in histories.items() if (m := plateau_message(s, h, spec.training.switch_epoch))]
    assert key["warnings"] == expected
    assert ("<b>Warning</b>" in page) == bool(expected)


def test_the_report_warns_about_the_seed_on_the_plateau_and_only_it(trained_store, tmp_path):
    from tbotan.analysis.report import write_report

    store = tmp_path / "plateau.zarr"
    shutil.copytree(trained_store, store)
    spec = read_spec(open_store(store))
    half = spec.training.switch_epoch // 2
    for seed, rho in ((0, 0.02), (1, 0.5)):  # the real histories, validation rho_A up to half-way set
        path = model_folder(store, "both", seed) / "history.json"
        history = json.loads(path.read_text())
        for h in history:
            if h["epoch"] <= half:
                h["validation"]["pearson_A"] = rho
        path.write_text(json.dumps(history))
    page = write_report(store).read_text()
    warnings = json.loads((store / "report" / "key_numbers.json").read_text())["warnings"]
    assert len(warnings) == 1 and warnings[0].startswith(f"both seed 0: validation rho_A 0.02 at epoch {half}")
    assert "both seed 0: validation rho_A 0.02" in page and "both seed 1:" not in page

"""The report's index page: the headline numbers per temperature in a table, the ceiling table (what the data
allow beside what the network reached), warnings (a training on the plateau), the global embedding's health, and
every figure with its caption and links to the JSON and CSV of its numbers (plain HTML, no scripts).
"""

from __future__ import annotations

import html
import math


def _num(x, digits: int = 3) -> str:
    """A number, or '-' where it is missing or not finite."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "-"
    return f"{x:.{digits}f}"


def _errors(value, over_seeds=None, sem=None, digits: int = 3) -> str:
    """``value ± std over seeds [s.e.m. over test configurations]``; a missing one is left out ('-' for sem)."""
    text = _num(value, digits)
    if over_seeds is not None and math.isfinite(over_seeds):
        text += f" &plusmn; {over_seeds:.{digits}f}"
    return text + f" [{_num(sem, digits)}]"


def ceiling_table(rows) -> str:
    """The ceiling table: the network's node rho_A beside the descriptor regression and the split-half ceiling."""
    if not rows:
        return ""
    head = (
        "<tr><th>T</th><th>trained</th><th>test configs</th><th>K</th><th>T-BOTAN node &rho;<sub>A</sub></th>"
        "<th>descriptor regression &rho;<sub>A</sub></th><th>|r<sub>thermal</sub> - r<sub>IS</sub>| &rho;<sub>A</sub>"
        "</th><th>split-half r</th><th>reliability R</th><th>ceiling &radic;R</th><th>T-BOTAN / ceiling</th>"
        "<th>T-BOTAN T<sub>pred</sub></th><th>T from U/N</th></tr>"
    )
    body = "".join(
        f"<tr><td>{r['T']:g}</td><td>{'yes' if r['trained'] else '<b>no</b>'}</td><td>{r['test_configurations']}"
        f"{'' if r['same_configurations'] else ' <b>(not the network&#39;s)</b>'}</td><td>{r['replicas']}</td>"
        f"<td>{_errors(r['network_rho_A'], r['network_rho_A_over_seeds'], r['network_rho_A_sem'])}</td>"
        f"<td>{_errors(r['descriptor_rho_A'], None, r['descriptor_rho_A_sem'])}</td>"
        f"<td>{_errors(r['is_distance_rho_A'], None, r['is_distance_rho_A_sem'])}</td>"
        f"<td>{_errors(r['split_half_r'], None, r['split_half_r_sem'])}</td>"
        f"<td>{_errors(r['reliability'], None, r['reliability_sem'])}</td>"
        f"<td>{_errors(r['ceiling_rho'], None, r['ceiling_rho_sem'])}</td><td>{_num(r['fraction_of_ceiling'], 2)}</td>"
        f"<td>{_errors(r['network_T_pred'], r['network_T_pred_over_seeds'], r['network_T_pred_sem'])}</td>"
        f"<td>{_errors(r['energy_T'], None, r['energy_T_sem'])}</td></tr>"
        for r in rows
    )
    target = "C<sub>B</sub>" if rows[0]["target"] == "cb" else html.escape(rows[0]["target"])
    return (
        "<h2>ceiling</h2><p>How much of what the data carry the network got, on the same test configurations. "
        f"The stored {target} of a configuration is the mean over its K replicas, a noisy estimate: the split-half "
        "r correlates the target from one half of the replicas with the other half's (A particles, per "
        "configuration, then averaged); the Spearman&ndash;Brown reliability R extrapolates it to all K, and no "
        f"predictor can correlate with the stored {target} better than &radic;R on average. The descriptor "
        "regression is what a fixed-feature linear model reaches (ridge on radial structure functions, "
        "energies and distances from the inherent structure, fitted on the train split of the training "
        "temperatures); |r<sub>thermal</sub> - r<sub>IS</sub>| a single descriptor. For the temperature head: "
        "T from U/N is a thermometer, T read off each test configuration's thermal potential energy per particle "
        "by a straight line fitted on the same training configurations (- with one training temperature). Values: "
        "mean &plusmn; std over seeds [standard error over the test configurations; for R and &radic;R carried from "
        "r's]. Numbers: "
        "<a href='ceiling.json'>ceiling.json</a>, <a href='ceiling.csv'>ceiling.csv</a></p>"
        f"<table border='1' cellpadding='4' style='border-collapse:collapse'>{head}{body}</table>"
        "<img src='ceiling.png' style='max-width:100%'>"
    )


def index_html(
    spec,
    prov: dict,
    key: list[dict],
    figures: list[tuple[str, str]],
    missing: list[str],
    health=(),
    ceiling=(),
    warnings=(),
) -> str:
    """The report's index.html.

    Args:
        spec: the store's job spec (for N and its data seed).
        prov: the main run's provenance (store, variant, seeds, training temperatures, date).
        key: the headline table, tbotan.analysis.numbers.key_numbers.
        figures: (stem, caption) of every figure, in the order shown.
        missing: what a partial report lacks (a red warning on top); empty for a complete one.
        health: the global embedding's health per seed (tbotan.analysis.embedding.embedding_health).
        ceiling: the rows of tbotan.analysis.numbers.ceiling_numbers (the ceiling table; none: no table).
        warnings: messages shown in a box on top (the plateau warnings of tbotan.data.runs.plateau_message).
    """
    e = html.escape
    head = (
        "<tr><th>T</th><th>trained</th><th>test configs</th><th>node &rho; (A)</th><th>edge &rho; (A-A)</th>"
        "<th>T<sub>pred</sub></th><th>&xi;<sub>4</sub> MD</th><th>&xi;<sub>4</sub> pred</th>"
        "<th>F<sub>s</sub><sup>A</sup>(7.25) at &tau;<sub>&alpha;</sub></th></tr>"
    )

    def fs(r):
        if r.get("fs_at_tau") is None:
            return "-"
        return _errors(r["fs_at_tau"], None, r.get("fs_sem")) + (
            "" if r["fs_ok"] else " <b style='color:red'>(not the alpha time)</b>"
        )

    body = "".join(
        f"<tr><td>{r['T']:g}</td><td>{'yes' if r['trained'] else '<b>no</b>'}</td><td>{r['test_configurations']}</td>"
        f"<td>{_errors(r['pearson_node_A'], r.get('pearson_node_A_over_seeds'), r.get('pearson_node_A_sem'))}</td>"
        f"<td>{_errors(r['pearson_edge_AA'], r.get('pearson_edge_AA_over_seeds'), r.get('pearson_edge_AA_sem'))}</td>"
        f"<td>{_errors(r['T_pred'], r.get('T_pred_over_seeds'), r.get('T_pred_sem'))}</td>"
        f"<td>{_errors(r['xi4_md'], None, r.get('xi4_md_sem'), 2)}</td>"
        f"<td>{_errors(r['xi4_pred'], r.get('xi4_pred_over_seeds'), r.get('xi4_pred_sem'), 2)}</td>"
        f"<td>{fs(r)}</td></tr>"
        for r in key
    )
    figs = "".join(
        f"<h2>{e(stem)}</h2><p>{e(cap)} Numbers: <a href='{stem}.json'>{stem}.json</a>, "
        f"<a href='{stem}.csv'>{stem}.csv</a></p><img src='{stem}.png' style='max-width:100%'>"
        for stem, cap in figures
    )
    warn = ("<p style='color:red'><b>PARTIAL report</b>: " + e("; ".join(missing)) + "</p>") if missing else ""
    if warnings:
        warn += (
            "<div style='border:2px solid #c60;background:#fff4e5;padding:0.5em 1em;margin:1em 0'>"
            "<b>Warning</b><ul>" + "".join(f"<li>{e(w)}</li>" for w in warnings) + "</ul></div>"
        )
    flat = " <b>(u does not tell the temperatures apart)</b>"
    embedding = "".join(
        f"<li>seed {h['seed']}: {h['u_alive']} of {h['hidden']} units of u alive; spread across T "
        f"{h['spread_across_T']:.3g}{'' if h['spread_across_T'] > 1 else flat}</li>"
        for h in health
    )
    embedding = f"<p>Global embedding u on the test configurations:</p><ul>{embedding}</ul>" if embedding else ""
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>T-BOTAN report</title></head><body "
        f"style='font-family:sans-serif;max-width:1200px;margin:auto'><h1>T-BOTAN report</h1>{warn}"
        f"<p>Store <code>{e(prov['store'])}</code>, variant <code>{e(prov['variant'])}</code>, "
        f"seeds {prov['seeds']}, N = {spec.N}, trained on T = {prov['training_temperatures']}; made {e(prov['made'])}. "
        f"Reduced LJ units (&sigma;<sub>AA</sub>, &epsilon;<sub>AA</sub>, &tau;<sub>LJ</sub>). Values: mean over seeds "
        f"&plusmn; std over seeds [standard error over the test configurations of the per-configuration mean over "
        f"seeds]; &xi;<sub>4</sub>: the standard error is a jackknife over configurations of the fit, and MD's is the "
        f"same for every seed; F<sub>s</sub>: over the done configurations. F<sub>s</sub> at "
        f"the time called &tau;<sub>&alpha;</sub> should be near 1/e = 0.368 (flagged outside [0.30, 0.44]).</p>"
        f"<p>This report is one data draw (spec seed {spec.seed}: these configurations and replicas); neither "
        f"error bar is the spread over draws: README.</p>"
        f"<table border='1' cellpadding='4' style='border-collapse:collapse'>{head}{body}</table>"
        f"{ceiling_table(ceiling)}{embedding}{figs}"
        "</body></html>"
    )

"""The report's index page: the headline numbers per temperature in a table, the global embedding's health, and
every figure with its caption and links to the JSON and CSV of its numbers (plain HTML, no scripts).
"""

from __future__ import annotations

import html


def index_html(spec, prov: dict, key: list[dict], figures: list[tuple[str, str]], missing: list[str], health=()) -> str:
    """The report's index.html.

    Args:
        spec: the store's job spec (for N).
        prov: the main run's provenance (store, variant, seeds, training temperatures, date).
        key: the headline table, tbotan.analysis.numbers.key_numbers.
        figures: (stem, caption) of every figure, in the order shown.
        missing: what a partial report lacks (a red warning on top); empty for a complete one.
        health: the global embedding's health per seed (tbotan.analysis.embedding.embedding_health).
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
        return f"{r['fs_at_tau']:.3f}" + ("" if r["fs_ok"] else " <b style='color:red'>(not the alpha time)</b>")

    body = "".join(
        f"<tr><td>{r['T']:g}</td><td>{'yes' if r['trained'] else '<b>no</b>'}</td><td>{r['test_configurations']}</td>"
        f"<td>{r['pearson_node_A']:.3f} &plusmn; {r['pearson_node_A_std']:.3f}</td><td>{r['pearson_edge_AA']:.3f}</td>"
        f"<td>{r['T_pred']:.3f} &plusmn; {r['T_pred_std']:.3f}</td><td>{r['xi4_md']:.2f}</td>"
        f"<td>{r['xi4_pred']:.2f}</td><td>{fs(r)}</td></tr>"
        for r in key
    )
    figs = "".join(
        f"<h2>{e(stem)}</h2><p>{e(cap)} Numbers: <a href='{stem}.json'>{stem}.json</a>, "
        f"<a href='{stem}.csv'>{stem}.csv</a></p><img src='{stem}.png' style='max-width:100%'>"
        for stem, cap in figures
    )
    warn = ("<p style='color:red'><b>PARTIAL report</b>: " + e("; ".join(missing)) + "</p>") if missing else ""
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
        f"&plusmn; std over seeds; T<sub>pred</sub> &plusmn; std over configurations and seeds. F<sub>s</sub> at "
        f"the time called &tau;<sub>&alpha;</sub> should be near 1/e = 0.368 (flagged outside [0.30, 0.44]).</p>"
        f"<table border='1' cellpadding='4' style='border-collapse:collapse'>{head}{body}</table>{embedding}{figs}"
        "</body></html>"
    )

"""What the report reads from a store: its spec, each run's predictions per seed and temperature, and each seed's
training history. Every models/ and predictions/ path comes from the run layout (tbotan.data.runs); nothing here
imports torch.

The predictions of one run are a dict ``{seed: {"attrs": group attributes, "T": {T: arrays}}}``, the arrays of a
temperature being every array of ``predictions/<name>/seed<s>/T<T>`` (``pearson_node_A``, ``t_pred``, ``u``,
``sb_q``, ``sb_md``, ``sb_pred``, ``node``, ``configurations``, ...) plus ``trained``: whether the run trained on
that temperature. Temperatures are sorted.
"""

from __future__ import annotations

import json

from ..data.runs import BEST, HISTORY, model_folder, predictions_path, run_flags, runs, variant_name
from ..data.spec import parse_spec
from ..data.store import StoreError, open_store


def read_spec(root):
    """The job spec a store was made and trained with (its root attribute ``spec``)."""
    text = root.attrs.get("spec")
    if text is None:
        raise StoreError("the store has no 'spec' attribute: it was not made by `tbotan simulate`")
    return parse_spec(text, source="the store's spec")


def seed_predictions(grp) -> dict:
    """{T: {array name: array, "trained": bool}} of one seed's predictions group, sorted by T."""
    out = {}
    for name, tg in grp.groups():
        if not name.startswith("T"):
            continue
        out[float(tg.attrs["T"])] = {k: tg[k][:] for k in tg.array_keys()} | {"trained": bool(tg.attrs["trained"])}
    return dict(sorted(out.items()))


def load_results(store_path, spec, names: list[str], seeds: list[int]) -> tuple[dict, list[str]]:
    """{name: {seed: {"attrs", "T"}}} of complete predictions, and a list of what is missing (as commands)."""
    root = open_store(store_path)
    results, missing = {}, []
    flags = {variant_name(spec, v, lam): run_flags(spec, v, lam) for v, lam in runs(spec)}
    for name in names:
        base = flags.get(name, "")
        for s in seeds:
            path = predictions_path(name, s)
            if path in root and root[path].attrs.get("complete"):
                results.setdefault(name, {})[s] = {"attrs": dict(root[path].attrs), "T": seed_predictions(root[path])}
            elif not (model_folder(store_path, name, s) / BEST).exists():
                missing.append(f"{name} seed {s}: not trained (run `tbotan train SPEC --store {store_path}{base}`)")
            else:
                missing.append(
                    f"{name} seed {s}: trained but not evaluated (run `tbotan evaluate SPEC --store "
                    f"{store_path}{base}`)"
                )
    return results, missing


def read_histories(store_path, name: str, seeds: list[int]) -> dict[int, list[dict]]:
    """{seed: history} of a run's ``history.json`` files (one entry per epoch); seeds without one are left out."""
    out = {}
    for s in seeds:
        path = model_folder(store_path, name, s) / HISTORY
        if path.exists():
            out[s] = json.loads(path.read_text())
    return out

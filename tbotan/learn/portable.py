"""A trained T-BOTAN as one portable file, and the model ``tbotan predict`` uses (docs/predict.md).

    export_model("storage/quickstart.zarr", spec, "model.pt")      # every seed's best checkpoint of 'both'
    model, sha = load_model_file("model.pt")                        # or model_from_store(store, spec, "both")
    model["seeds"][0]                                               # seed 0's state_dict

``spec`` is the store's recorded job spec (``tbotan.predict.store_spec``; parsing a spec may load openmm, which
this layer may not).

The file is ``torch.save`` of plain dicts, lists, strings, numbers and tensors only, so
``torch.load(path, weights_only=True)`` reads it with no tbotan installed. Its fields (``FORMAT`` = 1), each
documented in docs/predict.md: ``format``, ``kind``, ``variant``, ``name``, ``lambda_g``, ``shape``, ``settings``,
``training``, ``seeds`` ({seed: state_dict}), ``units`` ({seed: {buffer: list}}), ``best_epoch``,
``checkpoint_sha256``, ``training_temperatures``, ``temperatures``, ``N``, ``density``, ``edge_cutoff``,
``target``, ``time_tau``, ``slab``, ``symmetrize``, ``spec`` (JSON), ``software``, ``export_software``,
``test_numbers``.

``model_from_store`` gives the same dict for a store (built from its checkpoints, nothing written) as
``load_model_file`` for a file; ``model_sha256`` is the file's SHA-256, or for a store ``store_sha256``: the SHA-256
of its checkpoints' SHA-256 (JSON of {seed: sha}), so a prediction records which model made it.
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import numpy as np
import torch

from ..data.runs import BEST, MODELS, model_dir, predictions_group, variant_name
from ..data.store import group_name, open_store, software_versions, tau_alpha_index
from ..data.targets import EDGE_CUTOFF
from ..errors import EvaluationError
from .checkpoints import build_model, load_checkpoint
from .evaluate import SCALARS, file_sha256

FORMAT = 1
KIND = "tbotan-model"
UNITS = ("output", "edge", "message", "global")  # the model's *_shift / *_scale buffers


def _units(state: dict) -> dict:
    return {f"{u}_{k}": state[f"{u}_{k}"].tolist() for u in UNITS for k in ("shift", "scale") if f"{u}_{k}" in state}


def _test_numbers(root, spec, variant, lambda_g, seeds) -> dict:
    """{seed: {T: {number: mean over the test configurations}}} that `tbotan evaluate` stored, if any."""
    out = {}
    for s in seeds:
        path = predictions_group(spec, variant, lambda_g, s)
        if path not in root or not root[path].attrs.get("complete"):
            continue
        out[s] = {}
        for T in spec.temperatures:
            tg = root[f"{path}/{group_name(T)}"]
            out[s][f"{T:g}"] = {k: float(np.nanmean(tg[k][:])) for k in SCALARS if k in tg}
            out[s][f"{T:g}"]["configurations"] = int(tg["configurations"].shape[0])
    return out


def model_from_store(store_path, spec, variant: str = "both", lambda_g: float | None = None) -> dict:
    """The portable model's dict (module doc) for a store's run, from every seed's best checkpoint; ``spec``: the
    store's recorded spec."""
    store_path = Path(store_path)
    root = open_store(store_path)
    name = variant_name(spec, variant, lambda_g)
    seeds = [
        s for s in range(spec.training.seeds) if (model_dir(store_path, spec, variant, lambda_g, s) / BEST).exists()
    ]
    if not seeds:
        raise EvaluationError(
            f"{store_path}: no trained model for variant {name!r} (no {MODELS}/{name}/seed<s>/{BEST}): run "
            f"`tbotan train SPEC --store {store_path}` first"
        )
    checkpoints, shas = {}, {}
    for s in seeds:
        path = model_dir(store_path, spec, variant, lambda_g, s) / BEST
        checkpoints[s], shas[s] = load_checkpoint(path), file_sha256(path)
    first = checkpoints[seeds[0]]
    group = root[group_name(spec.temperatures[0])]
    times = list(group.attrs.get("times_tau") or [1.0])
    return {
        "format": FORMAT,
        "kind": KIND,
        "variant": variant,
        "name": name,
        "lambda_g": first.get("lambda_g"),
        "shape": dict(first["shape"]),
        "settings": dict(first.get("settings", {})),
        "training": dict(first.get("training", {})),
        "seeds": {s: {k: v.clone() for k, v in ck["model"].items()} for s, ck in checkpoints.items()},
        "units": {s: _units(ck["model"]) for s, ck in checkpoints.items()},
        "best_epoch": {s: ck.get("best_epoch") for s, ck in checkpoints.items()},
        "checkpoint_sha256": shas,
        "training_temperatures": [float(t) for t in spec.training_temperatures],
        "temperatures": [float(t) for t in spec.temperatures],
        "N": int(spec.N),
        "density": float(spec.density),
        "edge_cutoff": EDGE_CUTOFF,
        "target": spec.training.target,
        "time_tau": float(times[tau_alpha_index(times)]),
        "slab": [float(v) for v in spec.evaluation.slab],
        "symmetrize": bool(spec.evaluation.symmetrize),
        "spec": spec.to_json(),
        "software": dict(root.attrs.get("software") or {}),
        "export_software": software_versions(),
        "test_numbers": _test_numbers(root, spec, variant, lambda_g, seeds),
    }


def export_model(store_path, spec, out, variant: str = "both", lambda_g: float | None = None) -> dict:
    """Write the store's run as one portable file ``out``; returns the dict written."""
    model = model_from_store(store_path, spec, variant, lambda_g)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    torch.save(model, buffer)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_bytes(buffer.getvalue())
    tmp.replace(out)
    return model


def check_model(model: dict, source) -> dict:
    """``model`` if it is a portable model of this ``FORMAT``, else an EvaluationError naming ``source``."""
    if not isinstance(model, dict) or model.get("kind") != KIND:
        raise EvaluationError(f"{source}: not a T-BOTAN model file (no kind {KIND!r}; `tbotan export model` makes one)")
    if model.get("format") != FORMAT:
        raise EvaluationError(
            f"{source}: a model file of format version {model.get('format')!r}; this tbotan reads version {FORMAT}: "
            "export it again with this version (`tbotan export model STORE OUT`)"
        )
    return model


def store_sha256(model: dict) -> str:
    """``model_sha256`` of a model built from a store: the SHA-256 of JSON {seed: checkpoint SHA-256}."""
    return hashlib.sha256(json.dumps(model["checkpoint_sha256"], sort_keys=True).encode()).hexdigest()


def load_model_file(source) -> tuple[dict, str]:
    """(model dict, the file's SHA-256) of a model file; an EvaluationError for another format version."""
    source = Path(source)
    if not source.is_file():
        raise EvaluationError(f"{source}: no such model file or store")
    try:
        model = torch.load(source, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - a file torch cannot read, whatever the reason
        raise EvaluationError(f"{source}: not a readable model file ({type(e).__name__}: {e})") from None
    return check_model(model, source), file_sha256(source)


def build_models(model: dict) -> dict:
    """{seed: TBotan in eval mode} of a portable model's dict."""
    out = {}
    for s, state in sorted(model["seeds"].items()):
        m = build_model(model["shape"])
        m.load_state_dict(state)
        out[int(s)] = m.eval()
    return out

"""Checkpoint files: written atomically, read back, checked against the run that would resume them, and the model
they hold rebuilt from its shape.

    save_checkpoint(state, folder / LAST)                 # a temporary file, fsync, os.replace
    ck = load_checkpoint(folder / BEST)                   # tensors only (weights_only)
    model = build_model(ck["shape"]); model.load_state_dict(ck["model"])

Where the files live (``<store>/models/<name>/seed<s>/``) is tbotan.data.runs. Each file is written to a temporary
file beside it and moved into place with ``os.replace``, so a kill at any moment leaves the previous complete file
(tbotan.data.store.atomic_write, which also turns a full disk into one StoreError). A checkpoint holds ``format``
(FORMAT), ``model`` and ``optimizer`` state dicts, ``epoch`` (epochs done), ``best_validation``, ``best_epoch``,
``history``, ``shape`` (``model_shape``), ``settings`` (tbotan.learn.recipe.run_settings), ``training``, ``seed``,
``variant`` and ``lambda_g``.

A resume is refused when the checkpoint's shape or settings differ from the run's (``check_compatible``); the
settings a checkpoint older than a recipe field lacks read as that field's default (``RECIPE_DEFAULTS``).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
import zarr

from ..data.runs import MODELS
from ..data.store import atomic_write
from ..errors import TrainingError
from .model import TBotan
from .recipe import RECIPE_DEFAULTS

FORMAT = 1


def model_shape(spec, variant: str) -> dict:
    """What fixes the network's parameters: variant, hidden, steps and decoder."""
    t = spec.training
    return {"variant": variant, "hidden": t.hidden, "steps": t.steps, "decoder": t.decoder}


def build_model(shape: dict, init: str = "torch") -> TBotan:
    """A fresh ``TBotan`` of ``shape`` (``model_shape``, or a checkpoint's ``shape``)."""
    return TBotan(
        shape["variant"], hidden=shape["hidden"], steps=shape["steps"], decoder_mode=shape["decoder"], init=init
    )


def save_checkpoint(obj, path: Path) -> None:
    """``torch.save`` of ``obj`` to ``path``, atomically."""
    atomic_write(path, lambda tmp: torch.save(obj, tmp), path.name)


def save_json(obj, path: Path) -> None:
    """``obj`` as indented JSON at ``path``, atomically (``history.json``)."""
    atomic_write(path, lambda tmp: tmp.write_text(json.dumps(obj, indent=1)), path.name)


def load_checkpoint(path, map_location="cpu") -> dict:
    """A checkpoint's dict, its tensors on ``map_location``."""
    return torch.load(path, map_location=map_location, weights_only=True)


def check_compatible(ck: dict, shape: dict, settings: dict, path: Path) -> None:
    """A ``TrainingError`` naming every difference when checkpoint ``ck`` (read from ``path``) holds a model of
    another ``shape`` or was trained with other ``settings`` than the run that would resume it."""
    if ck.get("shape") != shape:
        diff = ", ".join(
            f"{k}: checkpoint {ck.get('shape', {}).get(k)!r}, spec {v!r}"
            for k, v in shape.items()
            if ck.get("shape", {}).get(k) != v
        )
        raise TrainingError(
            f"{path} holds a model of another shape ({diff}); it cannot be resumed with this "
            "spec: move that folder away or restore the spec's model settings"
        )
    old = ck.get("settings", {})
    old = {"target": "cb", "precision": "float32", **RECIPE_DEFAULTS, **old}  # older checkpoints: as it was then
    diff = [f"{k}: checkpoint {old.get(k)!r}, now {v!r}" for k, v in settings.items() if old.get(k) != v]
    if diff:
        raise TrainingError(
            f"{path} was trained with other settings ({'; '.join(diff)}); resuming would mix "
            "two trainings: restore them or move that folder away"
        )


def ensure_models_group(root: zarr.Group) -> None:
    """``models/`` as an (empty) Zarr group, so that Zarr readers of the store list it as one."""
    models = root.require_group(MODELS)
    if "content" not in models.attrs:
        models.attrs["content"] = "T-BOTAN checkpoints (torch files, see tbotan.learn.train), no arrays"

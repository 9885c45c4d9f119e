"""Checkpoint files (tbotan.learn.checkpoints): written whole or not at all, read back into the model of their shape,
and refused when they belong to another training; on the real store of jobs/ci.yaml (test_train.py's ``wide``)."""

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from tbotan.data.runs import variant_name
from tbotan.errors import TrainingError
from tbotan.learn.checkpoints import (
    build_model,
    check_compatible,
    load_checkpoint,
    model_shape,
    save_checkpoint,
    save_json,
)
from tbotan.learn.graphs import edge_features, load_graphs
from tbotan.learn.recipe import RECIPE_DEFAULTS, run_settings
from tbotan.learn.train import train
from tests.helpers import ROOT
from tests.learn.test_train import copy, one_thread, recipe, wide  # noqa: F401  (fixtures: one thread, the store)


def test_refuses_other_model_shape_and_settings(wide, tmp_path):  # noqa: F811
    _, spec, store = wide
    store = copy(store, tmp_path, "s.zarr")
    train(spec, store, seeds=[0], epochs=1)
    bigger = spec.model_copy(update={"training": spec.training.model_copy(update={"hidden": 8})})
    with pytest.raises(TrainingError, match=r"another shape \(hidden: checkpoint 16, spec 8\)"):
        train(bigger, store, seeds=[0])
    faster = spec.model_copy(update={"training": spec.training.model_copy(update={"lr": 1e-3})})
    with pytest.raises(TrainingError, match="other settings.*lr"):
        train(faster, store, seeds=[0])
    with pytest.raises(TrainingError, match="ranks_per_seed|graphs_per_step"):
        train(spec, store, seeds=[0], graphs_per_step=2)
    # another lambda_g is another folder, not a conflict
    assert variant_name(spec, "both", 0.1) == "both_lambda0.1" and variant_name(spec, "both", 0.01) == "both"
    r = train(spec, store, seeds=[0], lambda_g=0.1, epochs=1)
    assert r[0]["dir"].endswith("models/both_lambda0.1/seed0")


def test_a_model_rebuilt_from_its_checkpoints_shape_computes_what_was_saved(wide, tmp_path):  # noqa: F811
    _, spec, store = wide
    shape = model_shape(spec, "thermal")
    assert shape == {"variant": "thermal", "hidden": 16, "steps": 2, "decoder": spec.training.decoder}
    torch.manual_seed(0)
    model = build_model(shape, init="he")
    save_checkpoint({"shape": shape, "model": model.state_dict()}, tmp_path / "best.pt")
    ck = load_checkpoint(tmp_path / "best.pt")
    again = build_model(ck["shape"])
    again.load_state_dict(ck["model"])
    g = load_graphs(store, [0.8], split=0)[0]
    a, b = (m(g.species, g.edges, edge_features(g, "thermal")) for m in (model, again))
    for out in ("node", "edge", "t", "u"):
        assert torch.equal(getattr(a, out), getattr(b, out)), out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.pt"]  # no temporary file left


WRITE = """
import sys, torch
from pathlib import Path
from tbotan.data.store import StoreError
from tbotan.learn.checkpoints import save_checkpoint, save_json
folder = Path(sys.argv[1])
try:
    save_checkpoint({"w": torch.zeros(1 << 20)}, folder / "last.pt")  # 4 MB, beyond the limit
except Exception as e:
    print("CHECKPOINT", type(e).__name__)
try:
    save_json(list(range(1 << 20)), folder / "history.json")
except StoreError as e:
    print("REFUSED", e)
"""


def test_a_write_that_does_not_fit_leaves_the_previous_file_whole(tmp_path):
    """`ulimit -f` (as a full disk would): each write fails, the previous files stay as they were; the JSON write
    fails with one StoreError naming the file, and leaves no temporary file beside it."""
    folder = tmp_path / "seed0"
    folder.mkdir()
    save_checkpoint({"w": torch.arange(3.0)}, folder / "last.pt")
    save_json([{"epoch": 1}], folder / "history.json")
    script = tmp_path / "write.py"
    script.write_text(textwrap.dedent(WRITE))
    r = subprocess.run(
        ["bash", "-c", f"ulimit -f 64; {sys.executable} {script} {folder}"], capture_output=True, text=True, cwd=ROOT
    )
    assert r.returncode == 0 and "CHECKPOINT" in r.stdout, r.stdout + r.stderr
    assert "REFUSED" in r.stdout and "writing history.json failed" in r.stdout, r.stdout + r.stderr
    assert torch.equal(load_checkpoint(folder / "last.pt")["w"], torch.arange(3.0))
    assert (folder / "history.json").read_text() == '[\n {\n  "epoch": 1\n }\n]'
    assert not list(folder.glob(".history.json.tmp*"))


def test_an_older_checkpoint_reads_the_settings_it_lacks_as_the_defaults(wide):  # noqa: F811
    _, spec, _ = wide
    shape = model_shape(spec, "both")
    settings = run_settings(spec, spec.training.lambda_g_values[0], 1, 1)
    older = {k: v for k, v in settings.items() if k not in {*RECIPE_DEFAULTS, "target", "precision"}}
    check_compatible({"shape": shape, "settings": older}, shape, settings, Path("last.pt"))
    scaled = run_settings(recipe(spec, scaling="standard"), spec.training.lambda_g_values[0], 1, 1)
    with pytest.raises(TrainingError, match="last.pt was trained with other settings .scaling: checkpoint 'none', now"):
        check_compatible({"shape": shape, "settings": older}, shape, scaled, Path("last.pt"))

"""`tbotan status` on the real store of jobs/ci.yaml with a training history in its models folder: the best
checkpoint's validation rho_A, and the plateau warning (tbotan.data.runs.plateau_message) for a seed whose
validation rho_A sat below 0.1 half-way to the switch, and none for a seed that did not."""

import json
import shutil
import subprocess

import pytest

from tbotan.data import runs
from tests.helpers import ROOT, TBOTAN

SWITCH = 8  # written into the store's spec below: half-way to the switch is epoch 4


def history(rho_early: float, rho_late: float, epochs: int = 10, best: int = 9) -> list[dict]:
    """A history.json as tbotan.learn.train writes it (the fields status reads), validation rho_A ``rho_early`` up
    to half-way to the switch and ``rho_late`` after; ``best`` the epoch best.pt holds."""
    head = {"spread": 0.1, "label_spread": 0.2, "slope": 0.5, "u_alive": 8, "hidden": 16, "dead": False}
    return [
        {
            "epoch": e,
            "switched_on": e > SWITCH,
            "temperature_head": head,
            "train": {"total": 1.0 / e},
            "validation": {"objective": 2.0 / e, "pearson_A": rho_early if e <= SWITCH // 2 else rho_late},
            "best": e == best,
        }
        for e in range(1, epochs + 1)
    ]


@pytest.fixture(scope="module")
def store(ci_store, tmp_path_factory):
    """A copy of the ci store whose run `both` has two seeds' histories: seed 0 on the plateau, seed 1 not."""
    import zarr

    path = tmp_path_factory.mktemp("status") / "ci.zarr"
    shutil.copytree(ci_store, path)
    root = zarr.open_group(str(path), mode="r+")
    spec = dict(root.attrs["spec"])
    spec["training"] = {**spec["training"], "switch_epoch": SWITCH, "epochs": 10}
    root.attrs["spec"] = spec
    for seed, (early, late) in enumerate([(0.04, 0.3), (0.25, 0.45)]):
        folder = runs.model_folder(path, "both", seed)
        folder.mkdir(parents=True)
        (folder / runs.HISTORY).write_text(json.dumps(history(early, late)))
    return path


def status(*args):
    out = subprocess.run([*TBOTAN, "status", *map(str, args)], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


def test_status_names_the_seed_on_the_plateau_and_only_it(store):
    text = status(store)
    lines = text.splitlines()
    seed0 = next(x for x in lines if x.startswith("train    both seed0"))
    seed1 = next(x for x in lines if x.startswith("train    both seed1"))
    assert "epoch 10/10 best validation rho_A 0.300 at epoch 9" in seed0
    assert "epoch 10/10 best validation rho_A 0.450 at epoch 9" in seed1
    warnings = [x for x in lines if x.startswith("  ! both seed")]
    assert len(warnings) == 1, text
    assert warnings[0].startswith("  ! both seed 0: validation rho_A 0.04 at epoch 4, half-way to the switch")
    assert "plateau" in warnings[0]

    state = json.loads(status(store, "--json"))
    m0, m1 = state["models"]
    assert (m0["seed"], m1["seed"]) == ("seed0", "seed1")
    assert m0["best_epoch"] == 9 and m0["best_validation_rho_A"] == 0.3 and "best_validation" not in m0
    assert m0["best_validation_objective"] == pytest.approx(2.0 / 9)
    expected = runs.plateau_message(0, history(0.04, 0.3), SWITCH)
    assert m0["plateau"] == expected and expected.startswith("seed 0: validation rho_A 0.04")
    assert m1["plateau"] is None and runs.plateau_message(1, history(0.25, 0.45), SWITCH) is None
    assert state["warnings"] == [f"both {expected}"]


def test_a_history_that_has_not_reached_half_way_is_not_warned_about(store, tmp_path):
    copy = tmp_path / "early.zarr"
    shutil.copytree(store, copy)
    folder = runs.model_folder(copy, "both", 0)
    (folder / runs.HISTORY).write_text(json.dumps(history(0.04, 0.3, epochs=3, best=0)))
    state = json.loads(status(copy, "--json"))
    assert state["warnings"] == [] and state["models"][0]["plateau"] is None
    assert state["models"][0]["best_epoch"] is None and state["models"][0]["best_validation_rho_A"] is None
    assert "both seed0: epoch 3/10 " in status(copy)

"""Training (tbotan.learn.graphs, tbotan.learn.train) on a real store made by the pipeline from jobs/ci.yaml: the
graphs, the loop with its checkpoints and resume, the recipe's options in training, DDP, the CLI, SIGTERM.

The DDP tests launch real processes (``python -m torch.distributed.run``, gloo on CPU)."""

import json
import logging
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
import zarr

from tbotan.data.runs import model_dir, plateau_message
from tbotan.data.spec import load_spec
from tbotan.data.store import StoreError
from tbotan.errors import TrainingError
from tbotan.learn.checkpoints import load_checkpoint
from tbotan.learn.graphs import edge_features, load_graphs
from tbotan.learn.model import TBotan
from tbotan.learn.recipe import learning_rate, output_units
from tbotan.learn.train import selection_start, train
from tests import helpers

ROOT = Path(__file__).resolve().parents[2]
CI_SPEC = ROOT / "jobs" / "ci.yaml"
DRIVER = Path(__file__).parent / "ddp_driver.py"


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Small graphs: one thread is faster (and on a shared machine much faster) than several."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def wide(ci_store, tmp_path_factory):
    """(spec path, spec, store): training at 0.8 and 2.0, with 3 train graphs (0.8 c0, 2.0 c0, 2.0 c1) and 2
    validation graphs (0.8 c2, 2.0 c2), so that a step of 2 graphs leaves a short last step."""
    folder = tmp_path_factory.mktemp("wide")
    store = folder / "wide.zarr"
    shutil.copytree(ci_store, store)
    zarr.open_group(str(store), mode="r+")["T2.000"]["split"][:] = np.array([0, 0, 1], dtype=np.int8)
    data = yaml.safe_load(CI_SPEC.read_text())
    data["training"]["temperatures"] = [0.8, 2.0]
    spec_path = folder / "wide.yaml"
    spec_path.write_text(yaml.safe_dump(data))
    return spec_path, load_spec(spec_path), store


def copy(store, tmp_path, name):
    dst = tmp_path / name
    shutil.copytree(store, dst, ignore=shutil.ignore_patterns("models"))
    return dst


def recipe(spec, **fields):
    return spec.model_copy(update={"training": spec.training.model_copy(update=fields)})


def assert_same(a: dict, b: dict, atol=0.0):
    assert a.keys() == b.keys()
    for k in a:
        if atol:
            torch.testing.assert_close(a[k], b[k], atol=atol, rtol=0, msg=k)
        else:
            assert torch.equal(a[k], b[k]), k


def torchrun(tmp_path, spec_path, store, *args, nproc=2):
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = helpers.torchrun(nproc, DRIVER, spec_path, store, out, *args)
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=180, env=env)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return out, r.stdout


# --- graphs -------------------------------------------------------------------------------------------
def test_graphs_follow_the_store(ci_store):
    g = zarr.open_group(str(ci_store), mode="r")["T0.800"]
    graphs = load_graphs(ci_store, [0.8], split=0)
    assert list(g["split"][:]) == [0, 2, 1]  # ci spec at 0.8: c0 train, c1 test, c2 validation
    assert [x.id for x in graphs] == [(0.8, 0)]
    assert [x.id for x in load_graphs(ci_store, [0.8], split=1)] == [(0.8, 2)]
    assert [x.id for x in load_graphs(ci_store, [0.8, 2.0], split=2)] == [(0.8, 1), (2.0, 0), (2.0, 1), (2.0, 2)]
    x = graphs[0]
    n = int(g["n_edges"][0])
    L = g.attrs["L"]
    assert x.edges.shape == (n, 2) and x.edges.dtype == torch.long and x.species.dtype == torch.long
    np.testing.assert_array_equal(x.edges.numpy(), g["edges"][0, :n])
    np.testing.assert_allclose(x.node_target.numpy(), g["cb"][0, 0], rtol=1e-6)
    np.testing.assert_allclose(x.edge_target.numpy(), g["edge_targets"][0, 0, :n], rtol=1e-6)
    src, dst = g["edges"][0, :n].T
    d = g["inherent"][0][dst] - g["inherent"][0][src]
    d -= L * np.round(d / L)
    np.testing.assert_allclose(x.is_vectors.numpy(), d, atol=1e-5)
    assert (x.is_vectors.norm(dim=1) < 2.0 + 1e-5).all()  # edges: r_jk < 2.0 in the IS
    d = g["thermal"][0][dst] - g["thermal"][0][src]
    d -= L * np.round(d / L)
    np.testing.assert_allclose(x.thermal_distance[:, 0].numpy(), np.linalg.norm(d, axis=1), rtol=1e-6)
    assert edge_features(x, "both").shape == (n, 4) and edge_features(x, "inherent").shape == (n, 3)
    assert edge_features(x, "thermal").shape == (n, 1)
    f = x.f_md()
    assert f.shape == (3,) and x.f_md() is f  # cached


def test_augmentation_is_orthogonal_and_never_mutates(ci_store):
    x = load_graphs(ci_store, [0.8], split=0)[0]
    before = {k: v.clone() for k, v in vars(x).items() if isinstance(v, torch.Tensor)}
    plain = edge_features(x, "both")
    seen = set()
    for s in range(12):
        a = edge_features(x, "both", generator=torch.Generator().manual_seed(s))
        assert a.data_ptr() != x.is_vectors.data_ptr()
        torch.testing.assert_close(a[:, 3], plain[:, 3], rtol=0, atol=0)  # distance untouched
        torch.testing.assert_close(a[:, :3].norm(dim=1), plain[:, :3].norm(dim=1))  # lengths kept
        v, w = a[:50, :3].double(), plain[:50, :3].double()
        torch.testing.assert_close(v @ v.T, w @ w.T)  # every angle kept
        m = torch.linalg.lstsq(w, v).solution  # the map itself
        torch.testing.assert_close(m.T @ m, torch.eye(3, dtype=m.dtype), atol=1e-6, rtol=0)
        assert set(m.abs().round().flatten().tolist()) == {0.0, 1.0}  # axis permutation x signs
        seen.add(tuple(m.round().flatten().tolist()))
        again = edge_features(x, "both", generator=torch.Generator().manual_seed(s))
        assert torch.equal(a, again)  # no compounding
        ins = edge_features(x, "inherent", generator=torch.Generator().manual_seed(s))
        assert torch.equal(ins, a[:, :3])
    assert len(seen) > 6
    for k, v in before.items():
        assert torch.equal(getattr(x, k), v), f"{k} was changed"


# --- training in one process ----------------------------------------------------------------------------
def test_train_writes_checkpoints_and_resume_equals_uninterrupted(wide, tmp_path, caplog):
    _, spec, store = wide
    straight, resumed = copy(store, tmp_path, "a.zarr"), copy(store, tmp_path, "b.zarr")
    caplog.set_level(logging.INFO, logger="tbotan")
    res = train(spec, straight, seeds=[0])
    assert res[0]["epochs"] == 4 and any("graphs/s" in x and "ETA" in x for x in caplog.messages)
    train(spec, resumed, seeds=[0], epochs=2)  # "killed" after epoch 2 ...
    folder = model_dir(resumed, spec, "both", seed=0)
    (folder / ".last.pt.tmp999").write_bytes(b"half-written")  # ... while writing a checkpoint
    caplog.clear()
    train(spec, resumed, seeds=[0])  # resumes at epoch 2, to 4
    assert any("resuming" in x for x in caplog.messages)
    a = load_checkpoint(model_dir(straight, spec, "both", seed=0) / "last.pt")
    b = load_checkpoint(folder / "last.pt")
    assert a["epoch"] == b["epoch"] == 4
    assert_same(a["model"], b["model"])
    assert_same(a["optimizer"]["state"][0], b["optimizer"]["state"][0])
    for x, y in zip(a["history"], b["history"]):
        assert x["train"] == y["train"] and x["validation"] == y["validation"]
    h = json.loads((folder / "history.json").read_text())
    assert [e["epoch"] for e in h] == [1, 2, 3, 4] and [e["switched_on"] for e in h] == [False, False, True, True]
    assert set(h[0]["train"]) >= {"mse", "var", "corr", "edge", "global", "total"}
    assert {"objective", "pearson_A"} <= set(h[0]["validation"])
    best = load_checkpoint(folder / "best.pt")
    # best: the highest validation rho_A among the epochs after selection_start (the second half after the switch)
    start = selection_start(spec.training.switch_epoch, 4)
    competing = [e for e in h if e["epoch"] > start]
    assert start == 3 and [e["epoch"] for e in competing] == [4]
    top = max(competing, key=lambda e: e["validation"]["pearson_A"])
    assert best["epoch"] == b["best_epoch"] == top["epoch"]
    assert best["best_validation"] == top["validation"]["pearson_A"]
    assert (straight / "models" / "zarr.json").exists()
    assert sorted(n for n, _ in zarr.open_group(str(straight), mode="r").groups()) == ["T0.800", "T2.000", "models"]
    # nothing left to do: no new epoch, same files
    again = train(spec, resumed, seeds=[0])
    assert again[0]["epochs"] == 4
    assert_same(load_checkpoint(folder / "last.pt")["model"], b["model"])


def test_missing_data_and_nan_are_clear_errors(ci_store, tmp_path):
    spec = load_spec(CI_SPEC)
    store = copy(ci_store, tmp_path, "undone.zarr")
    g = zarr.open_group(str(store), mode="r+")["T0.800"]
    g["done"][:] = np.array([False, True, True])  # the only train configuration is unfinished
    with pytest.raises(StoreError, match=r"no finished train configuration at T=0\.800.*tbotan simulate"):
        train(spec, store)

    store = copy(ci_store, tmp_path, "nan.zarr")
    g = zarr.open_group(str(store), mode="r+")["T0.800"]
    cb = g["cb"][0]
    cb[0, 7] = np.nan
    g["cb"][0] = cb
    with pytest.raises(TrainingError, match=r"seed 0: NaN/inf loss at epoch 1 .*\(T=0\.800, c=0\)") as e:
        train(spec, store)
    assert "seed(s) 0, 1" in str(e.value)  # each seed stops; both are reported
    assert not (model_dir(store, spec, "both", seed=0) / "last.pt").exists()


# --- training with the recipe (tbotan.learn.recipe) ---------------------------------------------------------
def test_recipe_in_training_history_and_checkpoint(wide, tmp_path):
    _, spec, store = wide
    store = copy(store, tmp_path, "r.zarr")
    spec = recipe(spec, scaling="standard", pretrain_epochs=1, schedule="cosine", warmup_epochs=1)
    train(spec, store, seeds=[0])
    folder = model_dir(store, spec, "both", seed=0)
    h = json.loads((folder / "history.json").read_text())
    assert [e["pretraining"] for e in h] == [True, False, False, False]
    assert h[0]["train"]["total"] == pytest.approx(0.5 * h[0]["train"]["edge"], rel=1e-6)
    settings = load_checkpoint(folder / "last.pt")["settings"]
    assert [e["lr"] for e in h] == pytest.approx([learning_rate(settings, e) for e in range(4)])
    head = h[-1]["temperature_head"]
    assert set(head) >= {"spread", "label_spread", "slope", "u_alive", "hidden", "dead"} and head["hidden"] == 16
    assert ("message" in head) == head["dead"]
    # `tbotan status` shows the last epoch's temperature head: its message when dead, its spread otherwise
    status = subprocess.run([sys.executable, "-m", "tbotan", "status", str(store)], capture_output=True, text=True)
    line = next(x for x in status.stdout.splitlines() if x.startswith("train    both seed0"))
    expected = head["message"] if head["dead"] else f"T head: slope {head['slope']:.2f} against the labels"
    assert expected in line, line
    ck = load_checkpoint(folder / "last.pt")
    graphs = load_graphs(store, [0.8, 2.0], split=0)
    shift, scale = output_units(graphs)
    assert ck["model"]["output_shift"].tolist() == pytest.approx(shift)
    assert ck["settings"]["scaling"] == "standard" and ck["settings"]["schedule_epochs"] == 4


def test_a_dead_temperature_head_is_reported(wide, tmp_path, caplog):
    """lambda_g = 0: the head never learns, so it must be reported dead in the log and in the history."""
    _, spec, store = wide
    store = copy(store, tmp_path, "dead.zarr")
    caplog.set_level(logging.INFO, logger="tbotan")
    train(spec, store, seeds=[0], lambda_g=0.0)
    h = json.loads((model_dir(store, spec, "both", 0.0, seed=0) / "history.json").read_text())
    head = h[-1]["temperature_head"]
    assert head["dead"] and head["slope"] < 0.1
    assert [e["temperature_head"]["dead"] for e in h[:2]] == [False, False]  # not switched on yet
    assert any("seed 0: temperature head dead: T_pred follows the labels" in m for m in caplog.messages)


def test_switch_trunk_lr_factor_freezes_the_trunk_after_the_switch(wide, tmp_path):
    _, spec, store = wide
    store = copy(store, tmp_path, "f.zarr")
    spec = recipe(spec, switch_trunk_lr_factor=0.0)  # switch at epoch 2 of 4
    folder = model_dir(store, spec, "both", seed=0)
    train(spec, store, seeds=[0], epochs=2)
    at_switch = load_checkpoint(folder / "last.pt")["model"]
    train(spec, store, seeds=[0])
    end = load_checkpoint(folder / "last.pt")["model"]
    trunk_keys = [k for k in end if k.startswith(("node_encoder", "edge_encoder", "edge_mlp", "node_mlp"))]
    assert trunk_keys and all(torch.equal(at_switch[k], end[k]) for k in trunk_keys)
    assert not torch.equal(at_switch["node_decoder.1.weight"], end["node_decoder.1.weight"])  # the decoders train


def test_global_path_options(wide, tmp_path):
    """``global_input: standardized`` sets the chain's input units at the switch epoch to the training graphs' mean
    and spread of mean_v h^m; ``global_start_epoch`` and ``global_lr_factor`` are recorded (their objective and
    parameter groups: test_scoring.py, test_recipe.py)."""
    _, spec, store = wide
    store = copy(store, tmp_path, "g.zarr")
    spec = recipe(spec, global_input="standardized", global_start_epoch=1, global_lr_factor=0.5)
    train(spec, store, seeds=[0])
    ck = load_checkpoint(model_dir(store, spec, "both", seed=0) / "last.pt")
    m = TBotan(hidden=16, steps=2)
    m.load_state_dict(ck["model"])
    graphs = load_graphs(store, [0.8], split=0)
    x = torch.stack([m(g.species, g.edges, edge_features(g, "both")).global_inputs for g in graphs])
    assert not torch.equal(m.global_scale, torch.ones_like(m.global_scale))  # set at the switch
    assert torch.isfinite(m.global_shift).all() and (m.global_scale > 0).all()
    assert x.shape[1:] == m.global_shift.shape
    assert ck["settings"]["global_input"] == "standardized" and ck["settings"]["global_lr_factor"] == 0.5


def test_bfloat16_and_message_units_train_and_resume_bit_identically(wide, tmp_path):
    """A run with ``precision: bfloat16`` and ``message_input: standardized`` stopped at epoch 2 and resumed ends
    where the uninterrupted run ends; its checkpoint carries the message units and the precision, and a resume
    in float32 is refused, naming the setting."""
    _, spec, store = wide
    spec = recipe(spec, precision="bfloat16", message_input="standardized")
    whole, split = copy(store, tmp_path, "w.zarr"), copy(store, tmp_path, "s.zarr")
    train(spec, whole, seeds=[0])
    train(spec, split, seeds=[0], epochs=2)
    train(spec, split, seeds=[0])
    a = load_checkpoint(model_dir(whole, spec, "both", seed=0) / "last.pt")
    b = load_checkpoint(model_dir(split, spec, "both", seed=0) / "last.pt")
    assert a["epoch"] == b["epoch"] == spec.training.epochs
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    assert a["settings"]["precision"] == "bfloat16" and not torch.equal(a["model"]["message_scale"], torch.ones(16))
    assert all(math.isfinite(row["train"]["total"]) for row in a["history"])
    with pytest.raises(TrainingError, match="precision: checkpoint 'bfloat16', now 'float32'"):
        train(recipe(spec, precision="float32"), split, seeds=[0], epochs=spec.training.epochs + 1)


def test_the_quickstart_recipe_resumes_bit_identically_across_the_readout_fit(wide, tmp_path, caplog):
    """Deviations to the switch, the readouts fitted there, the trunk frozen after it (jobs/quickstart.yaml's
    recipe): stopped at the switch and resumed, it ends where the uninterrupted run ends; the trunk did not move
    after the switch and the readouts did."""
    _, spec, store = wide
    spec = recipe(
        spec,
        scaling="centered",
        decoder="separate",
        pretrain_epochs=2,
        pretrain_target="deviation",
        pretrain_readout="fit",
        switch_trunk_lr_factor=0.0,
        global_input="standardized",
    )
    whole, split = copy(store, tmp_path, "w.zarr"), copy(store, tmp_path, "s.zarr")
    caplog.set_level(logging.INFO)
    train(spec, whole, seeds=[0])
    assert any("readouts fitted by least squares" in m for m in caplog.messages)
    assert any("temperature readout fitted by ridge regression" in m for m in caplog.messages)
    at_switch = train(spec, split, seeds=[0], epochs=2)[0]["model"].state_dict()
    at_switch = {k: v.clone() for k, v in at_switch.items()}
    train(spec, split, seeds=[0])
    a = load_checkpoint(model_dir(whole, spec, "both", seed=0) / "last.pt")
    b = load_checkpoint(model_dir(split, spec, "both", seed=0) / "last.pt")
    assert_same(a["model"], b["model"])
    assert_same(a["optimizer"]["state"][0], b["optimizer"]["state"][0])
    trunk = [k for k in a["model"] if k.startswith(("node_encoder", "edge_encoder", "edge_mlp", "node_mlp"))]
    assert trunk and all(torch.equal(a["model"][k], at_switch[k]) for k in trunk)
    assert not torch.equal(a["model"]["node_decoder.1.weight"], at_switch["node_decoder.1.weight"])
    h = a["history"]
    assert [e["pretraining"] for e in h] == [True, True, False, False]


# --- distributed ------------------------------------------------------------------------------------------
def test_ddp_two_ranks_one_seed_equals_one_process_with_two_graphs_per_step(wide, tmp_path):
    spec_path, spec, store = wide
    ddp_store = copy(store, tmp_path, "ddp.zarr")
    out, log = torchrun(tmp_path, spec_path, ddp_store, "--seeds", "0", "--epochs", "3")
    r0, r1 = (torch.load(out / f"rank{r}_seed0.pt") for r in (0, 1))
    assert_same(r0, r1)  # DDP keeps the ranks identical
    assert log.count("epoch 3/3") == 1  # one rank reports
    single = train(spec, copy(store, tmp_path, "one.zarr"), seeds=[0], epochs=3, graphs_per_step=2)
    assert_same(r0, single[0]["model"].state_dict(), atol=1e-6)
    written = load_checkpoint(model_dir(ddp_store, spec, "both", seed=0) / "last.pt")
    assert written["settings"]["ranks_per_seed"] == 2 and written["epoch"] == 3
    assert_same(written["model"], r0)
    # the graphs moved: not the initial parameters
    init = train(spec, copy(store, tmp_path, "init.zarr"), seeds=[0], epochs=0)
    assert not torch.equal(init[0]["model"].state_dict()["edge_mlp.0.weight"], r0["edge_mlp.0.weight"])


def test_ddp_two_seeds_side_by_side_equal_separate_runs(wide, tmp_path):
    spec_path, spec, store = wide
    out, _ = torchrun(tmp_path, spec_path, copy(store, tmp_path, "ddp2.zarr"), "--epochs", "2")
    assert sorted(p.name for p in out.iterdir()) == ["rank0_seed0.pt", "rank1_seed1.pt"]
    for seed in (0, 1):
        alone = train(spec, copy(store, tmp_path, f"alone{seed}.zarr"), seeds=[seed], epochs=2)
        assert_same(torch.load(out / f"rank{seed}_seed{seed}.pt"), alone[seed]["model"].state_dict(), atol=1e-6)


def test_cli_train_and_resume(wide, tmp_path, capsys):
    from tbotan.cli import main

    spec_path, spec, store = wide
    store = copy(store, tmp_path, "cli.zarr")
    assert main(["train", str(spec_path), "--store", str(store), "--seeds", "1", "--epochs", "1", "--quiet"]) == 0
    quiet = capsys.readouterr().out  # --quiet: no progress lines; warnings (here: the plateau, 1 epoch in) stay
    assert "epoch 1/1" not in quiet and all("plateau" in line for line in quiet.splitlines())
    assert main(["train", str(spec_path), "--store", str(store), "--seeds", "1", "--epochs", "2"]) == 0
    out = capsys.readouterr().out
    assert "resuming" in out and "seed 1: epoch 2/2" in out and "seed 1: epoch 1/1" not in out
    assert load_checkpoint(model_dir(store, spec, "both", seed=1) / "last.pt")["epoch"] == 2
    assert main(["train", str(spec_path), "--store", str(tmp_path / "none.zarr")]) == 1
    assert "tbotan simulate" in capsys.readouterr().err


@pytest.mark.slurm
def test_srun_two_tasks_one_seed_equals_one_process(slurm_up, wide, tmp_path):
    """The same DDP step as under torchrun, with the ranks from SLURM (srun -n 2; SLURM_PROCID etc.)."""
    import socket

    spec_path, spec, store = wide
    ddp_store = copy(store, tmp_path, "srun.zarr")
    out = tmp_path / "out"
    out.mkdir()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        env.pop(k, None)
    cmd = [
        "srun",
        "--ntasks=2",
        "--cpus-per-task=1",
        "--mem=1G",
        "--time=10",
        "--kill-on-bad-exit=1",
        sys.executable,
        str(DRIVER),
        str(spec_path),
        str(ddp_store),
        str(out),
        "--seeds",
        "0",
        "--epochs",
        "3",
    ]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env, cwd=ROOT)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    r0, r1 = (torch.load(out / f"rank{k}_seed0.pt") for k in (0, 1))
    assert_same(r0, r1)
    single = train(spec, copy(store, tmp_path, "one.zarr"), seeds=[0], epochs=3, graphs_per_step=2)
    assert_same(r0, single[0]["model"].state_dict(), atol=1e-6)
    assert load_checkpoint(model_dir(ddp_store, spec, "both", seed=0) / "last.pt")["settings"]["ranks_per_seed"] == 2


def test_sigterm_ends_training_cleanly_and_it_resumes(wide, tmp_path):
    """SLURM's SIGTERM to a training process: one line, exit 143, the writer lock released, the last checkpoint
    whole (written by rename), and the same command resumes from it."""
    import signal
    import time

    from tbotan.data import lock

    spec_path, spec, store = wide
    store = copy(store, tmp_path, "term.zarr")
    cmd = [sys.executable, "-m", "tbotan", "train", str(spec_path), "--store", str(store), "--seeds", "0"]
    last = model_dir(store, spec, "both", seed=0) / "last.pt"
    proc = subprocess.Popen([*cmd, "--epochs", "100000"], cwd=ROOT, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not last.exists() and time.time() < deadline:
        time.sleep(0.1)
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143 and "stopped by SIGTERM" in err and "Traceback" not in err, err
    assert lock.holder(store) is None
    epoch = load_checkpoint(last)["epoch"]
    out = subprocess.run([*cmd, "--epochs", str(epoch + 1)], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0 and "resuming" in out.stdout, out.stdout + out.stderr
    assert load_checkpoint(last)["epoch"] == epoch + 1


def test_selection_window_and_plateau_warning():
    assert selection_start(280, 340) == 310 and selection_start(150, 210) == 180
    assert selection_start(50, 40) == 20  # no switch within the run: the second half of all epochs
    flat = [{"epoch": e, "validation": {"pearson_A": 0.05}} for e in range(1, 76)]
    msg = plateau_message(3, flat, 150)
    assert msg and "seed 3" in msg and "plateau" in msg and "epoch 75" in msg
    assert plateau_message(3, flat[:74], 150) is None  # not half-way yet
    picked_up = flat[:72] + [{"epoch": e, "validation": {"pearson_A": 0.15}} for e in (73, 74, 75)]
    assert plateau_message(3, picked_up, 150) is None
    assert plateau_message(3, flat, 0) is None
    old = [{"epoch": e, "validation": {"objective": 1.0}} for e in range(1, 76)]  # before rho_A was recorded
    assert plateau_message(3, old, 150) is None

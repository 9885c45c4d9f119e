"""torch.compile of the model (tbotan.learn.compiled): the same numbers as eager to float tolerance, and a clean
fall-back (or a clear error) where inductor cannot compile, shown with a C++ compiler that does not exist."""

import subprocess
import sys
import textwrap

import pytest
import torch

from tbotan.data.runs import model_dir
from tbotan.learn import loss
from tbotan.learn.checkpoints import load_checkpoint
from tbotan.learn.compiled import compiled
from tbotan.learn.graphs import edge_features, load_graphs
from tbotan.learn.model import TBotan
from tbotan.learn.scoring import graph_terms, objective
from tbotan.learn.train import train
from tests.helpers import ROOT
from tests.learn.test_train import copy, one_thread, wide  # noqa: F401  (fixtures: one thread, the store)

SETTINGS = {"lambda_node": 0.5, "lambda_edge": 0.5, "lambda_g": 1e-2, "w_v": 1.0, "w_c": 0.5}


def test_compiled_step_equals_eager_to_float_tolerance(ci_store):
    graphs = load_graphs(ci_store, [0.8, 2.0], split=2)  # two edge counts: the dynamic shape is reused
    grads, outs = {}, {}
    for mode in ("off", "on"):
        torch.manual_seed(0)
        model = TBotan(hidden=16, steps=2)
        forward, kernel = compiled(model, mode), compiled(loss.pair_block, mode)
        outs[mode] = [forward(g.species, g.edges, edge_features(g, "both")) for g in graphs]
        model.zero_grad()
        terms = [graph_terms(forward, g, "both", kernel=kernel) for g in graphs]
        sum(objective(t, True, SETTINGS) for t in terms).backward()
        grads[mode] = [p.grad.clone() for p in model.parameters()]
        outs[mode + "_corr"] = [t["corr"].detach() for t in terms]
    torch.testing.assert_close(outs["on_corr"], outs["off_corr"], rtol=1e-4, atol=1e-6)
    for a, b in zip(outs["off"], outs["on"]):  # the model's outputs
        for name in ("node", "edge", "t", "u"):
            torch.testing.assert_close(getattr(b, name), getattr(a, name), rtol=1e-4, atol=1e-5)
    for a, b in zip(grads["off"], grads["on"]):
        torch.testing.assert_close(b, a, rtol=1e-3, atol=1e-5)


BROKEN = """
import logging, sys, torch, torch._inductor.config as cfg
from tbotan.errors import TrainingError
from tbotan.learn.compiled import compiled
from tbotan.learn.model import TBotan
cfg.cpp.cxx = ("/nonexistent/c++",)           # no C++ compiler: inductor cannot build its kernels
logging.basicConfig(level=logging.WARNING, format="%(message)s")
torch.manual_seed(0)
model = TBotan(hidden=8, steps=1)
species, edges, feats = torch.tensor([0, 1, 0]), torch.tensor([[0, 1], [1, 2], [2, 0]]), torch.rand(3, 4)
mode = sys.argv[1]
try:
    out = compiled(model, mode)(species, edges, feats)
except TrainingError as e:
    print("ERROR", e)
else:
    print("SAME", torch.equal(out.node, model(species, edges, feats).node))
"""


@pytest.mark.parametrize("mode", ["auto", "on"])
def test_no_compiler_falls_back_or_fails_clearly(mode, tmp_path):
    script = tmp_path / "broken.py"
    script.write_text(textwrap.dedent(BROKEN))
    r = subprocess.run([sys.executable, str(script), mode], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-3000:]
    if mode == "auto":
        assert "SAME True" in r.stdout and "torch.compile failed" in r.stderr and "training eagerly" in r.stderr
    else:
        assert "ERROR torch.compile failed" in r.stdout and "training.compile: auto" in r.stdout


def test_unknown_mode_is_refused():
    from tbotan.errors import TrainingError

    with pytest.raises(TrainingError, match="unknown compile mode 'fast'"):
        compiled(TBotan(hidden=4, steps=1), "fast")


@pytest.mark.slow
def test_compiled_training_resumes_bit_identically(wide, tmp_path):  # noqa: F811
    """`compile: on`: 4 epochs in one go equal 2 + 2 with a restart between (three compilations), on one thread
    per process (``one_thread``), as `tbotan run` trains on a CPU. With several threads inductor's scatter adds
    atomically, and runs agree to float tolerance only (as eager CUDA's index_add_ does)."""
    _, spec, store = wide
    spec = spec.model_copy(update={"training": spec.training.model_copy(update={"compile": "on"})})
    straight, resumed = copy(store, tmp_path, "a.zarr"), copy(store, tmp_path, "b.zarr")
    train(spec, straight, seeds=[0])
    train(spec, resumed, seeds=[0], epochs=2)
    train(spec, resumed, seeds=[0])
    a = load_checkpoint(model_dir(straight, spec, "both", seed=0) / "last.pt")["model"]
    b = load_checkpoint(model_dir(resumed, spec, "both", seed=0) / "last.pt")["model"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)

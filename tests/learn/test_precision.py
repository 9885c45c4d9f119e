"""The precision of a training (tbotan.learn.precision): ``auto`` resolved against the hardware, and bfloat16 on a
CPU without bf16 hardware warned about; on the real store of jobs/ci.yaml (test_train.py's ``wide``)."""

import logging

import torch

from tbotan.data.runs import model_dir
from tbotan.learn import precision
from tbotan.learn.checkpoints import load_checkpoint
from tbotan.learn.precision import bf16_emulated, cpu_has_bf16, resolve_precision
from tbotan.learn.train import train
from tests.learn.test_train import copy, one_thread, recipe, wide  # noqa: F401  (fixtures: one thread, the store)


def test_auto_follows_the_hardware_and_the_others_are_themselves():
    cpu = torch.device("cpu")
    assert resolve_precision("float32", cpu) == "float32" and resolve_precision("bfloat16", cpu) == "bfloat16"
    assert resolve_precision("auto", cpu) == ("bfloat16" if cpu_has_bf16() else "float32")
    assert resolve_precision("auto", torch.device("meta")) == "float32"  # neither a GPU nor a CPU
    assert bf16_emulated("bfloat16", cpu) == (not cpu_has_bf16())
    assert not bf16_emulated("float32", cpu) and not bf16_emulated("bfloat16", torch.device("meta"))


def test_bfloat16_on_a_cpu_without_bf16_hardware_is_warned_and_auto_chooses(wide, tmp_path, caplog, monkeypatch):  # noqa: F811
    _, spec, original = wide
    store = copy(original, tmp_path, "b.zarr")
    monkeypatch.setattr(precision, "cpu_has_bf16", lambda: False)  # as on a CPU without AVX512-BF16 or AMX
    caplog.set_level(logging.INFO, logger="tbotan")
    train(recipe(spec, precision="bfloat16"), store, seeds=[0], epochs=1)
    assert any("no bf16 hardware" in m and "training.precision: float32" in m for m in caplog.messages)
    caplog.clear()
    train(recipe(spec, precision="float32"), copy(original, tmp_path, "c.zarr"), seeds=[0], epochs=1)
    assert not any("bf16" in m for m in caplog.messages)
    # auto: bfloat16 where the CPU has bf16 hardware, else float32; the checkpoint records what the run used
    for hardware, expected in [(False, "float32"), (True, "bfloat16")]:
        monkeypatch.setattr(precision, "cpu_has_bf16", lambda hardware=hardware: hardware)
        store = copy(original, tmp_path, f"auto_{hardware}.zarr")
        caplog.clear()
        train(recipe(spec, precision="auto"), store, seeds=[0], epochs=1)
        ck = load_checkpoint(model_dir(store, spec, "both", seed=0) / "last.pt")
        assert ck["settings"]["precision"] == expected
        assert f"training.precision auto: {expected}" in caplog.text and "no bf16 hardware" not in caplog.text

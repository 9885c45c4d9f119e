"""One writer per store (tbotan.data.lock) with real processes: a live holder refuses the second writer and is
named; a dead one's lock is taken over with a message; a lock from another host goes stale without heartbeats."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from tbotan.data import lock
from tbotan.errors import StoreError, StoreLocked
from tests.helpers import ROOT

HOLD = (
    "import sys, time; from tbotan.data import lock\n"
    "with lock.writer(sys.argv[1], 'holder'):\n    print('held', flush=True); time.sleep(600)\n"
)


def _holder(path):
    p = subprocess.Popen([sys.executable, "-c", HOLD, str(path)], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    assert p.stdout.readline().strip() == "held"
    return p


def test_a_live_writer_refuses_a_second_one_and_a_dead_ones_lock_is_taken_over(ci_store, tmp_path, caplog):
    store = tmp_path / "s.zarr"
    shutil.copytree(ci_store, store)
    p = _holder(store)
    try:
        before = sorted((f.relative_to(store), f.stat().st_mtime_ns) for f in store.rglob("*") if f.is_file())
        out = subprocess.run(
            [sys.executable, "-m", "tbotan", "simulate", str(ROOT / "jobs" / "ci.yaml"), "--store", str(store)],
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
        assert out.returncode == 1, out.stderr
        assert f"pid {p.pid}" in out.stderr and "one writer per store" in out.stderr and "holder" in out.stderr
        after = sorted((f.relative_to(store), f.stat().st_mtime_ns) for f in store.rglob("*") if f.is_file())
        assert after == before  # nothing written by the refused run
    finally:
        p.send_signal(signal.SIGKILL)
        p.wait()
    assert lock.holder(store)["pid"] == p.pid  # left behind by the killed process
    with caplog.at_level("WARNING"), lock.writer(store, "test"):
        assert lock.holder(store)["pid"] == os.getpid()
        with lock.writer(store, "test, nested"):  # re-entrant in one process
            pass
        assert lock.holder(store)["pid"] == os.getpid()
    assert f"taking over the writer lock of holder (host {os.uname().nodename}, pid {p.pid}" in caplog.text
    assert lock.holder(store) is None  # released


def test_a_lock_from_another_host_is_stale_only_without_heartbeats(tmp_path):
    record = {"host": "elsewhere", "pid": 1, "started": "2026-01-01T00:00:00+00:00", "command": "tbotan train"}
    store = tmp_path / "s.zarr"
    store.mkdir()
    lock.lock_path(store).write_text(json.dumps(record))
    with pytest.raises(StoreLocked, match="tbotan train .host elsewhere, pid 1"):
        lock.acquire(store, "test")
    old = time.time() - lock.STALE - 10
    os.utime(lock.lock_path(store), (old, old))
    lock.acquire(store, "test")
    assert lock.holder(store)["pid"] == os.getpid()
    lock.release(store)
    assert not lock.lock_path(store).exists()
    with pytest.raises(StoreError, match="no store at"):
        lock.acquire(tmp_path / "missing", "test")


def test_training_on_a_store_being_written_is_refused(ci_store, tmp_path):
    store = tmp_path / "s.zarr"
    shutil.copytree(ci_store, store)
    p = _holder(store)
    try:
        out = subprocess.run(
            [sys.executable, "-m", "tbotan", "train", str(ROOT / "jobs" / "ci.yaml"), "--store", str(store)],
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
        assert out.returncode == 1 and f"pid {p.pid}" in out.stderr, out.stderr
        assert not (store / "models").exists() or not any((store / "models").rglob("*.pt"))
    finally:
        p.kill()
        p.wait()

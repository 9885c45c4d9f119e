"""One writer per store: a lock file beside the store naming its holder, refreshed while it is held.

    with writer(store_path, "simulate"):      # StoreLocked if another live process holds it
        ...

The lock is the file ``<store>.lock`` next to the store (inside it, Zarr would warn on every read), made with
O_EXCL (atomic on a local or NFS v3+ file system), holding JSON {host, pid, started, command}. While it is
held, a daemon thread touches it every ``HEARTBEAT`` s. A lock is stale when its holder is on this host and
its pid is gone, or (another host, where the pid cannot be asked) when it has not been touched for ``STALE``
s; a stale lock is taken over with a warning naming the old holder (the rename to a unique name is atomic,
so two processes cannot both take it over). The same process may enter ``writer`` again: only the outermost
acquires.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import socket
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from ..errors import StoreError, StoreLocked

logger = logging.getLogger(__name__)

SUFFIX = ".lock"
HEARTBEAT = 30.0
STALE = 180.0
_held: dict[Path, int] = {}  # lock path -> nesting depth in this process


def lock_path(path) -> Path:
    """The lock file of the store at ``path``: ``<store>.lock`` beside it."""
    path = Path(path)
    return path.with_name(path.name + SUFFIX)


def holder(path) -> dict | None:
    """The holder recorded in the store's lock (with ``age_s``, seconds since its last heartbeat), or None."""
    lock = lock_path(path)
    try:
        info = json.loads(lock.read_text())
        info["age_s"] = time.time() - lock.stat().st_mtime
    except (FileNotFoundError, json.JSONDecodeError):
        return None  # gone, or being written this instant
    return info


def _alive(info: dict) -> bool:
    if info.get("host") != socket.gethostname():
        return info["age_s"] < STALE
    try:
        os.kill(int(info["pid"]), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's live process
    return True


def _describe(info: dict) -> str:
    return f"{info.get('command', '?')} (host {info.get('host')}, pid {info.get('pid')}, since {info.get('started')})"


def _create(lock: Path, what: str) -> bool:
    try:
        fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    started = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    record = {"host": socket.gethostname(), "pid": os.getpid(), "started": started, "command": what}
    with os.fdopen(fd, "w") as f:
        json.dump(record, f)
    return True


def acquire(path, what: str) -> None:
    """Take the store's lock for ``what`` (e.g. "tbotan simulate"), or raise StoreLocked naming its live holder."""
    lock = lock_path(path)
    if not Path(path).is_dir():
        raise StoreError(f"no store at {path}: run `tbotan simulate SPEC --store {path}` first")
    for _ in range(3):
        if _create(lock, what):
            return
        info = holder(path)
        if info is None:
            continue  # released meanwhile
        if _alive(info):
            raise StoreLocked(
                f"{path} is being written by {_describe(info)}, last heartbeat {info['age_s']:.0f} s ago: one "
                "writer per store. Wait for it to finish, or stop it; a lock whose process has died is taken "
                "over by the next run"
            )
        aside = lock.with_name(f"{lock.name}.stale.{os.getpid()}")
        try:
            os.rename(lock, aside)  # atomic: of two processes taking over, one wins
        except FileNotFoundError:
            continue
        aside.unlink(missing_ok=True)
        logger.warning(f"{path}: taking over the writer lock of {_describe(info)}, which is no longer running")
    raise StoreLocked(f"{path}: could not take the writer lock ({lock}); another process keeps taking it")


def release(path) -> None:
    lock = lock_path(path)
    info = holder(path)
    if info and info.get("pid") == os.getpid() and info.get("host") == socket.gethostname():
        lock.unlink(missing_ok=True)


@contextmanager
def writer(path, what: str):
    """Hold the store's writer lock for the block (re-entrant within one process); see the module doc."""
    lock = lock_path(Path(path).resolve())
    if _held.get(lock):
        _held[lock] += 1
        try:
            yield
        finally:
            _held[lock] -= 1
        return
    acquire(path, what)
    _held[lock] = 1
    stop = threading.Event()

    def beat():
        while not stop.wait(HEARTBEAT):
            try:
                os.utime(lock)
            except FileNotFoundError:
                return

    threading.Thread(target=beat, daemon=True, name="tbotan-store-lock").start()
    try:
        yield
    finally:
        stop.set()
        _held.pop(lock, None)
        release(path)

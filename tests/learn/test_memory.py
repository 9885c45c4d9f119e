"""tbotan.learn.memory: after keep_freed_memory() a freed large tensor's pages stay in the process (glibc)."""

import subprocess
import sys

import pytest

PROBE = """
import os, sys, torch
from tbotan.learn.memory import keep_freed_memory
page = os.sysconf("SC_PAGE_SIZE")
def rss():
    return int(open("/proc/self/statm").read().split()[1]) * page
took = keep_freed_memory() if sys.argv[1] == "keep" else None
before = rss()
x = torch.ones(64 * 2**20 // 4)  # 64 MiB, every page touched: above glibc's largest mmap threshold (32 MiB)
del x
print(took, (rss() - before) / 2**20)
"""


def _freed_mib_kept(mode: str) -> tuple[str, float]:
    out = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True).stdout
    took, mib = out.split()
    return took, float(mib)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt and /proc are Linux's")
def test_freed_memory_is_kept_only_when_asked():
    took, kept = _freed_mib_kept("keep")
    if took != "True":
        pytest.skip("this libc has no mallopt (not glibc)")
    _, default = _freed_mib_kept("default")
    assert default < 8  # glibc as it comes hands a 64 MiB block back when it is freed
    assert kept > 56  # after keep_freed_memory() the process keeps its pages for the next tensor

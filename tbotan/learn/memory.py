"""Keep freed memory in the process for reuse (glibc's malloc): a training step's large tensors then cost no page
faults.

    keep_freed_memory()        # once, before training; True where it took effect (Linux with glibc)

A step at N = 4096 allocates and frees dozens of E x hidden float tensors (167,612 x 64 x 4 bytes = 43 MB each).
glibc serves every block above its mmap threshold (at most 32 MB) with a fresh mmap and returns it to the system
when freed, so each such tensor is faulted in page by page again on every step. Setting M_MMAP_MAX to 0 (blocks
come from the heap) and a high M_TRIM_THRESHOLD (the heap is not trimmed) keeps the pages: PyTorch's
performance-tuning guide gets the same effect by preloading jemalloc or tcmalloc; this needs no extra library.
The peak memory is the same; the process only does not hand it back until it ends. Results are unchanged (the
allocator decides where tensors live, not what is computed). Measured in benchmarks/performance/training.py (its CPU
rows with glibc as it comes, then with memory kept), docs/training.md "Speed of a training step".
"""

from __future__ import annotations

import ctypes
import sys

M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4  # glibc's mallopt parameters (malloc.h)
TRIM_THRESHOLD = 2**31 - 1  # bytes (mallopt takes an int): free memory at the heap's top is kept up to 2 GiB


def _mallopt():
    if not sys.platform.startswith("linux"):
        return None
    try:
        return getattr(ctypes.CDLL("libc.so.6"), "mallopt", None)  # None: a libc without it (musl)
    except OSError:
        return None


def keep_freed_memory() -> bool:
    """From now on, keep freed memory in this process; True where glibc took the setting (False elsewhere, where
    nothing changes)."""
    mallopt = _mallopt()
    if mallopt is None:
        return False
    return bool(mallopt(M_MMAP_MAX, 0)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))

"""glibc's allocator set for inference: freed memory stays in the process for the next batch.

A forward pass of a large model allocates and frees the same big activations every batch (XLS-R's first
conv output alone is 26 MB per 64,600-sample input). glibc serves blocks above its mmap threshold (128 kB at
start, rising only as such blocks are freed) with fresh ``mmap`` pages and trims freed heap memory back to
the kernel, so every batch pays the page faults of first-touching its activations again: measured on
SSL-AASIST, 14 % of a CPU forward (docs/PERFORMANCE.md). :func:`keep_freed_memory` raises the mmap threshold
to glibc's largest (32 MiB on 64-bit) and stops the trimming; the process's memory then stays at its high
water mark, which a stage reaches with its first batch anyway. The numbers computed do not change.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import platform

M_TRIM_THRESHOLD = -1  # glibc's mallopt parameters (malloc.h)
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 * 2**20  # the largest glibc takes: HEAP_MAX_SIZE / 2 on 64-bit
TRIM_THRESHOLD = 2**31 - 1  # never trim (mallopt takes an int)

_applied: bool | None = None


def keep_freed_memory() -> bool:
    """Set glibc's thresholds once per process; False where the C library is not glibc (then nothing
    changes)."""
    global _applied
    if _applied is None:
        _applied = False
        if platform.system() == "Linux" and platform.libc_ver()[0] == "glibc":
            try:
                mallopt = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
            except (OSError, AttributeError):
                return False
            mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
            _applied = (
                mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
                and mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
            )
    return _applied

"""Why a training run on a Linux CPU spent most of its time in the kernel, and the call that fixes it.

PyTorch takes a tensor's memory from the C library's ``malloc``. glibc's ``malloc`` serves every
block above its *mmap threshold* (which grows with use, but never past 32 MB) with fresh pages
from the operating system, and hands them back on ``free``. A batch of 32 photos at 288 pixels
makes activations of about 85 MB, so every layer of every batch asked the system for new pages
and touched each of them once (a page fault per 4 KB). On the 370-photo sample one
``run_recipe(PETS, Recipe())`` took 13 million page faults: 20 of its 24 seconds were spent in
the kernel, giving memory back and taking it again.

``keep_freed_memory`` raises the two thresholds (the block size served by the system, and how much
freed memory may sit unused before it is returned) to 1 GB, so that freed blocks are used again.
Measured on this project's 2-core CPU (``bench/memory.py`` repeats it, in fresh processes):
``Recipe()`` on the sample 24 s -> 14 s (the same validation error), with 13 million page faults
down to 0.5 million; with one unfrozen epoch added as well, 97 s -> 59 s. The price is memory the
process keeps after a peak: peak memory grew by 15 to 25% (1.7 -> 2.1 GB for ``Recipe()``,
5.3 -> 6.2 GB with the unfrozen epoch). Threads other than the main one use malloc's other
arenas, whose blocks above 64 MB always come from the system: the web demo's handlers gain less.

``import engine`` calls it once. It only changes a setting of glibc (Linux); elsewhere (macOS,
Windows, musl) it does nothing. ``PETBREEDS_MALLOC=default`` in the environment leaves ``malloc`` as
it is (to compare, or where the memory matters more than the time), and so does any setting of
malloc's own in the environment (``GLIBC_TUNABLES``, ``MALLOC_MMAP_THRESHOLD_`` ...).
"""

from __future__ import annotations

import ctypes
import os
import sys

__all__ = ["keep_freed_memory", "KEEP", "OPT_OUT", "OPERATOR_SETTINGS"]

KEEP = 2**30  # bytes: blocks up to this come from the heap and are kept for the next batch
OPT_OUT = "PETBREEDS_MALLOC"  # =default (or off): leave malloc's settings alone
OPERATOR_SETTINGS = ("GLIBC_TUNABLES", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_")
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt's parameter numbers (glibc's malloc.h)


def keep_freed_memory(limit: int = KEEP) -> bool:
    """Let glibc's ``malloc`` keep up to ``limit`` bytes of freed memory for reuse (see above).

    Returns whether the setting was made: not off glibc, nor with ``PETBREEDS_MALLOC=default``, nor
    where the environment already sets malloc's thresholds (``GLIBC_TUNABLES``, ``MALLOC_*_``):
    an operator's choice wins."""
    if not (isinstance(limit, int) and 0 < limit <= 2**31 - 1):  # mallopt takes a C int: more would wrap
        raise ValueError(f"keep_freed_memory: limit must be 1 to {2**31 - 1} bytes, got {limit!r}")
    if os.environ.get(OPT_OUT, "").strip().lower() in ("default", "off", "0", "no") \
            or not sys.platform.startswith("linux") or any(name in os.environ for name in OPERATOR_SETTINGS):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the C library already loaded into this process
    except (OSError, AttributeError):  # no C library symbols, or none called mallopt
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    # musl has a mallopt that does nothing and returns 0: then this says False
    return bool(mallopt(_M_MMAP_THRESHOLD, limit)) and bool(mallopt(_M_TRIM_THRESHOLD, limit))

"""How a training process gets memory for its tensors: freed blocks are kept for reuse, not handed back to Linux.

Paddle's CPU tensors come from glibc's `posix_memalign`. glibc serves every block above its mmap threshold (at
most 32 MB) with a fresh `mmap` and returns it with `munmap` when freed, so each activation or gradient of a
training step -- a [32, 256, 56, 56] float map is 100 MB -- arrives as untouched pages, and the kernel faults
every 4 KB page in and zeroes it before the operator writes a byte. On the 2-core machine pcls is developed on
a fault costs ~1.2 us of system time: a 51 MB `paddle.add` spent 14 ms faulting for 6 ms of arithmetic, and a
ResNet50_vd training step at 224 px (batch 16, 2 threads) spent 20-23% of its CPU time in the kernel
(460,000 faults a step). Told to serve large blocks from its heap and to keep what is freed there
(`mallopt(M_MMAP_MAX, 0)`, `mallopt(M_TRIM_THRESHOLD, 2 GB)`), glibc hands the same pages to the next
step's tensors: 63,000-88,000 faults a step, CPU time -12 to -15%, peak memory +300-500 MB (CHANGELOG #29).

Nothing a tensor holds changes (same kernels, same values); only where its bytes live. Linux with glibc only
(elsewhere there is no `mallopt` and nothing is done). `PCLS_REUSE_MEMORY=0` leaves glibc's defaults.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import sys

from pcls.errors import PclsError

log = logging.getLogger(__name__)

SWITCH_ENV = "PCLS_REUSE_MEMORY"
M_TRIM_THRESHOLD = -1  # glibc's mallopt parameter numbers (malloc.h)
M_MMAP_MAX = -4
KEEP_FREED_BYTES = 2**31 - 1  # the largest trim threshold mallopt takes (an int): freed memory stays in the heap


def reuse_freed_memory(env=None, libc=None) -> bool:
    """Make glibc serve large blocks from its heap and keep freed ones there (module docstring); returns
    whether it did. `env` and `libc` are for tests (default: os.environ and the process's C library)."""
    env = os.environ if env is None else env
    value = env.get(SWITCH_ENV, "").strip().lower()
    if value not in ("", "1", "0", "off"):
        raise PclsError(f"{SWITCH_ENV}={value!r} is not a setting; use '0' to leave the C library's memory defaults, "
                        "or unset it")
    if value in ("0", "off"):
        log.info("CPU: %s=0, freed tensor memory goes back to the system (glibc's defaults)", SWITCH_ENV)
        return False
    if libc is None:
        if not sys.platform.startswith("linux"):
            return False
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        except OSError:
            return False
    mallopt = getattr(libc, "mallopt", None)
    if mallopt is None:  # musl and other C libraries without glibc's tunables
        return False
    # the trim threshold first: once large blocks come from the heap, freeing one must not shrink it again
    done = mallopt(M_TRIM_THRESHOLD, KEEP_FREED_BYTES) == 1 and mallopt(M_MMAP_MAX, 0) == 1
    if done:
        log.debug("CPU: freed tensor memory is kept for reuse (%s=0 to turn off)", SWITCH_ENV)
    return done

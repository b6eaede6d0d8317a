"""How a training process uses the CPU: the thread count of Paddle's math library, chosen on purpose.

Paddle itself uses one thread unless OMP_NUM_THREADS says otherwise. pcls keeps one thread per process
by default and lets the user ask for more, because measurements on the 2-core machine pcls is developed
on (CHANGELOG, issue #18) found:

- on an otherwise idle machine, 2 threads train 1.15-1.25x faster than 1 (ResNet18_vd at 32 and 224 px,
  PPLCNet_x0_5 at 64 px): most kernels are small and scale poorly;
- on a busy machine, 2 OpenMP threads train 2-3x *slower* than 1 (each parallel kernel waits for the
  thread that was descheduled);
- the thread count changes the float summation order, so a fixed seed reproduces the same weights only
  with the same count: the count cannot follow the machine's load without breaking reproducibility.

So the count is a setting, never a guess: `PCLS_NUM_THREADS`, else an OMP_NUM_THREADS the user exported,
else 1; split between the processes of a multi-process job. The other cores go to the DataLoader
workers (decoding while the model computes).
"""

from __future__ import annotations

import logging
import os
from typing import Mapping, Optional

from pcls.errors import PclsError

log = logging.getLogger(__name__)

THREADS_ENV = "PCLS_NUM_THREADS"


def usable_cores() -> int:
    """Cores this process may run on (its affinity mask, e.g. under taskset or a container's cpuset)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        return max(1, os.cpu_count() or 1)


def _positive_int(value: str, name: str) -> int:
    try:
        count = int(value)
    except ValueError:
        count = 0
    if count < 1:
        raise PclsError(f"{name}={value!r} is not a thread count; set it to a whole number >= 1 (or unset it)")
    return count


def compute_threads(world: int = 1, env: Optional[Mapping[str, str]] = None) -> int:
    """Math-library threads for one training process of a `world`-process job.

    `PCLS_NUM_THREADS` (the whole machine's budget, divided by `world`), else OMP_NUM_THREADS when it asks
    for more than one (Paddle writes "1" when it is unset, so only a user's own value is above 1), else 1.
    """
    env = os.environ if env is None else env
    if env.get(THREADS_ENV):
        total = _positive_int(env[THREADS_ENV], THREADS_ENV)
    elif env.get("OMP_NUM_THREADS") and _positive_int(env["OMP_NUM_THREADS"], "OMP_NUM_THREADS") > 1:
        total = int(env["OMP_NUM_THREADS"])
    else:
        return 1
    return max(1, total // max(1, int(world)))


def configure_threads(world: int = 1, num_workers: int = 0) -> int:
    """Set Paddle's CPU thread count for this process (compute_threads); returns it. Logs the choice and a
    warning when the model's threads and the loader's workers together ask for more cores than there are."""
    import paddle

    threads = compute_threads(world)
    paddle.base.core.set_num_threads(threads)
    cores = usable_cores()
    busy = threads * max(1, int(world)) + int(num_workers) * max(1, int(world))
    log.info("CPU: %d math thread(s) per process (%s to change), %d loader worker(s), %d core(s)", threads,
             THREADS_ENV, num_workers, cores)
    if threads > 1 and busy > cores:
        log.warning("CPU: %d thread(s) x %d process(es) + %d loader worker(s) ask for more than the %d core(s) "
                    "here; oversubscribed OpenMP threads train several times slower: lower %s or num_workers",
                    threads, world, num_workers, cores, THREADS_ENV)
    return threads

"""How a training process uses the CPU: the thread count of Paddle's math library, chosen on purpose.

Paddle itself uses one thread unless OMP_NUM_THREADS says otherwise, which is how PaddleClas trains on a
CPU. pcls uses every core it may run on, split between the processes of a multi-process job. Measured on
the 2-core machine pcls is developed on (CHANGELOG, issue #18), with dense convolutions on small maps
computed as one batched matrix product (pcls/arch/layers/gemm_conv.py), which is what scales:

- idle machine, ResNet18_vd at 32 px, batch 64: 1 thread 492 ms/step, 2 threads 315 ms/step (1.56x);
  with Paddle's per-image conv kernel alone 2 threads were only 1.15-1.25x faster than 1;
- machine with one other busy process: 2 threads 757 ms/step against 505 for 1 -- OpenMP threads wait for
  the one that was descheduled. The count is therefore a setting (`PCLS_NUM_THREADS`), not a guess from the
  load: it changes the float summation order, so a fixed seed reproduces the same weights only with the
  same count, and a count that followed the load would break reproducibility and resume equality.

DataLoader workers are not subtracted: they decode ahead and then wait on a full queue, so they compete
for the cores only while the model waits for data anyway.
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


def compute_threads(world: int = 1, env: Optional[Mapping[str, str]] = None, cores: Optional[int] = None) -> int:
    """Math-library threads for one training process of a `world`-process job.

    The machine's budget -- `PCLS_NUM_THREADS`, else OMP_NUM_THREADS when a user exported more than one
    (Paddle writes "1" when it is unset), else every usable core -- divided by `world`, at least 1.
    """
    env = os.environ if env is None else env
    cores = usable_cores() if cores is None else cores
    total = cores
    for name in (THREADS_ENV, "OMP_NUM_THREADS"):
        if env.get(name) and (name == THREADS_ENV or _positive_int(env[name], name) > 1):
            total = _positive_int(env[name], name)
            if total > cores:  # more threads than cores only slows down, and a huge count aborts in OpenMP
                log.warning("CPU: %s=%d asks for more than the %d core(s) this process may use; using %d",
                            name, total, cores, cores)
                total = cores
            break
    return max(1, total // max(1, int(world)))


def configure_threads(world: int = 1, num_workers: int = 0) -> int:
    """Set Paddle's CPU thread count for this process (compute_threads); returns it. Logs the choice and
    warns when the processes' threads together ask for more cores than there are."""
    import paddle

    threads = compute_threads(world)
    paddle.base.core.set_num_threads(threads)
    cores = usable_cores()
    log.info("CPU: %d math thread(s) per process (%s to change), %d loader worker(s), %d core(s)", threads,
             THREADS_ENV, num_workers, cores)
    if threads * max(1, int(world)) > cores:
        log.warning("CPU: %d thread(s) x %d process(es) ask for more than the %d core(s) here; oversubscribed "
                    "OpenMP threads train several times slower: lower %s", threads, world, cores, THREADS_ENV)
    elif threads > 1 and busy(cores):
        log.warning("CPU: other work keeps the %d core(s) busy (load average %.1f): this run will be slower, and "
                    "slower still with %d threads waiting on each other; %s=1 helps here", cores, os.getloadavg()[0],
                    threads, THREADS_ENV)
    return threads


def busy(cores: int) -> bool:
    """Whether the 1-minute load average, taken before this process adds to it, is above the core count."""
    try:
        return os.getloadavg()[0] > cores
    except (AttributeError, OSError):  # no load average on this platform
        return False

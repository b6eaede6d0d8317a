"""The process a run executes in: its device, its seed, and its place in a multi-process job."""

from __future__ import annotations

import logging
import os
import socket
import time

from pcls.errors import PclsError

log = logging.getLogger(__name__)


def require_cuda(device: str = "gpu") -> None:
    """Fail before anything starts when `device` needs CUDA and this Paddle build has none (the same line
    for --device gpu, --gpus and the deploy commands)."""
    from pcls.deploy.gpu import require_cuda as require

    if device.startswith("gpu"):
        require(device)


def cuda_available() -> bool:
    """Whether this Paddle build has CUDA and this machine a GPU: what device 'auto' picks a GPU on. A CPU
    build is told from Paddle's version file, without importing Paddle (a launched job's parent needs none)."""
    import sys

    if "paddle" not in sys.modules:
        from pcls.doctor.probe import paddle_build

        if not paddle_build().get("cuda"):
            return False
    import paddle

    return paddle.is_compiled_with_cuda() and paddle.device.cuda.device_count() > 0


def select_device(device=None) -> str:
    """Set and return the paddle device: 'cpu', 'gpu', 'gpu:N'; 'auto'/None picks a GPU when there is one."""
    import paddle

    device = (device or "auto").lower()
    if device == "auto":
        device = "gpu" if cuda_available() else "cpu"
    require_cuda(device)
    if device == "gpu" and "FLAGS_selected_gpus" in os.environ:
        device = f"gpu:{os.environ['FLAGS_selected_gpus'].split(',')[0]}"
    try:
        paddle.set_device(device)
    except (ValueError, RuntimeError) as err:
        raise PclsError(f"cannot use device '{device}' ({err}); use cpu, gpu or gpu:N") from err
    return device


def seed_everything(seed: int) -> None:
    import random

    import numpy as np
    import paddle

    random.seed(seed)
    np.random.seed(seed)
    paddle.seed(seed)


def in_launched_worker() -> bool:
    """Whether this process is a worker that paddle.distributed.launch started."""
    return "PADDLE_TRAINER_ID" in os.environ


def world_info():
    """(rank, world size) from the launcher's environment."""
    return int(os.environ.get("PADDLE_TRAINER_ID", 0)), int(os.environ.get("PADDLE_TRAINERS_NUM", 1))


def store_endpoint():
    """(host, port) of the job's TCP store, which rank 0 serves: the endpoint Paddle 3.3's
    init_parallel_env connects to (python/paddle/distributed/parallel.py: MASTER_ADDR:MASTER_PORT when both are
    set, else PADDLE_MASTER, else the first PADDLE_TRAINER_ENDPOINTS entry)."""
    address, port = os.environ.get("MASTER_ADDR"), os.environ.get("MASTER_PORT")
    endpoint = (f"{address}:{port}" if address and port else
                os.environ.get("PADDLE_MASTER") or os.environ.get("PADDLE_TRAINER_ENDPOINTS", "").split(",")[0])
    host, _, port = endpoint.rpartition(":")
    return (host, int(port)) if host and port.isdigit() else None


def wait_for_store(endpoint, timeout: float = 120.0, interval: float = 0.02) -> bool:
    """Wait until `endpoint` accepts a TCP connection; False after `timeout` seconds.

    Paddle's store client retries a refused connection only every 3 seconds (kDelay in
    phi/core/distributed/store/tcp_utils.h), and the other ranks often ask before rank 0 listens (5 of 14
    two-process jobs here lost those 3 s). A refused probe costs nothing, so probe often instead."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(endpoint, timeout=1.0).close()
            return True
        except OSError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(interval)


def join_process_group() -> None:
    """paddle.distributed.init_parallel_env for a launched rank; ranks other than 0 first wait (cheaply)
    for rank 0's store to listen."""
    import paddle.distributed as dist

    rank, _ = world_info()
    endpoint = store_endpoint()
    if rank != 0 and endpoint is not None and not wait_for_store(endpoint):
        log.debug("the store at %s:%d is not listening yet; leaving the retries to Paddle", *endpoint)
    dist.init_parallel_env()

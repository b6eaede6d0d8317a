"""The process a run executes in: its device, its seed, and its place in a multi-process job."""

from __future__ import annotations

import os

from pcls.errors import PclsError


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

"""What pcls asks of the GPU side of Paddle: the check every GPU path makes before doing any work (does this build
have CUDA?), the device's name (matched against the zoo's documented latencies) and the TensorRT version."""

from __future__ import annotations

from typing import Optional

from pcls.errors import PclsError


def no_cuda_message(device: str = "gpu") -> str:
    """The line `--device gpu` prints on a CPU-only build; TensorRT and GPU precisions print the same."""
    return f"device {device} requested but this Paddle build has no CUDA; use --device cpu"


def require_cuda(device: str = "gpu") -> None:
    import paddle

    if not paddle.is_compiled_with_cuda():
        raise PclsError(no_cuda_message(device))


def tensorrt_versions() -> dict:
    """TensorRT (runtime) and Paddle versions: part of the TensorRT conversion's cache key (GPU builds only)."""
    import paddle
    import paddle.inference as pi

    runtime = getattr(pi, "get_trt_runtime_version", None)
    trt = ".".join(str(v) for v in runtime()) if runtime else "unknown"
    return {"tensorrt": trt, "paddle": f"{paddle.__version__}+{getattr(paddle.version, 'commit', '')[:10]}"}


def cuda_device_name() -> Optional[str]:
    """The first CUDA device's name ("Tesla T4"), or None without a CUDA build or device."""
    try:
        import paddle

        if paddle.device.is_compiled_with_cuda() and paddle.device.cuda.device_count() > 0:
            return paddle.device.cuda.get_device_name(0)
    except Exception:  # noqa: BLE001 - a CUDA build on a machine without a driver raises from the runtime
        return None
    return None

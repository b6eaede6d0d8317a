"""What pcls asks of the GPU side of Paddle, as small importable checks (also read by `pcls doctor`):

- `cuda_problem()` / `require_cuda()`: does this Paddle build have CUDA;
- `tensorrt_problem()` / `require_tensorrt()`: can `paddle.tensorrt` be imported (it imports the Python `tensorrt`
  package and opens `libnvinfer_plugin.so` by that exact name);
- `parse_device("gpu:1")`, `visible_devices_for(gpu_id)`: which GPU a conversion subprocess must see;
- `cuda_device_name()`, `tensorrt_versions()`.
Each `*_problem` returns None when all is well, else the one line that says what to install or change.
"""

from __future__ import annotations

import importlib.util
import os
from typing import Optional, Sequence, Tuple

from pcls.errors import PclsError

PLUGIN_LIBRARY = "libnvinfer_plugin.so"  # paddle/tensorrt/converter.py: ctypes.CDLL('libnvinfer_plugin.so')


CPU_INSTEAD = "faster there: an ONNX export with --runtime auto, or an int8 one from 'pcls export ... --int8'"


def no_cuda_message(device: Optional[str] = "gpu", drop: Optional[Sequence[str]] = None,
                    instead: str = CPU_INSTEAD) -> str:
    """The line a GPU option prints on a CPU-only build. With `drop` (the flags given that need CUDA; `device` is
    the --device value, None when the command has none): which flags to drop and what to use on the CPU instead.
    Without `drop`: the plain --device line (what `--device gpu` alone should hear)."""
    if drop is None:
        return f"device {device} requested but this Paddle build has no CUDA; use --device cpu"
    gpu_device = [f"--device {device}"] if device and device != "cpu" else []
    flags = " ".join(dict.fromkeys([*drop, *gpu_device]))
    return (f"this Paddle build has no CUDA: drop {flags} to run on the CPU ({instead}), or install a GPU build of "
            "Paddle 3 (README, GPU)")


def cuda_problem(device: Optional[str] = "gpu", drop: Optional[Sequence[str]] = None,
                 instead: str = CPU_INSTEAD) -> Optional[str]:
    import paddle

    return None if paddle.is_compiled_with_cuda() else no_cuda_message(device, drop, instead)


def require_cuda(device: Optional[str] = "gpu", drop: Optional[Sequence[str]] = None,
                 instead: str = CPU_INSTEAD) -> None:
    problem = cuda_problem(device, drop, instead)
    if problem:
        raise PclsError(problem)


def tensorrt_problem() -> Optional[str]:
    """Why `import paddle.tensorrt` would fail here, checked without importing it (an import failure there is an
    OSError deep inside Paddle): the module itself, the Python `tensorrt` package, `libnvinfer_plugin.so`."""
    if importlib.util.find_spec("paddle.tensorrt") is None:
        return "this Paddle build has no paddle.tensorrt: install a GPU build of Paddle 3 (README, GPU)"
    if importlib.util.find_spec("tensorrt") is None:
        return ("paddle.tensorrt needs the Python tensorrt package: pip install tensorrt matching the TensorRT "
                "version your Paddle wheel was built with (see 'pcls doctor')")
    import ctypes

    try:
        ctypes.CDLL(PLUGIN_LIBRARY)
    except OSError:
        return (f"paddle.tensorrt opens {PLUGIN_LIBRARY} by that exact name and it was not found: pip's TensorRT "
                f"ships {PLUGIN_LIBRARY}.10 — link it as {PLUGIN_LIBRARY} in a folder on LD_LIBRARY_PATH")
    return None


def require_tensorrt() -> None:
    problem = tensorrt_problem()
    if problem:
        raise PclsError(problem)


def parse_device(device: str) -> Tuple[str, int]:
    """'cpu' | 'gpu' | 'gpu:N' -> (kind, gpu id)."""
    kind, _, index = str(device).lower().partition(":")
    if kind not in ("cpu", "gpu") or (index and (kind == "cpu" or not index.isdigit())):
        raise PclsError(f"unknown device '{device}'; use cpu, gpu or gpu:N")
    return kind, int(index or 0)


def visible_devices_for(gpu_id: int, environ=None) -> str:
    """CUDA_VISIBLE_DEVICES that makes GPU `gpu_id` (as this process numbers it) the only one, hence GPU 0:
    `paddle.tensorrt.convert` always works on CUDAPlace(0)."""
    environ = os.environ if environ is None else environ
    visible = [d.strip() for d in environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if d.strip()]
    if visible:
        if gpu_id >= len(visible):
            raise PclsError(f"--device gpu:{gpu_id}: only {len(visible)} GPU(s) are visible "
                            f"(CUDA_VISIBLE_DEVICES={environ['CUDA_VISIBLE_DEVICES']})")
        return visible[gpu_id]
    return str(gpu_id)


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

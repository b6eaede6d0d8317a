"""What is installed and what the hardware is: the facts `pcls doctor` reasons about, as one JSON-able dict.

Cheap facts are read without importing anything: Paddle's build (CUDA/cuDNN/NCCL/TensorRT versions) from the
`paddle/version/__init__.py` its setup.py generates, package versions from their metadata, CPU flags from
/proc/cpuinfo, TensorRT's libraries from the loader's search path. What can only be learnt by running the library
-- the GPUs Paddle sees, PIR, ONNX Runtime's providers, OpenVINO's devices -- is asked in a child process
(`python -m pcls.doctor.probe paddle|onnxruntime|openvino`), because `import paddle` costs ~2 s and, on a GPU
build whose CUDA/cuDNN/TensorRT libraries do not match the driver, can abort the whole process from C++; a crash
there becomes a row with its first error line, and the doctor keeps going.
"""

from __future__ import annotations

import glob
import importlib.metadata
import importlib.util
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Optional

from pcls.doctor.paddle_guard import read_version_file, too_old_message

MARKER = "PCLS_DOCTOR_FACTS "
PROBE_TIMEOUT_S = 180  # a first CUDA context on a big multi-GPU machine can take a minute
CPU_FEATURES = {  # shown name -> /proc/cpuinfo flags (any of them)
    "AVX2": ("avx2",),
    "AVX-512": ("avx512f",),
    "VNNI": ("avx512_vnni", "avx_vnni"),
    "AVX-512 BF16": ("avx512_bf16",),
    "AMX": ("amx_tile",),
}
LIBRARY_DIRS = ("/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib", "/lib64",
                "/lib", "/usr/local/lib", "/usr/local/cuda/lib64", "/usr/local/tensorrt/lib")
# paddle/tensorrt/converter.py: `ctypes.CDLL('libnvinfer_plugin.so')` -- the exact, unversioned name
TRT_PLUGIN = "libnvinfer_plugin.so"
PADDLE_DISTRIBUTIONS = ("paddlepaddle", "paddlepaddle-gpu")
OPENCV_DISTRIBUTIONS = ("opencv-python-headless", "opencv-python", "opencv-contrib-python",
                        "opencv-contrib-python-headless")
TRT_DISTRIBUTIONS = ("tensorrt", "tensorrt-cu12", "tensorrt-cu11", "tensorrt-cu13")


def distribution_version(*names: str) -> Optional[str]:
    """The version of the first installed distribution among `names` (metadata only, nothing imported)."""
    for name in names:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def pcls_env() -> dict:
    """The environment for a child Python that must import this very pcls (a worktree, an unpacked wheel)."""
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    return env


def first_error_line(text: str) -> str:
    """The line of a failed child's output that says what went wrong: pcls's `error:` line, else the exception
    line that ends a traceback, else the last line."""
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    for line in lines:
        if line.startswith("error:"):
            return line
    for line in reversed(lines):
        head = line.split(":", 1)[0]
        if head.endswith(("Error", "Exception", "Exit", "Interrupt")) or head.endswith("NotMet"):
            return line
    return lines[-1] if lines else ""


def describe_exit(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit code {returncode}"


def run_child(what: str, timeout: float = PROBE_TIMEOUT_S) -> dict:
    """Run one child probe; its facts, or {"error": first line} when it crashed, hung or failed."""
    start = time.perf_counter()
    try:
        done = subprocess.run([sys.executable, "-m", "pcls.doctor.probe", what], capture_output=True, text=True,
                              errors="replace", timeout=timeout, env=pcls_env(), stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return {"error": f"probing {what} timed out after {timeout:.0f} s"}
    except OSError as err:
        return {"error": f"cannot start {sys.executable}: {err}"}
    for line in reversed(done.stdout.splitlines()):
        if line.startswith(MARKER):
            try:
                facts = json.loads(line[len(MARKER):])
            except ValueError:
                break
            facts["probe_seconds"] = round(time.perf_counter() - start, 1)
            return facts
    reason = first_error_line(done.stderr) or first_error_line(done.stdout)
    return {"error": f"'import {what}' failed ({describe_exit(done.returncode)}): {reason}".rstrip(": ")}


# -- facts read without importing ---------------------------------------------------------------------------------
def paddle_build() -> dict:
    """Paddle's installed build, from its generated version file (nothing imported)."""
    spec = importlib.util.find_spec("paddle")
    if spec is None or not spec.submodule_search_locations:
        return {"installed": False}
    location = Path(list(spec.submodule_search_locations)[0])
    fields = read_version_file(location)
    installed = [name for name in PADDLE_DISTRIBUTIONS if distribution_version(name)]
    version = fields.get("full_version") or distribution_version(*PADDLE_DISTRIBUTIONS)

    def built_with(key):
        value = fields.get(key)
        return None if value in (None, False, "False", "None", "", "0") else str(value)

    return {
        "installed": True,
        "version": version,
        "distributions": installed,
        "location": str(location),
        "cuda": built_with("cuda_version"),
        "cudnn": built_with("cudnn_version"),
        "nccl": built_with("nccl_version"),
        "tensorrt": built_with("tensorrt_version"),
        "cuda_archs": list(fields.get("compiled_cuda_archs") or []),
        "has_tensorrt_module": (location / "tensorrt" / "__init__.py").is_file(),
        "too_old": too_old_message(version) if version else None,
    }


def cpu_facts() -> dict:
    model, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as info:
            for line in info:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "model name" and model in ("", platform.machine(), platform.processor()):
                    model = value.strip()
                elif key in ("flags", "Features") and not flags:
                    flags = set(value.split())
    except OSError:  # not Linux: the features stay unknown
        pass
    features = {name: any(flag in flags for flag in names) for name, names in CPU_FEATURES.items()} if flags else {}
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = os.cpu_count() or 1
    return {"model": model, "features": features, "usable_cores": usable, "online_cores": os.cpu_count()}


def thread_facts() -> dict:
    """The thread counts pcls will use, decided where pcls decides them (nothing recomputed here)."""
    from pcls.errors import PclsError

    facts = {}
    try:
        from pcls.engine.cpu import THREADS_ENV, compute_threads

        facts["train"] = compute_threads(1)
        if os.environ.get(THREADS_ENV):
            facts["train_source"] = f"{THREADS_ENV}={os.environ[THREADS_ENV]}"
        elif os.environ.get("OMP_NUM_THREADS", "1") != "1":
            facts["train_source"] = f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}"
        else:
            facts["train_source"] = f"every usable core; {THREADS_ENV} sets it"
    except PclsError as err:
        facts["error"] = err.message
    except ImportError as err:  # the engine moved it: say so rather than guess
        facts["error"] = f"cannot read pcls's thread setting: {err}"
    try:
        from pcls.deploy.predictor import cpu_threads

        facts["predict"] = cpu_threads()
    except ImportError as err:
        facts.setdefault("error", f"cannot read pcls's predictor thread setting: {err}")
    return facts


def _ld_cache() -> dict:
    """name -> path of the libraries the dynamic loader's cache knows (`ldconfig -p`)."""
    ldconfig = shutil.which("ldconfig") or ("/sbin/ldconfig" if os.path.exists("/sbin/ldconfig") else None)
    if not ldconfig:
        return {}
    try:
        listing = subprocess.run([ldconfig, "-p"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return {}
    found = {}
    for line in listing.splitlines():
        name, arrow, path = line.strip().partition(" => ")
        if arrow:
            found.setdefault(name.split(" (")[0], path.strip())
    return found


def tensorrt_facts() -> dict:
    """TensorRT as Paddle will look for it: the Python package and the libnvinfer* files on the loader's path
    (LD_LIBRARY_PATH, the ld cache, the usual folders, pip's tensorrt_libs). Nothing is loaded."""
    dirs = [d for d in os.environ.get("LD_LIBRARY_PATH", "").split(os.pathsep) if d]
    for name in ("tensorrt_libs", "tensorrt"):  # pip's TensorRT wheels keep the .so.N files in these packages
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.submodule_search_locations:
            dirs.extend(spec.submodule_search_locations)
    dirs.extend(LIBRARY_DIRS)
    libraries = {name: path for name, path in _ld_cache().items() if name.startswith("libnvinfer")}
    searchable = set(libraries)  # in the ld cache: dlopen by name finds them
    for folder in dict.fromkeys(dirs):
        for path in sorted(glob.glob(os.path.join(folder, "libnvinfer*.so*"))):
            name = os.path.basename(path)
            libraries.setdefault(name, path)
            if folder in os.environ.get("LD_LIBRARY_PATH", "").split(os.pathsep) or folder in LIBRARY_DIRS:
                searchable.add(name)
    return {
        "python": distribution_version(*TRT_DISTRIBUTIONS) if importlib.util.find_spec("tensorrt") else None,
        "libraries": libraries,
        "plugin_loadable": TRT_PLUGIN in searchable,
    }


def _safely(read, *args) -> dict:
    """A fact reader's result, or {"error": ...}: a doctor that crashes on an odd machine helps nobody."""
    try:
        return read(*args)
    except Exception as err:  # noqa: BLE001 - reported as that piece's row
        return {"error": f"{type(err).__name__}: {err}"}


def collect(probe: bool = True) -> dict:
    """Every fact `pcls doctor` shows. `probe=False` skips the child processes (no Paddle/ORT import at all)."""
    paddle = _safely(paddle_build)
    if "error" in paddle:
        paddle = {"installed": True, "runtime": paddle}
    jobs = {}
    if probe:
        with ThreadPoolExecutor(max_workers=3) as pool:
            if paddle.get("installed") and not paddle.get("too_old"):
                jobs["paddle"] = pool.submit(run_child, "paddle")
            if importlib.util.find_spec("onnxruntime"):
                jobs["onnxruntime"] = pool.submit(run_child, "onnxruntime")
            if importlib.util.find_spec("openvino"):
                jobs["openvino"] = pool.submit(run_child, "openvino")
            results = {name: job.result() for name, job in jobs.items()}
    else:
        results = {}
    runtime = results.get("paddle") or paddle.get("runtime") or {}
    paddle["runtime"] = runtime
    ort = results.get("onnxruntime") or {}
    if not ort and importlib.util.find_spec("onnxruntime"):
        ort = {"version": distribution_version("onnxruntime", "onnxruntime-gpu")}
    return {
        "python": {"version": platform.python_version(), "executable": sys.executable},
        "paddle": paddle,
        "gpus": runtime.get("gpus", []),
        "tensorrt": _safely(tensorrt_facts),
        "onnxruntime": ort or None,
        "paddle2onnx": distribution_version("paddle2onnx"),
        "openvino": results.get("openvino") or (
            {"version": distribution_version("openvino")} if importlib.util.find_spec("openvino") else None),
        "opencv": distribution_version(*OPENCV_DISTRIBUTIONS),
        "numpy": distribution_version("numpy"),
        "cpu": _safely(cpu_facts),
        "threads": _safely(thread_facts),
    }


# -- the child side: run as `python -m pcls.doctor.probe WHAT` ----------------------------------------------------
def _paddle_runtime() -> dict:
    start = time.perf_counter()
    import paddle

    facts = {"version": paddle.__version__, "import_seconds": round(time.perf_counter() - start, 1),
             "cuda_build": bool(paddle.is_compiled_with_cuda()), "gpus": []}
    try:
        facts["pir"] = bool(paddle.base.framework.use_pir_api())
    except AttributeError:  # not a 3.x layout
        facts["pir"] = None
    if not facts["cuda_build"]:
        return facts
    facts["nccl"] = bool(paddle.base.core.is_compiled_with_nccl())
    try:
        for index in range(paddle.device.cuda.device_count()):
            props = paddle.device.cuda.get_device_properties(index)
            device = f"gpu:{index}"
            facts["gpus"].append({
                "id": index, "name": props.name, "memory_gb": round(props.total_memory / 2**30, 1),
                "compute_capability": f"{props.major}.{props.minor}",
                "fp16": bool(paddle.amp.is_float16_supported(device)),
                "bf16": bool(paddle.amp.is_bfloat16_supported(device)),
            })
    except Exception as err:  # noqa: BLE001 - a driver/runtime mismatch raises here; it is the fact to report
        facts["gpu_error"] = first_error_line(str(err)) or type(err).__name__
    try:
        import paddle.inference as pi

        facts["tensorrt_compiled"] = ".".join(map(str, pi.get_trt_compile_version()))
        facts["tensorrt_runtime"] = ".".join(map(str, pi.get_trt_runtime_version()))
    except Exception as err:  # noqa: BLE001 - no TensorRT in this build or on this machine
        facts["tensorrt_error"] = first_error_line(str(err)) or type(err).__name__
    if facts["gpus"]:
        try:  # what `pcls export --trt` imports: tensorrt + ctypes.CDLL('libnvinfer_plugin.so')
            import paddle.tensorrt  # noqa: F401

            facts["paddle_tensorrt"] = "ok"
        except Exception as err:  # noqa: BLE001
            facts["paddle_tensorrt"] = f"{type(err).__name__}: {first_error_line(str(err))}"
    return facts


def _onnxruntime_runtime() -> dict:
    import onnxruntime as ort

    return {"version": ort.__version__, "providers": list(ort.get_available_providers()),
            "device": ort.get_device()}


def _openvino_runtime() -> dict:
    import openvino as ov

    version = getattr(ov, "__version__", None) or ov.get_version()
    return {"version": version, "devices": list(ov.Core().available_devices)}


_CHILDREN = {"paddle": _paddle_runtime, "onnxruntime": _onnxruntime_runtime, "openvino": _openvino_runtime}

if __name__ == "__main__":
    facts = _CHILDREN[sys.argv[1]]()
    sys.stdout.flush()
    print(MARKER + json.dumps(facts), flush=True)

"""The runtimes an exported model runs on, as one settings object and one callable per runtime: Paddle Inference
(CPU oneDNN / GPU / TensorRT, configured by `paddle_config_plan`) and ONNX Runtime (fp32, or the int8 model). The
export's self-check, the runtime measurement, bench and the Predictor all build their runners here."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Tuple

import numpy as np

from pcls.deploy.converters.trt import WORKSPACE_BYTES, convert_trt, plan_trt_conversion, shape_range
from pcls.deploy.gpu import require_cuda, tensorrt_versions
from pcls.deploy.spec import (
    INT8_ONNX_FILE, ONNX_FILE, ORT_TRT_CACHE, TRT_DIR_PREFIX, input_hw, model_files, read_spec,
)
from pcls.errors import PclsError

PRECISIONS = {"fp32": "Float32", "fp16": "Half", "int8": "Int8"}
RUNTIMES = ("auto", "paddle", "onnx")


def cpu_threads(cap: Optional[int] = None) -> int:
    """This machine's cores (at most `cap`): the default thread count of the model and of the decoding pool."""
    cores = max(1, os.cpu_count() or 1)
    return min(cores, cap) if cap else cores


@dataclass
class RuntimeSettings:
    """How to run an exported model. Everything the predictor asks of the runtime is derived from this."""

    runtime: str = "paddle"  # auto | paddle | onnx (auto is resolved against the export by `choose_runtime`)
    device: str = "cpu"  # cpu | gpu
    gpu_id: int = 0
    threads: int = cpu_threads()
    use_onednn: bool = True
    trt: bool = False
    precision: str = "fp32"  # fp32 | fp16 | int8
    max_batch_size: int = 8
    min_subgraph_size: int = 15
    gpu_memory_mb: int = 500
    trt_workspace: int = WORKSPACE_BYTES
    trt_batch_sizes: Tuple[int, ...] = ()  # TensorRT shape range; default (1, max_batch_size)

    def validate(self) -> "RuntimeSettings":
        if self.runtime not in RUNTIMES:
            raise PclsError(f"unknown runtime '{self.runtime}'; use auto, paddle or onnx")
        if self.device not in ("cpu", "gpu"):
            raise PclsError(f"unknown device '{self.device}'; use cpu or gpu")
        if self.precision not in PRECISIONS:
            raise PclsError(f"unknown precision '{self.precision}'; use fp32, fp16 or int8")
        if self.trt and self.device != "gpu":
            raise PclsError("TensorRT (--trt) needs --device gpu")
        if self.precision == "fp16" and self.device != "gpu":
            raise PclsError(f"{self.precision} inference needs --device gpu (CPU inference runs in fp32)")
        if self.precision == "int8" and self.device == "gpu" and not self.trt and self.runtime != "onnx":
            raise PclsError("int8 on GPU runs through TensorRT: add --trt (with the int8 ONNX model: --runtime onnx "
                            "--trt), or use --precision fp16")
        if self.precision == "int8" and self.device != "gpu" and self.runtime == "paddle":
            raise PclsError("int8 on CPU runs the ONNX Runtime int8 model: use --runtime onnx or auto "
                            "(export it with 'pcls export ... --int8 --calib LIST --root DIR')")
        if self.threads < 1:
            raise PclsError(f"--threads must be >= 1, got {self.threads}")
        return self

    @property
    def shape_batches(self) -> Tuple[int, ...]:
        return tuple(self.trt_batch_sizes) or (1, self.max_batch_size)


def paddle_config_plan(settings: RuntimeSettings, input_size: int, graph_format: str = "pir",
                       cache_dir: Optional[Path] = None) -> List[Tuple[str, tuple]]:
    """The calls made on a `paddle.inference.Config`, in order, as (method, args).

    Kept as data so the configuration for hardware this machine lacks (GPU, TensorRT) can be inspected in tests;
    `apply_plan` performs exactly these calls. Precision names are resolved to PrecisionType when applied.
    TensorRT on a PIR export (`graph_format="pir"`) needs no calls here: the config is made from the model that
    `pcls.deploy.converters.trt` converted, whose TensorRT nodes run on a plain GPU config. A legacy `.pdmodel`
    export (`graph_format="legacy"`) uses Paddle 2's subgraph API, with the serialised engine kept in `cache_dir`.
    """
    settings.validate()
    if graph_format not in ("pir", "legacy"):
        raise ValueError(f"graph_format must be pir or legacy, got {graph_format!r}")
    plan: List[Tuple[str, tuple]] = []
    if settings.device == "gpu":
        if settings.trt:  # the precision is the engine's (converted, or built by the subgraph API below)
            plan.append(("enable_use_gpu", (settings.gpu_memory_mb, settings.gpu_id)))
        else:  # Paddle 3.3: enable_use_gpu(memory_pool_init_size_mb, device_id=0, precision_mode=Float32)
            plan.append(("enable_use_gpu", (settings.gpu_memory_mb, settings.gpu_id, PRECISIONS[settings.precision])))
        if settings.trt and graph_format == "legacy":
            low, opt, high = shape_range(settings.shape_batches)
            plan.append(("enable_tensorrt_engine", (
                settings.trt_workspace,  # workspace_size
                high,  # max_batch_size
                settings.min_subgraph_size,  # min_subgraph_size
                PRECISIONS[settings.precision],  # precision_mode
                cache_dir is not None,  # use_static: serialise the engine into the optim cache dir
                settings.precision == "int8",  # use_calib_mode
            )))
            shape = [3, *input_hw(input_size)]
            plan.append(("set_trt_dynamic_shape_info", (
                {"x": [low, *shape]}, {"x": [high, *shape]}, {"x": [opt, *shape]},
            )))
            if cache_dir is not None:
                plan.append(("set_optim_cache_dir", (str(cache_dir),)))
    else:
        plan.append(("disable_gpu", ()))
        if settings.use_onednn:
            plan.append(("enable_onednn", ()))
        plan.append(("set_cpu_math_library_num_threads", (settings.threads,)))
    plan.append(("switch_ir_optim", (True,)))
    plan.append(("disable_glog_info", ()))
    return plan


def apply_plan(config, plan) -> None:
    import paddle.inference as pi

    for method, args in plan:
        args = tuple(getattr(pi.PrecisionType, a) if isinstance(a, str) and a in PRECISIONS.values() else a
                     for a in args)
        if method == "enable_onednn" and not hasattr(config, method):
            method = "enable_mkldnn"  # Paddle < 3.1 spelling
        getattr(config, method)(*args)


def runner_from_config(config):
    """A callable batch (N,3,H,W float32) -> first output, on a predictor made from a paddle.inference.Config."""
    import paddle.inference as pi

    predictor = pi.create_predictor(config)
    input_handle = predictor.get_input_handle(predictor.get_input_names()[0])
    output_handle = predictor.get_output_handle(predictor.get_output_names()[0])

    def run(batch: np.ndarray) -> np.ndarray:
        input_handle.reshape(list(batch.shape))
        input_handle.copy_from_cpu(np.ascontiguousarray(batch, dtype=np.float32))
        predictor.run()
        return output_handle.copy_to_cpu()

    return run


BLOCKTIME_ENV = "KMP_BLOCKTIME"


@contextlib.contextmanager
def openmp_spinning_off():
    """While the block runs, the Intel OpenMP threads of Paddle's CPU kernels (libiomp5, shipped in paddle/libs)
    sleep as soon as a parallel region ends instead of spinning for KMP_BLOCKTIME's default 200 ms, for the model
    runs of the calling thread. Beside the predictor's decoding threads a spinning thread only takes their core
    (and on a busy machine its time slice): measured interleaved in one process on 2 cores (CHANGELOG #29), at load
    average 7-8 PPLCNet_x1_0 end to end 1.06-5.1x per round and the model alone 1.0-2.9x, at load 6 1.03x and
    1.13x (medians); ResNet50_vd 1.04x and 1.07x (medians). The previous value is restored; a KMP_BLOCKTIME the user
    set is left alone, and so is a Paddle build without libiomp5."""
    library = None if BLOCKTIME_ENV in os.environ else _iomp()
    if library is None:
        yield
        return
    previous = library.kmp_get_blocktime()
    library.kmp_set_blocktime(0)
    try:
        yield
    finally:
        library.kmp_set_blocktime(previous)


def _iomp():
    """Paddle's libiomp5 (already loaded with Paddle), or None."""
    import ctypes

    import paddle

    path = Path(paddle.__file__).parent / "libs" / "libiomp5.so"
    try:
        library = ctypes.CDLL(str(path)) if path.is_file() else None
    except OSError:
        return None
    if library is None or not all(hasattr(library, f) for f in ("kmp_get_blocktime", "kmp_set_blocktime")):
        return None
    library.kmp_set_blocktime.argtypes = [ctypes.c_int]
    return library


def paddle_runner(model_dir, settings: RuntimeSettings, input_size: int = 224):
    """A callable batch -> outputs on Paddle Inference, configured by `paddle_config_plan(settings)`.

    With TensorRT on a PIR export the model run is the converted one in `<export>/trt_<precision>/`, converted
    on first use (under a lock) and reused while its key (precision, shapes, TensorRT/Paddle versions) holds.
    """
    import paddle.inference as pi

    if settings.device == "gpu":
        require_cuda("gpu", drop=())
    graph, params = model_files(model_dir)
    graph_format = "pir" if graph.suffix == ".json" else "legacy"
    cache_dir = None
    if settings.trt and graph_format == "pir":
        recorded = (read_spec(model_dir)["Global"].get("trt") or {}).get(settings.precision) or {}
        plan = plan_trt_conversion(model_dir, input_size, settings.precision, trt_batch_sizes(settings, recorded),
                                   tensorrt_versions())
        graph, params = model_files(convert_trt(plan, gpu_id=settings.gpu_id))
    elif settings.trt:
        cache_dir = Path(model_dir) / f"{TRT_DIR_PREFIX}legacy_{settings.precision}"
    config = pi.Config(str(graph), str(params))
    apply_plan(config, paddle_config_plan(settings, input_size, graph_format, cache_dir))
    return runner_from_config(config)


def trt_batch_sizes(settings: RuntimeSettings, recorded: dict) -> Tuple[int, ...]:
    """The TensorRT shape range to run with: the one asked for, else the one `pcls export --trt` converted with
    (so its conversion is reused) when it covers the batch size, else 1..batch size."""
    if settings.trt_batch_sizes:
        return tuple(settings.trt_batch_sizes)
    exported = tuple(recorded.get("batch_sizes") or ())
    if exported and max(exported) >= settings.max_batch_size:
        return exported
    return settings.shape_batches


def onnx_providers(settings: RuntimeSettings, model_dir=None) -> list:
    """ONNX Runtime execution providers; TensorRT keeps its engines in `<export>/ort_trt_cache`."""
    if settings.device != "gpu":
        return ["CPUExecutionProvider"]
    providers = []
    if settings.trt:
        options = {"device_id": settings.gpu_id,
                   "trt_fp16_enable": settings.precision == "fp16",
                   "trt_int8_enable": settings.precision == "int8"}
        if model_dir is not None:
            options.update(trt_engine_cache_enable=True,
                           trt_engine_cache_path=str(Path(model_dir) / ORT_TRT_CACHE))
        providers.append(("TensorrtExecutionProvider", options))
    providers.append(("CUDAExecutionProvider", {"device_id": settings.gpu_id}))
    return providers


def onnx_available() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


SPINNING_ENTRY = "session.intra_op.allow_spinning"


def onnx_session_options(settings: RuntimeSettings):
    """ONNX Runtime's session options: `settings.threads` threads for an operator, and on CPU threads that sleep
    when an operator ends instead of spinning for the next (ONNX Runtime's own switch, like
    `openmp_spinning_off` for Paddle): spinning threads take the cores from the decoding threads and from other
    processes. PPLCNet_x1_0, 2 threads, batch 8, 6 interleaved rounds at load average 2.1-2.4 on 2 cores: predict
    end to end 131 -> 209 img/s (medians), the model alone 278 -> 341 img/s (CHANGELOG #29)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = settings.threads
    options.log_severity_level = 3
    if settings.device == "cpu":
        options.add_session_config_entry(SPINNING_ENTRY, "0")
    return options


def onnx_runner(model_dir, settings: RuntimeSettings, input_size: int = 224):
    """A callable batch -> outputs on ONNX Runtime: the int8 model for precision int8, else the fp32 one."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise PclsError("--runtime onnx needs onnxruntime: pip install 'pcls[onnx]'") from None
    if settings.device == "gpu":
        require_cuda("gpu", drop=())
    # int8 runs the QDQ model: ONNX Runtime's CPU int8 kernels, or TensorRT's explicit quantisation on GPU
    name = INT8_ONNX_FILE if settings.precision == "int8" else ONNX_FILE
    path = Path(model_dir) / name
    if not path.exists():
        how = "--int8 --calib LIST --root DIR" if name == INT8_ONNX_FILE else "--format onnx"
        raise PclsError(f"{model_dir} has no {name}: export it with 'pcls export ... {how}'")
    session = ort.InferenceSession(str(path), sess_options=onnx_session_options(settings),
                                   providers=onnx_providers(settings, model_dir))
    input_name = session.get_inputs()[0].name

    def run(batch: np.ndarray) -> np.ndarray:
        return session.run(None, {input_name: np.ascontiguousarray(batch, dtype=np.float32)})[0]

    return run


def choose_runtime(spec: dict, model_dir, requested: str, device: str, precision: str) -> str:
    """The concrete runtime for `requested` ('auto' picks): on CPU the one the export measured faster
    (`Global.runtime` in inference.yml), Paddle Inference when ONNX Runtime or the ONNX model is missing."""
    if requested != "auto":
        return requested
    if device == "cpu" and precision == "int8":
        return "onnx"
    if device != "cpu" or not (onnx_available() and (Path(model_dir) / ONNX_FILE).exists()):
        return "paddle"
    recorded = (spec["Global"].get("runtime") or {}).get("cpu")
    return "onnx" if recorded == "onnx" else "paddle"


def create_runner(model_dir, settings: RuntimeSettings, input_size: int):
    """The runner for a resolved runtime (`paddle` or `onnx`; `auto` is resolved by `choose_runtime` first)."""
    create = onnx_runner if settings.runtime == "onnx" else paddle_runner
    return create(model_dir, settings, input_size)

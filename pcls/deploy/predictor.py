"""The predictor: an exported model on Paddle Inference (CPU oneDNN / GPU / TensorRT) or ONNX Runtime, fed by
a thread pool that decodes and pre-processes the next batches while the model runs the current one.

    predictor = pcls.Predictor("inference/")
    predictor.predict(["a.jpg", "b.jpg"])   # -> [{"class_ids": [...], "scores": [...], "labels": [...]}, ...]
"""

from __future__ import annotations

import os
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, List, Optional, Tuple

import numpy as np

from pcls.deploy.spec import model_files, read_spec
from pcls.errors import PclsError

PRECISIONS = {"fp32": "Float32", "fp16": "Half", "int8": "Int8"}


@dataclass
class RuntimeSettings:
    """How to run an exported model. Everything the predictor asks of the runtime is derived from this."""

    runtime: str = "paddle"  # paddle | onnx
    device: str = "cpu"  # cpu | gpu
    gpu_id: int = 0
    threads: int = max(1, os.cpu_count() or 1)
    use_onednn: bool = True
    trt: bool = False
    precision: str = "fp32"  # fp32 | fp16 | int8
    max_batch_size: int = 8
    min_subgraph_size: int = 15
    gpu_memory_mb: int = 500
    trt_workspace: int = 1 << 30

    def validate(self) -> "RuntimeSettings":
        if self.runtime not in ("paddle", "onnx"):
            raise PclsError(f"unknown runtime '{self.runtime}'; use paddle or onnx")
        if self.device not in ("cpu", "gpu"):
            raise PclsError(f"unknown device '{self.device}'; use cpu or gpu")
        if self.precision not in PRECISIONS:
            raise PclsError(f"unknown precision '{self.precision}'; use fp32, fp16 or int8")
        if self.trt and self.device != "gpu":
            raise PclsError("TensorRT (--trt) needs --device gpu")
        if self.precision != "fp32" and self.device != "gpu":
            raise PclsError(f"{self.precision} inference needs --device gpu (CPU inference runs in fp32)")
        if self.threads < 1:
            raise PclsError(f"--threads must be >= 1, got {self.threads}")
        return self


def paddle_config_plan(settings: RuntimeSettings, input_size: int) -> List[Tuple[str, tuple]]:
    """The calls made on a `paddle.inference.Config`, in order, as (method, args).

    Kept as data so the configuration for hardware this machine lacks (GPU, TensorRT) can be inspected in tests;
    `apply_plan` performs exactly these calls. Precision names are resolved to PrecisionType when applied.
    """
    settings.validate()
    plan: List[Tuple[str, tuple]] = []
    if settings.device == "gpu":
        plan.append(("enable_use_gpu", (settings.gpu_memory_mb, settings.gpu_id)))
        if settings.trt:
            plan.append(("enable_tensorrt_engine", (
                settings.trt_workspace,  # workspace_size
                settings.max_batch_size,  # max_batch_size
                settings.min_subgraph_size,  # min_subgraph_size
                PRECISIONS[settings.precision],  # precision_mode
                False,  # use_static
                settings.precision == "int8",  # use_calib_mode
            )))
            shape = [3, input_size, input_size]
            plan.append(("set_trt_dynamic_shape_info", (
                {"x": [1, *shape]}, {"x": [settings.max_batch_size, *shape]}, {"x": [settings.max_batch_size, *shape]},
            )))
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


def runner_for(config):
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


def create_paddle_predictor(model_dir, settings: RuntimeSettings, input_size: int = 224):
    """A callable batch -> outputs on Paddle Inference, configured by `paddle_config_plan(settings)`."""
    import paddle.inference as pi

    graph, params = model_files(model_dir)
    config = pi.Config(str(graph), str(params))
    apply_plan(config, paddle_config_plan(settings, input_size))
    return runner_for(config)


def onnx_providers(settings: RuntimeSettings) -> list:
    if settings.device != "gpu":
        return ["CPUExecutionProvider"]
    providers = []
    if settings.trt:
        providers.append(("TensorrtExecutionProvider", {"device_id": settings.gpu_id,
                                                        "trt_fp16_enable": settings.precision == "fp16",
                                                        "trt_int8_enable": settings.precision == "int8"}))
    providers.append(("CUDAExecutionProvider", {"device_id": settings.gpu_id}))
    return providers


def create_onnx_predictor(model_dir, settings: RuntimeSettings, input_size: int = 224):
    from pcls.deploy.export import ONNX_FILE

    try:
        import onnxruntime as ort
    except ImportError:
        raise PclsError("--runtime onnx needs onnxruntime: pip install 'pcls[onnx]'") from None
    path = Path(model_dir) / ONNX_FILE
    if not path.exists():
        raise PclsError(f"{model_dir} has no {ONNX_FILE}: export it with 'pcls export ... --format onnx'")
    options = ort.SessionOptions()
    options.intra_op_num_threads = settings.threads
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), sess_options=options, providers=onnx_providers(settings))
    input_name = session.get_inputs()[0].name

    def run(batch: np.ndarray) -> np.ndarray:
        return session.run(None, {input_name: np.ascontiguousarray(batch, dtype=np.float32)})[0]

    return run


class Predictor:
    """Exported model + its inference.yml: pre-processing, runtime, top-k post-processing."""

    def __init__(self, model_dir, runtime: str = "paddle", device: str = "cpu", threads: Optional[int] = None,
                 trt: bool = False, precision: str = "fp32", topk: Optional[int] = None, batch_size: int = 8,
                 workers: Optional[int] = None):
        from pcls.data.transforms import build_transforms

        self.model_dir = Path(model_dir)
        self.spec = read_spec(self.model_dir)
        self.labels = self.spec["labels"]
        self.topk = int(topk or self.spec["PostProcess"]["topk"])
        fixed = self.spec["Global"].get("batch_size")
        self.fixed_batch = int(fixed) if fixed else None
        self.batch_size = self.fixed_batch or int(batch_size)
        if self.batch_size < 1:
            raise PclsError(f"--batch-size must be >= 1, got {batch_size}")
        self.settings = RuntimeSettings(runtime=runtime, device=device, trt=trt, precision=precision,
                                        threads=threads or max(1, os.cpu_count() or 1),
                                        max_batch_size=max(self.batch_size, 1)).validate()
        self.input_size = int(self.spec["Global"]["input_size"])
        create = create_onnx_predictor if runtime == "onnx" else create_paddle_predictor
        self.run_batch = create(self.model_dir, self.settings, self.input_size)
        self.preprocess = build_transforms(self.spec["PreProcess"]["transform_ops"], to_chw=True)
        self.workers = workers or max(1, min(4, (os.cpu_count() or 1)))

    # -- single steps -----------------------------------------------------------------------------------------
    def preprocess_one(self, item) -> np.ndarray:
        """A path, encoded bytes, or an HWC uint8 RGB array -> the CHW float32 model input."""
        if isinstance(item, Path):
            item = str(item)
        return np.asarray(self.preprocess(item, np.random.default_rng(0)), dtype=np.float32)

    def infer(self, batch: np.ndarray) -> np.ndarray:
        """Scores for a pre-processed batch; pads to the exported batch size when it is fixed."""
        n = batch.shape[0]
        if self.fixed_batch and n != self.fixed_batch:
            pad = np.zeros((self.fixed_batch - n, *batch.shape[1:]), dtype=batch.dtype)
            return self.run_batch(np.concatenate([batch, pad]))[:n]
        return self.run_batch(batch)

    def postprocess(self, scores: np.ndarray) -> List[dict]:
        k = min(self.topk, scores.shape[-1])
        results = []
        for row in scores:
            ids = np.argsort(-row, kind="stable")[:k]
            results.append({
                "class_ids": [int(i) for i in ids],
                "scores": [float(row[i]) for i in ids],
                "labels": [self.labels[i] if self.labels and i < len(self.labels) else str(int(i)) for i in ids],
            })
        return results

    # -- the pipeline ---------------------------------------------------------------------------------------------
    def predict(self, images: Iterable) -> List[dict]:
        """Top-k for each image (paths, bytes or HWC RGB arrays); raises on an unreadable input."""
        results = []
        for _, outcome in self.predict_stream(list(images)):
            if isinstance(outcome, Exception):
                raise PclsError(str(outcome))
            results.append(outcome)
        return results

    def predict_stream(self, items: List) -> Iterator[Tuple[object, object]]:
        """(item, result-or-error) in input order. Decoding runs in a thread pool, `prefetch` batches ahead."""
        prefetch = 2
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            pending = deque()
            queue = iter(items)

            def fill():
                while len(pending) < self.batch_size * (prefetch + 1):
                    try:
                        item = next(queue)
                    except StopIteration:
                        return
                    pending.append((item, pool.submit(self._safe_preprocess, item)))

            fill()
            while pending:
                chunk = [pending.popleft() for _ in range(min(self.batch_size, len(pending)))]
                fill()  # keep the pool busy while the model runs this batch
                ready = [(item, fut.result()) for item, fut in chunk]
                good = [(i, arr) for i, (_, arr) in enumerate(ready) if not isinstance(arr, Exception)]
                outcomes = {}
                if good:
                    scores = self.infer(np.stack([arr for _, arr in good]))
                    for (index, _), result in zip(good, self.postprocess(scores)):
                        outcomes[index] = result
                for index, (item, arr) in enumerate(ready):
                    yield item, outcomes.get(index, arr)

    def _safe_preprocess(self, item):
        try:
            return self.preprocess_one(item)
        except Exception as err:  # a bad image is reported for that image, never fatal for the others
            reason = str(err) or type(err).__name__
            return _Unreadable(f"{item}: {reason}")


class _Unreadable(Exception):
    pass

"""TensorRT for Paddle 3 (PIR) exports: a separate conversion stage, cached beside the export.

Paddle 3's inference guide converts a PIR model with `paddle.tensorrt.convert(model_path, TensorRTConfig)`:
`Input(min_input_shape, optim_input_shape, max_input_shape)` gives the dynamic batch range, `PrecisionMode` the
precision, and `save_model_dir` the path prefix the converted model (TensorRT engine nodes inside) is saved to. The
predictor then loads that converted model with a plain GPU config. Here the conversion is first built as data
(`plan_trt_conversion`, inspectable without a GPU) and then performed (`convert_trt`) once per key: precision,
shape range, TensorRT and Paddle versions — a converted model whose key differs is stale and is rebuilt.

Legacy `.pdmodel` exports keep Paddle 2's subgraph API (`Config.enable_tensorrt_engine`), see
`pcls.deploy.predictor.paddle_config_plan`; which path is taken follows the graph file's type.
Checked against the Paddle 3.0 documentation; not run here (no GPU on the development machine).
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional, Sequence

from pcls.deploy.gpu import require_cuda
from pcls.deploy.spec import MODEL_PREFIX, TRT_DIR_PREFIX, model_files
from pcls.errors import PclsError
from pcls.utils.io import umask_mode
from pcls.utils.quiet import quiet
from pcls.zoo.cache import file_lock

logger = logging.getLogger(__name__)

TRT_PRECISIONS = {"fp32": "FP32", "fp16": "FP16", "int8": "INT8"}  # pcls name -> paddle.tensorrt.PrecisionMode
KEY_FILE = "trt_key.json"
DEFAULT_BATCH_SIZES = (1, 8, 32)
WORKSPACE_BYTES = 1 << 30
MIN_SUBGRAPH_SIZE = 3  # Paddle's default: subgraphs of >= 3 ops go to TensorRT
INPUT_NAME = "x"  # the InputSpec name pcls export gives the image input
NEEDS_CALIBRATION = "INT8 TensorRT needs calibration images: add --calib LIST --root DIR"


def trt_dir(model_dir, precision: str) -> Path:
    return Path(model_dir) / f"{TRT_DIR_PREFIX}{precision}"


def shape_range(batch_sizes: Sequence[int]) -> tuple:
    """(min, optimum, max) batch: the smallest, the middle one and the largest of the sizes given."""
    sizes = sorted({int(b) for b in batch_sizes})
    if not sizes or sizes[0] < 1:
        raise PclsError(f"--batch-sizes takes positive integers, got {list(batch_sizes)}")
    return sizes[0], sizes[len(sizes) // 2], sizes[-1]


@dataclass(frozen=True)
class TrtConversion:
    """Everything `paddle.tensorrt.convert` is called with, as data."""

    model_path: str  # the PIR export's inference.json
    save_model_dir: str  # TensorRTConfig.save_model_dir: a path PREFIX (-> <prefix>.json / .pdiparams)
    precision_mode: str  # a paddle.tensorrt.PrecisionMode member name
    min_input_shape: tuple
    optim_input_shape: tuple
    max_input_shape: tuple
    input_name: str = INPUT_NAME
    workspace_size: int = WORKSPACE_BYTES
    min_subgraph_size: int = MIN_SUBGRAPH_SIZE
    calibrated: bool = False  # INT8: user images are fed as Input.warmup_data
    key: dict = field(default_factory=dict)

    @property
    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.key, sort_keys=True).encode()).hexdigest()[:16]

    @property
    def folder(self) -> Path:
        return Path(self.save_model_dir).parent


def plan_trt_conversion(model_dir, input_size: int, precision: str, batch_sizes: Sequence[int],
                        versions: dict, calibration: Optional[str] = None) -> TrtConversion:
    """The conversion for an export folder: shapes [B,3,S,S] for B in (min, middle, max) of `batch_sizes`."""
    if precision not in TRT_PRECISIONS:
        raise PclsError(f"unknown TensorRT precision '{precision}'; use fp32, fp16 or int8")
    graph, _ = model_files(model_dir)
    if graph.suffix != ".json":
        raise PclsError(f"{graph} is a legacy (.pdmodel) export: it runs TensorRT through the subgraph API, "
                        "not a conversion; re-export with pcls to use the Paddle 3 path")
    if precision == "int8" and not calibration:
        raise PclsError(NEEDS_CALIBRATION)
    low, mid, high = shape_range(batch_sizes)
    size = int(input_size)
    shapes = tuple((b, 3, size, size) for b in (low, mid, high))
    key = {"precision": precision, "min": list(shapes[0]), "opt": list(shapes[1]), "max": list(shapes[2]),
           "tensorrt": versions.get("tensorrt"), "paddle": versions.get("paddle"), "calibration": calibration}
    return TrtConversion(model_path=str(graph), save_model_dir=str(trt_dir(model_dir, precision) / MODEL_PREFIX),
                         precision_mode=TRT_PRECISIONS[precision], min_input_shape=shapes[0],
                         optim_input_shape=shapes[1], max_input_shape=shapes[2],
                         calibrated=calibration is not None, key=key)


def is_current(plan: TrtConversion) -> bool:
    """True when the converted model on disk was built with exactly this plan's key."""
    folder = plan.folder
    try:
        stored = json.loads((folder / KEY_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return stored == plan.key and (folder / f"{MODEL_PREFIX}.json").exists()


def convert_trt(plan: TrtConversion, calib_batches: Optional[List] = None) -> Path:
    """Perform `plan` (GPU build with TensorRT) under a lock; a current conversion on disk is reused.

    The converted model is written to a temp folder inside the export and renamed into place with its key,
    so a crash never leaves a half-written engine that looks current.
    """
    require_cuda()
    folder = plan.folder
    with file_lock(folder):
        if is_current(plan):
            return folder
        if plan.calibrated and not calib_batches:
            raise PclsError(NEEDS_CALIBRATION)
        import paddle.tensorrt as ptrt

        logger.info(f"building the TensorRT engine ({plan.precision_mode}, batch {plan.min_input_shape[0]}-"
                    f"{plan.max_input_shape[0]}); the first run does this once and caches it in {folder}")
        start = time.perf_counter()
        staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
        try:
            if calib_batches:
                spec = ptrt.Input(warmup_data=tuple(calib_batches), name=plan.input_name)
            else:
                spec = ptrt.Input(min_input_shape=plan.min_input_shape, optim_input_shape=plan.optim_input_shape,
                                  max_input_shape=plan.max_input_shape, name=plan.input_name)
            config = ptrt.TensorRTConfig(inputs=[spec])
            config.precision_mode = getattr(ptrt.PrecisionMode, plan.precision_mode)
            config.save_model_dir = str(staging / MODEL_PREFIX)
            config.workspace_size = plan.workspace_size
            config.min_subgraph_size = plan.min_subgraph_size
            with quiet():
                ptrt.convert(plan.model_path, config)
            (staging / KEY_FILE).write_text(json.dumps(plan.key, indent=1, sort_keys=True), encoding="utf-8")
            staging.chmod(umask_mode(0o777))
            old = folder.with_name(f".{folder.name}.old")
            if folder.exists():
                shutil.rmtree(old, ignore_errors=True)
                folder.rename(old)
            staging.rename(folder)
            shutil.rmtree(old, ignore_errors=True)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        logger.info(f"TensorRT engine built in {time.perf_counter() - start:.1f} s")
    return folder

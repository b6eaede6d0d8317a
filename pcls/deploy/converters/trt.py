"""TensorRT for Paddle 3 (PIR) exports: a separate conversion stage, cached in the export's `trt_<precision>/`.

The contract, from Paddle 3.3's `paddle/tensorrt/{export,converter,util}.py`:
- `TensorRTConfig(inputs, min_subgraph_size, save_model_dir, precision_mode, workspace_size, ...)`: the constructor
  turns `min_subgraph_size` into the flag `FLAGS_trt_min_group_size`, so it must be passed there (an attribute set
  afterwards changes nothing).
- `convert(model_path, config)` uses `save_model_dir` twice: as a folder (`get_cache_path` makes it and each engine
  is written to `<save_model_dir>/engine_<hash>_<n>.trt`) and as the prefix of the converted program
  (`<save_model_dir>.json/.pdiparams`). Each engine op stores the engine file's path, as given, in its
  `engine_serialized_data` attribute, and the predictor opens that path when it loads the program. So pcls converts
  with an absolute `save_model_dir` directly inside the final folder and never moves a converted folder: atomicity
  comes from a lock and a completion marker (`trt_key.json`, written last), not from a rename.
- `convert` always runs on `CUDAPlace(0)`: for `gpu:N` (N > 0) the conversion runs in a subprocess that sees only
  that GPU (CUDA_VISIBLE_DEVICES).
- `Input(warmup_data=...)` only collects shapes; INT8 needs a model that already carries quantisation scales (Paddle's
  own INT8 path runs PTQ first). pcls makes no such model, so TensorRT INT8 on a PIR export is refused with the
  route that works: the ONNX int8 (Q/DQ) model on ONNX Runtime's TensorRT provider.

Legacy `.pdmodel` exports keep Paddle 2's subgraph API (`Config.enable_tensorrt_engine`), see
`pcls.deploy.predictor.paddle_config_plan`. Checked against the sources above; not run here (no GPU).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Sequence

from pcls.deploy.gpu import require_cuda, require_tensorrt, visible_devices_for
from pcls.deploy.spec import MODEL_PREFIX, TRT_DIR_PREFIX, input_hw, model_files
from pcls.errors import PclsError
from pcls.utils.io import atomic_write_text
from pcls.utils.quiet import quiet
from pcls.zoo.cache import file_lock

logger = logging.getLogger(__name__)

TRT_PRECISIONS = {"fp32": "FP32", "fp16": "FP16"}  # pcls name -> paddle.tensorrt.PrecisionMode member
KEY_FILE = "trt_key.json"  # the completion marker: written last, after the converted program and its engines
DEFAULT_BATCH_SIZES = (1, 8, 32)
WORKSPACE_BYTES = 1 << 30
MIN_SUBGRAPH_SIZE = 3  # Paddle's default: subgraphs of >= 3 ops go to TensorRT
INPUT_NAME = "x"  # the InputSpec name pcls export gives the image input
ENGINE_SUFFIX = ".trt"
TRT_INT8_REFUSED = ("TensorRT INT8 on a Paddle 3 export needs a quantised model, which pcls does not make (Paddle's "
                    "converter takes no calibration images): export with --int8 --calib LIST (no --trt) and run its "
                    "int8 ONNX model with --runtime onnx --device gpu --trt --precision int8, or use --trt --fp16")


def trt_dir(model_dir, precision: str) -> Path:
    return Path(model_dir) / f"{TRT_DIR_PREFIX}{precision}"


def shape_range(batch_sizes: Sequence[int]) -> tuple:
    """(min, optimum, max) batch: the smallest, the middle one and the largest of the distinct sizes given."""
    sizes = sorted({int(b) for b in batch_sizes})
    if not sizes or sizes[0] < 1:
        raise PclsError(f"--batch-sizes takes positive integers, got {list(batch_sizes)}")
    return sizes[0], sizes[len(sizes) // 2], sizes[-1]


def check_trt_precision(precision: str) -> None:
    if precision == "int8":
        raise PclsError(TRT_INT8_REFUSED)
    if precision not in TRT_PRECISIONS:
        raise PclsError(f"unknown TensorRT precision '{precision}'; use fp32 or fp16")


@dataclass(frozen=True)
class TrtConversion:
    """Everything `paddle.tensorrt.convert` is called with, as data."""

    model_path: str  # the PIR export's inference.json
    save_model_dir: str  # absolute: <export>/trt_<precision>/inference (a folder for engines AND a model prefix)
    precision_mode: str  # a paddle.tensorrt.PrecisionMode member name
    min_input_shape: tuple
    optim_input_shape: tuple
    max_input_shape: tuple
    input_name: str = INPUT_NAME
    workspace_size: int = WORKSPACE_BYTES
    min_subgraph_size: int = MIN_SUBGRAPH_SIZE
    key: dict = field(default_factory=dict)

    @property
    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.key, sort_keys=True).encode()).hexdigest()[:16]

    @property
    def folder(self) -> Path:
        return Path(self.save_model_dir).parent


def plan_trt_conversion(model_dir, input_size: int, precision: str, batch_sizes: Sequence[int],
                        versions: dict, min_subgraph_size: int = MIN_SUBGRAPH_SIZE) -> TrtConversion:
    """The conversion for an export folder: shapes [B,3,S,S] for B in (min, middle, max) of `batch_sizes`."""
    check_trt_precision(precision)
    graph, _ = model_files(model_dir)
    if graph.suffix != ".json":
        raise PclsError(f"{graph} is a legacy (.pdmodel) export: it runs TensorRT through the subgraph API, "
                        "not a conversion; re-export with pcls to use the Paddle 3 path")
    low, mid, high = shape_range(batch_sizes)
    height, width = input_hw(input_size)
    shapes = tuple((b, 3, height, width) for b in (low, mid, high))
    key = {"precision": precision, "min": list(shapes[0]), "opt": list(shapes[1]), "max": list(shapes[2]),
           "min_subgraph_size": int(min_subgraph_size),
           "tensorrt": versions.get("tensorrt"), "paddle": versions.get("paddle")}
    folder = trt_dir(Path(os.path.abspath(model_dir)), precision)
    return TrtConversion(model_path=str(Path(os.path.abspath(graph))), save_model_dir=str(folder / MODEL_PREFIX),
                         precision_mode=TRT_PRECISIONS[precision], min_input_shape=shapes[0],
                         optim_input_shape=shapes[1], max_input_shape=shapes[2],
                         min_subgraph_size=int(min_subgraph_size), key=key)


def engine_paths(program_json: Path) -> List[str]:
    """The engine files a converted program opens at load: every string attribute ending in `.trt`
    (the `engine_serialized_data` of each TensorRT engine op)."""
    found = []

    def walk(node):
        if isinstance(node, dict):
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)
        elif isinstance(node, str) and node.endswith(ENGINE_SUFFIX):
            found.append(node)

    walk(json.loads(Path(program_json).read_text(encoding="utf-8")))
    return found


def _engines_in_place(plan: TrtConversion) -> bool:
    """Every engine the converted program will open exists inside this conversion's folder (a folder that was
    moved or copied still names the old place: it is stale)."""
    program = Path(plan.save_model_dir + ".json")
    try:
        paths = engine_paths(program)
    except (OSError, ValueError):
        return False
    engines = Path(plan.save_model_dir)
    return all(Path(p).is_absolute() and Path(p).parent == engines and Path(p).is_file() for p in paths)


def is_current(plan: TrtConversion) -> bool:
    """True when the conversion on disk was completed with exactly this plan's key, in this folder."""
    try:
        stored = json.loads((plan.folder / KEY_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return stored == plan.key and _engines_in_place(plan)


def _clear_previous(plan: TrtConversion) -> None:
    """Remove what an earlier (stale or interrupted) conversion wrote here — the marker first, then the converted
    program and the converter's engine files; nothing else in the folder is touched."""
    folder, prefix = plan.folder, Path(plan.save_model_dir)
    (folder / KEY_FILE).unlink(missing_ok=True)
    for name in (f"{MODEL_PREFIX}.json", f"{MODEL_PREFIX}.pdiparams"):
        (folder / name).unlink(missing_ok=True)
    if prefix.is_dir() and not prefix.is_symlink():
        for path in prefix.glob("engine_*"):
            if path.suffix in (ENGINE_SUFFIX, ".pir") and path.is_file():
                path.unlink()


def convert_trt(plan: TrtConversion, gpu_id: int = 0) -> Path:
    """Perform `plan` (GPU build with TensorRT) under a lock; a completed conversion with the same key is reused."""
    require_cuda(None, drop=("--trt",))
    require_tensorrt()
    folder = plan.folder
    with file_lock(folder):
        if is_current(plan):
            return folder
        for path in (folder, Path(plan.save_model_dir)):  # never write engines through a link
            if path.is_symlink():
                raise PclsError(f"{path} is a symbolic link; pcls writes TensorRT conversions only into a real "
                                "folder: remove the link")
        _clear_previous(plan)
        folder.mkdir(exist_ok=True)
        logger.info(f"building the TensorRT engine ({plan.precision_mode}, batch {plan.min_input_shape[0]}-"
                    f"{plan.max_input_shape[0]}); the first run does this once and caches it in {folder}")
        start = time.perf_counter()
        if gpu_id == 0:  # GPU 0 of this process is the one asked for
            run_conversion(plan)
        else:
            _convert_in_subprocess(plan, visible_devices_for(gpu_id))
        if not _engines_in_place(plan):
            raise PclsError(f"the TensorRT conversion in {folder} is incomplete (its program names engine files "
                            "that are missing); run again with --debug for the converter's log")
        atomic_write_text(folder / KEY_FILE, json.dumps(plan.key, indent=1, sort_keys=True))
        logger.info(f"TensorRT engine built in {time.perf_counter() - start:.1f} s")
    return folder


def run_conversion(plan: TrtConversion) -> None:
    """The `paddle.tensorrt.convert` call itself, in this process (which must see the target GPU as GPU 0)."""
    import paddle.tensorrt as ptrt

    spec = ptrt.Input(min_input_shape=plan.min_input_shape, optim_input_shape=plan.optim_input_shape,
                      max_input_shape=plan.max_input_shape, name=plan.input_name)
    config = ptrt.TensorRTConfig(inputs=[spec], min_subgraph_size=plan.min_subgraph_size,
                                 save_model_dir=plan.save_model_dir,
                                 precision_mode=getattr(ptrt.PrecisionMode, plan.precision_mode),
                                 workspace_size=plan.workspace_size)
    with quiet():
        ptrt.convert(plan.model_path, config)


def conversion_command(plan: TrtConversion, visible: str) -> tuple:
    """(argv, env) of the subprocess that converts on GPU `visible` (it is GPU 0 there)."""
    argv = [sys.executable, "-m", "pcls.deploy.converters.trt", json.dumps(dataclasses.asdict(plan))]
    return argv, {**os.environ, "CUDA_VISIBLE_DEVICES": visible}


def _convert_in_subprocess(plan: TrtConversion, visible: str) -> None:
    argv, env = conversion_command(plan, visible)
    done = subprocess.run(argv, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise PclsError(f"the TensorRT conversion on GPU {visible} failed: {last}")


def _main(argv) -> None:
    fields = json.loads(argv[0])
    fields = {k: tuple(v) if k.endswith("_shape") else v for k, v in fields.items()}
    run_conversion(TrtConversion(**fields))


if __name__ == "__main__":
    _main(sys.argv[1:])

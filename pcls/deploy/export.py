"""`pcls export`: a dygraph model + weights -> a Paddle inference model (and optionally ONNX) + inference.yml.

Every export verifies itself before it is moved into place: the exported model, run by Paddle Inference (and
ONNX Runtime for ONNX), must reproduce the dygraph model's probabilities on a random batch.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Tuple

import numpy as np

from pcls.config.schema import default_of
from pcls.deploy.gpu import require_cuda, tensorrt_versions
from pcls.deploy.spec import (
    IMAGENET_LABELS,
    MODEL_PREFIX,
    ONNX_FILE,
    export_owned_names,
    model_files,
    read_label_file,
    write_spec,
)
from pcls.deploy.trt import DEFAULT_BATCH_SIZES, TRT_PRECISIONS, convert_trt, plan_trt_conversion, shape_range, trt_dir
from pcls.errors import PclsError
from pcls.utils.io import umask_mode
from pcls.utils.quiet import quiet
from pcls.zoo.catalog import eval_transform_ops

ONNX_OPSET = 13  # covers every op the zoo exports (incl. transformers' LayerNorm decomposition); TensorRT >= 8 reads it
# Relative to the largest probability: for softmax outputs this is about the absolute error of the logits.
VERIFY_RTOL = {"fp32": 5e-4, "fp16": 5e-2}


@dataclass
class ExportRequest:
    model_name: str
    out_dir: Path
    weights: Optional[str] = None
    class_num: Optional[int] = None
    fmt: str = "paddle"
    batch_size: Optional[int] = None  # None: dynamic batch
    fp16: bool = False
    transform_ops: Optional[list] = None
    labels: Optional[list] = None
    topk: int = default_of("Infer.PostProcess.topk")
    postprocess: Optional[dict] = None  # Infer.PostProcess beyond top-k (pcls.deploy.postprocess)
    input_size: Optional[int] = None
    multilabel: bool = False  # Global.use_multilabel: sigmoid outputs (MultiLabelThreshOutput)
    channels: int = 3  # Global.image_channel: 4 for PaddleClas's NHWC fp16 configs (NormalizeImage channel_num 4)
    model_kwargs: dict = field(default_factory=dict)
    force: bool = False  # write beside the files of a non-empty folder that is not a pcls export
    trt: Optional[str] = None  # convert for TensorRT in this precision (fp32 | fp16 | int8; GPU build)
    trt_batch_sizes: Tuple[int, ...] = DEFAULT_BATCH_SIZES
    int8: bool = False  # ONNX Runtime static quantisation (CPU int8), calibrated on `calib`
    calib: Optional[str] = None  # list file of calibration images (PaddleClas format; labels optional)
    root: Optional[str] = None  # folder the list files' paths are relative to (default: the list's folder)
    calib_count: int = 300
    val: Optional[str] = None  # labelled list: top-1 of fp32 vs int8
    max_drop: float = 1.0  # refuse an int8 model whose top-1 is more than this many points below fp32
    measure: Optional[Callable] = None  # (model_dir, input_size) -> {"paddle": ms, "onnx": ms}; None: timed here


@dataclass
class ExportReport:
    out_dir: str
    files: list
    max_relative_diff: dict  # runtime -> max |exported - dygraph| / max |dygraph| on the verification batch
    load_report: Optional[str]
    notes: list


def request_from_config(cfg: dict, out_dir, weights=None, **options) -> ExportRequest:
    """An ExportRequest from a training config: Arch, Infer.transforms (or the eval ops), PostProcess."""
    arch = dict(cfg["Arch"])
    name = arch.pop("name")
    if name == "DistillationModel":
        from pcls.distill.config import student_section  # the same student the training run saved

        arch = student_section(cfg["Arch"])
        name = arch.pop("name")
    class_num = arch.pop("class_num", None)
    for key in ("pretrained", "freeze_params", "models", "infer_model_name", "freeze_params_list", "use_sync_bn"):
        arch.pop(key, None)
    infer = cfg.get("Infer") or {}
    ops = infer.get("transforms") or (cfg.get("DataLoader", {}).get("Eval", {}).get("dataset", {})
                                      .get("transform_ops"))
    from pcls.deploy.postprocess import resolve_postprocess

    post = resolve_postprocess(infer.get("PostProcess") or {}, cfg["Arch"].get("infer_model_name"))
    labels = read_label_file(post["class_id_map_file"]) if post.get("class_id_map_file") else None
    image_shape = cfg["Global"]["image_shape"]  # the schema's default when the config has none
    return ExportRequest(model_name=name, out_dir=Path(out_dir), weights=weights or cfg["Global"]["pretrained_model"],
                         class_num=class_num, transform_ops=ops, labels=labels,
                         topk=int(post.get("topk", default_of("Infer.PostProcess.topk"))),
                         postprocess={k: v for k, v in post.items() if k not in ("topk", "class_id_map_file")},
                         input_size=int(image_shape[-1]), channels=int(cfg["Global"]["image_channel"]),
                         multilabel=bool(cfg["Global"]["use_multilabel"]),
                         model_kwargs=arch, **options)


def _classifier_class_num(model, state: dict) -> Optional[int]:
    """The class count stored in a state dict: the length of the classifier's last bias."""
    for prefix in model.classifier_prefixes():
        biases = [k for k in state if k.startswith(prefix) and k.endswith("bias")]
        if biases:
            return int(np.asarray(state[biases[-1]]).shape[0])
    return None


def build_model(request: ExportRequest):
    """The dygraph model with its weights, class_num taken from the weights when not given."""
    import pcls
    from pcls.config.schema import default_of
    from pcls.engine.model import load_plugins
    from pcls.zoo.weights import load_pretrained, load_state_file, resolve_weights

    load_plugins()  # PCLS_PLUGINS backbones export like built-in ones

    class_num = request.class_num
    load_report = None
    if request.weights:
        path = resolve_weights(request.weights)
        if class_num is None:
            probe = pcls.create_model(request.model_name, **request.model_kwargs)
            class_num = _classifier_class_num(probe, load_state_file(path)) or default_of("Arch.class_num")
        model = pcls.create_model(request.model_name, class_num=class_num, **request.model_kwargs)
        load_report = load_pretrained(model, str(path))  # strict: a class count that does not fit is refused
    else:
        class_num = class_num or default_of("Arch.class_num")  # random weights: the ImageNet head
        model = pcls.create_model(request.model_name, class_num=class_num, **request.model_kwargs)
    model.eval()
    return model, class_num, load_report


def _export_layer(model, multilabel: bool = False):
    import paddle

    class Exported(paddle.nn.Layer):
        """The backbone followed by softmax, as PaddleClas exports classifiers (scores are probabilities);
        a multi-label model by a sigmoid per class."""

        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, x):  # the first argument must be called `self` for paddle.jit.save
            if multilabel:
                return paddle.nn.functional.sigmoid(self.inner(x))
            return paddle.nn.functional.softmax(self.inner(x), axis=-1)

    layer = Exported(model)
    layer.eval()
    return layer


def _validate(request: ExportRequest) -> None:
    """Every refusal that needs no model: before any work is done."""
    if request.fmt not in ("paddle", "onnx"):
        raise PclsError(f"unknown export format '{request.fmt}'; use paddle or onnx")
    if request.batch_size is not None and request.batch_size < 1:
        raise PclsError(f"--batch must be a positive integer or 'dynamic', got {request.batch_size}")
    if request.input_size is not None and request.input_size < 8:
        raise PclsError(f"--image-size must be >= 8 pixels, got {request.input_size}")
    if request.trt is not None:
        if request.trt not in TRT_PRECISIONS:
            raise PclsError(f"unknown TensorRT precision '{request.trt}'; use fp32, fp16 or int8")
        require_cuda()
        shape_range(request.trt_batch_sizes)
    if (request.int8 or request.trt == "int8") and not request.calib:
        raise PclsError("--int8 needs calibration images: add --calib LIST --root DIR (a few hundred of your images)")
    if request.int8 and request.fp16:
        raise PclsError("choose one of --fp16 and --int8")
    if not 0 <= request.max_drop <= 100:
        raise PclsError(f"--max-drop is in top-1 points (0-100), got {request.max_drop}")
    for option, path in (("--calib", request.calib), ("--val", request.val)):
        if path and not Path(path).is_file():
            raise PclsError(f"{option} list file {path} not found")


def export(request: ExportRequest, progress: Optional[Callable[[str], None]] = None) -> ExportReport:
    """Build, verify and write the export `request` describes; `progress(stage)` is told each long stage."""
    import paddle

    _validate(request)
    say = progress or (lambda stage: None)
    out_dir = Path(os.path.abspath(request.out_dir))
    shown = request.out_dir
    with _filesystem_errors(shown):
        owned = _check_out_dir(out_dir, shown, request.force)
    model, class_num, load_report = build_model(request)
    ops = request.transform_ops or eval_transform_ops(model.pretrained_cfg, request.input_size)
    size = _input_size_of(ops) or request.input_size or int(model.pretrained_cfg["input_size"])
    labels = request.labels
    if labels is None and class_num == 1000:
        labels = read_label_file(IMAGENET_LABELS)
    if labels is not None and len(labels) != class_num:
        raise PclsError(f"the label file has {len(labels)} names but the model has {class_num} classes")

    with _filesystem_errors(shown):
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    notes = []
    extra = {}
    half = request.fp16 and request.trt is None  # fp16 weights; with --trt, fp16 is the conversion's precision
    try:
        layer = _export_layer(model, request.multilabel)
        shape = (request.batch_size or 2, request.channels, size, size)
        sample = np.random.default_rng(0).standard_normal(shape).astype("float32")
        with paddle.no_grad():
            expected = layer(paddle.to_tensor(sample)).numpy()  # the training-time form is the yardstick
        if callable(getattr(model, "rep", None)):
            model.rep()  # re-parameterise (RepVGG): fuse branches for deployment; verified against `expected`
            notes.append("re-parameterised (branches fused) before export")
        spec = paddle.static.InputSpec([request.batch_size, request.channels, size, size], "float32", "x")
        say("saving the inference graph")
        with quiet():  # Paddle prints PIR notices the user cannot act on
            paddle.jit.save(layer, str(staging / MODEL_PREFIX), input_spec=[spec])
        diffs = {"paddle": _relative_diff(_run_paddle_inference(staging, sample), expected)}
        _check(diffs["paddle"], "fp32", "Paddle Inference")
        wants_onnx = request.fmt == "onnx" or request.int8
        if wants_onnx:
            say("converting to ONNX")
            _convert_onnx(staging, fp16=half)
            diffs["onnx"] = _relative_diff(_run_onnx(staging, sample), expected)
            _check(diffs["onnx"], "fp16" if half else "fp32", "ONNX Runtime")
        elif half:
            _convert_paddle_fp16(staging)
            notes.append("fp16 Paddle model written for GPU; its output was not verified here (fp16 inference "
                         "needs a GPU) — the fp32 graph it was converted from was verified")
        if request.int8:
            from pcls.deploy.quantize import export_int8

            say("calibrating the int8 model")
            extra["int8"] = export_int8(staging, ops, size, request)
            notes.append(_int8_note(extra["int8"]))
        if not half:  # fp16 models are for GPU: no CPU runtime to choose
            if wants_onnx:
                say("timing Paddle Inference against ONNX Runtime")
            extra["runtime"] = choose_cpu_runtime(staging, size, has_onnx=wants_onnx, measure=request.measure)
        if request.trt is not None:
            say(f"converting for TensorRT {request.trt}")
            extra["trt"] = {request.trt: _convert_trt(staging, ops, size, request)}
            notes.append(f"TensorRT {request.trt} model converted into {trt_dir(out_dir, request.trt).name}/")
        write_spec(staging, model_name=request.model_name, input_size=size, transform_ops=ops, class_num=class_num,
                   label_names=labels, topk=request.topk, batch_size=request.batch_size, fmt=request.fmt,
                   precision="fp16" if half else "fp32",
                   source_weights=request.weights, extra=extra, postprocess=request.postprocess)
        with _filesystem_errors(shown):
            _move_into_place(staging, out_dir, owned)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return ExportReport(out_dir=str(request.out_dir), files=sorted(p.name for p in out_dir.iterdir()),
                        max_relative_diff=diffs, load_report=str(load_report) if load_report is not None else None,
                        notes=notes)


def _int8_note(info: dict) -> str:
    if info.get("top1_fp32") is None:
        return f"int8 model calibrated on {info['calib_images']} images; accuracy not checked (no --val)"
    return (f"int8 top-1 {info['top1_int8']:.2f}% vs fp32 {info['top1_fp32']:.2f}% on {info['val_images']} "
            f"images (drop {info['top1_fp32'] - info['top1_int8']:.2f} points, limit {info['max_drop']})")


def choose_cpu_runtime(model_dir: Path, size: int, has_onnx: bool, measure: Optional[Callable] = None) -> dict:
    """Which runtime `--runtime auto` uses on CPU: the faster at batch 1 in a quick interleaved measurement.

    `measure(model_dir, size) -> {"paddle": ms, "onnx": ms}` is injectable (tests force either result).
    """
    if not has_onnx:
        return {"cpu": "paddle", "why": "no ONNX model in the export (export with --format onnx to compare)"}
    timings = (measure or measure_runtimes)(model_dir, size)
    faster = min(("paddle", "onnx"), key=lambda name: timings[name])
    return {"cpu": faster, "measured_ms_batch1": {k: round(float(v), 3) for k, v in timings.items()}}


def measure_runtimes(model_dir: Path, size: int) -> dict:
    """ms per batch-1 call of Paddle Inference and ONNX Runtime, timed in alternating rounds."""
    from pcls.deploy.measure import time_models
    from pcls.deploy.predictor import RuntimeSettings, cpu_threads, create_runner

    threads = cpu_threads(cap=4)
    runners = {name: create_runner(model_dir, RuntimeSettings(runtime=name, threads=threads), size)
               for name in ("paddle", "onnx")}
    timed = time_models(runners, size, batch_size=1, warmup=5, iters=9, rounds=3)  # a few seconds for ResNet50
    return {name: stats["p50_ms"] for name, stats in timed.items()}


def _convert_trt(staging: Path, ops: list, size: int, request: ExportRequest) -> dict:
    calibration = calib_batches = None
    if request.trt == "int8":
        from pcls.deploy.quantize import load_images

        images, _ = load_images(request.calib, request.root, ops, limit=request.calib_count, labelled=False)
        low, mid, high = shape_range(request.trt_batch_sizes)
        # the converter takes real inputs as warmup_data; shapes from min to max cover the dynamic range
        calib_batches = [images[:low], images[:mid]] + [images[i:i + high] for i in range(0, len(images) - high + 1, high)]
        calibration = f"{Path(request.calib).name}:{len(images)}"
    plan = plan_trt_conversion(staging, size, request.trt, request.trt_batch_sizes, tensorrt_versions(),
                               calibration=calibration)
    convert_trt(plan, calib_batches=calib_batches)
    return {"batch_sizes": list(request.trt_batch_sizes), "calibration": calibration, "key": plan.digest}


@contextlib.contextmanager
def _filesystem_errors(shown):
    try:
        yield
    except PclsError:
        raise
    except OSError as err:
        where = f" ({err.filename})" if getattr(err, "filename", None) else ""
        raise PclsError(f"cannot write the export to {shown}: {err.strerror or err}{where}; "
                        "choose a writable output folder with --out") from None


def _check_out_dir(out_dir: Path, shown, force: bool) -> Optional[set]:
    """Refuse an output folder an export must not replace; the names a previous export there owns.

    None: the folder does not exist yet. A set: the folder exists and the entries named in it were written by
    pcls (empty for an empty folder or, with --force, a foreign one whose files are all kept).
    """
    cwd = Path.cwd().resolve()
    resolved = out_dir.resolve()
    if resolved == cwd or resolved in cwd.parents:
        raise PclsError(f"--out {shown} is the current folder (or contains it); export into a new folder, "
                        "e.g. --out ./inference")
    for parent in resolved.parents:
        if parent.exists() and not parent.is_dir():
            raise PclsError(f"--out {shown}: {parent} is a file, not a folder; choose another output folder")
    if resolved.exists() and not resolved.is_dir():
        raise PclsError(f"--out {shown} is a file, not a folder; choose another output folder")
    if not resolved.exists():
        return None
    if not any(resolved.iterdir()):
        return set()
    owned = export_owned_names(resolved)
    if owned is not None:
        return owned
    if not force:
        raise PclsError(f"--out {shown} is not empty and holds no pcls export; export into a new folder "
                        f"(e.g. --out {Path(str(shown)) / 'inference'}) or add --force to write beside its files")
    return set()


def _move_into_place(staging: Path, out_dir: Path, owned: Optional[set]) -> None:
    """Swap the verified export in as one rename. Files pcls did not write in an existing folder are moved
    into the new export first, so replacing a previous export never deletes them."""
    if owned is None:
        staging.chmod(umask_mode(0o777))  # mkdtemp made it 0700; give it the mode mkdir would
        staging.rename(out_dir)
        return
    foreign = [p for p in out_dir.iterdir() if p.name not in owned]
    clash = [p.name for p in foreign if (staging / p.name).exists()]
    if clash:
        raise PclsError(f"{out_dir} holds {clash[0]}, which pcls did not write and the export would replace; "
                        "move it away or export into a new folder")
    staging.chmod(stat.S_IMODE(out_dir.stat().st_mode))
    backup = out_dir.with_name(f".{out_dir.name}.old")
    shutil.rmtree(backup, ignore_errors=True)
    moved = []
    try:
        for path in foreign:
            path.rename(staging / path.name)
            moved.append(path.name)
        out_dir.rename(backup)
        staging.rename(out_dir)
    except BaseException:
        if backup.exists() and not out_dir.exists():
            backup.rename(out_dir)
        for name in moved:  # give the user's files back before the staging folder is removed
            (staging / name).rename(out_dir / name)
        raise
    shutil.rmtree(backup, ignore_errors=True)  # holds only what the previous export wrote


def _input_size_of(ops) -> Optional[int]:
    """The model input size a pre-processing list ends with: the last crop's or fixed resize's `size`."""
    for op in reversed(ops or []):
        (name, params), = op.items()
        if name in ("CropImage", "RandCropImage", "ResizeImage") and params and params.get("size"):
            size = params["size"]
            return int(size if isinstance(size, int) else size[0])
    return None


def _relative_diff(got, expected) -> float:
    """max |got - expected| / max |expected| (relative difference of the outputs)."""
    got = np.asarray(got, dtype=np.float32)
    if got.shape != expected.shape:
        return float("inf")
    return float(np.abs(got - expected).max() / max(float(np.abs(expected).max()), 1e-12))


def _check(diff: float, precision: str, runtime: str) -> None:
    if not np.isfinite(diff) or diff > VERIFY_RTOL[precision]:
        raise PclsError(f"export verification failed: {runtime} output differs from the dygraph model by "
                        f"{diff:.3g} relative (tolerance {VERIFY_RTOL[precision]}); the export was not written")


def _run_paddle_inference(model_dir: Path, batch: np.ndarray) -> np.ndarray:
    from pcls.deploy.predictor import RuntimeSettings, paddle_runner

    return paddle_runner(model_dir, RuntimeSettings(device="cpu", threads=2))(batch)


def _run_onnx(model_dir: Path, batch: np.ndarray) -> np.ndarray:
    from pcls.deploy.predictor import RuntimeSettings, onnx_runner

    return onnx_runner(model_dir, RuntimeSettings(device="cpu", threads=2, runtime="onnx"))(batch)


def _convert_onnx(model_dir: Path, fp16: bool) -> None:
    try:
        import paddle2onnx
    except ImportError:
        raise PclsError("ONNX export needs paddle2onnx: pip install 'pcls[onnx]'") from None
    graph, params = model_files(model_dir)
    # optimize_tool="None": the default ("polygraphy") pip-installs packages at run time (PADDLE_NOTES).
    with quiet():  # paddle2onnx prints progress from C++ to fd 1, which would break --json
        paddle2onnx.export(str(graph), str(params), save_file=str(model_dir / ONNX_FILE), opset_version=ONNX_OPSET,
                           enable_onnx_checker=True, export_fp16_model=fp16, optimize_tool="None")
    if not (model_dir / ONNX_FILE).exists():
        raise PclsError("paddle2onnx produced no ONNX file; run with --debug for its log")


def _convert_paddle_fp16(model_dir: Path) -> None:
    import paddle.inference as pi

    graph, params = model_files(model_dir)
    tmp_graph, tmp_params = model_dir / f"fp16{graph.suffix}", model_dir / "fp16.pdiparams"
    with quiet():
        pi.convert_to_mixed_precision(str(graph), str(params), str(tmp_graph), str(tmp_params),
                                      pi.PrecisionType.Half, pi.PlaceType.GPU, True)
    tmp_graph.replace(graph)
    tmp_params.replace(params)

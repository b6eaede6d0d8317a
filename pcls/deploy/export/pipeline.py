"""The export pipeline: a dygraph model + weights -> a verified Paddle inference model (and optionally ONNX, int8
ONNX) + inference.yml, moved into place as one rename; then, for `--trt`, converted in place.

Where each part lives: `placement` (output folder, staging, the swap, filesystem errors), `verify` (the
self-check), `preprocess` (the serialised pipeline), `runtime_choice` (the CPU runtime recorded), and
`pcls.deploy.converters` (ONNX, fp16, int8, TensorRT).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Tuple, Union

import numpy as np

from pcls.config.schema import default_of
from pcls.deploy.converters.fp16 import check_paddle_fp16, convert_paddle_fp16
from pcls.deploy.converters.onnx import convert_onnx
from pcls.deploy.converters.trt import (
    DEFAULT_BATCH_SIZES,
    check_trt_precision,
    convert_trt,
    plan_trt_conversion,
    shape_range,
    trt_dir,
)
from pcls.deploy.export.placement import (
    check_free_space,
    check_out_dir,
    filesystem_errors,
    make_staging,
    move_into_place,
    resolve_out_dir,
    terminate_cleanly,
)
from pcls.deploy.export.preprocess import input_size_of, taking_any_image, with_image_size
from pcls.deploy.export.runtime_choice import choose_cpu_runtime
from pcls.deploy.export.verify import check, check_finite_weights, relative_diff, run_onnx, run_paddle_inference
from pcls.deploy.gpu import require_cuda, require_tensorrt, tensorrt_versions
from pcls.deploy.spec import (
    IMAGENET_LABELS, MODEL_PREFIX, input_hw, read_label_file, size_text, spec_input_size, write_spec,
)
from pcls.errors import PclsError
from pcls.utils.quiet import quiet
from pcls.zoo.catalog import eval_transform_ops


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
    input_size: Union[int, list, None] = None  # int: square; [height, width] (Global.image_shape's last two)
    image_size: Optional[int] = None  # --image-size with a config: its pipeline's sizes are rescaled to this
    multilabel: bool = False  # Global.use_multilabel: sigmoid outputs (MultiLabelThreshOutput)
    channels: int = 3  # Global.image_channel: 4 for PaddleClas's NHWC fp16 configs (NormalizeImage channel_num 4)
    model_kwargs: dict = field(default_factory=dict)
    force: bool = False  # write beside the files of a non-empty folder that is not a pcls export
    trt: Optional[str] = None  # convert for TensorRT in this precision (fp32 | fp16; GPU build)
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
        from pcls.config.members import student_section  # the same student the training run saved

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
                         input_size=spec_input_size(image_shape[-2:]), channels=int(cfg["Global"]["image_channel"]),
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
    from pcls.utils.state_files import load_state_file
    from pcls.zoo.weights import load_pretrained, resolve_weights

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
    for size in (request.input_size, request.image_size):
        if size is not None and min(input_hw(size)) < 8:
            raise PclsError(f"--image-size must be >= 8 pixels, got {size_text(size)}")
    if request.trt is not None:
        check_trt_precision(request.trt)
        require_cuda(None, drop=("--trt",))
        require_tensorrt()
        shape_range(request.trt_batch_sizes)
    if request.fp16 and request.trt is None and request.fmt == "paddle":
        check_paddle_fp16()
    if request.int8 and not request.calib:
        raise PclsError("--int8 needs calibration images: add --calib LIST --root DIR (a few hundred of your images)")
    if request.int8 and request.fp16:
        raise PclsError("choose one of --fp16 and --int8")
    if not 0 <= request.max_drop <= 100:
        raise PclsError(f"--max-drop is in top-1 points (0-100), got {request.max_drop}")
    for option, path in (("--calib", request.calib), ("--val", request.val)):
        if path and not Path(path).is_file():
            raise PclsError(f"{option} list file {path} not found")


def _preprocessing(request: ExportRequest, model) -> Tuple[list, Tuple[int, int], Optional[str]]:
    """(operator list, model input (height, width), note): the config's or the zoo's pipeline, rescaled to
    --image-size, made to take any image."""
    if request.transform_ops:
        ops = request.transform_ops
        if request.image_size:
            ops = with_image_size(ops, request.image_size)
    else:
        if request.input_size is not None and len(set(input_hw(request.input_size))) > 1:
            raise PclsError(f"Global.image_shape is {size_text(request.input_size)} (height x width) but the config "
                            "has no transforms to resize images to it; add Infer.transforms with a ResizeImage")
        ops = eval_transform_ops(model.pretrained_cfg, request.input_size)
    size = input_size_of(ops) or input_hw(request.image_size or request.input_size
                                          or int(model.pretrained_cfg["input_size"]))
    ops, note = taking_any_image(ops, size)
    return ops, size, note


def _needed_bytes(model, request: ExportRequest) -> int:
    """A generous estimate of the export's size on disk: the parameters once per model file written."""
    params = sum(int(np.prod(p.shape)) * 4 for p in model.parameters())
    copies = 1 + (request.fmt == "onnx" or request.int8) + request.int8
    return int(params * copies * 1.2) + (1 << 20)


def export(request: ExportRequest, progress: Optional[Callable[[str], None]] = None) -> ExportReport:
    """Build, verify and write the export `request` describes; `progress(stage)` is told each long stage.
    SIGTERM on the way ends it with one line and leaves no temp folder."""
    with terminate_cleanly("export"):
        return _export(request, progress or (lambda stage: None))


def _export(request: ExportRequest, say: Callable[[str], None]) -> ExportReport:
    import paddle

    _validate(request)
    out_dir = resolve_out_dir(request.out_dir)
    shown = request.out_dir
    with filesystem_errors(shown):
        owned = check_out_dir(out_dir, shown, request.force)
    model, class_num, load_report = build_model(request)
    check_finite_weights(model, request.weights)
    ops, size, pipeline_note = _preprocessing(request, model)
    labels = request.labels
    if labels is None and class_num == 1000:
        labels = read_label_file(IMAGENET_LABELS)
    if labels is not None and len(labels) != class_num:
        raise PclsError(f"the label file has {len(labels)} names but the model has {class_num} classes")

    with filesystem_errors(shown, out_dir.parent):
        staging = make_staging(out_dir)
    notes = [pipeline_note] if pipeline_note else []
    extra = {"preprocess_added": pipeline_note} if pipeline_note else {}
    half = request.fp16 and request.trt is None  # fp16 weights; with --trt, fp16 is the conversion's precision
    try:
        with filesystem_errors(shown, out_dir.parent):
            check_free_space(staging, _needed_bytes(model, request), shown)
            diffs = _write_verified(request, model, staging, size, half, notes, say)
            if request.int8:
                from pcls.deploy.converters.int8 import export_int8

                say("calibrating the int8 model")
                extra["int8"] = export_int8(staging, ops, size, request)
                notes.append(_int8_note(extra["int8"]))
            if not half:  # fp16 models are for GPU: no CPU runtime to choose
                if "onnx" in diffs:
                    say("timing Paddle Inference against ONNX Runtime")
                extra["runtime"] = choose_cpu_runtime(staging, size, has_onnx="onnx" in diffs, measure=request.measure)
            if request.trt is not None:  # recorded now, converted once the export is in place (below)
                plan = plan_trt_conversion(staging, size, request.trt, request.trt_batch_sizes, tensorrt_versions())
                extra["trt"] = {request.trt: {"batch_sizes": list(request.trt_batch_sizes), "key": plan.digest}}
            write_spec(staging, model_name=request.model_name, input_size=size, transform_ops=ops,
                       class_num=class_num, label_names=labels, topk=request.topk, batch_size=request.batch_size,
                       fmt=request.fmt, precision="fp16" if half else "fp32", source_weights=request.weights,
                       extra=extra, postprocess=request.postprocess)
            move_into_place(staging, out_dir, owned)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if request.trt is not None:
        say(f"converting for TensorRT {request.trt}")
        _convert_in_place(out_dir, size, request)
        notes.append(f"TensorRT {request.trt} model converted into {trt_dir(out_dir, request.trt).name}/")
    return ExportReport(out_dir=str(request.out_dir), files=sorted(p.name for p in out_dir.iterdir()),
                        max_relative_diff=diffs, load_report=str(load_report) if load_report is not None else None,
                        notes=notes)


def _write_verified(request: ExportRequest, model, staging: Path, size: Tuple[int, int], half: bool, notes: list,
                    say: Callable[[str], None]) -> dict:
    """Save the inference graph (and ONNX) into `staging`, each checked against the dygraph model's output on a
    random batch; the relative differences by runtime."""
    import paddle

    layer = _export_layer(model, request.multilabel)
    shape = (request.batch_size or 2, request.channels, *size)
    sample = np.random.default_rng(0).standard_normal(shape).astype("float32")
    with paddle.no_grad():
        expected = layer(paddle.to_tensor(sample)).numpy()  # the training-time form is the yardstick
    if callable(getattr(model, "rep", None)):
        model.rep()  # re-parameterise (RepVGG): fuse branches for deployment; verified against `expected`
        notes.append("re-parameterised (branches fused) before export")
    spec = paddle.static.InputSpec([request.batch_size, request.channels, *size], "float32", "x")
    say("saving the inference graph")
    with quiet():  # Paddle prints PIR notices the user cannot act on
        paddle.jit.save(layer, str(staging / MODEL_PREFIX), input_spec=[spec])
    diffs = {"paddle": relative_diff(run_paddle_inference(staging, sample), expected)}
    check(diffs["paddle"], "fp32", "Paddle Inference")
    if request.fmt == "onnx" or request.int8:
        say("converting to ONNX")
        convert_onnx(staging, fp16=half)
        diffs["onnx"] = relative_diff(run_onnx(staging, sample), expected)
        check(diffs["onnx"], "fp16" if half else "fp32", "ONNX Runtime")
    elif half:
        convert_paddle_fp16(staging)
        notes.append("fp16 Paddle model written for GPU; its output was not verified here (fp16 inference "
                     "needs a GPU) — the fp32 graph it was converted from was verified")
    return diffs


def _int8_note(info: dict) -> str:
    if info.get("top1_fp32") is None:
        return f"int8 model calibrated on {info['calib_images']} images; accuracy not checked (no --val)"
    return (f"int8 top-1 {info['top1_int8']:.2f}% vs fp32 {info['top1_fp32']:.2f}% on {info['val_images']} "
            f"images (drop {info['top1_fp32'] - info['top1_int8']:.2f} points, limit {info['max_drop']})")


def _convert_in_place(out_dir: Path, size: Tuple[int, int], request: ExportRequest) -> None:
    """Convert the placed export for TensorRT inside it: the converter records each engine file's absolute path
    in the converted program, so a converted folder must never be moved afterwards."""
    plan = plan_trt_conversion(out_dir, size, request.trt, request.trt_batch_sizes, tensorrt_versions())
    try:
        convert_trt(plan)
    except PclsError as err:
        raise PclsError(f"the export in {request.out_dir} is written and verified, but its TensorRT conversion "
                        f"failed: {err}") from None

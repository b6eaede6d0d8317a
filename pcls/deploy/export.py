"""`pcls export`: a dygraph model + weights -> a Paddle inference model (and optionally ONNX) + inference.yml.

Every export verifies itself before it is moved into place: the exported model, run by Paddle Inference (and
ONNX Runtime for ONNX), must reproduce the dygraph model's probabilities on a random batch.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from pcls.deploy.spec import IMAGENET_LABELS, MODEL_PREFIX, model_files, read_label_file, write_spec
from pcls.zoo.catalog import eval_transform_ops
from pcls.errors import PclsError

ONNX_FILE = "inference.onnx"
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
    topk: int = 5
    input_size: Optional[int] = None
    model_kwargs: dict = field(default_factory=dict)


@dataclass
class ExportReport:
    out_dir: str
    files: list
    max_abs_diff: dict
    load_report: Optional[str]
    notes: list


def request_from_config(cfg: dict, out_dir, weights=None, **options) -> ExportRequest:
    """An ExportRequest from a training config: Arch, Infer.transforms (or the eval ops), PostProcess."""
    arch = dict(cfg["Arch"])
    name = arch.pop("name")
    if name == "DistillationModel":
        student = arch.get("infer_model_name") or "Student"
        members = {next(iter(m)): next(iter(m.values())) for m in arch.get("models") or []}
        if student not in members:
            raise PclsError(f"Arch.infer_model_name '{student}' is not one of Arch.models ({', '.join(members)})")
        arch = dict(members[student])
        name = arch.pop("name")
    class_num = arch.pop("class_num", None)
    for key in ("pretrained", "freeze_params", "models", "infer_model_name", "freeze_params_list", "use_sync_bn"):
        arch.pop(key, None)
    infer = cfg.get("Infer") or {}
    ops = infer.get("transforms") or (cfg.get("DataLoader", {}).get("Eval", {}).get("dataset", {})
                                      .get("transform_ops"))
    post = infer.get("PostProcess") or {}
    labels = read_label_file(post["class_id_map_file"]) if post.get("class_id_map_file") else None
    image_shape = cfg["Global"].get("image_shape") or [3, 224, 224]
    return ExportRequest(model_name=name, out_dir=Path(out_dir), weights=weights or cfg["Global"].get("pretrained_model"),
                         class_num=class_num, transform_ops=ops, labels=labels, topk=int(post.get("topk", 5)),
                         input_size=int(image_shape[-1]), model_kwargs=arch, **options)


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
    from pcls.engine.model import load_plugins
    from pcls.zoo.weights import load_pretrained, load_state_file, resolve_weights

    load_plugins()  # PCLS_PLUGINS backbones export like built-in ones

    class_num = request.class_num
    load_report = None
    if request.weights:
        path = resolve_weights(request.weights)
        if class_num is None:
            probe = pcls.create_model(request.model_name, **request.model_kwargs)
            class_num = _classifier_class_num(probe, load_state_file(path)) or 1000
        model = pcls.create_model(request.model_name, class_num=class_num, **request.model_kwargs)
        load_report = load_pretrained(model, str(path))
    else:
        model = pcls.create_model(request.model_name, class_num=class_num or 1000, **request.model_kwargs)
    model.eval()
    return model, class_num or 1000, load_report


def _export_layer(model):
    import paddle

    class Exported(paddle.nn.Layer):
        """The backbone followed by softmax, as PaddleClas exports classifiers (scores are probabilities)."""

        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, x):  # the first argument must be called `self` for paddle.jit.save
            return paddle.nn.functional.softmax(self.inner(x), axis=-1)

    layer = Exported(model)
    layer.eval()
    return layer


def export(request: ExportRequest, progress=None) -> ExportReport:
    import paddle

    if request.fmt not in ("paddle", "onnx"):
        raise PclsError(f"unknown export format '{request.fmt}'; use paddle or onnx")
    if request.batch_size is not None and request.batch_size < 1:
        raise PclsError(f"--batch must be a positive integer or 'dynamic', got {request.batch_size}")
    model, class_num, load_report = build_model(request)
    ops = request.transform_ops or eval_transform_ops(model.pretrained_cfg, request.input_size)
    size = _input_size_of(ops) or request.input_size or int(model.pretrained_cfg["input_size"])
    labels = request.labels
    if labels is None and class_num == 1000:
        labels = read_label_file(IMAGENET_LABELS)
    if labels is not None and len(labels) != class_num:
        raise PclsError(f"the label file has {len(labels)} names but the model has {class_num} classes")

    out_dir = Path(request.out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    notes = []
    try:
        layer = _export_layer(model)
        sample = np.random.default_rng(0).standard_normal((request.batch_size or 2, 3, size, size)).astype("float32")
        with paddle.no_grad():
            expected = layer(paddle.to_tensor(sample)).numpy()  # the training-time form is the yardstick
        if callable(getattr(model, "rep", None)):
            model.rep()  # re-parameterise (RepVGG): fuse branches for deployment; verified against `expected`
            notes.append("re-parameterised (branches fused) before export")
        spec = paddle.static.InputSpec([request.batch_size, 3, size, size], "float32", "x")
        paddle.jit.save(layer, str(staging / MODEL_PREFIX), input_spec=[spec])
        diffs = {"paddle": _max_diff(_run_paddle_inference(staging, sample), expected)}
        _check(diffs["paddle"], "fp32", "Paddle Inference")
        if request.fmt == "onnx":
            _convert_onnx(staging, fp16=request.fp16)
            tolerance = "fp16" if request.fp16 else "fp32"
            diffs["onnx"] = _max_diff(_run_onnx(staging / ONNX_FILE, sample), expected)
            _check(diffs["onnx"], tolerance, "ONNX Runtime")
        elif request.fp16:
            _convert_paddle_fp16(staging)
            notes.append("fp16 Paddle model written for GPU; its output was not verified here (fp16 inference "
                         "needs a GPU) — the fp32 graph it was converted from was verified")
        write_spec(staging, model_name=request.model_name, input_size=size, transform_ops=ops, class_num=class_num,
                   label_names=labels, topk=request.topk, batch_size=request.batch_size, fmt=request.fmt,
                   precision="fp16" if request.fp16 else "fp32", source_weights=request.weights)
        _move_into_place(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return ExportReport(out_dir=str(out_dir), files=sorted(p.name for p in out_dir.iterdir()), max_abs_diff=diffs,
                        load_report=str(load_report) if load_report is not None else None, notes=notes)


def _input_size_of(ops) -> Optional[int]:
    for op in reversed(ops or []):
        (name, params), = op.items()
        if name in ("CropImage", "RandCropImage") and params and params.get("size"):
            size = params["size"]
            return int(size if isinstance(size, int) else size[0])
        if name == "ResizeImage" and params and params.get("size"):
            size = params["size"]
            return int(size if isinstance(size, int) else size[0])
    return None


def _max_diff(got, expected) -> float:
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
    from pcls.deploy.predictor import RuntimeSettings, create_paddle_predictor

    runner = create_paddle_predictor(model_dir, RuntimeSettings(device="cpu", threads=2))
    return runner(batch)


def _run_onnx(onnx_path: Path, batch: np.ndarray) -> np.ndarray:
    from pcls.deploy.predictor import RuntimeSettings, create_onnx_predictor

    return create_onnx_predictor(onnx_path.parent, RuntimeSettings(device="cpu", threads=2, runtime="onnx"))(batch)


def _convert_onnx(model_dir: Path, fp16: bool) -> None:
    try:
        import paddle2onnx
    except ImportError:
        raise PclsError("ONNX export needs paddle2onnx: pip install 'pcls[onnx]'") from None
    graph, params = model_files(model_dir)
    # optimize_tool="None": the default ("polygraphy") pip-installs packages at run time (PADDLE_NOTES).
    paddle2onnx.export(str(graph), str(params), save_file=str(model_dir / ONNX_FILE), opset_version=ONNX_OPSET,
                       enable_onnx_checker=True, export_fp16_model=fp16, optimize_tool="None")
    if not (model_dir / ONNX_FILE).exists():
        raise PclsError("paddle2onnx produced no ONNX file; run with --debug for its log")


def _convert_paddle_fp16(model_dir: Path) -> None:
    import paddle.inference as pi

    graph, params = model_files(model_dir)
    tmp_graph, tmp_params = model_dir / f"fp16{graph.suffix}", model_dir / "fp16.pdiparams"
    pi.convert_to_mixed_precision(str(graph), str(params), str(tmp_graph), str(tmp_params),
                                  pi.PrecisionType.Half, pi.PlaceType.GPU, True)
    tmp_graph.replace(graph)
    tmp_params.replace(params)


def _move_into_place(staging: Path, out_dir: Path) -> None:
    """Swap the verified export in: an existing folder is replaced only once the new one is complete."""
    if out_dir.exists():
        backup = out_dir.with_name(f".{out_dir.name}.old")
        shutil.rmtree(backup, ignore_errors=True)
        out_dir.rename(backup)
        staging.rename(out_dir)
        shutil.rmtree(backup, ignore_errors=True)
    else:
        staging.rename(out_dir)

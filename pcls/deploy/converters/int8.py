"""CPU int8: ONNX Runtime post-training static quantisation, calibrated on the user's images, with its accuracy cost
measured on a validation list and refused beyond a threshold.

Why ONNX Runtime and not PaddleSlim: onnxruntime is already a pcls dependency (the `onnx` extra) and its quantiser
runs on this machine; PaddleSlim is not installable beside Paddle 3.3 here. The int8 model is QDQ (QuantizeLinear /
DequantizeLinear around each op), per-channel int8 weights and int8 activations, both symmetric (zero point 0), with
MinMax ranges — the format ONNX Runtime's CPU kernels and TensorRT (which accepts only symmetric signed INT8 Q/DQ)
execute in int8.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional, Tuple

import numpy as np

from pcls.deploy.measure import top1
from pcls.deploy.spec import INT8_ONNX_FILE, ONNX_FILE, input_hw, size_text
from pcls.errors import PclsError
from pcls.utils.quiet import quiet


def load_images(list_file, root, ops: list, limit: Optional[int] = None, labelled: bool = True
                ) -> Tuple[np.ndarray, np.ndarray]:
    """(N,3,S,S float32 pre-processed as the export does, N labels (-1 when unlabeled)) from a list file."""
    from pcls.data.datasets import read_list_file
    from pcls.data.transforms import build_transforms

    samples = read_list_file(list_file, allow_unlabeled=not labelled)
    if limit:
        step = max(1, len(samples) // limit)  # spread over the list, which is often sorted by class
        samples = samples[::step][:limit]
    base = Path(root) if root else Path(list_file).parent
    transform = build_transforms(ops, to_chw=True)
    rng = np.random.default_rng(0)
    arrays, labels = [], []
    for rel, label in samples:
        path = base / rel
        try:
            arrays.append(np.asarray(transform(str(path), rng), dtype=np.float32))
        except Exception as err:  # one line naming the image; the operators' own errors vary by decoder
            raise PclsError(f"cannot read {path} (from {list_file}): {err}; check --root") from None
        labels.append(label)
    return np.stack(arrays), np.asarray(labels, dtype=np.int64)


def quantize_onnx(src: Path, dst: Path, images: np.ndarray, batch_size: int = 8) -> None:
    """Static QDQ quantisation of `src` into `dst`, activation ranges from `images`.

    The graph is pre-processed first (ONNX Runtime's optimiser folds BatchNorm into the convolutions and infers
    shapes), so the quantised convolutions carry their bias and fewer tensors need a range.
    """
    import tempfile

    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    input_name = onnx.load(str(src), load_external_data=False).graph.input[0].name
    # TensorRT executes only symmetric signed INT8 Q/DQ (zero point 0): QInt8 activations and weights, both
    # symmetric, so the same model runs on ONNX Runtime's CPU kernels and its TensorRT provider.
    options = dict(quant_format=QuantFormat.QDQ, per_channel=True, activation_type=QuantType.QInt8,
                            weight_type=QuantType.QInt8,
                            extra_options={"ActivationSymmetric": True, "WeightSymmetric": True})

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.batches = iter([images[i:i + batch_size] for i in range(0, len(images), batch_size)])

        def get_next(self):
            batch = next(self.batches, None)
            return None if batch is None else {input_name: batch}

    with quiet(), tempfile.TemporaryDirectory(prefix=".pcls-quant-", dir=dst.parent) as work:
        prepared = Path(work) / "prepared.onnx"
        quant_pre_process(str(src), str(prepared), skip_symbolic_shape=True)  # no sympy needed
        quantize_static(str(prepared), str(dst), Reader(), **options, calibrate_method=CalibrationMethod.MinMax)


def export_int8(model_dir: Path, ops: list, size: int, request) -> dict:
    """Write `inference.int8.onnx` beside the fp32 ONNX model; refuse it (nothing written) when top-1 on
    `request.val` drops by more than `request.max_drop` points. Returns what inference.yml records."""
    calib, _ = load_images(request.calib, request.root, ops, limit=request.calib_count, labelled=False)
    if tuple(calib.shape[-2:]) != input_hw(size):
        raise PclsError(f"calibration images come out {size_text(calib.shape[-2:])} px but the model takes "
                        f"{size_text(size)} px")
    target = model_dir / INT8_ONNX_FILE
    quantize_onnx(model_dir / ONNX_FILE, target, calib)
    info = {"file": INT8_ONNX_FILE, "method": "onnxruntime static QDQ, symmetric int8, per-channel, MinMax",
            "calib_images": int(len(calib)), "calib_list": str(request.calib), "max_drop": float(request.max_drop),
            "top1_fp32": None, "top1_int8": None, "val_images": 0}
    if request.val:
        images, labels = load_images(request.val, request.root, ops, labelled=True)
        fp32 = top1(_onnx_runner(model_dir, "fp32"), images, labels)
        int8 = top1(_onnx_runner(model_dir, "int8"), images, labels)
        info.update(top1_fp32=round(fp32, 3), top1_int8=round(int8, 3), val_images=int(len(images)))
        drop = fp32 - int8
        if drop > request.max_drop:
            target.unlink(missing_ok=True)
            raise PclsError(f"int8 top-1 {int8:.2f}% is {drop:.2f} points below fp32 {fp32:.2f}% on {request.val} "
                            f"(--max-drop {request.max_drop}); the int8 model was not written — calibrate on more "
                            "representative images (--calib) or allow a larger drop")
    return info


def _onnx_runner(model_dir: Path, precision: str) -> Callable:
    from pcls.deploy.runtimes import RuntimeSettings, onnx_runner

    return onnx_runner(model_dir, RuntimeSettings(runtime="onnx", precision=precision, threads=2))

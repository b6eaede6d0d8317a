"""Paddle inference model -> ONNX with paddle2onnx."""

from __future__ import annotations

from pathlib import Path

from pcls.deploy.spec import ONNX_FILE, model_files
from pcls.errors import PclsError
from pcls.utils.quiet import quiet

ONNX_OPSET = 13  # covers every op the zoo exports (incl. transformers' LayerNorm decomposition); TensorRT >= 8 reads it


def convert_onnx(model_dir: Path, fp16: bool) -> None:
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

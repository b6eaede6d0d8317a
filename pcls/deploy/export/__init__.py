"""`pcls export`, in parts: `pipeline` (the request and the steps), `placement` (output folder, staging, swap,
filesystem errors), `verify` (the self-check), `preprocess` (the serialised pipeline), `runtime_choice` (the CPU
runtime recorded). Converters (ONNX, fp16, int8, TensorRT) live in `pcls.deploy.converters`."""

from pcls.deploy.export.pipeline import ExportReport, ExportRequest, build_model, export, request_from_config
from pcls.deploy.export.verify import run_paddle_inference
from pcls.deploy.spec import MODEL_PREFIX

_run_paddle_inference = run_paddle_inference  # the name tests/arch/test_dsnet.py imports

__all__ = ["ExportReport", "ExportRequest", "MODEL_PREFIX", "build_model", "export", "request_from_config"]

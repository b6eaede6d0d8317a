"""`pcls export`, in parts: `pipeline` (the request and the steps), `placement` (output folder, staging, swap,
filesystem errors), `verify` (the self-check), `preprocess` (the serialised pipeline), `runtime_choice` (the CPU
runtime recorded). Converters (ONNX, fp16, int8, TensorRT) live in `pcls.deploy.converters`."""

from pcls.deploy.export.pipeline import ExportReport, ExportRequest, build_model, export, request_from_config

__all__ = ["ExportReport", "ExportRequest", "build_model", "export", "request_from_config"]

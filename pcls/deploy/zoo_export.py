"""A zoo name as something to predict with: the model exported once (pretrained weights, ONNX too when it can be
made) into `<PCLS_HOME>/inference/<name>/` and reused — what `pcls predict --model NAME` and
`pcls.Predictor("ResNet50_vd")` both run."""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path
from typing import Callable, Optional

from pcls.deploy.spec import SPEC_FILE, export_folder

logger = logging.getLogger(__name__)


def prepared_model_dir(model, progress: Optional[Callable[[str], None]] = None) -> Path:
    """An export folder as given, or the export of zoo model `model` (made on first use, under a lock)."""
    folder = export_folder(str(model))
    if folder is not None:
        return folder
    from pcls.deploy.export import ExportRequest, export
    from pcls.zoo.cache import file_lock, pcls_home
    from pcls.zoo.catalog import get_entry

    entry = get_entry(str(model))  # a clear error with suggestions when the name is unknown
    target = pcls_home() / "inference" / entry["name"]
    with file_lock(target):  # two first uses at once export once
        if not (target / SPEC_FILE).exists():
            # with ONNX too when it can be made, so runtime "auto" can pick the faster runtime
            onnx = all(importlib.util.find_spec(m) for m in ("paddle2onnx", "onnxruntime"))
            logger.info(f"exporting zoo model {entry['name']} to {target} (once)")
            export(ExportRequest(model_name=entry["arch"], out_dir=target, weights=entry["name"],
                                 fmt="onnx" if onnx else "paddle"), progress=progress)
    return target

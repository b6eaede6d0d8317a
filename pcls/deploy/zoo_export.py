"""A MODEL argument as an export folder to predict with: an export folder as given; a zoo name exported once
(pretrained weights, ONNX too when it can be made) into `<PCLS_HOME>/inference/<name>/`; a training run folder
exported once into `<PCLS_HOME>/inference/runs/<run>-<digest>/`, the digest taken over its weights and config so
a retrained run is exported again. What `pcls predict/serve/bench --model` and `pcls.Predictor(...)` all run."""

from __future__ import annotations

import hashlib
import importlib.util
import logging
from pathlib import Path
from typing import Callable, Optional

from pcls.deploy.spec import SPEC_FILE, export_folder
from pcls.errors import PclsError

logger = logging.getLogger(__name__)

RUN_CONFIG = "config.yaml"  # what pcls writes beside a run's weights (pcls.engine.runlog)
RUN_WEIGHTS = ("best_model", "latest")  # the prefixes exported, in this order of preference


def prepared_model_dir(model, progress: Optional[Callable[[str], None]] = None) -> Path:
    """An export folder as given, or the export of run folder / zoo model `model` (made on first use, under a lock)."""
    run = exported_run_dir(model, progress)
    if run is not None:
        return run
    folder = export_folder(str(model))
    if folder is not None:
        return folder
    from pcls.zoo.catalog import get_entry

    entry = get_entry(str(model))  # a clear error with suggestions when the name is unknown

    def request(target, fmt):
        from pcls.deploy.export import ExportRequest

        return ExportRequest(model_name=entry["arch"], out_dir=target, weights=entry["name"], fmt=fmt)

    return _export_once(pcls_cache("inference") / entry["name"], f"zoo model {entry['name']}", progress, request)


def pcls_cache(*parts) -> Path:
    from pcls.zoo.cache import pcls_home

    return pcls_home().joinpath(*parts)


def run_folder(model) -> Optional[Path]:
    """`model` as a training run folder (pcls's `output/<run>/` or PaddleClas's `output[/<Arch.name>]/`), or None:
    a folder without inference.yml that holds a run's config or weights."""
    from pcls.engine.rundir import holds_run
    from pcls.utils.run_files import find_in_run

    path = Path(str(model)).expanduser()
    if not path.is_dir() or (path / SPEC_FILE).exists():
        return None
    if holds_run(path) or any(find_in_run(path, stem) for stem in RUN_WEIGHTS):
        return path
    return None


def exported_run_dir(model, progress: Optional[Callable[[str], None]] = None) -> Optional[Path]:
    """The cached export of run folder `model` (made now when its weights or config changed), or None when
    `model` is no run folder."""
    folder = run_folder(model)
    if folder is None:
        return None
    weights, config = _run_files(folder)
    from pcls.zoo.cache import sha256_file

    try:
        digest = hashlib.sha256(f"{sha256_file(weights)}\n{sha256_file(config)}".encode()).hexdigest()[:16]
    except OSError as err:
        raise PclsError(f"cannot read {err.filename or weights} of run folder {folder}: "
                        f"{err.strerror or err}") from None
    target = pcls_cache("inference", "runs") / f"{folder.resolve().name}-{digest}"

    def request(target, fmt):
        from pcls.config import load_config
        from pcls.deploy.export import request_from_config

        return request_from_config(load_config(str(config)), target, str(weights), fmt=fmt)

    return _export_once(target, f"run {folder} ({weights.name})", progress, request)


def _run_files(folder: Path):
    """(weights file, config.yaml) of a run folder; a PclsError saying what is missing and what to do."""
    from pcls.utils.run_files import file_of, find_in_run

    prefix = next((p for p in (find_in_run(folder, stem) for stem in RUN_WEIGHTS) if p is not None), None)
    if prefix is None:
        raise PclsError(f"run folder {folder} has no weights yet (no best_model or latest .pdparams): let "
                        f"'pcls train' save some, or export other weights with 'pcls export -c "
                        f"{folder / RUN_CONFIG} --weights FILE'")
    weights = file_of(prefix)
    config = next((p / RUN_CONFIG for p in (prefix.parent, folder) if (p / RUN_CONFIG).is_file()), None)
    if config is None:  # PaddleClas does not save its config with the run
        raise PclsError(f"run folder {folder} has weights ({weights.name}) but no {RUN_CONFIG}: copy the training "
                        f"config there as {prefix.parent / RUN_CONFIG}, or run 'pcls export -c CONFIG --weights "
                        f"{prefix}'")
    return weights, config


def _export_once(target: Path, what: str, progress, make_request) -> Path:
    """Export into `target` unless an export is already there; two first uses at once export once."""
    from pcls.deploy.export import export
    from pcls.zoo.cache import file_lock

    with file_lock(target):
        if not (target / SPEC_FILE).exists():
            # with ONNX too when it can be made, so runtime "auto" can pick the faster runtime
            onnx = all(importlib.util.find_spec(m) for m in ("paddle2onnx", "onnxruntime"))
            logger.info(f"exporting {what} to {target} (once)")
            export(make_request(target, "onnx" if onnx else "paddle"), progress=progress)
    return target

"""Build "the model" of a config: a registered backbone (see pcls/engine/backbone.py), or a model kind
registered for a special `Arch.name` that brings its own builder and training callbacks. Distillation is
one (pcls/distill/kind.py registers DistillationModel): the engine knows it only as a plugin module to
import, so engine and distillation do not import each other. Every training entry point builds models here.

Custom backbones: set PCLS_PLUGINS to one or more Python files (os.pathsep-separated) that `@register`
their constructors (or `register_arch` a model kind); they are imported before the name is looked up, in
every worker process too.
"""

from __future__ import annotations

import contextlib
import importlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from pcls.engine.backbone import build_backbone, check_weights_source, load_weights
from pcls.errors import PclsError
from pcls.utils.logs import forward_logs
from pcls.utils.plugins import run_plugin
from pcls.utils.registry import Registry

__all__ = ["MODEL_KINDS", "register_arch", "load_plugins", "build_model", "model_callbacks", "load_weights",
           "check_weights_source"]


@dataclass(frozen=True)
class ModelKind:
    """A non-backbone `Arch.name`: `build(arch_cfg, global_cfg) -> nn.Layer`, and the callbacks a run of it
    needs, `callbacks(run_config) -> [Callback]` (they read their options from `run.options.strategy`)."""

    build: Callable
    callbacks: Optional[Callable] = None


MODEL_KINDS = Registry("model kind", where="Arch.name")
# modules that register the model kinds pcls ships (imported with the PCLS_PLUGINS files)
BUILTIN_KINDS = ("pcls.distill.kind",)
_plugins_loaded = False


def register_arch(name: str, callbacks: Optional[Callable] = None):
    """Register a builder `fn(arch_cfg, global_cfg) -> nn.Layer` for a non-backbone Arch.name."""

    def add(fn):
        MODEL_KINDS.add(name, ModelKind(fn, callbacks))
        return fn

    return add


def load_plugins() -> None:
    """Import the built-in model kinds and the PCLS_PLUGINS files (once per process)."""
    global _plugins_loaded
    for module in BUILTIN_KINDS:  # imported once by Python's module cache
        importlib.import_module(module)
    if _plugins_loaded:
        return
    _plugins_loaded = True
    for i, path in enumerate(p for p in os.environ.get("PCLS_PLUGINS", "").split(os.pathsep) if p):
        if not Path(path).is_file():
            raise PclsError(f"PCLS_PLUGINS names {path}, which is not a file")
        run_plugin(path, f"pcls_plugin_{i}")  # runs the file's code; failures are one line naming it


def build_model(arch_cfg: dict, global_cfg: dict = None, log=None):
    """The model an `Arch` section describes, weights loaded. `log`: a callable that also receives this
    build's log messages (they always go to the `pcls` logger)."""
    load_plugins()
    arch_cfg = dict(arch_cfg or {})
    global_cfg = global_cfg or {}
    with forward_logs(log) if log else contextlib.nullcontext():
        if arch_cfg.get("name") in MODEL_KINDS:
            return MODEL_KINDS.get(arch_cfg["name"]).build(arch_cfg, global_cfg)
        return build_backbone(arch_cfg, global_cfg)


def model_callbacks(run) -> list:
    """The callbacks the run's model kind brings (none for a plain backbone)."""
    load_plugins()
    name = run.arch["name"]
    kind = MODEL_KINDS.get(name) if name in MODEL_KINDS else None
    return list(kind.callbacks(run)) if kind and kind.callbacks else []

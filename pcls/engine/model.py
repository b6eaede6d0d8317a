"""Build "the model" of a config: a backbone from the registry (`Arch.name`, `class_num`, backbone kwargs),
its pretrained weights, per-stage rate multipliers -- or a wrapper registered for a special `Arch.name`
(e.g. DistillationModel, registered by pcls.distill). Every training entry point builds models here.

Custom backbones: set PCLS_PLUGINS to one or more Python files (os.pathsep-separated) that `@register`
their constructors; they are imported before the name is looked up, in every worker process too.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from pathlib import Path
from typing import Callable, Dict

from pcls.errors import PclsError

_WRAPPERS: Dict[str, Callable] = {}
# keys of the Arch section that the engine consumes; the rest are backbone constructor kwargs
_ENGINE_KEYS = ("name", "class_num", "pretrained", "lr_mult_list", "use_sync_bn", "infer_model_name",
                "freeze_params_list", "models")
_plugins_loaded = False


def register_arch(name: str):
    """Register a builder `fn(arch_cfg, global_cfg, log) -> nn.Layer` for a non-backbone Arch.name."""

    def add(fn):
        _WRAPPERS[name] = fn
        return fn

    return add


def load_plugins() -> None:
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    try:  # wrappers that live in other packages register themselves on import
        importlib.import_module("pcls.distill")
    except ModuleNotFoundError as err:
        if err.name not in ("pcls.distill",):
            raise
    for i, path in enumerate(p for p in os.environ.get("PCLS_PLUGINS", "").split(os.pathsep) if p):
        if not Path(path).is_file():
            raise PclsError(f"PCLS_PLUGINS names {path}, which is not a file")
        spec = importlib.util.spec_from_file_location(f"pcls_plugin_{i}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)


def build_model(arch_cfg: dict, global_cfg: dict = None, log=print):
    """The model an `Arch` section describes, with weights from `Arch.pretrained` or
    `Global.pretrained_model` loaded (classifier re-initialised when class_num differs)."""
    load_plugins()
    arch_cfg = dict(arch_cfg or {})
    global_cfg = global_cfg or {}
    name = arch_cfg.get("name")
    if not name:
        raise PclsError("Arch.name is missing: name a backbone, e.g. -o Arch.name=ResNet18")
    if name in _WRAPPERS:
        return _WRAPPERS[name](arch_cfg, global_cfg, log)
    from pcls.arch.registry import create_model

    kwargs = {k: v for k, v in arch_cfg.items() if k not in _ENGINE_KEYS}
    if global_cfg.get("data_format") and "data_format" not in kwargs:
        # NHWC: the backbone takes the usual NCHW batch and transposes inside (PaddleClas convention)
        kwargs["data_format"] = global_cfg["data_format"]
    class_num = int(arch_cfg.get("class_num") or global_cfg.get("class_num") or 1000)
    lr_mults = arch_cfg.get("lr_mult_list")
    generic_mults = None
    if lr_mults:
        # families that know their stages take lr_mult_list themselves (PaddleClas does it per family);
        # any other backbone gets the generic stage mapping of pcls.optim.stages
        try:
            model = create_model(name, class_num=class_num, pretrained=False, lr_mult_list=lr_mults, **kwargs)
        except PclsError as err:
            if "lr_mult_list" not in str(err) or "bad option" not in str(err):
                raise
            generic_mults = lr_mults
            model = create_model(name, class_num=class_num, pretrained=False, **kwargs)
    else:
        model = create_model(name, class_num=class_num, pretrained=False, **kwargs)
    source = global_cfg.get("pretrained_model") or arch_cfg.get("pretrained")
    if source:
        load_weights(model, source, log)
    if generic_mults:
        from pcls.optim.stages import apply_lr_mult

        applied = apply_lr_mult(model, generic_mults)
        log("lr_mult_list: " + ", ".join(f"{stage} x{mult:g}" for stage, mult in applied))
    elif lr_mults:
        log(f"lr_mult_list {list(lr_mults)} applied by {name}")
    return model


def load_weights(model, source, log=print):
    """Load pretrained weights (True = the zoo's for this backbone, a zoo name, a path prefix or a URL)."""
    from pcls.zoo.weights import load_pretrained

    if source is True:
        source = model.model_name
    if isinstance(source, list):  # PaddleClas distillation configs list one source per model
        source = source[0]
    report = load_pretrained(model, source)
    if report:
        log(str(report))
    return report


def check_weights_source(source) -> None:
    """Fail early (before any output is written) when a local weights path does not exist."""
    if not source or source is True or isinstance(source, list):
        return
    text = str(source)
    if "://" in text:
        return
    path = Path(text)
    looks_like_path = any(sep in text for sep in ("/", os.sep)) or text.endswith(".pdparams")
    if looks_like_path and not (path.exists() or path.with_name(path.name + ".pdparams").exists()):
        raise PclsError(f"pretrained weights {text} not found (looked for {text} and {text}.pdparams); "
                        f"give a path prefix, a .pdparams file or a zoo model name")

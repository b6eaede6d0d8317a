"""One backbone from an `Arch`-style section: the registry's constructor with the section's keyword
arguments, its pretrained weights, and per-stage rate multipliers (`lr_mult_list`). Wrappers such as
DistillationModel build their members here."""

from __future__ import annotations

import inspect
import logging
import os
from pathlib import Path

from pcls.config.expr import evaluate_strings
from pcls.config.schema import default_of
from pcls.errors import PclsError

log = logging.getLogger(__name__)

# keys of the Arch section that the engine consumes; the rest are backbone constructor kwargs
ENGINE_KEYS = ("name", "class_num", "pretrained", "lr_mult_list", "use_sync_bn", "infer_model_name",
               "freeze_params_list", "models")


def _takes_lr_mult_list(model) -> bool:
    """Whether the backbone's class applies lr_mult_list itself (PaddleClas does it per family)."""
    return "lr_mult_list" in inspect.signature(type(model).__init__).parameters


def build_backbone(arch_cfg: dict, global_cfg: dict = None):
    """The registered backbone `arch_cfg` names, with weights from `Arch.pretrained` or
    `Global.pretrained_model` loaded (classifier re-initialised when class_num differs)."""
    from pcls.arch.registry import create_model

    global_cfg = global_cfg or {}
    name = arch_cfg.get("name")
    if not name:
        raise PclsError("Arch.name is missing: name a backbone, e.g. -o Arch.name=ResNet18")
    # PaddleClas evaluates strings such as `layer_scale_init_value: 1e-6` (a string to YAML) before the constructor
    kwargs = evaluate_strings({k: v for k, v in arch_cfg.items() if k not in ENGINE_KEYS})
    if global_cfg.get("data_format") and "data_format" not in kwargs:
        # NHWC: the backbone takes the usual NCHW batch and transposes inside (PaddleClas convention)
        kwargs["data_format"] = global_cfg["data_format"]
    class_num = int(arch_cfg.get("class_num") or default_of("Arch.class_num"))  # members of a wrapper are unfilled
    lr_mults = arch_cfg.get("lr_mult_list")
    model = create_model(name, class_num=class_num, pretrained=False, **kwargs)
    generic_mults = None
    if lr_mults and _takes_lr_mult_list(model):
        model = create_model(name, class_num=class_num, pretrained=False, lr_mult_list=lr_mults, **kwargs)
    elif lr_mults:  # any other backbone gets the generic stage mapping of pcls.optim.stages
        generic_mults = lr_mults
    source = global_cfg.get("pretrained_model") or arch_cfg.get("pretrained")
    if source:
        load_weights(model, source)
    if generic_mults:
        from pcls.optim.stages import apply_lr_mult

        applied = apply_lr_mult(model, generic_mults)
        log.info("lr_mult_list: %s", ", ".join(f"{stage} x{mult:g}" for stage, mult in applied))
    elif lr_mults:
        log.info("lr_mult_list %s applied by %s", list(lr_mults), name)
    return model


def load_weights(model, source, reinit_classifier: bool = True):
    """Load pretrained weights (True = the zoo's for this backbone, a zoo name, a path prefix or a URL).
    reinit_classifier=False (evaluation) refuses weights whose classifier does not fit."""
    from pcls.zoo.weights import load_pretrained

    if source is True:
        source = model.model_name
    if isinstance(source, list):  # PaddleClas distillation configs list one source per model
        source = source[0]
    report = load_pretrained(model, source, reinit_classifier=reinit_classifier)
    if report:
        log.info("%s", report)
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

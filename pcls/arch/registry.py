"""The backbone registry: `@register` a constructor under its PaddleClas name; `create_model` builds it.

    pcls.list_models("ResNet50*")
    model = pcls.create_model("ResNet50_vd", class_num=102, pretrained=True)
"""

from __future__ import annotations

import fnmatch
import importlib
import pkgutil
from typing import Callable, Dict

from pcls.errors import PclsError, did_you_mean

_CONSTRUCTORS: Dict[str, Callable] = {}
_FAMILY_OF: Dict[str, str] = {}
_NOT_FAMILIES = {"registry", "base", "layers", "measure"}
_discovered = False


def register(fn: Callable) -> Callable:
    """Register a model constructor under its function name (the PaddleClas model name)."""
    name = fn.__name__
    if name in _CONSTRUCTORS and _CONSTRUCTORS[name] is not fn:
        raise RuntimeError(f"model {name} registered twice ({_FAMILY_OF[name]} and {fn.__module__})")
    _CONSTRUCTORS[name] = fn
    _FAMILY_OF[name] = fn.__module__.rsplit(".", 1)[-1]
    return fn


def _discover() -> None:
    global _discovered
    if _discovered:
        return
    import pcls.arch as package

    for info in pkgutil.iter_modules(package.__path__):
        if info.name not in _NOT_FAMILIES and not info.name.startswith("_"):
            importlib.import_module(f"pcls.arch.{info.name}")
    _discovered = True


def list_models(pattern: str = "*") -> list:
    """Registered model names matching a shell-style pattern (case-insensitive), sorted."""
    _discover()
    return sorted(n for n in _CONSTRUCTORS if fnmatch.fnmatch(n.lower(), pattern.lower()))


def model_family(name: str) -> str:
    """The family module a registered model lives in (e.g. 'resnet')."""
    get_constructor(name)
    return _FAMILY_OF[name]


def get_constructor(name: str) -> Callable:
    _discover()
    if name not in _CONSTRUCTORS:
        raise PclsError(f"unknown backbone '{name}'{did_you_mean(name, _CONSTRUCTORS)}; see 'pcls zoo list'")
    return _CONSTRUCTORS[name]


def create_model(name: str, class_num: int = 1000, pretrained=False, **kwargs):
    """Build a registered backbone.

    pretrained: False (random init), True (the zoo's ImageNet weights for `name`, downloaded into the
    cache if allowed), or a path / zoo name of weights. Loading into a model with another `class_num`
    drops the classifier with one info line (see pcls.zoo.weights).
    """
    from pcls.zoo.catalog import preprocess_for

    constructor = get_constructor(name)
    patterns = kwargs.pop("return_patterns", None)  # any family: feature maps by sub-layer name
    try:
        model = constructor(class_num=class_num, **kwargs)
    except TypeError as err:
        raise PclsError(f"bad option for backbone {name}: {err}") from err
    if patterns:
        model.set_return_patterns(list(model._return_patterns) + list(patterns))
    model.model_name = name
    model.pretrained_cfg = preprocess_for(name)
    if pretrained:
        from pcls.zoo.weights import load_pretrained

        load_pretrained(model, _zoo_weights_name(name, kwargs) if pretrained is True else pretrained)
    return model


def _zoo_weights_name(name: str, kwargs: dict) -> str:
    """The zoo entry `pretrained=True` loads: `<name>_ssld` when use_ssld is set and the zoo has it (as in
    PaddleClas, where use_ssld only chooses the distilled weights)."""
    from pcls.zoo.catalog import load_catalog

    if kwargs.get("use_ssld") and f"{name}_ssld" in load_catalog():
        return f"{name}_ssld"
    return name

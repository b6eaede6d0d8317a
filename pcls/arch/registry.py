"""The backbone registry: `@register` a constructor under its PaddleClas name; `create_model` builds it.

    pcls.list_models("ResNet50*")
    model = pcls.create_model("ResNet50_vd", class_num=102, pretrained=True)
"""

from __future__ import annotations

import logging
from typing import Callable

from pcls.errors import PclsError
from pcls.utils.registry import Registry

BACKBONES = Registry("backbone", package="pcls.arch", skip={"registry", "base", "layers", "measure"},
                     listing="see 'pcls zoo list'")
log = logging.getLogger(__name__)


def register(fn: Callable) -> Callable:
    """Register a model constructor under its function name (the PaddleClas model name)."""
    return BACKBONES.add(fn.__name__, fn)


def list_models(pattern: str = "*") -> list:
    """Registered model names matching a shell-style pattern (case-insensitive), sorted."""
    return BACKBONES.names(pattern)


def model_family(name: str) -> str:
    """The family module a registered model lives in (e.g. 'resnet')."""
    return BACKBONES.origin(name).rsplit(".", 1)[-1]


def get_constructor(name: str) -> Callable:
    return BACKBONES.get(name)


def create_model(name: str, class_num: int = 1000, pretrained=False, **kwargs):
    """Build a registered backbone.

    pretrained: False (random init), True (the zoo's ImageNet weights for `name`, downloaded into the
    cache if allowed), or a path / zoo name of weights. Loading into a model with another `class_num`
    drops the classifier with one info line (see pcls.zoo.weights).
    """
    from pcls.zoo.catalog import preprocess_for

    constructor = get_constructor(name)
    patterns = kwargs.pop("return_patterns", None)  # any family: feature maps by sub-layer name
    if patterns and kwargs.pop("return_stages", None) is not None:
        # PaddleClas's rule (its TheseusLayer, in every family): return_patterns set, return_stages is ignored
        log.info("%s: return_stages is ignored when return_patterns is set (as in PaddleClas)", name)
    use_ssld = bool(kwargs.pop("use_ssld", False))  # any family: it only chooses the zoo weights
    # PaddleClas's export switch; pcls's export ends in softmax, or sigmoid for Global.use_multilabel models
    kwargs.pop("infer_add_softmax", None)
    try:
        model = constructor(class_num=class_num, **kwargs)
    except TypeError as err:
        # an option the backbone does not take (or one it sets itself) is the config's; any other TypeError is a
        # fault inside the constructor, shown as it is
        if not any(words in str(err) for words in ("unexpected keyword argument", "multiple values for")):
            raise
        raise PclsError(f"bad option for backbone {name}: {err}") from err
    if patterns:
        model.set_return_patterns(list(model._return_patterns) + list(patterns))
    model.model_name = name
    model.use_ssld = use_ssld
    model.pretrained_cfg = preprocess_for(name)
    if pretrained:
        from pcls.zoo.weights import load_pretrained

        # pretrained weights with a class_num of one's own is fine-tuning: a new classifier is intended
        load_pretrained(model, _zoo_weights_name(name, {"use_ssld": use_ssld}) if pretrained is True else pretrained,
                        reinit_classifier=True)
    return model


def _zoo_weights_name(name: str, kwargs: dict) -> str:
    """The zoo entry `pretrained=True` loads: `<name>_ssld` when use_ssld is set and the zoo has it (as in
    PaddleClas, where use_ssld only chooses the distilled weights)."""
    from pcls.zoo.catalog import load_catalog

    if kwargs.get("use_ssld") and f"{name}_ssld" in load_catalog():
        return f"{name}_ssld"
    return name

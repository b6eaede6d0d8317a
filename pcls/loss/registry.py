"""The loss registry: `@register_loss` a class under its PaddleClas name; `build_loss` turns a config's
list of `{Name: {weight: w, ...}}` entries into one callable. Loss modules in this package (ce.py,
distillation.py, ...) are discovered on first use, so a new file only has to register its classes."""

from __future__ import annotations

import importlib
import pkgutil
from typing import Callable, Dict, List

from pcls.errors import PclsError, did_you_mean

_LOSSES: Dict[str, Callable] = {}
_discovered = False


def register_loss(cls=None, *, name: str = None):
    """Register a loss class (an nn.Layer called as `loss(output, target) -> Tensor or dict`)."""

    def add(obj):
        key = name or obj.__name__
        if key in _LOSSES and _LOSSES[key] is not obj:
            raise RuntimeError(f"loss {key} registered twice")
        _LOSSES[key] = obj
        return obj

    return add(cls) if cls is not None else add


def _discover() -> None:
    global _discovered
    if _discovered:
        return
    import pcls.loss as package

    for info in pkgutil.iter_modules(package.__path__):
        if info.name != "registry" and not info.name.startswith("_"):
            importlib.import_module(f"pcls.loss.{info.name}")
    _discovered = True


def list_losses() -> List[str]:
    _discover()
    return sorted(_LOSSES)


def get_loss_class(name: str):
    _discover()
    if name not in _LOSSES:
        raise PclsError(f"unknown loss '{name}' in Loss{did_you_mean(name, _LOSSES)}; known: {', '.join(sorted(_LOSSES))}")
    return _LOSSES[name]


class CombinedLoss:
    """The weighted sum of a config's losses; returns {"loss": total, <name>: weighted part, ...}."""

    def __init__(self, parts):
        self.parts = parts  # [(name, weight, loss_layer)]

    def __call__(self, output, target) -> dict:
        result, total = {}, None
        for name, weight, fn in self.parts:
            value = fn(output, target)
            # a loss may return a dict of named terms (distillation losses do); sum them
            terms = value if isinstance(value, dict) else {name: value}
            for key, term in terms.items():
                term = term * weight
                result[key] = term
                total = term if total is None else total + term
        result["loss"] = total
        return result

    def layers(self):
        """Loss layers that hold trainable parameters (their params join the optimizer)."""
        return [fn for _, _, fn in self.parts if list(fn.parameters())]


def build_loss(entries) -> CombinedLoss:
    """`entries` is a config's Loss.Train / Loss.Eval list: [{"CELoss": {"weight": 1.0, "epsilon": 0.1}}, ...]."""
    if not entries:
        raise PclsError("Loss: no loss configured; add e.g. 'Loss: {Train: [{CELoss: {weight: 1.0}}]}'")
    parts = []
    for entry in entries:
        if not isinstance(entry, dict) or len(entry) != 1:
            raise PclsError(f"Loss: each entry must be one 'Name: {{params}}' map, got {entry!r}")
        (name, params), = entry.items()
        params = dict(params or {})
        weight = float(params.pop("weight", 1.0))
        cls = get_loss_class(name)
        try:
            layer = cls(**params)
        except TypeError as err:
            raise PclsError(f"Loss.{name}: bad parameter ({err})") from err
        parts.append((name, weight, layer))
    return CombinedLoss(parts)

"""The loss registry: `@register_loss` a class under its PaddleClas name; `build_loss` turns a config's
list of `{Name: {weight: w, ...}}` entries into one callable. Loss modules in this package (ce.py,
distillation.py, ...) are discovered on first use, so a new file only has to register its classes."""

from __future__ import annotations

from typing import List

from pcls.errors import PclsError
from pcls.utils.registry import Registry

LOSSES = Registry("loss", where="Loss", package="pcls.loss", skip={"registry"})


def register_loss(cls=None, *, name: str = None):
    """Register a loss class (an nn.Layer called as `loss(output, target) -> Tensor or dict`)."""
    add = LOSSES.register(*([name] if name else []))
    return add(cls) if cls is not None else add


def list_losses() -> List[str]:
    return LOSSES.names()


def get_loss_class(name: str):
    return LOSSES.get(name)


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

    def named_terms(self, result: dict) -> dict:
        """The parts of a __call__ result worth reporting beside the total: every named term, or none for a
        single plain loss (its one part is the total)."""
        terms = {key: value for key, value in result.items() if key != "loss"}
        if len(terms) == 1 and next(iter(terms)) in {name for name, _, _ in self.parts}:
            return {}
        return terms

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

"""The operator registry: PaddleClas operator names -> classes, the Operator base, and config-value helpers."""

from __future__ import annotations

from typing import Any

from pcls.errors import PclsError, did_you_mean, short_repr
from pcls.utils.registry import Registry

OPERATORS = Registry("transform operator", where="transform_ops")
BATCH_OPERATORS = Registry("batch operator", where="batch_transform_ops")


def register_op(cls):
    """Register a per-sample operator under its class name (the name configs use)."""
    return OPERATORS.add(cls.__name__, cls)


def register_batch_op(cls):
    return BATCH_OPERATORS.add(cls.__name__, cls)


class Operator:
    """One per-sample transform. `__call__(img, rng)` gets the sample's numpy Generator.

    Layout: images travel as HWC until an operator says otherwise; `layout_after` tells the pipeline
    what an operator produces, and layout-agnostic operators (masks, erasing) are told via `bind_layout`.
    """

    def __call__(self, img, rng):  # pragma: no cover - interface
        raise NotImplementedError

    def layout_after(self, layout: str) -> str:
        return layout

    def __repr__(self) -> str:
        return type(self).__name__


class SpatialOperator(Operator):
    """An operator that works on either HWC or CHW arrays (mask-style ops applied after NormalizeImage)."""

    chw = False

    def bind_layout(self, layout: str) -> None:
        self.chw = layout == "chw"

    def hw(self, img):
        return (img.shape[1], img.shape[2]) if self.chw else (img.shape[0], img.shape[1])

    def region(self, y0, y1, x0, x1):
        """Index selecting rows y0:y1 and columns x0:x1 over all channels, in this op's layout."""
        if self.chw:
            return (slice(None), slice(y0, y1), slice(x0, x1))
        return (slice(y0, y1), slice(x0, x1))

    def channel_values(self, values, ndim):
        """Per-channel fill values shaped to broadcast against a region of this op's layout."""
        import numpy as np

        arr = np.asarray(values, dtype=np.float32)
        if ndim == 2 or arr.ndim == 0:
            return arr
        return arr.reshape(-1, 1, 1) if self.chw else arr.reshape(1, 1, -1)


class BatchOperator:
    """One batch transform: `__call__(images [N,C,H,W] float32, labels int64 [N], rng) -> (images, targets)`."""


# --- config values -------------------------------------------------------------------------------------

def parse_number(value: Any, what: str) -> float:
    """A number, or an arithmetic string such as "1.0/255.0" (as published configs write NormalizeImage scale)."""
    from pcls.config.expr import parse_number as evaluate  # the one safe parser (never eval())

    try:
        number = evaluate(value)
    except PclsError as err:
        raise PclsError(f"{what}: {err.message}") from None
    if number is None:
        raise PclsError(f"{what}: cannot read {short_repr(value)} as a number; write e.g. 0.00392 or 1.0/255.0")
    return number


def pair(value, what: str):
    """An int size -> (v, v); a two-element list -> tuple (as PaddleClas: [w, h])."""
    if isinstance(value, bool):
        raise PclsError(f"{what}: expected an int or a [w, h] pair, got {short_repr(value)}")
    if isinstance(value, (int, float)):
        return int(value), int(value)
    if isinstance(value, (list, tuple)) and len(value) == 2:
        return int(value[0]), int(value[1])
    raise PclsError(f"{what}: expected an int or a [w, h] pair, got {short_repr(value)}")


def lookup(name: str, table, kind: str):
    if isinstance(table, Registry):
        return table.get(name)
    try:
        return table[name]
    except KeyError:
        raise PclsError(
            f"unknown {kind} {short_repr(name)}{did_you_mean(name, table)}; known: {', '.join(sorted(table))}"
        ) from None


def instantiate(cls, params: dict | None, where: str):
    """Build an operator from its config params, turning bad keys/values into one clear error. Strings PaddleClas
    evaluates (`sh: 1.0/3.0`, `mean: ["0.", ...]`, `clip: None`) are evaluated here, for every operator."""
    from pcls.config.expr import evaluate_strings

    params = evaluate_strings(dict(params or {}), where)
    try:
        return cls(**params)
    except TypeError as err:
        import inspect

        accepted = [p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "kwargs")]
        unknown = [k for k in params if k not in accepted]
        hint = f"unknown parameter(s) {unknown}" if unknown else str(err)
        raise PclsError(f"{where}: {hint}; {cls.__name__} accepts: {', '.join(accepted) or 'no parameters'}") from None
    except PclsError as err:
        raise PclsError(f"{where}: {err.message}") from None
    except (ValueError, AssertionError) as err:
        raise PclsError(f"{where}: {err}") from None

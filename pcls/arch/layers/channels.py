"""The channel-rounding rule of width multipliers (MobileNetV3, PP-LCNet, MixNet, EfficientNet's round_filters,
SE reductions): one function, so every family scales widths the way its published weights were built."""

from __future__ import annotations

from typing import Optional


def make_divisible(value: float, divisor: int = 8, min_value: Optional[int] = None, round_limit: float = 0.9) -> int:
    """Round `value` to the nearest multiple of `divisor` (at least `min_value`), never going below
    `round_limit` x value (the rule MobileNet-style width multipliers use)."""
    min_value = divisor if min_value is None else min_value
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if rounded < round_limit * value:
        rounded += divisor
    return rounded

"""How numbers read for people, in one place: accuracies as percentages (machine output keeps fractions),
rates with the digits that matter, counts with the right plural."""

from __future__ import annotations

from typing import Optional


def percent(fraction: Optional[float], digits: int = 2) -> Optional[str]:
    """0.972 -> '97.20%'; None stays None (a table prints it as '-')."""
    return None if fraction is None else f"{fraction * 100:.{digits}f}%"


def metric_text(name: str, value: float) -> str:
    """A metric for people: an accuracy (`top1`, `val_top5`, ...) as a percentage, anything else (a loss, mAP)
    with four decimals."""
    return percent(value) if "top" in name else f"{value:.4f}"


def rate(value: float) -> str:
    """A throughput with three significant digits, never rounded to nothing: 0.42 -> '0.42', 268.4 -> '268'."""
    if value >= 100:
        return f"{value:.0f}"
    return f"{value:.3g}"


def count(n: int, noun: str, plural: Optional[str] = None) -> str:
    """'1 epoch', '2 epochs'; count(3, "batch", "batches")."""
    return f"{n} {noun}" if n == 1 else f"{n} {plural or noun + 's'}"

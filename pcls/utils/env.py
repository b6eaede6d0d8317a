"""Numeric settings read from the environment ($PCLS_LOADER_TIMEOUT, $PCLS_DOWNLOAD_DEADLINE, ...), checked
one way: unset or blank gives the default, anything but a finite positive number is one line naming the variable."""

from __future__ import annotations

import math
import os

from pcls.errors import PclsError, short_repr


def env_number(name: str, default, what: str, *, integer: bool = False, zero_ok: bool = False):
    """$`name` as a positive number (an int when `integer`; 0 allowed when `zero_ok`), or `default` when unset;
    a PclsError "`name` must be `what`, got '...'" otherwise (`what`: "a positive number of seconds")."""
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = int(text.replace("_", "")) if integer else float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and (value > 0 or (zero_ok and value == 0))):
        raise PclsError(f"{name} must be {what}, got {short_repr(text)}")
    return value

"""The model catalog shipped in the package (pcls/zoo/catalog.json, built by scripts/build_catalog.py).

A catalog row is a pretrained model's metadata: metrics, size, input size and the pre-processing it was
evaluated with. Reading it never imports paddle.
"""

from __future__ import annotations

import fnmatch
import json
from functools import lru_cache
from pathlib import Path

from pcls.errors import PclsError, did_you_mean

CATALOG_PATH = Path(__file__).with_name("catalog.json")


@lru_cache(maxsize=1)
def load_catalog() -> dict:
    """name -> row, for every published model (including variants such as *_ssld)."""
    rows = json.loads(CATALOG_PATH.read_text())
    return {row["name"]: row for row in rows}


def names(pattern: str = "*") -> list:
    return sorted(n for n in load_catalog() if fnmatch.fnmatch(n.lower(), pattern.lower()))


def get_entry(name: str) -> dict:
    """The catalog row of `name`; a PclsError with the closest names when unknown."""
    catalog = load_catalog()
    if name not in catalog:
        raise PclsError(f"unknown model '{name}' in the zoo{did_you_mean(name, catalog)}; see 'pcls zoo list'")
    return catalog[name]


def preprocess_for(arch_name: str) -> dict:
    """Default pre-processing for an architecture: input size, resize-short, mean/std, interpolation.

    Uses the catalog row whose `arch` (or name) is `arch_name`; architectures with no row get the
    ImageNet defaults at 224.
    """
    catalog = load_catalog()
    row = catalog.get(arch_name) or next((r for r in catalog.values() if r.get("arch") == arch_name), None)
    row = row or {}
    input_size = row.get("input_size") or 224
    return {
        "input_size": input_size,
        "resize_short": row.get("resize_short") or int(round(input_size * 256 / 224)),
        "mean": row.get("mean", [0.485, 0.456, 0.406]),
        "std": row.get("std", [0.229, 0.224, 0.225]),
        "interpolation": row.get("interpolation", "bilinear"),
    }

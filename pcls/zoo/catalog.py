"""The model catalog shipped in the package (pcls/zoo/catalog.json, built by scripts/build_catalog.py).

A catalog row is a pretrained model's metadata: metrics, size, input size and the pre-processing it was
evaluated with. Reading it never imports paddle.
"""

from __future__ import annotations

import fnmatch
import json
from functools import lru_cache
from pathlib import Path

from pcls.errors import PclsError, closest

CATALOG_PATH = Path(__file__).with_name("catalog.json")


@lru_cache(maxsize=1)
def load_catalog() -> dict:
    """name -> row, for every published model (including variants such as *_ssld)."""
    rows = json.loads(CATALOG_PATH.read_text())
    return {row["name"]: row for row in rows}


# Documented latency figures, in the order `latency()` prefers them (the most widely reported first).
LATENCY_KEYS = (
    "P4_fluid_fp32_bs1",
    "P4_trt_fp32_bs1",
    "T4_trt_fp32_bs1",
    "T4_trt_fp16_bs1",
    "V100_paddle_fp32_bs1",
)


def names(pattern: str = "*") -> list:
    """Catalog names matching a shell pattern (case-insensitive); a pattern with no wildcard matches
    as a substring, so 'resnet50' finds ResNet50_vd_ssld too."""
    if not any(ch in pattern for ch in "*?["):
        pattern = f"*{pattern}*"
    return sorted(n for n in load_catalog() if fnmatch.fnmatch(n.lower(), pattern.lower()))


def families() -> list:
    return sorted({row["family"] for row in load_catalog().values() if row.get("family")})


def get_entry(name: str) -> dict:
    """The catalog row of `name`; a PclsError with the closest names when unknown."""
    catalog = load_catalog()
    if name in catalog:
        return catalog[name]
    same_but_case = [n for n in catalog if n.lower() == name.lower()]
    close = same_but_case or closest(name, catalog, n=3)
    hint = f" (did you mean {' or '.join(close)}?)" if close else ""
    raise PclsError(f"unknown model '{name}' in the zoo{hint}; see 'pcls zoo list'")


def latency(row: dict):
    """(figure name, milliseconds) of the preferred documented latency of a row, or (None, None)."""
    figures = row.get("latency_ms") or {}
    for key in (*LATENCY_KEYS, *sorted(figures)):
        if figures.get(key) is not None:
            return key, figures[key]
    return None, None


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
        "backend": row.get("backend", "cv2"),
    }


def eval_transform_ops(pre: dict, input_size: int = None) -> list:
    """The evaluation pipeline (PaddleClas operator list) for a model's pre-processing `pre`
    (from preprocess_for): resize-short, centre crop, normalise, CHW. Eval, export and predict all use it."""
    size = int(input_size or pre["input_size"])
    short = int(pre["resize_short"]) if input_size is None else int(round(size * pre["resize_short"] / pre["input_size"]))
    return [
        {"DecodeImage": {"to_rgb": True, "channel_first": False}},
        {"ResizeImage": {"resize_short": short, "interpolation": pre.get("interpolation", "bilinear"),
                         "backend": pre.get("backend", "cv2")}},
        {"CropImage": {"size": size}},
        {"NormalizeImage": {"scale": 1.0 / 255.0, "mean": list(pre["mean"]), "std": list(pre["std"]), "order": ""}},
        {"ToCHWImage": None},
    ]

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


# Documented latency figures, in the order `latency()` prefers them (the most widely reported first).
LATENCY_KEYS = (
    "P4_fluid_fp32_bs1",
    "P4_trt_fp32_bs1",
    "T4_trt_fp32_bs1",
    "T4_trt_fp16_bs1",
    "V100_paddle_fp32_bs1",
    "V100_trt_fp32_bs1",  # the PaddleClas 2.x model pages (V100, TensorRT, FP32)
    "SD855_lite_fp32_bs1_t1",  # their mobile tables (Snapdragon 855, Paddle-Lite, 1 thread)
)


def names(pattern: str = "*") -> list:
    """Catalog names matching a shell pattern (case-insensitive); a pattern with no wildcard matches
    as a substring, so 'resnet50' finds ResNet50_vd_ssld too."""
    if not any(ch in pattern for ch in "*?["):
        pattern = f"*{pattern}*"
    return sorted(n for n in load_catalog() if fnmatch.fnmatch(n.lower(), pattern.lower()))


def families() -> list:
    return sorted({row["family"] for row in load_catalog().values() if row.get("family")})


def complete_names(incomplete: str) -> list:
    """Shell completion for a zoo-name argument: the names starting with `incomplete` (Typer
    keeps only those, case-sensitively)."""
    return [n for n in sorted(load_catalog()) if n.startswith(incomplete)]


def complete_families(incomplete: str) -> list:
    """Shell completion for --family."""
    return [f for f in families() if f.startswith(incomplete)]


def get_entry(name: str) -> dict:
    """The catalog row of `name`; a PclsError with the closest names when unknown."""
    catalog = load_catalog()
    if name in catalog:
        return catalog[name]
    raise PclsError(f"unknown model '{name}' in the zoo{did_you_mean(name, catalog, n=3)}; see 'pcls zoo list'")


def latency(row: dict):
    """(figure name, milliseconds) of the preferred documented latency of a row, or (None, None)."""
    figures = row.get("latency_ms") or {}
    for key in (*LATENCY_KEYS, *sorted(figures)):
        if figures.get(key) is not None:
            return key, figures[key]
    return None, None


def preprocess_for(arch_name: str) -> dict:
    """Default pre-processing for an architecture: input size, resize, mean/std, interpolation, decoding.

    Uses the catalog row whose `arch` (or name) is `arch_name`; architectures with no row get the
    ImageNet defaults at 224. `resize_mode` is "short" (resize the short side to `resize_short`, then
    centre-crop the input size) or "full" (resize the whole image to the input size, no crop: CvT at 384).
    """
    catalog = load_catalog()
    row = catalog.get(arch_name) or next((r for r in catalog.values() if r.get("arch") == arch_name), None)
    row = row or {}
    input_size = row.get("input_size") or 224
    full = row.get("resize_mode") == "full"
    return {
        "input_size": input_size,
        "resize_mode": "full" if full else "short",
        "resize_short": None if full else row.get("resize_short") or int(round(input_size * 256 / 224)),
        "mean": row.get("mean", [0.485, 0.456, 0.406]),
        "std": row.get("std", [0.229, 0.224, 0.225]),
        "interpolation": row.get("interpolation", "bilinear"),
        "backend": row.get("backend", "cv2"),
        "decode_backend": row.get("decode_backend", "cv2"),
        "to_rgb": row.get("to_rgb", True),
    }


def eval_transform_ops(pre: dict, input_size: int = None) -> list:
    """The evaluation pipeline (PaddleClas operator list) for a model's pre-processing `pre`
    (from preprocess_for): resize (short side + centre crop, or whole image), normalise, CHW.
    Eval, export and predict all use it."""
    size = int(input_size or pre["input_size"])
    decode = {"to_rgb": pre.get("to_rgb", True), "channel_first": False}
    if pre.get("decode_backend", "cv2") != "cv2":
        decode["backend"] = pre["decode_backend"]
    resampling = {"interpolation": pre.get("interpolation", "bilinear"), "backend": pre.get("backend", "cv2")}
    if pre.get("resize_mode") == "full":
        resize = [{"ResizeImage": {"size": size, **resampling}}]
    else:
        short = int(pre["resize_short"]) if input_size is None else \
            int(round(size * pre["resize_short"] / pre["input_size"]))
        resize = [{"ResizeImage": {"resize_short": short, **resampling}}, {"CropImage": {"size": size}}]
    return [
        {"DecodeImage": decode},
        *resize,
        {"NormalizeImage": {"scale": 1.0 / 255.0, "mean": list(pre["mean"]), "std": list(pre["std"]), "order": ""}},
        {"ToCHWImage": None},
    ]

"""The pre-processing an export serialises into inference.yml, made to take any image: a pipeline with no
fixed-size step (PaddleClas's demo-style `Infer.transforms`: decode + normalise) gets resize-short + center-crop at
the trained size; `--image-size N` rescales the pipeline's sizes to N. Sizes are (height, width): an operator's
`size` is PaddleClas's int or [w, h]."""

from __future__ import annotations

import copy
from typing import List, Optional, Tuple

from pcls.errors import PclsError

FIXED_SIZE_OPS = ("CropImage", "RandCropImage", "ResizeImage")


def _name_params(op) -> Tuple[str, dict]:
    (name, params), = op.items()
    return name, params or {}


def input_size_of(ops) -> Optional[Tuple[int, int]]:
    """The model input (height, width) a pre-processing list ends with: the last crop's or fixed resize's `size`."""
    for op in reversed(ops or []):
        name, params = _name_params(op)
        if name in FIXED_SIZE_OPS and params.get("size"):
            size = params["size"]
            return (int(size), int(size)) if isinstance(size, int) else (int(size[1]), int(size[0]))
    return None


def with_image_size(ops: List[dict], size: int) -> List[dict]:
    """`ops` with every crop/fixed resize set to `size` and resize-short scaled by the same ratio."""
    old = input_size_of(ops)
    if old and old[0] != old[1]:
        raise PclsError(f"--image-size sets a square input, but this pipeline's is {old[0]}x{old[1]} (height x "
                        "width); leave --image-size out, or change the sizes in the config's transforms")
    old = old[0] if old else None
    result = []
    for op in copy.deepcopy(ops):
        name, params = _name_params(op)
        if name in FIXED_SIZE_OPS and params.get("size"):
            params["size"] = int(size)
        if name == "ResizeImage" and params.get("resize_short") and old:
            params["resize_short"] = int(round(params["resize_short"] * size / old))
        result.append({name: params or None})
    return result


def taking_any_image(ops: List[dict], size: Tuple[int, int]) -> Tuple[List[dict], Optional[str]]:
    """(ops, note): `ops` unchanged when they end at a fixed size; else with resize-short and a center crop at
    `size` (height, width) added (after the last resize-short, or after decoding), and the note that says so."""
    if input_size_of(ops) is not None:
        return ops, None
    ops = copy.deepcopy(ops)
    names = [_name_params(op)[0] for op in ops]
    height, width = size
    crop = {"CropImage": {"size": height if height == width else [width, height]}}
    size = height if height == width else f"{height}x{width}"  # for the note; resize-short covers the crop
    short_side = max(height, width)
    short = [i for i, (n, p) in enumerate(map(_name_params, ops)) if n == "ResizeImage" and p.get("resize_short")]
    if short:
        ops.insert(short[-1] + 1, crop)
        return ops, f"added CropImage size {size} after ResizeImage resize_short (the pipeline had no crop)"
    at = names.index("DecodeImage") + 1 if "DecodeImage" in names else 0
    ops[at:at] = [{"ResizeImage": {"resize_short": short_side}}, crop]
    return ops, (f"added ResizeImage resize_short {short_side} + CropImage {size} after decoding (the pipeline had no "
                 "resize, so it took only images of the trained size)")

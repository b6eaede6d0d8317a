"""inference.yml in the form PaddleX 3's image-classification predictor reads, both ways.

PaddleX (and PaddleClas's own exports) describe a classifier as `Global.model_name` in PaddleX's spelling
(`PP-LCNet_x1_0`; `paddlex.create_model` refuses a folder whose name differs from the one asked for),
`PreProcess.transform_ops` holding only ResizeImage / CropImage / NormalizeImage / ToCHWImage (PaddleX reads the
image itself, as RGB with OpenCV, and refuses any other operator or argument) and `PostProcess: {Topk: {topk,
label_list}}` (every key of PostProcess is an operator to PaddleX).

`paddlex_spec` rewrites what pcls's export writes into that form whenever it can be said exactly (an export whose
pre- or post-processing PaddleX has no operator for keeps pcls's form); `pcls_spec` reads either form back, so
`pcls predict/serve/bench` take official PaddleClas/PaddleX inference folders as they are published.
"""

from __future__ import annotations

import copy
import re
from typing import Optional

from pcls.config.expr import parse_number  # the one safe arithmetic parser (never eval())

# PaddleX 3's image-classification models (paddlex/modules/image_classification/model_list.py): the names
# `create_model` accepts for a classifier folder
PADDLEX_MODELS = frozenset([
    "CLIP_vit_base_patch16_224", "CLIP_vit_large_patch14_224",
    "ConvNeXt_tiny", "ConvNeXt_small", "ConvNeXt_base_224", "ConvNeXt_base_384", "ConvNeXt_large_224",
    "ConvNeXt_large_384",
    "MobileNetV1_x0_25", "MobileNetV1_x0_5", "MobileNetV1_x0_75", "MobileNetV1_x1_0",
    "MobileNetV2_x0_25", "MobileNetV2_x0_5", "MobileNetV2_x1_0", "MobileNetV2_x1_5", "MobileNetV2_x2_0",
    "MobileNetV3_large_x0_35", "MobileNetV3_large_x0_5", "MobileNetV3_large_x0_75", "MobileNetV3_large_x1_0",
    "MobileNetV3_large_x1_25", "MobileNetV3_small_x0_35", "MobileNetV3_small_x0_5", "MobileNetV3_small_x0_75",
    "MobileNetV3_small_x1_0", "MobileNetV3_small_x1_25",
    "PP-HGNet_tiny", "PP-HGNet_small", "PP-HGNet_base",
    "PP-HGNetV2-B0", "PP-HGNetV2-B1", "PP-HGNetV2-B2", "PP-HGNetV2-B3", "PP-HGNetV2-B4", "PP-HGNetV2-B5",
    "PP-HGNetV2-B6",
    "PP-LCNet_x0_25", "PP-LCNet_x0_35", "PP-LCNet_x0_5", "PP-LCNet_x0_75", "PP-LCNet_x1_0", "PP-LCNet_x1_5",
    "PP-LCNet_x2_0", "PP-LCNet_x2_5", "PP-LCNetV2_small", "PP-LCNetV2_base", "PP-LCNetV2_large",
    "ResNet18", "ResNet34", "ResNet50", "ResNet101", "ResNet152",
    "ResNet18_vd", "ResNet34_vd", "ResNet50_vd", "ResNet101_vd", "ResNet152_vd", "ResNet200_vd",
    "SwinTransformer_tiny_patch4_window7_224", "SwinTransformer_small_patch4_window7_224",
    "SwinTransformer_base_patch4_window7_224", "SwinTransformer_base_patch4_window12_384",
    "SwinTransformer_large_patch4_window7_224", "SwinTransformer_large_patch4_window12_384",
])
# pcls (PaddleClas) architecture names whose PaddleX spelling differs by more than the PP- prefix rules below
_RENAMED = {"MobileNetV1": "MobileNetV1_x1_0", "MobileNetV2": "MobileNetV2_x1_0"}
_PREFIXES = (("PPHGNetV2_", "PP-HGNetV2-"), ("PPLCNetV2_", "PP-LCNetV2_"), ("PPHGNet_", "PP-HGNet_"),
             ("PPLCNet_", "PP-LCNet_"))
# interpolation: pcls/PaddleClas spelling <-> PaddleX's (upper-cased by PaddleX, then looked up per backend)
_INTERP_CV2 = {"nearest": "NEAREST", "bilinear": "LINEAR", "bicubic": "BICUBIC", "area": "AREA", "lanczos": "LANCZOS4"}
_INTERP_PIL = {"nearest": "NEAREST", "bilinear": "BILINEAR", "bicubic": "BICUBIC", "box": "BOX", "lanczos": "LANCZOS4"}
_FROM_PADDLEX_INTERP = {"NEAREST": "nearest", "LINEAR": "bilinear", "BILINEAR": "bilinear", "BICUBIC": "bicubic",
                        "CUBIC": "bicubic", "AREA": "area", "BOX": "box", "LANCZOS4": "lanczos"}
# the arguments PaddleX's ClasPredictor builders take (any other makes it fail)
_PADDLEX_ARGS = {"ResizeImage": {"resize_short", "size", "backend", "interpolation"}, "CropImage": {"size"},
                 "NormalizeImage": {"mean", "std", "scale", "order", "channel_num"}, "ToCHWImage": set()}
# PaddleX reads the image with OpenCV as RGB: the decode step its pipelines imply
PADDLEX_DECODE = {"DecodeImage": {"to_rgb": True, "channel_first": False}}
PCLS_NAME_KEY = "pcls_model_name"  # Global: pcls's own name when model_name holds PaddleX's


def paddlex_name(arch: str) -> Optional[str]:
    """PaddleX's name for a pcls architecture, None when PaddleX has no such classifier."""
    name = _RENAMED.get(arch, arch)
    for ours, theirs in _PREFIXES:
        if name.startswith(ours):
            name = theirs + name[len(ours):]
            break
    return name if name in PADDLEX_MODELS else None


def pcls_name(name: str) -> str:
    """pcls's architecture name for a PaddleX model name (the name itself when it is not PaddleX's)."""
    for ours, theirs in _PREFIXES:
        if name.startswith(theirs):
            return ours + name[len(theirs):]
    return {v: k for k, v in _RENAMED.items()}.get(name, name)


def _paddlex_ops(ops: list) -> Optional[list]:
    """pcls's operator list in PaddleX's terms, or None when PaddleX would run it differently or not at all."""
    if not ops or not _plain_decode(ops[0]):
        return None
    out = []
    for op in ops[1:]:
        name, args = _op(op)
        if name not in _PADDLEX_ARGS or not set(args) <= _PADDLEX_ARGS[name]:
            return None
        args = dict(args)
        if name == "ResizeImage":
            backend = args.get("backend") or "cv2"
            names = _INTERP_CV2 if backend == "cv2" else _INTERP_PIL if backend == "pil" else {}
            interp = str(args.get("interpolation") or "bilinear").lower()
            if interp not in names:
                return None
            args.update(backend=backend, interpolation=names[interp])
        if name == "NormalizeImage":
            if args.get("order", "") != "" or int(args.get("channel_num", 3)) != 3:
                return None
            scale = parse_number(args.get("scale", 1 / 255))  # PaddleX takes a number, not "1.0/255.0"
            if scale is None:
                return None
            args["scale"] = scale
        out.append({name: args or None})
    if not any(_op(op)[0] == "ResizeImage" for op in out):  # PaddleX's classifier always resizes
        return None
    if _op(out[-1])[0] != "ToCHWImage":
        out.append({"ToCHWImage": None})
    return out


def _plain_decode(op) -> bool:
    name, args = _op(op)
    return (name == "DecodeImage" and args.get("to_rgb", True) and not args.get("channel_first", False)
            and (args.get("backend") or "cv2") == "cv2" and set(args) <= {"to_rgb", "channel_first", "backend", "to_np"})


def _op(op) -> tuple:
    name = next(iter(op))
    return name, dict(op[name] or {})


def paddlex_spec(spec: dict, label_names: Optional[list]) -> dict:
    """The spec pcls's export built, rewritten so PaddleX reads it too; unchanged when PaddleX cannot run it as
    pcls does (another decoder or colour order, an operator or post-process PaddleX lacks)."""
    post = spec.get("PostProcess") or {}
    if post.get("name", "Topk") != "Topk" or set(post) - {"name", "topk", "class_id_map_file"}:
        return spec
    ops = _paddlex_ops(spec["PreProcess"]["transform_ops"])
    if ops is None:
        return spec
    out = copy.deepcopy(spec)
    theirs = paddlex_name(spec["Global"]["model_name"])
    if theirs:
        out["Global"][PCLS_NAME_KEY] = spec["Global"]["model_name"]
        out["Global"]["model_name"] = theirs
    out["PreProcess"] = {"transform_ops": ops}
    topk = {"topk": int(post["topk"])}
    if label_names:
        topk["label_list"] = list(label_names)
    out["PostProcess"] = {"Topk": topk}
    return out


def pcls_spec(spec: dict) -> dict:
    """An inference.yml in pcls's form: PaddleX's/PaddleClas's form (above) is translated, pcls's own is returned
    as it is. The labels of a `Topk.label_list` go to `spec["label_list"]`."""
    if not isinstance(spec, dict) or not isinstance(spec.get("PreProcess"), dict):
        return spec
    post = spec.get("PostProcess")
    ops = spec["PreProcess"].get("transform_ops")
    paddlex_post = isinstance(post, dict) and isinstance(post.get("Topk"), dict)
    paddlex_ops = isinstance(ops, list) and ops and isinstance(ops[0], dict) and _op(ops[0])[0] != "DecodeImage"
    if not (paddlex_post or paddlex_ops):
        return spec
    out = copy.deepcopy(spec)
    header = out.setdefault("Global", {}) or {}
    out["Global"] = header
    if paddlex_ops:
        out["PreProcess"]["transform_ops"] = [PADDLEX_DECODE] + [_from_paddlex_op(op) for op in ops]
    if paddlex_post:
        topk = post["Topk"]
        # a label file named beside Topk (not PaddleX's, which takes only operators there) is pcls's to read
        out["PostProcess"] = {"name": "Topk", "topk": topk.get("topk", 5),  # its type: read_spec's check
                              "class_id_map_file": post.get("class_id_map_file")}
        out["label_list"] = topk.get("label_list")
    if header.get("model_name"):
        header["model_name"] = header.get(PCLS_NAME_KEY) or pcls_name(str(header["model_name"]))
    if "input_size" not in header:
        size = _input_size(out["PreProcess"]["transform_ops"])
        if size is not None:
            header["input_size"] = size
    return out


def _from_paddlex_op(op) -> dict:
    name, args = _op(op)
    if name == "ResizeImage" and isinstance(args.get("interpolation"), str):
        args["interpolation"] = _FROM_PADDLEX_INTERP.get(args["interpolation"].upper(), args["interpolation"])
    return {name: args or None}


def _input_size(ops: list):
    """The model's input size from the last crop or fixed resize (official folders do not state it): an int when
    square, [height, width] from an operator's [w, h] else (PULC's 256x192 attribute models)."""
    size = None
    for op in ops:
        name, args = _op(op)
        value = args.get("size") if name in ("CropImage", "ResizeImage") else None
        if value is not None:
            size = value
    if isinstance(size, (list, tuple)) and len(size) == 2:
        width, height = (_side(v) for v in size)
        return None if None in (width, height) else width if width == height else [height, width]
    return _side(size)


def _side(value) -> Optional[int]:
    return int(value) if isinstance(value, int) or (isinstance(value, str) and re.fullmatch(r"\d+", value)) else None

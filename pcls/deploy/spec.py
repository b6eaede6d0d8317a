"""`inference.yml`: everything prediction needs, written beside every export and read by the predictor.

The pre-processing is stored as the PaddleClas operator list the model was evaluated with, and the predictor
builds it with the same operator classes as `pcls eval`: one implementation, serialised into the export.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Optional, Sequence, Tuple, Union

import yaml

from pcls.deploy.paddlex_format import paddlex_spec, pcls_spec
from pcls.errors import PclsError
from pcls.utils.io import atomic_write_text, read_text

SPEC_FILE = "inference.yml"
MODEL_PREFIX = "inference"
LABELS_FILE = "labels.txt"
ONNX_FILE = "inference.onnx"
INT8_ONNX_FILE = "inference.int8.onnx"
TRT_DIR_PREFIX = "trt_"  # trt_<precision>/: a TensorRT conversion; trt_legacy_<precision>/: a legacy engine cache
ORT_TRT_CACHE = "ort_trt_cache"  # ONNX Runtime's TensorRT engines
# The marker that says "pcls wrote this folder": `Global.pcls_export` in inference.yml (format version), with the
# list of files the export wrote in `Global.files`. Folders pcls creates later beside them (TensorRT conversions,
# ONNX Runtime's engine cache) are recognised by these names.
EXPORT_MARKER = "pcls_export"
EXPORT_FORMAT_VERSION = 1
# exactly the names pcls writes there (a conversion, its lock, a legacy engine cache, ORT's cache): a user's
# `trt_notes.txt` beside them is not pcls's to replace
GENERATED_NAME = re.compile(rf"{TRT_DIR_PREFIX}(legacy_)?(fp32|fp16|int8)(\.lock)?|{ORT_TRT_CACHE}")
EXPORT_FILE_NAMES = frozenset({SPEC_FILE, LABELS_FILE, ONNX_FILE, INT8_ONNX_FILE, f"{MODEL_PREFIX}.json",
                               f"{MODEL_PREFIX}.pdmodel", f"{MODEL_PREFIX}.pdiparams"})
IMAGENET_LABELS = Path(__file__).resolve().parents[1] / "zoo" / "imagenet1k_labels.txt"


def input_hw(size: Union[int, Sequence[int]]) -> Tuple[int, int]:
    """A model input size as (height, width): `Global.input_size` is an int for a square input, [h, w] else."""
    if isinstance(size, (list, tuple)):
        height, width = size
        return int(height), int(width)
    return int(size), int(size)


def spec_input_size(size: Union[int, Sequence[int]]) -> Union[int, list]:
    """`Global.input_size` as inference.yml writes it: an int when square (what every reader, PaddleX's too,
    expects), [h, w] only for a non-square input (PULC's 256x192 attribute models)."""
    height, width = input_hw(size)
    return height if height == width else [height, width]


def size_text(size: Union[int, Sequence[int]]) -> str:
    """'224' or '256x192' (height x width) for messages and tables."""
    height, width = input_hw(size)
    return str(height) if height == width else f"{height}x{width}"


def read_label_file(path) -> list:
    """Labels from a PaddleClas class_id_map file ('id name' per line) or plain one-name-per-line text."""
    path = Path(path)
    if not path.is_file():
        raise PclsError(f"label file not found: {path}")
    names = {}
    plain = []
    for line in read_text(path, "labels file").splitlines():  # not UTF-8: one line
        line = line.strip()
        if not line:
            continue
        head, _, rest = line.partition(" ")
        if head.isdigit() and rest:
            names[int(head)] = rest.strip()
        else:
            plain.append(line)
    if names and plain:
        raise PclsError(f"{path}: mixes 'id name' lines with plain names; use one format")
    if names:
        return [names.get(i, str(i)) for i in range(max(names) + 1)]
    return plain


def write_spec(out_dir, *, model_name: str, input_size: Union[int, Sequence[int]], transform_ops: list, class_num: int,
               label_names: Optional[list], topk: int, batch_size: Optional[int], fmt: str,
               precision: str = "fp32", source_weights: Optional[str] = None, extra: Optional[dict] = None,
               postprocess: Optional[dict] = None) -> dict:
    """Write inference.yml (and labels.txt) into `out_dir`; `Global.files` lists every file of the export."""
    out_dir = Path(out_dir)
    if label_names:
        atomic_write_text(out_dir / LABELS_FILE, "".join(f"{i} {name}\n" for i, name in enumerate(label_names)))
    files = sorted({p.name for p in out_dir.iterdir() if not p.name.startswith(".")} | {SPEC_FILE})
    spec = {
        "Global": {
            EXPORT_MARKER: EXPORT_FORMAT_VERSION,
            "files": files,
            "model_name": model_name,
            "input_size": spec_input_size(input_size),
            "batch_size": batch_size,  # None: dynamic
            "format": fmt,
            "precision": precision,
            "class_num": int(class_num),
            "weights": source_weights,
            **(extra or {}),
        },
        "PreProcess": {"transform_ops": transform_ops},
        # `postprocess`: a config's Infer.PostProcess (ThreshOutput's threshold, ...; pcls.deploy.postprocess)
        "PostProcess": {"name": "Topk", **(postprocess or {}), "topk": int(topk),
                        "class_id_map_file": LABELS_FILE if label_names else None},
    }
    spec = paddlex_spec(spec, label_names)  # the same file read by PaddleX 3 (pcls.deploy.paddlex_format)
    atomic_write_text(out_dir / SPEC_FILE, yaml.safe_dump(spec, sort_keys=False, default_flow_style=None))
    return spec


def export_owned_names(model_dir) -> Optional[set]:
    """The names pcls wrote in `model_dir` when it holds a pcls export, else None (not an export).

    Exports written before the marker existed are recognised by a readable spec with the usual sections; their
    files are the ones an export of that time could write.
    """
    model_dir = Path(model_dir)
    try:
        spec = yaml.safe_load((model_dir / SPEC_FILE).read_text(encoding="utf-8"))
        header = spec["Global"]
        spec["PreProcess"]["transform_ops"], header["model_name"]
    except (OSError, UnicodeDecodeError, yaml.YAMLError, KeyError, TypeError):
        return None
    if header.get(EXPORT_MARKER):
        files = header.get("files") or []
        if not isinstance(files, list) or not all(isinstance(name, str) for name in files):
            raise PclsError(f"{model_dir / SPEC_FILE}: Global.files must be a list of file names, got "
                            f"{_short(files)}; fix it, or move the folder away and export again")
        # only names an export can write: a hand-edited list never makes pcls replace (delete) a user's file
        names = (set(files) & EXPORT_FILE_NAMES) | {SPEC_FILE}
    else:
        names = EXPORT_FILE_NAMES
    generated = {p.name for p in model_dir.iterdir() if GENERATED_NAME.fullmatch(p.name)}
    return names | generated


def _short(value, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def model_files(model_dir):
    """(graph, params) of the Paddle inference model in an export folder: PIR `.json` or legacy `.pdmodel`."""
    model_dir = Path(model_dir)
    params = model_dir / f"{MODEL_PREFIX}.pdiparams"
    for suffix in (".json", ".pdmodel"):
        graph = model_dir / f"{MODEL_PREFIX}{suffix}"
        if graph.exists():
            return graph, params
    raise PclsError(f"{model_dir} holds no Paddle inference model ({MODEL_PREFIX}.json / .pdmodel)")


def export_folder(target: str) -> Optional[Path]:
    """A MODEL argument as an export folder, or None when it is a zoo/backbone name. An argument that looks like
    a path but is no export is refused, so a mistyped folder is not taken for a name."""
    path = Path(target)
    if (path / SPEC_FILE).exists():
        return path
    looks_like_path = "/" in target or target.startswith(".") or target.endswith(("/", "\\"))
    if looks_like_path and not path.exists():
        raise PclsError(f"model folder {target} not found: export one with 'pcls export', or give a zoo model name")
    if path.exists() and not (path / SPEC_FILE).exists():
        raise PclsError(f"{path} is not an exported model folder (no {SPEC_FILE}) nor a training run (no config.yaml "
                        f"or weights); create an export with 'pcls export'")
    return None


def read_spec(model_dir) -> dict:
    model_dir = Path(model_dir)
    path = model_dir / SPEC_FILE
    if not path.is_file():
        raise PclsError(f"{model_dir} has no {SPEC_FILE}: export it with 'pcls export' first")
    try:
        spec = pcls_spec(yaml.safe_load(path.read_text(encoding="utf-8")))  # also PaddleX's/PaddleClas's form
        spec["Global"]["input_size"], spec["PreProcess"]["transform_ops"], spec["PostProcess"]["topk"]
    except (yaml.YAMLError, KeyError, TypeError) as err:
        raise PclsError(f"{path} is not a pcls inference spec ({err}); re-export the model") from None
    _check_types(spec, path)
    label_file = spec["PostProcess"].get("class_id_map_file")
    spec["labels"] = read_label_file(model_dir / label_file) if label_file else spec.pop("label_list", None)
    class_num = spec["Global"].get("class_num")
    if spec["labels"] and class_num and len(spec["labels"]) != int(class_num):
        raise PclsError(f"{model_dir / label_file} has {len(spec['labels'])} names but the model has {class_num} "
                        "classes; re-export with a matching --labels file")
    return spec


# The fields prediction reads, with the type each must have: a hand-edited spec fails here in one line, not later
# in a traceback.
SPEC_TYPES = {("Global", "files"): list, ("Global", "class_num"): int,
              ("Global", "batch_size"): int, ("PreProcess", "transform_ops"): list, ("PostProcess", "topk"): int}


def _check_types(spec: dict, path: Path) -> None:
    if not all(isinstance(spec.get(section), dict) for section in ("Global", "PreProcess", "PostProcess")):
        raise PclsError(f"{path}: Global, PreProcess and PostProcess must be mappings; re-export the model")
    for (section, key), kind in SPEC_TYPES.items():
        value = spec[section].get(key)
        if value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
            raise PclsError(f"{path}: {section}.{key} must be {'a list' if kind is list else 'an integer'}, got "
                            f"{_short(value)}; fix it or re-export the model")
    size = spec["Global"]["input_size"]
    square = isinstance(size, int) and not isinstance(size, bool)
    pair = isinstance(size, list) and len(size) == 2 and all(type(v) is int for v in size)
    if not (square or pair) or min(input_hw(size)) < 1:
        raise PclsError(f"{path}: Global.input_size must be an integer or [height, width], got {_short(size)}; "
                        "fix it or re-export the model")

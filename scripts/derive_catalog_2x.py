"""Derive tests/reference/zoo_catalog_2x.json: the catalog rows of the 112 PaddleClas 2.x models.

Run once when the reference docs change (python scripts/derive_catalog_2x.py); scripts/build_catalog.py then
merges the result with the seeds' catalog into pcls/zoo/catalog.json. Sources, all inside the repository:

- tests/reference/model_specs_2x.txt and model_urls_2x.json: the models and their pretrained URLs;
- tests/reference/paddleclas_docs/: top-1/top-5, FLOPs, params, latency and the URLs of the `_ssld` and
  `_ssld_stage1` variants, read off the model tables (README.md, the whole table, first; then each family page);
- EVAL below: the evaluation pre-processing of PaddleClas 2.6's own ImageNet config for each model
  (`ppcls/configs/ImageNet/<Family>/<Model>.yaml`, its DataLoader.Eval transform_ops), written down as facts.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "tests" / "reference"
DOCS = REFERENCE / "paddleclas_docs"
TARGET = REFERENCE / "zoo_catalog_2x.json"

IMAGENET = {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}
ZERO_ONE = {"mean": [0.0, 0.0, 0.0], "std": [1.0, 1.0, 1.0]}  # MobileViT*: pixels / 255, nothing subtracted
HALF = {"mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]}
PIL_BICUBIC = {"interpolation": "bicubic", "backend": "pil"}
PIL_BILINEAR = {"interpolation": "bilinear", "backend": "pil"}
CV2_BILINEAR = {"interpolation": "bilinear", "backend": "cv2"}

# model-name prefix -> (family, the folder of its configs under ppcls/configs/ImageNet/); longest prefix wins.
FAMILIES = {
    "PPHGNetV2_": ("PP-HGNetV2", "PPHGNetV2"),
    "PPHGNet_": ("PP-HGNet", "PPHGNet"),
    "PPLCNetV2_": ("PP-LCNetV2", "PPLCNetV2"),
    "ConvNeXt_": ("ConvNeXt", "ConvNeXt"),
    "SwinTransformerV2_": ("SwinTransformerV2", "SwinTransformerV2"),
    "CSWinTransformer_": ("CSWinTransformer", "CSWinTransformer"),
    "PVT_V2_": ("PVTV2", "PVTV2"),
    "CvT_": ("CvT", "CvT"),
    "MobileViT_": ("MobileViT", "MobileViT"),
    "MobileViTV2_": ("MobileViTV2", "MobileViTV2"),
    "MobileViTV3_": ("MobileViTV3", "MobileViTV3"),
    "FasterNet_": ("FasterNet", "FasterNet"),
    "NextViT_": ("NextViT", "NextViT"),
    "UniFormer_": ("UniFormer", "UniFormer"),
    "VAN_": ("VAN", "VAN"),
    "TinyNet_": ("TinyNet", "TinyNet"),
    "ESNet_": ("ESNet", "ESNet"),
    "MicroNet_": ("MicroNet", "MicroNet"),
    "StarNet_": ("StarNet", "StarNet"),
    "DSNet_": ("DSNet", "DSNet"),
    "CSPDarkNet53": ("CSPNet", "CSPNet"),
    "EfficientNetV2_": ("EfficientNetV2", "EfficientNetV2"),
    "MobileNeXt_": ("MobileNeXt", "MobileNeXt"),
    "PeleeNet": ("PeleeNet", "PeleeNet"),
    "MobileNetV4_": ("MobileNetV4", "MobileNetV4"),
}

# Evaluation pre-processing per family, from the family's PaddleClas 2.6 configs: resize the short side to
# `resize_short` (None: the rule below), centre-crop the input size, normalise. `decode_backend: pil` where
# the config decodes with PIL, `to_rgb: False` where it keeps OpenCV's BGR order.
EVAL = {
    "PP-HGNet": {"resize_short": 232, **PIL_BICUBIC, **IMAGENET},
    "PP-HGNetV2": {"resize_short": 232, **PIL_BICUBIC, **IMAGENET},
    "PP-LCNetV2": {"resize_short": 256, **CV2_BILINEAR, **IMAGENET},
    "ConvNeXt": {"resize_short": 256, **PIL_BICUBIC, **IMAGENET},  # 384 models: 384 (see RESIZE_AT_384)
    "SwinTransformerV2": {"resize_short": 292, **PIL_BICUBIC, **IMAGENET},
    "CSWinTransformer": {"resize_short": 248, **PIL_BICUBIC, **IMAGENET},
    "PVTV2": {"resize_short": 256, **PIL_BICUBIC, **IMAGENET},
    "CvT": {"resize_short": 256, **PIL_BICUBIC, **IMAGENET, "decode_backend": "pil"},
    "MobileViT": {"resize_short": 292, **PIL_BILINEAR, **ZERO_ONE, "to_rgb": False},
    "MobileViTV2": {"resize_short": 288, **PIL_BICUBIC, **ZERO_ONE, "decode_backend": "pil"},
    "MobileViTV3": {"resize_short": 288, **CV2_BILINEAR, **ZERO_ONE},  # the x0_5..x1_0 ones: see PER_MODEL
    "FasterNet": {"resize_short": 248, **PIL_BICUBIC, **IMAGENET, "decode_backend": "pil"},
    "NextViT": {"resize_short": 256, **PIL_BICUBIC, **IMAGENET},
    "UniFormer": {"resize_short": 248, **PIL_BICUBIC, **IMAGENET},
    "VAN": {"resize_short": 248, **PIL_BICUBIC, **HALF},
    "TinyNet": {**PIL_BICUBIC, **IMAGENET, "decode_backend": "pil"},  # resize_short per model
    "ESNet": {"resize_short": 256, **CV2_BILINEAR, **IMAGENET},
    "MicroNet": {"resize_short": 256, **PIL_BILINEAR, **IMAGENET},
    "StarNet": {"resize_short": 256, **PIL_BICUBIC, **IMAGENET, "decode_backend": "pil"},
    "DSNet": {"resize_short": 248, **PIL_BICUBIC, **IMAGENET},
    "CSPNet": {"resize_short": 288, **CV2_BILINEAR, **IMAGENET},
    "EfficientNetV2": {**CV2_BILINEAR, "mean": [128 / 255] * 3, "std": [128 / 255] * 3},
    "MobileNeXt": {"resize_short": 256, **PIL_BICUBIC, **IMAGENET, "decode_backend": "pil"},
    "PeleeNet": {"resize_short": 256, **PIL_BILINEAR, **IMAGENET},
    "MobileNetV4": {**PIL_BICUBIC, **IMAGENET},  # resize_short = crop = input size
}
# Families whose 384 models resize the short side straight to 384 (no margin for the crop).
RESIZE_AT_384 = {"ConvNeXt", "SwinTransformerV2", "CSWinTransformer", "NextViT"}
_V2_STYLE_V3 = {"resize_short": 288, **PIL_BICUBIC, **ZERO_ONE, "decode_backend": "pil"}
PER_MODEL = {
    "TinyNet_A": {"resize_short": 219},
    "TinyNet_B": {"resize_short": 214},
    "TinyNet_C": {"resize_short": 210},
    "TinyNet_D": {"resize_short": 173},
    "TinyNet_E": {"resize_short": 121},
    "MobileViTV3_x0_5": _V2_STYLE_V3,
    "MobileViTV3_x0_75": _V2_STYLE_V3,
    "MobileViTV3_x1_0": _V2_STYLE_V3,
    # CvT's 384 models resize the whole image to 384 x 384 (aspect not kept) and do not crop
    **{f"CvT_{v}_384": {"resize_short": None, "resize_mode": "full"} for v in ("13", "21", "W24")},
    # EfficientNetV2_S is evaluated at 384 (its reference fixture runs at 224): CropImageAtRatio(size 384,
    # pad 32) takes the centre square of 384/416 of the short side and resizes it to 384, which is resize-short
    # 416 + centre crop 384 up to rounding.
    "EfficientNetV2_S": {"input_size": 384, "resize_short": 416,
                         "preprocess_note": "PaddleClas evaluates with CropImageAtRatio(size=384, pad=32); pcls "
                                            "uses resize-short 416 + centre crop 384, the same up to rounding"},
}

VARIANT_SUFFIXES = ("_ssld", "_ssld_stage1")
URL_PATTERN = re.compile(r"https://[^)\s]+?/([A-Za-z0-9_]+)_pretrained\.pdparams")


def family_of(name: str):
    prefix = max((p for p in FAMILIES if name.startswith(p)), key=len, default=None)
    if prefix is None:
        raise SystemExit(f"no family known for {name}: add its prefix to FAMILIES")
    return FAMILIES[prefix]


# -- reading the model tables of the docs --------------------------------------------------------------------
def _clean(cell: str) -> str:
    cell = re.sub(r"<sup>.*?</sup>", "", cell)
    cell = re.sub(r"<br\s*/?>", " ", cell)
    cell = re.sub(r"</?[a-z]+[^>]*>", "", cell)
    return cell.strip()


def _number(text: str):
    try:
        return float(text)
    except ValueError:
        return None  # '-', empty, or a link cell


def _column_meaning(header: str):
    """(field, unit) of a table column, or None for columns the catalog does not keep."""
    text = _clean(header).lower().replace(" ", "")
    if text.startswith("time") and "<sup>" in header:  # footnoted timings are Intel CPU ones: not kept
        return None
    if "reference" in text or "gain" in text:
        return None
    if text.startswith(("top-1", "top1")):
        return "top1", None
    if text.startswith(("top-5", "top5")):
        return "top5", None
    if text.startswith("flops"):
        return "flops_g", 1e-3 if "(m)" in text else 1.0
    if text.startswith("params"):
        return "params_m", 1.0
    server = re.fullmatch(r"time\(ms\)bs=(\d+)", text)  # README: V100, FP32 + TensorRT
    if server:
        return f"latency:V100_trt_fp32_bs{server.group(1)}", None
    mobile = re.fullmatch(r"sd855time\(ms\)bs=1,thread=(\d+)", text)  # README: Snapdragon 855, Paddle-Lite
    if mobile:
        return f"latency:SD855_lite_fp32_bs1_t{mobile.group(1)}", None
    return None


def _row_models(cell: str, line: str) -> list:
    """The names a table row may be about, the likeliest first: the weights it links when it links one file
    (README's "ShuffleNetV2" row is ShuffleNetV2_x1_0; a Swin row footnoted "[1]" is the _22kto1k weights), then
    the name in its first cell ("MobileNetV3_large_<br>x0_5" is MobileNetV3_large_x0_5). A footnoted row that
    links nothing gives none: its figures are a variant's the cell does not name (SwinTransformer.md's 22k rows)."""
    linked = sorted(set(URL_PATTERN.findall(line)))
    if "<sup>" in cell and not linked:
        return []
    return linked[:1] * (len(linked) == 1) + [_clean(cell).replace(" ", "").replace("-", "_")]


def table_rows(path: Path):
    """(candidate model names, {field: value}) for every row of every model table in one markdown page."""
    lines = path.read_text(encoding="utf-8").splitlines()
    for i in range(len(lines) - 2):
        header, rule = lines[i], lines[i + 1]
        if not (header.startswith("|") and re.fullmatch(r"\|[\s:\-|]+\|?\s*", rule)):
            continue
        columns = [_column_meaning(c) for c in header.strip().strip("|").split("|")]
        for line in lines[i + 2:]:
            if not line.startswith("|"):
                break
            raw = line.strip().strip("|").split("|")
            if len(raw) != len(columns):  # a malformed row: its cells cannot be matched to the header
                continue
            names = _row_models(raw[0], line)
            if not names:
                continue
            figures = {}
            for meaning, cell in zip(columns[1:], raw[1:]):
                value = _number(_clean(cell))
                if meaning is None or value is None:
                    continue
                field, unit = meaning
                if field in ("top1", "top5") and value > 1.5:  # a percentage
                    value = round(value / 100, 6)
                elif unit is not None:
                    value = round(value * unit, 6)
                figures[field] = value
            yield names, figures


def doc_figures(wanted: set) -> dict:
    """name -> ({field: value}, [doc pages]) for the names in `wanted` (matched case-insensitively)."""
    by_lower = {n.lower(): n for n in wanted}
    pages = [DOCS / "README.md"] + sorted(p for p in DOCS.glob("*.md") if p.name not in ("README.md", "model_list.md"))
    found: dict = {}
    for page in pages:
        for candidates, figures in table_rows(page):
            name = next((by_lower[n.lower()] for n in candidates if n.lower() in by_lower), None)
            if name is None or not figures:
                continue
            known, sources = found.setdefault(name, ({}, []))
            new = {k: v for k, v in figures.items() if k not in known}  # the first page that gives a figure wins
            if new:
                known.update(new)
                sources += [page.name] if page.name not in sources else []
    return found


def doc_urls() -> dict:
    """weights name -> pretrained URL, for every .pdparams link in the docs."""
    urls = {}
    for page in sorted(DOCS.glob("*.md")):
        for match in URL_PATTERN.finditer(page.read_text(encoding="utf-8")):
            urls.setdefault(match.group(1), match.group(0))
    return urls


# -- the rows ---------------------------------------------------------------------------------------------
def preprocessing(arch: str, family: str, spec_size: int) -> dict:
    facts = {"input_size": spec_size, **EVAL[family]}
    if family in RESIZE_AT_384 and spec_size == 384:
        facts["resize_short"] = 384
    if family == "MobileNetV4":
        facts["resize_short"] = spec_size
    facts.update(PER_MODEL.get(arch, {}))
    return facts


def build() -> list:
    specs = dict(line.split(":") for line in (REFERENCE / "model_specs_2x.txt").read_text().split())
    base_urls = json.loads((REFERENCE / "model_urls_2x.json").read_text())
    linked = doc_urls()

    weights = {}  # catalog name -> (arch, url)
    for arch in specs:
        if base_urls.get(arch):
            weights[arch] = (arch, base_urls[arch])
        for suffix in VARIANT_SUFFIXES:
            if arch + suffix in linked:
                weights[arch + suffix] = (arch, linked[arch + suffix])
    figures = doc_figures(set(weights))

    rows = []
    for name, (arch, url) in sorted(weights.items()):
        family, config_dir = family_of(arch)
        known, sources = figures.get(name, ({}, []))
        base = weights.get(arch)
        if not known and name != arch and base and base[1] == url and arch in figures:
            known, sources = figures[arch]  # the same file under two names (PPHGNetV2_Bx = its _ssld weights)
        row = {
            "name": name,
            "arch": arch,
            "family": family,
            "top1": known.get("top1"),
            "top5": known.get("top5"),
            "flops_g": known.get("flops_g"),
            "params_m": known.get("params_m"),
            "latency_ms": {k.split(":", 1)[1]: v for k, v in known.items() if k.startswith("latency:")},
            "pretrained_url": url,
            "static_tar_url": None,
            "doc_sources": sources,
            "config": f"ppcls/configs/ImageNet/{config_dir}/{arch}.yaml",
            **preprocessing(arch, family, int(specs[arch])),
        }
        if name == arch and name + "_ssld" in weights and weights[name + "_ssld"][1] == url:
            row["note"] = "PaddleClas publishes this model's SSLD weights under its plain name"
        rows.append(row)
    return rows


def main() -> int:
    rows = build()
    TARGET.write_text(json.dumps(rows, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    missing = [r["name"] for r in rows if r["top1"] is None]
    print(f"wrote {TARGET.relative_to(ROOT)}: {len(rows)} rows; no documented top-1 for {len(missing)}: "
          f"{', '.join(missing)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

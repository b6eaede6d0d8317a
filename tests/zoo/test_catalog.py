"""The shipped catalog (pcls/zoo/catalog.json): every published PaddleClas ImageNet model, the 2.x ones with the
figures of PaddleClas's model pages and the evaluation pre-processing of PaddleClas's configs."""

from __future__ import annotations

import json
import re
import sys

import pytest

from pcls.zoo import catalog
from tests.reference import REFERENCE_DIR, REPO, newer_models

SCRIPTS = REPO / "scripts"
# derived in this repository (scripts/derive_catalog_2x.py), so read here even when PCLS_REFERENCE_DIR points elsewhere
CATALOG_2X = REPO / "tests" / "reference" / "zoo_catalog_2x.json"


def script_module(name: str):
    """scripts/<name>.py imported as a module (the scripts folder is no package)."""
    sys.path.insert(0, str(SCRIPTS))
    try:
        return __import__(name)
    finally:
        sys.path.pop(0)


def _specs_2x() -> dict:
    return {name: int(size) for name, size in
            (line.split(":") for line in (REFERENCE_DIR / "model_specs_2x.txt").read_text().split())}


def _rows_of(arch: str) -> list:
    return [row for row in catalog.load_catalog().values() if row.get("arch") == arch]


def test_the_shipped_catalog_is_what_the_scripts_build():
    """pcls/zoo/catalog.json = build_catalog(zoo_catalog.json + zoo_catalog_2x.json), and zoo_catalog_2x.json =
    derive_catalog_2x(the docs); a stale file means a script was changed without rerunning it."""
    assert json.loads(CATALOG_2X.read_text()) == script_module("derive_catalog_2x").build(), \
        "tests/reference/zoo_catalog_2x.json is stale: run scripts/derive_catalog_2x.py"
    shipped = json.loads(catalog.CATALOG_PATH.read_text())
    assert shipped == script_module("build_catalog").build(), \
        "pcls/zoo/catalog.json is stale: run scripts/build_catalog.py"


def test_every_2x_model_has_a_catalog_row_with_the_fields():
    for arch, spec_size in _specs_2x().items():
        rows = _rows_of(arch)
        assert rows, f"{arch} has no catalog row"
        for row in rows:
            assert row["family"] and row["paper"], row["name"]
            assert {"top1", "top5", "flops_g", "params_m", "latency_ms"} <= set(row), row["name"]
            assert row["pretrained_url"].startswith("https://") and row["pretrained_url"].endswith(".pdparams")
            assert row["interpolation"] in ("bilinear", "bicubic") and row["backend"] in ("cv2", "pil")
            assert len(row["mean"]) == len(row["std"]) == 3
            if row.get("resize_mode") == "full":
                assert row["resize_short"] is None
            else:
                assert row["resize_short"] >= row["input_size"]
            # the evaluation size is the reference's, except where PaddleClas evaluates larger than it tests
            assert row["input_size"] == spec_size or (arch, row["input_size"]) == ("EfficientNetV2_S", 384)


def test_the_2x_urls_are_paddleclas_s():
    published = json.loads((REFERENCE_DIR / "model_urls_2x.json").read_text())
    rows = catalog.load_catalog()
    for arch, url in published.items():
        if url:
            assert rows[arch]["pretrained_url"] == url
        else:  # PPHGNet_base: only its SSLD weights are published, so no row of that name
            assert arch not in rows and _rows_of(arch)


def test_every_published_ssld_variant_has_a_row():
    """Each `<model>_ssld` / `<model>_ssld_stage1` weights file the docs link is a catalog row with that URL."""
    rows = catalog.load_catalog()
    pattern = re.compile(r"https://\S+?/((\w+?)(_ssld|_ssld_stage1))_pretrained\.pdparams")
    variants = {}
    for page in (REFERENCE_DIR / "paddleclas_docs").glob("*.md"):
        for match in pattern.finditer(page.read_text(encoding="utf-8")):
            name, arch = match.group(1), match.group(2)
            if arch in newer_models():
                variants[name] = (arch, match.group(0))
    assert {"PPHGNetV2_B0_ssld_stage1", "PPLCNetV2_base_ssld", "NextViT_small_224_ssld"} <= set(variants)
    for name, (arch, url) in variants.items():
        assert rows[name]["arch"] == arch and rows[name]["pretrained_url"] == url


@pytest.mark.parametrize(("name", "field", "documented"), [
    ("ConvNeXt_tiny", "top1", 0.8203),           # README: 0.8203
    ("PPLCNetV2_base", "top1", 0.7704),          # README: 77.04 (a percentage)
    ("PPLCNetV2_base_ssld", "top1", 0.8007),     # PP-LCNetV2.md: 80.07
    ("MobileViTV2_x0_5", "flops_g", 0.48046),    # README: FLOPs(M) 480.46
    ("VAN_B2", "params_m", 26.592),              # README: 26.592
    ("FasterNet_T0", "top5", 0.909),             # FasterNet.md only
    ("PPHGNetV2_B0_ssld", "top1", 0.7777),       # the plain-name row's stage-2 (SSLD) file and figures
    ("PPHGNetV2_B0_ssld_stage1", "top1", None),  # no figure is published for stage 1
    ("CvT_13_224", "top1", None),                # no model table in the docs
])
def test_documented_figures(name, field, documented):
    assert catalog.get_entry(name)[field] == (pytest.approx(documented) if documented is not None else None)


@pytest.mark.parametrize(("name", "resize", "crop"), [
    ("PPHGNetV2_B0", {"resize_short": 232, "interpolation": "bicubic", "backend": "pil"}, 224),
    ("SwinTransformerV2_tiny_patch4_window8_256", {"resize_short": 292, "interpolation": "bicubic",
                                                   "backend": "pil"}, 256),
    ("TinyNet_E", {"resize_short": 121, "interpolation": "bicubic", "backend": "pil"}, 106),
    ("MobileNetV4_conv_large", {"resize_short": 448, "interpolation": "bicubic", "backend": "pil"}, 448),
    ("CvT_13_384", {"size": 384, "interpolation": "bicubic", "backend": "pil"}, None),  # no crop
])
def test_eval_pipeline_follows_paddleclas_config(name, resize, crop):
    ops = catalog.eval_transform_ops(catalog.preprocess_for(name))
    names = [next(iter(op)) for op in ops]
    assert ops[names.index("ResizeImage")]["ResizeImage"] == resize
    assert (ops[names.index("CropImage")]["CropImage"]["size"] if "CropImage" in names else None) == crop


def test_decoding_and_normalisation_facts_reach_the_pipeline():
    mobilevit = catalog.eval_transform_ops(catalog.preprocess_for("MobileViT_XXS"))
    assert mobilevit[0]["DecodeImage"]["to_rgb"] is False  # PaddleClas's eval config keeps BGR
    assert mobilevit[-2]["NormalizeImage"]["mean"] == [0.0, 0.0, 0.0]
    cvt = catalog.eval_transform_ops(catalog.preprocess_for("CvT_13_224"))
    assert cvt[0]["DecodeImage"]["backend"] == "pil"
    # a 1.x model keeps the ImageNet defaults
    resnet = catalog.eval_transform_ops(catalog.preprocess_for("ResNet50"))
    assert resnet[0]["DecodeImage"] == {"to_rgb": True, "channel_first": False}
    assert resnet[1]["ResizeImage"]["resize_short"] == 256


def test_every_catalog_arch_is_a_registered_model():
    """Fails until every family's backbone is registered (the 2.x families land one by one)."""
    from pcls.arch.registry import list_models

    registered = set(list_models())
    missing = sorted({row["arch"] for row in catalog.load_catalog().values() if row.get("arch")} - registered)
    assert not missing, f"{len(missing)} catalog architectures are not registered: {', '.join(missing)}"

"""inference.yml as PaddleX 3 reads it: pcls exports carry PaddleX's fields, and official PaddleX/PaddleClas
folders (their inference.yml as published) are predicted by pcls as its own exports are."""

import json
import shutil

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

pytest.importorskip("paddle")

from pcls.deploy.paddlex_format import PADDLEX_MODELS, paddlex_name, paddlex_spec, pcls_name, pcls_spec  # noqa: E402
from tests.serve.conftest import LABELS, jpeg_bytes  # noqa: E402

# What PaddleX's ClasPredictor builds from (paddlex/inference/models/image_classification/predictor.py): these
# operators with these arguments, the cv2 interpolation names it looks up, and only Topk in PostProcess
PADDLEX_OPS = {"ResizeImage": {"resize_short", "size", "backend", "interpolation"}, "CropImage": {"size"},
               "NormalizeImage": {"mean", "std", "scale", "order", "channel_num"}, "ToCHWImage": set()}
PADDLEX_CV2_INTERP = {"NEAREST", "LINEAR", "BICUBIC", "AREA", "LANCZOS4"}


def test_pcls_names_map_to_paddlex_names_and_back():
    pairs = {"PPLCNet_x1_0": "PP-LCNet_x1_0", "PPLCNetV2_base": "PP-LCNetV2_base", "PPHGNet_small": "PP-HGNet_small",
             "PPHGNetV2_B4": "PP-HGNetV2-B4", "MobileNetV1": "MobileNetV1_x1_0", "ResNet50_vd": "ResNet50_vd",
             "SwinTransformer_tiny_patch4_window7_224": "SwinTransformer_tiny_patch4_window7_224"}
    for ours, theirs in pairs.items():
        assert paddlex_name(ours) == theirs and theirs in PADDLEX_MODELS
        assert pcls_name(theirs) == ours
    assert paddlex_name("DeiT_tiny_patch16_224") is None  # PaddleX has no such classifier


def test_export_writes_what_paddlex_reads_and_pcls_reads_it_back(export_dir):
    raw = yaml.safe_load((export_dir / "inference.yml").read_text())
    assert raw["Global"]["model_name"] == "MobileNetV1_x0_25" and raw["Global"]["model_name"] in PADDLEX_MODELS
    for op in raw["PreProcess"]["transform_ops"]:
        (name, args), = op.items()
        assert name in PADDLEX_OPS and set(args or {}) <= PADDLEX_OPS[name], op
        if name == "ResizeImage":
            assert args["interpolation"] in PADDLEX_CV2_INTERP
        if name == "NormalizeImage":
            assert args.get("order", "") == "" and args.get("channel_num", 3) == 3
    assert raw["PreProcess"]["transform_ops"][-1] == {"ToCHWImage": None}
    assert raw["PostProcess"] == {"Topk": {"topk": 5, "label_list": LABELS}}

    back = pcls_spec(raw)
    assert back["PreProcess"]["transform_ops"][0] == {"DecodeImage": {"to_rgb": True, "channel_first": False}}
    assert back["PostProcess"]["topk"] == 5 and back["label_list"] == LABELS
    assert paddlex_spec(back, LABELS)["PreProcess"] == raw["PreProcess"]  # one mapping, both ways


def test_pipelines_paddlex_would_run_differently_keep_pcls_form():
    base = {"Global": {"model_name": "ResNet50_vd"},
            "PreProcess": {"transform_ops": [{"DecodeImage": {"to_rgb": True, "channel_first": False}},
                                             {"ResizeImage": {"resize_short": 256}}, {"CropImage": {"size": 224}},
                                             {"NormalizeImage": {"scale": 0.00392156862745098, "order": ""}}]},
            "PostProcess": {"name": "Topk", "topk": 5, "class_id_map_file": None}}
    assert paddlex_spec(base, None)["PostProcess"] == {"Topk": {"topk": 5}}
    pil = json.loads(json.dumps(base))
    pil["PreProcess"]["transform_ops"][0]["DecodeImage"]["backend"] = "pil"  # PaddleX decodes with OpenCV
    thresh = json.loads(json.dumps(base))
    thresh["PostProcess"] = {"name": "ThreshOutput", "threshold": 0.5, "topk": 1, "class_id_map_file": None}
    random_crop = json.loads(json.dumps(base))
    random_crop["PreProcess"]["transform_ops"].append({"RandCropImage": {"size": 224}})
    no_resize = json.loads(json.dumps(base))  # the demo recipe's 64 px pipeline: PaddleX always resizes
    del no_resize["PreProcess"]["transform_ops"][1:3]
    for spec in (pil, thresh, random_crop, no_resize):
        assert paddlex_spec(spec, None) == spec

    published_scale = json.loads(json.dumps(base))  # PaddleClas configs write the scale as arithmetic
    published_scale["PreProcess"]["transform_ops"][3]["NormalizeImage"]["scale"] = "1.0/255.0"
    normalize = paddlex_spec(published_scale, None)["PreProcess"]["transform_ops"][2]["NormalizeImage"]
    assert normalize["scale"] == pytest.approx(1 / 255)


def official_folder(export_dir, target):
    """The export's model files with an inference.yml as PaddleX publishes them: no pcls fields, PaddleX's
    operator spellings, labels inline."""
    target.mkdir()
    for name in ("inference.json", "inference.pdiparams"):
        shutil.copy(export_dir / name, target / name)
    raw = yaml.safe_load((export_dir / "inference.yml").read_text())
    ops = raw["PreProcess"]["transform_ops"]
    resize = next(op["ResizeImage"] for op in ops if "ResizeImage" in op)
    published = {
        "Global": {"model_name": raw["Global"]["model_name"]},
        "Hpi": {"backend_configs": {"paddle_infer": {"trt_dynamic_shapes": {"x": [[1, 3, 64, 64]] * 3}}}},
        "PreProcess": {"transform_ops": [
            {"ResizeImage": {"resize_short": resize["resize_short"]}},
            *[op for op in ops if "ResizeImage" not in op and "NormalizeImage" not in op and "ToCHWImage" not in op],
            {"NormalizeImage": {**next(op["NormalizeImage"] for op in ops if "NormalizeImage" in op), "channel_num": 3}},
            {"ToCHWImage": None}]},
        "PostProcess": {"Topk": {"topk": 3, "label_list": LABELS}},
    }
    (target / "inference.yml").write_text(yaml.safe_dump(published, sort_keys=False))
    return target


def test_an_official_paddlex_folder_predicts_as_the_pcls_export(export_dir, reference, tmp_path):
    from pcls.cli import app
    from pcls.deploy.predictor import Predictor

    folder = official_folder(export_dir, tmp_path / "PP-official_infer")
    images = tmp_path / "imgs"
    images.mkdir()
    for seed in range(3):
        (images / f"{seed}.jpg").write_bytes(jpeg_bytes(seed))
    official = Predictor(folder, runtime="paddle", threads=1)
    assert official.input_size == 64 and official.topk == 3 and official.labels == LABELS
    for path in sorted(images.iterdir()):
        got, want = official.predict([path])[0], reference.predict([path])[0]
        assert got["class_ids"] == want["class_ids"][:3] and got["labels"] == want["labels"][:3]
        np.testing.assert_allclose(got["scores"], want["scores"][:3], atol=1e-6)

    result = CliRunner().invoke(app, ["predict", str(images), "--model", str(folder), "--json", "--runtime", "paddle"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)["results"]
    assert len(rows) == 3 and all(len(r["class_ids"]) == 3 for r in rows)

    bench = CliRunner().invoke(app, ["bench", str(folder), "--batch-sizes", "1", "--iters", "2", "--warmup", "1",
                                     "--no-e2e", "--threads", "1", "--json"])
    assert bench.exit_code == 0, bench.output
    measured = json.loads(bench.stdout)
    assert measured["model"] == "MobileNetV1_x0_25" and measured["input_size"] == 64 and measured["rows"]

"""CPU inference choices: `--runtime auto` honours the export's own measurement; int8 export reports and limits its
accuracy cost; `pcls bench --formats` prints one table (JSON with --json)."""

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

paddle = pytest.importorskip("paddle")
pytest.importorskip("onnxruntime.quantization")

import pcls  # noqa: E402
from pcls.cli import app  # noqa: E402
from pcls.deploy.export import ExportRequest, export  # noqa: E402
from pcls.deploy.predictor import Predictor  # noqa: E402
from pcls.errors import PclsError  # noqa: E402
from pcls.utils.state_files import save_state_file  # noqa: E402

MODEL = "MobileNetV1_x0_25"
SIZE = 32
runner = CliRunner()


def request(out, **options):
    return ExportRequest(model_name=MODEL, out_dir=Path(out), class_num=4, input_size=SIZE, **options)


@pytest.mark.parametrize("faster", ["paddle", "onnx"])
def test_runtime_choice_is_recorded_and_honoured(tmp_path, faster):
    slower = {"paddle": "onnx", "onnx": "paddle"}[faster]
    out = tmp_path / faster
    stages = []
    export(request(out, fmt="onnx", measure=lambda d, s: {faster: 1.0, slower: 2.0}), progress=stages.append)
    assert "converting to ONNX" in stages and "timing Paddle Inference against ONNX Runtime" in stages
    recorded = yaml.safe_load((out / "inference.yml").read_text())["Global"]["runtime"]
    assert recorded == {"cpu": faster, "measured_ms_batch1": {faster: 1.0, slower: 2.0}}
    assert Predictor(out).runtime == faster
    assert Predictor(out, runtime=slower).runtime == slower  # an explicit choice wins


def test_auto_falls_back_to_paddle_without_onnxruntime_or_onnx_model(tmp_path, monkeypatch):
    import pcls.deploy.runtimes as predictor_module

    out = tmp_path / "m"
    export(request(out, fmt="onnx", measure=lambda d, s: {"paddle": 2.0, "onnx": 1.0}))
    monkeypatch.setattr(predictor_module, "onnx_available", lambda: False)
    assert Predictor(out).runtime == "paddle"
    paddle_only = tmp_path / "p"
    export(request(paddle_only))
    assert yaml.safe_load((paddle_only / "inference.yml").read_text())["Global"]["runtime"]["cpu"] == "paddle"


def spread_weights(model, seed=0):
    """He-normal convolutions and a wide classifier: predictions that vary from image to image, with margins
    small enough that int8 rounding can flip some."""
    rng = np.random.default_rng(seed)
    for _, param in model.named_parameters():
        if param.ndim == 4:
            fan_in = int(np.prod(param.shape[1:]))
            param.set_value(rng.normal(0, np.sqrt(2 / fan_in), param.shape).astype("float32"))
        elif param.ndim == 2:
            param.set_value(rng.normal(0, 3 / np.sqrt(param.shape[0]), param.shape).astype("float32"))


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    """A 4-class model with non-trivial weights, 48 images, and a val list labelled with the model's own fp32
    predictions (fp32 top-1 is 100%, so any int8 disagreement is a drop)."""
    root = tmp_path_factory.mktemp("int8")
    model = pcls.create_model(MODEL, class_num=4)
    spread_weights(model)
    save_state_file({k: v.numpy() for k, v in model.state_dict().items()}, root / "w.pdparams")
    rng = np.random.default_rng(3)
    names = []
    for i in range(48):
        img = rng.integers(0, 255, (48, 48, 3), dtype=np.uint8)
        cv2.circle(img, (int(rng.integers(8, 40)), 24), int(rng.integers(4, 16)), tuple(int(c) for c in rng.integers(0, 255, 3)), -1)
        cv2.imwrite(str(root / f"{i}.jpg"), img)
        names.append(f"{i}.jpg")
    (root / "calib.txt").write_text("".join(f"{n}\n" for n in names))
    black = np.zeros((48, 48, 3), np.uint8)
    cv2.imwrite(str(root / "black.jpg"), black)
    (root / "bad_calib.txt").write_text("black.jpg\n" * 8)
    reference = root / "fp32"
    export(ExportRequest(model_name=MODEL, out_dir=reference, weights=str(root / "w.pdparams"), input_size=SIZE,
                         fmt="onnx", measure=lambda d, s: {"paddle": 1.0, "onnx": 2.0}))
    predicted = Predictor(reference, runtime="onnx").predict([root / n for n in names])
    (root / "val.txt").write_text("".join(f"{n} {r['class_ids'][0]}\n" for n, r in zip(names, predicted)))
    assert len({r["class_ids"][0] for r in predicted}) > 1  # otherwise int8 could not disagree
    return root


def int8_request(root, out, calib="calib.txt", max_drop=1.0):
    return ExportRequest(model_name=MODEL, out_dir=out, weights=str(root / "w.pdparams"), input_size=SIZE,
                         int8=True, calib=str(root / calib), val=str(root / "val.txt"), root=str(root),
                         max_drop=max_drop, measure=lambda d, s: {"paddle": 1.0, "onnx": 2.0})


def test_int8_export_reports_top1_and_predicts_in_int8(labelled, tmp_path):
    out = tmp_path / "int8"
    report = export(int8_request(labelled, out, max_drop=100.0))
    info = yaml.safe_load((out / "inference.yml").read_text())["Global"]["int8"]
    assert info["top1_fp32"] == 100.0 and 0 <= info["top1_int8"] <= 100 and info["val_images"] == 48
    assert info["calib_images"] == 48 and (out / info["file"]).exists()
    assert any("int8 top-1" in note for note in report.notes)
    predictor = Predictor(out)
    assert predictor.runtime == "onnx" and predictor.settings.precision == "int8"
    assert len(predictor.predict([labelled / "0.jpg"])) == 1
    assert_symmetric_signed_int8(out / info["file"])


def assert_symmetric_signed_int8(path):
    """TensorRT accepts only symmetric signed INT8 Q/DQ: every QuantizeLinear's zero point is int8 and 0."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(path)).graph
    constants = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    quantizers = [n for n in graph.node if n.op_type == "QuantizeLinear"]
    assert quantizers
    for node in quantizers:
        zero_point = constants[node.input[2]]
        assert zero_point.dtype == np.int8 and not zero_point.any(), node.name


def test_int8_export_over_the_drop_threshold_is_refused(labelled, tmp_path):
    out = tmp_path / "refused"
    # calibrated on one black image, the activation ranges are useless: int8 disagrees with fp32
    with pytest.raises(PclsError, match=r"points below fp32 .*--max-drop 0"):
        export(int8_request(labelled, out, calib="bad_calib.txt", max_drop=0.0))
    assert not out.exists()


def test_int8_without_calibration_is_one_line(tmp_path):
    result = runner.invoke(app, ["export", MODEL, "--int8", "--out", str(tmp_path / "x")])
    assert result.exit_code == 2 and "--calib" in result.output and not (tmp_path / "x").exists()


def test_bench_formats_json_table(labelled, tmp_path):
    out = tmp_path / "int8"
    export(int8_request(labelled, out, max_drop=100.0))
    result = runner.invoke(app, ["bench", str(out), "--formats", "--json", "--val", str(labelled / "val.txt"),
                                 "--root", str(labelled), "--iters", "2", "--warmup", "1", "--threads", "1",
                                 "--images", str(labelled)])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert [(r["format"], r["precision"]) for r in data["rows"]] == [("paddle", "fp32"), ("onnx", "fp32"),
                                                                      ("onnx", "int8")]
    for row in data["rows"]:
        assert row["size_mb"] > 0 and row["ms_per_img_b1"] > 0 and row["ms_per_img_b8"] > 0
        assert row["end_to_end_images_per_s"] > 0 and 0 <= row["top1"] <= 100
    assert data["rows"][0]["top1"] == data["rows"][1]["top1"] == 100.0

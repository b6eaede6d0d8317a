"""Export (Paddle + ONNX, self-verifying), the predictor and its CLI, the GPU/TensorRT config, bench."""

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

paddle = pytest.importorskip("paddle")

import pcls  # noqa: E402
from pcls.cli import app  # noqa: E402
from pcls.deploy.export import ExportRequest, export  # noqa: E402
from pcls.deploy.predictor import Predictor  # noqa: E402
from pcls.deploy.runtimes import RuntimeSettings, apply_plan, paddle_config_plan  # noqa: E402
from pcls.errors import PclsError  # noqa: E402
from pcls.utils.state_files import save_state_file  # noqa: E402
from tests.reference import fill_weights  # noqa: E402

MODEL = "MobileNetV1_x0_25"
CLASSES = 10
runner = CliRunner()


def make_images(folder: Path, count: int = 5) -> list:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    paths = []
    for i in range(count):
        img = np.zeros((180 + 10 * i, 240, 3), np.uint8)
        img[:] = rng.integers(0, 255, 3)
        cv2.circle(img, (60 + 20 * i, 90), 30 + 5 * i, tuple(int(c) for c in rng.integers(0, 255, 3)), -1)
        path = folder / f"img_{i}.jpg"
        cv2.imwrite(str(path), img)
        paths.append(path)
    return paths


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A 10-class model with deterministic non-trivial weights, saved as .pdparams, plus its exports."""
    root = tmp_path_factory.mktemp("deploy")
    model = pcls.create_model(MODEL, class_num=CLASSES)
    fill_weights(model)
    model.eval()
    weights = root / "weights.pdparams"
    save_state_file({k: v.numpy() for k, v in model.state_dict().items()}, weights)
    export_dir = root / "export"
    report = export(ExportRequest(model_name=MODEL, out_dir=export_dir, weights=str(weights), fmt="onnx"))
    return {"root": root, "model": model, "weights": weights, "dir": export_dir, "report": report}


def dygraph_scores(model, predictor, paths):
    batch = np.stack([predictor.preprocess_one(p) for p in paths])
    with paddle.no_grad():
        return paddle.nn.functional.softmax(model(paddle.to_tensor(batch)), axis=-1).numpy()


def test_export_writes_verified_paddle_and_onnx_models(trained):
    files = set(trained["report"].files)
    assert {"inference.json", "inference.pdiparams", "inference.onnx", "inference.yml"} <= files
    assert set(trained["report"].max_relative_diff) == {"paddle", "onnx"}
    assert all(d <= 5e-4 for d in trained["report"].max_relative_diff.values())
    spec = (trained["dir"] / "inference.yml").read_text()
    assert "class_num: 10" in spec and "CropImage" in spec  # class count read from the weights


@pytest.mark.parametrize("runtime", ["paddle", "onnx"])
def test_predictor_topk_equals_dygraph_topk(trained, tmp_path, runtime):
    paths = make_images(tmp_path / "imgs")
    predictor = Predictor(trained["dir"], runtime=runtime, topk=3, batch_size=2)
    results = predictor.predict(paths)
    expected = dygraph_scores(trained["model"], predictor, paths)
    assert len(results) == len(paths)
    for result, row in zip(results, expected):
        assert result["class_ids"] == list(np.argsort(-row, kind="stable")[:3])
        np.testing.assert_allclose(result["scores"], np.sort(row)[::-1][:3], rtol=1e-3, atol=1e-6)


def test_predict_cli_reports_bad_files_and_exits_1(trained, tmp_path):
    folder = tmp_path / "mixed"
    good = make_images(folder, 4)
    (folder / "broken.jpg").write_bytes(b"\xff\xd8 this is not a jpeg")
    (folder / "readme.txt").write_text("not an image")
    csv_path = tmp_path / "out.csv"
    result = runner.invoke(app, ["predict", str(folder), "--model", str(trained["dir"]), "--topk", "2",
                                 "--json", "--csv", str(csv_path)])
    assert result.exit_code == 1, result.output
    data = json.loads(result.stdout)
    assert sorted(Path(r["file"]).name for r in data["results"]) == sorted(p.name for p in good)
    assert sorted(Path(f["file"]).name for f in data["failures"]) == ["broken.jpg"]
    assert [Path(f).name for f in data["skipped_not_images"]] == ["readme.txt"]  # counted, not failed
    assert "skipped 1 file(s)" in result.stderr and "readme.txt" in result.stderr
    assert all(len(r["class_ids"]) == 2 for r in data["results"])
    rows = csv_path.read_text().splitlines()
    assert rows[0].startswith("file,rank,class_id") and len(rows) == 1 + 4 * 2 + 1


def test_predict_skips_non_images_in_a_folder_and_exits_0(trained, tmp_path):
    folder = tmp_path / "photos"
    make_images(folder, 2)
    (folder / "notes.txt").write_text("not an image")
    (folder / ".DS_Store").write_bytes(b"\0")
    result = runner.invoke(app, ["predict", str(folder), "--model", str(trained["dir"]), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert len(data["results"]) == 2 and data["failures"] == [] and len(data["skipped_not_images"]) == 2
    only_text = tmp_path / "text"
    only_text.mkdir()
    (only_text / "a.txt").write_text("x")
    result = runner.invoke(app, ["predict", str(only_text), "--model", str(trained["dir"])])
    assert result.exit_code == 2 and "no images to predict" in result.output


def test_predict_cli_all_good_exits_0(trained, tmp_path):
    make_images(tmp_path / "ok", 3)
    result = runner.invoke(app, ["predict", str(tmp_path / "ok" / "*.jpg"), "--model", str(trained["dir"]), "--json"])
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.stdout)["results"]) == 3


def test_list_file_input(trained, tmp_path):
    paths = make_images(tmp_path / "data", 3)
    (tmp_path / "data" / "list.txt").write_text("".join(f"{p.name} 0\n" for p in paths))
    result = runner.invoke(app, ["predict", str(tmp_path / "data" / "list.txt"), "--model", str(trained["dir"]), "--json"])
    assert result.exit_code == 0 and len(json.loads(result.stdout)["results"]) == 3


def test_fixed_batch_export_pads_the_last_batch(trained, tmp_path):
    out = tmp_path / "fixed"
    export(ExportRequest(model_name=MODEL, out_dir=out, weights=str(trained["weights"]), batch_size=2))
    paths = make_images(tmp_path / "imgs", 3)
    fixed = Predictor(out, topk=1)
    dynamic = Predictor(trained["dir"], topk=1)
    assert fixed.batch_size == 2
    assert [r["class_ids"] for r in fixed.predict(paths)] == [r["class_ids"] for r in dynamic.predict(paths)]


def test_failed_verification_writes_nothing(trained, tmp_path, monkeypatch):
    import pcls.deploy.export.pipeline as export_module

    real = export_module.run_paddle_inference
    monkeypatch.setattr(export_module, "run_paddle_inference", lambda d, x: real(d, x) * 1.5)
    out = tmp_path / "bad"
    with pytest.raises(PclsError, match="export verification failed"):
        export(ExportRequest(model_name=MODEL, out_dir=out, weights=str(trained["weights"])))
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".bad")]


def test_export_cli_errors_are_one_line():
    result = runner.invoke(app, ["export", "NoSuchNet", "--out", "/tmp/never"])
    assert result.exit_code == 2 and "unknown backbone 'NoSuchNet'" in result.output
    result = runner.invoke(app, ["export", MODEL, "--batch", "zero"])
    assert result.exit_code == 2 and "--batch" in result.output


def test_legacy_trt_fp16_plan_asks_for_a_static_half_precision_subgraph_engine():
    """Legacy .pdmodel exports keep Paddle 2's subgraph API, with the engine serialised into a cache folder: the
    Config.enable_tensorrt_engine / set_trt_dynamic_shape_info bindings of paddle/fluid/pybind/inference_api.cc.
    Only the plan is checked (no GPU Config is applied here)."""
    settings = RuntimeSettings(device="gpu", trt=True, precision="fp16", max_batch_size=8)
    plan = dict(paddle_config_plan(settings, 224, graph_format="legacy", cache_dir="/m/trt_legacy_fp16"))
    assert plan["enable_use_gpu"] == (500, 0)
    workspace, max_batch, _, precision, use_static, calib = plan["enable_tensorrt_engine"]
    assert precision == "Half" and max_batch == 8 and calib is False and use_static is True
    low, high, opt = plan["set_trt_dynamic_shape_info"]
    assert low == {"x": [1, 3, 224, 224]} and high == {"x": [8, 3, 224, 224]}
    assert plan["set_optim_cache_dir"] == ("/m/trt_legacy_fp16",)
    assert "enable_onednn" not in plan and "disable_gpu" not in plan


def test_pir_trt_plan_has_no_subgraph_calls_and_fp32_gpu_has_no_trt():
    """A PIR export runs TensorRT from the converted model (deploy/converters/trt.py), on a plain GPU config."""
    pir = dict(paddle_config_plan(RuntimeSettings(device="gpu", trt=True, precision="fp16"), 224, graph_format="pir"))
    assert "enable_use_gpu" in pir and "enable_tensorrt_engine" not in pir
    legacy = dict(paddle_config_plan(RuntimeSettings(device="gpu", trt=True, precision="int8"), 224, "legacy"))
    assert legacy["enable_tensorrt_engine"][3] == "Int8" and legacy["enable_tensorrt_engine"][5] is True
    assert "enable_tensorrt_engine" not in dict(paddle_config_plan(RuntimeSettings(device="gpu"), 224, "legacy"))


def test_cpu_plan_applies_to_a_real_config():
    import paddle.inference as pi

    config = pi.Config()
    apply_plan(config, paddle_config_plan(RuntimeSettings(device="cpu", threads=3), 224))
    assert config.onednn_enabled() and not config.use_gpu()
    assert config.cpu_math_library_num_threads() == 3


@pytest.mark.parametrize("settings, fragment", [
    (dict(trt=True), "needs --device gpu"), (dict(precision="fp16"), "needs --device gpu"),
    (dict(runtime="tvm"), "unknown runtime"), (dict(device="tpu"), "unknown device"),
])
def test_bad_runtime_settings(settings, fragment):
    with pytest.raises(PclsError, match=fragment):
        RuntimeSettings(**settings).validate()


def test_bench_reports_percentiles_and_end_to_end(trained, tmp_path):
    from pcls.deploy.bench import run_bench

    make_images(tmp_path / "jpgs", 6)
    stages = []
    result = run_bench(str(trained["dir"]), batch_sizes=(1, 2), threads=1, iters=4, warmup=1,
                       images=str(tmp_path / "jpgs"), compare=True, progress=stages.append)
    assert [(r["runtime"], r["batch_size"]) for r in result["rows"]] == [
        ("paddle", 1), ("paddle", 2), ("onnx", 1), ("onnx", 2)]
    assert stages == ["paddle: batch 1 ...", "paddle: batch 2 ...", "onnx: batch 1 ...", "onnx: batch 2 ..."]
    for row in result["rows"]:
        assert 0 < row["p50_ms"] <= row["p90_ms"] <= row["p99_ms"]
        assert row["images_per_s"] > 0 and row["end_to_end_images_per_s"] > 0
    assert set(result["onnx_over_paddle_speed"]) == {1, 2}
    assert result["end_to_end_rejected"] == 0 and all(r["end_to_end_fraction"] > 0 for r in result["rows"])


def test_bench_counts_only_predicted_images_and_gives_no_ratio_when_any_were_rejected(trained, tmp_path):
    jpgs = tmp_path / "jpgs"
    make_images(jpgs, 3)
    for name in ("broken_a.jpg", "broken_b.jpg"):
        (jpgs / name).write_bytes(b"\xff\xd8 not a jpeg")
    for extra in ([], ["--formats"]):
        result = runner.invoke(app, ["bench", str(trained["dir"]), "--batch-sizes", "2", "--threads", "1", "--iters",
                                     "2", "--warmup", "1", "--images", str(jpgs), "--json", *extra])
        assert result.exit_code == 0, result.output
        data = json.loads(result.stdout)
        assert data["end_to_end_rejected"] == 2 and data["end_to_end_images"] == 5
        for row in data["rows"]:
            assert row["end_to_end_rejected"] == 2 and row["end_to_end_fraction"] is None
            assert row["end_to_end_images_per_s"] > 0
    text = runner.invoke(app, ["bench", str(trained["dir"]), "--batch-sizes", "2", "--threads", "1", "--iters", "2",
                               "--warmup", "1", "--images", str(jpgs)])
    assert "2 of 5 images were not predicted" in text.stdout and "no ratio" in text.stdout


def test_bench_int8_on_cpu_points_to_formats(tmp_path):
    result = runner.invoke(app, ["bench", str(tmp_path / "nowhere"), "--int8"])
    assert result.exit_code == 2 and "--formats" in result.output and "--runtime" not in result.output


@pytest.mark.parametrize("args, fragment", [
    (["--val", "val.txt"], "add --formats"),
    (["--formats", "--compare"], "drop --compare"),
    (["--formats", "--no-e2e"], "drop --no-e2e"),
])
def test_bench_options_that_would_be_ignored_are_refused(tmp_path, args, fragment):
    result = runner.invoke(app, ["bench", str(tmp_path / "nowhere"), *args])
    assert result.exit_code == 2 and fragment in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "nowhere").exists()


def test_bench_formats_lists_only_the_models_an_export_holds(tmp_path):
    from pcls.deploy.bench import _formats_in

    (tmp_path / "inference.json").write_text("{}")
    (tmp_path / "inference.pdiparams").write_bytes(b"\0")
    assert list(_formats_in(tmp_path)) == [("paddle", "fp32")]  # no ONNX model: one row, not a refusal
    (tmp_path / "inference.onnx").write_bytes(b"\0")
    (tmp_path / "inference.int8.onnx").write_bytes(b"\0")
    assert list(_formats_in(tmp_path)) == [("paddle", "fp32"), ("onnx", "fp32"), ("onnx", "int8")]
    assert _formats_in(tmp_path)[("onnx", "int8")] == [tmp_path / "inference.int8.onnx"]


def test_documented_latency_matches_hardware_only():
    from pcls.deploy.bench import documented_latency
    from pcls.zoo.catalog import load_catalog

    name, row = next((n, r) for n, r in load_catalog().items() if any(k.startswith("T4_trt_fp16_bs1") for k in r["latency_ms"]))
    assert documented_latency(name, "Tesla T4", "fp16", True, 1)["ms"] == row["latency_ms"]["T4_trt_fp16_bs1"]
    assert documented_latency(name, None, "fp16", True, 1) is None


@pytest.mark.parametrize("name", ["RepVGG_A0", "PPLCNetV2_small"])
def test_rep_models_are_fused_before_export_and_verified_against_the_train_form(tmp_path, name):
    model = pcls.create_model(name, class_num=4)
    fill_weights(model)
    weights = tmp_path / "rep.pdparams"
    save_state_file({k: v.numpy() for k, v in model.state_dict().items()}, weights)
    report = export(ExportRequest(model_name=name, out_dir=tmp_path / "out", weights=str(weights),
                                  input_size=64))
    assert "re-parameterised (branches fused) before export" in report.notes
    assert report.max_relative_diff["paddle"] <= 5e-4


def test_predict_and_eval_prepare_the_same_input_for_the_same_image(trained, tmp_path):
    """`pcls eval --model` builds its loader from the catalog's eval pipeline; the predictor from inference.yml."""
    from pcls.data import build_dataloader
    from pcls.zoo.catalog import eval_transform_ops, preprocess_for

    paths = make_images(tmp_path / "imgs", 3)
    (tmp_path / "imgs" / "list.txt").write_text("".join(f"{p.name} 0\n" for p in paths))
    section = {"dataset": {"name": "ImageNetDataset", "image_root": str(tmp_path / "imgs"),
                           "cls_label_path": str(tmp_path / "imgs" / "list.txt"),
                           "transform_ops": eval_transform_ops(preprocess_for(MODEL))},
               "sampler": {"name": "DistributedBatchSampler", "batch_size": 3, "shuffle": False, "drop_last": False},
               "loader": {"num_workers": 0}}
    images, _ = next(iter(build_dataloader(section, train=False).loader))
    predictor = Predictor(trained["dir"])
    np.testing.assert_array_equal(images.numpy(), np.stack([predictor.preprocess_one(p) for p in paths]))


def test_export_from_a_config_without_crop_uses_global_image_shape(tmp_path):
    """The demo recipe feeds 64x64 images straight to the model (no resize/crop op): the export's input size
    comes from Global.image_shape, not the backbone's ImageNet default."""
    from pcls.config import load_config
    from pcls.deploy.export import request_from_config

    cfg = load_config("demo", ["Infer.PostProcess.class_id_map_file=null"], is_recipe=True)  # no dataset here
    request = request_from_config(cfg, tmp_path / "demo")
    request.weights = None
    export(request)
    spec = Predictor(tmp_path / "demo").spec
    assert spec["Global"]["input_size"] == cfg["Global"]["image_shape"][-1] == 64
    assert spec["Global"]["class_num"] == 10


def test_an_export_of_a_resize_less_recipe_takes_any_image(tmp_path):
    """The demo recipe's pipeline has no resize/crop: the export adds resize-short + center-crop at the trained
    size (64), says so in inference.yml, and then predicts photos of any size on both runtimes."""
    from pcls.config import load_config
    from pcls.deploy.export import request_from_config
    from pcls.deploy.spec import read_spec

    cfg = load_config("demo", ["Infer.PostProcess.class_id_map_file=null"], is_recipe=True)
    request = request_from_config(cfg, tmp_path / "demo", fmt="onnx", measure=lambda d, s: {"paddle": 1, "onnx": 2})
    request.weights = None
    report = export(request)
    spec = read_spec(tmp_path / "demo")  # pcls's form, whichever form the file is written in (PaddleX's here)
    names = [next(iter(op)) for op in spec["PreProcess"]["transform_ops"]]
    assert names[:3] == ["DecodeImage", "ResizeImage", "CropImage"]
    assert spec["PreProcess"]["transform_ops"][2] == {"CropImage": {"size": 64}}
    assert "ResizeImage resize_short 64" in spec["Global"]["preprocess_added"]
    assert any("added ResizeImage" in note for note in report.notes)
    folder = tmp_path / "imgs"
    folder.mkdir()
    for name, (h, w) in {"small.jpg": (80, 100), "photo.jpg": (375, 500)}.items():
        cv2.imwrite(str(folder / name), np.full((h, w, 3), 90, np.uint8))
    for runtime in ("paddle", "onnx"):
        result = runner.invoke(app, ["predict", str(folder), "--model", str(tmp_path / "demo"), "--json",
                                     "--runtime", runtime])
        assert result.exit_code == 0, result.output
        data = json.loads(result.stdout)
        assert sorted(Path(r["file"]).name for r in data["results"]) == ["photo.jpg", "small.jpg"]


def test_image_size_works_with_a_recipe(tmp_path):
    import yaml

    out = tmp_path / "demo96"
    result = runner.invoke(app, ["export", "--recipe", "demo", "--image-size", "96", "--out", str(out),
                                 "-o", "Infer.PostProcess.class_id_map_file=null"])
    assert result.exit_code == 0, result.output
    spec = yaml.safe_load((out / "inference.yml").read_text())
    assert spec["Global"]["input_size"] == 96
    assert {"CropImage": {"size": 96}} in spec["PreProcess"]["transform_ops"]

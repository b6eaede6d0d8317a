"""PULC's non-square attribute models (person_attribute: 256x192) exported, predicted and served with their
post-process: the input as (height, width) through export, inference.yml, predictor and server."""

import cv2
import numpy as np
import pytest

from pcls.deploy.export.preprocess import input_size_of, taking_any_image, with_image_size
from pcls.deploy.paddlex_format import pcls_spec
from pcls.deploy.spec import input_hw, spec_input_size
from pcls.errors import PclsError


@pytest.fixture(scope="module")
def person_export(tmp_path_factory):
    """pulc-person_attribute's config exported as it is, with deterministic weights; (export dir, dygraph model)."""
    import pcls
    from pcls.config import load_config
    from pcls.deploy.export import export, request_from_config
    from pcls.utils.state_files import save_state_file
    from tests.reference import fill_weights

    root = tmp_path_factory.mktemp("pulc_person")
    cfg = load_config("pulc-person_attribute", [], is_recipe=True)
    model = pcls.create_model(cfg["Arch"]["name"], class_num=cfg["Arch"]["class_num"])
    fill_weights(model)
    model.eval()
    weights = root / "weights.pdparams"
    save_state_file({k: v.numpy() for k, v in model.state_dict().items()}, weights)
    request = request_from_config(cfg, root / "export", weights=str(weights))
    export(request)
    return root / "export", model


def _image(path, height, width, seed):
    cv2.imwrite(str(path), np.random.default_rng(seed).integers(0, 255, (height, width, 3), dtype=np.uint8))
    return path


def test_attribute_export_predicts_images_of_any_size(person_export, tmp_path):
    import paddle

    from pcls.deploy.postprocess import build_postprocess
    from pcls.deploy.predictor import Predictor
    from pcls.deploy.spec import read_spec

    export_dir, model = person_export
    assert read_spec(export_dir)["Global"]["input_size"] == [256, 192]  # image_shape [3, 256, 192]: [h, w]
    predictor = Predictor(export_dir, runtime="paddle", threads=1)
    images = [_image(tmp_path / "small.png", 100, 80, 0), _image(tmp_path / "large.png", 500, 375, 1)]
    arrays = np.stack([predictor.preprocess_one(p) for p in images])
    assert arrays.shape == (2, 3, 256, 192)
    with paddle.no_grad():
        expected = paddle.nn.functional.sigmoid(model(paddle.to_tensor(arrays))).numpy()
    scores = predictor.infer(arrays)
    np.testing.assert_allclose(scores, expected, rtol=1e-4, atol=1e-5)
    results = predictor.predict(images)
    decoded = build_postprocess({"name": "PersonAttribute", "glasses_threshold": 0.3, "hold_threshold": 0.6})(scores)
    for result, want in zip(results, decoded):
        assert len(result["output"]) == 26 and result["attributes"] == want["attributes"]
        assert result["output"] == want["output"] and result["class_ids"] == want["class_ids"]


def test_attribute_export_serves_its_decoded_attributes(person_export, tmp_path):
    from pcls.deploy.predictor import Predictor
    from tests.serve.conftest import b64, run, served

    export_dir, _ = person_export
    data = cv2.imencode(".jpg", np.random.default_rng(2).integers(0, 255, (120, 90, 3), dtype=np.uint8))[1].tobytes()
    want = Predictor(export_dir, runtime="paddle", threads=1).predict([data])[0]

    async def main():
        async with served(export_dir) as client:
            single = await client.post("/image-classification", json={"image": b64(data)})
            multi = await client.post("/predict", files=[("files", ("p.jpg", data, "image/jpeg"))])
            card = await client.get("/model")
            return single.json(), multi.json(), card.json()

    single, multi, card = run(main())
    result = single["result"]
    assert result["attributes"] == want["attributes"] and result["output"] == want["output"]
    # categories: the attributes over their thresholds, each with its own score (not the phrases above)
    assert [(c["id"], c["name"], c["score"]) for c in result["categories"]] == \
        [(i, str(i), pytest.approx(s, abs=1e-5)) for i, s in zip(want["class_ids"], want["scores"])]
    row = multi["results"][0]
    assert row["attributes"] == want["attributes"] and row["output"] == want["output"]
    assert card["input_size"] == [256, 192]


def test_input_size_is_an_int_when_square_and_height_width_else():
    assert spec_input_size(224) == 224 and spec_input_size([224, 224]) == 224
    assert spec_input_size((256, 192)) == [256, 192] and input_hw([256, 192]) == (256, 192)
    resize = [{"DecodeImage": None}, {"ResizeImage": {"size": [192, 256]}}]  # PaddleClas's [w, h]
    assert input_size_of(resize) == (256, 192)
    with pytest.raises(PclsError, match="--image-size sets a square input, but this pipeline's is 256x192"):
        with_image_size(resize, 224)
    ops, _ = taking_any_image([{"DecodeImage": None}], (256, 192))
    assert ops[1:] == [{"ResizeImage": {"resize_short": 256}}, {"CropImage": {"size": [192, 256]}}]
    # a PaddleX/PaddleClas folder states no size: read from its (non-square) resize
    paddlex = {"Global": {"model_name": "PP-LCNet_x1_0"}, "PostProcess": {"Topk": {"topk": 1}},
               "PreProcess": {"transform_ops": [{"ResizeImage": {"size": [192, 256]}}, {"ToCHWImage": None}]}}
    assert pcls_spec(paddlex)["Global"]["input_size"] == [256, 192]


@pytest.mark.parametrize("bad", ["256x192", [256], [256, 192, 3], [0, 192], True])
def test_a_hand_edited_input_size_is_refused_in_one_line(person_export, tmp_path, bad):
    import shutil

    import yaml

    from pcls.deploy.spec import SPEC_FILE, read_spec

    folder = tmp_path / "edited"
    shutil.copytree(person_export[0], folder)
    spec = yaml.safe_load((folder / SPEC_FILE).read_text())
    spec["Global"]["input_size"] = bad
    (folder / SPEC_FILE).write_text(yaml.safe_dump(spec))
    with pytest.raises(PclsError, match=r"Global.input_size must be an integer or \[height, width\]"):
        read_spec(folder)


def test_smoke_run_to_predict_and_eval_on_the_command_line(tmp_path, monkeypatch):
    """The README's path for an attribute task: predict shows the decoded attributes (table, CSV per class),
    eval's table shows ATTRMetric's figures (JSON the same)."""
    import csv
    import json

    from typer.testing import CliRunner

    from pcls.cli import app

    monkeypatch.chdir(tmp_path)
    runner = CliRunner()

    def ok(*args):
        result = runner.invoke(app, list(args))
        assert result.exit_code == 0, result.output
        return result.stdout

    ok("train", "--recipe", "pulc-person_attribute", "--smoke", "--keep-checkpoints", "-o", "Global.output_dir=out")
    run = "out/smoke/pulc-person_attribute"
    ok("export", "--recipe", "pulc-person_attribute", "--weights", f"{run}/best_model", "--out", "pa")
    image = _image(tmp_path / "wide.png", 375, 500, 3)
    table = ok("predict", str(image), "--model", "pa", "--csv", "p.csv")
    from pcls.deploy.predictor import Predictor

    want = Predictor("pa", runtime="paddle", threads=1).predict([image])[0]
    assert want["attributes"][0] in table and "HoldObjectsInFront" in table
    rows = list(csv.DictReader(open("p.csv")))
    assert [(int(r["class_id"]), r["label"]) for r in rows] == [(i, str(i)) for i in want["class_ids"]]
    evaluated = ok("eval", "-c", f"{run}/config.yaml", "--weights", f"{run}/best_model", "--device", "cpu")
    as_json = json.loads(ok("eval", "-c", f"{run}/config.yaml", "--weights", f"{run}/best_model", "--device", "cpu",
                            "--json"))
    for key in ("label_mA", "instance_acc", "instance_f1"):
        assert key in evaluated and f"{as_json[key]:.4f}" in evaluated

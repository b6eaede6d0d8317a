"""Infer.PostProcess by PaddleClas name: Topk, ThreshOutput (binary and multi-class), DistillationPostProcess
(its `func` on the exported model), recorded in inference.yml by `pcls export -c` and applied by the predictor."""

import numpy as np
import pytest

from pcls.deploy.postprocess import build_postprocess, resolve_postprocess
from pcls.errors import PclsError


def test_thresh_output_binary_picks_class_1_at_the_threshold():
    post = build_postprocess({"name": "ThreshOutput", "threshold": 0.7, "label_0": "normal", "label_1": "defect"})
    rows = post(np.array([[0.25, 0.75], [0.35, 0.65]], dtype=np.float32))
    assert [r["class_ids"] for r in rows] == [[1], [0]]
    assert [r["labels"] for r in rows] == [["defect"], ["normal"]]
    assert rows[1]["scores"][0] == pytest.approx(0.35)  # the class-0 score is 1 - p(class 1)


def test_thresh_output_multiclass_falls_back_to_the_default_label():
    post = build_postprocess({"name": "ThreshOutput", "threshold": 0.5, "default_label_index": 2},
                             labels=["a", "b", "c"])
    rows = post(np.array([[0.1, 0.8, 0.1], [0.4, 0.35, 0.25]], dtype=np.float32))
    assert [(r["class_ids"], r["labels"]) for r in rows] == [([1], ["b"]), ([2], ["c"])]


def test_distillation_post_process_becomes_its_func_for_the_exported_model():
    post = {"name": "DistillationPostProcess", "func": "ThreshOutput", "model_name": "Student", "threshold": 0.6,
            "topk": 5, "default_label_index": 0, "class_id_map_file": None}
    assert resolve_postprocess(post, "Student") == {"name": "ThreshOutput", "threshold": 0.6,
                                                    "default_label_index": 0}
    with pytest.raises(PclsError, match="model_name 'Teacher' is not the exported model 'Student'"):
        resolve_postprocess({**post, "model_name": "Teacher"}, "Student")
    assert resolve_postprocess({"name": "Topk", "topk": 3, "threshold": 0.0}) == {"name": "Topk", "topk": 3}


@pytest.mark.slow
def test_export_records_thresh_output_and_predict_applies_it(tmp_path):
    from pcls.config import load_config
    from pcls.deploy.export import export, request_from_config
    from pcls.deploy.predictor import Predictor
    import cv2

    cfg = load_config("demo", ["Infer.PostProcess.class_id_map_file=null", "Infer.PostProcess.name=ThreshOutput",
                               "Infer.PostProcess.threshold=0.99", "Infer.PostProcess.default_label_index=3"],
                      is_recipe=True)
    request = request_from_config(cfg, tmp_path / "export")
    request.weights = None  # random weights: no class reaches 0.99
    export(request)
    predictor = Predictor(tmp_path / "export")
    assert predictor.spec["PostProcess"]["name"] == "ThreshOutput"
    images = []
    for i in range(3):  # the demo recipe feeds 64x64 images as they are (no crop)
        images.append(tmp_path / f"img_{i}.png")
        cv2.imwrite(str(images[-1]), np.full((64, 64, 3), 60 * i + 20, np.uint8))
    scores = predictor.infer(np.stack([predictor.preprocess_one(p) for p in images]))
    assert scores.max() < 0.99
    for row, result in zip(scores, predictor.predict(images)):
        assert result["class_ids"] == [3] and result["scores"][0] == pytest.approx(float(row[3]))

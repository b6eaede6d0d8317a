"""`pcls.Predictor("ZooName")` from Python: the zoo model is exported once into $PCLS_HOME/inference/<name>/ (what
`pcls predict --model NAME` does) and reused; library code logs, it draws nothing."""

import cv2
import numpy as np
import pytest

pytest.importorskip("paddle")

import pcls  # noqa: E402
import pcls.deploy.export as export_package  # noqa: E402
from pcls.utils.logs import forward_logs  # noqa: E402


def test_predictor_takes_a_zoo_name_and_exports_it_once(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PCLS_HOME", str(tmp_path / "home"))
    real_export = export_package.export
    requests = []

    def offline_export(request, progress=None):  # no download here: random weights, a small input
        requests.append((request.model_name, request.weights, request.out_dir))
        request.weights, request.input_size, request.fmt = None, 32, "paddle"
        return real_export(request, progress)

    monkeypatch.setattr(export_package, "export", offline_export)
    image = tmp_path / "a.jpg"
    cv2.imwrite(str(image), np.full((50, 70, 3), 120, np.uint8))
    messages = []
    with forward_logs(messages.append):
        first = pcls.Predictor("MobileNetV1_x0_25", topk=3)
    assert requests == [("MobileNetV1_x0_25", "MobileNetV1_x0_25", tmp_path / "home" / "inference" / "MobileNetV1_x0_25")]
    assert len(first.predict([image])[0]["class_ids"]) == 3
    assert any("exporting zoo model MobileNetV1_x0_25" in m for m in messages)
    assert capsys.readouterr().out == ""  # the library logs; it prints nothing
    from pcls.deploy.zoo_export import prepared_model_dir

    assert prepared_model_dir("MobileNetV1_x0_25") == first.model_dir and len(requests) == 1  # reused

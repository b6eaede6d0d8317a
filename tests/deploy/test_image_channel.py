"""Global.image_channel: 4 (PaddleClas's NHWC fp16 configs pad a 4th channel in NormalizeImage and give the
stem 4 input channels): the export's input has 4 channels and predict feeds it."""

import cv2
import numpy as np
import pytest


@pytest.mark.slow
def test_export_takes_the_configs_image_channels(tmp_path):
    from pcls.config import load_config
    from pcls.deploy.export import export, request_from_config
    from pcls.deploy.predictor import Predictor

    ops = [{"DecodeImage": {"to_rgb": True, "channel_first": False}}, {"ResizeImage": {"size": 32}},
           {"NormalizeImage": {"scale": 0.00392157, "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225],
                               "order": "", "channel_num": 4}}, {"ToCHWImage": None}]
    raw = {"Global": {"image_channel": 4, "image_shape": [4, 32, 32]},
           "Arch": {"name": "ResNet18", "class_num": 5, "input_image_channel": 4},
           "Infer": {"transforms": ops, "PostProcess": {"name": "Topk", "topk": 2}}}
    path = tmp_path / "c.yaml"
    import yaml

    path.write_text(yaml.safe_dump(raw))
    request = request_from_config(load_config(path), tmp_path / "export")
    assert request.channels == 4
    export(request)
    image = tmp_path / "a.png"
    cv2.imwrite(str(image), np.full((40, 40, 3), 90, np.uint8))
    predictor = Predictor(tmp_path / "export")
    assert predictor.preprocess_one(image).shape == (4, 32, 32)
    assert len(predictor.predict([image])[0]["class_ids"]) == 2

"""`Arch.pretrained` as PaddleClas 2.6's PP-HGNetV2 and UniFormer configs set it: True loads the zoo's weights
for the backbone (fetched through the mirror), a path loads that file; both fine-tune (a new head)."""

from __future__ import annotations

from urllib.parse import urlsplit

import numpy as np
import pytest

from pcls.zoo import catalog
from pcls.utils.state_files import save_state_file

paddle = pytest.importorskip("paddle")
NAME = "PPHGNetV2_B0"  # PaddleClas's PPHGNetV2_B0.yaml sets Arch.pretrained: True


def _published(tmp_path):
    import pcls

    paddle.seed(11)
    model = pcls.create_model(NAME)  # stands in for the zoo's ImageNet weights
    return model, save_state_file(model.state_dict(), tmp_path / "published.pdparams")


def _assert_fine_tuned_from(model, published):
    head = tuple(model.classifier_prefixes())
    expected = published.state_dict()
    for key, value in model.state_dict().items():
        if key.startswith(head):
            assert 5 in value.shape  # the new 5-class head, not the published 1000-class one
        else:
            np.testing.assert_array_equal(value.numpy(), expected[key].numpy(), err_msg=key)


def test_arch_pretrained_true_loads_the_zoo_weights_of_the_backbone(file_server, pcls_home, monkeypatch, tmp_path):
    from pcls.engine.backbone import build_backbone

    published, served = _published(tmp_path)
    file_server.files["/m" + urlsplit(catalog.get_entry(NAME)["pretrained_url"]).path] = served.read_bytes()
    monkeypatch.setenv("PCLS_ZOO_MIRROR", file_server.url("/m"))
    model = build_backbone({"name": NAME, "class_num": 5, "pretrained": True})
    assert (pcls_home / "weights" / f"{NAME}.pdparams").read_bytes() == served.read_bytes()
    _assert_fine_tuned_from(model, published)


def test_arch_pretrained_path_loads_that_file(pcls_home, tmp_path):
    from pcls.engine.backbone import build_backbone

    published, served = _published(tmp_path)
    model = build_backbone({"name": NAME, "class_num": 5, "pretrained": str(served)})
    _assert_fine_tuned_from(model, published)

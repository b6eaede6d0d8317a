"""Xception's classifier sits one level down ('_exit_flow._out'): reset and prefixes must reach it."""

import pytest

paddle = pytest.importorskip("paddle")


def test_nested_classifier_reset_and_prefixes():
    import pcls

    model = pcls.create_model("Xception41", class_num=10)
    assert model.classifier_prefixes() == ["_exit_flow._out."]
    assert {k for k in model.state_dict() if k.startswith("_exit_flow._out.")} == {
        "_exit_flow._out.weight", "_exit_flow._out.bias"}
    model.reset_classifier(3)
    assert model.get_classifier().weight.shape == [2048, 3]
    model.eval()
    with paddle.no_grad():
        assert model(paddle.randn([1, 3, 64, 64])).shape == [1, 3]

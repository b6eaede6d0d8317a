"""The uniform model surface every family shares: classifier_prefixes name real state-dict keys, and
reset_classifier / class_num change exactly the classifier (one model per family)."""

import pytest

from tests.reference import ci_subset

paddle = pytest.importorskip("paddle")


@pytest.mark.parametrize("name", ci_subset())
def test_classifier_surface(name):
    import pcls

    with paddle.LazyGuard():
        model = pcls.create_model(name)
        keys = set(model.state_dict())
        prefixes = model.classifier_prefixes()
        assert prefixes and all(any(k.startswith(p) for k in keys) for p in prefixes)
        model.reset_classifier(7)
        reset = {k: tuple(v.shape) for k, v in model.state_dict().items()}
        small = {k: tuple(v.shape) for k, v in pcls.create_model(name, class_num=7).state_dict().items()}
    assert reset == small  # resetting equals building with class_num=7: same keys, same shapes
    assert model.pretrained_cfg["input_size"] > 0 and model.model_name == name


def test_return_patterns_work_for_any_family_in_paddleclas_bracket_form():
    import pcls

    model = pcls.create_model("MobileNetV1_x0_25", class_num=3, return_patterns=["blocks[2]"])
    model.eval()
    out = model(paddle.randn([1, 3, 64, 64]))
    assert list(out) == ["logits", "blocks.2"]
    assert out["logits"].shape == [1, 3] and out["blocks.2"].shape[0] == 1


def test_unknown_return_pattern_is_a_clear_error():
    import pcls
    from pcls.errors import PclsError

    with pytest.raises(PclsError, match="return pattern 'nope' is not a sub-layer"):
        pcls.create_model("MobileNetV1_x0_25", return_patterns=["nope"])


def test_use_ssld_selects_the_distilled_zoo_weights():
    from pcls.arch.registry import _zoo_weights_name

    assert _zoo_weights_name("ResNet50_vd", {"use_ssld": True}) == "ResNet50_vd_ssld"
    assert _zoo_weights_name("ResNet50_vd", {}) == "ResNet50_vd"
    assert _zoo_weights_name("ResNet18", {"use_ssld": True}) == "ResNet18"  # no distilled weights published

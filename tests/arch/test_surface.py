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

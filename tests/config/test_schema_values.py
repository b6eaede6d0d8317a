"""Values that mean nothing (0 epochs, 0 classes, an empty batch, top-0) are refused by the schema with one line
naming the key; the smallest meaningful value passes."""

import pytest

from pcls.config.schema import validate
from pcls.errors import PclsError


def _config(**sections):
    cfg = {"Global": {}, "Arch": {"name": "ResNet18"}}
    for path, value in sections.items():
        *parents, key = path.split("__")
        node = cfg
        for parent in parents:
            node = node.setdefault(parent, {})
        node[key] = value
    return cfg


@pytest.mark.parametrize("path", ["Global__epochs", "Global__class_num", "Arch__class_num",
                                  "DataLoader__Train__sampler__batch_size", "DataLoader__Eval__sampler__batch_size",
                                  "Infer__batch_size", "Infer__PostProcess__topk"])
@pytest.mark.parametrize("value", [0, -2])
def test_values_below_one_are_refused(path, value):
    with pytest.raises(PclsError) as err:
        validate(_config(**{path: value}))
    assert str(err.value) == f"config key {path.replace('__', '.')}: must be at least 1, got {value}"


def test_a_distilled_member_with_zero_classes_is_refused():
    arch = {"name": "DistillationModel", "models": [{"Teacher": {"name": "ResNet18", "class_num": 0}}]}
    with pytest.raises(PclsError, match=r"Arch.models\[0\].Teacher.class_num: must be at least 1, got 0"):
        validate({"Global": {}, "Arch": arch})


def test_one_is_enough():
    cfg = validate(_config(Global__epochs=1, Arch__class_num=1, DataLoader__Train__sampler__batch_size=1))
    assert (cfg["Global"]["epochs"], cfg["Arch"]["class_num"]) == (1, 1)

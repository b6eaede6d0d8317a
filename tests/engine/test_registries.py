"""Every registry is the one Registry class: a second object under a taken name is refused with the same
message shape, an unknown name gets "did you mean", the same object twice is harmless."""

import re

import pytest

from pcls.errors import PclsError


def _registries():
    from pcls.arch.registry import BACKBONES
    from pcls.data.datasets import DATASETS
    from pcls.data.transforms.registry import BATCH_OPERATORS, OPERATORS
    from pcls.engine.model import MODEL_KINDS, load_plugins
    from pcls.loss.registry import LOSSES
    from pcls.optim.lr import SCHEDULES
    from pcls.optim.optimizer import OPTIMIZERS

    load_plugins()  # the built-in model kinds (distillation) register themselves
    return {"backbone": (BACKBONES, "ResNet18"), "model kind": (MODEL_KINDS, "DistillationModel"),
            "loss": (LOSSES, "CELoss"), "optimizer": (OPTIMIZERS, "Momentum"), "schedule": (SCHEDULES, "Cosine"),
            "transform operator": (OPERATORS, "DecodeImage"), "batch operator": (BATCH_OPERATORS, "MixupOperator"),
            "dataset": (DATASETS, "ImageNetDataset")}


@pytest.mark.parametrize("kind", list(_registries()))
def test_each_registry_refuses_a_duplicate_name_with_the_same_message(kind):
    registry, taken = _registries()[kind]
    original = registry.get(taken)

    def impostor():
        pass

    with pytest.raises(PclsError) as err:
        registry.add(taken, impostor)
    shape = rf"{re.escape(kind)} '{taken}' is registered twice \(\S+ and {__name__}\); rename one of them"
    assert re.fullmatch(shape, err.value.message), err.value.message
    assert registry.get(taken) is original  # the first registration stands
    assert registry.add(taken, original) is original  # the same object again is harmless


@pytest.mark.parametrize("kind", list(_registries()))
def test_each_registry_names_an_unknown_entry_the_same_way(kind):
    registry, taken = _registries()[kind]
    with pytest.raises(PclsError, match=rf"^unknown {re.escape(kind)} '{taken}x'.*\(did you mean {taken}\?\)"):
        registry.get(taken + "x")


def test_the_public_decorators_refuse_duplicates_too():
    from pcls.arch.registry import register
    from pcls.loss.registry import register_loss
    from pcls.optim.lr import register_schedule
    from pcls.optim.optimizer import register_optimizer

    def ResNet18(class_num=1000):
        pass

    class CELoss:
        pass

    for add in (lambda: register(ResNet18), lambda: register_loss(CELoss), lambda: register_schedule("Cosine")(len),
                lambda: register_optimizer("SGD")(len)):
        with pytest.raises(PclsError, match="is registered twice"):
            add()


def test_backbone_lookup_helpers_keep_their_behaviour():
    from pcls.arch.registry import get_constructor, list_models, model_family

    assert "ResNet50_vd" in list_models("resnet50*") and model_family("ResNet50_vd") == "resnet"
    with pytest.raises(PclsError, match="unknown backbone 'ResNet5O'.*see 'pcls zoo list'"):
        get_constructor("ResNet5O")

"""Feature-distillation members of a DistillationModel: AFD's AttentionModel (backbone + connector, with a
frozen backbone) and return_patterns taps, as PaddleClas's configs write them; what gets deployed is the
plain student backbone."""

from pathlib import Path

import pytest
import yaml

from pcls.config.members import student_section

paddle = pytest.importorskip("paddle")
CONFIGS = Path(__file__).parents[1] / "recipes" / "paddleclas_configs" / "ImageNet" / "Distillation"


def _arch(method):
    return yaml.safe_load((CONFIGS / f"resnet34_distill_resnet18_{method}.yaml").read_text())["Arch"]


@pytest.mark.parametrize("method", ["afd", "mgd", "pefd"])
def test_the_deployed_student_is_the_plain_backbone(method):
    section = student_section(_arch(method))
    assert section["name"] == "ResNet18" and "return_patterns" not in section and "models" not in section


def test_attention_model_runs_its_connector_on_the_frozen_backbones_taps():
    from pcls.distill.model import build_distillation_model

    arch = _arch("afd")
    for item in arch["models"]:
        (_, member), = item.items()
        for inner in member["models"]:
            (_, part), = inner.items()
            part.pop("pretrained", None)
    model = build_distillation_model(arch, {})
    output = model(paddle.rand([2, 3, 224, 224]))
    teacher, student = output["Teacher"], output["Student"]
    assert list(teacher["query"].shape) == [2, 16, 128] and len(teacher["value"]) == 16
    assert list(student["bilinear_key"].shape) == [2, 8, 16, 128] and len(student["value"]) == 4  # 4 map sizes
    backbone = model.Teacher.ResNet34
    assert not backbone.training and all(p.stop_gradient for p in backbone.parameters())  # freeze_params_list
    assert not all(p.stop_gradient for p in model.Teacher.LinearTransformTeacher.parameters())
    assert set(model.student_state_dict()) == set(model.Student.ResNet18.state_dict())

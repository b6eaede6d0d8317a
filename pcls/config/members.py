"""The one reader of a DistillationModel's `Arch.models` (PaddleClas's `- Teacher: {name: ...}` list): the
schema checks it with this, distillation builds its models from it, smoke runs and recipe listings walk it,
export finds the student with it. Plain dicts only (no paddle)."""

from __future__ import annotations

from pcls.errors import PclsError


def distill_members(arch: dict, copy: bool = True) -> list:
    """[(label, backbone section)] of `Arch.models`, in order: copies, or with copy=False the config's own
    sections (to change them in place)."""
    members = member_sections(arch, copy)
    if len(members) < 2:
        raise PclsError("config key Arch.models: a DistillationModel needs at least two models, e.g. "
                        "'- Teacher: {name: ResNet50_vd}' and '- Student: {name: MobileNetV3_large_x1_0}'")
    return members


def member_sections(arch: dict, copy: bool = True) -> list:
    """distill_members without the count check (the schema checks each member first)."""
    members = []
    for index, item in enumerate(arch.get("models") or []):
        if not isinstance(item, dict) or len(item) != 1:
            raise PclsError(f"config key Arch.models[{index}]: expected a single-key map like "
                            f"'- Teacher: {{name: ResNet50_vd}}'")
        (label, section), = item.items()
        if not isinstance(section, dict) or "name" not in section:
            raise PclsError(f"config key Arch.models[{index}].{label}.name is required (the backbone of model "
                            f"'{label}')")
        members.append((label, dict(section) if copy else section))
    return members


def frozen_labels(arch: dict) -> list:
    """Labels of the models that do not learn (`freeze_params: true`, or true in Arch.freeze_params_list)."""
    members = distill_members(arch)
    freeze = list(arch.get("freeze_params_list") or [])
    if freeze and len(freeze) != len(members):
        raise PclsError(f"Arch.freeze_params_list has {len(freeze)} values for {len(members)} models")
    return [label for index, (label, cfg) in enumerate(members)
            if cfg.get("freeze_params") or (freeze and freeze[index])]


def student_label(arch: dict) -> str:
    """The deployable model: Arch.infer_model_name, else the first model that learns, else the last one."""
    labels = [label for label, _ in distill_members(arch)]
    frozen = frozen_labels(arch)
    label = arch.get("infer_model_name") or next((n for n in labels if n not in frozen), labels[-1])
    if label not in labels:
        raise PclsError(f"Arch.infer_model_name '{label}' is not one of Arch.models ({', '.join(labels)})")
    return label


def student_section(arch: dict) -> dict:
    """The backbone section (name, class_num, options) of the deployable model of a DistillationModel."""
    label = student_label(arch)
    section = dict(next(cfg for name, cfg in distill_members(arch) if name == label))
    if section.get("name") == "AttentionModel":  # AFD: the backbone, without its connector
        (_, backbone), = section["models"][0].items()
        section = {"class_num": section.get("class_num"), **backbone}
    section.pop("return_patterns", None)  # feature taps feed the losses; the deployed model gives logits
    if arch.get("class_num") and not section.get("class_num"):
        section["class_num"] = arch["class_num"]
    return section

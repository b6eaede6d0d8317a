"""Distillation as a model kind: `Arch.name: DistillationModel` builds the teacher/student wrapper
(pcls/distill/model.py) and brings the DistillationStrategy callback (pcls/distill/strategy.py), which
reads its options (`cache_teacher`) from `RunOptions.strategy`. Imported by pcls.engine.model.load_plugins,
also in processes that only check a config (a launched job's parent): both modules load when used, as
they import paddle."""

from pcls.engine.model import register_arch


def _strategy(run) -> list:
    from pcls.distill.strategy import DistillationStrategy

    return [DistillationStrategy(**run.options.strategy)]


@register_arch("DistillationModel", callbacks=_strategy)
def _build_distillation_model(arch_cfg: dict, global_cfg: dict):
    from pcls.distill.model import build_distillation_model

    return build_distillation_model(arch_cfg, global_cfg)

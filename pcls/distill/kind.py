"""Distillation as a model kind: `Arch.name: DistillationModel` builds the teacher/student wrapper
(pcls/distill/model.py) and brings the DistillationStrategy callback (pcls/distill/strategy.py), which
reads its options (`cache_teacher`) from `RunOptions.strategy`. Imported by pcls.engine.model.load_plugins."""

from pcls.distill.model import build_distillation_model
from pcls.distill.strategy import DistillationStrategy
from pcls.engine.model import register_arch

register_arch("DistillationModel", callbacks=lambda run: [DistillationStrategy(**run.options.strategy)])(
    build_distillation_model)

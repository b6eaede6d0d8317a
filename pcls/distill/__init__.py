"""Distillation: the DistillationModel wrapper (teacher/student from a config's Arch.models, read by
pcls/distill/config.py), the teacher-logit cache, the training callback (strategy.py) and the helpers
behind `pcls distill`. The engine registers `Arch.name: DistillationModel` (pcls/engine/model.py); the
losses live in pcls/loss/distillation.py. Importing this package imports no paddle."""

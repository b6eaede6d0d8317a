"""Distillation, a plugin of the engine: the DistillationModel wrapper (model.py; teacher/student from a
config's Arch.models, read by pcls/config/members.py), the teacher-logit cache (cache.py), the training
callback (strategy.py) and the helpers behind `pcls distill` (config.py, run.py). It registers itself as
the model kind `Arch.name: DistillationModel` (kind.py); the losses live in pcls/loss/distillation.py.
Importing this package imports no paddle."""

"""Distillation: the DistillationModel wrapper (teacher/student from a config's Arch.models), the teacher-logit
cache and the helpers behind `pcls distill`. Importing it registers `Arch.name: DistillationModel` with the
engine; the losses live in pcls/loss/distillation.py."""

from pcls.distill.model import DistillationModel  # noqa: F401  (registers the Arch builder)

__all__ = ["DistillationModel"]

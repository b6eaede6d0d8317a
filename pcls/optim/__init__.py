"""Optimizers and learning-rate schedules by PaddleClas name, plus per-stage rate multipliers."""

from pcls.optim.lr import Schedule, build_schedule, list_schedules, paddle_scheduler
from pcls.optim.optimizer import build_optimizer, list_optimizers
from pcls.optim.stages import apply_lr_mult, stage_layers

__all__ = ["Schedule", "build_schedule", "list_schedules", "paddle_scheduler", "build_optimizer",
           "list_optimizers", "apply_lr_mult", "stage_layers"]

"""Run a distillation config through the training engine (`pcls distill`); the engine adds the
distillation callback itself (pcls/distill/strategy.py) because the config's Arch is a DistillationModel."""

from __future__ import annotations

from pcls.engine.trainer import train


def run_distillation(cfg: dict, *, cache_teacher: bool = False, **options) -> dict:
    """Train a DistillationModel config; `options` are those of pcls.train (resume, nproc, gpus, device,
    exist_ok, callbacks, log, ...). The summary adds student_weights and student_model."""
    return train(cfg, strategy={"cache_teacher": cache_teacher}, **options)

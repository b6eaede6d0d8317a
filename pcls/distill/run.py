"""Run a distillation config through the training engine, with the teacher-logit cache when asked.
The trainer itself writes the plain student checkpoints (<run>/student/<tag>.pdparams) on every save."""

from __future__ import annotations


def run_distillation(cfg: dict, *, cache_teacher: bool = False, device=None, show_progress=True, log=print,
                     resume=None) -> dict:
    from pcls.distill.cache import enable_teacher_cache
    from pcls.engine.trainer import Trainer

    trainer = Trainer(cfg, resume=resume, device=device, show_progress=show_progress, log=log,
                      run_name=cfg["Global"].get("run_name"))
    if cache_teacher:  # one table per process: each rank sees its own share of the samples
        enable_teacher_cache(trainer.net, cfg["DataLoader"]["Train"], len(trainer.train_data.dataset),
                             trainer.class_num, trainer.run_dir / f"teacher_cache_rank{trainer.rank}", log)
    cache = getattr(trainer.net, "teacher_cache", None)
    try:
        summary = trainer.fit()
        if cache is not None:
            summary["teacher_cache"] = {"hits": cache.hits, "misses": cache.misses, "rows": len(cache)}
            log(f"teacher cache: {cache.hits} cached / {cache.misses} computed teacher outputs")
    finally:
        if cache is not None:
            cache.close()
    files = summary["files"]
    summary["student_weights"] = files.get("student_best_model", files.get("student_latest"))
    summary["student_model"] = getattr(trainer.net, "model_name", None)
    return summary

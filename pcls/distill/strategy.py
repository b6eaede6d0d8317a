"""What a distillation run adds to the training loop, as one callback: the frozen teacher in half precision
under AMP, the teacher-logit cache (--cache-teacher), and the plain student weights saved beside every
checkpoint (<run>/student/<tag>.pdparams) and named in the summary."""

from __future__ import annotations

import logging

from pcls.engine.callbacks import Callback

log = logging.getLogger(__name__)


class DistillationStrategy(Callback):
    def __init__(self, cache_teacher: bool = False):
        self.cache_teacher = cache_teacher
        self.cache = None

    def on_setup(self, trainer):
        net, run = trainer.net, trainer.run
        if trainer.parts.amp.enabled:
            net.teacher_to_half(trainer.parts.amp.dtype)  # a frozen teacher needs no float32 weights under AMP
        if self.cache_teacher:  # one table per process: each rank sees its own share of the samples
            from pcls.distill.cache import make_teacher_cache

            self.cache = make_teacher_cache(net, run.train_loader, len(trainer.train_data.dataset), run.class_num,
                                            trainer.run_dir / f"teacher_cache_rank{run.rank}")
            net.use_teacher_cache(self.cache)

    def on_checkpoint(self, trainer, tag, path):
        from pcls.utils.state_files import save_state_file

        save_state_file(trainer.net.student_state_dict(), trainer.run_dir / "student" / f"{tag}.pdparams")

    def on_train_end(self, trainer, summary):
        if self.cache is not None:
            cache = self.cache
            summary["teacher_cache"] = {"hits": cache.hits, "misses": cache.misses, "rows": len(cache)}
            log.info("teacher cache: %d cached / %d computed teacher outputs", cache.hits, cache.misses)
            trainer.net.use_teacher_cache(None)
            cache.close()
            self.cache = None
        files = summary["files"]
        for tag in ("best_model", "latest"):
            path = trainer.run_dir / "student" / f"{tag}.pdparams"
            if path.exists():
                files[f"student_{tag}"] = str(path)
        summary["student_weights"] = files.get("student_best_model", files.get("student_latest"))
        summary["student_model"] = trainer.net.model_name

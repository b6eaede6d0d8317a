"""Run a distillation config through the training engine, then write the student as a plain checkpoint."""

from __future__ import annotations

from pathlib import Path

from pcls.errors import PclsError

STUDENT_DIR = "student"


def student_weights(run_dir, infer_model_name: str = "Student") -> dict:
    """Turn a distillation run's best_model / latest (Teacher.* + Student.* keys) into plain student
    checkpoints under <run>/student/, loadable by `pcls eval` and `pcls export` without the wrapper."""
    from pcls.zoo.weights import load_state_file, save_state_file

    run_dir = Path(run_dir)
    prefix = f"{infer_model_name}."
    written = {}
    for tag in ("best_model", "latest"):
        source = run_dir / f"{tag}.pdparams"
        if not source.exists():
            continue
        state = load_state_file(source)
        student = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
        if not student:
            raise PclsError(f"{source} has no '{prefix}*' weights: is it a distillation checkpoint?")
        target = run_dir / STUDENT_DIR / f"{tag}.pdparams"
        save_state_file(student, target)
        written[tag] = str(target)
    return written


def run_distillation(cfg: dict, *, cache_teacher: bool = False, device=None, show_progress=True, log=print,
                     resume=None) -> dict:
    from pcls.distill.cache import enable_teacher_cache
    from pcls.engine.trainer import Trainer

    trainer = Trainer(cfg, resume=resume, device=device, show_progress=show_progress, log=log,
                      run_name=cfg["Global"].get("run_name"))
    if cache_teacher:
        enable_teacher_cache(trainer.net, cfg["DataLoader"]["Train"], len(trainer.train_data.dataset),
                             trainer.class_num, trainer.run_dir / "teacher_cache", log)
    summary = trainer.fit()
    student = getattr(trainer.net, "infer_model_name", "Student")
    files = student_weights(trainer.run_dir, student)
    summary["student_weights"] = files.get("best_model", files.get("latest"))
    summary["student_model"] = getattr(trainer.net, "model_name", None)
    cache = getattr(trainer.net, "teacher_cache", None)
    if cache is not None:
        summary["teacher_cache"] = {"hits": cache.hits, "misses": cache.misses, "rows": len(cache)}
        log(f"teacher cache: {cache.hits} cached / {cache.misses} computed teacher outputs")
    return summary

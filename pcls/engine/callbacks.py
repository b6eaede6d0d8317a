"""Callbacks: what happens around the training loop without being part of it. The loop calls every
callback at these points, in this order:

    setup          components built (and a checkpoint restored); nothing trained yet
    train_start    before the first epoch
    epoch_start    before each epoch
    batch_end      after each batch (`step.update` tells whether the optimizer stepped)
    checkpoint     after a checkpoint was written (`tag`: latest, best_model, epoch_N)
    eval_end       after an evaluation (`metrics`: val_top1, val_loss, ...)
    epoch_end      after each epoch (`row`: the epoch's metrics, as in metrics.jsonl)
    interrupt      a first Ctrl-C / SIGTERM stopped the run at an update boundary
    train_end      the run is over (`summary`: what `train` returns; callbacks may add to it)

A callback overrides the methods it needs (`eval_end` may add entries to `metrics`); `trainer` gives the
run's state (`epoch`, `global_step`, `lr`, `history`, `run`, `parts`, `net`, `run_dir`, `is_main`), and
`trainer.stop()` ends the run after the current epoch. Built in: EMA, checkpoints, the run log (metrics,
curves, config), step logging, the recipe report; the model kind adds its own (distillation); the CLI adds
a progress bar.

    class PrintLoss(pcls.Callback):
        def on_epoch_end(self, trainer, row):
            print(row["epoch"], row["train_loss"])

    pcls.train(cfg, callbacks=[PrintLoss()])
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from pcls.utils.text import metric_text, rate

log = logging.getLogger(__name__)

EVENTS = ("setup", "train_start", "epoch_start", "batch_end", "checkpoint", "eval_end", "epoch_end", "interrupt",
          "train_end")


@dataclass
class StepInfo:
    """One batch: its index in the epoch (1-based), whether the optimizer stepped, the running epoch
    metrics (loss, top-k) and the throughput so far."""

    batch: int
    update: bool
    metrics: dict
    images_per_s: float


class Callback:
    #: True when the callback shows per-batch progress itself: the engine then logs no step lines
    shows_steps = False

    def on_setup(self, trainer): ...

    def on_train_start(self, trainer): ...

    def on_epoch_start(self, trainer): ...

    def on_batch_end(self, trainer, step: StepInfo): ...

    def on_checkpoint(self, trainer, tag: str, path: Path): ...

    def on_eval_end(self, trainer, metrics: dict): ...

    def on_epoch_end(self, trainer, row: dict): ...

    def on_interrupt(self, trainer): ...

    def on_train_end(self, trainer, summary: dict): ...


class CallbackList:
    """Calls one event on every callback, in order (a callback without that method is skipped)."""

    def __init__(self, callbacks):
        self.callbacks = list(callbacks)

    def __call__(self, event: str, *args) -> None:
        for callback in self.callbacks:
            hook = getattr(callback, f"on_{event}", None)
            if hook is not None:
                hook(*args)


def epoch_line(row: dict, epochs: int) -> str:
    parts = [f"epoch {row['epoch']}/{epochs}"]
    for key in ("train_loss", "train_top1", "val_loss", "val_top1", "val_top5", "ema_val_top1"):
        if key in row:
            parts.append(f"{key} {metric_text(key, row[key])}")
    parts.append(f"lr {row['lr']:.2e}")
    parts.append(f"{rate(row['images_per_s'])} img/s")
    return "  ".join(parts)


class StepLog(Callback):
    """A log line every `Global.print_batch_step` batches (rank 0)."""

    def on_batch_end(self, trainer, step):
        if trainer.is_main and step.batch % trainer.run.print_batch_step == 0:
            top = trainer.parts.step_metric
            log.info("epoch %d step %d/%d loss %.4f %s %s lr %.6f %s img/s", trainer.epoch + 1, step.batch,
                     trainer.parts.batches_per_epoch, step.metrics["loss"], top, metric_text(top, step.metrics[top]),
                     trainer.lr, rate(step.images_per_s))


class EmaFollower(Callback):
    """EMA.decay: the averaged weights follow every optimizer update, and every evaluation also evaluates
    them (`ema_val_*`). Their state is saved with each checkpoint (`<tag>_ema.pdparams`)."""

    def __init__(self, ema):
        self.ema = ema

    def on_batch_end(self, trainer, step):
        if step.update:
            self.ema.update(trainer.net)

    def on_eval_end(self, trainer, metrics):
        with self.ema.applied_to(trainer.net):
            metrics.update(trainer.evaluate(prefix="ema_val_", autocast=False))


class Checkpointer(Callback):
    """`latest` after every epoch (and every `Global.save_steps` updates mid-epoch, and on interrupt),
    `epoch_N` every `save_interval` epochs and at the end, `best_model` when the tracked metric improves."""

    def on_batch_end(self, trainer, step):
        run = trainer.run
        mid_epoch = step.batch < trainer.parts.batches_per_epoch
        if step.update and mid_epoch and run.save_steps and trainer.global_step % run.save_steps == 0:
            trainer.save("latest", with_meter=True)

    def on_epoch_end(self, trainer, row):
        self._maybe_best(trainer, row)
        trainer.save("latest")
        if trainer.epoch % trainer.run.save_interval == 0 or trainer.epoch == trainer.run.epochs:
            trainer.save(f"epoch_{trainer.epoch}")

    def on_interrupt(self, trainer):
        resume = f"pcls train --resume {trainer.run_dir}"
        if trainer.batch_in_epoch:  # stopped inside an epoch: keep that position
            path = trainer.save("latest", with_meter=True)
            log.warning("interrupted: saved %s at epoch %d, batch %d; continue with: %s", path, trainer.epoch + 1,
                        trainer.batch_in_epoch, resume)
        else:
            log.warning("interrupted after epoch %d; continue with: %s", trainer.epoch, resume)

    @staticmethod
    def _maybe_best(trainer, row):
        best = trainer.best
        value = row.get(best["metric"])
        if value is None or (best["value"] is not None and value <= best["value"]):
            return
        trainer.best = {"metric": best["metric"], "value": value, "epoch": row["epoch"]}
        trainer.save_best(row)


class RunLogWriter(Callback):
    """config.yaml at the start, metrics.jsonl/.csv (and VisualDL) and a log line every epoch, curves.png at
    the end."""

    def __init__(self):
        self.runlog = None

    def on_train_start(self, trainer):
        from pcls.engine.runlog import RunLog

        self.runlog = RunLog(trainer.run_dir, enabled=trainer.is_main, visualdl=trainer.run.use_visualdl)
        self.runlog.start(trainer.run.cfg)

    def on_epoch_end(self, trainer, row):
        self.runlog.epoch_end(trainer.history)
        if trainer.is_main:
            log.info("%s", epoch_line(row, trainer.run.epochs))

    def on_train_end(self, trainer, summary):
        if summary["status"] == "done":
            summary["files"].update(self.runlog.finish(trainer.history))
        else:
            self.runlog.close()


class RecipeReport(Callback):
    """For configs with a Reference block (every recipe): achieved vs documented, into result.json and
    the summary (`recipe_result`)."""

    def __init__(self, recipe: str = None, smoke: bool = False):
        self.recipe, self.smoke = recipe, smoke

    def on_train_end(self, trainer, summary):
        cfg = trainer.run.cfg
        if not cfg.get("Reference") or summary["status"] != "done" or not trainer.is_main:
            return
        from pcls.recipes.report import RESULT_FILE, write_result

        best, final = summary["best"], summary["final"]
        top1 = best.get("value") if best.get("metric") == "val_top1" else final.get("val_top1")
        summary["recipe_result"] = write_result(
            trainer.run_dir, cfg, recipe=self.recipe or Path(cfg.get("_source", "config")).stem, top1=top1,
            top5=final.get("val_top5"), world_size=trainer.run.world, epochs_run=trainer.epoch,
            device=trainer.run.device, smoke=self.smoke)
        summary["files"]["result"] = str(trainer.run_dir / RESULT_FILE)

"""The training progress bar the CLI shows: a pcls.Callback drawing one Rich bar per epoch on stderr."""

from __future__ import annotations

import time

from pcls.cli.common import progress
from pcls.engine.callbacks import Callback
from pcls.utils.text import metric_text, rate


class ProgressBar(Callback):
    name = "StepLog"  # the bar replaces the engine's step log lines (a built-in of that name)
    REDRAW_S = 0.25  # redraws at most this often, from the training thread

    def __init__(self):
        self.bar = self.task = None
        self._drawn = 0.0

    def on_epoch_start(self, trainer):
        if not trainer.is_main:
            return
        self.bar = progress()
        # No Rich refresh thread: waking 10x/s to redraw beside the training thread, it cost ~15% of a demo
        # epoch (mean of 1-epoch runs 21.9 s with it, 18.7 s without; CHANGELOG, #18). on_batch_end redraws.
        self.bar.live.auto_refresh = False
        self.bar.start()
        self.task = self.bar.add_task(f"epoch {trainer.epoch + 1}/{trainer.run.epochs}",
                                      total=trainer.parts.batches_per_epoch, completed=trainer.batch_in_epoch,
                                      rate="", info="")

    def on_batch_end(self, trainer, step, batch, outputs):
        if self.bar is None:
            return
        top = trainer.parts.step_metric
        redraw = time.monotonic() - self._drawn >= self.REDRAW_S
        if redraw:
            self._drawn = time.monotonic()
        self.bar.update(self.task, advance=1, rate=f"{rate(step.images_per_s)} img/s", refresh=redraw,
                        info=f"loss {step.metrics['loss']:.4f} {top} {metric_text(top, step.metrics[top])} "
                             f"lr {trainer.lr:.2e}")
        if step.batch == trainer.parts.batches_per_epoch:
            self._stop()  # before evaluation and the epoch line

    def _stop(self):
        if self.bar is not None:
            self.bar.stop()
            self.bar = None

    def on_epoch_end(self, trainer, row):
        self._stop()

    def on_interrupt(self, trainer):
        self._stop()

    def on_train_end(self, trainer, summary):
        self._stop()

"""Training progress as plain events, so that one display draws a run wherever it trains: `ProgressEvents` turns
the loop's callbacks into events (rank 0, batch events throttled); in a launched job `ProgressRelay` writes them
into rank 0's log as `pcls-progress {json}` lines, and the parent reads them back (`parse_progress_line`) and
hands them to its parent-side callbacks (`runs_in_parent = True`, `on_progress(event)`).

The events (dicts, JSON-safe):

    {"event": "epoch_start", "epoch": 1-based, "epochs": N, "total": batches in the epoch, "completed": done already}
    {"event": "batch", "batch": 1-based index in the epoch, "images_per_s": whole job, "loss": running loss,
     "metric": the step metric's name (top1, ...), "value": its running value, "lr": the last update's rate}
    {"event": "epoch_end"} / {"event": "interrupt"} / {"event": "train_end"}
    {"event": "job_end"}: from the parent itself, once the launched job is over (rank 0 may have died first)
"""

from __future__ import annotations

import json
import math
import sys
import time
from typing import Optional

from pcls.engine.callbacks import Callback

RELAY_PREFIX = "pcls-progress "
ENDS = ("epoch_end", "interrupt", "train_end", "job_end")


class ProgressEvents(Callback):
    """The event source: calls `self.on_progress(event)` at rank 0's epoch starts, batch ends (at most every
    `INTERVAL_S`, and always for an epoch's last batch), epoch ends, interrupts and the end of training."""

    INTERVAL_S = 0.25  # a display gains nothing from more; each event costs the training thread a little
    name = "StepLog"  # the display replaces the engine's step log lines (the built-in of that name)
    _sent = -math.inf  # time.monotonic() of the last batch event

    def on_progress(self, event: dict) -> None: ...

    def on_epoch_start(self, trainer):
        if trainer.is_main:
            self.on_progress({"event": "epoch_start", "epoch": trainer.epoch + 1, "epochs": trainer.run.epochs,
                              "total": trainer.parts.batches_per_epoch, "completed": trainer.batch_in_epoch})

    def on_batch_end(self, trainer, step, batch, outputs):
        if not trainer.is_main:
            return
        now = time.monotonic()
        if now - self._sent < self.INTERVAL_S and step.batch != trainer.parts.batches_per_epoch:
            return
        self._sent = now
        top = trainer.parts.step_metric
        self.on_progress({"event": "batch", "batch": step.batch, "images_per_s": float(step.images_per_s),
                          "loss": float(step.metrics["loss"]), "metric": top, "value": float(step.metrics[top]),
                          "lr": float(trainer.lr)})

    def on_epoch_end(self, trainer, row):
        self._end(trainer, "epoch_end")

    def on_interrupt(self, trainer):
        self._end(trainer, "interrupt")

    def on_train_end(self, trainer, summary):
        self._end(trainer, "train_end")

    def _end(self, trainer, kind: str) -> None:
        if trainer.is_main:
            self.on_progress({"event": kind})


class ProgressRelay(ProgressEvents):
    """In rank 0 of a launched job (train_distributed sends it when the parent has a parent-side callback):
    each event as one `pcls-progress {json}` line on stderr, which the launcher keeps in workerlog.0."""

    def on_progress(self, event: dict) -> None:
        # one write per line, flushed: the parent reads the log while it grows and takes only whole lines
        sys.stderr.write(progress_line(event) + "\n")
        sys.stderr.flush()


def progress_line(event: dict) -> str:
    return RELAY_PREFIX + json.dumps(event, separators=(",", ":"))


def parse_progress_line(line: str) -> Optional[dict]:
    """The event a relay line carries; None for any other line. A relay line that does not parse (cut short)
    is an empty event, so that it is still kept out of the user's log."""
    if not line.startswith(RELAY_PREFIX):
        return None
    try:
        event = json.loads(line[len(RELAY_PREFIX):])
    except ValueError:
        return {}
    return event if isinstance(event, dict) else {}

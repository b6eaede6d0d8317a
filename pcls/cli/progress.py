"""The training progress bar the CLI shows: one Rich bar per epoch on stderr, drawn from progress events
(pcls/engine/progress_events.py): the trainer's own in a single process, rank 0's relayed ones in a launched job."""

from __future__ import annotations

from pcls.cli.common import progress
from pcls.engine.progress_events import ENDS, ProgressEvents
from pcls.utils.text import metric_text, rate


class ProgressBar(ProgressEvents):
    runs_in_parent = True  # a launched job keeps the bar in the pcls process and feeds it rank 0's events

    def __init__(self):
        self.bar = self.task = None
        self.total = 0

    def on_progress(self, event: dict) -> None:
        kind = event.get("event")
        if kind == "epoch_start":
            self._stop()
            self.bar = progress()
            # No Rich refresh thread: waking 10x/s to redraw beside the training thread, it cost ~15% of a demo
            # epoch (mean of 1-epoch runs 21.9 s with it, 18.7 s without; CHANGELOG, #18). Events redraw it.
            self.bar.live.auto_refresh = False
            self.bar.start()
            self.total = event["total"]
            self.task = self.bar.add_task(f"epoch {event['epoch']}/{event['epochs']}", total=self.total,
                                          completed=event["completed"], rate="", info="")
        elif kind == "batch" and self.bar is not None:
            metric = event["metric"]
            self.bar.update(self.task, completed=event["batch"], rate=f"{rate(event['images_per_s'])} img/s",
                            info=f"loss {event['loss']:.4f} {metric} {metric_text(metric, event['value'])} "
                                 f"lr {event['lr']:.2e}", refresh=True)
            if event["batch"] >= self.total:
                self._stop()  # before evaluation and the epoch line
        elif kind in ENDS:
            self._stop()

    def _stop(self):
        if self.bar is not None:
            self.bar.stop()
            self.bar = None

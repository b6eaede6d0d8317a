"""What a run leaves besides weights: config.yaml, metrics.jsonl + metrics.csv (one row per epoch),
curves.png (loss, top-1 train/val, lr) and, with Global.use_visualdl, VisualDL scalars. Rank 0 only."""

from __future__ import annotations

import csv
import io
import json
import logging
from pathlib import Path

from pcls.utils.io import atomic_write_text, record_written

CURVES = "curves.png"
log = logging.getLogger(__name__)


class RunLog:
    def __init__(self, run_dir, *, enabled=True, visualdl=False):
        self.run_dir = Path(run_dir)
        self.enabled = enabled
        self.vdl = None
        self._want_vdl = visualdl

    def start(self, cfg) -> None:
        if not self.enabled:
            return
        self.run_dir.mkdir(parents=True, exist_ok=True)
        from pcls.config import dump_config

        atomic_write_text(self.run_dir / "config.yaml", dump_config(cfg))
        if self._want_vdl:
            try:
                from visualdl import LogWriter

                self.vdl = LogWriter(logdir=str(self.run_dir / "vdl"))
                record_written(self.run_dir / "vdl", folder=True)
            except ImportError:
                log.warning("Global.use_visualdl: visualdl is not installed (pip install visualdl); "
                            "skipping VisualDL logging")

    def epoch_end(self, history) -> None:
        """Rewrite metrics.jsonl/.csv from the full history (a resumed run drops the rows it redoes)."""
        if not self.enabled:
            return
        atomic_write_text(self.run_dir / "metrics.jsonl", "".join(json.dumps(row) + "\n" for row in history))
        keys = []
        for row in history:
            keys += [k for k in row if k not in keys]
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=keys)
        writer.writeheader()
        writer.writerows(history)
        atomic_write_text(self.run_dir / "metrics.csv", buf.getvalue())
        if self.vdl is not None and history:
            row = history[-1]
            for key, value in row.items():
                if key != "epoch" and isinstance(value, (int, float)):
                    self.vdl.add_scalar(tag=key, value=value, step=row["epoch"])

    def finish(self, history) -> dict:
        """Write curves.png; returns {"curves": path} or {} when matplotlib is missing."""
        if not self.enabled:
            return {}
        self.close()
        if not history:  # no epoch finished (an interrupted first epoch): nothing to draw, nothing to install
            return {}
        try:
            path = plot_curves(history, self.run_dir / CURVES)
        except OSError as err:  # a full disk: the summary (small, written next) matters more than the picture
            log.warning("%s not written: %s; the run's metrics are in metrics.csv", CURVES, err.strerror or err)
            return {}
        if path is None:
            log.info("curves.png skipped: matplotlib is not installed (pip install 'pcls[plot]')")
            return {}
        return {"curves": str(path)}

    def close(self) -> None:
        if self.vdl is not None:
            self.vdl.close()
            self.vdl = None


def loss_scale(losses) -> str:
    """'log' when the losses span more than 10x (a first-epoch val loss of 21 beside later ones of 0.1 would
    flatten the rest of the curve on a linear axis), else 'linear'."""
    positive = [v for v in losses if v is not None and v > 0]
    return "log" if positive and max(positive) > 10 * min(positive) else "linear"


def plot_curves(history, path):
    """Loss, top-1 (train and val) and lr per epoch in one PNG; None without matplotlib or history."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    if not history:
        return None
    epochs = [row["epoch"] for row in history]

    def series(key):
        pts = [(row["epoch"], row[key]) for row in history if row.get(key) is not None]
        return [p[0] for p in pts], [p[1] for p in pts]

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    losses = []
    for key, label in (("train_loss", "train"), ("val_loss", "val")):
        axes[0].plot(*series(key), marker="o", label=label)
        losses += series(key)[1]
    scale = loss_scale(losses)
    axes[0].set_yscale(scale)
    axes[0].set_title("loss (log scale)" if scale == "log" else "loss")
    for key, label in (("train_top1", "train"), ("val_top1", "val"), ("ema_val_top1", "val (EMA)")):
        xs, ys = series(key)
        if xs:
            axes[1].plot(xs, ys, marker="o", label=label)
    axes[1].set_title("top-1 accuracy")
    axes[2].plot(epochs, [row["lr"] for row in history], marker="o")
    axes[2].set_title("learning rate (last update of the epoch)")
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    for ax in axes[:2]:
        if ax.get_lines():  # a multi-label run has no top-1 series: no legend to draw
            ax.legend()
    fig.tight_layout()
    from pcls.utils.io import atomic_path

    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
    return path

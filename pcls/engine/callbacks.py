"""Callbacks: what happens around the training loop without being part of it. The loop calls every
callback at these points, in this order:

    setup          components built (and the model's weights restored); nothing trained yet
    train_start    before the first epoch
    epoch_start    before each epoch
    batch_end      after each batch: `step` (StepInfo: index, whether the optimizer stepped, running
                   metrics), `batch` (images, labels) and `outputs` ({"output": model output, "loss": loss})
    eval_end       after an evaluation (`metrics`: val_top1, val_loss, ...; callbacks may add to it)
    epoch_end      after each epoch (`row`: the epoch's metrics, as in metrics.jsonl)
    interrupt      a first Ctrl-C / SIGTERM stopped the run at an update boundary
    checkpoint     after a checkpoint was written (`tag`: latest, best_model, epoch_N), once the event that
                   asked for it (`trainer.request_checkpoint`) is over: never from inside another event
    train_end      the run is over (`summary`: what `train` returns; callbacks may add to it)

Callbacks run in `priority` order (lower first; ties keep their order), and a callback replaces the
built-in of the same `name` (a progress bar named "StepLog" replaces the step log lines). A callback with
state returns it from `state_dict()`: it is saved with every checkpoint and handed back to
`load_state_dict()` on resume (plain values go into the checkpoint's JSON; a callback with `state_file`
set, e.g. "_ema.pdparams", keeps arrays in that file beside the checkpoint). Built in: EMA, best-model
tracking, checkpoints, the run log (metrics, curves, config), step logging, the recipe report; the model
kind adds its own (distillation); the CLI adds a progress bar. A config names more in
`Global.callbacks: [{name: EarlyStopping, patience: 3}]`, built from `CALLBACKS` in every process.

    class PrintLoss(pcls.Callback):
        def on_epoch_end(self, trainer, row):
            print(row["epoch"], row["train_loss"])

    pcls.train(cfg, callbacks=[PrintLoss()])            # nproc=2 too: each process gets a copy (`portable`)

A callback with `runs_in_parent = True` is the exception: a launched job keeps it in the calling process and
feeds it rank 0's progress events (`on_progress`); the progress bar is one.
"""

from __future__ import annotations

import importlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path

from pcls.errors import PclsError
from pcls.utils.registry import Registry
from pcls.utils.text import metric_text, rate

log = logging.getLogger(__name__)

EVENTS = ("setup", "train_start", "epoch_start", "batch_end", "eval_end", "epoch_end", "interrupt", "checkpoint",
          "train_end")
# priorities: lower runs first
HIGH, NORMAL, LOW = 25, 50, 75
CALLBACKS = Registry("callback", where="Global.callbacks")


def register_callback(name: str = None):
    """Register a Callback class so that configs can name it in Global.callbacks (under its class name)."""
    return CALLBACKS.register(*([name] if name else []))


@dataclass
class StepInfo:
    """One batch: its index in the epoch (1-based), whether the optimizer stepped, the running epoch
    metrics (loss, top-k) and the throughput so far."""

    batch: int
    update: bool
    metrics: dict
    images_per_s: float


class Callback:
    #: the built-in this callback replaces when it has the same name (default: the class name)
    name: str = None
    #: lower runs first (HIGH 25, NORMAL 50, LOW 75)
    priority: int = NORMAL
    #: None: state_dict() holds plain values (the checkpoint's JSON); a suffix: arrays, in that file
    state_file: str = None
    #: True: in a launched job this callback stays in the pcls process (it is not sent to the workers) and
    #: receives rank 0's progress as `on_progress(event)` (pcls/engine/progress_events.py); the progress bar
    runs_in_parent: bool = False

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None: ...

    def on_setup(self, trainer): ...

    def on_train_start(self, trainer): ...

    def on_epoch_start(self, trainer): ...

    def on_batch_end(self, trainer, step: StepInfo, batch, outputs: dict): ...

    def on_eval_end(self, trainer, metrics: dict): ...

    def on_epoch_end(self, trainer, row: dict): ...

    def on_interrupt(self, trainer): ...

    def on_checkpoint(self, trainer, tag: str, path: Path): ...

    def on_train_end(self, trainer, summary: dict): ...


def key_of(callback) -> str:
    """A callback's name (its `name`, else its class name); duck-typed callbacks work too."""
    return getattr(callback, "name", None) or type(callback).__name__


class CallbackList:
    """The run's callbacks in priority order; user callbacks replace the built-ins of the same name.
    Calls one event on every callback (a callback without that method is skipped)."""

    def __init__(self, builtins, user=()):
        user = list(user)
        replaced = {key_of(c) for c in user}
        ordered = [c for c in builtins if key_of(c) not in replaced] + user
        self.callbacks = sorted(ordered, key=lambda c: getattr(c, "priority", NORMAL))  # stable: ties keep order

    def __call__(self, event: str, *args) -> None:
        for callback in self.callbacks:
            hook = getattr(callback, f"on_{event}", None)
            if hook is not None:
                hook(*args)

    def get(self, name: str):
        return next((c for c in self.callbacks if key_of(c) == name), None)

    def states(self) -> tuple:
        """({name: plain state} for the JSON, {suffix: array state} for files) of the stateful callbacks."""
        plain, files = {}, {}
        for callback in self.callbacks:
            state = callback.state_dict() if hasattr(callback, "state_dict") else None
            if not state:
                continue
            suffix = getattr(callback, "state_file", None)
            if suffix:
                files[suffix] = state
            else:
                plain[key_of(callback)] = state
        return plain, files

    def load_states(self, plain: dict, files: dict) -> None:
        for callback in self.callbacks:
            if not hasattr(callback, "load_state_dict"):
                continue
            suffix = getattr(callback, "state_file", None)
            state = files.get(suffix) if suffix else plain.get(key_of(callback))
            if state is not None:
                callback.load_state_dict(state)


def from_config(specs) -> list:
    """The callbacks `Global.callbacks` declares: `[{name: Registered, option: value, ...}]`."""
    built = []
    for index, spec in enumerate(specs or []):
        if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
            raise PclsError(f"config key Global.callbacks[{index}]: expected a mapping with a 'name', e.g. "
                            f"{{name: EarlyStopping, patience: 3}}, got {spec!r}")
        options = {k: v for k, v in spec.items() if k != "name"}
        cls = CALLBACKS.get(spec["name"])
        try:
            built.append(cls(**options))
        except TypeError as err:
            raise PclsError(f"config key Global.callbacks[{index}] ({spec['name']}): {err}") from None
    return built


def portable(callback) -> dict:
    """A Python callback as a spec another process rebuilds (`rebuild`): its importable class and its
    attributes, which must be plain values (JSON). Refused in one line otherwise."""
    cls = type(callback)
    where = f"{cls.__module__}:{cls.__qualname__}"
    if not isinstance(callback, Callback) or cls.__module__ == "__main__" or "<locals>" in cls.__qualname__:
        raise PclsError(f"callback {where} cannot be sent to the worker processes of a multi-process run: "
                        f"subclass pcls.Callback in an importable module (not __main__ or a function), or "
                        f"register it and name it in Global.callbacks")
    try:
        attrs = json.loads(json.dumps(vars(callback)))
    except (TypeError, ValueError):
        raise PclsError(f"callback {where} holds values other than plain data ({', '.join(vars(callback))}), "
                        f"so it cannot be sent to the worker processes; create such values in on_setup") from None
    return {"class": where, "attrs": attrs}


def rebuild(spec: dict):
    """The callback `portable` described (in a launched worker)."""
    module, _, qualname = spec["class"].partition(":")
    obj = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    if not (isinstance(obj, type) and issubclass(obj, Callback)):
        raise PclsError(f"{spec['class']} is not a pcls.Callback")
    callback = obj.__new__(obj)
    callback.__dict__.update(spec["attrs"])
    return callback


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

    priority = LOW

    def on_batch_end(self, trainer, step, batch, outputs):
        if trainer.is_main and step.batch % trainer.run.print_batch_step == 0:
            top = trainer.parts.step_metric
            log.info("epoch %d step %d/%d loss %.4f %s %s lr %.6f %s img/s", trainer.epoch + 1, step.batch,
                     trainer.parts.batches_per_epoch, step.metrics["loss"], top, metric_text(top, step.metrics[top]),
                     trainer.lr, rate(step.images_per_s))


class Ema(Callback):
    """EMA.decay: an averaged copy of the weights (float32, also under AMP O2, where one update of 1-decay
    would be below half precision's resolution), following every optimizer update; every evaluation also
    evaluates it (`ema_val_*`), and it is saved with each checkpoint (`<tag>_ema.pdparams`)."""

    priority = HIGH  # the average is current before anything else looks at the step
    state_file = "_ema.pdparams"

    def __init__(self, decay: float):
        self.decay = decay
        self.ema = None

    def on_setup(self, trainer):
        from pcls.engine.ema import ModelEMA

        self.ema = ModelEMA(trainer.net, self.decay)

    def state_dict(self) -> dict:
        return self.ema.state_dict() if self.ema is not None else {}

    def load_state_dict(self, state) -> None:
        self.ema.set_state_dict(state)

    def on_batch_end(self, trainer, step, batch, outputs):
        if step.update:
            self.ema.update(trainer.net)

    def on_eval_end(self, trainer, metrics):
        with self.ema.applied_to(trainer.net):
            metrics.update(trainer.evaluate(prefix="ema_val_"))


class BestModel(Callback):
    """`best_model` (weights, with the EMA's beside them): the epoch with the best tracked metric,
    `val_<main metric>` (top1; mAP for multi-label), or `train_<...>` in a run without evaluation."""

    def __init__(self):
        self.best = None

    def on_setup(self, trainer):
        if self.best is None:
            split = "val" if trainer.parts.eval_data else "train"
            self.best = {"metric": f"{split}_{trainer.parts.main_metric}", "value": None, "epoch": None}

    def state_dict(self) -> dict:
        return dict(self.best or {})

    def load_state_dict(self, state) -> None:
        self.best = dict(state)

    def on_epoch_end(self, trainer, row):
        value = row.get(self.best["metric"])
        if value is None or (self.best["value"] is not None and value <= self.best["value"]):
            return
        self.best = {"metric": self.best["metric"], "value": value, "epoch": row["epoch"]}
        trainer.request_checkpoint("best_model", metrics=row)


class Checkpointer(Callback):
    """`latest` after every epoch (and every `Global.save_steps` updates mid-epoch, and on interrupt),
    `epoch_N` every `save_interval` epochs and at the end."""

    def __init__(self):
        self.interrupted = False

    def on_batch_end(self, trainer, step, batch, outputs):
        run = trainer.run
        mid_epoch = step.batch < trainer.parts.batches_per_epoch
        if step.update and mid_epoch and run.save_steps and trainer.global_step % run.save_steps == 0:
            trainer.request_checkpoint("latest", with_meter=True)

    def on_epoch_end(self, trainer, row):
        trainer.request_checkpoint("latest")
        if trainer.epoch % trainer.run.save_interval == 0 or trainer.epoch == trainer.run.epochs:
            trainer.request_checkpoint(f"epoch_{trainer.epoch}")

    def on_interrupt(self, trainer):
        if trainer.batch_in_epoch:  # stopped inside an epoch: keep that position
            self.interrupted = True
            trainer.request_checkpoint("latest", with_meter=True)
        else:
            log.warning("interrupted after epoch %d; continue with: pcls train --resume %s", trainer.epoch,
                        trainer.run_dir)

    def on_checkpoint(self, trainer, tag, path):
        if self.interrupted and tag == "latest":
            log.warning("interrupted: saved %s at epoch %d, batch %d; continue with: pcls train --resume %s", path,
                        trainer.epoch + 1, trainer.batch_in_epoch, trainer.run_dir)


class RunLogWriter(Callback):
    """config.yaml at the start, metrics.jsonl/.csv (and VisualDL) and a log line every epoch, curves.png at
    the end."""

    priority = LOW

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

    priority = LOW

    def on_train_end(self, trainer, summary):
        cfg, options = trainer.run.cfg, trainer.run.options
        if not cfg.get("Reference") or summary["status"] != "done" or not trainer.is_main:
            return
        from pcls.recipes.report import RESULT_FILE, write_result

        best, final = summary["best"], summary["final"]
        # the last evaluation's metrics, with the tracked one at its best epoch (the weights best_model keeps)
        metrics = {key[len("val_"):]: value for key, value in final.items() if key.startswith("val_")}
        if best.get("value") is not None and best["metric"].startswith("val_"):
            metrics[best["metric"][len("val_"):]] = best["value"]
        summary["recipe_result"] = write_result(
            trainer.run_dir, cfg, recipe=options.recipe or Path(cfg.get("_source", "config")).stem, metrics=metrics,
            world_size=trainer.run.world, epochs_run=trainer.epoch, device=trainer.run.device, smoke=options.smoke)
        summary["files"]["result"] = str(trainer.run_dir / RESULT_FILE)


@register_callback()
class EarlyStopping(Callback):
    """End the run when `monitor` (a metrics.jsonl column, e.g. val_top1) has not improved by more than
    `min_delta` for `patience` epochs (`Global.callbacks: [{name: EarlyStopping, patience: 5}]`)."""

    def __init__(self, monitor: str = "val_top1", patience: int = 5, min_delta: float = 0.0, mode: str = "max"):
        if mode not in ("max", "min") or int(patience) < 1:
            raise PclsError(f"EarlyStopping: mode must be max or min and patience at least 1, got {mode}, {patience}")
        self.monitor, self.patience, self.min_delta, self.mode = monitor, int(patience), float(min_delta), mode
        self.best_value, self.waited = None, 0

    def state_dict(self) -> dict:
        return {"best_value": self.best_value, "waited": self.waited}

    def load_state_dict(self, state) -> None:
        self.best_value, self.waited = state["best_value"], int(state["waited"])

    def on_epoch_end(self, trainer, row):
        if self.monitor not in row:
            return
        value = row[self.monitor] if self.mode == "max" else -row[self.monitor]
        if self.best_value is None or value > self.best_value + self.min_delta:
            self.best_value, self.waited = value, 0
            return
        self.waited += 1
        if self.waited >= self.patience:
            log.info("early stop: %s has not improved for %d epochs", self.monitor, self.waited)
            trainer.stop()

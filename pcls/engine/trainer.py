"""The training loop (dygraph): one process, or one rank of a `paddle.distributed.launch` job.

    summary = pcls.train(cfg)                          # cfg: a path or a dict from pcls.load_config
    summary = pcls.train(cfg, nproc=2)                 # 2 CPU processes (gloo); gpus="0,1" for GPUs
    summary = pcls.train(cfg, resume="output/ResNet18", callbacks=[MyCallback()])
    summary = pcls.train(recipe="demo", smoke=True)      # keywords: pcls.engine.run_config.RunOptions

`Trainer` builds the run from its config and RunOptions (pcls/engine/run_config.py, components.py), restores
a checkpoint when asked and runs the epochs; each batch's update is the Updater's (pcls/engine/updater.py);
everything around the loop -- EMA, best-model tracking, checkpoints, the run log, step logging, the recipe
report, distillation's extras, a progress bar -- is a callback (pcls/engine/callbacks.py), and checkpoints
are written when callbacks ask for them, after the event that asked.
The run directory `Global.output_dir/<run>` holds `latest.*`, `best_model.*`, `epoch_N.*`, `config.yaml`,
`metrics.jsonl`/`metrics.csv`, `curves.png` and `summary.json`. Only rank 0 writes.

The learning rate reported everywhere (bar, step and epoch lines, metrics.jsonl, summary) is the rate of
the latest optimizer update: for an epoch, the rate of its last update.
"""

from __future__ import annotations

import contextlib
import json
import logging
import signal
import time
from pathlib import Path

from pcls.engine.callbacks import (BestModel, CallbackList, Checkpointer, RecipeReport, RunLogWriter, StepInfo,
                                   StepLog)
from pcls.engine.callbacks import from_config as callbacks_from_config
from pcls.engine.components import build_components, prepare_builtin_data, preflight
from pcls.engine.env import join_process_group, seed_everything, select_device, world_info
from pcls.engine.metrics import LossTermMeter
from pcls.engine.parallel import plan_processes
from pcls.engine.run_config import RunConfig, RunOptions, run_directory, validated
from pcls.errors import PclsError
from pcls.utils.logs import forward_logs
from pcls.utils.signals import SignalScope
from pcls.utils.text import count

log = logging.getLogger(__name__)


class _StopFlag(SignalScope):
    """First Ctrl-C (or SIGTERM): finish the current update, save, exit cleanly. Second Ctrl-C: abort."""

    def __init__(self):
        self.raised = False

    def _handle(self, signum, frame):
        if self.raised and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.raised = True


class Trainer:
    """One training run: resolved config, components, position (epoch, batch, update), callbacks."""

    def __init__(self, cfg, options: RunOptions = None, *, callbacks=(), log=None, **option_fields):
        """`options`: a RunOptions (pcls.train builds one); or its fields as keywords (resume=..., ...).
        `callbacks`: pcls.Callback objects; `log`: a callable that also receives the run's log messages."""
        self._forward = contextlib.ExitStack()
        if log is not None:
            self._forward.enter_context(forward_logs(log))
        try:
            cfg = validated(cfg)
            if options is None:
                options = RunOptions.build(cfg, **option_fields)
            elif option_fields:
                raise TypeError("give Trainer a RunOptions or its fields as keywords, not both")
            self._build(cfg, options, callbacks)
        except BaseException:
            self._forward.close()
            raise

    def _build(self, cfg, options: RunOptions, callbacks):
        rank, world = world_info()
        if world == 1:  # a launched job's parent has done this already
            prepare_builtin_data(cfg)
        preflight(cfg, options, world)
        device = select_device(options.device)
        target = run_directory(cfg, options, rank == 0)
        self.run = run = RunConfig.from_config(cfg, options, run_dir=target, device=device, rank=rank, world=world)
        self.cpu_threads = None  # Paddle's math-library threads, set on purpose on CPU (pcls/engine/cpu.py)
        if device == "cpu":
            from pcls.engine.allocator import reuse_freed_memory
            from pcls.engine.cpu import configure_threads

            self.cpu_threads = configure_threads(world, int(run.train_loader["loader"]["num_workers"]))
            reuse_freed_memory()
        if world > 1:
            join_process_group()
        if run.seed is not None:
            seed_everything(int(run.seed))
        restored = None
        if run.resume:
            from pcls.engine.checkpoint import load_checkpoint

            restored = load_checkpoint(run.resume)
        self.parts = build_components(run, int(restored["state"]["global_step"]) if restored else 0)
        self.updater = self.parts.updater
        builtins = [*self.parts.callbacks, BestModel(), Checkpointer(), RunLogWriter(), StepLog(), RecipeReport()]
        self.callbacks = CallbackList(builtins, [*callbacks_from_config(run.callbacks), *callbacks])
        # position (the update counter is the updater's)
        self.epoch, self.batch_in_epoch = 0, 0
        self.history, self.meter, self._partial_meter = [], None, None
        self._eval_network = None  # what evaluate() runs the Eval batches through (TrainingEvalNetwork)
        self.loss_terms, self._partial_terms = None, None  # LossTermMeter of the current epoch
        self._stop_after_epoch = False
        self._pending, self._dispatching = [], False
        if restored:
            self._restore(restored)
        self._emit("setup", self)
        if restored:  # after setup, which creates what the callbacks' states are loaded into (EMA's copy)
            state = restored["state"]
            plain = state.get("callbacks") or ({"BestModel": state["best"]} if state.get("best") else {})
            self.callbacks.load_states(plain, restored["extra"])

    # -- what callbacks and tests read -----------------------------------------------------------------
    @property
    def is_main(self) -> bool:
        return self.run.is_main

    @property
    def run_dir(self) -> Path:
        return self.run.run_dir

    @property
    def net(self):
        return self.parts.net

    @property
    def optimizer(self):
        return self.parts.optimizer

    @property
    def train_data(self):
        return self.parts.train_data

    @property
    def global_step(self) -> int:
        return self.updater.global_step

    @property
    def lr(self) -> float:
        """The learning rate of the latest optimizer update."""
        return self.updater.lr

    @property
    def best(self) -> dict:
        """{"metric", "value", "epoch"} of the best epoch so far (the BestModel callback's record)."""
        tracker = self.callbacks.get("BestModel")
        return dict(getattr(tracker, "best", None) or {})

    def stop(self) -> None:
        """End the run after the current epoch (a callback's early stop; the summary says 'done')."""
        self._stop_after_epoch = True

    # -- events and checkpoints ---------------------------------------------------------------------
    def _emit(self, event: str, *args) -> None:
        """Call `event` on every callback, then write the checkpoints they asked for, each followed by its
        `checkpoint` event: a checkpoint is never written, nor announced, from inside another event."""
        self.callbacks(event, *args)
        if self._dispatching:
            return
        self._dispatching = True
        try:
            while self._pending:
                tag, with_meter, metrics = self._pending.pop(0)
                path = self._write_checkpoint(tag, with_meter, metrics)
                if self.is_main:
                    self.callbacks("checkpoint", self, tag, path)
        finally:
            self._dispatching = False

    def request_checkpoint(self, tag: str, *, with_meter: bool = False, metrics: dict = None) -> None:
        """Write checkpoint `tag` once the current event is over (rank 0 writes). `with_meter` keeps the
        current epoch's running metrics (a save inside an epoch); `metrics`: a weights-only checkpoint
        (best_model) recording them."""
        if (tag, with_meter, metrics) not in self._pending:
            self._pending.append((tag, with_meter, metrics))

    def _write_checkpoint(self, tag: str, with_meter: bool, metrics) -> Path:
        from pcls.engine.checkpoint import optimizer_state, rng_state, save_checkpoint

        path = self.run_dir / tag
        # a save inside an epoch keeps the epoch's running metrics summed over the ranks (every rank is here:
        # mid-epoch saves happen at the same update everywhere); rank 0 resumes them, the others start empty
        meters = self._job_meter_states() if with_meter and self.meter is not None else None
        if not self.is_main:
            return path
        plain, files = self.callbacks.states()
        if metrics is not None:  # best_model: the weights (and the EMA's) of the epoch `metrics`
            state = {"arch": self.run.arch, "metrics": metrics, "callbacks": plain}
            save_checkpoint(path, self.net.state_dict(), state=state, extra_files=files)
            return path
        state = {"epoch": self.epoch, "batch_in_epoch": self.batch_in_epoch, "epochs": self.run.epochs,
                 "world_size": self.run.world, "process_batch": self.run.batch_size, "history": self.history, "rng": rng_state(), "config": self.run.cfg,
                 "callbacks": plain, **self.updater.state_dict()}
        if meters is not None:
            state["epoch_meter"], state["epoch_loss_terms"] = meters
        save_checkpoint(path, self.net.state_dict(), optimizer_state(self.optimizer, self.net), state,
                        extra_files=files)
        return path

    def _job_meter_states(self):
        """(epoch meter, loss terms) states of the current epoch so far, over all ranks."""
        import copy

        meter, terms = copy.deepcopy(self.meter), copy.deepcopy(self.loss_terms)
        if self.run.world > 1:
            meter.all_reduce()
            terms.all_reduce()
        return meter.state(), terms.state()

    def _stop_now(self, stop: _StopFlag) -> bool:
        """Whether the run stops here (after an update or an epoch). In a multi-process run every rank stops
        when any was asked to: Ctrl-C reaches the ranks at slightly different moments, and a rank that went on
        alone would wait for the others' gradients forever."""
        if self.run.world == 1:
            return stop.raised
        import paddle
        import paddle.distributed as dist

        asked = paddle.to_tensor([int(stop.raised)], dtype="int32")
        dist.all_reduce(asked, op=dist.ReduceOp.MAX)
        return bool(asked.item())

    def _restore(self, loaded) -> None:
        from pcls.engine.checkpoint import load_optimizer_state, set_rng_state

        from pcls.zoo.weights import apply_state

        state = loaded["state"]
        # strict, and one error naming what does not fit (paddle's set_state_dict warns once per tensor)
        apply_state(self.net, loaded["model"], str(loaded["prefix"]), verbose=False,
                    hint=" (--resume continues the model the checkpoint was saved from: keep its Arch settings)")
        if loaded["optimizer"] is not None:
            load_optimizer_state(self.optimizer, self.net, loaded["optimizer"])
        self.updater.load_state_dict(state)
        if state.get("world_size", 1) != self.run.world:
            log.warning("resuming a %s-process run with %d process(es): the data order of the current epoch "
                        "differs from the original run", state.get("world_size"), self.run.world)
        self.epoch = int(state["epoch"])
        self.batch_in_epoch = int(state.get("batch_in_epoch", 0))
        self.history = [row for row in state.get("history", []) if row["epoch"] <= self.epoch]
        if self.history:
            self.updater.lr = self.history[-1]["lr"]
        if state.get("rng"):
            set_rng_state(state["rng"])
        if state.get("epoch_meter") and self.batch_in_epoch and self.run.is_main:  # the job's sums: rank 0's
            meter = self.parts.train_meter()
            meter.load_state(state["epoch_meter"])
            self._partial_meter = meter
            if state.get("epoch_loss_terms"):
                self._partial_terms = LossTermMeter()
                self._partial_terms.load_state(state["epoch_loss_terms"])
        where = f"epoch {self.epoch + 1}" + (f", batch {self.batch_in_epoch}" if self.batch_in_epoch else "")
        log.info("resumed from %s at %s (update %d)", loaded["prefix"], where, self.global_step)

    # -- one epoch ----------------------------------------------------------------------------------
    def _batches(self):
        """The epoch's batches from the current position (a resumed run skips what it trained on)."""
        sampler, start = self.train_data.sampler, self.batch_in_epoch
        sampler.set_epoch(self.epoch)
        if hasattr(sampler, "set_start_batch"):
            sampler.set_start_batch(start)
            return iter(self.train_data.loader)
        batches = iter(self.train_data.loader)  # a sampler without resume support: replay and drop
        for _ in range(start):
            next(batches)
        return batches

    def _train_epoch(self, stop: _StopFlag):
        """Train from the current position to the end of the epoch; returns (meter, images/s, interrupted)."""
        import paddle

        from pcls.loss.ce import logits_of

        parts = self.parts
        self.meter, self._partial_meter = (self._partial_meter or parts.train_meter()), None
        self.loss_terms, self._partial_terms = (self._partial_terms or LossTermMeter()), None
        parts.model.train()
        seen, started, rate = 0, time.perf_counter(), 0.0
        batch = self.batch_in_epoch
        for images, labels in self._batches():
            if batch >= parts.batches_per_epoch:
                break
            batch += 1
            boundary = batch % self.run.update_freq == 0 or batch == parts.batches_per_epoch
            losses = {}

            def loss_of(out):
                losses.update(parts.train_loss(out, labels))
                return losses["loss"]

            output, loss = self.updater.update(lambda: parts.model(images), loss_of, boundary)
            with paddle.no_grad():
                self.meter.update(logits_of(output, parts.train_key or "logits").astype("float32"), labels, loss)
                self.loss_terms.update(parts.train_loss.named_terms(losses), len(labels))
            seen += len(labels)
            self.batch_in_epoch = batch
            rate = seen * self.run.world / max(time.perf_counter() - started, 1e-9)
            self._emit("batch_end", self, StepInfo(batch, boundary, self.meter.result(), rate), (images, labels),
                       {"output": output, "loss": loss})
            if boundary and self._stop_now(stop):
                return self.meter, rate, True
        self.meter.all_reduce()
        self.loss_terms.all_reduce()
        return self.meter, seen * self.run.world / max(time.perf_counter() - started, 1e-9), False

    def evaluate(self, prefix: str = "val_") -> dict:
        """`<prefix>top1`, `<prefix>loss`, ... of the model's current weights on the Eval loader (under
        auto_cast with AMP.use_fp16_test or O2: pcls/engine/amp.py)."""
        from pcls.engine.evaluator import TrainingEvalNetwork, run_eval  # paddle: not in a launched job's parent

        parts = self.parts
        if hasattr(parts.eval_data.sampler, "set_epoch"):
            parts.eval_data.sampler.set_epoch(self.epoch)
        if self._eval_network is None:
            self._eval_network = TrainingEvalNetwork(self.run, parts)
        meter = run_eval(self._eval_network(), parts.eval_data.loader, loss_fn=parts.eval_loss,
                         meter=parts.eval_meter(), output_key=parts.eval_key, autocast=parts.amp.eval_autocast)
        return {f"{prefix}{k}": v for k, v in meter.result().items() if k != "samples"}

    def _eval_due(self) -> bool:
        run, done = self.run, self.epoch + 1
        return self.parts.eval_data is not None and done > run.start_eval_epoch and \
            (done % run.eval_interval == 0 or done == run.epochs)

    # -- the run ------------------------------------------------------------------------------------
    def fit(self) -> dict:
        import warnings

        try:
            with warnings.catch_warnings():  # scoped: the caller's warning filters are left as they were
                # paddle repeats this BatchNorm notice on every training forward
                warnings.filterwarnings("ignore", message="When training, we now always track global mean")
                return self._fit()
        finally:
            self._forward.close()

    def _fit(self) -> dict:
        run, status, started = self.run, "done", time.perf_counter()
        self._emit("train_start", self)
        log.info("training %s for %s x %s on %s%s; run directory %s", run.arch["name"], count(run.epochs, "epoch"),
                 count(self.parts.batches_per_epoch, "batch", "batches"), run.device,
                 f" x {run.world} processes" if run.world > 1 else "",
                 run.run_dir)
        with _StopFlag() as stop:
            while self.epoch < run.epochs:
                self._emit("epoch_start", self)
                epoch_started = time.perf_counter()
                meter, rate, interrupted = self._train_epoch(stop)
                if interrupted:
                    status = "interrupted"
                    self._emit("interrupt", self)
                    break
                row = {"epoch": self.epoch + 1, "lr": self.lr, "images_per_s": rate,
                       "seconds": time.perf_counter() - epoch_started}
                row.update({f"train_{k}": v for k, v in meter.result().items() if k != "samples"})
                row.update({f"train_{k}": v for k, v in self.loss_terms.result().items()})
                if self._eval_due():
                    metrics = self.evaluate()
                    self._emit("eval_end", self, metrics)  # callbacks may add metrics (EMA: ema_val_*)
                    row.update(metrics)
                self.history.append(row)
                self.epoch, self.batch_in_epoch = self.epoch + 1, 0
                self._emit("epoch_end", self, row)
                if self._stop_after_epoch:
                    break
                if self._stop_now(stop):
                    status = "interrupted"
                    self._emit("interrupt", self)
                    break
        summary = self._summary(status, time.perf_counter() - started)
        self._emit("train_end", self, summary)
        # an interrupted or partial run lists only what exists
        summary["files"] = {k: v for k, v in summary["files"].items() if Path(v).exists()}
        if self.is_main:
            from pcls.utils.io import atomic_write_text

            atomic_write_text(self.run_dir / "summary.json", json.dumps(summary, indent=1, default=str))
        return summary

    def _summary(self, status, seconds) -> dict:
        run_dir = self.run_dir
        return {
            "status": status,
            "run_dir": str(run_dir),
            "epochs_done": self.epoch,
            "seconds": round(seconds, 1),
            "processes": self.run.world,
            **({"processes_reason": self.run.options.processes_reason} if self.run.options.processes_reason else {}),
            "best": self.best,
            "final": self.history[-1] if self.history else {},
            "files": {
                "best_model": str(run_dir / "best_model.pdparams"),
                "latest": str(run_dir / "latest.pdparams"),
                "metrics_jsonl": str(run_dir / "metrics.jsonl"),
                "metrics_csv": str(run_dir / "metrics.csv"),
                "config": str(run_dir / "config.yaml"),
            },
        }


def train(cfg=None, *, callbacks=(), log=None, **options) -> dict:
    """Train as `cfg` says (a config path or a dict from pcls.load_config; or `recipe=NAME` alone); returns
    the summary: status ('done' / 'interrupted'), run_dir (the one actually used), best metric, final epoch
    metrics, files.

    `options` are RunOptions fields (pcls.engine.run_config): resume, device, nproc/gpus/ips (a
    multi-process job; on the CPU nproc defaults to Global.cpu_processes, "auto": data parallel when it pays,
    the config's batch split over the processes, pcls.engine.parallel), scale_lr, ref_batch, run_name, run_dir, exist_ok, recipe, smoke, strategy. A new run
    never writes into a directory holding another run: it takes the next free name (`<run>-2`, ...), or with
    exist_ok=True replaces that run's files. `callbacks`: pcls.Callback objects (in a multi-process run,
    every process gets a copy: see pcls.engine.callbacks.portable). `log`: a callable that also receives the
    run's log messages.
    """
    if cfg is None and options.get("recipe"):
        cfg = options["recipe"]
    elif cfg is None and options.get("resume"):  # continue a run with the config it saved
        from pcls.engine.run_config import resumed_config

        cfg = resumed_config(options["resume"])
    elif cfg is None:
        raise PclsError("nothing to train: pass a config (path or dict), recipe=NAME or resume=RUN_DIR")
    if isinstance(cfg, (str, Path)):
        from pcls.config import load_config

        cfg = load_config(str(cfg), is_recipe=cfg == options.get("recipe"))
    cfg = validated(cfg)
    options = RunOptions.build(cfg, **options)
    if options.smoke:
        from pcls.recipes.smoke import smoke_run

        cfg, options = smoke_run(cfg, options)
    with forward_logs(log) if log else contextlib.nullcontext():
        prepare_builtin_data(cfg)  # first: the process count depends on the number of training images
        options = plan_processes(cfg, options, callbacks)  # data parallel on the CPU by default
        if options.distributed:
            from pcls.engine.launch import train_distributed

            return train_distributed(cfg, options, callbacks)
    return Trainer(cfg, options, callbacks=callbacks, log=log).fit()

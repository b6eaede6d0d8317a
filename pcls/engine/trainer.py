"""The training loop (dygraph): one process, or one rank of a `paddle.distributed.launch` job.

    summary = pcls.train(cfg)                          # cfg: a path or a dict from pcls.load_config
    summary = pcls.train(cfg, nproc=2)                 # 2 CPU processes (gloo); gpus="0,1" for GPUs
    summary = pcls.train(cfg, resume="output/ResNet18", callbacks=[MyCallback()])

`Trainer` builds the run (pcls/engine/run_config.py, pcls/engine/components.py), restores a checkpoint
when asked and runs the epochs; everything around the loop -- checkpoints, the run log, step logging, the
recipe report, distillation's extras, a progress bar -- is a callback (pcls/engine/callbacks.py).
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

from pcls.engine.callbacks import CallbackList, Checkpointer, RecipeReport, RunLogWriter, StepInfo, StepLog
from pcls.engine.components import build_components, prepare_builtin_data, preflight
from pcls.engine.env import seed_everything, select_device, world_info
from pcls.engine.evaluator import run_eval
from pcls.engine.rundir import allocate_run_dir, claim_for_resume, run_dir_of
from pcls.engine.run_config import RunConfig, validated
from pcls.utils.logs import forward_logs
from pcls.utils.text import count

log = logging.getLogger(__name__)


class _StopFlag:
    """First Ctrl-C (or SIGTERM): finish the current update, save, exit cleanly. Second Ctrl-C: abort."""

    def __init__(self):
        self.raised = False
        self._previous = {}

    def __enter__(self):
        import threading

        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.getsignal(sig)
                signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.raised and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.raised = True

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def _target_run_dir(cfg, resume, run_name, run_dir, exist_ok, is_main) -> Path:
    """The directory this run writes to: given (a worker, or the caller decided), the resumed run's own,
    or a fresh one that holds no other run (rundir.allocate_run_dir)."""
    if run_dir:
        return Path(run_dir)
    if resume and not run_name:  # a resumed run keeps writing where it was (a PaddleClas run's folder: beside it)
        from pcls.engine.checkpoint import checkpoint_prefix
        from pcls.engine.paddleclas_runs import is_paddleclas_checkpoint

        prefix = checkpoint_prefix(resume)
        if not is_paddleclas_checkpoint(prefix):
            return claim_for_resume(prefix.parent) if is_main else prefix.parent
    wanted = run_dir_of(cfg, run_name)
    return allocate_run_dir(wanted, exist_ok=exist_ok) if is_main else wanted


class Trainer:
    """One training run: resolved config, components, position (epoch, batch, update), callbacks."""

    def __init__(self, cfg, *, resume=None, device=None, scale_lr=False, ref_batch=256, run_name=None,
                 run_dir=None, exist_ok=False, callbacks=(), cache_teacher=False, recipe=None,
                 show_progress=False, log=None):
        # show_progress: accepted for old callers; progress display is a callback (pcls.cli.progress)
        import warnings

        # paddle repeats this BatchNorm notice on every training forward; matplotlib logs font scans
        warnings.filterwarnings("ignore", message="When training, we now always track global mean")
        logging.getLogger("matplotlib").setLevel(logging.WARNING)
        self._forward = contextlib.ExitStack()
        if log is not None:
            self._forward.enter_context(forward_logs(log))
        try:
            self._build(cfg, resume, device, scale_lr, ref_batch, run_name, run_dir, exist_ok, callbacks,
                        cache_teacher, recipe)
        except BaseException:
            self._forward.close()
            raise

    def _build(self, cfg, resume, device, scale_lr, ref_batch, run_name, run_dir, exist_ok, callbacks,
               cache_teacher, recipe):
        cfg = validated(cfg)
        rank, world = world_info()
        if rank == 0 and not run_dir:  # a launched job's parent has done this already
            prepare_builtin_data(cfg)
        preflight(cfg, resume, world)
        device = select_device(device or cfg["Global"]["device"])
        target = _target_run_dir(cfg, resume, run_name, run_dir, exist_ok, rank == 0)
        self.run = run = RunConfig.from_config(cfg, run_dir=target, resume=resume, device=device, rank=rank,
                                               world=world, scale_lr=scale_lr, ref_batch=ref_batch,
                                               cache_teacher=cache_teacher)
        self.cpu_threads = None  # Paddle's math-library threads, set on purpose on CPU (pcls/engine/cpu.py)
        if device == "cpu":
            from pcls.engine.cpu import configure_threads

            workers = int((run.train_loader.get("loader") or {}).get("num_workers", 0))
            self.cpu_threads = configure_threads(world, workers)
        if world > 1:
            import paddle.distributed as dist

            dist.init_parallel_env()
        if run.seed is not None:
            seed_everything(int(run.seed))
        restored = None
        if run.resume:
            from pcls.engine.checkpoint import load_checkpoint

            restored = load_checkpoint(run.resume)
        self.parts = build_components(run, restored["state"]["global_step"] if restored else 0)
        user = list(callbacks or [])
        step_log = [] if any(getattr(c, "shows_steps", False) for c in user) else [StepLog()]
        # the components' own callbacks (EMA, the model kind's) first: a checkpoint saves their updated state
        self.callbacks = CallbackList([*self.parts.callbacks, Checkpointer(), RunLogWriter(), *step_log,
                                       RecipeReport(recipe, smoke=bool(cfg.get("_smoke"))), *user])
        # position
        self.epoch, self.batch_in_epoch, self.global_step = 0, 0, 0
        self.best = {"metric": f"{'val' if self.parts.eval_data else 'train'}_{self.parts.main_metric}", "value": None,
                     "epoch": None}
        self.history, self.meter, self._partial_meter = [], None, None
        self._stop_after_epoch = False
        self.lr = self.parts.optimizer.get_lr()
        if restored:
            self._restore(restored)
        self.callbacks("setup", self)

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

    def stop(self) -> None:
        """End the run after the current epoch (a callback's early stop; the summary says 'done')."""
        self._stop_after_epoch = True

    # -- checkpoints --------------------------------------------------------------------------------
    def _state(self, meter=None) -> dict:
        from pcls.engine.checkpoint import rng_state

        state = {"epoch": self.epoch, "batch_in_epoch": self.batch_in_epoch, "global_step": self.global_step,
                 "epochs": self.run.epochs, "world_size": self.run.world, "best": self.best,
                 "history": self.history, "rng": rng_state(), "config": self.run.cfg}
        if meter is not None:
            state["epoch_meter"] = meter.state()
        if self.parts.scaler is not None:
            state["scaler"] = {k: float(v.numpy()) if hasattr(v, "numpy") else v
                               for k, v in self.parts.scaler.state_dict().items()}
        return state

    def save(self, tag: str, with_meter: bool = False) -> Path:
        """Write checkpoint `tag` (latest, epoch_N) with optimizer, EMA and run state (rank 0 only);
        `with_meter` keeps the current epoch's running metrics (a save inside an epoch)."""
        from pcls.engine.checkpoint import optimizer_state, save_checkpoint

        path = self.run_dir / tag
        if self.is_main:
            ema = self.parts.ema.state_dict() if self.parts.ema else None
            save_checkpoint(path, self.net.state_dict(), optimizer_state(self.optimizer, self.net),
                            self._state(self.meter if with_meter else None), ema)
            self.callbacks("checkpoint", self, tag, path)
        return path

    def save_best(self, row: dict) -> None:
        """best_model (and best_model_ema): the weights of the epoch `row`, with its metrics."""
        from pcls.engine.checkpoint import save_checkpoint

        if not self.is_main:
            return
        info = {"best": self.best, "arch": self.run.arch, "metrics": row}
        save_checkpoint(self.run_dir / "best_model", self.net.state_dict(), state=info)
        if self.parts.ema is not None:
            save_checkpoint(self.run_dir / "best_model_ema", self.parts.ema.state_dict(), state=info)
        self.callbacks("checkpoint", self, "best_model", self.run_dir / "best_model")

    def _restore(self, loaded) -> None:
        from pcls.engine.checkpoint import load_optimizer_state, set_rng_state

        from pcls.zoo.weights import apply_state

        state, parts = loaded["state"], self.parts
        # strict, and one error naming what does not fit (paddle's set_state_dict warns once per tensor)
        apply_state(self.net, loaded["model"], str(loaded["prefix"]), verbose=False,
                    hint=" (--resume continues the model the checkpoint was saved from: keep its Arch settings)")
        if loaded["optimizer"] is not None:
            load_optimizer_state(self.optimizer, self.net, loaded["optimizer"])
        if parts.ema and loaded["ema"] is not None:
            parts.ema.set_state_dict(loaded["ema"])
        if parts.scaler is not None and state.get("scaler"):
            parts.scaler.load_state_dict(state["scaler"])
        if state.get("world_size", 1) != self.run.world:
            log.warning("resuming a %s-process run with %d process(es): the data order of the current epoch "
                        "differs from the original run", state.get("world_size"), self.run.world)
        self.epoch = int(state["epoch"])
        self.batch_in_epoch = int(state.get("batch_in_epoch", 0))
        self.global_step = int(state["global_step"])
        self.best = state.get("best", self.best)
        self.history = [row for row in state.get("history", []) if row["epoch"] <= self.epoch]
        if self.history:
            self.lr = self.history[-1]["lr"]
        if state.get("rng"):
            set_rng_state(state["rng"])
        if state.get("epoch_meter") and self.batch_in_epoch:
            meter = parts.train_meter()
            meter.load_state(state["epoch_meter"])
            self._partial_meter = meter
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

    def _train_step(self, images, labels, boundary: bool):
        """Forward, backward and (on an update boundary) the optimizer update; returns (output, loss)."""
        parts, freq = self.parts, self.run.update_freq
        # accumulating (update_freq > 1) across ranks: all-reduce gradients only on the update's last batch
        sync = parts.model.no_sync() if self.run.world > 1 and not boundary else contextlib.nullcontext()
        with sync:
            with parts.amp.autocast():
                output = parts.model(images)
                loss = parts.train_loss(output, labels)["loss"]
            scaled = loss / freq if freq > 1 else loss
            (parts.scaler.scale(scaled) if parts.scaler is not None else scaled).backward()
        if boundary:
            self.lr = self.optimizer.get_lr()  # the rate this update uses
            if parts.scaler is not None:
                parts.scaler.step(self.optimizer)
                parts.scaler.update()
            else:
                self.optimizer.step()
            self.optimizer.clear_grad()
            parts.scheduler.step()
            self.global_step += 1
        return output, loss

    def _train_epoch(self, stop: _StopFlag):
        """Train from the current position to the end of the epoch; returns (meter, images/s, interrupted)."""
        import paddle

        from pcls.loss.ce import logits_of

        parts = self.parts
        self.meter, self._partial_meter = (self._partial_meter or parts.train_meter()), None
        parts.model.train()
        seen, started, rate = 0, time.perf_counter(), 0.0
        batch = self.batch_in_epoch
        for images, labels in self._batches():
            if batch >= parts.batches_per_epoch:
                break
            batch += 1
            boundary = batch % self.run.update_freq == 0 or batch == parts.batches_per_epoch
            output, loss = self._train_step(images, labels, boundary)
            with paddle.no_grad():
                self.meter.update(logits_of(output, parts.train_key or "logits").astype("float32"), labels, loss)
            seen += len(labels)
            self.batch_in_epoch = batch
            rate = seen * self.run.world / max(time.perf_counter() - started, 1e-9)
            self.callbacks("batch_end", self, StepInfo(batch, boundary, self.meter.result(), rate))
            if boundary and stop.raised:
                return self.meter, rate, True
        self.meter.all_reduce()
        return self.meter, seen * self.run.world / max(time.perf_counter() - started, 1e-9), False

    def evaluate(self, prefix: str = "val_", autocast: bool = True) -> dict:
        """`<prefix>top1`, `<prefix>loss`, ... of the model's current weights on the Eval loader."""
        parts = self.parts
        if hasattr(parts.eval_data.sampler, "set_epoch"):
            parts.eval_data.sampler.set_epoch(self.epoch)
        meter = run_eval(parts.model, parts.eval_data.loader, loss_fn=parts.eval_loss, meter=parts.eval_meter(),
                         output_key=parts.eval_key, autocast=parts.amp.eval_autocast if autocast else None)
        return {f"{prefix}{k}": v for k, v in meter.result().items() if k != "samples"}

    def _eval_due(self) -> bool:
        run, done = self.run, self.epoch + 1
        return self.parts.eval_data is not None and done > run.start_eval_epoch and \
            (done % run.eval_interval == 0 or done == run.epochs)

    # -- the run ------------------------------------------------------------------------------------
    def fit(self) -> dict:
        try:
            return self._fit()
        finally:
            self._forward.close()

    def _fit(self) -> dict:
        run, status, started = self.run, "done", time.perf_counter()
        self.callbacks("train_start", self)
        log.info("training %s for %s x %s on %s%s; run directory %s", run.arch["name"], count(run.epochs, "epoch"),
                 count(self.parts.batches_per_epoch, "batch", "batches"), run.device, f" x {run.world} processes" if run.world > 1 else "",
                 run.run_dir)
        with _StopFlag() as stop:
            while self.epoch < run.epochs:
                self.callbacks("epoch_start", self)
                epoch_started = time.perf_counter()
                meter, rate, interrupted = self._train_epoch(stop)
                if interrupted:
                    status = "interrupted"
                    self.callbacks("interrupt", self)
                    break
                row = {"epoch": self.epoch + 1, "lr": self.lr, "images_per_s": rate,
                       "seconds": time.perf_counter() - epoch_started}
                row.update({f"train_{k}": v for k, v in meter.result().items() if k != "samples"})
                if self._eval_due():
                    metrics = self.evaluate()
                    self.callbacks("eval_end", self, metrics)  # callbacks may add metrics (EMA: ema_val_*)
                    row.update(metrics)
                self.history.append(row)
                self.epoch, self.batch_in_epoch = self.epoch + 1, 0
                self.callbacks("epoch_end", self, row)
                if self._stop_after_epoch:
                    break
                if stop.raised:
                    status = "interrupted"
                    self.callbacks("interrupt", self)
                    break
        summary = self._summary(status, time.perf_counter() - started)
        self.callbacks("train_end", self, summary)
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


def train(cfg, *, resume=None, device=None, nproc=None, gpus=None, ips=None, scale_lr=False, ref_batch=256,
          run_name=None, run_dir=None, exist_ok=False, callbacks=(), cache_teacher=False, recipe=None,
          show_progress=False, log=None) -> dict:
    """Train as `cfg` says (a config path or a dict from pcls.load_config); returns the summary: status
    ('done' / 'interrupted'), run_dir (the one actually used), best metric, final epoch metrics, files.

    nproc=N: N CPU processes (gloo); gpus="0,1": one process per GPU; ips: multi-node. A new run never
    writes into a directory holding another run: it takes the next free name (`<run>-2`, ...), or with
    exist_ok=True replaces that run's files. `callbacks`: pcls.Callback objects (single-process runs).
    `log`: a callable that also receives the run's log messages.
    """
    if isinstance(cfg, (str, Path)):
        from pcls.config import load_config

        cfg = load_config(str(cfg))
    cfg = validated(cfg)
    if gpus or ips or (nproc and nproc > 1):
        from pcls.engine.launch import train_distributed

        with forward_logs(log) if log else contextlib.nullcontext():
            return train_distributed(cfg, resume=resume, device=device, nproc=nproc, gpus=gpus, ips=ips,
                                     scale_lr=scale_lr, ref_batch=ref_batch, run_name=run_name, run_dir=run_dir,
                                     exist_ok=exist_ok, callbacks=callbacks, cache_teacher=cache_teacher,
                                     recipe=recipe)
    trainer = Trainer(cfg, resume=resume, device=device, scale_lr=scale_lr, ref_batch=ref_batch,
                      run_name=run_name, run_dir=run_dir, exist_ok=exist_ok, callbacks=callbacks,
                      cache_teacher=cache_teacher, recipe=recipe, log=log)
    return trainer.fit()

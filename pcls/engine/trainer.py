"""The train loop (dygraph): one process, or one rank of a `paddle.distributed.launch` job.

    summary = train(cfg)                     # cfg from pcls.config.load_config
    summary = train(cfg, resume="output/ResNet18")

The run directory `Global.output_dir/<run>` holds `latest.*` (every epoch, and every `Global.save_steps`
updates mid-epoch), `best_model.*`, `epoch_N.*` every `save_interval` epochs, `config.yaml`,
`metrics.jsonl`/`metrics.csv` and `curves.png`. Only rank 0 prints and writes.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import time
from pathlib import Path

from pcls.errors import PclsError


def select_device(device=None) -> str:
    """Set and return the paddle device: 'cpu', 'gpu', 'gpu:N'; 'auto'/None picks a GPU when there is one."""
    import paddle

    device = (device or "auto").lower()
    if device == "auto":
        device = "gpu" if paddle.is_compiled_with_cuda() and paddle.device.cuda.device_count() > 0 else "cpu"
    if device.startswith("gpu") and not paddle.is_compiled_with_cuda():
        raise PclsError(f"device {device} requested but this Paddle build has no CUDA; use --device cpu")
    if device == "gpu" and "FLAGS_selected_gpus" in os.environ:
        device = f"gpu:{os.environ['FLAGS_selected_gpus'].split(',')[0]}"
    try:
        paddle.set_device(device)
    except (ValueError, RuntimeError) as err:
        raise PclsError(f"cannot use device '{device}' ({err}); use cpu, gpu or gpu:N") from err
    return device


def seed_everything(seed: int) -> None:
    import random

    import numpy as np
    import paddle

    random.seed(seed)
    np.random.seed(seed)
    paddle.seed(seed)


def world_info():
    """(rank, world size) from the launcher's environment."""
    return int(os.environ.get("PADDLE_TRAINER_ID", 0)), int(os.environ.get("PADDLE_TRAINERS_NUM", 1))


def run_dir_of(cfg, run_name=None) -> Path:
    g = cfg["Global"]
    name = run_name or g.get("run_name") or cfg["Arch"]["name"]
    return Path(g.get("output_dir") or "./output") / name


def prepare_builtin_data(cfg, log=print) -> None:
    """Generate the built-in demo set when a config declares it (Reference.dataset: pcls-demo) and it is absent."""
    if ((cfg.get("Reference") or {}).get("dataset")) != "pcls-demo":
        return
    dataset = cfg["DataLoader"]["Train"]["dataset"]
    if Path(dataset["cls_label_path"]).is_file():
        return
    from pcls.data.demo import make_demo_dataset

    log(f"generating the built-in demo dataset in {dataset['image_root']} ...")
    make_demo_dataset(dataset["image_root"])


def preflight(cfg, resume=None, world: int = 1) -> None:
    """Checks that need no model or data loading: fail on bad input before anything is written."""
    from pcls.engine.model import load_plugins, check_weights_source

    load_plugins()
    arch = cfg.get("Arch") or {}
    from pcls.engine.model import _WRAPPERS

    if arch.get("name") not in _WRAPPERS:
        from pcls.arch.registry import get_constructor

        get_constructor(arch.get("name") or "")
    check_weights_source(cfg["Global"].get("pretrained_model"))
    check_weights_source(arch.get("pretrained"))
    loaders = cfg.get("DataLoader") or {}
    if not loaders.get("Train"):
        raise PclsError("the config has no DataLoader.Train section")
    for split in ("Train", "Eval"):
        dataset = (loaders.get(split) or {}).get("dataset") or {}
        list_file = dataset.get("cls_label_path")
        if list_file and not Path(list_file).is_file():
            raise PclsError(f"DataLoader.{split}.dataset.cls_label_path: list file {list_file} does not exist")
    train = loaders["Train"]
    list_file = (train.get("dataset") or {}).get("cls_label_path")
    batch_size = int((train.get("sampler") or {}).get("batch_size") or 1)
    if list_file:  # lines bound the sample count from above; the loader's exact count is checked again
        with open(list_file, errors="replace") as fh:
            lines = sum(1 for line in fh if line.strip())
        if lines < batch_size * world:
            raise PclsError(
                f"DataLoader.Train.sampler.batch_size {batch_size} x {world} process(es) is larger than the "
                f"training set ({lines} lines in {list_file}); lower it, e.g. "
                f"-o DataLoader.Train.sampler.batch_size={max(1, lines // world)}"
            )
    source = resume or cfg["Global"].get("checkpoints")
    if source:
        from pcls.engine.checkpoint import checkpoint_prefix

        checkpoint_prefix(source)


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


class Trainer:
    """Builds everything a config describes, restores a checkpoint when asked, and runs the epochs."""

    def __init__(self, cfg, *, resume=None, device=None, scale_lr=False, ref_batch=256, run_name=None,
                 run_dir=None, show_progress=True, log=None):
        import logging
        import warnings

        import paddle

        from pcls.cli.common import console

        # paddle repeats this BatchNorm notice on every training forward; matplotlib logs font scans
        warnings.filterwarnings("ignore", message="When training, we now always track global mean")
        logging.getLogger("matplotlib").setLevel(logging.WARNING)
        self.cfg = cfg
        self.g = g = cfg["Global"]
        self.rank, self.world = world_info()
        self.is_main = self.rank == 0
        self.log = log or (lambda msg: console.print(msg, highlight=False) if self.is_main else None)
        self.show_progress = show_progress and self.is_main
        if self.is_main:
            prepare_builtin_data(cfg, self.log)
        preflight(cfg, resume, world_info()[1])
        self.device = select_device(device or g.get("device"))
        if self.world > 1:
            import paddle.distributed as dist

            dist.init_parallel_env()
        self.seed = g.get("seed")
        if self.seed is not None:
            seed_everything(int(self.seed))
        self.run_dir = Path(run_dir) if run_dir else run_dir_of(cfg, run_name)
        self.epochs = int(g.get("epochs") or 1)
        self.update_freq = max(1, int(g.get("update_freq") or 1))

        resume_from = resume or g.get("checkpoints")
        self.restored = None
        if resume_from:
            from pcls.engine.checkpoint import load_checkpoint

            self.restored = load_checkpoint(resume_from)
            if not run_dir and not run_name:  # a resumed run keeps writing where it was
                self.run_dir = self.restored["prefix"].parent

        # data
        from pcls.data import build_dataloader

        arch = cfg["Arch"]
        self.class_num = int(arch.get("class_num") or g.get("class_num") or 1000)
        train_cfg = cfg["DataLoader"]["Train"]
        self.train_data = build_dataloader(train_cfg, train=True, seed=int(self.seed or 0),
                                           class_num=self.class_num, num_replicas=self.world, rank=self.rank)
        batch_size = int(train_cfg["sampler"]["batch_size"])
        n_train = len(self.train_data.dataset)
        if n_train < batch_size * self.world:
            raise PclsError(
                f"DataLoader.Train.sampler.batch_size {batch_size} x {self.world} process(es) is larger than the "
                f"training set ({n_train} samples in {train_cfg['dataset'].get('cls_label_path')}); "
                f"lower it, e.g. -o DataLoader.Train.sampler.batch_size={max(1, n_train // max(self.world, 1))}"
            )
        self.eval_data = None
        eval_cfg = cfg["DataLoader"].get("Eval")
        if eval_cfg and g.get("eval_during_train", True):
            self.eval_data = build_dataloader(eval_cfg, train=False, seed=int(self.seed or 0),
                                              class_num=self.class_num, num_replicas=self.world, rank=self.rank)
        max_iters = g.get("max_iters")
        self.batches_per_epoch = len(self.train_data.loader)
        if max_iters:
            self.batches_per_epoch = min(self.batches_per_epoch, int(max_iters))
        if self.batches_per_epoch == 0:
            raise PclsError("the training loader yields no batches (drop_last with too few samples?)")
        self.updates_per_epoch = math.ceil(self.batches_per_epoch / self.update_freq)

        # model, loss, metrics
        from pcls.engine.metrics import metric_model_key, metric_topk
        from pcls.engine.model import build_model
        from pcls.loss import build_loss

        self.net = build_model(arch, g, log=self.log)
        if self.world > 1 and arch.get("use_sync_bn"):
            self.net = paddle.nn.SyncBatchNorm.convert_sync_batchnorm(self.net)
        loss_cfg = cfg.get("Loss") or {}
        self.train_loss = build_loss(loss_cfg.get("Train") or [{"CELoss": {"weight": 1.0}}])
        self.eval_loss = build_loss(loss_cfg.get("Eval") or [{"CELoss": {"weight": 1.0}}])
        metric_cfg = cfg.get("Metric") or {}
        self.topk_train = metric_topk(metric_cfg.get("Train"), self.class_num)
        self.topk_eval = metric_topk(metric_cfg.get("Eval"), self.class_num)
        self.train_key = metric_model_key(metric_cfg.get("Train"))
        self.eval_key = metric_model_key(metric_cfg.get("Eval"))

        # schedule, optimizer, AMP, EMA
        from pcls.engine.amp import AmpSettings
        from pcls.optim import build_optimizer, build_schedule, paddle_scheduler

        opt_cfg = dict(cfg.get("Optimizer") or {"name": "Momentum", "lr": {"name": "Cosine", "learning_rate": 0.1}})
        if g.get("clip_grad_norm") and not opt_cfg.get("clip_norm"):
            opt_cfg["clip_norm"] = g["clip_grad_norm"]
        self.lr_scale = 1.0
        if scale_lr:
            global_batch = batch_size * self.world * self.update_freq
            self.lr_scale = global_batch / float(ref_batch)
            self.log(f"--scale-lr: learning rates x{self.lr_scale:g} (linear rule: global batch {global_batch} / "
                     f"reference batch {ref_batch})")
        lr_cfg = {k: v for k, v in (opt_cfg.get("lr") or {}).items() if v is not None}
        self.schedule = build_schedule(lr_cfg, self.epochs, self.updates_per_epoch, self.lr_scale)
        start_step = self.restored["state"]["global_step"] if self.restored else 0
        self.scheduler = paddle_scheduler(self.schedule, start_step)
        params = list(self.net.named_parameters())
        for i, layer in enumerate(self.train_loss.layers()):
            params += [(f"loss{i}.{n}", p) for n, p in layer.named_parameters()]
        self.optimizer = build_optimizer(opt_cfg, params, self.scheduler)
        self.amp = AmpSettings.from_config(cfg.get("AMP"), self.device)
        if self.amp.note:
            self.log(f"[yellow]{self.amp.note}[/yellow]")
        if self.amp.enabled and hasattr(self.net, "teacher_to_half"):
            self.net.teacher_to_half(self.amp.dtype)  # a frozen teacher needs no float32 weights under AMP
        self.net, self.optimizer = self.amp.prepare(self.net, self.optimizer)
        # the module the loop calls: DataParallel all-reduces gradients across ranks in backward
        self.model = paddle.DataParallel(self.net) if self.world > 1 else self.net
        self.scaler = self.amp.scaler()
        self.ema = None
        if cfg.get("EMA"):
            from pcls.engine.ema import ModelEMA

            self.ema = ModelEMA(self.net, float(cfg["EMA"].get("decay", 0.9999)))

        # position
        self.epoch, self.batch_in_epoch, self.global_step = 0, 0, 0
        self.best = {"metric": "val_top1" if self.eval_data else "train_top1", "value": None, "epoch": None}
        self.history = []
        self.partial_meter = None
        if self.restored:
            self._restore(self.restored)

    # -- checkpoints --------------------------------------------------------------------------------
    def _state(self, meter=None) -> dict:
        from pcls.engine.checkpoint import rng_state

        state = {
            "epoch": self.epoch,
            "batch_in_epoch": self.batch_in_epoch,
            "global_step": self.global_step,
            "epochs": self.epochs,
            "world_size": self.world,
            "best": self.best,
            "history": self.history,
            "rng": rng_state(),
            "config": self.cfg,
        }
        if meter is not None:
            state["epoch_meter"] = {"correct": meter.correct.tolist(), "loss_sum": meter.loss_sum,
                                    "count": meter.count}
        if self.scaler is not None:
            state["scaler"] = {k: float(v.numpy()) if hasattr(v, "numpy") else v
                               for k, v in self.scaler.state_dict().items()}
        return state

    def save(self, tag: str, meter=None) -> Path:
        """Write checkpoint `tag` (latest, epoch_N) with optimizer, EMA and run state (rank 0 only)."""
        from pcls.engine.checkpoint import optimizer_state, save_checkpoint

        if not self.is_main:
            return self.run_dir / tag
        ema = self.ema.state_dict() if self.ema else None
        save_checkpoint(self.run_dir / tag, self.net.state_dict(), optimizer_state(self.optimizer, self.net),
                        self._state(meter), ema)
        self._save_student(tag)
        return self.run_dir / tag

    def _save_student(self, tag: str) -> None:
        """A distillation net also gets its deployable model saved plain: <run>/student/<tag>.pdparams."""
        if hasattr(self.net, "student_state_dict"):
            from pcls.zoo.weights import save_state_file

            save_state_file(self.net.student_state_dict(), self.run_dir / "student" / f"{tag}.pdparams")

    def _restore(self, loaded) -> None:
        import numpy as np

        from pcls.engine.checkpoint import load_optimizer_state, set_rng_state
        from pcls.engine.metrics import TopkMeter

        state = loaded["state"]
        missing, unexpected = self.net.set_state_dict(loaded["model"]) or ([], [])
        if missing:
            raise PclsError(f"checkpoint {loaded['prefix']} does not fit {self.cfg['Arch']['name']}: "
                            f"missing {', '.join(list(missing)[:3])}")
        if loaded["optimizer"] is not None:
            load_optimizer_state(self.optimizer, self.net, loaded["optimizer"])
        if self.ema and loaded["ema"] is not None:
            self.ema.set_state_dict(loaded["ema"])
        if self.scaler is not None and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        if state.get("world_size", 1) != self.world:
            self.log(f"[yellow]resuming a {state.get('world_size')}-process run with {self.world} process(es): "
                     f"the data order of the current epoch differs from the original run[/yellow]")
        self.epoch = int(state["epoch"])
        self.batch_in_epoch = int(state.get("batch_in_epoch", 0))
        self.global_step = int(state["global_step"])
        self.best = state.get("best", self.best)
        self.history = [row for row in state.get("history", []) if row["epoch"] <= self.epoch]
        if state.get("rng"):
            set_rng_state(state["rng"])
        if state.get("epoch_meter") and self.batch_in_epoch:
            meter = TopkMeter(self.topk_train)
            meter.correct = np.asarray(state["epoch_meter"]["correct"], dtype=np.float64)
            meter.loss_sum, meter.count = state["epoch_meter"]["loss_sum"], state["epoch_meter"]["count"]
            self.partial_meter = meter
        where = f"epoch {self.epoch + 1}" + (f", batch {self.batch_in_epoch}" if self.batch_in_epoch else "")
        self.log(f"resumed from {loaded['prefix']} at {where} (update {self.global_step})")

    # -- one epoch ----------------------------------------------------------------------------------
    def _train_epoch(self, stop: _StopFlag, bar=None, task=None):
        import paddle

        from pcls.engine.metrics import TopkMeter
        from pcls.loss.ce import logits_of

        sampler = self.train_data.sampler
        sampler.set_epoch(self.epoch)
        start = self.batch_in_epoch
        if hasattr(sampler, "set_start_batch"):
            sampler.set_start_batch(start)
            batches = iter(self.train_data.loader)
        else:  # a sampler without resume support: replay and drop the batches already trained on
            batches = iter(self.train_data.loader)
            for _ in range(start):
                next(batches)
        meter, self.partial_meter = (self.partial_meter or TopkMeter(self.topk_train)), None
        self.model.train()
        save_steps = int(self.g.get("save_steps") or 0)
        print_step = max(1, int(self.g.get("print_batch_step") or 10))
        seen, started = 0, time.perf_counter()
        batch_index = start
        for images, labels in batches:
            if batch_index >= self.batches_per_epoch:
                break
            batch_index += 1
            boundary = batch_index % self.update_freq == 0 or batch_index == self.batches_per_epoch
            # accumulating (update_freq > 1) across ranks: all-reduce gradients only on the update's last batch
            sync = self.model.no_sync() if self.world > 1 and not boundary else contextlib.nullcontext()
            with sync:
                with self.amp.autocast():
                    output = self.model(images)
                    parts = self.train_loss(output, labels)
                loss = parts["loss"]
                scaled = loss / self.update_freq if self.update_freq > 1 else loss
                if self.scaler is not None:
                    self.scaler.scale(scaled).backward()
                else:
                    scaled.backward()
            if boundary:
                if self.scaler is not None:
                    self.scaler.step(self.optimizer)
                    self.scaler.update()
                else:
                    self.optimizer.step()
                self.optimizer.clear_grad()
                self.scheduler.step()
                self.global_step += 1
                if self.ema is not None:
                    self.ema.update(self.net)
            with paddle.no_grad():
                meter.update(logits_of(output, self.train_key or "logits").astype("float32"), labels, loss)
            seen += len(labels)
            self.batch_in_epoch = batch_index
            rate = seen * self.world / max(time.perf_counter() - started, 1e-9)
            if bar is not None:
                acc = meter.result()
                bar.update(task, advance=1, rate=f"{rate:.0f} img/s",
                           info=f"loss {acc['loss']:.4f} top1 {acc[f'top{self.topk_train[0]}']:.3f} "
                                f"lr {self.optimizer.get_lr():.2e}")
            elif self.is_main and batch_index % print_step == 0:
                acc = meter.result()
                self.log(f"epoch {self.epoch + 1} step {batch_index}/{self.batches_per_epoch} loss {acc['loss']:.4f} "
                         f"top1 {acc[f'top{self.topk_train[0]}']:.4f} lr {self.optimizer.get_lr():.6f} "
                         f"{rate:.1f} img/s")
            mid_epoch = batch_index < self.batches_per_epoch
            if boundary and mid_epoch and save_steps and self.global_step % save_steps == 0:
                self.save("latest", meter)
            if boundary and stop.raised:
                return meter, rate, "interrupted"
        meter.all_reduce()
        return meter, seen * self.world / max(time.perf_counter() - started, 1e-9), "done"

    def _evaluate(self):
        from pcls.engine.evaluator import run_eval

        result = {}
        if self.eval_data is None:
            return result
        if hasattr(self.eval_data.sampler, "set_epoch"):
            self.eval_data.sampler.set_epoch(self.epoch)
        meter = run_eval(self.model, self.eval_data.loader, loss_fn=self.eval_loss, topk=self.topk_eval,
                         output_key=self.eval_key, autocast=self.amp.autocast if self.amp.enabled else None)
        result.update({f"val_{k}": v for k, v in meter.result().items() if k != "samples"})
        if self.ema is not None:
            with self.ema.applied_to(self.net):
                meter = run_eval(self.model, self.eval_data.loader, loss_fn=self.eval_loss, topk=self.topk_eval,
                                 output_key=self.eval_key)
            result.update({f"ema_val_{k}": v for k, v in meter.result().items() if k != "samples"})
        return result

    # -- the run ------------------------------------------------------------------------------------
    def fit(self) -> dict:
        from pcls.engine.runlog import RunLog

        runlog = RunLog(self.run_dir, enabled=self.is_main, visualdl=bool(self.g.get("use_visualdl")), log=self.log)
        runlog.start(self.cfg, self.history)
        eval_interval = max(1, int(self.g.get("eval_interval") or 1))
        save_interval = max(1, int(self.g.get("save_interval") or 1))
        start_eval = int(self.g.get("start_eval_epoch") or 0)
        status, started = "done", time.perf_counter()
        self.log(f"training {self.cfg['Arch']['name']} for {self.epochs} epochs x {self.batches_per_epoch} batches "
                 f"on {self.device}" + (f" x {self.world} processes" if self.world > 1 else "")
                 + f"; run directory {self.run_dir}")
        with _StopFlag() as stop:
            while self.epoch < self.epochs:
                epoch_started = time.perf_counter()
                lr_now = self.optimizer.get_lr()
                if self.show_progress:
                    from pcls.cli.common import progress

                    with progress() as bar:
                        task = bar.add_task(f"epoch {self.epoch + 1}/{self.epochs}", total=self.batches_per_epoch,
                                            completed=self.batch_in_epoch, rate="", info="")
                        meter, rate, status = self._train_epoch(stop, bar, task)
                else:
                    meter, rate, status = self._train_epoch(stop)
                if status == "interrupted":
                    path = self.save("latest", meter)
                    self.log(f"[yellow]interrupted: saved {path} at epoch {self.epoch + 1}, batch "
                             f"{self.batch_in_epoch}; continue with: pcls train --resume {self.run_dir}[/yellow]")
                    break
                row = {"epoch": self.epoch + 1, "lr": lr_now, "images_per_s": rate,
                       "seconds": time.perf_counter() - epoch_started}
                row.update({f"train_{k}": v for k, v in meter.result().items() if k != "samples"})
                last = self.epoch + 1 == self.epochs
                if self.eval_data is not None and self.epoch + 1 > start_eval and \
                        ((self.epoch + 1) % eval_interval == 0 or last):
                    row.update(self._evaluate())
                self.history.append(row)
                self.epoch, self.batch_in_epoch = self.epoch + 1, 0
                self._maybe_save_best(row)
                self.save("latest")
                if self.epoch % save_interval == 0 or last:
                    self.save(f"epoch_{self.epoch}")
                runlog.epoch_end(self.history)
                self.log(runlog.epoch_line(row, self.epochs))
                if stop.raised:
                    status = "interrupted"
                    self.log(f"[yellow]interrupted after epoch {self.epoch}; continue with: "
                             f"pcls train --resume {self.run_dir}[/yellow]")
                    break
        outputs = runlog.finish(self.history) if status == "done" else {}
        return self._summary(status, time.perf_counter() - started, outputs)

    def _maybe_save_best(self, row) -> None:
        from pcls.engine.checkpoint import save_checkpoint

        key = self.best["metric"]
        value = row.get(key)
        if value is None or (self.best["value"] is not None and value <= self.best["value"]):
            return
        self.best = {"metric": key, "value": value, "epoch": row["epoch"]}
        if self.is_main:
            info = {"best": self.best, "arch": self.cfg["Arch"], "metrics": row}
            save_checkpoint(self.run_dir / "best_model", self.net.state_dict(), state=info)
            self._save_student("best_model")
            if self.ema is not None:
                save_checkpoint(self.run_dir / "best_model_ema", self.ema.state_dict(), state=info)

    def _summary(self, status, seconds, outputs) -> dict:
        last = self.history[-1] if self.history else {}
        summary = {
            "status": status,
            "run_dir": str(self.run_dir),
            "epochs_done": self.epoch,
            "seconds": round(seconds, 1),
            "best": self.best,
            "final": last,
            "files": {
                "best_model": str(self.run_dir / "best_model.pdparams"),
                "latest": str(self.run_dir / "latest.pdparams"),
                "metrics_jsonl": str(self.run_dir / "metrics.jsonl"),
                "metrics_csv": str(self.run_dir / "metrics.csv"),
                "config": str(self.run_dir / "config.yaml"),
                **outputs,
            },
        }
        if hasattr(self.net, "student_state_dict"):
            for tag in ("best_model", "latest"):
                if (self.run_dir / "student" / f"{tag}.pdparams").exists():
                    summary["files"][f"student_{tag}"] = str(self.run_dir / "student" / f"{tag}.pdparams")
        if self.is_main:
            from pcls.utils.io import atomic_write_text
            import json

            atomic_write_text(self.run_dir / "summary.json", json.dumps(summary, indent=1, default=str))
        return summary


def train(cfg, *, resume=None, device=None, scale_lr=False, ref_batch=256, run_name=None, run_dir=None,
          show_progress=True, log=None) -> dict:
    """Train as `cfg` says (in this process, or as one rank under paddle.distributed.launch); returns a
    summary: status ('done' / 'interrupted'), run_dir, best metric, final epoch metrics, output files."""
    trainer = Trainer(cfg, resume=resume, device=device, scale_lr=scale_lr, ref_batch=ref_batch,
                      run_name=run_name, run_dir=run_dir, show_progress=show_progress, log=log)
    return trainer.fit()

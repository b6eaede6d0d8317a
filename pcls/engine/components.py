"""`build_components(run)`: the objects a run trains with -- data, model, loss, metrics, schedule, optimizer,
AMP, the updater, and the callbacks the settings bring (EMA, the model kind's) -- each built by the registry
that owns its config section. Also the checks that need no model
or data (`preflight`), run before anything is written."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, List, Optional

from pcls.engine.callbacks import Ema
from pcls.engine.run_config import RunConfig, RunOptions
from pcls.errors import PclsError

log = logging.getLogger(__name__)


def prepare_builtin_data(cfg: dict) -> None:
    """Generate the built-in demo set when a config declares it (Reference.dataset: pcls-demo) and it is absent."""
    if ((cfg.get("Reference") or {}).get("dataset")) != "pcls-demo":
        return
    dataset = cfg["DataLoader"]["Train"]["dataset"]
    if Path(dataset["cls_label_path"]).is_file():
        return
    from pcls.data.demo import make_demo_dataset

    log.info("generating the built-in demo dataset in %s ...", dataset["image_root"])
    make_demo_dataset(dataset["image_root"])


def count_lines(path) -> int:
    """Non-blank lines of a list file: an upper bound of its samples, read without loading any image."""
    with open(path, errors="replace") as fh:
        return sum(1 for line in fh if line.strip())


def _batch_error(batch_size: int, world: int, count: int, what: str) -> PclsError:
    return PclsError(f"DataLoader.Train.sampler.batch_size {batch_size} x {world} process(es) is larger than the "
                     f"training set ({count} {what}); lower it, e.g. "
                     f"-o DataLoader.Train.sampler.batch_size={max(1, count // max(world, 1))}")


def preflight(cfg: dict, options: RunOptions, world: int = 1) -> None:
    """Checks that need no model or data loading: fail on bad input before anything is written.
    `options`: the run's RunOptions (its resume has Global.checkpoints folded in)."""
    from pcls.config.arch_names import known_arch_names
    from pcls.data.sources import check_list_file
    from pcls.engine.model import MODEL_KINDS, check_weights_source, load_plugins
    from pcls.engine.run_config import process_loader

    load_plugins()
    arch = cfg.get("Arch") or {}
    # a name found in the backbones' source needs no import of them (and of paddle) to be known
    if arch.get("name") not in MODEL_KINDS and arch.get("name") not in known_arch_names():
        from pcls.arch.registry import get_constructor

        get_constructor(arch.get("name") or "")
    check_weights_source(cfg["Global"].get("pretrained_model"))
    check_weights_source(arch.get("pretrained"))
    loaders = cfg.get("DataLoader") or {}
    if not loaders.get("Train"):
        raise PclsError("the config has no DataLoader.Train section")
    for split in ("Train", "Eval"):
        check_list_file(cfg, split)  # names the command that makes a recipe's dataset
    train = process_loader(loaders["Train"], options)
    list_file = (train.get("dataset") or {}).get("cls_label_path")
    batch_size = int(train["sampler"]["batch_size"])
    if list_file:  # lines bound the sample count from above; the loader's exact count is checked again
        lines = count_lines(list_file)
        if lines < batch_size * world:
            raise _batch_error(batch_size, world, lines, f"lines in {list_file}")
    if options.resume:
        from pcls.engine.checkpoint import checkpoint_prefix

        checkpoint_prefix(options.resume)


@dataclass
class Components:
    """Everything the loop touches. `net` is the model itself; `model` is what the loop calls (the
    DataParallel wrapper in a multi-process run)."""

    train_data: Any
    eval_data: Any
    net: Any
    model: Any
    train_loss: Any
    eval_loss: Any
    topk_train: List[int]
    topk_eval: List[int]
    train_key: Optional[str]
    eval_key: Optional[str]
    optimizer: Any
    amp: Any
    updater: Any  # pcls.engine.updater.Updater: accumulation, no_sync, scaler, optimizer and schedule steps
    batches_per_epoch: int
    callbacks: list = field(default_factory=list)  # EMA's, and those the model kind brings (distillation)
    multilabel: bool = False  # Global.use_multilabel: MultiLabelMeter instead of top-k accuracy
    metric_train: Optional[list] = None  # the config's Metric lists, for the meters
    metric_eval: Optional[list] = None

    def train_meter(self):
        """A fresh meter for an epoch of training (pcls.engine.metrics.build_meter)."""
        from pcls.engine.metrics import build_meter

        return build_meter(self.metric_train, multilabel=self.multilabel, topk=self.topk_train)

    def eval_meter(self):
        from pcls.engine.metrics import build_meter

        return build_meter(self.metric_eval, multilabel=self.multilabel, topk=self.topk_eval)

    @property
    def main_metric(self) -> str:
        """What best_model tracks (`val_<main_metric>`): top1, or mAP / accuracy_score for multi-label."""
        return self.eval_meter().main

    @property
    def step_metric(self) -> str:
        """The metric step logs and the progress bar show beside the loss."""
        return self.train_meter().main if self.multilabel else f"top{self.topk_train[0]}"


def to_static(net):
    """The model's forward compiled with paddle.jit.to_static (AST translation, as PaddleClas 2.x does for
    `Global.to_static: True`); the same Layer object, so weights, state dicts and EMA are unchanged. The one
    place the engine makes a static graph: any other static-graph path should call this."""
    import paddle

    log.info("Global.to_static: training and evaluating through paddle.jit.to_static")
    return paddle.jit.to_static(net, full_graph=True)


def _train_mode_callbacks(run: RunConfig) -> list:
    """Global.train_mode "efficientnetv2": the callback that moves the training pipeline through its stages."""
    if run.train_mode != "efficientnetv2":
        return []
    from pcls.data.transforms.progressive import ProgressiveLearning

    return [ProgressiveLearning()]


def build_components(run: RunConfig, start_step: int = 0) -> Components:
    """Build data, model, loss, metrics, schedule (positioned at update `start_step`), optimizer, AMP, the
    updater, and the callbacks the run's settings bring (EMA, the model kind's, progressive learning)."""
    import paddle

    from pcls.data import build_dataloader
    from pcls.engine.amp import AmpSettings
    from pcls.engine.metrics import metric_model_key, metric_topk
    from pcls.engine.model import build_model, model_callbacks
    from pcls.engine.updater import Updater
    from pcls.loss import build_loss
    from pcls.optim import build_optimizer, build_schedule, paddle_scheduler

    seed = int(run.seed or 0)
    train_data = build_dataloader(run.train_loader, train=True, seed=seed, class_num=run.class_num,
                                  num_replicas=run.world, rank=run.rank)
    n_train = len(train_data.dataset)
    if n_train < run.batch_size * run.world:
        raise _batch_error(run.batch_size, run.world, n_train,
                           f"samples in {run.train_loader['dataset'].get('cls_label_path')}")
    eval_data = None
    if run.eval_loader:
        eval_data = build_dataloader(run.eval_loader, train=False, seed=seed, class_num=run.class_num,
                                     num_replicas=run.world, rank=run.rank)
    batches = len(train_data.loader)
    if run.max_iters:
        batches = min(batches, int(run.max_iters))
    if batches == 0:
        raise PclsError("the training loader yields no batches (drop_last with too few samples?)")
    updates = math.ceil(batches / run.update_freq)

    net = build_model(run.arch, {"pretrained_model": run.pretrained_model, "data_format": run.data_format})
    if run.device == "cpu" and not run.to_static:
        # Paddle's CPU conv runs a tiny matrix product per image on small maps; one batched product is faster
        from pcls.arch.layers.gemm_conv import gemm_conv

        gemm_conv(net)
    if run.world > 1 and run.arch.get("use_sync_bn"):
        net = paddle.nn.SyncBatchNorm.convert_sync_batchnorm(net)
    train_loss, eval_loss = build_loss(run.loss_train), build_loss(run.loss_eval)

    lr_scale = 1.0
    if run.options.scale_lr:
        global_batch = run.batch_size * run.world * run.update_freq
        lr_scale = global_batch / float(run.options.ref_batch)
        log.info("--scale-lr: learning rates x%g (linear rule: global batch %d / reference batch %d)",
                 lr_scale, global_batch, run.options.ref_batch)
    schedule = build_schedule(run.optimizer["lr"], run.epochs, updates, lr_scale)
    scheduler = paddle_scheduler(schedule, start_step)  # the updater steps it
    params = list(net.named_parameters())
    for i, layer in enumerate(train_loss.layers()):
        params += [(f"loss{i}.{n}", p) for n, p in layer.named_parameters()]
    optimizer = build_optimizer(run.optimizer, params, scheduler)
    amp = AmpSettings.from_config(run.amp, run.device)
    if amp.note:
        log.warning(amp.note)
    net, optimizer = amp.prepare(net, optimizer)
    if run.to_static:
        net = to_static(net)
    model = paddle.DataParallel(net) if run.world > 1 else net  # all-reduces gradients across ranks in backward
    updater = Updater(model, optimizer, scheduler, amp, update_freq=run.update_freq, world=run.world)
    return Components(
        train_data=train_data, eval_data=eval_data, net=net, model=model,
        train_loss=train_loss, eval_loss=eval_loss,
        topk_train=metric_topk(run.metric_train, run.class_num), topk_eval=metric_topk(run.metric_eval, run.class_num),
        train_key=metric_model_key(run.metric_train), eval_key=metric_model_key(run.metric_eval),
        optimizer=optimizer, amp=amp, updater=updater, batches_per_epoch=batches,
        multilabel=run.multilabel, metric_train=run.metric_train, metric_eval=run.metric_eval,
        callbacks=([Ema(run.ema_decay)] if run.ema_decay is not None else []) + model_callbacks(run)
        + _train_mode_callbacks(run),
    )

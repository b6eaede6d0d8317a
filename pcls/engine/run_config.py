"""The resolved run configuration: everything a training run needs, read once from the validated config.

The schema (pcls/config/schema.py) has already filled every default; `RunConfig.from_config` only picks
values out and derives the few that depend on the run (run directory, world size). After this, the engine
reads `run.<field>`, never the raw config dict; the component sections (`arch`, `optimizer`, `loss_train`,
...) go unchanged to the registries that own them, so a new schedule, loss or optimizer needs no engine edit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional

def validated(cfg: dict) -> dict:
    """`cfg` checked against the schema with every default filled (a no-op on an already loaded config);
    private keys that pcls adds (`_source`, `_smoke`) are kept."""
    from pcls.config.schema import validate

    private = {k: v for k, v in cfg.items() if k.startswith("_")}
    result = validate({k: v for k, v in cfg.items() if not k.startswith("_")})
    result.update(private)
    return result


@dataclass
class RunConfig:
    cfg: dict  # the validated config, saved with the run and its checkpoints
    run_dir: Path
    resume: Optional[str] = None
    device: str = "auto"
    rank: int = 0
    world: int = 1
    # Global
    epochs: int = 1
    update_freq: int = 1
    seed: Optional[int] = None
    max_iters: Optional[int] = None
    save_interval: int = 1
    save_steps: int = 0
    eval_interval: int = 1
    start_eval_epoch: int = 0
    print_batch_step: int = 10
    use_visualdl: bool = False
    class_num: int = 0  # always set from Arch.class_num (the schema fills its default)
    pretrained_model: object = None  # a path / zoo name, or a list (one per distilled model)
    data_format: Optional[str] = None
    to_static: bool = False
    multilabel: bool = False
    train_mode: Optional[str] = None  # "efficientnetv2": progressive learning (pcls.data.transforms.progressive)
    # component sections, handed to their registries
    arch: dict = field(default_factory=dict)
    train_loader: dict = field(default_factory=dict)
    eval_loader: Optional[dict] = None
    loss_train: List[dict] = field(default_factory=list)
    loss_eval: List[dict] = field(default_factory=list)
    metric_train: Optional[list] = None
    metric_eval: Optional[list] = None
    optimizer: dict = field(default_factory=dict)
    amp: Optional[dict] = None
    ema_decay: Optional[float] = None
    # run options (command line / Python API)
    scale_lr: bool = False
    ref_batch: int = 256
    cache_teacher: bool = False

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def batch_size(self) -> int:
        return int(self.train_loader["sampler"]["batch_size"])

    @classmethod
    def from_config(cls, cfg: dict, *, run_dir, resume=None, device=None, rank=0, world=1, scale_lr=False,
                    ref_batch=256, cache_teacher=False) -> "RunConfig":
        g, arch = cfg["Global"], dict(cfg["Arch"])
        loaders = cfg["DataLoader"]
        optimizer = dict(cfg["Optimizer"])
        if g.get("clip_grad_norm") and not optimizer.get("clip_norm"):
            optimizer["clip_norm"] = g["clip_grad_norm"]
        loss, metric = cfg["Loss"], cfg.get("Metric") or {}
        return cls(
            cfg=cfg, run_dir=Path(run_dir), resume=resume or g.get("checkpoints"),
            device=device or g["device"], rank=rank, world=world,
            epochs=int(g["epochs"]), update_freq=max(1, int(g["update_freq"])), seed=g.get("seed"),
            max_iters=g.get("max_iters"), save_interval=max(1, int(g["save_interval"])),
            save_steps=int(g.get("save_steps") or 0), eval_interval=max(1, int(g["eval_interval"])),
            start_eval_epoch=int(g["start_eval_epoch"]), print_batch_step=max(1, int(g["print_batch_step"])),
            use_visualdl=bool(g["use_visualdl"]),
            class_num=int(arch["class_num"]),
            pretrained_model=g.get("pretrained_model"), data_format=g.get("data_format"),
            to_static=bool(g["to_static"]), multilabel=bool(g["use_multilabel"]), train_mode=g.get("train_mode"),
            arch=arch, train_loader=loaders["Train"],
            eval_loader=loaders.get("Eval") if g["eval_during_train"] else None,
            loss_train=loss["Train"], loss_eval=loss["Eval"],
            metric_train=metric.get("Train"), metric_eval=metric.get("Eval"), optimizer=optimizer,
            amp=cfg.get("AMP"), ema_decay=float(cfg["EMA"]["decay"]) if cfg.get("EMA") else None,
            scale_lr=scale_lr, ref_batch=ref_batch, cache_teacher=cache_teacher,
        )

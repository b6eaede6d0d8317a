"""What a training run needs, read once: `RunOptions` (how to run: pcls.train's keyword arguments) and
`RunConfig` (what to run: the validated config's values plus the process's place in the job).

`RunOptions` is built once from `pcls.train(...)`'s arguments and the config, handed unchanged to `Trainer`
and written as JSON into a launched job's spec, so a worker runs with exactly the options its parent
resolved. `run_directory` is the one rule for where a run writes, for both paths.
The schema (pcls/config/schema.py) has already filled every default; `RunConfig.from_config` only picks
values out and derives the few that depend on the run (run directory, world size). After this, the engine
reads `run.<field>`, never the raw config dict; the component sections (`arch`, `optimizer`, `loss_train`,
...) go unchanged to the registries that own them, so a new schedule, loss or optimizer needs no engine edit.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional, Union

from pcls.errors import PclsError


def validated(cfg: dict) -> dict:
    """`cfg` checked against the schema with every default filled (a no-op on an already loaded config);
    the private key pcls adds (`_source`: the file it came from) is kept."""
    from pcls.config.schema import validate

    private = {k: v for k, v in cfg.items() if k.startswith("_")}
    result = validate({k: v for k, v in cfg.items() if not k.startswith("_")})
    result.update(private)
    return result


@dataclass
class RunOptions:
    """How to run a config: the keyword arguments of `pcls.train` (and `pcls train`'s options).

    resume: a run directory or checkpoint prefix to continue (default Global.checkpoints); device: cpu,
    gpu, gpu:N, auto (default Global.device); nproc / gpus / ips: a multi-process job (N CPU processes,
    one process per listed GPU, several hosts); nproc None means Global.cpu_processes, "auto" the rule of
    pcls.engine.parallel, which `pcls.train` turns into a count before the run starts, with process_batch (the
    batch of each process when the rule split the config's batch; None: the config's batch, per process) and
    processes_reason (why that count, for the summary); scale_lr / ref_batch: the linear learning-rate rule;
    run_name: the run's folder below Global.output_dir; run_dir: the folder itself (a launched worker's,
    decided by its parent); exist_ok: replace the files of an earlier run in that folder; recipe: the
    recipe's name (names the run and its report); smoke: a few iterations on generated data (pcls.recipes.
    smoke); strategy: options of the model kind (distillation's {"cache_teacher": true}).
    """

    resume: Optional[str] = None
    device: Optional[str] = None
    nproc: Union[int, str, None] = None
    gpus: Optional[str] = None
    ips: Optional[str] = None
    scale_lr: bool = False
    ref_batch: int = 256
    run_name: Optional[str] = None
    run_dir: Optional[str] = None
    exist_ok: bool = False
    recipe: Optional[str] = None
    smoke: bool = False
    strategy: dict = field(default_factory=dict)
    process_batch: Optional[int] = None
    processes_reason: Optional[str] = None

    @classmethod
    def build(cls, cfg: dict, **options) -> "RunOptions":
        """The options of one run of `cfg` (validated): unset ones take the config's values."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(options) - names)
        if unknown:
            raise TypeError(f"unknown run option(s) {', '.join(unknown)}; known: {', '.join(sorted(names))}")
        built = cls(**options)
        g = cfg["Global"]
        built.device = built.device or g["device"]
        built.resume = built.resume or g["checkpoints"]
        if built.recipe and not (built.run_name or built.resume or g["run_name"]):
            built.run_name = built.recipe  # recipes sharing a backbone must not overwrite each other's runs
        if built.run_dir is not None:
            built.run_dir = str(built.run_dir)
        if built.resume is not None:
            built.resume = str(built.resume)
        built.nproc = process_count(built.nproc)
        if int(built.ref_batch) < 1:
            raise PclsError(f"ref_batch must be at least 1, got {built.ref_batch}")
        return built

    @property
    def distributed(self) -> bool:
        """True when this run is a launched multi-process job (the caller's side of it)."""
        return bool(self.gpus or self.ips or (isinstance(self.nproc, int) and self.nproc > 1))

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> "RunOptions":
        return cls(**data)


def process_count(value) -> Union[int, str, None]:
    """`--nproc` / `nproc=`: None (Global.cpu_processes decides), "auto", or a whole number >= 1."""
    if value is None or value == "auto":
        return value
    try:
        count = int(value) if not isinstance(value, (bool, float)) else 0
    except (TypeError, ValueError):
        count = 0
    if count < 1:
        raise PclsError(f"nproc {value!r} is not a process count; give a whole number >= 1 (1: one process) or auto")
    return count


def resumed_config(resume, overrides=()) -> dict:
    """The config saved with the run `resume` names (its config.yaml), with `-o` style overrides: what
    `pcls.train(resume=DIR)` trains when given no config."""
    from pcls.config import load_config
    from pcls.engine.checkpoint import checkpoint_prefix

    saved = checkpoint_prefix(resume).parent / "config.yaml"
    if not saved.is_file():
        raise PclsError(f"{saved} not found: pass the run's config (pcls train -c FILE --resume ...) as well")
    return load_config(str(saved), list(overrides or []))


def run_directory(cfg: dict, options: RunOptions, is_main: bool = True) -> Path:
    """The directory a run writes to, for the single-process and the launched path alike: the one given
    (a launched worker's), the resumed run's own (a PaddleClas run is continued beside it, in a new one),
    or a fresh one that holds no other run (pcls.engine.rundir.allocate_run_dir; only the main process
    allocates or claims)."""
    from pcls.engine.rundir import allocate_run_dir, claim_for_resume, run_dir_of

    if options.run_dir:
        return Path(options.run_dir)
    if options.resume and not options.run_name:
        from pcls.engine.checkpoint import checkpoint_prefix
        from pcls.engine.paddleclas_runs import is_paddleclas_checkpoint

        prefix = checkpoint_prefix(options.resume)
        if not is_paddleclas_checkpoint(prefix):  # locked: two resumes of one run never write into it at once
            return claim_for_resume(prefix.parent) if is_main else prefix.parent
    wanted = run_dir_of(cfg, options.run_name)
    return allocate_run_dir(wanted, exist_ok=options.exist_ok) if is_main else wanted


@dataclass
class RunConfig:
    """The values a run reads from its validated config (the schema filled every default: none here)."""

    cfg: dict  # the validated config, saved with the run and its checkpoints
    options: RunOptions
    run_dir: Path
    device: str  # the device actually selected
    rank: int
    world: int
    # Global
    epochs: int
    update_freq: int
    seed: Optional[int]
    max_iters: Optional[int]
    save_interval: int
    save_steps: int
    eval_interval: int
    start_eval_epoch: int
    print_batch_step: int
    use_visualdl: bool
    class_num: int
    pretrained_model: object  # a path / zoo name, or a list (one per distilled model)
    data_format: Optional[str]
    to_static: bool
    multilabel: bool
    train_mode: Optional[str]  # "efficientnetv2": progressive learning (pcls.data.transforms.progressive)
    # component sections, handed to their registries
    arch: dict
    train_loader: dict
    eval_loader: Optional[dict]
    loss_train: List[dict]
    loss_eval: List[dict]
    metric_train: Optional[list]
    metric_eval: Optional[list]
    optimizer: dict
    amp: Optional[dict]
    ema_decay: Optional[float]
    callbacks: List[dict]  # Global.callbacks: [{name: ..., options}] built by pcls.engine.callbacks.CALLBACKS

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def resume(self) -> Optional[str]:
        return self.options.resume

    @property
    def batch_size(self) -> int:
        """Images per batch in this process."""
        return int(self.train_loader["sampler"]["batch_size"])

    @classmethod
    def from_config(cls, cfg: dict, options: RunOptions, *, run_dir, device: str, rank: int,
                    world: int) -> "RunConfig":
        g, arch = cfg["Global"], dict(cfg["Arch"])
        loaders = cfg["DataLoader"]
        loss, metric = cfg["Loss"], cfg.get("Metric") or {}
        return cls(
            cfg=cfg, options=options, run_dir=Path(run_dir), device=device, rank=rank, world=world,
            epochs=int(g["epochs"]), update_freq=int(g["update_freq"]), seed=g["seed"],
            max_iters=g["max_iters"], save_interval=int(g["save_interval"]),
            save_steps=int(g["save_steps"] or 0), eval_interval=int(g["eval_interval"]),
            start_eval_epoch=int(g["start_eval_epoch"]), print_batch_step=int(g["print_batch_step"]),
            use_visualdl=bool(g["use_visualdl"]),
            class_num=int(arch["class_num"]),
            pretrained_model=g["pretrained_model"], data_format=g["data_format"],
            to_static=bool(g["to_static"]), multilabel=bool(g["use_multilabel"]), train_mode=g["train_mode"],
            arch=arch, train_loader=process_loader(loaders["Train"], options),
            eval_loader=loaders.get("Eval") if g["eval_during_train"] else None,
            loss_train=loss["Train"], loss_eval=loss["Eval"],
            metric_train=metric.get("Train"), metric_eval=metric.get("Eval"), optimizer=cfg["Optimizer"],
            amp=cfg.get("AMP"), ema_decay=float(cfg["EMA"]["decay"]) if cfg.get("EMA") else None,
            callbacks=list(g["callbacks"] or []),
        )


def process_loader(train_loader: dict, options: RunOptions) -> dict:
    """DataLoader.Train as one process reads it: its batch is the config's unless the process-count rule split
    the config's batch over the processes (RunOptions.process_batch; config.yaml keeps the config's)."""
    if not options.process_batch:
        return train_loader
    return {**train_loader, "sampler": {**train_loader["sampler"], "batch_size": int(options.process_batch)}}

"""How many processes a training run uses on the CPU: `--nproc N` / `Global.cpu_processes: N` as given, or by
default ("auto") data parallel over the cores when that pays.

Why (CHANGELOG #29): Paddle's dygraph BatchNorm, activation and addition kernels run in one thread, so on 2 cores
two gloo processes with one math thread each train 1.3-1.85x the images/s of one process with two threads, at
the same global batch. Auto keeps the config's batch B as the global batch (B/n images in each process), so an
auto run is the one-process run except that BatchNorm statistics come from each process's share, as in
PaddleClas's multi-card training; an explicit count keeps PaddleClas's meaning (the batch is per process).

`choose_processes` is the rule, a pure function of `RunFacts`; `plan_processes` gathers a run's facts and turns
RunOptions.nproc into a count before `pcls.train` starts the run. A resumed run keeps the count and per-process
batch it was trained with (its checkpoint records them) unless a count is given.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Tuple

from pcls.engine.run_config import RunOptions
from pcls.errors import PclsError
from pcls.utils.text import count

log = logging.getLogger(__name__)

# each process's BatchNorm sees its own share of the batch: fewer images than this make noisy statistics
MIN_PROCESS_BATCH = 16
# the work that pays for launching processes (~2.5 s more start-up, #29) with room to spare, so that runs near
# the break-even (and the fast test suite's) stay one process: this many images at 224 x 224
MIN_WORK_IMAGES_224 = 2000
# each update all-reduces every gradient between the processes, so a step must compute enough per parameter it
# exchanges: global batch x update_freq x input pixels per (trainable) parameter. Measured on 2 idle cores (#29,
# CHANGELOG): ResNet18_vd at 32 px, batch 32 (0.0028) trained 0.83x in 2 processes; ResNet18_vd at 64 px (0.011),
# PPLCNet_x1_0 and MobileNetV3_small_x1_0 at 32 px (0.011-0.013) and every 224 px flagship (0.06+) 1.15-1.85x
MIN_PIXELS_PER_PARAMETER = 0.0055
# samplers whose batch_size is the batch of one process, so that splitting B into n x B/n keeps the run
SPLITTABLE_SAMPLERS = ("DistributedBatchSampler", "BatchSampler", "RASampler")


@dataclass(frozen=True)
class RunFacts:
    """What the auto rule looks at. `device`: where one process would run (cpu, gpu); `cores`: the cores this
    run may use; `images`: images to train on (all epochs); `pixels`: of one input image; `local_callbacks`:
    names of pcls.train callbacks that must see the run in the calling process."""

    device: str
    cores: int
    batch: int
    images: int
    pixels: int
    sampler: str = "DistributedBatchSampler"
    parameters: Optional[int] = None
    update_freq: int = 1
    smoke: bool = False
    in_worker: bool = False
    local_callbacks: Tuple[str, ...] = ()


def choose_processes(facts: RunFacts) -> Tuple[int, str]:
    """(processes, reason): data parallel only when every condition holds, else 1 process and the first that
    does not. n is the most cores over which the batch splits evenly into shares of >= MIN_PROCESS_BATCH."""
    if facts.smoke:
        return 1, "a smoke run is one process"
    if facts.in_worker:
        return 1, "already a worker of a launched job"
    if facts.device != "cpu":
        return 1, f"the run is on {facts.device}, not the CPU"
    if facts.local_callbacks:
        return 1, (f"callback {', '.join(facts.local_callbacks)} passed to pcls.train must see the run in this "
                   "process")
    if facts.cores < 2:
        return 1, f"{count(facts.cores, 'core')} to use"
    if facts.sampler not in SPLITTABLE_SAMPLERS:
        return 1, f"{facts.sampler} sets its own batch sizes"
    if facts.images * facts.pixels < MIN_WORK_IMAGES_224 * 224 * 224:
        return 1, (f"{count(facts.images, 'image')} to train of {facts.pixels:,} pixels each is less work than "
                   f"{MIN_WORK_IMAGES_224:,} at 224x224, which starting processes needs to pay off")
    computed = facts.batch * facts.update_freq * facts.pixels
    if facts.parameters and computed < MIN_PIXELS_PER_PARAMETER * facts.parameters:
        return 1, (f"a batch of {facts.batch} x {facts.pixels:,} pixels per update is little work for the "
                   f"{facts.parameters / 1e6:.1f}M gradients the processes would exchange every update")
    n = max((k for k in range(2, facts.cores + 1) if facts.batch % k == 0 and facts.batch // k >= MIN_PROCESS_BATCH),
            default=1)
    if n == 1:
        return 1, (f"batch {facts.batch} does not split into 2 or more equal shares of {MIN_PROCESS_BATCH}+ images "
                   f"(BatchNorm statistics per process)")
    return n, f"{count(facts.cores, 'core')}, batch {facts.batch} = {n} x {facts.batch // n}"


def plan_processes(cfg: dict, options: RunOptions, callbacks=()) -> RunOptions:
    """`options` with nproc a count (and process_batch, processes_reason) for the run of the validated `cfg`.

    GPU and multi-node jobs (gpus/ips) are left as they are. A given count (--nproc N, nproc=N) is used as
    given; else a resumed pcls run continues with the count and per-process batch its checkpoint recorded;
    else Global.cpu_processes: a count on the CPU, or "auto" (also --nproc auto): `choose_processes`."""
    if options.gpus or options.ips:
        return options
    if isinstance(options.nproc, int):
        return dataclasses.replace(options, processes_reason="1 process was asked for" if options.nproc == 1 else None)
    device = _device(options.device)
    recorded = _recorded_processes(options.resume) if device == "cpu" else None
    if recorded is not None:
        return _as_recorded(cfg, options, *recorded)
    # a smoke run goes to the rule whatever the config says: one process
    setting = "auto" if options.nproc == "auto" or options.smoke else cfg["Global"]["cpu_processes"]
    if setting != "auto":
        if device != "cpu":
            return dataclasses.replace(options, nproc=1, processes_reason=f"Global.cpu_processes is for CPU runs; "
                                                                          f"this one is on {device}")
        return dataclasses.replace(options, nproc=int(setting), processes_reason=(
            "Global.cpu_processes is 1" if setting == 1 else None))
    facts = run_facts(cfg, options, device, callbacks)
    n, reason = choose_processes(facts)
    if n == 1:
        log.debug("training in one process: %s", reason)
        return dataclasses.replace(options, nproc=1, processes_reason=reason)
    log.info("training in %d CPU processes (data parallel, batch %d = %d x %d); --nproc 1 keeps one process",
             n, facts.batch, n, facts.batch // n)
    return dataclasses.replace(options, nproc=n, process_batch=facts.batch // n, processes_reason=None)


def run_facts(cfg: dict, options: RunOptions, device: str, callbacks=()) -> RunFacts:
    """The facts of the run of `cfg` the rule decides on (reads the training list, not the images)."""
    from pcls.engine.cpu import compute_threads
    from pcls.engine.env import in_launched_worker

    g, train = cfg["Global"], cfg["DataLoader"]["Train"]
    batch = int(train["sampler"]["batch_size"])
    per_epoch = train_images(train["dataset"])
    if g["max_iters"]:
        per_epoch = min(per_epoch, int(g["max_iters"]) * batch)
    height, width = _input_size(cfg)
    local = tuple(type(cb).__name__ for cb in callbacks if not getattr(cb, "runs_in_parent", False))
    # the machine's thread budget: usable cores, or fewer when PCLS_NUM_THREADS says so (pcls/engine/cpu.py)
    return RunFacts(device=device, cores=compute_threads(1), batch=batch, images=int(g["epochs"]) * per_epoch,
                    pixels=height * width, sampler=train["sampler"].get("name") or "DistributedBatchSampler",
                    parameters=trainable_parameters(cfg["Arch"]), update_freq=int(g["update_freq"]),
                    smoke=options.smoke, in_worker=in_launched_worker(), local_callbacks=local)


def train_images(dataset: dict) -> int:
    """Images in a DataLoader dataset section, counted without loading them: list lines, or folder images."""
    from pcls.engine.components import count_lines

    for key in ("cls_label_path", "sample_list_path"):
        if dataset.get(key) and Path(dataset[key]).is_file():
            return count_lines(dataset[key])
    if dataset.get("name") in ("ClassFolderDataset", "ImageFolder") and Path(dataset["image_root"]).is_dir():
        from pcls.data.datasets import scan_class_folders

        return len(scan_class_folders(dataset["image_root"], skipped=[])[1])
    return 0


def trainable_parameters(arch: dict) -> Optional[int]:
    """The parameters that learn in the model `arch` describes, from the zoo catalog's published counts (ImageNet
    heads: close enough for the rule); a distillation's learning members summed; None when a backbone is not in
    the catalog."""
    from pcls.config.members import distill_members, frozen_labels
    from pcls.zoo.catalog import load_catalog

    if arch.get("name") == "DistillationModel":
        frozen = set(frozen_labels(arch))
        counts = [trainable_parameters(section) for label, section in distill_members(arch) if label not in frozen]
        return None if None in counts else sum(counts)
    counts = {row["arch"]: row["params_m"] for row in load_catalog().values() if row.get("params_m")}
    millions = counts.get(arch.get("name"))
    return None if millions is None else int(millions * 1e6)


def _input_size(cfg: dict) -> Tuple[int, int]:
    """(height, width) the training pipeline feeds the model: its last crop / fixed resize, else Global.image_shape."""
    from pcls.deploy.export.preprocess import input_size_of

    size = input_size_of(cfg["DataLoader"]["Train"]["dataset"].get("transform_ops"))
    return size or tuple(int(v) for v in cfg["Global"]["image_shape"][-2:])


def _device(device: Optional[str]) -> str:
    """Where one process of this run would train: cpu or gpu."""
    device = (device or "auto").lower()
    if device == "auto":
        from pcls.engine.env import cuda_available

        return "gpu" if cuda_available() else "cpu"
    return "cpu" if device == "cpu" else "gpu"


def _recorded_processes(resume) -> Optional[Tuple[int, int, int]]:
    """(processes, batch per process, config batch) a resumed pcls checkpoint was trained with; None for a fresh
    run or a PaddleClas checkpoint (or an unreadable state, which loading the checkpoint reports)."""
    if not resume:
        return None
    from pcls.engine.checkpoint import checkpoint_prefix, checkpoint_state

    prefix = checkpoint_prefix(resume)  # a resume that names no checkpoint is refused here, in one line
    try:
        state = checkpoint_state(prefix)
        config_batch = int(state["config"]["DataLoader"]["Train"]["sampler"]["batch_size"])
        return int(state.get("world_size", 1)), int(state.get("process_batch", config_batch)), config_batch
    except (PclsError, KeyError, TypeError, ValueError):
        return None


def _as_recorded(cfg: dict, options: RunOptions, world: int, process_batch: int, config_batch: int) -> RunOptions:
    """The options of a resumed run that continues as it was trained: `world` processes, the config's batch
    split over them again when it was split then."""
    batch = int(cfg["DataLoader"]["Train"]["sampler"]["batch_size"])
    split = process_batch != config_batch
    if split and batch % world:
        raise PclsError(f"DataLoader.Train.sampler.batch_size {batch} does not split over the {world} processes "
                        f"{options.resume} was trained in; pass --nproc N (the batch is then per process)")
    reason = f"the resumed run was trained in {count(world, 'process', 'processes')}"
    if world > 1:
        log.info("training in %d CPU processes as the resumed run was (batch %d per process); --nproc N changes it",
                 world, batch // world if split else batch)
    return dataclasses.replace(options, nproc=world, process_batch=batch // world if split else None,
                               processes_reason=reason if world == 1 else None)

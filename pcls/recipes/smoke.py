"""`--smoke`: rewrite any config to a few iterations on generated data of the right shape and class count,
so a recipe's whole pipeline (ops, model, loss, optimizer, eval, report) is checked on a CPU in seconds."""

from __future__ import annotations

import copy
import logging
from pathlib import Path

import numpy as np

from pcls.utils.io import atomic_write_text

log = logging.getLogger(__name__)

SMOKE_IMAGES = 6
SMOKE_ITERS = 2
SMOKE_BATCH = 2


def _image_side(cfg: dict) -> int:
    """A generated-image side large enough for every resize/crop op in the recipe."""
    sizes = [int(cfg["Global"]["image_shape"][-1])]
    for split in ("Train", "Eval"):
        ops = cfg.get("DataLoader", {}).get(split, {}).get("dataset", {}).get("transform_ops") or []
        for op in ops:
            (_, params), = op.items()
            for key in ("size", "resize_short"):
                value = (params or {}).get(key)
                if isinstance(value, int):
                    sizes.append(value)
                elif isinstance(value, list) and value:
                    sizes.append(max(int(v) for v in value))
    return max(sizes) + 8


def _class_num(cfg: dict) -> int:
    from pcls.config.schema import default_of

    return int(cfg["Arch"].get("class_num") or default_of("Arch.class_num"))


def write_smoke_data(root: Path, side: int, class_num: int, with_unlabeled: bool) -> dict:
    """Random JPEGs plus train/val lists whose labels span the class range."""
    import cv2

    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    lines = []
    for index in range(SMOKE_IMAGES):
        image = rng.integers(0, 256, size=(side, side + 16, 3), dtype=np.uint8)
        name = f"img_{index}.jpg"
        cv2.imwrite(str(root / name), image)
        label = index * class_num // SMOKE_IMAGES
        lines.append(f"{name} {label}")
    train_lines = lines + ([f"{lines[0].split()[0]}"] if with_unlabeled else [])
    atomic_write_text(root / "train_list.txt", "\n".join(train_lines) + "\n")
    atomic_write_text(root / "val_list.txt", "\n".join(lines[:SMOKE_BATCH]) + "\n")
    # multi-label lists (path<TAB>0,1,...: each sample's bits differ) and a paths-only list (CustomLabelDataset)
    bits = [",".join(str((index >> c) & 1 if c < 3 else int(c % SMOKE_IMAGES == index)) for c in range(class_num))
            for index in range(SMOKE_IMAGES)]
    multi = [f"{line.split()[0]}\t{row}" for line, row in zip(lines, bits)]
    atomic_write_text(root / "train_multilabel.txt", "\n".join(multi) + "\n")
    atomic_write_text(root / "val_multilabel.txt", "\n".join(multi[:SMOKE_BATCH]) + "\n")
    atomic_write_text(root / "images.txt", "\n".join(line.split()[0] for line in lines) + "\n")
    return {"train": str(root / "train_list.txt"), "val": str(root / "val_list.txt"), "root": str(root),
            "images": str(root / "images.txt")}


def _no_pretrained(section: dict) -> None:
    """No weights for the model and its members, nested ones too (AFD's AttentionModel holds a backbone)."""
    from pcls.config.members import member_sections

    section["pretrained"] = False
    for _, member in member_sections(section, copy=False):
        _no_pretrained(member)


def smoke_config(cfg: dict, workdir, label: str) -> dict:
    """A copy of `cfg` that trains SMOKE_ITERS iterations on generated data, no downloads: the run goes to
    `workdir/<label>` (the caller names it), the data to `workdir/_data/<label>`."""
    cfg = copy.deepcopy(cfg)
    workdir = Path(workdir)
    loaders = cfg.get("DataLoader") or {}
    allow_unlabeled = bool(loaders.get("Train", {}).get("dataset", {}).get("allow_unlabeled"))
    data = write_smoke_data(workdir / "_data" / label, _image_side(cfg), _class_num(cfg), allow_unlabeled)
    for split, list_path in (("Train", data["train"]), ("Eval", data["val"])):
        if split not in loaders:
            continue
        section = loaders[split]
        section["dataset"]["image_root"] = data["root"]
        section["dataset"]["cls_label_path"] = list_path
        section["dataset"]["delimiter"] = " "  # the generated lists' separator, whatever the config's is
        if section["dataset"].get("name") == "MultiLabelDataset":
            section["dataset"]["cls_label_path"] = list_path.replace("_list.txt", "_multilabel.txt")
            section["dataset"]["delimiter"] = "\t"
        if section["dataset"].get("sample_list_path"):
            section["dataset"]["sample_list_path"] = data["images"]
        section["sampler"]["batch_size"] = SMOKE_BATCH
        section["sampler"]["drop_last"] = False
        section["loader"]["num_workers"] = 0
    glob = cfg["Global"]
    if glob.get("pretrained_model") or cfg["Arch"].get("pretrained"):
        log.info("smoke run: the pretrained weights (%s) are neither fetched nor loaded; a full run fetches them",
                 glob.get("pretrained_model") or cfg["Arch"].get("pretrained"))
    glob.update(epochs=1, max_iters=SMOKE_ITERS, output_dir=str(workdir), pretrained_model=None, start_eval_epoch=0,
                checkpoints=None, eval_interval=1, save_interval=1, print_batch_step=1, use_visualdl=False,
                device="cpu")
    _no_pretrained(cfg["Arch"])
    cfg.pop("AMP", None)  # AMP only runs on GPU; the smoke run is a CPU check
    return cfg


def smoke_run(cfg: dict, options):
    """(config, RunOptions) of the smoke run of `cfg` (`pcls.train(..., smoke=True)`): one CPU process under
    `Global.output_dir/smoke/<label>`, the label being the run name, else the recipe, else the config file's
    name."""
    import dataclasses

    label = options.run_name or options.recipe or Path(options.resume or cfg.get("_source") or "config").stem
    smoke = smoke_config(cfg, Path(cfg["Global"]["output_dir"]) / "smoke", label)
    return smoke, dataclasses.replace(options, run_name=label, device="cpu", nproc=None, gpus=None, ips=None)


CHECKPOINT_SUFFIXES = (".pdparams", ".pdopt")


def discard_checkpoints(run_dir) -> list:
    """Remove the checkpoints a smoke run wrote (weights, optimizer state and their .json records; a full-size
    model's are hundreds of MB per run), found in the run folder's ledger so nothing else is touched. The
    metrics, curves, config and summary stay. Returns the removed paths."""
    from pcls.utils.io import written_entries

    run_dir = Path(run_dir)
    entries = written_entries(run_dir) or []
    stems = {Path(e).with_suffix("").as_posix() for e in entries if e.endswith(CHECKPOINT_SUFFIXES)}
    removed = []
    for entry in entries:
        if Path(entry).with_suffix("").as_posix() in stems and (run_dir / entry).is_file():
            (run_dir / entry).unlink()
            removed.append(run_dir / entry)
    return removed

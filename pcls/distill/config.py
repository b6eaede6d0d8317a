"""The config `pcls distill --teacher ... --student ...` runs: PaddleClas's distillation schema, built from
the command-line choices, so a flag-built run and a config-file run are the same thing."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from pcls.errors import PclsError
from pcls.utils.io import atomic_write_text

# loss flavour -> (teacher frozen?, soft-label loss entry, default weight of the ground-truth CE)
FLAVOURS = {
    "ssld": (True, "DistillationCELoss", 0.0),  # SSLD: soft labels from the teacher, labels optional
    "js": (True, "DistillationJSDivLoss", 0.0),
    "kd": (True, "DistillationKLDivLoss", 1.0),  # Hinton KD: T^2 KL + CE on labels
    "dml": (False, "DistillationDMLLoss", 1.0),  # mutual learning: both trainable, both with labels
}


def split_model_arg(text: str, what: str):
    """'ResNet50_vd:path/to/weights' -> ('ResNet50_vd', 'path/to/weights'); no ':' -> (name, None)."""
    if not text or text.startswith(":"):
        raise PclsError(f"--{what} needs a model name, e.g. --{what} ResNet50_vd[:weights]")
    name, _, weights = text.partition(":")
    return name, (weights or None)


def merged_list(train_list: str, extra_list: Optional[str], root: str, folder: Path) -> str:
    """train_list followed by the extra (unlabeled) list, written once into `folder` (beside the runs, not in
    one: the run directory is chosen later and may become `<run>-2`)."""
    for path in (train_list, extra_list):
        if path and not Path(path).is_file():
            raise PclsError(f"list file {path} does not exist")
    if not extra_list:
        return train_list
    text = Path(train_list).read_text(encoding="utf-8").rstrip("\n") + "\n"
    text += Path(extra_list).read_text(encoding="utf-8").rstrip("\n") + "\n"
    target = folder / "train_extra_list.txt"
    atomic_write_text(target, text)
    return str(target)


def build_distill_config(*, teacher: str, student: str, train_list: str, root: str, val_list: Optional[str],
                         extra_list: Optional[str], class_num: int, flavour: str, temperature: float,
                         gt_weight: Optional[float], epochs: int, batch_size: int, lr: float, image_size: int,
                         output_dir: str, seed: Optional[int], augment: bool = True) -> dict:
    """augment=False (pcls distill --cache-teacher) trains on the eval-style inputs (resize, centre crop), a
    deterministic pipeline, so every image's teacher logits are computed once and reused in later epochs."""
    if flavour not in FLAVOURS:
        raise PclsError(f"unknown --loss '{flavour}'; choose one of {', '.join(FLAVOURS)}")
    freeze_teacher, soft_loss, default_gt = FLAVOURS[flavour]
    teacher_name, teacher_weights = split_model_arg(teacher, "teacher")
    student_name, student_weights = split_model_arg(student, "student")
    run_dir = Path(output_dir) / f"distill_{teacher_name}_to_{student_name}"
    train_path = merged_list(train_list, extra_list, root, Path(output_dir) / "_data" / run_dir.name)
    gt = default_gt if gt_weight is None else gt_weight
    loss = [{soft_loss: {"weight": 1.0, "model_name_pairs": [["Student", "Teacher"]], "temperature": temperature}}]
    if gt > 0:
        loss.append({"DistillationGTCELoss": {"weight": gt, "model_names": ["Student", "Teacher"] if flavour == "dml"
                                              else ["Student"]}})
    size = int(image_size)
    short = int(round(size * 256 / 224))
    normalize = {"NormalizeImage": {"scale": "1.0/255.0", "mean": [0.485, 0.456, 0.406],
                                    "std": [0.229, 0.224, 0.225], "order": ""}}
    decode = {"DecodeImage": {"to_rgb": True, "channel_first": False}}
    eval_ops = [decode, {"ResizeImage": {"resize_short": short}}, {"CropImage": {"size": size}}, normalize]
    train_ops = [decode, {"RandCropImage": {"size": size}}, {"RandFlipImage": {"flip_code": 1}}, normalize]
    if not augment:
        train_ops = eval_ops
    cfg = {
        "Global": {"epochs": epochs, "output_dir": output_dir, "run_name": run_dir.name, "seed": seed,
                   "eval_during_train": bool(val_list), "image_shape": [3, size, size]},
        "Arch": {"name": "DistillationModel", "class_num": class_num, "infer_model_name": "Student",
                 "freeze_params_list": [freeze_teacher, False],
                 "models": [{"Teacher": {"name": teacher_name, "class_num": class_num,
                                         "pretrained": teacher_weights or False}},
                            {"Student": {"name": student_name, "class_num": class_num,
                                         "pretrained": student_weights or False}}]},
        "Loss": {"Train": loss, "Eval": [{"DistillationGTCELoss": {"weight": 1.0, "model_names": ["Student"]}}]},
        "Optimizer": {"name": "Momentum", "momentum": 0.9, "lr": {"name": "Cosine", "learning_rate": lr},
                      "regularizer": {"name": "L2", "coeff": 7e-5}},
        "DataLoader": {"Train": {
            "dataset": {"name": "ImageNetDataset", "image_root": root, "cls_label_path": train_path,
                        "allow_unlabeled": bool(extra_list) or flavour in ("ssld", "js"),
                        "transform_ops": train_ops},
            "sampler": {"name": "DistributedBatchSampler", "batch_size": batch_size, "drop_last": False, "shuffle": True},
            "loader": {"num_workers": 2, "use_shared_memory": True}}},
        "Metric": {"Train": [{"DistillationTopkAcc": {"model_key": "Student", "topk": [1, 5]}}],
                   "Eval": [{"DistillationTopkAcc": {"model_key": "Student", "topk": [1, 5]}}]},
    }
    if val_list:
        if not Path(val_list).is_file():
            raise PclsError(f"list file {val_list} does not exist")
        cfg["DataLoader"]["Eval"] = {
            "dataset": {"name": "ImageNetDataset", "image_root": root, "cls_label_path": val_list,
                        "transform_ops": eval_ops},
            "sampler": {"name": "DistributedBatchSampler", "batch_size": batch_size, "drop_last": False,
                        "shuffle": False},
            "loader": {"num_workers": 2, "use_shared_memory": True}}
    from pcls.config.schema import validate

    return validate(cfg)

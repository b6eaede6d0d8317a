"""Distillation fixtures: a generated colour task where labels are scarce and an unlabeled pool is large
(SSLD's setting), a TinyNet teacher trained on more labelled data, and configs in PaddleClas's schema."""

from pathlib import Path

import numpy as np
import pytest

# class k = a base colour; a per-image colour shift (std 45) makes neighbouring classes overlap, so one
# labelled image per class is not enough and a teacher that saw 40 per class knows the boundaries better
COLOURS = [(200, 60, 60), (60, 200, 60), (60, 60, 200), (200, 200, 60), (200, 60, 200), (60, 200, 200),
           (130, 130, 130), (230, 150, 60)]
CLASS_NUM = len(COLOURS)


def _write_split(root: Path, split: str, per_class: int, rng, labelled=True, size=16) -> Path:
    import cv2

    lines = []
    for label, colour in enumerate(COLOURS):
        for k in range(per_class):
            shift = rng.normal(0, 45, (1, 1, 3))
            img = np.clip(np.array(colour)[None, None, :] + shift + rng.normal(0, 50, (size, size, 3)), 0, 255)
            name = f"{split}_{label}_{k}.png"
            cv2.imwrite(str(root / name), img.astype(np.uint8))
            lines.append(f"{name} {label}" if labelled else name)
    path = root / f"{split}.txt"
    path.write_text("\n".join(lines) + "\n")
    return path


def write_scarce_label_data(root: Path, seed=0) -> dict:
    """teacher.txt (40/class), labelled.txt (1/class), unlabeled.txt (25/class, no labels), val.txt (20/class),
    plus labelled_repeated.txt: the labelled lines repeated to the length of labelled + unlabeled, so a
    student trained alone on it takes exactly as many steps as the distilled one."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    data = {"root": str(root)}
    data["teacher"] = _write_split(root, "teacher", 40, rng)
    data["labelled"] = _write_split(root, "labelled", 1, rng)
    data["unlabeled"] = _write_split(root, "unlabeled", 25, rng, labelled=False)
    data["val"] = _write_split(root, "val", 20, rng)
    labelled = data["labelled"].read_text().splitlines()
    unlabeled = data["unlabeled"].read_text().splitlines()
    data["labelled_repeated"] = root / "labelled_repeated.txt"
    data["labelled_repeated"].write_text("\n".join((labelled * 100)[: len(labelled) + len(unlabeled)]) + "\n")
    data["labelled_unlabeled"] = root / "labelled_unlabeled.txt"
    data["labelled_unlabeled"].write_text("\n".join(labelled + unlabeled) + "\n")
    return {k: str(v) for k, v in data.items()}


def plain_config(data: dict, train_list: str, out_dir, *, epochs=10, seed=7, lr=0.01, batch_size=24,
                 arch="TinyNet", random_aug=False) -> dict:
    ops = [{"DecodeImage": {"to_rgb": True, "channel_first": False}},
           {"NormalizeImage": {"scale": "1.0/255.0", "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25],
                               "order": ""}}]
    train_ops = ops[:1] + [{"RandFlipImage": {"flip_code": 1}}] + ops[1:] if random_aug else ops

    def loader(list_file, ops, train):
        return {"dataset": {"name": "ImageNetDataset", "image_root": data["root"], "cls_label_path": list_file,
                            "transform_ops": ops},
                "sampler": {"name": "DistributedBatchSampler", "batch_size": batch_size, "shuffle": train,
                            "drop_last": False},
                "loader": {"num_workers": 0}}

    return {
        "Global": {"output_dir": str(out_dir), "device": "cpu", "epochs": epochs, "seed": seed,
                   "print_batch_step": 1000, "eval_interval": 1, "save_interval": 1000,
                   "image_shape": [3, 16, 16]},  # the images' size: these runs are far too small for 2 processes
        "Arch": {"name": arch, "class_num": CLASS_NUM},
        "Loss": {"Train": [{"CELoss": {"weight": 1.0}}], "Eval": [{"CELoss": {"weight": 1.0}}]},
        "Optimizer": {"name": "Momentum", "momentum": 0.9, "lr": {"name": "Cosine", "learning_rate": lr},
                      "regularizer": {"name": "L2", "coeff": 1e-4}},
        "DataLoader": {"Train": loader(train_list, train_ops, True), "Eval": loader(data["val"], ops, False)},
        "Metric": {"Train": [{"TopkAcc": {"topk": [1]}}], "Eval": [{"TopkAcc": {"topk": [1]}}]},
    }


def distill_config(data: dict, train_list: str, out_dir, teacher_weights, *, gt_weight=1.0, student="TinyNet",
                   teacher="TinyNet", soft_loss="DistillationCELoss", **kwargs) -> dict:
    """PaddleClas's distillation schema: Arch.models with freeze_params, Loss.Train with model_name_pairs."""
    cfg = plain_config(data, train_list, out_dir, **kwargs)
    cfg["DataLoader"]["Train"]["dataset"]["allow_unlabeled"] = True
    cfg["Arch"] = {"name": "DistillationModel", "class_num": CLASS_NUM, "infer_model_name": "Student",
                   "models": [{"Teacher": {"name": teacher, "pretrained": teacher_weights, "freeze_params": True}},
                              {"Student": {"name": student, "pretrained": False, "freeze_params": False}}]}
    train = [{soft_loss: {"weight": 1.0, "model_name_pairs": [["Student", "Teacher"]]}}]
    if gt_weight:
        train.append({"DistillationGTCELoss": {"weight": gt_weight, "model_names": ["Student"]}})
    cfg["Loss"] = {"Train": train, "Eval": [{"DistillationGTCELoss": {"weight": 1.0, "model_names": ["Student"]}}]}
    metric = [{"DistillationTopkAcc": {"model_key": "Student", "topk": [1]}}]
    cfg["Metric"] = {"Train": metric, "Eval": metric}
    return cfg


def quiet(_message):
    pass


@pytest.fixture(scope="session")
def tinynet():
    from tests.engine import tinynet as module  # registers TinyNet

    return module


@pytest.fixture(scope="session")
def scarce_data(tmp_path_factory):
    return write_scarce_label_data(tmp_path_factory.mktemp("distill_data"))


@pytest.fixture(scope="session")
def trained_teacher(scarce_data, tinynet, tmp_path_factory):
    """A TinyNet trained on 40 labelled images per class: its weights prefix and its val top-1."""
    from pcls.engine.trainer import train

    out = tmp_path_factory.mktemp("teacher")
    cfg = plain_config(scarce_data, scarce_data["teacher"], out, epochs=20, batch_size=32)
    summary = train(cfg, log=quiet)
    return {"weights": str(out / "TinyNet" / "best_model"), "top1": summary["best"]["value"]}

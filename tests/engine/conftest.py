"""Engine test fixtures: a small generated colour dataset and configs that train TinyNet on it."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

TINYNET = Path(__file__).with_name("tinynet.py")
# class k = a dominant colour; easy enough that a tiny CNN learns it in a few epochs
COLOURS = [(220, 40, 40), (40, 200, 40), (40, 40, 220), (220, 220, 40)]


def write_colour_dataset(root: Path, train_per_class=16, val_per_class=6, size=16, seed=0) -> dict:
    import cv2

    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    lists = {}
    for split, per_class in (("train", train_per_class), ("val", val_per_class)):
        lines = []
        for label, colour in enumerate(COLOURS):
            for k in range(per_class):
                img = np.clip(np.array(colour)[None, None, :] + rng.normal(0, 40, (size, size, 3)), 0, 255)
                name = f"{split}_{label}_{k}.png"
                cv2.imwrite(str(root / name), img.astype(np.uint8)[:, :, ::-1])
                lines.append(f"{name} {label}")
        path = root / f"{split}_list.txt"
        path.write_text("\n".join(lines) + "\n")
        lists[split] = str(path)
    return {"root": str(root), **lists}


def tiny_config(data: dict, out_dir: Path, **global_overrides) -> dict:
    ops = [{"DecodeImage": {"to_rgb": True, "channel_first": False}},
           {"NormalizeImage": {"scale": "1.0/255.0", "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25],
                               "order": ""}}]
    cfg = {
        "Global": {"output_dir": str(out_dir), "device": "cpu", "epochs": 3, "seed": 7, "print_batch_step": 1000,
                   "eval_interval": 1, "save_interval": 100, "image_shape": [3, 16, 16], **global_overrides},
        "Arch": {"name": "TinyNet", "class_num": len(COLOURS)},
        "Loss": {"Train": [{"CELoss": {"weight": 1.0}}], "Eval": [{"CELoss": {"weight": 1.0}}]},
        "Optimizer": {"name": "Momentum", "momentum": 0.9,
                      "lr": {"name": "Cosine", "learning_rate": 0.05},
                      "regularizer": {"name": "L2", "coeff": 1e-4}},
        "DataLoader": {
            "Train": {"dataset": {"name": "ImageNetDataset", "image_root": data["root"],
                                  "cls_label_path": data["train"], "transform_ops": ops},
                      "sampler": {"name": "DistributedBatchSampler", "batch_size": 8, "shuffle": True,
                                  "drop_last": False},
                      "loader": {"num_workers": 0}},
            "Eval": {"dataset": {"name": "ImageNetDataset", "image_root": data["root"],
                                 "cls_label_path": data["val"], "transform_ops": ops},
                     "sampler": {"name": "DistributedBatchSampler", "batch_size": 8, "shuffle": False},
                     "loader": {"num_workers": 0}},
        },
        "Metric": {"Train": [{"TopkAcc": {"topk": [1, 2]}}], "Eval": [{"TopkAcc": {"topk": [1, 2]}}]},
    }
    return cfg


def write_config(cfg: dict, path: Path) -> Path:
    path.write_text(yaml.safe_dump(cfg))
    return path


def run_pcls(args, cwd=None, timeout=240, **kwargs):
    """`pcls ARGS` in a subprocess with TinyNet registered; returns the CompletedProcess (or Popen)."""
    env = dict(os.environ, PCLS_PLUGINS=str(TINYNET), PYTHONUNBUFFERED="1")
    cmd = [sys.executable, "-m", "pcls", *map(str, args)]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, **kwargs)


def pcls_env():
    return dict(os.environ, PCLS_PLUGINS=str(TINYNET), PYTHONUNBUFFERED="1")


@pytest.fixture
def colour_data(tmp_path):
    return write_colour_dataset(tmp_path / "data")


@pytest.fixture(scope="module")
def tinynet():
    from tests.engine import tinynet as module

    return module

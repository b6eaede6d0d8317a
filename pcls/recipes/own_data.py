"""`pcls train --model M --data DIR`: a whole training config for your own class folders, built from the model's
catalog row (input size and evaluation pre-processing) and fine-tuning settings that work on a small set.

The run folder gets the lists and the resolved config.yaml, so `pcls train -c output/<run>/config.yaml` runs it
again and the config can be edited like any other.
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path

from pcls.errors import PclsError

log = logging.getLogger(__name__)

# PaddleClas's flowers102 quick start (PaddleClas docs: Trial in 30mins; 1,020 training images, 10 per
# class): Momentum 0.9, Cosine lr 0.00375 at batch 32, L2 1e-6, 20 epochs fine-tune MobileNetV3_large_x1_0 to 90.0%
# and ResNet50_vd to 94.0%. Without pretrained weights its from-scratch setting: lr 0.0125, L2 1e-5.
FINETUNE = {"epochs": 20, "batch_size": 32, "learning_rate": 0.00375, "l2": 1e-6}
SCRATCH = {"epochs": 20, "batch_size": 32, "learning_rate": 0.0125, "l2": 1e-5}
EVAL_BATCH = 64
WORKERS = 2  # decoding full-size photos costs about as much as a small model's step; two workers hide most of it


def default_run_name(model: str, data) -> str:
    """'<data folder>-<model>': two models trained on one folder never share a default run name."""
    return f"{Path(data).resolve().name or 'data'}-{model}"


def folder_config(model: str, index, *, pretrained: bool = True, image_size: int = None, seed: int = 0) -> dict:
    """The raw config (PaddleClas sections) for training `model` on a FolderIndex: the catalog row's input size
    (or `image_size`, resize-short scaled by the same ratio) and pre-processing, random-resized crop + flip for
    training. The list files are named as in the run folder; prepare_folder_run sets their paths."""
    from pcls.data.class_folders import LIST_FILES
    from pcls.zoo.catalog import eval_transform_ops, preprocess_for

    pre = preprocess_for(model)
    size = int(image_size or pre["input_size"])
    eval_ops = eval_transform_ops(pre, image_size)
    decode, normalize = copy.deepcopy(eval_ops[0]), copy.deepcopy(eval_ops[-2])  # no YAML aliases in config.yaml
    resampling = {"interpolation": pre["interpolation"], "backend": pre["backend"]}
    train_ops = [decode, {"RandCropImage": {"size": size, **resampling}}, {"RandFlipImage": {"flip_code": 1}},
                 normalize, {"ToCHWImage": None}]
    hyper = FINETUNE if pretrained else SCRATCH
    n_train = index.counts["train"]
    batch = min(hyper["batch_size"], n_train)
    topk = [1, 5] if index.classes > 5 else [1]

    def loader(split, ops, batch_size, training):
        return {
            "dataset": {"name": "ImageNetDataset", "image_root": index.image_root,
                        "cls_label_path": LIST_FILES[split], "transform_ops": ops},
            "sampler": {"name": "DistributedBatchSampler", "batch_size": batch_size, "drop_last": training,
                        "shuffle": training},
            "loader": {"num_workers": WORKERS},
        }

    return {
        "Global": {"output_dir": "./output/", "device": "auto", "epochs": hyper["epochs"], "eval_interval": 1,
                   "save_interval": hyper["epochs"], "print_batch_step": 10, "seed": seed,
                   "image_shape": [3, size, size], "pretrained_model": model if pretrained else None},
        "Arch": {"name": model, "class_num": index.classes},
        "Loss": {"Train": [{"CELoss": {"weight": 1.0}}], "Eval": [{"CELoss": {"weight": 1.0}}]},
        "Optimizer": {"name": "Momentum", "momentum": 0.9,
                      "lr": {"name": "Cosine", "learning_rate": hyper["learning_rate"]},
                      "regularizer": {"name": "L2", "coeff": hyper["l2"]}},
        "DataLoader": {"Train": loader("train", train_ops, batch, True),
                       "Eval": loader("val", eval_ops, min(EVAL_BATCH, index.counts["val"]), False)},
        "Metric": {"Train": [{"TopkAcc": {"topk": topk}}], "Eval": [{"TopkAcc": {"topk": topk}}]},
        "Infer": {"batch_size": 10, "transforms": copy.deepcopy(eval_ops),
                  "PostProcess": {"name": "Topk", "topk": min(5, index.classes),
                                  "class_id_map_file": LIST_FILES["labels"]}},
    }


def fetch_pretrained(model: str) -> None:
    """Have the zoo weights of `model` in the cache before anything is written; one line when they cannot be had."""
    from pcls.zoo.catalog import load_catalog
    from pcls.zoo.weights import resolve_weights

    if not (load_catalog().get(model) or {}).get("pretrained_url"):
        raise PclsError(f"the zoo publishes no pretrained weights for {model} (see 'pcls zoo list'); pass "
                        f"--no-pretrained to train it from scratch")
    try:
        resolve_weights(model)
    except PclsError as err:
        mirror = "" if "PCLS_ZOO_MIRROR" in str(err) else "; set PCLS_ZOO_MIRROR=https://host/path to a zoo mirror"
        raise PclsError(f"pretrained weights of {model} could not be fetched: {err}{mirror}; or pass "
                        f"--no-pretrained to train from scratch") from None


def prepare_folder_run(model: str, data, *, val_split: float = 0.2, seed: int = 0, pretrained: bool = True,
                       image_size: int = None, run_name: str = None, overrides=(), exist_ok: bool = False,
                       write: bool = True):
    """Everything `pcls train --model M --data DIR` does before training: index DIR, fetch the weights, pick
    the run folder and write the lists into it. Returns the validated config; its Global.run_name is the run
    folder below output_dir (`-c <run>/config.yaml` then trains again beside this run, not over it).
    Nothing is written before the folder, the model name, the overrides and the weights are checked;
    write=False (--print-config, --smoke) only builds the config, naming the lists where a run would put them."""
    from pcls.config import apply_overrides
    from pcls.config.schema import validate
    from pcls.data.class_folders import LIST_FILES, index_class_folders
    from pcls.engine.rundir import allocate_run_dir, run_dir_of

    index = index_class_folders(data, val_split=val_split, seed=seed)
    cfg = validate(apply_overrides(folder_config(model, index, pretrained=pretrained, image_size=image_size,
                                                 seed=seed), list(overrides or ())))
    run_name = run_name or cfg["Global"].get("run_name") or default_run_name(model, data)
    run_dir = run_dir_of(cfg, run_name)  # a nonsense name is refused before the download
    if write:
        if pretrained and cfg["Global"].get("pretrained_model") == model:
            fetch_pretrained(model)
        run_dir = allocate_run_dir(run_dir, exist_ok=exist_ok)
        lists = index.write(run_dir)
        log.info("%s: %d classes (%s), %d train / %d val images; lists in %s", index.image_root, index.classes,
                 index.layout, index.counts["train"], index.counts["val"], run_dir)
    else:
        lists = {key: str(run_dir / name) for key, name in LIST_FILES.items()}
    for split, key in (("Train", "train"), ("Eval", "val")):
        cfg["DataLoader"][split]["dataset"]["cls_label_path"] = lists[key]
    postprocess = cfg["Infer"].get("PostProcess") or {}
    if postprocess.get("class_id_map_file") == LIST_FILES["labels"]:
        postprocess["class_id_map_file"] = lists["labels"]
    cfg["Global"]["run_name"] = run_dir.relative_to(Path(cfg["Global"]["output_dir"])).as_posix()
    return cfg

"""Evaluation: top-k accuracy and loss of a model over a loader (all ranks summed), and `evaluate` — the
`pcls eval` job — which adds per-class accuracy and a confusion matrix written to JSON/CSV."""

from __future__ import annotations

import csv
import io
import json
import logging
from collections import ChainMap
from pathlib import Path

import paddle

from pcls.engine.metrics import TopkMeter
from pcls.errors import PclsError

log = logging.getLogger(__name__)


@paddle.no_grad()
def run_eval(model, loader, *, loss_fn=None, topk=(1, 5), output_key=None, class_num=None, confusion=False,
             autocast=None, max_batches=None, on_batch=None, meter=None) -> TopkMeter:
    """One pass over `loader` in eval mode; returns the (all-reduced) meter: `meter` (e.g. a multi-label
    one from pcls.engine.metrics.build_meter), or a TopkMeter for `topk`."""
    from pcls.engine.amp import float32_tree
    from pcls.loss.ce import logits_of

    was_training = getattr(model, "training", False)  # an InferenceEvalModel is no Layer: always in eval mode
    if was_training:
        model.eval()
    meter = meter if meter is not None else TopkMeter(topk, class_num=class_num, confusion=confusion)
    labelled = getattr(loader, "all_labelled", False)  # else each batch's labels are looked at (a GPU sync)
    try:
        for i, (images, labels) in enumerate(loader):
            if max_batches is not None and i >= max_batches:
                break
            if autocast is not None:
                with autocast():
                    output = model(images)
                output = float32_tree(output)  # the loss in float32 (pcls/engine/amp.py)
            else:
                output = model(images)
            logits = logits_of(output, output_key or "logits").astype("float32")
            loss = None
            if loss_fn is not None and (labelled or labels.dtype not in (paddle.int64, paddle.int32)
                                        or bool((labels >= 0).all())):
                loss = loss_fn(output, labels)["loss"]
            meter.update(logits, labels, loss)
            if on_batch is not None:
                on_batch(len(labels))
    finally:
        if was_training:
            model.train()
    meter.all_reduce()
    return meter


def cpu_eval_model(model, bundle):
    """The network as evaluation runs it on CPU: through Paddle Inference (pcls/engine/evaluate_inference.py)
    unless PCLS_EVAL_INFERENCE=0 or it cannot be traced, else in dygraph with training's CPU settings
    (pcls/engine/cpu.py, pcls/arch/layers/gemm_conv.py)."""
    from pcls.engine.allocator import reuse_freed_memory
    from pcls.engine.cpu import configure_threads
    from pcls.engine.evaluate_inference import inference_eval_enabled

    threads = configure_threads()
    reuse_freed_memory()  # as training does: large activations reuse freed pages instead of faulting in new ones
    if inference_eval_enabled():
        traced, _ = _inference_model(model, threads, bundle)
        if traced is not None:
            return traced
    from pcls.arch.layers.gemm_conv import gemm_conv

    gemm_conv(model)
    return model


def _inference_model(net, threads: int, bundle):
    """(InferenceEvalModel traced for the first sample's (C, H, W), the size every batch of an eval pipeline has,
    None), or (None, why the network cannot run that way), logged."""
    import numpy as np

    from pcls.engine.evaluate_inference import InferenceEvalModel

    traced = InferenceEvalModel(net, threads)
    why = traced.prepare(tuple(bundle.dataset.load(0, np.random.default_rng(0))[0].shape))
    if why is None:
        return traced, None
    log.info("evaluating in dygraph: %s", why)
    return None, why


# The training loop evaluates through Paddle Inference from this many Eval images on: every evaluation traces the
# current weights again (a few seconds, CHANGELOG #29), which a smaller set does not repay.
TRAINING_EVAL_INFERENCE_MIN_IMAGES = 1000


class TrainingEvalNetwork:
    """What the training loop evaluates: on CPU, with an Eval set of TRAINING_EVAL_INFERENCE_MIN_IMAGES or more, a
    copy of the network (a plain backbone) holding the current weights, through Paddle Inference; else the network
    itself. Call it before each evaluation."""

    def __init__(self, run, parts):
        self.run, self.parts = run, parts
        self.copy, self.unusable = None, None

    def __call__(self):
        from pcls.engine.evaluate_inference import inference_eval_enabled
        from pcls.engine.model import MODEL_KINDS, build_model

        run, parts = self.run, self.parts
        if (self.unusable or run.device != "cpu" or parts.amp.eval_autocast is not None
                or run.arch["name"] in MODEL_KINDS or len(parts.eval_data.dataset) < TRAINING_EVAL_INFERENCE_MIN_IMAGES
                or not inference_eval_enabled()):
            return parts.model
        from pcls.engine.cpu import compute_threads

        if self.copy is None:  # built once, without pcls's CPU training convolutions (they would be traced)
            self.copy = build_model({**run.arch, "pretrained": False},
                                    {"pretrained_model": None, "data_format": run.data_format})
        self.copy.set_state_dict(parts.net.state_dict())
        traced, self.unusable = _inference_model(self.copy, compute_threads(run.world), parts.eval_data)
        return parts.model if traced is None else traced


def write_confusion(meter: TopkMeter, out_dir, class_names=None) -> dict:
    """confusion_matrix.json / .csv and per_class.csv under out_dir; returns the paths."""
    from pcls.utils.io import atomic_write_text

    out_dir = Path(out_dir)
    names = class_names or [str(i) for i in range(len(meter.confusion))]
    matrix = meter.confusion.tolist()
    per_class = meter.per_class()
    for row in per_class:
        row["name"] = names[row["class_id"]] if row["class_id"] < len(names) else str(row["class_id"])
    json_path, csv_path = out_dir / "confusion_matrix.json", out_dir / "confusion_matrix.csv"
    atomic_write_text(json_path, json.dumps({"classes": names, "matrix": matrix,
                                             "rows": "true class", "columns": "predicted class"}, indent=1))
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["true \\ predicted", *names])
    for name, row in zip(names, matrix):
        writer.writerow([name, *row])
    atomic_write_text(csv_path, buf.getvalue())
    return {"confusion_json": str(json_path), "confusion_csv": str(csv_path),
            **write_per_class(per_class, out_dir, ["class_id", "name", "support", "top1"])}


def write_per_class(rows: list, out_dir, fields: list) -> dict:
    """per_class.csv under out_dir with `fields` of each row; returns its path."""
    from pcls.utils.io import atomic_write_text

    path = Path(out_dir) / "per_class.csv"
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, buf.getvalue())
    return {"per_class_csv": str(path)}


def read_class_names(path, class_num):
    """Names from a labels file ('<id> <name>' or '<name>' per line); ids when absent."""
    names = [str(i) for i in range(class_num)]
    if path and Path(path).is_file():
        from pcls.utils.io import read_text  # not UTF-8: one line naming file, line and byte

        for i, line in enumerate(read_text(path, "labels file").splitlines()):
            parts = line.strip().split(maxsplit=1)
            if not parts:
                continue
            if len(parts) == 2 and parts[0].isdigit() and int(parts[0]) < class_num:
                names[int(parts[0])] = parts[1]
            elif i < class_num:
                names[i] = line.strip()
    return names


def eval_config(model: str, data, root=".", class_num=None, labels_file=None, batch_size=None,
                image_size=None) -> dict:
    """The config that evaluates zoo model / backbone `model` on the labelled list `data`: the catalog's eval
    pre-processing for the model, at `image_size` if given (the same ops `pcls export --image-size` writes).
    class_num: given, else the lines of `labels_file`, else the largest label in `data` + 1."""
    from pcls.config.schema import validate
    from pcls.zoo.catalog import eval_transform_ops, preprocess_for

    if not Path(data).is_file():
        raise PclsError(f"list file {data} does not exist")
    if class_num is None and labels_file and Path(labels_file).is_file():
        from pcls.utils.io import read_text  # not UTF-8: one line naming file, line and byte

        class_num = sum(1 for line in read_text(labels_file, "labels file").splitlines() if line.strip())
    if class_num is None:
        from pcls.data.lists import class_count

        class_num = class_count(data)
    ops = eval_transform_ops(preprocess_for(model), image_size)
    sampler = {"name": "DistributedBatchSampler", "shuffle": False, "drop_last": False,
               **({"batch_size": batch_size} if batch_size else {})}
    raw = {
        "Global": {**({"image_shape": [3, image_size, image_size]} if image_size else {})},
        "Arch": {"name": model, "class_num": class_num},
        "DataLoader": {"Eval": {
            "dataset": {"name": "ImageNetDataset", "image_root": str(root), "cls_label_path": str(data),
                        "transform_ops": ops},
            "sampler": sampler,
            "loader": {"num_workers": 0},
        }},
    }
    return validate(raw)  # fill the defaults as for any config


def evaluate(cfg=None, *, model=None, data=None, root=".", class_num=None, batch_size=None, image_size=None,
             weights=None, device=None, out_dir=None, labels_file=None) -> dict:
    """Evaluate `weights` (a run directory, path prefix / .pdparams or zoo name; default
    Global.pretrained_model) on the config's DataLoader.Eval split: top-1/top-5, loss, per-class accuracy
    and a confusion matrix.

        pcls.evaluate("configs/x.yaml", weights="output/x")
        pcls.evaluate(model="ResNet50_vd", data="val.txt", root="images", weights="output/run")  # zoo preprocessing

    Without `cfg`: `model` and `data` (with root, class_num, batch_size, image_size) build one (eval_config).
    Writes confusion_matrix.json/.csv and per_class.csv to `out_dir` (default: beside the weights, or
    Global.output_dir/eval). Returns the metrics dict.
    """
    if cfg is None:
        if not (model and data):
            raise PclsError("nothing to evaluate: pass a config, or model=NAME and data=LIST (with root=DIR)")
        cfg = eval_config(model, data, root, class_num, labels_file, batch_size, image_size)
    elif isinstance(cfg, (str, Path)):
        from pcls.config import load_config

        cfg = load_config(str(cfg))
    from pcls.data import build_dataloader
    from pcls.engine.metrics import build_meter, metric_model_key, metric_topk
    from pcls.engine.env import select_device
    from pcls.engine.model import build_model, check_weights_source, load_weights
    from pcls.loss import build_loss

    from pcls.engine.run_config import validated

    cfg = validated(cfg)
    g = cfg["Global"]
    weights = weights or g["pretrained_model"]
    if not weights:
        raise PclsError("nothing to evaluate: pass --weights PATH|zoo-name (or set Global.pretrained_model)")
    if (cfg.get("DataLoader") or {}).get("Eval") is None:
        raise PclsError("the config has no DataLoader.Eval section: pass --data LIST --root DIR")
    wpath = Path(str(weights))
    if wpath.is_dir() and not wpath.with_name(wpath.name + ".pdparams").is_file():  # PaddleClas: prefix first
        from pcls.utils.run_files import find_in_run

        best = find_in_run(wpath, "best_model")  # a run directory (either layout): its best weights
        weights = str(best) if best else weights
    check_weights_source(weights)
    on_cpu = select_device(device or g["device"]) == "cpu"
    arch = dict(cfg["Arch"])
    class_num = int(arch["class_num"])
    bundle = build_dataloader(cfg["DataLoader"]["Eval"], train=False, class_num=class_num)
    # Global seen through an overlay, not copied: the model reads what it needs of it, its weights come below
    model = build_model({**arch, "pretrained": False}, ChainMap({"pretrained_model": None}, g))
    load_weights(model, weights, reinit_classifier=False)  # a random classifier would make the numbers meaningless
    if on_cpu:
        from pcls.utils.signals import DeferredStop

        with DeferredStop() as stop:  # tracing for Paddle Inference: a SIGTERM there ends eval in one line too
            model = cpu_eval_model(model, bundle)
        stop.check()
    loss_cfg = cfg["Loss"]["Eval"]
    metric_cfg = (cfg.get("Metric") or {}).get("Eval")
    meter = build_meter(metric_cfg, multilabel=g["use_multilabel"], topk=metric_topk(metric_cfg, class_num),
                        class_num=class_num, confusion=True)
    meter = run_eval(model, bundle.loader, loss_fn=build_loss(loss_cfg), meter=meter,
                     output_key=metric_model_key(metric_cfg))
    if meter.count == 0:
        raise PclsError(f"no labelled samples in {cfg['DataLoader']['Eval']['dataset'].get('cls_label_path')}")
    if out_dir is None:
        wpath = Path(str(weights))
        out_dir = wpath.parent / "eval" if wpath.parent.exists() and str(wpath.parent) not in (".", "") \
            else Path(g["output_dir"]) / "eval"
    names = read_class_names(labels_file, class_num)
    result = meter.result()
    result.update({"weights": str(weights), "model": arch.get("name"), "class_num": class_num,
                   "per_class": [dict(row, name=names[row["class_id"]]) for row in meter.per_class()]})
    if g["use_multilabel"]:  # no confusion matrix: per class, how often its label bit is right, and its AP
        result["files"] = write_per_class(result["per_class"], out_dir, ["class_id", "name", "support", "top1", "ap"])
    else:
        result["files"] = write_confusion(meter, out_dir, names)
    return result

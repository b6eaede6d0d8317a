"""Post-processing of a model's class scores by PaddleClas name (`Infer.PostProcess.name`), as `pcls predict`
and `pcls.Predictor` apply it from an export's inference.yml.

    Topk                      the k best classes (the default)
    ThreshOutput              two classes: class 1 when its score reaches `threshold`, else class 0 (named
                              `label_0` / `label_1`); more classes: the best one when its score exceeds
                              `threshold`, else `default_label_index`
    MultiLabelThreshOutput    every class whose (sigmoid) score reaches `threshold`, for use_multilabel models
    DistillationPostProcess   `func` (one of the above) on the output of model `model_name`: an export of a
                              distillation config holds only that model, so `func` runs on its scores

Each result is {"class_ids", "scores", "labels"} per image, best first.
"""

from __future__ import annotations

import inspect
from typing import List, Optional

import numpy as np

from pcls.config.schema import default_of
from pcls.errors import PclsError
from pcls.utils.registry import Registry

POSTPROCESSES = Registry("post-process", where="Infer.PostProcess.name")


def _name(labels: Optional[list], class_id: int) -> str:
    return labels[class_id] if labels and class_id < len(labels) else str(int(class_id))


@POSTPROCESSES.register()
class Topk:
    def __init__(self, topk: int = default_of("Infer.PostProcess.topk"), labels: Optional[list] = None, **_):
        self.topk, self.labels = int(topk), labels

    def __call__(self, scores: np.ndarray) -> List[dict]:
        k = min(self.topk, scores.shape[-1])
        results = []
        for row in scores:
            ids = np.argsort(-row, kind="stable")[:k]
            results.append({"class_ids": [int(i) for i in ids], "scores": [float(row[i]) for i in ids],
                            "labels": [_name(self.labels, int(i)) for i in ids]})
        return results


@POSTPROCESSES.register()
class ThreshOutput:
    def __init__(self, threshold: float = 0.0,
                 default_label_index: int = default_of("Infer.PostProcess.default_label_index"),
                 label_0: Optional[str] = None, label_1: Optional[str] = None, labels: Optional[list] = None, **_):
        self.threshold = float(0.0 if threshold is None else threshold)
        self.default = int(default_label_index)
        self.labels = labels
        self.binary_names = [label_0 or _name(labels, 0), label_1 or _name(labels, 1)]

    def __call__(self, scores: np.ndarray) -> List[dict]:
        if scores.shape[-1] == 2:
            return [self._binary(float(row[1])) for row in scores]
        if not 0 <= self.default < scores.shape[-1]:
            raise PclsError(f"Infer.PostProcess.default_label_index {self.default} is not a class of this model "
                            f"({scores.shape[-1]} classes)")
        results = []
        for row in scores:
            best = int(np.argmax(row))
            chosen = best if row[best] > self.threshold else self.default
            results.append({"class_ids": [chosen], "scores": [float(row[chosen])],
                            "labels": [_name(self.labels, chosen)]})
        return results

    def _binary(self, positive: float) -> dict:
        chosen, score = (1, positive) if positive >= self.threshold else (0, 1.0 - positive)
        return {"class_ids": [chosen], "scores": [score], "labels": [self.binary_names[chosen]]}


@POSTPROCESSES.register()
class MultiLabelThreshOutput:
    """Multi-label (sigmoid scores): every class whose score reaches `threshold`, best first."""

    def __init__(self, threshold: float = 0.5, labels: Optional[list] = None, **_):
        self.threshold, self.labels = float(0.5 if threshold is None else threshold), labels

    def __call__(self, scores: np.ndarray) -> List[dict]:
        results = []
        for row in scores:
            ids = [int(i) for i in np.argsort(-row, kind="stable") if row[i] >= self.threshold]
            results.append({"class_ids": ids, "scores": [float(row[i]) for i in ids],
                            "labels": [_name(self.labels, i) for i in ids]})
        return results


def resolve_postprocess(post: dict, infer_model_name: Optional[str] = None) -> dict:
    """A config's Infer.PostProcess as an export records it: DistillationPostProcess becomes its `func`
    (the export holds the one model it reads), checked against the model the export holds."""
    post = {k: v for k, v in (post or {}).items() if v is not None}
    if post.get("name") != "DistillationPostProcess":
        return _own_keys(post)
    model_name = post.pop("model_name", None)
    if model_name and infer_model_name and model_name != infer_model_name:
        raise PclsError(f"Infer.PostProcess.model_name '{model_name}' is not the exported model "
                        f"'{infer_model_name}' (Arch.infer_model_name); set them to the same model")
    post.pop("key", None)  # the schema accepts only "logits": the exported model returns nothing else
    post["name"] = post.pop("func", None) or "Topk"
    return _own_keys(post)


def _own_keys(post: dict) -> dict:
    """Only the keys the named post-process takes (the schema fills every post-process's fields)."""
    cls = POSTPROCESSES.get(post.get("name") or "Topk")
    takes = set(inspect.signature(cls.__init__).parameters) - {"self", "labels", "_"}
    return {k: v for k, v in post.items() if k in takes or k in ("name", "class_id_map_file")}


def build_postprocess(post: dict, labels: Optional[list] = None, topk: Optional[int] = None):
    """The post-process an inference.yml `PostProcess` section names; `topk` overrides its k."""
    params = {k: v for k, v in dict(post or {}).items() if k not in ("name", "class_id_map_file")}
    if topk:
        params["topk"] = topk
    return POSTPROCESSES.get(post.get("name") or "Topk")(labels=labels, **params)

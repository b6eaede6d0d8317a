"""Post-processing of a model's class scores by PaddleClas name (`Infer.PostProcess.name`), as `pcls predict`
and `pcls.Predictor` apply it from an export's inference.yml.

    Topk                      the k best classes (the default)
    ThreshOutput              two classes: class 1 when its score reaches `threshold`, else class 0 (named
                              `label_0` / `label_1`); more classes: the best one when its score exceeds
                              `threshold`, else `default_label_index`
    MultiLabelThreshOutput    every class whose (sigmoid) score reaches `threshold`, for use_multilabel models
    DistillationPostProcess   `func` (one of the above) on the output of model `model_name`: an export of a
                              distillation config holds only that model, so `func` runs on its scores
    PersonAttribute, VehicleAttribute, TableAttribute
                              PULC's attribute models: sigmoid scores decoded into readable attributes

Each result is {"class_ids", "scores", "labels"} per image, best first.
"""

from __future__ import annotations

import inspect
from typing import List, Optional, Tuple

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


class _Attributes:
    """Base of the PULC attribute decoders (sigmoid scores in, one result per image): `class_ids` / `scores`
    are the attributes over their thresholds, `labels` the readable attribute phrases, `output` the 0/1
    vector PaddleClas prints (score > threshold, each attribute's own threshold where it has one)."""

    size = 0

    def _check(self, scores: np.ndarray) -> None:
        if scores.shape[-1] != self.size:
            raise PclsError(f"Infer.PostProcess {type(self).__name__} decodes {self.size} attribute scores; this "
                            f"model gives {scores.shape[-1]}")

    def _result(self, row: np.ndarray, thresholds: np.ndarray, labels) -> dict:
        output = (row > thresholds).astype(int)
        ids = [int(i) for i in np.flatnonzero(output)]
        return {"class_ids": ids, "scores": [float(row[i]) for i in ids], "labels": list(labels),
                "attributes": labels, "output": output.tolist()}


def _threshold(value, fallback: float) -> float:
    return float(fallback if value is None else value)


@POSTPROCESSES.register()
class PersonAttribute(_Attributes):
    """PA-100K's 26 attributes (PULC person_attribute): hat, glasses, sleeves, upper/lower styles, boots, bags,
    holding, age, gender, direction; `glasses_threshold` and `hold_threshold` for those two."""

    size = 26
    AGES = ("AgeLess18", "Age18-60", "AgeOver60")
    DIRECTIONS = ("Front", "Side", "Back")
    BAGS = ("HandBag", "ShoulderBag", "Backpack")
    UPPER = ("UpperStride", "UpperLogo", "UpperPlaid", "UpperSplice")
    LOWER = ("LowerStripe", "LowerPattern", "LongCoat", "Trousers", "Shorts", "Skirt&Dress")

    def __init__(self, threshold=None, glasses_threshold=None, hold_threshold=None, labels=None, **_):
        self.threshold = _threshold(threshold, 0.5)
        self.glasses, self.hold = _threshold(glasses_threshold, 0.3), _threshold(hold_threshold, 0.6)

    def __call__(self, scores: np.ndarray) -> List[dict]:
        self._check(scores)
        thresholds = np.full(self.size, self.threshold)
        thresholds[1], thresholds[18] = self.glasses, self.hold
        return [self._result(row, thresholds, self.describe(row)) for row in scores]

    def describe(self, row) -> list:
        t = self.threshold
        bag = int(np.argmax(row[15:18]))
        upper = " ".join(["LongSleeve" if row[3] > row[2] else "ShortSleeve"] +
                         [name for name, score in zip(self.UPPER, row[4:8]) if score > t])
        lower = [name for name, score in zip(self.LOWER, row[8:14]) if score > t] or \
            [self.LOWER[int(np.argmax(row[8:14]))]]
        return ["Female" if row[22] > t else "Male", self.AGES[int(np.argmax(row[19:22]))],
                self.DIRECTIONS[int(np.argmax(row[23:26]))], f"Glasses: {bool(row[1] > self.glasses)}",
                f"Hat: {bool(row[0] > t)}", f"HoldObjectsInFront: {bool(row[18] > self.hold)}",
                self.BAGS[bag] if row[15 + bag] > t else "No bag", f"Upper: {upper}",
                "Lower:  " + " ".join(lower), "Boots" if row[14] > t else "No boots"]


@POSTPROCESSES.register()
class VehicleAttribute(_Attributes):
    """VeRi's 10 colours then 9 types (PULC vehicle_attribute): the best of each when it reaches its threshold."""

    size = 19
    COLORS = ("yellow", "orange", "green", "gray", "red", "blue", "white", "golden", "brown", "black")
    TYPES = ("sedan", "suv", "van", "hatchback", "mpv", "pickup", "bus", "truck", "estate")

    def __init__(self, color_threshold=None, type_threshold=None, labels=None, **_):
        self.color, self.type = _threshold(color_threshold, 0.5), _threshold(type_threshold, 0.5)

    def __call__(self, scores: np.ndarray) -> List[dict]:
        self._check(scores)
        thresholds = np.array([self.color] * 10 + [self.type] * 9)
        results = []
        for row in scores:
            color, kind = int(np.argmax(row[:10])), int(np.argmax(row[10:]))
            color_text = f"Color: ({self.COLORS[color]}, prob: {row[color]})" if row[color] >= self.color \
                else "Color unknown"
            type_text = f"Type: ({self.TYPES[kind]}, prob: {row[10 + kind]})" if row[10 + kind] >= self.type \
                else "Type unknown"
            results.append(self._result(row, thresholds, [color_text, type_text]))
        return results


@POSTPROCESSES.register()
class TableAttribute(_Attributes):
    """Six yes/no table-image qualities (PULC table_attribute), each with its own threshold."""

    size = 6
    QUALITIES = (("source", "Scanned", "Photo"), ("number", "Little", "Numerous"),
                 ("color", "Black-and-White", "Multicolor"), ("clarity", "Clear", "Blurry"),
                 ("obstruction", "Without-Obstacles", "With-Obstacles"), ("angle", "Horizontal", "Tilted"))

    def __init__(self, source_threshold=None, number_threshold=None, color_threshold=None, clarity_threshold=None,
                 obstruction_threshold=None, angle_threshold=None, labels=None, **_):
        given = (source_threshold, number_threshold, color_threshold, clarity_threshold, obstruction_threshold,
                 angle_threshold)
        self.thresholds = np.array([_threshold(value, 0.5) for value in given])

    def __call__(self, scores: np.ndarray) -> List[dict]:
        self._check(scores)
        return [self._result(row, self.thresholds, [yes if score > limit else no for (_, yes, no), score, limit
                                                    in zip(self.QUALITIES, row, self.thresholds)])
                for row in scores]


def scored_classes(result: dict, labels: Optional[list] = None) -> List[Tuple[int, str, float]]:
    """(class id, name, score) of each class a post-processed result picks. An attribute result's `labels` are
    phrases about the whole image (its `attributes`), not one name per class: its classes are named from the
    model's `labels`, else by id."""
    if "attributes" in result:
        return [(i, _name(labels, i), s) for i, s in zip(result["class_ids"], result["scores"])]
    return list(zip(result["class_ids"], result["labels"], result["scores"]))


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

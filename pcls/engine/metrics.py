"""Top-k accuracy and loss accumulated over an epoch, summed across ranks, plus per-class counts for eval;
the multi-label metrics (HammingDistance, AccuracyScore, mAP) for `Global.use_multilabel`. `build_meter`
picks the meter a config asks for; every meter has update / all_reduce / result / state / load_state and
names its `main` metric (what best_model tracks)."""

from __future__ import annotations

import numpy as np

from pcls.config.schema import MULTILABEL_METRICS  # the names the schema checks configs against
from pcls.errors import PclsError


def hard_labels(target):
    """int labels [N] from int labels [N]/[N,1] or soft targets [N,C] (their argmax)."""
    import paddle

    if target.dtype in (paddle.int64, paddle.int32):
        return target.reshape([-1])
    return target.argmax(axis=-1)


def top1_class(scores):
    """The top-1 class of each row as a stable descending sort gives it: the lowest id among the highest scores,
    NaN last (class 0 for a row of NaN); computed on the scores' device."""
    import paddle

    nan = paddle.isnan(scores)
    filled = paddle.where(nan, paddle.full_like(scores, -np.inf), scores)
    best = paddle.logical_and(filled == filled.max(axis=1, keepdim=True), paddle.logical_not(nan))
    classes = paddle.arange(scores.shape[-1], dtype="int64").unsqueeze(0).expand_as(best)
    first = paddle.where(best, classes, paddle.full_like(classes, scores.shape[-1])).min(axis=1)
    return paddle.where(first == scores.shape[-1], paddle.zeros_like(first), first)


def metric_topk(metric_cfg, class_num=None):
    """The k values a config's Metric list asks for (TopkAcc / DistillationTopkAcc), capped at class_num."""
    ks = []
    for entry in metric_cfg or [{"TopkAcc": {"topk": [1, 5]}}]:
        for _, params in entry.items():
            ks.extend((params or {}).get("topk", [1, 5]))
    ks = sorted(set(int(k) for k in ks)) or [1, 5]
    if class_num:
        ks = sorted(set(min(k, class_num) for k in ks))
    return ks


def metric_model_key(metric_cfg):
    """Which entry of a dict model output the accuracy is measured on (DistillationTopkAcc.model_key)."""
    for entry in metric_cfg or []:
        for _, params in entry.items():
            if params and params.get("model_key"):
                return params["model_key"]
    return None


def _read_back(name: str) -> property:
    """A meter's running total, read (or replaced) after the sums still on the device are added to it."""

    def get(meter):
        meter._flush()
        return getattr(meter, name)

    def put(meter, value):
        meter._flush()
        setattr(meter, name, value)

    return property(get, put)


class TopkMeter:
    """Running sums of correct top-k predictions, loss and samples; `.result()` gives the averages.

    Each batch is summed where its logits are (`update`) and read back to the host once, when a figure is asked
    for (`correct`, `count`, `loss_sum`, `confusion`, `result`): on a GPU the evaluation never waits for a batch
    to finish. The sums equal a host computation's: counts are exact, the loss is summed in float64 in batch order,
    and ties rank as a stable sort does (the lower class id first, NaN last).
    """

    def __init__(self, topk=(1, 5), class_num=None, confusion=False):
        self.topk = list(topk)
        self.class_num = class_num
        self._correct = np.zeros(len(self.topk), dtype=np.float64)
        self._loss_sum = 0.0
        self._count = 0
        self._confusion = np.zeros((class_num, class_num), dtype=np.int64) if confusion and class_num else None
        self._sums = None  # on the logits' device: [hits per k..., samples, loss x samples], float64
        self._pairs = []  # on the device: (labels, top-1 class) per batch, for the confusion matrix

    def update(self, logits, target, loss=None):
        """Add one batch; `target` may be hard or soft; labels < 0 (unlabelled lines) are skipped."""
        import paddle

        labels = hard_labels(target).astype("int64").reshape([-1])
        scores = logits.astype("float32").reshape([labels.shape[0], -1])
        keep = labels >= 0
        label = paddle.where(keep, labels, paddle.zeros_like(labels)).unsqueeze(1)
        own = paddle.take_along_axis(scores, label, axis=1)
        lower = paddle.arange(scores.shape[-1], dtype="int64").unsqueeze(0) < label
        nan = paddle.isnan(scores)
        # classes ahead of the label in a stable descending sort: higher scores, equal ones with lower ids; NaN last
        ahead = paddle.where(paddle.isnan(own), paddle.logical_or(paddle.logical_not(nan), paddle.logical_and(nan, lower)),
                             paddle.logical_or(scores > own, paddle.logical_and(scores == own, lower)))
        rank = ahead.astype("int64").sum(axis=1)
        kept = keep.astype("float64")
        count = kept.sum()
        parts = [((rank < k).astype("float64") * kept).sum() for k in self.topk] + [count]
        weighted = loss.astype("float64").reshape([]) * count if loss is not None else paddle.zeros([], "float64")
        parts.append(paddle.where(count > 0, weighted, paddle.zeros_like(weighted)))  # no samples: no loss added
        batch = paddle.stack(parts)
        self._sums = batch if self._sums is None else self._sums + batch
        if self._confusion is not None:
            self._pairs.append((labels, top1_class(scores)))

    def _flush(self) -> None:
        """Read the device sums back (one copy) into the host totals."""
        if self._sums is not None:
            sums = self._sums.numpy()
            self._sums = None
            self._correct = self._correct + sums[: len(self.topk)]
            self._count += int(round(sums[-2]))
            self._loss_sum += float(sums[-1])
        if self._pairs:
            import paddle

            labels = paddle.concat([pair[0] for pair in self._pairs]).numpy()
            predicted = paddle.concat([pair[1] for pair in self._pairs]).numpy()
            self._pairs = []
            keep = labels >= 0
            np.add.at(self._confusion, (labels[keep], predicted[keep]), 1)

    correct = _read_back("_correct")  # correct predictions per k
    count = _read_back("_count")  # labelled samples
    loss_sum = _read_back("_loss_sum")  # loss x samples
    confusion = _read_back("_confusion")  # [true, predicted] counts, or None

    def all_reduce(self):
        """Sum the counts over all ranks (no-op in a single process)."""
        import paddle
        import paddle.distributed as dist

        if dist.get_world_size() <= 1:
            return
        packed = np.concatenate([self.correct, [self.loss_sum, float(self.count)]])
        tensor = paddle.to_tensor(packed)
        dist.all_reduce(tensor)
        packed = tensor.numpy()
        self.correct = packed[: len(self.topk)]
        self.loss_sum, self.count = float(packed[-2]), int(round(packed[-1]))
        if self.confusion is not None:
            conf = paddle.to_tensor(self.confusion)
            dist.all_reduce(conf)
            self.confusion = conf.numpy()

    main = "top1"

    def state(self) -> dict:
        """The running sums as plain JSON values (a checkpoint inside an epoch)."""
        return {"correct": self.correct.tolist(), "loss_sum": self.loss_sum, "count": self.count}

    def load_state(self, state: dict) -> None:
        self.correct = np.asarray(state["correct"], dtype=np.float64)
        self.loss_sum, self.count = state["loss_sum"], state["count"]

    def result(self) -> dict:
        n = max(self.count, 1)
        out = {f"top{k}": float(c / n) for k, c in zip(self.topk, self.correct)}
        out["loss"] = self.loss_sum / n
        out["samples"] = self.count
        return out

    def per_class(self) -> list:
        """Accuracy (top-1) and support per class, from the confusion matrix."""
        conf = self.confusion
        support = conf.sum(axis=1)
        correct = np.diag(conf)
        return [
            {"class_id": i, "support": int(support[i]), "top1": float(correct[i] / support[i]) if support[i] else None}
            for i in range(len(conf))
        ]


def tpr_at_fpr(positive_scores: np.ndarray, negative_scores: np.ndarray, max_fpr: float) -> dict:
    """The best true-positive rate over thresholds 0, 1e-4, ..., 0.9999 (PaddleClas's grid) whose
    false-positive rate (negatives scoring at least the threshold) stays <= max_fpr, and that threshold."""
    thresholds = np.arange(10000) / 10000.0
    negatives, positives = np.sort(negative_scores), np.sort(positive_scores)

    def at_least(sorted_scores):  # per threshold: the share of scores >= it
        if len(sorted_scores) == 0:
            return np.zeros(len(thresholds))
        return (len(sorted_scores) - np.searchsorted(sorted_scores, thresholds, side="left")) / len(sorted_scores)

    fpr, tpr = at_least(negatives), at_least(positives)
    allowed = np.flatnonzero(fpr <= max_fpr)
    if len(allowed) == 0:
        return {"tpr": 0.0, "fpr": float(fpr.min()), "threshold": 1.0}
    best = allowed[np.argmax(tpr[allowed])]  # the lowest threshold among the equally good
    return {"tpr": float(tpr[best]), "fpr": float(fpr[best]), "threshold": float(thresholds[best])}


class LossTermMeter:
    """Each named term of a combined loss (a distillation run's ground-truth CE, KD, MGD, ...) averaged over an
    epoch's samples: the `train_<term>` columns of metrics.jsonl beside the total `train_loss`. Batches add to
    sums kept on the terms' device (no copy to the host per batch); reading `sums` copies once, as TopkMeter's
    totals do."""

    def __init__(self):
        self._sums, self.count = {}, 0
        self._pending = {}  # name -> on-device sum of value x samples not yet added to `sums`

    def update(self, terms: dict, samples: int):
        for name, value in terms.items():
            weighted = value.detach().astype("float64").reshape([]) * samples
            self._pending[name] = weighted if name not in self._pending else self._pending[name] + weighted
        self.count += samples

    def _flush(self) -> None:
        for name, total in self._pending.items():
            self._sums[name] = self._sums.get(name, 0.0) + float(total)
        self._pending = {}

    sums = _read_back("_sums")  # name -> value x samples

    def all_reduce(self):
        """Sum over all ranks (every rank computes the same terms; no-op in a single process)."""
        import paddle
        import paddle.distributed as dist

        sums = self.sums
        if dist.get_world_size() <= 1 or not sums:
            return
        names = sorted(sums)
        tensor = paddle.to_tensor(np.array([sums[n] for n in names] + [float(self.count)]))
        dist.all_reduce(tensor)
        packed = tensor.numpy()
        self.sums, self.count = dict(zip(names, packed[:-1].tolist())), int(round(packed[-1]))

    def result(self) -> dict:
        return {name: total / max(self.count, 1) for name, total in self.sums.items()}

    def state(self) -> dict:
        return {"sums": dict(self.sums), "count": self.count}

    def load_state(self, state: dict) -> None:
        self._sums, self.count, self._pending = dict(state["sums"]), int(state["count"]), {}


class BinaryTopkMeter(TopkMeter):
    """TopkMeter plus PaddleClas's TprAtFpr for the binary "exists" tasks: the softmax probability of class 1
    is the score, label 1 the positive; `tpr` is the best recall at a false-positive rate <= max_fpr."""

    def __init__(self, topk=(1, 5), class_num=None, confusion=False, max_fpr=1 / 1000, main_tpr=False):
        super().__init__(topk, class_num=class_num, confusion=confusion)
        self.max_fpr = float(max_fpr)
        self.main = "tpr" if main_tpr else "top1"
        self.scores, self.labels = [], []

    def update(self, logits, target, loss=None):
        super().update(logits, target, loss)
        labels = hard_labels(target).numpy()
        scores = logits.numpy().astype(np.float64)
        if scores.shape[-1] != 2:
            raise PclsError(f"Metric TprAtFpr is for two-class models (class 1 = positive); this one has "
                            f"{scores.shape[-1]} classes")
        keep = labels >= 0
        probs = np.exp(scores - scores.max(axis=1, keepdims=True))
        self.scores.append((probs[:, 1] / probs.sum(axis=1))[keep])
        self.labels.append(labels[keep])

    def all_reduce(self):
        import paddle.distributed as dist

        super().all_reduce()
        if dist.get_world_size() <= 1:
            return
        gathered = []
        dist.all_gather_object(gathered, {"scores": np.concatenate(self.scores or [np.zeros(0)]).tolist(),
                                          "labels": np.concatenate(self.labels or [np.zeros(0)]).tolist()})
        self.scores = [np.asarray(g["scores"]) for g in gathered]
        self.labels = [np.asarray(g["labels"]) for g in gathered]

    def result(self) -> dict:
        out = super().result()
        scores = np.concatenate(self.scores) if self.scores else np.zeros(0)
        labels = np.concatenate(self.labels) if self.labels else np.zeros(0)
        found = tpr_at_fpr(scores[labels == 1], scores[labels != 1], self.max_fpr)
        out.update(tpr=found["tpr"], fpr=found["fpr"], tpr_threshold=found["threshold"])
        return out

    def state(self) -> dict:
        state = super().state()
        state["scores"] = np.concatenate(self.scores).tolist() if self.scores else []
        state["labels"] = np.concatenate(self.labels).tolist() if self.labels else []
        return state

    def load_state(self, state: dict) -> None:
        super().load_state(state)
        self.scores = [np.asarray(state.get("scores") or [], dtype=np.float64)]
        self.labels = [np.asarray(state.get("labels") or [], dtype=np.int64)]


def attribute_metrics(probs: np.ndarray, targets: np.ndarray, threshold: float = 0.5, eps: float = 1e-20) -> dict:
    """Pedestrian-attribute metrics (Li et al. 2015; Jia et al. 2020, "Rethinking of Pedestrian Attribute
    Recognition"): label-based mA = mean over attributes of (recall on positives + recall on negatives) / 2;
    instance-based accuracy (|pred & gt| / |pred | gt|), precision, recall and their F1, averaged over samples."""
    predicted = probs > threshold
    truth = targets == 1
    positives, negatives = truth.sum(axis=0), (~truth).sum(axis=0)
    true_pos = (predicted & truth).sum(axis=0)
    true_neg = (~predicted & ~truth).sum(axis=0)
    label_ma = ((true_pos / (positives + eps) + true_neg / (negatives + eps)) / 2).mean()
    intersection = (predicted & truth).sum(axis=1)
    union = (predicted | truth).sum(axis=1)
    accuracy = (intersection / (union + eps)).mean()
    precision = (intersection / (predicted.sum(axis=1) + eps)).mean()
    recall = (intersection / (truth.sum(axis=1) + eps)).mean()
    f1 = 2 * precision * recall / (precision + recall + eps)
    return {"label_mA": float(label_ma), "instance_acc": float(accuracy), "instance_prec": float(precision),
            "instance_rec": float(recall), "instance_f1": float(f1)}


# -- multi-label (Global.use_multilabel) ----------------------------------------------------------------


def average_precision(scores: np.ndarray, positives: np.ndarray) -> float:
    """Area under the precision-recall steps of one class: the mean of the precision at each positive,
    samples ranked by score (ties broken by order, as a stable sort gives them)."""
    order = np.argsort(-scores, kind="stable")
    hits = positives[order].astype(np.float64)
    if hits.sum() == 0:
        return float("nan")
    precision = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    return float((precision * hits).sum() / hits.sum())


class MultiLabelMeter:
    """Epoch sums for multi-label outputs: a label is predicted when its sigmoid reaches `threshold` (0.5,
    as PaddleClas). hamming_distance = wrong label bits / all bits; accuracy_score = samples whose every bit
    is right (base "sample") or right bits / all bits (base "label"); mAP = mean over classes with a positive
    of their average precision (keeps every score of the epoch)."""

    main = "mAP"

    def __init__(self, metrics=("HammingDistance", "AccuracyScore"), threshold=0.5, accuracy_base="sample",
                 per_class=False):
        unknown = [m for m in metrics if m not in MULTILABEL_METRICS]
        if unknown:
            raise PclsError(f"Metric: {', '.join(unknown)} is not a multi-label metric; use "
                            f"{', '.join(MULTILABEL_METRICS)}")
        if accuracy_base not in ("sample", "label"):
            raise PclsError(f"Metric.AccuracyScore.base must be sample or label, got {accuracy_base!r}")
        self.metrics, self.threshold, self.base = list(metrics), float(threshold), accuracy_base
        self.keep_scores = "mAP" in self.metrics or "ATTRMetric" in self.metrics or per_class
        self.main = next((MULTILABEL_METRICS[m] for m in ("ATTRMetric", "mAP") if m in self.metrics), "accuracy_score")
        self.loss_sum, self.count = 0.0, 0
        self.wrong_bits, self.bits, self.exact = 0, 0, 0
        self.scores, self.targets = [], []

    def update(self, logits, target, loss=None):
        probs = 1.0 / (1.0 + np.exp(-logits.numpy().astype(np.float64)))
        targets = target.numpy()
        if targets.ndim == 3:  # [N, 2, C] from a label_ratio dataset: the labels, then the ratios
            targets = targets[:, 0]
        targets = targets.astype(np.int64)
        predicted = (probs >= self.threshold).astype(np.int64)
        wrong = predicted != targets
        self.wrong_bits += int(wrong.sum())
        self.bits += int(wrong.size)
        self.exact += int((~wrong.any(axis=1)).sum())
        if loss is not None:
            self.loss_sum += float(loss) * len(targets)
        self.count += len(targets)
        if self.keep_scores:
            self.scores.append(probs.astype(np.float32))
            self.targets.append(targets.astype(np.int8))

    def all_reduce(self):
        import paddle.distributed as dist

        if dist.get_world_size() <= 1:
            return
        gathered = []
        dist.all_gather_object(gathered, self.state())
        self.loss_sum, self.count, self.wrong_bits, self.bits, self.exact = 0.0, 0, 0, 0, 0
        self.scores, self.targets = [], []
        for state in gathered:
            self._add(state)

    def _stacked(self):
        if not self.scores:
            return None, None
        return np.concatenate(self.scores), np.concatenate(self.targets)

    def per_class_ap(self) -> list:
        scores, targets = self._stacked()
        if scores is None:
            return []
        return [average_precision(scores[:, c], targets[:, c]) for c in range(scores.shape[1])]

    def result(self) -> dict:
        out = {}
        if "HammingDistance" in self.metrics:
            out["hamming_distance"] = self.wrong_bits / max(self.bits, 1)
        if "AccuracyScore" in self.metrics:
            right = self.exact / max(self.count, 1) if self.base == "sample" else 1 - self.wrong_bits / max(self.bits, 1)
            out["accuracy_score"] = float(right)
        if "mAP" in self.metrics:
            aps = [ap for ap in self.per_class_ap() if not np.isnan(ap)]
            out["mAP"] = float(np.mean(aps)) if aps else 0.0
        if "ATTRMetric" in self.metrics:
            scores, targets = self._stacked()
            if scores is not None:
                out.update(attribute_metrics(scores, targets, self.threshold))
        out["loss"] = self.loss_sum / max(self.count, 1)
        out["samples"] = self.count
        return out

    def per_class(self) -> list:
        """Per class: samples where the label is set (support), and the share of samples whose bit is right."""
        scores, targets = self._stacked()
        if scores is None:
            return []
        right = (scores >= self.threshold).astype(np.int64) == targets
        aps = self.per_class_ap()
        return [{"class_id": c, "support": int(targets[:, c].sum()), "top1": float(right[:, c].mean()),
                 "ap": None if np.isnan(aps[c]) else aps[c]} for c in range(targets.shape[1])]

    # resume inside an epoch: the sums as plain JSON values
    def state(self) -> dict:
        scores, targets = self._stacked()
        return {"loss_sum": self.loss_sum, "count": self.count, "wrong_bits": self.wrong_bits, "bits": self.bits,
                "exact": self.exact, "scores": None if scores is None else scores.tolist(),
                "targets": None if targets is None else targets.tolist()}

    def load_state(self, state: dict) -> None:
        self.loss_sum, self.count, self.wrong_bits, self.bits, self.exact = 0.0, 0, 0, 0, 0
        self.scores, self.targets = [], []
        self._add(state)

    def _add(self, state: dict) -> None:
        self.loss_sum += float(state["loss_sum"])
        self.count += int(state["count"])
        self.wrong_bits += int(state["wrong_bits"])
        self.bits += int(state["bits"])
        self.exact += int(state["exact"])
        if state.get("scores"):
            self.scores.append(np.asarray(state["scores"], dtype=np.float32))
            self.targets.append(np.asarray(state["targets"], dtype=np.int8))


def build_meter(metric_cfg, *, multilabel=False, topk=(1, 5), class_num=None, confusion=False):
    """The meter a config's Metric list asks for: TopkMeter, or MultiLabelMeter with Global.use_multilabel."""
    if not multilabel:
        names = [name for entry in metric_cfg or [] for name in entry]
        if "TprAtFpr" in names:
            params = next(p for entry in metric_cfg for n, p in entry.items() if n == "TprAtFpr") or {}
            return BinaryTopkMeter(topk, class_num=class_num, confusion=confusion,
                                   max_fpr=params.get("max_fpr", 1 / 1000), main_tpr=names[0] == "TprAtFpr")
        return TopkMeter(topk, class_num=class_num, confusion=confusion)
    names, options = [], {}
    for entry in metric_cfg or [{"HammingDistance": None}, {"AccuracyScore": None}]:
        for name, params in entry.items():
            names.append(name)
            if name == "AccuracyScore" and params and params.get("base"):
                options["accuracy_base"] = params["base"]
    return MultiLabelMeter(names, per_class=confusion, **options)

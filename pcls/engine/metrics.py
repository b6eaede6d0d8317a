"""Top-k accuracy and loss accumulated over an epoch, summed across ranks, plus per-class counts for eval."""

from __future__ import annotations

import numpy as np


def hard_labels(target):
    """int labels [N] from int labels [N]/[N,1] or soft targets [N,C] (their argmax)."""
    import paddle

    if target.dtype in (paddle.int64, paddle.int32):
        return target.reshape([-1])
    return target.argmax(axis=-1)


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


class TopkMeter:
    """Running sums of correct top-k predictions, loss and samples; `.result()` gives the averages."""

    def __init__(self, topk=(1, 5), class_num=None, confusion=False):
        self.topk = list(topk)
        self.class_num = class_num
        self.correct = np.zeros(len(self.topk), dtype=np.float64)
        self.loss_sum = 0.0
        self.count = 0
        self.confusion = np.zeros((class_num, class_num), dtype=np.int64) if confusion and class_num else None

    def update(self, logits, target, loss=None):
        """Add one batch; `target` may be hard or soft; labels < 0 (unlabelled lines) are skipped."""
        labels = hard_labels(target).numpy()
        scores = logits.numpy()
        keep = labels >= 0
        if not keep.all():
            labels, scores = labels[keep], scores[keep]
        n = len(labels)
        if n == 0:
            return
        k_max = min(max(self.topk), scores.shape[-1])
        top = np.argsort(-scores, axis=-1, kind="stable")[:, :k_max]
        hit = top == labels[:, None]
        for i, k in enumerate(self.topk):
            self.correct[i] += hit[:, :k].any(axis=1).sum()
        if loss is not None:
            self.loss_sum += float(loss) * n
        self.count += n
        if self.confusion is not None:
            np.add.at(self.confusion, (labels, top[:, 0]), 1)

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
